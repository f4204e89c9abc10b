"""Shared fakes for the diagnose tests: tiny ONNX bundles built in code, synthetic photos."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from PIL import Image, ImageDraw

from deeproot.diagnose.preprocess import Preprocess, prepare
from deeproot.taxonomy import SEVERITIES_3, SYMPTOM_KEYS

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


def scalp_image(w: int = 640, h: int = 480, seed: int = 0) -> Image.Image:
    """A synthetic scalp close-up: noisy skin tone crossed by dark hairs."""
    rng = np.random.default_rng(seed)
    arr = np.array([205, 160, 140], np.float32) + rng.normal(0, 12, (h, w, 3))
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(40):
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        end = (x + int(rng.integers(-200, 200)), y + int(rng.integers(-200, 200)))
        draw.line([(x, y), end], fill=(40, 30, 25), width=int(rng.integers(2, 5)))
    return img
