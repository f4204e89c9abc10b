"""`diagnose()`: photos + survey -> per-photo severities, scalp type(s), care guide and products.

The one library function behind `deeproot diagnose`. Each photo is loaded safely and checked for
quality; a bad photo gets an error (or a quality warning) of its own and the others are still
diagnosed. JSON form: schema "deeproot.diagnose/1" (`DiagnoseReport.to_json`, docs/diagnose.md).
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deeproot import taxonomy
from deeproot.diagnose import rules
from deeproot.diagnose.bundle import Bundle
from deeproot.diagnose.guide import CareGuide, check_lang, disclaimer, guides
from deeproot.diagnose.images import PhotoInput
from deeproot.diagnose.infer import SymptomScore, score
from deeproot.errors import DeeprootError, InputError

log = logging.getLogger(__name__)

JSON_SCHEMA = "deeproot.diagnose/1"
DEMO_WARNING = {
    "en": "results come from a DEMO model trained on synthetic images; they are not a medical"
    " assessment",
    "ko": "합성 이미지로 학습한 데모 모델의 결과이며 의학적 평가가 아닙니다",
}
GUIDE_SOURCES = ("curated", "chat")


@dataclass(frozen=True)
class Diagnosis:
    """Severities of the six symptoms, the scalp type(s) they give, the guide and products."""

    symptoms: tuple[SymptomScore, ...]
    scalp: rules.ScalpTypeResult
    guides: tuple[CareGuide, ...]
    products: Any | None  # deeproot.catalog.recommend.RecommendationSet, None without catalog
    concern_checks: tuple[rules.Note, ...] = ()

    def to_json(self, lang: str) -> dict[str, Any]:
        """JSON form (see docs/diagnose.md)."""
        return {
            "symptoms": [
                {
                    "symptom": s.symptom,
                    "symptom_ko": taxonomy.symptom(s.symptom).ko,
                    "severity": s.severity,
                    "label": s.label,
                    "label_en": s.label_en,
                    "probabilities": [round(p, 6) for p in s.probabilities],
                }
                for s in self.symptoms
            ],
            "scalp_types": list(self.scalp.types),
            "scalp_types_ko": [taxonomy.scalp_type(t).ko for t in self.scalp.types],
            "rule": self.scalp.rule,
            "top_symptoms": list(self.scalp.top_symptoms),
            "survey_agrees": self.scalp.survey_agrees,
            "notes": [{"code": n.code, "text": n.text(lang)} for n in self.scalp.notes],
            "concern_checks": [{"code": n.code, "text": n.text(lang)} for n in self.concern_checks],
            "care_guide": [g.to_json() for g in self.guides],
            "products": self.products.to_json() if self.products is not None else None,
        }


@dataclass(frozen=True)
class PhotoResult:
    """One photo's outcome.

    Attributes:
        photo: the path or PhotoInput name as given, terminal control characters removed.
        status: "diagnosed", "error" (unreadable; see `error`) or "withheld" (quality warning and
            no `force`).
        error: one-line error for status "error".
        warnings: quality warnings as (code, message).
        notes: what loading did (conversion, reduced-size decoding).
        size: (width, height) stored in the file, None on error.
        diagnosis: the diagnosis (None unless diagnosed; in a visit, photos carry severities only).
    """

    photo: str
    status: str
    error: str | None = None
    warnings: tuple[tuple[str, str], ...] = ()
    notes: tuple[str, ...] = ()
    size: tuple[int, int] | None = None
    diagnosis: Diagnosis | None = None


@dataclass(frozen=True)
class DiagnoseReport:
    """Everything `deeproot diagnose` shows."""

    bundle: str
    demo: bool
    provider: str
    classes: tuple[str, ...]
    lang: str
    survey_type: str | None
    concerns: tuple[str, ...]
    categories: tuple[str, ...]
    survey_echo: str | None
    photos: tuple[PhotoResult, ...]
    visit: Diagnosis | None
    catalog: str | None
    warnings: tuple[str, ...]
    disclaimer: str
    timing_ms: dict[str, float] = field(default_factory=dict)
    filters: dict[str, Any] = field(default_factory=dict)  # product filters asked for

    @property
    def exit_code(self) -> int:
        """0 when every photo was diagnosed, else 3 (bad input: the CLI's exit status)."""
        from deeproot.errors import EXIT_INPUT

        return 0 if all(p.status == "diagnosed" for p in self.photos) else EXIT_INPUT

    def to_json(self) -> dict[str, Any]:
        """The documented `deeproot.diagnose/1` object."""
        return {
            "schema": JSON_SCHEMA,
            "model": {
                "bundle": self.bundle,
                "demo": self.demo,
                "provider": self.provider,
                "classes": list(self.classes),
            },
            "survey": {
                "scalp_type": self.survey_type,
                "concerns": list(self.concerns),
                "categories": list(self.categories),
                "echo": self.survey_echo,
            },
            "filters": dict(self.filters),
            "lang": self.lang,
            "photos": [
                {
                    "photo": p.photo,
                    "status": p.status,
                    "error": p.error,
                    "warnings": [{"code": c, "message": m} for c, m in p.warnings],
                    "notes": list(p.notes),
                    "size": list(p.size) if p.size else None,
                    "diagnosis": p.diagnosis.to_json(self.lang) if p.diagnosis else None,
                }
                for p in self.photos
            ],
            "visit": self.visit.to_json(self.lang) if self.visit else None,
            "catalog": self.catalog,
            "warnings": list(self.warnings),
            "disclaimer": self.disclaimer,
            "exit_code": self.exit_code,
        }


def _guides(
    types: tuple[str, ...], lang: str, source: str, symptoms: str, warn: list[str]
) -> tuple[CareGuide, ...]:
    if source == "curated":
        return guides(types, lang)
    from deeproot.diagnose.chat import ChatError, chat_guide

    out = []
    for t in dict.fromkeys(types):
        try:
            out.append(chat_guide(t, lang, symptoms))
        except Exception as exc:  # ChatError, or anything unforeseen: the curated guide stands in
            if not isinstance(exc, ChatError):
                log.debug("chat guide failed unexpectedly", exc_info=True)
            msg = (
                f"채팅 가이드를 받지 못해 ({exc}) 기본 관리 가이드를 보여 드립니다"
                if lang == "ko"
                else f"chat guide failed ({exc}); showing the curated guide"
            )
            if msg not in warn:
                warn.append(msg)
            out.extend(guides((t,), lang))
    return tuple(out)


# Recommendations are pure functions of the catalog file and the question, and a service asks
# the same few questions again and again: keep the last answers per process, keyed by the file's
# identity (device, inode, size, mtime), so a rebuilt catalog (swapped in by rename) is never
# answered from the old one. Results are frozen dataclasses, safe to share between calls.
_RECOMMEND_CACHE: dict[tuple[Any, ...], Any] = {}
_RECOMMEND_CACHE_MAX = 256
_RECOMMEND_LOCK = threading.Lock()


def _file_identity(path: Path) -> tuple[int, int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


class _Products:
    """Recommendations per distinct (types, prefer_functional), looked up once; a missing catalog
    warns once."""

    def __init__(
        self,
        db: str | os.PathLike[str] | None,
        categories: tuple[str, ...],
        filters: dict[str, Any],
    ) -> None:
        from deeproot.catalog import db as catalog_db

        self.path = Path(db) if db is not None else catalog_db.default_db_path()
        self.categories = categories
        self.filters = filters
        self.error: str | None = None
        self._cache: dict[tuple[tuple[str, ...], bool], Any] = {}

    def __call__(self, types: tuple[str, ...], prefer_functional: bool = False) -> Any | None:
        if self.error is not None:
            return None
        key = (types, prefer_functional)
        if key not in self._cache:
            ident = _file_identity(self.path)
            shared = None
            if ident is not None:
                shared = (str(self.path), ident, types, self.categories, prefer_functional,
                          tuple(sorted((k, repr(v)) for k, v in self.filters.items())))
                if shared in _RECOMMEND_CACHE:
                    self._cache[key] = _RECOMMEND_CACHE[shared]
                    return self._cache[key]
            from deeproot.catalog.recommend import recommend

            try:
                self._cache[key] = recommend(
                    self.path,
                    types=types,
                    categories=self.categories or None,
                    top=3,
                    prefer_functional=prefer_functional,
                    **self.filters,
                )
            except InputError:
                raise  # a bad filter value is the caller's mistake, not a missing catalog
            except DeeprootError as exc:
                self.error = str(exc)
                return None
            if shared is not None:
                with _RECOMMEND_LOCK:
                    if len(_RECOMMEND_CACHE) >= _RECOMMEND_CACHE_MAX:
                        _RECOMMEND_CACHE.pop(next(iter(_RECOMMEND_CACHE)))
                    _RECOMMEND_CACHE[shared] = self._cache[key]
        return self._cache[key]


_BUILD_KO = (
    "`deeproot catalog build`(수집 결과에서) 또는 `deeproot catalog import-csv FILE...`(DeepRoot"
    " CSV에서)로 만드세요"
)
_CATALOG_KO = (
    (
        re.compile(r"no catalog database at (.+?); build it with .*"),
        "카탈로그 데이터베이스 {0} 이(가) 없습니다. ",
    ),
    (
        re.compile(r"(.+?) is not a built deeproot catalog; .*"),
        "{0} 은(는) deeproot 카탈로그가 아닙니다. ",
    ),
    (re.compile(r"the catalog (.+?) holds no products; .*"), "카탈로그 {0} 에 제품이 없습니다. "),
)


def _catalog_problem_ko(message: str) -> str:
    """The catalog's usual 'no catalog' messages in Korean (others stay as they are)."""
    for pattern, ko in _CATALOG_KO:
        m = pattern.fullmatch(message)
        if m:
            return ko.format(*m.groups()) + _BUILD_KO
    return message


def _severity_text(scores: Sequence[SymptomScore], lang: str) -> str:
    parts = []
    for s in scores:
        sym = taxonomy.symptom(s.symptom)
        parts.append(
            f"{sym.ko if lang == 'ko' else sym.en}: {s.label if lang == 'ko' else s.label_en}"
        )
    return ", ".join(parts)


def diagnose(
    photos: Sequence[str | os.PathLike[str] | PhotoInput],
    *,
    models: str | os.PathLike[str] | Bundle | None = None,
    survey_type: str | None = None,
    concerns: Sequence[str] = (),
    categories: Sequence[str] = (),
    device: str = "auto",
    db: str | os.PathLike[str] | None = None,
    lang: str = "ko",
    visit: bool = False,
    force: bool = False,
    guide: str = "curated",
    recommend_products: bool = True,
    free_of: Sequence[str] = (),
    no_allergens: bool = False,
    include_sold_out: bool = False,
) -> DiagnoseReport:
    """Diagnose scalp photos with a model bundle and the three survey answers.

    Args:
        photos: photo files (JPEG, PNG or WebP), or `PhotoInput(name, data)` for photos held in
            memory (uploads); both get the same checks and budgets (docs/diagnose.md).
        models: bundle folder, or a bundle already loaded (a server holding one for every
            request); None: `$DEEPROOT_DATA_DIR/models/default`, else the demo bundle.
        survey_type: survey question 1, `dry`/`oily` (or 건성/지성), or None.
        concerns: survey question 2, symptom keys or Korean labels.
        categories: survey question 3, category keys or labels (empty: all seven).
        device: `auto`, `cpu` or `cuda`.
        db: catalog database (None: `$DEEPROOT_DATA_DIR/catalog.duckdb`).
        lang: `ko` or `en` for notes and the care guide.
        visit: combine all photos into one diagnosis (average of probabilities).
        force: diagnose photos that fail the quality check (the warning stays).
        guide: `curated` (shipped text) or `chat` (OpenAI-compatible endpoint, falls back).
        recommend_products: look products up in the catalog.
        free_of: leave out products carrying any of these ingredient families
            (`sulfate_surfactant`, `silicone`, `paraben`, `mineral_oil`, `synthetic_colour`,
            `fragrance`) or without a readable ingredient list.
        no_allergens: leave out products with an MFDS fragrance allergen.
        include_sold_out: show sold-out products too (marked); by default they are left out.

    Products that state the 탈모 증상 완화 functional claim rank first when the photo shows
    hair loss (severity above 양호).

    Raises:
        InputError: bad option values or no photos; DataError: a bad model bundle. A bad photo
            never raises: it gets status "error" in the report.
    """
    from deeproot.diagnose import images, infer
    from deeproot.diagnose.bundle import installed_bundle_path, load_bundle

    t0 = time.perf_counter()
    if not photos:
        raise InputError("no photos given; pass one or more JPEG, PNG or WebP files")
    check_lang(lang)
    if guide not in GUIDE_SOURCES:
        raise InputError(f"unknown guide source {guide!r}; valid: {', '.join(GUIDE_SOURCES)}")
    survey = rules.survey_type_key(survey_type)
    concern_keys = tuple(dict.fromkeys(taxonomy.symptom(c).key for c in concerns))
    category_keys = tuple(dict.fromkeys(taxonomy.category(c).key for c in categories))
    if isinstance(models, Bundle):
        bundle = models
    else:
        bundle = load_bundle(models if models is not None else installed_bundle_path())
    eng = infer.engine(bundle, device)
    t_model = time.perf_counter()
    # Decode JPEGs with a long side of at least twice the model input (and the quality check's
    # 256 px): a 4000x3000 photo is decoded at 1/8 scale for a 240 px model.
    min_side = max(480, 2 * max(max(m.preprocess.size) for m in bundle.models))

    # One photo at a time: decode -> quality -> model inputs; only the small arrays are kept, so
    # six photos cost what one costs in memory.
    prepared: list[tuple[int, Any]] = []
    results: list[PhotoResult] = []
    for i, p in enumerate(photos):
        name = images.photo_name(p)
        try:
            ph = images.load_photo(p, min_size=min_side)
        except images.PhotoError as exc:
            results.append(PhotoResult(name, "error", error=exc.text(lang)))
            continue
        q = images.quality(ph.image, lang=lang)
        status = "diagnosed" if (q.ok or force) else "withheld"
        results.append(PhotoResult(name, status, None, q.warnings, ph.notes, ph.original_size))
        if status == "diagnosed":
            prepared.append((i, eng.prepare(ph.image)))
        del ph
    t_load = time.perf_counter()

    probs = eng.predict_prepared([x for _, x in prepared])
    t_infer = time.perf_counter()

    warn: list[str] = []
    free = tuple(dict.fromkeys(free_of))
    filters: dict[str, Any] = {
        "free_of": free,
        "no_allergens": bool(no_allergens),
        "include_sold_out": bool(include_sold_out),
    }
    products = _Products(db, category_keys, filters) if recommend_products else None

    def build(scores: tuple[SymptomScore, ...]) -> Diagnosis:
        sev = {s.symptom: s.severity for s in scores}
        st = rules.scalp_type(sev, survey)
        gs = _guides(st.types, lang, guide, _severity_text(scores, lang), warn)
        checks = rules.concern_notes(
            sev, {s.symptom: (s.label, s.label_en) for s in scores}, concern_keys
        )
        hair_loss = sev.get("hair_loss", 0) > 0
        found = products(st.types, prefer_functional=hair_loss) if products else None
        return Diagnosis(scores, st, gs, found, checks)

    def scores_of(pr: dict[str, Any]) -> tuple[SymptomScore, ...]:
        return tuple(score(s, pr[s], bundle.classes) for s in bundle.symptoms)

    visit_dx = None
    if visit and probs:
        import numpy as np

        mean = {s: np.mean([pr[s] for pr in probs], axis=0) for s in bundle.symptoms}
        visit_dx = build(scores_of(mean))
    for (i, _), pr in zip(prepared, probs, strict=True):
        scores = scores_of(pr)
        if visit:
            st = rules.scalp_type({s.symptom: s.severity for s in scores}, survey)
            dx = Diagnosis(scores, st, (), None)
        else:
            dx = build(scores)
        r = results[i]
        results[i] = PhotoResult(r.photo, r.status, r.error, r.warnings, r.notes, r.size, dx)
    t_done = time.perf_counter()

    if bundle.demo:
        warn.insert(0, DEMO_WARNING[lang])
    if products is not None and products.error:
        if lang == "ko":
            warn.append(f"추천 제품 없음: {_catalog_problem_ko(products.error)}")
        else:
            warn.append(f"no product recommendations: {products.error}")
    return DiagnoseReport(
        bundle=str(bundle.path),
        demo=bundle.demo,
        provider=eng.provider,
        classes=bundle.classes,
        lang=lang,
        survey_type=survey,
        concerns=concern_keys,
        categories=category_keys,
        survey_echo=rules.survey_echo(survey, concern_keys, lang),
        photos=tuple(results),
        visit=visit_dx,
        catalog=str(products.path) if products is not None and not products.error else None,
        warnings=tuple(warn),
        disclaimer=disclaimer(lang),
        filters={**filters, "free_of": list(free)},
        timing_ms={
            "model": round((t_model - t0) * 1000, 1),
            "load": round((t_load - t_model) * 1000, 1),
            "infer": round((t_infer - t_load) * 1000, 1),
            "rules_guide_products": round((t_done - t_infer) * 1000, 1),
        },
    )
