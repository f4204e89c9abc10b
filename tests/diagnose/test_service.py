"""`diagnose()`: per-photo results, bad photos beside good ones, visit, survey, guide, products."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import ImageFilter

from deeproot.diagnose import rules
from deeproot.diagnose.service import JSON_SCHEMA, diagnose
from deeproot.errors import DataError, InputError
from deeproot.taxonomy import SYMPTOM_KEYS

pytest.importorskip("onnx")


import diagnose_fakes as fakes  # noqa: E402


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return fakes.build_bundle(tmp_path_factory.mktemp("b") / "multihead")


@pytest.fixture()
def photos(tmp_path: Path) -> dict[str, Path]:
    out = {}
    out["a"] = tmp_path / "a.jpg"
    fakes.scalp_image(seed=1).save(out["a"], format="JPEG", quality=92)
    out["b"] = tmp_path / "b.png"
    fakes.scalp_image(seed=2).save(out["b"])
    out["bad"] = tmp_path / "bad.jpg"
    out["bad"].write_bytes(b"not a photo")
    out["blurry"] = tmp_path / "blurry.jpg"
    fakes.scalp_image(seed=3).filter(ImageFilter.GaussianBlur(6)).save(out["blurry"])
    return out


def test_good_and_bad_photos(bundle: Path, photos: dict[str, Path], tmp_path: Path) -> None:
    rep = diagnose(
        [photos["a"], photos["bad"], tmp_path, photos["b"]],
        models=bundle,
        survey_type="건성",
        concerns=("탈모",),
        categories=("shampoo",),
        device="cpu",
        db=tmp_path / "none.duckdb",
        lang="en",
    )
    assert [p.status for p in rep.photos] == ["diagnosed", "error", "error", "diagnosed"]
    assert (
        rep.photos[1].error
        == f"{photos['bad']}: not an image; deeproot reads JPEG, PNG or WebP photos"
    )
    assert (
        rep.photos[2].error
        == f"{tmp_path}: is a folder, not a photo; pass the photo files inside it"
    )
    assert rep.exit_code == 3
    assert (rep.demo, rep.provider, rep.survey_type, rep.concerns) == (
        True,
        "CPUExecutionProvider",
        "dry",
        ("hair_loss",),
    )
    assert rep.warnings[0].startswith("results come from a DEMO model")
    assert rep.warnings[1].startswith(
        f"no product recommendations: no catalog database at {tmp_path}"
    )
    assert "deeproot catalog build" in rep.warnings[1]
    for p in (rep.photos[0], rep.photos[3]):
        dx = p.diagnosis
        assert [s.symptom for s in dx.symptoms] == list(SYMPTOM_KEYS)
        for s in dx.symptoms:
            assert sum(s.probabilities) == pytest.approx(1.0, abs=1e-9)
            assert s.severity == int(np.argmax(s.probabilities))
        expected = rules.scalp_type({s.symptom: s.severity for s in dx.symptoms}, "dry")
        assert dx.scalp == expected
        assert [g.type for g in dx.guides] == list(expected.types)
        assert dx.products is None
        assert [n.code[:7] for n in dx.concern_checks] == ["concern"]
        assert dx.concern_checks[0].en.startswith("your concern hair loss: the photo shows ")


def test_probabilities_match_model(bundle: Path, photos: dict[str, Path]) -> None:
    from PIL import Image

    rep = diagnose([photos["b"]], models=bundle, device="cpu", recommend_products=False)
    want = fakes.expected_probs(Image.open(photos["b"]).convert("RGB"))
    for s in rep.photos[0].diagnosis.symptoms:
        np.testing.assert_allclose(s.probabilities, want[s.symptom], rtol=1e-4, atol=1e-6)
    assert rep.exit_code == 0 and rep.warnings == (rep.warnings[0],)


def test_visit_averages_probabilities(bundle: Path, photos: dict[str, Path]) -> None:
    single = [
        diagnose([photos[k]], models=bundle, device="cpu", recommend_products=False)
        for k in ("a", "b")
    ]
    rep = diagnose(
        [photos["a"], photos["b"]],
        models=bundle,
        device="cpu",
        visit=True,
        recommend_products=False,
    )
    assert rep.visit is not None
    for i, s in enumerate(rep.visit.symptoms):
        mean = (
            np.array(single[0].photos[0].diagnosis.symptoms[i].probabilities)
            + np.array(single[1].photos[0].diagnosis.symptoms[i].probabilities)
        ) / 2
        np.testing.assert_allclose(s.probabilities, mean, rtol=1e-9)
    assert rep.visit.guides and all(p.diagnosis.guides == () for p in rep.photos)
    assert rep.to_json()["visit"]["scalp_types"] == list(rep.visit.scalp.types)


def test_quality_withholds_unless_forced(bundle: Path, photos: dict[str, Path]) -> None:
    rep = diagnose([photos["blurry"]], models=bundle, device="cpu", recommend_products=False)
    p = rep.photos[0]
    assert (p.status, p.diagnosis, [c for c, _ in p.warnings]) == ("withheld", None, ["blurry"])
    assert rep.exit_code == 3
    rep = diagnose(
        [photos["blurry"]], models=bundle, device="cpu", force=True, recommend_products=False
    )
    assert rep.photos[0].status == "diagnosed" and rep.photos[0].warnings[0][0] == "blurry"
    assert rep.exit_code == 0


def test_json_schema(bundle: Path, photos: dict[str, Path], tmp_path: Path) -> None:
    rep = diagnose(
        [photos["a"], photos["bad"]],
        models=bundle,
        device="cpu",
        survey_type="oily",
        db=tmp_path / "x.duckdb",
    )
    j = json.loads(json.dumps(rep.to_json(), ensure_ascii=False))
    assert j["schema"] == JSON_SCHEMA == "deeproot.diagnose/1"
    assert set(j) == {
        "schema",
        "model",
        "survey",
        "filters",
        "lang",
        "photos",
        "visit",
        "catalog",
        "warnings",
        "disclaimer",
        "exit_code",
    }
    assert j["model"] == {
        "bundle": str(bundle.resolve()),
        "demo": True,
        "provider": "CPUExecutionProvider",
        "classes": ["양호", "경증·중등도", "중증"],
    }
    ph = j["photos"][0]
    assert set(ph) == {"photo", "status", "error", "warnings", "notes", "size", "diagnosis"}
    dx = ph["diagnosis"]
    assert set(dx) == {
        "symptoms",
        "scalp_types",
        "scalp_types_ko",
        "rule",
        "top_symptoms",
        "survey_agrees",
        "notes",
        "concern_checks",
        "care_guide",
        "products",
    }
    assert [s["symptom"] for s in dx["symptoms"]] == list(SYMPTOM_KEYS)
    assert set(dx["symptoms"][0]) == {
        "symptom",
        "symptom_ko",
        "severity",
        "label",
        "label_en",
        "probabilities",
    }
    assert j["photos"][1]["status"] == "error" and j["photos"][1]["diagnosis"] is None
    assert (j["exit_code"], j["catalog"]) == (3, None)


def test_products_from_catalog(
    bundle: Path, photos: dict[str, Path], tmp_path: Path, crawl_dir: Path
) -> None:
    from deeproot.catalog.build import import_csv

    db = tmp_path / "catalog.duckdb"
    import_csv([crawl_dir / "scaler_ingredient_data2_add_type.csv"], db)
    rep = diagnose(
        [photos["a"]], models=bundle, device="cpu", categories=("scalp_pack_scaler",), db=db
    )
    dx = rep.photos[0].diagnosis
    assert rep.catalog == str(db)
    assert dx.products is not None
    assert dx.products.types == dx.scalp.types
    (cat,) = dx.products.categories
    assert cat.category == "scalp_pack_scaler" and 0 < len(cat.picks) <= 3
    assert cat.n_total == 48
    # the same question is answered from the process's cache…
    again = diagnose(
        [photos["a"]], models=bundle, device="cpu", categories=("scalp_pack_scaler",), db=db
    )
    assert again.photos[0].diagnosis.products is dx.products
    # …but never once the catalog file is replaced (a rebuild swaps a new file in by rename)
    other = tmp_path / "other.duckdb"
    import_csv([crawl_dir / "bar_ingredient_data2_add_type.csv",
                crawl_dir / "scaler_ingredient_data2_add_type.csv"], other)
    os.replace(other, db)
    fresh = diagnose(
        [photos["a"]], models=bundle, device="cpu", categories=("scalp_pack_scaler",), db=db
    )
    assert fresh.photos[0].diagnosis.products is not dx.products


def test_chat_failure_falls_back_to_curated(
    bundle: Path, photos: dict[str, Path], monkeypatch
) -> None:
    monkeypatch.setenv("DEEPROOT_CHAT_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("DEEPROOT_CHAT_MODEL", "m")
    monkeypatch.setenv("DEEPROOT_CHAT_TIMEOUT", "2")
    rep = diagnose(
        [photos["a"]],
        models=bundle,
        device="cpu",
        guide="chat",
        recommend_products=False,
        lang="en",
    )
    assert all(g.source == "curated" for g in rep.photos[0].diagnosis.guides)
    assert rep.warnings[1].startswith("chat guide failed (chat endpoint http://127.0.0.1:9/v1")
    assert rep.warnings[1].endswith("showing the curated guide")


@pytest.mark.parametrize(
    ("env", "why"),
    [
        ({"DEEPROOT_CHAT_TIMEOUT": "nan"}, "DEEPROOT_CHAT_TIMEOUT must be a number"),
        ({"DEEPROOT_CHAT_BASE_URL": "http://[::1/v1"}, "DEEPROOT_CHAT_BASE_URL is not a valid"),
        ({"DEEPROOT_CHAT_BASE_URL": "http://h:99999999/v1"}, "DEEPROOT_CHAT_BASE_URL is not a"),
    ],
)
def test_bad_chat_settings_fall_back_to_curated(
    bundle: Path, photos: dict[str, Path], monkeypatch, env: dict[str, str], why: str
) -> None:
    monkeypatch.setenv("DEEPROOT_CHAT_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("DEEPROOT_CHAT_MODEL", "m")
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    rep = diagnose(
        [photos["a"]], models=bundle, device="cpu", guide="chat", recommend_products=False
    )
    assert all(g.source == "curated" for g in rep.photos[0].diagnosis.guides)
    assert rep.warnings[1].startswith(f"채팅 가이드를 받지 못해 ({why}")  # lang ko, the default


def test_installed_bundle_used_without_models(
    bundle: Path, photos: dict[str, Path], tmp_path: Path, monkeypatch
) -> None:
    import shutil

    data = tmp_path / "data"
    shutil.copytree(bundle, data / "models" / "default")
    monkeypatch.setenv("DEEPROOT_DATA_DIR", str(data))
    rep = diagnose([photos["a"]], device="cpu", recommend_products=False)
    assert rep.bundle == str((data / "models" / "default").resolve())


def test_bad_options(bundle: Path, photos: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no photos given"):
        diagnose([], models=bundle)
    with pytest.raises(InputError, match="unknown language 'de'"):
        diagnose([photos["a"]], models=bundle, lang="de")
    with pytest.raises(InputError, match="unknown symptom 'itch'"):
        diagnose([photos["a"]], models=bundle, concerns=("itch",))
    with pytest.raises(InputError, match="unknown category 'soap'"):
        diagnose([photos["a"]], models=bundle, categories=("soap",))
    with pytest.raises(InputError, match="unknown guide source 'gpt'"):
        diagnose([photos["a"]], models=bundle, guide="gpt")
    with pytest.raises(DataError, match="does not exist"):
        diagnose([photos["a"]], models=tmp_path / "nobundle")


def test_chat_guide_through_service(bundle: Path, photos: dict[str, Path], monkeypatch) -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append(body)
            answer = {"choices": [{"message": {"content": f"guide {len(seen)}"}}]}
            data = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        monkeypatch.setenv("DEEPROOT_CHAT_BASE_URL", f"http://127.0.0.1:{server.server_port}")
        monkeypatch.setenv("DEEPROOT_CHAT_MODEL", "stub")
        rep = diagnose(
            [photos["a"]],
            models=bundle,
            device="cpu",
            guide="chat",
            lang="en",
            recommend_products=False,
        )
    finally:
        server.shutdown()
        server.server_close()
    guides = rep.photos[0].diagnosis.guides
    assert [g.source for g in guides] == ["chat"] * len(guides)
    assert [g.text for g in guides] == [f"guide {i + 1}" for i in range(len(guides))]
    assert len(seen) == len(rep.photos[0].diagnosis.scalp.types)
    assert all(b["model"] == "stub" for b in seen)
    assert "Symptoms: fine dead-skin flakes: " in seen[0]["messages"][1]["content"]


def test_a_loaded_bundle_gives_the_same_report_as_its_folder(bundle: Path, photos) -> None:
    """A server passes the bundle it holds instead of its folder (no bundle.json per request)."""
    from deeproot.diagnose.bundle import load_bundle

    kw = {"survey_type": "지성", "device": "cpu", "recommend_products": False, "lang": "en"}
    by_path = diagnose([photos["a"]], models=bundle, **kw)
    by_object = diagnose([photos["a"]], models=load_bundle(bundle), **kw)
    assert by_object.to_json() == by_path.to_json()
