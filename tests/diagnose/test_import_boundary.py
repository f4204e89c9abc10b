"""The inference package never imports torch: the `infer` extra is enough to diagnose."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import deeproot.diagnose

INFERENCE_MODULES = sorted(
    f"deeproot.diagnose.{m.name}" for m in pkgutil.iter_modules(deeproot.diagnose.__path__)
)


def _imported_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print('\\n'.join(sys.modules))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return set(out.split())


def test_inference_modules_are_the_expected_ones() -> None:
    assert "deeproot.diagnose.service" in INFERENCE_MODULES
    assert "deeproot.diagnose.train" not in INFERENCE_MODULES
    assert "deeproot.diagnose.export" not in INFERENCE_MODULES


def test_importing_and_running_inference_never_imports_torch() -> None:
    code = "\n".join(f"import {m}" for m in INFERENCE_MODULES)
    # running a diagnosis with the demo bundle pulls in onnxruntime, numpy and Pillow, never torch
    code += (
        "\nfrom deeproot.diagnose.service import diagnose"
        "\nfrom deeproot.diagnose.bundle import DEMO_BUNDLE"
        "\nimport importlib.resources as r"
        "\nphoto = r.files('deeproot') / 'data' / 'demo_photo.jpg'"
        "\nwith r.as_file(photo) as p: diagnose([p], models=DEMO_BUNDLE, recommend_products=False)"
    )
    mods = _imported_after(code)
    assert "onnxruntime" in mods
    assert not {m for m in mods if m == "torch" or m.startswith(("torch.", "torchvision"))}


def test_training_imports_torch_only_where_it_trains() -> None:
    mods = _imported_after("import deeproot.training.dataset, deeproot.training.synthetic")
    assert "torch" not in mods
