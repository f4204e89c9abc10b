"""What one worker holds: the model bundle (loaded once, warm), the catalog path, the gate.

Stateless across requests: nothing a request sends is kept after its answer, so workers and
replicas can be added freely. The catalog is only ever opened read-only (by `recommend()` and
`product()`).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deeproot import taxonomy
from deeproot.errors import DataError, InputError
from deeproot.web.gate import Gate
from deeproot.web.settings import Settings
from deeproot.web.upload import Form

log = logging.getLogger(__name__)

TRUE = ("1", "true", "on", "yes")
FALSE = ("", "0", "false", "off", "no")


class CatalogMissing(DataError):
    """The worker has no catalog to answer from (HTTP 503)."""


class FieldError(InputError):
    """A form or query value that cannot be used (HTTP 422)."""


@dataclass(frozen=True)
class Survey:
    """The three survey answers and the options of one diagnosis request, validated."""

    survey_type: str | None
    concerns: tuple[str, ...]
    categories: tuple[str, ...]
    lang: str
    force: bool
    visit: bool
    free_of: tuple[str, ...] = ()  # product filters (ingredient families to leave out)
    no_allergens: bool = False
    include_sold_out: bool = False


def flag(value: str | None, name: str) -> bool:
    """A boolean form field (`1/true/on/yes`, `0/false/off/no`, empty)."""
    v = (value or "").strip().lower()
    if v in TRUE:
        return True
    if v in FALSE:
        return False
    raise FieldError(f"{name} must be true or false, not {value[:40]!r}" if value else name)


def survey_from_form(form: Form) -> Survey:
    """Validate the survey fields of a diagnosis form (Korean labels or keys).

    Raises:
        FieldError: an unknown scalp type, symptom, category or language, listing the valid ones.
    """
    from deeproot.diagnose.rules import survey_type_key

    lang = (form.get("lang") or "ko").strip()
    if lang not in ("ko", "en"):
        raise FieldError(f"lang must be ko or en, not {lang[:20]!r}")
    try:
        st = survey_type_key(form.get("survey_type"))
        concerns = tuple(
            dict.fromkeys(taxonomy.symptom(c).key for c in _many(form, "concerns") if c.strip())
        )
        cats = tuple(
            dict.fromkeys(taxonomy.category(c).key for c in _many(form, "categories") if c.strip())
        )
    except FieldError:
        raise
    except InputError as exc:
        raise FieldError(str(exc)) from None
    return Survey(
        st, concerns, cats, lang, flag(form.get("force"), "force"),
        flag(form.get("visit"), "visit"),
        free_of=tuple(dict.fromkeys(f.strip() for f in _many(form, "free_of") if f.strip())),
        no_allergens=flag(form.get("no_allergens"), "no_allergens"),
        include_sold_out=flag(form.get("include_sold_out"), "include_sold_out"),
    )


def _many(form: Form, name: str) -> list[str]:
    # Repeated fields (`concerns=a&concerns=b`, what forms send) or one comma-separated value.
    out: list[str] = []
    for v in form.getlist(name):
        out.extend(v.split(",") if "," in v else [v])
    return out


def json_bytes(doc: Any) -> bytes:
    """A document as `JSONResponse` renders it (UTF-8, no ASCII escapes, compact), byte for byte."""
    import json

    return json.dumps(
        doc, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
    ).encode("utf-8")


@dataclass(frozen=True)
class Diagnosed:
    """One diagnosis request's outcome: the report, its `deeproot.diagnose/1` document, and that
    document as JSON bytes."""

    report: Any
    doc: dict[str, Any]
    body: bytes
    seconds: float = 0.0  # the `diagnose()` call alone

    def timing_headers(self) -> dict[str, str]:
        """`Server-Timing` with the `diagnose()` call's duration: what a client waited beyond
        it is the service's own overhead (HTTP, upload, queue, JSON)."""
        return {"Server-Timing": f"diagnose;dur={self.seconds * 1000:.2f}"}


class Service:
    """The worker's model, catalog and diagnosis gate."""

    def __init__(self, settings: Settings) -> None:
        from deeproot.catalog import db as catalog_db
        from deeproot.diagnose import infer
        from deeproot.diagnose.bundle import installed_bundle_path, load_bundle
        from deeproot.web import balance

        self.settings = settings
        self.bundle = load_bundle(settings.models or installed_bundle_path())
        self.engine = infer.engine(self.bundle, settings.device)
        self.db_path = Path(settings.db) if settings.db else catalog_db.default_db_path()
        self.demo_catalog = settings.demo_catalog
        self._warm_up()
        self.gate = Gate(settings.queue, balance.from_env())
        log.info(
            "serving with bundle %s (%s) on %s; catalog %s",
            self.bundle.path, "demo" if self.bundle.demo else "trained", self.engine.provider,
            self.db_path if self.has_catalog else "none",
        )

    def _warm_up(self) -> None:
        """One diagnosis of the bundled demo photo before the first request, in memory like an
        upload: onnxruntime's first run allocates its buffers, and the photo check's and DuckDB's
        imports and the catalog's first query happen now, not in a user's request (measured: the
        first request took 239 ms against 29 ms for the next). Nothing is kept but warm caches;
        a catalog that cannot be read becomes a warning in the report, as in any request, and a
        model that does not run stops the worker at start, as before."""
        from importlib import resources

        from deeproot.diagnose.images import PhotoInput

        photo = resources.files("deeproot.data").joinpath("demo_photo.jpg").read_bytes()
        survey = Survey(None, (), (), "ko", force=True, visit=False)
        self.diagnose([PhotoInput("warm-up.jpg", photo)], survey)

    @property
    def has_catalog(self) -> bool:
        return self.db_path.is_file()

    def require_catalog(self) -> None:
        """Raises CatalogMissing (HTTP 503) when there is no catalog to read."""
        if not self.has_catalog:
            raise CatalogMissing(
                f"no product catalog at {self.db_path}; build one with `deeproot catalog build`"
            )

    def model_json(self) -> dict[str, Any]:
        return {
            "bundle": self.bundle.path.name,
            "demo": self.bundle.demo,
            "provider": self.engine.provider,
            "classes": list(self.bundle.classes),
        }

    def diagnose_document(self, photos: list[Any], survey: Survey) -> Diagnosed:
        """`diagnose()`, its document and the JSON bytes the API sends, all in the diagnosis
        thread, so the event loop only writes bytes."""
        t0 = time.perf_counter()
        report = self.diagnose(photos, survey)
        seconds = time.perf_counter() - t0
        doc = report.to_json()
        return Diagnosed(report, doc, json_bytes(doc), seconds)

    def diagnose(self, photos: list[Any], survey: Survey) -> Any:
        """Run `diagnose()` on in-memory photos (called in a worker thread, one at a time)."""
        from deeproot.diagnose.service import diagnose

        filters: dict[str, Any] = {k: v for k, v in (("free_of", survey.free_of),
                                     ("no_allergens", survey.no_allergens),
                                     ("include_sold_out", survey.include_sold_out)) if v}
        missing = set(filters) - _diagnose_keywords()
        if missing:
            raise FieldError(
                f"this deeproot cannot filter products by {', '.join(sorted(missing))}"
            )
        return diagnose(
            photos,
            models=self.bundle,
            survey_type=survey.survey_type,
            concerns=survey.concerns,
            categories=survey.categories,
            device=self.settings.device,
            db=self.db_path,
            lang=survey.lang,
            visit=survey.visit,
            force=survey.force,
            recommend_products=self.has_catalog,
            **filters,
        )


def _diagnose_keywords() -> set[str]:
    import inspect

    from deeproot.diagnose.service import diagnose

    return set(inspect.signature(diagnose).parameters)


def threads_per_worker(workers: int) -> int:
    """onnxruntime threads for each of `workers` processes sharing this machine's cores."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        n = os.cpu_count() or 1
    return max(1, min(8, n // max(1, workers)))
