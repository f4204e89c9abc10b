"""`deeproot demo` end to end in a subprocess, and the shipped demo data it relies on."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from deeproot.demo import CATEGORIES, demo_products
from deeproot.diagnose.bundle import DEMO_BUNDLE
from deeproot.taxonomy import CATEGORY_KEYS


def _tiny_bundle(tmp: Path) -> Path:
    pytest.importorskip("onnx")
    import diagnose_fakes

    return diagnose_fakes.build_bundle(tmp / "bundle")


def test_demo_catalog_is_fictional_with_real_ingredient_names(shared_dir: Path) -> None:
    products = demo_products()
    assert 40 <= len(products) <= 60
    assert {p.category for p in products} == set(CATEGORY_KEYS)
    assert all(p.name.startswith("[데모] ") for p in products)
    assert len({p.goods_no for p in products}) == len(products)
    with (shared_dir / "data" / "mfds_cosmetic_ingredients.csv").open(encoding="utf-8") as fh:
        mfds = {row["name_ko"] for row in csv.DictReader(fh)}
    for p in products:
        for name in p.ingredients_text.split(", "):
            assert name in mfds, (p.goods_no, name)


def test_demo_catalog_serves_every_diagnosed_type() -> None:
    from deeproot.ingredients import Tagger

    tagger = Tagger()
    found: dict[str, set[str]] = {}
    for p in demo_products():
        for t in tagger.tag(p.ingredients_text).types:
            found.setdefault(t, set()).add(p.category)
    # every ingredient-table type, in every category
    assert set(found) == {"지성", "건성", "민감성", "비듬", "탈모", "지루성"}
    assert all(cats == set(CATEGORY_KEYS) for cats in found.values()), found


def test_demo_end_to_end_subprocess(tmp_path: Path) -> None:
    args = [sys.executable, "-m", "deeproot.cli.main", "demo", "--json", "--lang", "en"]
    shipped = (DEMO_BUNDLE / "bundle.json").is_file()
    if not shipped:
        args += ["--models", str(_tiny_bundle(tmp_path))]
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = dict(
        os.environ,
        COLUMNS="200",
        DEEPROOT_DATA_DIR=str(tmp_path / "unused"),
        TMPDIR=str(scratch),
    )
    proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    err = proc.stderr.splitlines()
    assert "!! DEMO MODEL: these results come from a model trained on SYNTHETIC images." in err
    assert err[0] == "demo: serving 49 fictional sample products on 127.0.0.1"
    assert any(line.startswith("demo: crawled 49 products in ") for line in err)
    assert any(line.endswith("catalog.duckdb: 49 products") for line in err)
    rep = json.loads(proc.stdout)
    assert rep["schema"] == "deeproot.diagnose/1"
    assert rep["survey"] == {
        "scalp_type": "dry",
        "concerns": ["hair_loss"],
        "categories": list(CATEGORIES),
        "echo": "you chose a dry scalp with hair loss; the photo analysis will check this.",
    }
    (photo,) = rep["photos"]
    assert photo["photo"].endswith("demo_photo.jpg") and photo["status"] == "diagnosed"
    dx = photo["diagnosis"]
    assert dx["care_guide"] and dx["care_guide"][0]["lang"] == "en"
    cats = dx["products"]["categories"]
    assert [c["category"] for c in cats] == list(CATEGORIES)
    for c in cats:
        assert c["n_total"] == 7 and 1 <= len(c["picks"]) <= 3
        assert all(p["name"].startswith("[데모] ") for p in c["picks"])
    assert not (tmp_path / "unused").exists()  # the demo never writes to the data dir
    # scratch space only under the one scratch root, and nothing left in it after the run
    assert not [p.name for p in scratch.iterdir() if p.name.startswith("deeproot-demo")]
    assert list((scratch / f"deeproot-{os.getuid()}").iterdir()) == []
    if shipped:
        # The demo photo is drawn with 피지과다 중증: the demo model must read it so, and the
        # sample survey (dry) must be flagged as disagreeing.
        sev = {s["symptom"]: s["severity"] for s in dx["symptoms"]}
        assert sev["excess_sebum"] == 2
        assert dx["scalp_types"] == ["oily"] and dx["survey_agrees"] is False
        assert dx["notes"][0]["text"] == "you chose dry, the photo indicates oily"


def test_demo_photo_is_the_synthetic_render(tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image

    from deeproot.demo import _data_file, make_demo_photo
    from deeproot.diagnose.images import load_photo, quality

    shipped = load_photo(_data_file("demo_photo.jpg"))
    again = np.asarray(Image.open(make_demo_photo(tmp_path / "p.jpg")).convert("RGB"), float)
    assert shipped.image.size == (640, 480)
    assert np.abs(np.asarray(shipped.image, float) - again).mean() < 2.0
    assert quality(shipped.image).ok


def test_killed_demo_leaves_no_litter(tmp_path: Path) -> None:
    """kill -9 mid-run: nothing named deeproot-demo-* in the temp dir; the next start sweeps."""
    import signal
    import time

    args = [sys.executable, "-m", "deeproot.cli.main", "demo", "--json"]
    if not (DEMO_BUNDLE / "bundle.json").is_file():
        args += ["--models", str(_tiny_bundle(tmp_path))]
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = dict(os.environ, TMPDIR=str(scratch), DEEPROOT_DATA_DIR=str(tmp_path / "d"))
    proc = subprocess.Popen(args, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline().decode()
        assert line.startswith("demo: 가상의 샘플 제품 49개를 127.0.0.1 에서 제공합니다"), line
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    root = scratch / f"deeproot-{os.getuid()}"
    assert not [p.name for p in scratch.iterdir() if p.name.startswith("deeproot-demo")]
    left = sorted(p.name for p in root.iterdir())
    assert left and all(n.startswith(("demo-", "demo-site-")) for n in left), left
    assert all(f"-{proc.pid}-" in n for n in left)
    time.sleep(0.1)
    sweep = subprocess.run(
        [sys.executable, "-c", "from deeproot.files import sweep_scratch; print(sweep_scratch())"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert sweep.stdout.strip() == str(len(left))
    assert list(root.iterdir()) == []


def test_progress_lines_follow_the_language() -> None:
    from deeproot.demo import _translated

    got: list[str] = []
    say = _translated(got.append, "ko")
    for msg in (
        "serving 49 fictional sample products on 127.0.0.1",
        "crawling http://127.0.0.1:4000 into /tmp/x",
        "crawled 49 products in 4.2 s",
        "catalog /tmp/x/catalog.duckdb: 49 products",
        "diagnosing demo_photo.jpg with survey: 건성, concern hair_loss, categories shampoo, x",
        "done in 7.1 s",
    ):
        say(msg)
    assert got == [
        "가상의 샘플 제품 49개를 127.0.0.1 에서 제공합니다",
        "http://127.0.0.1:4000 을(를) /tmp/x 에 수집합니다",
        "제품 49개를 4.2초에 수집했습니다",
        "카탈로그 /tmp/x/catalog.duckdb: 제품 49개",
        "demo_photo.jpg 을(를) 설문(두피 타입 건성, 고민 hair_loss, 카테고리 shampoo, x)과 함께"
        " 진단합니다",
        "7.1초 만에 끝났습니다",
    ]
    english = got.append
    assert _translated(english, "en") is english
