"""onnxruntime inference over tiny ONNX bundles built in code (multi-head and per-symptom)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from deeproot.errors import InputError
from deeproot.taxonomy import SEVERITIES_3, SYMPTOM_KEYS

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from deeproot.diagnose import infer  # noqa: E402
from deeproot.diagnose.bundle import load_bundle  # noqa: E402
from deeproot.diagnose.preprocess import Preprocess, prepare  # noqa: E402

SIZE = 32


def weights(seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per-symptom linear head over the three channel means: W [3, 3], b [3]."""
    rng = np.random.default_rng(seed)
    return {
        s: (rng.normal(0, 3, (3, 3)).astype(np.float32), rng.normal(0, 1, 3).astype(np.float32))
        for s in SYMPTOM_KEYS
    }


def _graph(symptoms: list[str], w: dict, name: str) -> onnx.ModelProto:
    nodes = [
        helper.make_node("GlobalAveragePool", ["image"], ["gap"]),
        helper.make_node("Flatten", ["gap"], ["feat"], axis=1),
    ]
    inits, outs = [], []
    for s in symptoms:
        wm, b = w[s]
        inits += [numpy_helper.from_array(wm, f"W_{s}"), numpy_helper.from_array(b, f"b_{s}")]
        nodes += [
            helper.make_node("MatMul", ["feat", f"W_{s}"], [f"mm_{s}"]),
            helper.make_node("Add", [f"mm_{s}", f"b_{s}"], [s]),
        ]
        outs.append(helper.make_tensor_value_info(s, TensorProto.FLOAT, ["batch", 3]))
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, SIZE, SIZE])],
        outs,
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def build_bundle(
    root: Path,
    *,
    kind: str = "multihead",
    demo: bool = True,
    seed: int = 0,
    temperature: float = 1.5,
    grayscale: bool = False,
) -> Path:
    """Write a tiny bundle following the bundle spec; returns its folder."""
    root.mkdir(parents=True, exist_ok=True)
    w = weights(seed)
    pre = Preprocess(size=(SIZE, SIZE), grayscale=grayscale).to_json()
    groups = [list(SYMPTOM_KEYS)] if kind == "multihead" else [[s] for s in SYMPTOM_KEYS]
    models = []
    for group in groups:
        file = "multihead.onnx" if kind == "multihead" else f"{group[0]}.onnx"
        onnx.save(_graph(group, w, file), str(root / file))
        models.append(
            {
                "file": file,
                "symptoms": group,
                "input": "image",
                "outputs": {s: s for s in group},
                "preprocess": pre,
                "temperature": dict.fromkeys(group, temperature),
                "metrics": {},
                "dtype": "fp32",
            }
        )
    meta = {
        "format": "deeproot-bundle/1",
        "demo": demo,
        "created": "2026-11-26T15:00:00Z",
        "code_version": "0.1.0+gtest",
        "dataset": {"name": "synthetic", "index_sha256": "", "n_train": 0, "n_val": 0},
        "classes": list(SEVERITIES_3),
        "models": models,
    }
    (root / "bundle.json").write_text(json.dumps(meta, ensure_ascii=False), "utf-8")
    return root


def expected_probs(img, seed: int = 0, temperature: float = 1.5) -> dict[str, np.ndarray]:
    """The tiny model's output computed in numpy from the shared preprocessing."""
    x = prepare(img, Preprocess(size=(SIZE, SIZE))).mean(axis=(1, 2))
    out = {}
    for s, (wm, b) in weights(seed).items():
        z = (x @ wm + b) / temperature
        e = np.exp(z - z.max())
        out[s] = e / e.sum()
    return out


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
