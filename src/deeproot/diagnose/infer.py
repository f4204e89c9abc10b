"""ONNX Runtime inference over a model bundle: photos in, calibrated probabilities per symptom out.

Sessions are created once per process and cached; each image is preprocessed once per distinct
preprocessing config; a multi-head model scores all six symptoms in one forward pass and several
photos go through as one batch. onnxruntime and numpy are imported inside functions.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from deeproot.errors import DataError, InputError, require
from deeproot.taxonomy import SEVERITIES_3_EN

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    from PIL import Image

    from deeproot.diagnose.bundle import Bundle, ModelSpec

log = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "cuda")
_CPU = "CPUExecutionProvider"
_CUDA = "CUDAExecutionProvider"
_SESSIONS: dict[tuple[str, int, int, tuple[str, ...], bool], Any] = {}
_LOCK = threading.Lock()


@dataclass(frozen=True)
class SymptomScore:
    """One symptom's calibrated class probabilities and the severity they give.

    Attributes:
        symptom: taxonomy symptom key.
        probabilities: softmax(logits / T), one per bundle class, summing to 1.
        severity: argmax class index (0 = 양호).
        label: the class name in Korean (bundle classes).
        label_en: the class name in English.
    """

    symptom: str
    probabilities: tuple[float, ...]
    severity: int
    label: str
    label_en: str


def _class_en(classes: Sequence[str], i: int) -> str:
    if len(classes) == 3:
        return SEVERITIES_3_EN[i]
    return ("good", "mild", "moderate", "severe")[i]


def score(symptom: str, probs: Sequence[float], classes: Sequence[str]) -> SymptomScore:
    """A SymptomScore from probabilities (argmax severity; ties go to the milder class)."""
    p = tuple(float(v) for v in probs)
    sev = max(range(len(p)), key=lambda i: (p[i], -i))
    return SymptomScore(symptom, p, sev, classes[sev], _class_en(classes, sev))


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax(logits / T) in float64, each row summing to 1."""
    import numpy as np

    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def providers_for(device: str) -> list[str]:
    """onnxruntime providers to ask for, for `--device auto|cpu|cuda`."""
    if device not in DEVICES:
        raise InputError(f"unknown device {device!r}; valid: {', '.join(DEVICES)}")
    ort = require("onnxruntime", "infer")
    available = ort.get_available_providers()
    if device == "cpu":
        return [_CPU]
    if _CUDA in available:
        return [_CUDA, _CPU]
    if device == "cuda":
        raise InputError(
            "--device cuda: this onnxruntime has no CUDA provider; install deeproot[gpu]"
            " (onnxruntime-gpu, instead of deeproot[infer]) on a machine with an NVIDIA driver,"
            " or use --device cpu"
        )
    return [_CPU]


def _threads() -> int:
    """onnxruntime's intra-op threads: `DEEPROOT_THREADS`, else the usable CPUs up to 8.

    `DEEPROOT_THREADS` must be a whole number from 1 to 4x `os.cpu_count()`; anything else is an
    InputError (exit 3) rather than a silent default or a thousand threads.
    """
    n_cpu = os.cpu_count() or 1
    env = os.environ.get("DEEPROOT_THREADS", "").strip()
    if env:
        try:
            value = int(env)
        except ValueError:
            value = 0
        if not 1 <= value <= 4 * n_cpu:
            raise InputError(
                f"DEEPROOT_THREADS must be a whole number from 1 to {4 * n_cpu} (4 x the {n_cpu}"
                f" CPUs here), not {env[:40]!r}; unset it to use the CPUs available"
            )
        return value
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        n = n_cpu
    return max(1, min(n, 8))


def session(
    path: os.PathLike[str] | str, providers: Sequence[str], *, fold_weights: bool = False
) -> Any:
    """The cached onnxruntime session for a model file (created once per process).

    Args:
        path: the ONNX file.
        providers: onnxruntime execution providers, in order.
        fold_weights: constant-fold DequantizeLinear on stored int8 weights (a bundle's "int8"
            dtype is weight storage with float32 compute): onnxruntime otherwise keeps the QDQ
            nodes for int8 kernels and dequantizes the weights on every run, about 2x slower
            for the demo bundle on a 2-core CPU, with the same outputs to 1e-5.
    """
    ort = require("onnxruntime", "infer")
    st = os.stat(path)
    key = (str(path), st.st_mtime_ns, st.st_size, tuple(providers), fold_weights)
    with _LOCK:
        sess = _SESSIONS.get(key)
        if sess is not None:
            return sess
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = _threads()
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # No busy-waiting between runs: a CLI must not burn cores while it renders.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
        opts.log_severity_level = 3
        if fold_weights:
            opts.add_session_config_entry("session.disable_quant_qdq", "1")
        try:
            sess = ort.InferenceSession(str(path), sess_options=opts, providers=list(providers))
        except Exception as exc:  # onnxruntime raises its own exception types
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise DataError(f"model {path} does not load in onnxruntime ({msg})") from exc
        _SESSIONS[key] = sess
        return sess


def clear_sessions() -> None:
    """Forget cached sessions (tests and benchmarks measuring cold starts)."""
    with _LOCK:
        _SESSIONS.clear()


class Engine:
    """Runs a bundle's models over photos; sessions come from the per-process cache."""

    def __init__(self, bundle: Bundle, device: str = "auto", *, int8_compute: bool = False) -> None:
        """Open (or reuse) the bundle's sessions.

        Args:
            bundle: a loaded bundle.
            device: `auto`, `cpu` or `cuda`.
            int8_compute: keep QDQ nodes of "int8" models for int8 kernels (statically quantised
                graphs); by default int8 weights are folded to float32 as the bundle format says.
        """
        self.bundle = bundle
        self.requested = providers_for(device)
        self._sessions = [
            session(m.path, self.requested, fold_weights=m.dtype == "int8" and not int8_compute)
            for m in bundle.models
        ]

    @property
    def provider(self) -> str:
        """The provider that actually runs (the first of the first session's providers)."""
        return self._sessions[0].get_providers()[0]

    def _run(self, spec: ModelSpec, sess: Any, batch: np.ndarray) -> dict[str, np.ndarray]:
        names = [spec.outputs[s] for s in spec.symptoms]
        outs = sess.run(names, {spec.input: batch})
        n_classes = len(self.bundle.classes)
        result = {}
        for s, out in zip(spec.symptoms, outs, strict=True):
            if out.ndim != 2 or out.shape != (batch.shape[0], n_classes):
                raise DataError(
                    f"model {spec.file} output for {s} has shape {out.shape},"
                    f" expected ({batch.shape[0]}, {n_classes})"
                )
            result[s] = softmax(out, spec.temperature[s])
        return result

    def prepare(self, image: Image.Image) -> dict[Any, np.ndarray]:
        """One image's model inputs, [3, H, W] per distinct preprocessing config.

        A caller holding many photos keeps only these small arrays and lets each decoded image
        go before decoding the next (`predict_prepared` runs them as one batch).
        """
        from deeproot.diagnose.preprocess import prepare

        out: dict[Any, np.ndarray] = {}
        for spec in self.bundle.models:
            if spec.preprocess not in out:
                out[spec.preprocess] = prepare(image, spec.preprocess)
        return out

    def predict_prepared(
        self, inputs: Sequence[dict[Any, np.ndarray]]
    ) -> list[dict[str, np.ndarray]]:
        """Calibrated probabilities for inputs made by `prepare`, run as one batch per model."""
        import numpy as np

        if not inputs:
            return []
        merged: dict[str, np.ndarray] = {}
        for spec, sess in zip(self.bundle.models, self._sessions, strict=True):
            batch = np.stack([x[spec.preprocess] for x in inputs])
            merged.update(self._run(spec, sess, batch))
        return [{s: merged[s][i] for s in self.bundle.symptoms} for i in range(len(inputs))]

    def predict(self, images: Sequence[Image.Image]) -> list[dict[str, np.ndarray]]:
        """Calibrated probabilities for each image: a list of {symptom: probs [n_classes]}.

        All images go through each model as one batch; images are preprocessed once per distinct
        preprocessing config, so a per-symptom bundle whose models share a config pays once.
        """
        return self.predict_prepared([self.prepare(im) for im in images])


_ENGINES: dict[tuple[str, str], Engine] = {}


def engine(bundle: Bundle, device: str = "auto") -> Engine:
    """The per-process Engine for a bundle and device."""
    key = (str(bundle.path), device)
    eng = _ENGINES.get(key)
    if eng is None or eng.bundle != bundle:
        eng = Engine(bundle, device)
        _ENGINES[key] = eng
    return eng
