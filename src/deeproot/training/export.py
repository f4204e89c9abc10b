"""Export trained runs to a model bundle: ONNX + calibrated temperatures + bundle.json.

For each run folder: rebuild the model from `best.pt`, compute validation logits with the same
preprocessing inference uses, fit one temperature per symptom (LBFGS on the NLL), export ONNX
(opset 17, dynamic batch axis), optionally store weights as fp16 or int8 (computation stays
float32), then run the ONNX model in onnxruntime on the real validation images: the export fails
when its logits differ from torch's beyond a tolerance, and the bundle's metrics are the ONNX
model's own on that split, beside the majority baseline.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deeproot import __version__
from deeproot.diagnose.bundle import (
    FORMAT,
    Bundle,
    ModelSpec,
    parse_bundle,
    verify_onnx,
    write_bundle_json,
)
from deeproot.diagnose.preprocess import Preprocess
from deeproot.errors import DataError, InputError, require
from deeproot.training.dataset import read_index
from deeproot.training.metrics import expected_calibration_error, summarize

log = logging.getLogger(__name__)
# Max |logit difference| torch vs onnxruntime allowed per weight storage.
DEFAULT_ATOL = {"fp32": 1e-3, "fp16": 0.05, "int8": 0.5}
MIN_AGREEMENT = {"fp32": 0.999, "fp16": 0.99, "int8": 0.97}


@dataclass(frozen=True)
class ModelExport:
    """What exporting one run measured."""

    run_dir: Path
    file: str
    symptoms: tuple[str, ...]
    max_abs_diff: float
    agreement: float
    n_parity: int
    temperature: dict[str, float]
    ece_before: dict[str, float]
    ece_after: dict[str, float]
    torch_metrics: dict[str, dict[str, Any]]
    onnx_metrics: dict[str, dict[str, Any]]
    size_bytes: int


@dataclass(frozen=True)
class ExportResult:
    bundle: Bundle
    models: tuple[ModelExport, ...]


def code_version() -> str:
    """`0.1.0+g<short sha>` from git where available, else `0.1.0+unknown`."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        return f"{__version__}+g{sha}" if sha else f"{__version__}+unknown"
    except (OSError, subprocess.SubprocessError):
        return f"{__version__}+unknown"


def expand_runs(paths: Sequence[str | Path]) -> list[Path]:
    """Run folders (holding run.json); a folder of runs (per-symptom training) expands."""
    runs: list[Path] = []
    for p in map(Path, paths):
        if (p / "run.json").is_file():
            runs.append(p)
        elif p.is_dir() and (subs := sorted(d for d in p.iterdir() if (d / "run.json").is_file())):
            runs.extend(subs)
        else:
            raise InputError(
                f"{p} is not a training run folder (no run.json); run `deeproot train`"
            )
    return runs


def fit_temperature(logits: Any, y: Any) -> float:
    """Temperature T minimising the NLL of softmax(logits / T) (LBFGS on log T)."""
    torch = require("torch", "train")
    lg = torch.as_tensor(logits, dtype=torch.float64)
    yt = torch.as_tensor(y, dtype=torch.int64)
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.5, max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> Any:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(lg / log_t.exp(), yt)
        loss.backward()
        return loss

    opt.step(closure)
    t = float(log_t.exp().item())
    return min(max(t, 0.05), 20.0) if t == t else 1.0


def _softmax(x: Any) -> Any:
    import numpy as np

    z = x - x.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def _load_run(run: Path) -> tuple[dict[str, Any], Any]:
    from deeproot.training.models import ARCH, MultiHead

    torch = require("torch", "train")
    try:
        meta = json.loads((run / "run.json").read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{run}/run.json is not valid JSON ({exc})") from exc
    if meta.get("format") != "deeproot-run/1" or not (run / "best.pt").is_file():
        raise DataError(
            f"{run} is not a finished deeproot run (run.json format or best.pt missing)"
        )
    model = MultiHead(tuple(meta["symptoms"]), len(meta["classes"]), arch=meta.get("arch", ARCH))
    state = torch.load(run / "best.pt", map_location="cpu", weights_only=True)
    model.load_state_dict(state["model"])
    return meta, model.eval()


def _val_rows(run: Path, meta: dict[str, Any], index: str | Path | None) -> list[dict[str, Any]]:
    idx = Path(index) if index else Path(meta["dataset"]["index"])
    rows, _ = read_index(idx)
    val = set(json.loads((run / "split.json").read_text(encoding="utf-8"))["val"])
    out = [r for r in rows if r["image_file_name"] in val]
    from deeproot.training.sources import path_exists

    missing = [r["path"] for r in out if not path_exists(r["path"])]
    if not out or missing:
        raise DataError(
            f"validation images of {run} are not available ({len(out)} rows, "
            f"{len(missing)} missing files, e.g. {missing[:1]}); pass --index with the run's data"
        )
    return out


def _quantize_weights(model_path: Path, dtype: str) -> None:
    """Store large float initializers as fp16 (Cast) or per-channel int8 (DequantizeLinear)."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    m = onnx.load(str(model_path))
    g = m.graph
    new_inits, new_nodes = [], []
    for init in list(g.initializer):
        w = numpy_helper.to_array(init)
        if w.dtype != np.float32 or w.size < 1024:
            new_inits.append(init)
            continue
        name = init.name
        if dtype == "fp16":
            new_inits.append(numpy_helper.from_array(w.astype(np.float16), name + "_fp16"))
            new_nodes.append(helper.make_node("Cast", [name + "_fp16"], [name], to=1))
        else:
            flat = w.reshape(w.shape[0], -1)
            scale = np.abs(flat).max(1) / 127.0
            scale[scale == 0] = 1.0
            bshape = (-1,) + (1,) * (w.ndim - 1)
            q = np.clip(np.round(w / scale.reshape(bshape)), -127, 127).astype(np.int8)
            new_inits += [
                numpy_helper.from_array(q, name + "_q"),
                numpy_helper.from_array(scale.astype(np.float32), name + "_scale"),
                numpy_helper.from_array(np.zeros(w.shape[0], np.int8), name + "_zp"),
            ]
            new_nodes.append(
                helper.make_node(
                    "DequantizeLinear", [name + "_q", name + "_scale", name + "_zp"], [name], axis=0
                )
            )
    del g.initializer[:]
    g.initializer.extend(new_inits)
    nodes = new_nodes + list(g.node)
    del g.node[:]
    g.node.extend(nodes)
    onnx.checker.check_model(m)
    onnx.save(m, str(model_path))


def _session_options(ort: Any, dtype: str, threads: int) -> Any:
    """onnxruntime options as inference sets them (deeproot.diagnose.infer.session): no
    busy-waiting, int8 weights folded to float32 once; `threads` > 0 fixes the intra-op threads
    (1 avoids spinning-thread stalls on a shared 2-core CPU)."""
    opts = ort.SessionOptions()
    if threads > 0:
        opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    opts.log_severity_level = 3
    if dtype == "int8":
        opts.add_session_config_entry("session.disable_quant_qdq", "1")
    return opts


def _export_one(
    run: Path,
    out: Path,
    dtype: str,
    atol: float | None,
    index: str | Path | None,
    batch_size: int,
    progress: Callable[[str, int, int], None] | None,
    threads: int = 0,
) -> tuple[ModelSpec, ModelExport, dict[str, Any]]:
    import numpy as np

    from deeproot.training.train import make_loader, predict_logits

    torch = require("torch", "train")
    ort = require("onnxruntime", "infer")
    meta, model = _load_run(run)
    symptoms = tuple(meta["symptoms"])
    n_classes = len(meta["classes"])
    pre = Preprocess.from_json(meta["preprocess"])
    rows = _val_rows(run, meta, index)
    loader = make_loader(rows, symptoms, n_classes, pre, batch_size, False, False, 0, 0)
    if progress:
        progress(f"torch logits {run.name}", 0, len(rows))
    heads, labels = predict_logits(model, loader, torch.device("cpu"))
    temps = {k: round(fit_temperature(heads[h], labels[:, h]), 4) for h, k in enumerate(symptoms)}
    file = "multihead.onnx" if len(symptoms) > 1 else f"{symptoms[0]}.onnx"
    path = out / file
    h, w = pre.size
    import warnings

    with torch.inference_mode(), warnings.catch_warnings():
        # The TorchScript exporter is deprecated but exports B1 cleanly with a dynamic batch axis.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            model,
            (torch.zeros(2, 3, h, w),),
            str(path),
            input_names=["image"],
            output_names=list(symptoms),
            opset_version=17,
            dynamo=False,
            dynamic_axes={"image": {0: "batch"}, **{k: {0: "batch"} for k in symptoms}},
        )
    if dtype != "fp32":
        _quantize_weights(path, dtype)
    sess = ort.InferenceSession(
        str(path),
        sess_options=_session_options(ort, dtype, threads),
        providers=["CPUExecutionProvider"],
    )
    onnx_heads: list[list[Any]] = [[] for _ in symptoms]
    max_diff, agree, n = 0.0, 0, 0
    done = 0
    for x, *_ in loader:
        xs = x.numpy()
        outs = sess.run(list(symptoms), {"image": xs})
        for hi, o in enumerate(outs):
            ref = heads[hi][done : done + len(xs)]
            max_diff = max(max_diff, float(np.abs(o - ref).max()))
            agree += int((o.argmax(1) == ref.argmax(1)).sum())
            onnx_heads[hi].append(o)
        n += len(xs) * len(symptoms)
        done += len(xs)
        if progress:
            progress(f"onnxruntime parity {run.name}", done, len(rows))
    agreement = agree / max(1, n)
    tol = DEFAULT_ATOL[dtype] if atol is None else atol
    if max_diff > tol or agreement < MIN_AGREEMENT[dtype]:
        raise DataError(
            f"export parity failed for {run}: max |torch - onnxruntime| = {max_diff:.3g} "
            f"(tolerance {tol}), argmax agreement {agreement:.4f} "
            f"(needs {MIN_AGREEMENT[dtype]}) with {dtype} weights"
        )
    oh = [np.concatenate(o) for o in onnx_heads]
    onnx_metrics, torch_metrics, ece0, ece1 = {}, {}, {}, {}
    for hi, k in enumerate(symptoms):
        y = labels[:, hi]
        onnx_metrics[k] = summarize(y, oh[hi].argmax(1), n_classes)
        torch_metrics[k] = summarize(y, heads[hi].argmax(1), n_classes)
        ece0[k] = round(expected_calibration_error(_softmax(oh[hi]), y), 4)
        ece1[k] = round(expected_calibration_error(_softmax(oh[hi] / temps[k]), y), 4)
        onnx_metrics[k]["ece"] = ece1[k]
        onnx_metrics[k]["ece_uncalibrated"] = ece0[k]
    spec = ModelSpec(
        file=file,
        path=path,
        symptoms=symptoms,
        input="image",
        outputs={k: k for k in symptoms},
        preprocess=pre,
        temperature=temps,
        metrics=onnx_metrics,
        dtype=dtype,
    )
    report = ModelExport(
        run,
        file,
        symptoms,
        max_diff,
        agreement,
        done,
        temps,
        ece0,
        ece1,
        torch_metrics,
        onnx_metrics,
        path.stat().st_size,
    )
    return spec, report, meta


def export_bundle(
    runs: Sequence[str | Path],
    out: str | Path,
    *,
    dtype: str = "fp32",
    atol: float | None = None,
    demo: bool | None = None,
    index: str | Path | None = None,
    force: bool = False,
    batch_size: int = 32,
    progress: Callable[[str, int, int], None] | None = None,
    threads: int = 0,
) -> ExportResult:
    """Export run folders into one bundle folder `out`.

    Args:
        runs: run folders, or a folder of per-symptom runs.
        out: bundle folder to create (replaced only with `force`).
        dtype: weight storage: fp32, fp16 (Cast) or int8 (per-channel DequantizeLinear).
        atol: max |logit| difference torch vs onnxruntime (default per dtype, DEFAULT_ATOL).
        demo: mark the bundle as a demo; default: true when trained on synthetic data.
        index: dataset index to find validation images (default: the one the run recorded).
        force: replace an existing bundle folder.
        threads: torch and onnxruntime CPU threads for the parity run (0: their defaults; 1
            avoids spinning-thread stalls when other processes share a small CPU).
    """
    if dtype not in DEFAULT_ATOL:
        raise InputError(f"--dtype must be one of {', '.join(DEFAULT_ATOL)}, got {dtype!r}")
    run_dirs = expand_runs(runs)
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not force:
        raise InputError(f"{out} exists and is not empty; pass --force to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    torch = require("torch", "train")
    previous = torch.get_num_threads()
    tmp = Path(tempfile.mkdtemp(prefix=".bundle-", dir=out.parent))
    try:
        if threads > 0:
            torch.set_num_threads(threads)
        specs, reports, metas = [], [], []
        for run in run_dirs:
            spec, rep, meta = _export_one(
                run, tmp, dtype, atol, index, batch_size, progress, threads
            )
            specs.append(spec)
            reports.append(rep)
            metas.append(meta)
        classes = {tuple(m["classes"]) for m in metas}
        if len(classes) != 1:
            raise InputError("runs disagree on classes (3 vs 4); export them into separate bundles")
        names = {m["dataset"]["name"] for m in metas}
        ds = metas[0]["dataset"]
        obj = {
            "format": FORMAT,
            "demo": ("synthetic" in names) if demo is None else demo,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "code_version": code_version(),
            "dataset": {
                "name": "synthetic" if "synthetic" in names else "aihub-scalp",
                "index_sha256": ds.get("index_sha256", ""),
                "n_train": ds.get("n_train", 0),
                "n_val": ds.get("n_val", 0),
            },
            "classes": list(next(iter(classes))),
            "models": [s.to_json() for s in specs],
        }
        bundle = parse_bundle(tmp, obj, require_all=False)
        write_bundle_json(bundle)
        verify_onnx(bundle)
        if out.exists():
            shutil.rmtree(out)
        tmp.chmod(0o755)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        torch.set_num_threads(previous)
    final = parse_bundle(out.resolve(), obj, require_all=False)
    fixed = tuple(ModelExport(**{**r.__dict__, "run_dir": r.run_dir}) for r in reports)
    return ExportResult(final, fixed)
