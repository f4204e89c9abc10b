"""`run_demo`: the whole flow offline on a fresh install (issue 6, point 4).

Serves the fictional sample catalog (`data/demo_catalog.json`) as an imitation Olive Young site on
127.0.0.1 (the crawler's offline site generator, real markup), crawls it with the real crawler
into a data folder, builds the DuckDB catalog, then diagnoses the bundled synthetic photo
(`data/demo_photo.jpg`) with the demo bundle and a sample survey.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from deeproot.errors import DataError

log = logging.getLogger(__name__)

# The sample survey: dry scalp, worried about hair loss, wants shampoo and a scalp tonic.
SURVEY_TYPE = "건성"
CONCERNS = ("hair_loss",)
CATEGORIES = ("shampoo", "scalp_tonic")
PHOTO_VALUES = (0, 3, 1, 0, 0, 1)  # value_1..value_6 the demo photo was drawn with
PHOTO_SEED = 2026


def _data_file(name: str) -> Path:
    return Path(str(resources.files("deeproot.data").joinpath(name)))


def demo_products() -> list[Any]:
    """The fictional sample catalog as the site generator's SiteProduct values."""
    from deeproot.crawler.testsite import SiteProduct

    try:
        data = json.loads(_data_file("demo_catalog.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"the shipped demo catalog cannot be read ({exc}); reinstall") from exc
    fields = set(SiteProduct.__dataclass_fields__)
    return [SiteProduct(**{k: v for k, v in p.items() if k in fields}) for p in data["products"]]


def make_demo_photo(path: str | os.PathLike[str]) -> Path:
    """Draw the demo photo with the synthetic generator (how `data/demo_photo.jpg` was made)."""
    import numpy as np

    from deeproot.training.synthetic import render

    out = Path(path)
    render(PHOTO_VALUES, np.random.default_rng(PHOTO_SEED)).save(out, format="JPEG", quality=85)
    return out


def run_demo(
    data_dir: str | os.PathLike[str] | None = None,
    *,
    lang: str = "ko",
    models: str | os.PathLike[str] | None = None,
    device: str = "cpu",
    progress: Callable[[str], None] | None = None,
) -> Any:
    """Serve, crawl, build, diagnose; returns the DiagnoseReport.

    Args:
        data_dir: where the crawl and catalog go (kept); None: a scratch folder, removed after.
        lang: `ko` or `en`.
        models: model bundle (default: the shipped demo bundle).
        device: onnxruntime device.
        progress: called with one line per step.
    """
    from deeproot.catalog.recommend import close_connections
    from deeproot.diagnose.bundle import DEMO_BUNDLE
    from deeproot.diagnose.guide import check_lang
    from deeproot.files import scratch_dir

    say = progress or (lambda msg: None)
    check_lang(lang)
    bundle = Path(models) if models is not None else DEMO_BUNDLE
    if not (bundle / "bundle.json").is_file():
        raise DataError(
            f"the demo model bundle is missing at {bundle}; reinstall deeproot or pass a bundle"
        )
    # Scratch space lives under deeproot's one scratch root, named after this process: removed on
    # exit, and a killed run's folder is swept at the next start (no deeproot-demo-* litter).
    with contextlib.ExitStack() as stack:
        if data_dir is None:
            root = stack.enter_context(scratch_dir("demo"))
        else:
            root = Path(data_dir)
            root.mkdir(parents=True, exist_ok=True)
        stack.callback(close_connections)  # catalog connections closed before the folder goes
        return _run(root, lang, bundle, device, _translated(say, lang))


_KO = (
    (
        re.compile(r"serving (\d+) fictional sample products on 127.0.0.1"),
        "가상의 샘플 제품 {0}개를 127.0.0.1 에서 제공합니다",
    ),
    (re.compile(r"crawling (\S+) into (.+)"), "{0} 을(를) {1} 에 수집합니다"),
    (re.compile(r"crawled (\d+) products in (\S+) s"), "제품 {0}개를 {1}초에 수집했습니다"),
    (re.compile(r"catalog (.+): (\d+) products"), "카탈로그 {0}: 제품 {1}개"),
    (
        re.compile(r"diagnosing (\S+) with survey: (\S+), concern (.+), categories (.+)"),
        "{0} 을(를) 설문(두피 타입 {1}, 고민 {2}, 카테고리 {3})과 함께 진단합니다",
    ),
    (re.compile(r"done in (\S+) s"), "{0}초 만에 끝났습니다"),
)


def _translated(say: Callable[[str], None], lang: str) -> Callable[[str], None]:
    """`say` in the run's language: the progress lines are written in English and mapped."""
    if lang != "ko":
        return say

    def ko(msg: str) -> None:
        for pattern, text in _KO:
            m = pattern.fullmatch(msg)
            if m:
                say(text.format(*m.groups()))
                return
        say(msg)

    return ko


def _run(root: Path, lang: str, bundle: Path, device: str, say: Callable[[str], None]) -> Any:
    from deeproot.catalog.build import build
    from deeproot.crawler import make_settings, run_crawl
    from deeproot.crawler.testsite import build_site, serve
    from deeproot.diagnose.service import diagnose
    from deeproot.files import scratch_dir

    t0 = time.perf_counter()
    products = demo_products()
    with scratch_dir("demo-site") as site_dir:
        build_site(products, site_dir)
        say(f"serving {len(products)} fictional sample products on 127.0.0.1")
        with serve(site_dir) as site:
            settings = make_settings(
                out=root,
                base_url=site.base_url,
                delay=0.0,
                timeout=10.0,
                retries=1,
                backoff=0.0,
            )
            say(f"crawling {site.base_url} into {root}")
            report = run_crawl(settings)
    problem = report.problem()
    if problem:
        raise DataError(f"demo crawl failed: {problem}")
    say(f"crawled {report.records} products in {report.duration_s:.1f} s")
    db = root / "catalog.duckdb"
    rep = build(root, db)
    say(f"catalog {db}: {rep.n_products} products")
    photo = _data_file("demo_photo.jpg")
    say(
        f"diagnosing {photo.name} with survey: {SURVEY_TYPE}, concern "
        f"{', '.join(CONCERNS)}, categories {', '.join(CATEGORIES)}"
    )
    result = diagnose(
        [photo],
        models=bundle,
        survey_type=SURVEY_TYPE,
        concerns=CONCERNS,
        categories=CATEGORIES,
        device=device,
        db=db,
        lang=lang,
    )
    say(f"done in {time.perf_counter() - t0:.1f} s")
    return result
