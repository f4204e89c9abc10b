"""The model bundle: `bundle.json` + ONNX files, the contract between export and diagnosis.

Loading and validating a bundle needs only json (and onnxruntime for `verify_onnx`), never torch.
Format reference: docs/models.md ("Bundle format").
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deeproot.diagnose.preprocess import Preprocess
from deeproot.errors import DataError
from deeproot.taxonomy import SEVERITIES_3, SEVERITIES_4, SYMPTOM_KEYS

FORMAT = "deeproot-bundle/1"
DTYPES = ("fp32", "fp16", "int8")
DATASET_NAMES = ("synthetic", "aihub-scalp")
METRIC_KEYS = (
    "accuracy",
    "balanced_accuracy",
    "macro_f1",
    "qwk",
    "majority_accuracy",
    "majority_macro_f1",
    "confusion",
)
DEMO_BUNDLE = Path(__file__).resolve().parents[1] / "data" / "models" / "demo"

__all__ = [
    "Bundle",
    "ModelSpec",
    "Preprocess",
    "load_bundle",
    "verify_onnx",
    "installed_bundle_path",
    "DEMO_BUNDLE",
    "FORMAT",
]


@dataclass(frozen=True)
class ModelSpec:
    """One ONNX model of a bundle and the symptoms it scores.

    Attributes:
        file: ONNX file name inside the bundle folder.
        path: absolute path of that file.
        symptoms: symptom keys (taxonomy order not required).
        input: ONNX input name; float32 NCHW [batch, 3, H, W], dynamic batch axis.
        outputs: symptom -> ONNX output name; each output is raw logits [batch, n_classes].
        preprocess: how to turn an image into the input (`preprocess.prepare`).
        temperature: symptom -> temperature T; probabilities = softmax(logits / T).
        metrics: symptom -> validation metrics (see METRIC_KEYS), possibly empty.
        dtype: weight storage, "fp32", "fp16" or "int8" (computation is float32 in all three).
    """

    file: str
    path: Path
    symptoms: tuple[str, ...]
    input: str
    outputs: dict[str, str]
    preprocess: Preprocess
    temperature: dict[str, float]
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    dtype: str = "fp32"

    def to_json(self) -> dict[str, Any]:
        """The bundle.json form."""
        return {
            "file": self.file,
            "symptoms": list(self.symptoms),
            "input": self.input,
            "outputs": dict(self.outputs),
            "preprocess": self.preprocess.to_json(),
            "temperature": dict(self.temperature),
            "metrics": self.metrics,
            "dtype": self.dtype,
        }


@dataclass(frozen=True)
class Bundle:
    """A loaded, validated model bundle."""

    path: Path
    format: str
    demo: bool
    created: str
    code_version: str
    dataset: dict[str, Any]
    classes: tuple[str, ...]
    models: tuple[ModelSpec, ...]

    @property
    def symptoms(self) -> tuple[str, ...]:
        """Every symptom the bundle scores, in taxonomy order."""
        have = {s for m in self.models for s in m.symptoms}
        return tuple(k for k in SYMPTOM_KEYS if k in have)

    def model_for(self, symptom: str) -> ModelSpec:
        """The model that scores `symptom`."""
        for m in self.models:
            if symptom in m.symptoms:
                return m
        raise DataError(f"bundle {self.path} has no model for symptom {symptom!r}")

    def to_json(self) -> dict[str, Any]:
        """The bundle.json form."""
        return {
            "format": self.format,
            "demo": self.demo,
            "created": self.created,
            "code_version": self.code_version,
            "dataset": self.dataset,
            "classes": list(self.classes),
            "models": [m.to_json() for m in self.models],
        }


def _fail(path: Path, what: str) -> DataError:
    return DataError(f"bad model bundle {path}: {what}")


def _model(root: Path, i: int, obj: Any, n_classes: int) -> ModelSpec:
    where = f"models[{i}]"
    if not isinstance(obj, dict):
        raise _fail(root, f"{where} must be an object")
    file = obj.get("file")
    if not isinstance(file, str) or not file.endswith(".onnx") or Path(file).name != file:
        raise _fail(
            root,
            f"{where}.file must be an .onnx file name inside the bundle, got {file!r}",
        )
    if not (root / file).is_file():
        raise _fail(root, f"{where}.file {file} does not exist")
    symptoms = obj.get("symptoms")
    if not isinstance(symptoms, list) or not symptoms:
        raise _fail(root, f"{where}.symptoms must be a non-empty list")
    for s in symptoms:
        if s not in SYMPTOM_KEYS:
            raise _fail(
                root, f"{where} names unknown symptom {s!r}; valid: {', '.join(SYMPTOM_KEYS)}"
            )
    inp = obj.get("input")
    if not isinstance(inp, str) or not inp:
        raise _fail(root, f"{where}.input must be the ONNX input name")
    outputs = obj.get("outputs")
    if not isinstance(outputs, dict) or set(outputs) != set(symptoms):
        raise _fail(root, f"{where}.outputs must map each of its symptoms to an ONNX output name")
    temps = obj.get("temperature")
    if not isinstance(temps, dict) or set(temps) != set(symptoms):
        raise _fail(root, f"{where}.temperature must give one temperature per symptom")
    try:
        temperature = {k: float(v) for k, v in temps.items()}
    except (TypeError, ValueError) as exc:
        raise _fail(root, f"{where}.temperature values must be numbers") from exc
    if any(not (0.01 <= t <= 100.0) for t in temperature.values()):
        raise _fail(root, f"{where}.temperature values must lie in 0.01..100")
    try:
        pre = Preprocess.from_json(obj.get("preprocess"))
    except DataError as exc:
        raise _fail(root, f"{where}.{exc}") from exc
    metrics = obj.get("metrics", {})
    if not isinstance(metrics, dict) or not set(metrics) <= set(symptoms):
        raise _fail(root, f"{where}.metrics must map symptoms to metric objects")
    for s, m in metrics.items():
        conf = m.get("confusion") if isinstance(m, dict) else None
        if conf is not None and (len(conf) != n_classes or any(len(r) != n_classes for r in conf)):
            raise _fail(root, f"{where}.metrics.{s}.confusion must be {n_classes}x{n_classes}")
    dtype = obj.get("dtype", "fp32")
    if dtype not in DTYPES:
        raise _fail(root, f"{where}.dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    return ModelSpec(
        file=file,
        path=(root / file).resolve(),
        symptoms=tuple(symptoms),
        input=inp,
        outputs={str(k): str(v) for k, v in outputs.items()},
        preprocess=pre,
        temperature=temperature,
        metrics=metrics,
        dtype=dtype,
    )


def parse_bundle(root: Path, obj: Any, require_all: bool = True) -> Bundle:
    """Validate a parsed bundle.json whose files live in `root`."""
    if not isinstance(obj, dict):
        raise _fail(root, "bundle.json must hold an object")
    if obj.get("format") != FORMAT:
        raise _fail(root, f"format must be {FORMAT!r}, got {obj.get('format')!r}")
    classes = obj.get("classes")
    if classes not in (list(SEVERITIES_3), list(SEVERITIES_4)):
        raise _fail(
            root, f"classes must be {list(SEVERITIES_3)} or {list(SEVERITIES_4)}, got {classes!r}"
        )
    demo = obj.get("demo")
    if not isinstance(demo, bool):
        raise _fail(root, "demo must be true or false")
    dataset = obj.get("dataset", {})
    if not isinstance(dataset, dict) or dataset.get("name") not in DATASET_NAMES:
        raise _fail(root, f"dataset.name must be one of {', '.join(DATASET_NAMES)}")
    models_obj = obj.get("models")
    if not isinstance(models_obj, list) or not models_obj:
        raise _fail(root, "models must be a non-empty list")
    models = tuple(_model(root, i, m, len(classes)) for i, m in enumerate(models_obj))
    seen: list[str] = [s for m in models for s in m.symptoms]
    dup = sorted({s for s in seen if seen.count(s) > 1})
    if dup:
        raise _fail(root, f"symptom(s) scored by more than one model: {', '.join(dup)}")
    missing = [k for k in SYMPTOM_KEYS if k not in seen]
    if require_all and missing:
        raise _fail(root, f"no model for symptom(s): {', '.join(missing)}")
    return Bundle(
        path=root,
        format=FORMAT,
        demo=demo,
        created=str(obj.get("created", "")),
        code_version=str(obj.get("code_version", "unknown")),
        dataset=dataset,
        classes=tuple(classes),
        models=models,
    )


def load_bundle(path: str | os.PathLike[str], require_all: bool = True) -> Bundle:
    """Load and validate a bundle folder (or its bundle.json).

    Args:
        path: the bundle folder, or the bundle.json inside it.
        require_all: demand that the bundle scores all six symptoms.

    Raises:
        DataError: one line naming the bundle and what is wrong with it.
    """
    p = Path(path)
    root = p.parent if p.name == "bundle.json" else p
    root = root.resolve()
    if not root.is_dir():
        raise DataError(
            f"model bundle {root} does not exist; install one with `deeproot models install`"
            " or export one with `deeproot export`"
        )
    meta = root / "bundle.json"
    if not meta.is_file():
        raise _fail(root, "bundle.json is missing")
    try:
        obj = json.loads(meta.read_text(encoding="utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _fail(root, f"bundle.json is not valid JSON ({exc})") from exc
    return parse_bundle(root, obj, require_all=require_all)


def write_bundle_json(bundle: Bundle) -> Path:
    """Write `bundle.json` for `bundle` into its folder (UTF-8, Korean kept readable)."""
    out = bundle.path / "bundle.json"
    out.write_text(json.dumps(bundle.to_json(), ensure_ascii=False, indent=2) + "\n", "utf-8")
    return out


def verify_onnx(bundle: Bundle) -> None:
    """Open every ONNX model with onnxruntime and check input/output names and class count."""
    from deeproot.errors import require

    ort = require("onnxruntime", "infer")
    for m in bundle.models:
        try:
            sess = ort.InferenceSession(str(m.path), providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise _fail(bundle.path, f"{m.file} does not load in onnxruntime ({exc})") from exc
        inputs = {i.name: i for i in sess.get_inputs()}
        if m.input not in inputs:
            raise _fail(bundle.path, f"{m.file} has no input named {m.input!r}")
        shape = inputs[m.input].shape
        if len(shape) != 4 or shape[1] != 3 or list(shape[2:]) != list(m.preprocess.size):
            raise _fail(bundle.path, f"{m.file} input shape {shape} does not match preprocess.size")
        outs = {o.name: o for o in sess.get_outputs()}
        for s, name in m.outputs.items():
            if name not in outs:
                raise _fail(bundle.path, f"{m.file} has no output {name!r} for {s}")
            if outs[name].shape[-1] != len(bundle.classes):
                raise _fail(
                    bundle.path, f"{m.file} output {name!r} is not {len(bundle.classes)} classes"
                )


def installed_bundle_path(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The bundle diagnosis uses: `<data dir>/models/default` if installed, else the demo bundle."""
    base = Path(data_dir or os.environ.get("DEEPROOT_DATA_DIR") or "deeproot-data")
    user = base / "models" / "default"
    return user if (user / "bundle.json").is_file() else DEMO_BUNDLE
