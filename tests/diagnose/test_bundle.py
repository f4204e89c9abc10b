"""bundle.json schema: a valid bundle loads; every kind of damage is one DataError line."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from deeproot.diagnose.bundle import DEMO_BUNDLE, installed_bundle_path, load_bundle
from deeproot.errors import DataError
from deeproot.taxonomy import SYMPTOM_KEYS

VALID = {
    "format": "deeproot-bundle/1",
    "demo": True,
    "created": "2026-11-26T15:00:00Z",
    "code_version": "0.1.0+gabc",
    "dataset": {"name": "synthetic", "index_sha256": "0" * 64, "n_train": 10, "n_val": 5},
    "classes": ["양호", "경증·중등도", "중증"],
    "models": [
        {
            "file": "multihead.onnx",
            "symptoms": list(SYMPTOM_KEYS),
            "input": "image",
            "outputs": {k: k for k in SYMPTOM_KEYS},
            "preprocess": {
                "size": [240, 240],
                "resize": "letterbox",
                "grayscale": False,
                "mean": [0.485, 0.456, 0.406],
                "std": [0.229, 0.224, 0.225],
            },
            "temperature": {k: 1.5 for k in SYMPTOM_KEYS},
            "metrics": {
                "dandruff": {"accuracy": 0.9, "confusion": [[1, 0, 0], [0, 1, 0], [0, 0, 1]]}
            },
            "dtype": "fp32",
        }
    ],
}


def _write(tmp_path: Path, obj: dict, onnx: bool = True) -> Path:
    (tmp_path / "bundle.json").write_text(json.dumps(obj, ensure_ascii=False), "utf-8")
    if onnx:
        (tmp_path / "multihead.onnx").write_bytes(b"x")
    return tmp_path


def test_valid_bundle_loads(tmp_path: Path) -> None:
    b = load_bundle(_write(tmp_path, VALID))
    assert b.demo is True and b.classes == ("양호", "경증·중등도", "중증")
    assert b.symptoms == SYMPTOM_KEYS
    m = b.model_for("hair_loss")
    assert m.path == (tmp_path / "multihead.onnx").resolve()
    assert m.preprocess.size == (240, 240) and m.temperature["hair_loss"] == 1.5
    assert b.to_json()["models"][0]["outputs"] == VALID["models"][0]["outputs"]
    # bundle.json path works too
    assert load_bundle(tmp_path / "bundle.json").models == b.models


def _mutate(path: str, value: object) -> dict:
    obj = copy.deepcopy(VALID)
    cur = obj
    keys = path.split(".")
    for k in keys[:-1]:
        cur = cur[int(k)] if k.isdigit() else cur[k]
    if value is KeyError:
        del cur[keys[-1]]
    else:
        cur[keys[-1]] = value
    return obj


@pytest.mark.parametrize(
    ("path", "value", "msg"),
    [
        ("format", "deeproot-bundle/2", "format must be 'deeproot-bundle/1'"),
        ("classes", ["a", "b"], "classes must be"),
        ("demo", "yes", "demo must be true or false"),
        ("models", [], "models must be a non-empty list"),
        ("models.0.file", "../x.onnx", "must be an .onnx file name inside the bundle"),
        ("models.0.file", "other.onnx", "other.onnx does not exist"),
        ("models.0.symptoms", ["dandruff", "itch"], "unknown symptom 'itch'"),
        ("models.0.outputs", {"dandruff": "d"}, "outputs must map each of its symptoms"),
        ("models.0.temperature", KeyError, "temperature must give one temperature"),
        ("models.0.preprocess", {"resize": "crop"}, "resize must be one of"),
        ("models.0.dtype", "bf16", "dtype must be one of fp32, fp16, int8"),
        ("dataset", {"name": "imagenet"}, "dataset.name must be one of"),
    ],
)
def test_damaged_bundle_is_one_line_data_error(
    tmp_path: Path, path: str, value: object, msg: str
) -> None:
    _write(tmp_path, _mutate(path, value))
    with pytest.raises(DataError, match=msg) as info:
        load_bundle(tmp_path)
    assert "\n" not in str(info.value) and str(tmp_path) in str(info.value)


def test_missing_symptoms_and_duplicates(tmp_path: Path) -> None:
    one = _mutate("models.0.symptoms", ["dandruff"])
    one["models"][0]["outputs"] = {"dandruff": "dandruff"}
    one["models"][0]["temperature"] = {"dandruff": 1.0}
    one["models"][0]["metrics"] = {}
    _write(tmp_path, one)
    with pytest.raises(DataError, match="no model for symptom.s.: fine_scale, excess_sebum"):
        load_bundle(tmp_path)
    assert load_bundle(tmp_path, require_all=False).symptoms == ("dandruff",)
    two = copy.deepcopy(one)
    two["models"].append(copy.deepcopy(one["models"][0]))
    _write(tmp_path, two)
    with pytest.raises(DataError, match="scored by more than one model: dandruff"):
        load_bundle(tmp_path, require_all=False)


def test_not_a_bundle(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist; install one with `deeproot models"):
        load_bundle(tmp_path / "nope")
    with pytest.raises(DataError, match="bundle.json is missing"):
        load_bundle(tmp_path)
    (tmp_path / "bundle.json").write_text("{bad", "utf-8")
    with pytest.raises(DataError, match="bundle.json is not valid JSON"):
        load_bundle(tmp_path)


def test_installed_bundle_prefers_user_default(tmp_path: Path) -> None:
    assert installed_bundle_path(tmp_path) == DEMO_BUNDLE
    user = tmp_path / "models" / "default"
    user.mkdir(parents=True)
    _write(user, VALID)
    assert installed_bundle_path(tmp_path) == user
