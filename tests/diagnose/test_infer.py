"""onnxruntime inference over tiny ONNX bundles built in code (multi-head and per-symptom)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from deeproot.errors import InputError
from deeproot.taxonomy import SEVERITIES_3, SYMPTOM_KEYS

onnx = pytest.importorskip("onnx")
from diagnose_fakes import build_bundle, expected_probs  # noqa: E402

from deeproot.diagnose import infer  # noqa: E402
from deeproot.diagnose.bundle import load_bundle  # noqa: E402
from deeproot.diagnose.preprocess import prepare  # noqa: E402


def _images():
    from PIL import Image

    return [
        Image.new("RGB", (64, 48), (200, 150, 130)),
        Image.new("RGB", (40, 80), (20, 220, 90)),
        Image.new("RGB", (50, 50), (250, 10, 10)),
    ]


@pytest.mark.parametrize("kind", ["multihead", "per_symptom"])
def test_probabilities_match_model_and_sum_to_one(tmp_path: Path, kind: str) -> None:
    bundle = load_bundle(build_bundle(tmp_path / kind, kind=kind))
    eng = infer.Engine(bundle, "cpu")
    assert eng.provider == "CPUExecutionProvider"
    imgs = _images()
    got = eng.predict(imgs)
    assert len(got) == 3
    for img, probs in zip(imgs, got, strict=True):
        want = expected_probs(img)
        assert list(probs) == list(SYMPTOM_KEYS)
        for s in SYMPTOM_KEYS:
            assert probs[s].sum() == pytest.approx(1.0, abs=1e-9)
            np.testing.assert_allclose(probs[s], want[s], rtol=1e-4, atol=1e-6)


def test_matches_raw_onnxruntime_output(tmp_path: Path) -> None:
    import onnxruntime as ort

    root = build_bundle(tmp_path / "b", temperature=2.0)
    bundle = load_bundle(root)
    img = _images()[0]
    sess = ort.InferenceSession(str(root / "multihead.onnx"), providers=["CPUExecutionProvider"])
    x = prepare(img, bundle.models[0].preprocess)[None]
    raw = dict(zip(SYMPTOM_KEYS, sess.run(list(SYMPTOM_KEYS), {"image": x}), strict=True))
    got = infer.Engine(bundle, "cpu").predict([img])[0]
    for s in SYMPTOM_KEYS:
        z = raw[s][0].astype(np.float64) / 2.0
        want = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
        np.testing.assert_allclose(got[s], want, rtol=1e-6)


def test_batch_equals_single(tmp_path: Path) -> None:
    eng = infer.Engine(load_bundle(build_bundle(tmp_path / "b")), "cpu")
    imgs = _images()
    batch = eng.predict(imgs)
    for img, b in zip(imgs, batch, strict=True):
        one = eng.predict([img])[0]
        for s in SYMPTOM_KEYS:
            np.testing.assert_allclose(one[s], b[s], rtol=1e-5)
    assert eng.predict([]) == []


def test_sessions_created_once_per_process(tmp_path: Path, monkeypatch) -> None:
    import onnxruntime as ort

    infer.clear_sessions()
    made = []
    real = ort.InferenceSession

    def counting(path, sess_options=None, providers=None):
        made.append((Path(path).name, sess_options))
        return real(path, sess_options=sess_options, providers=providers)

    monkeypatch.setattr(ort, "InferenceSession", counting)
    bundle = load_bundle(build_bundle(tmp_path / "p", kind="per_symptom"))
    for _ in range(3):
        infer.Engine(bundle, "cpu").predict(_images()[:1])
    assert sorted(n for n, _ in made) == sorted(f"{s}.onnx" for s in SYMPTOM_KEYS)
    opts = made[0][1]
    assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert opts.inter_op_num_threads == 1 and opts.intra_op_num_threads >= 1


def test_softmax_and_score() -> None:
    p = infer.softmax(np.array([[1.0, 2.0, 3.0]]), temperature=2.0)[0]
    e = np.exp(np.array([0.5, 1.0, 1.5]))
    np.testing.assert_allclose(p, e / e.sum())
    sc = infer.score("dandruff", [0.2, 0.5, 0.3], SEVERITIES_3)
    assert (sc.severity, sc.label, sc.label_en) == (1, "경증·중등도", "mild-moderate")
    assert infer.score("dandruff", [0.4, 0.4, 0.2], SEVERITIES_3).severity == 0  # tie -> milder


def test_devices(monkeypatch) -> None:
    import onnxruntime as ort

    assert infer.providers_for("cpu") == ["CPUExecutionProvider"]
    with pytest.raises(InputError, match="unknown device 'tpu'; valid: auto, cpu, cuda"):
        infer.providers_for("tpu")
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    assert infer.providers_for("auto") == ["CPUExecutionProvider"]
    with pytest.raises(InputError, match="--device cuda: this onnxruntime has no CUDA provider"):
        infer.providers_for("cuda")
    monkeypatch.setattr(
        ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"]
    )
    assert infer.providers_for("auto") == ["CUDAExecutionProvider", "CPUExecutionProvider"]


@pytest.mark.gpu
def test_cuda_provider_runs(tmp_path: Path) -> None:
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("onnxruntime has no CUDA provider here (install deeproot[gpu] on a GPU box)")
    eng = infer.Engine(load_bundle(build_bundle(tmp_path / "b")), "cuda")
    assert eng.provider == "CUDAExecutionProvider"
    got = eng.predict(_images())
    assert all(abs(p[s].sum() - 1) < 1e-9 for p in got for s in SYMPTOM_KEYS)


def test_int8_weight_bundle_folds_weights_with_same_outputs() -> None:
    from PIL import Image

    from deeproot.diagnose.bundle import DEMO_BUNDLE

    bundle = load_bundle(DEMO_BUNDLE)
    assert {m.dtype for m in bundle.models} == {"int8"}
    folded = infer.Engine(bundle, "cpu")
    kept = infer.Engine(bundle, "cpu", int8_compute=True)
    assert folded._sessions[0] is not kept._sessions[0]
    img = Image.open(DEMO_BUNDLE.parents[1] / "demo_photo.jpg").convert("RGB")
    a, b = folded.predict([img])[0], kept.predict([img])[0]
    for s in SYMPTOM_KEYS:
        np.testing.assert_allclose(a[s], b[s], atol=1e-4)


@pytest.mark.parametrize("value", ["1000", "0", "-2", "two", "1.5", "nan"])
def test_deeproot_threads_validated(monkeypatch, value: str) -> None:
    import os

    from deeproot.errors import InputError

    monkeypatch.setenv("DEEPROOT_THREADS", value)
    hi = 4 * (os.cpu_count() or 1)
    with pytest.raises(
        InputError, match=rf"^DEEPROOT_THREADS must be a whole number from 1 to {hi}"
    ):
        infer._threads()


def test_deeproot_threads_accepted(monkeypatch) -> None:
    import os

    monkeypatch.setenv("DEEPROOT_THREADS", " 3 ")
    assert infer._threads() == 3
    monkeypatch.setenv("DEEPROOT_THREADS", str(4 * (os.cpu_count() or 1)))
    assert infer._threads() == 4 * (os.cpu_count() or 1)
    monkeypatch.delenv("DEEPROOT_THREADS")
    assert 1 <= infer._threads() <= 8
