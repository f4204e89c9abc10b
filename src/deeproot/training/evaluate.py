"""`deeproot evaluate`: how good a bundle is on labelled images, next to the majority baseline.

Runs any bundle's ONNX models through onnxruntime (no torch: the `infer` extra plus pyarrow
suffice; matplotlib only for the PNG plots) over the images of an index split, and reports per
symptom: accuracy, balanced accuracy, macro-F1, quadratic weighted kappa, per-class recall, the
confusion matrix, expected calibration error and log loss with the bundle's temperature and
without it. Every figure stands beside the majority baseline on the same images: always predicting
the split's commonest class (its probabilistic form predicts the split's class shares, which is
calibrated by construction: ECE 0, log loss = the entropy of the class shares).
"""

from __future__ import annotations

import io
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deeproot.errors import DataError, InputError

log = logging.getLogger(__name__)
SPLITS = ("validation", "hash", "all")
N_BINS = 10


@dataclass(frozen=True)
class Evaluation:
    """What `evaluate_bundle` measured (`report` is also written as report.json)."""

    report: dict[str, Any]
    files: tuple[Path, ...]


def select_rows(
    rows: list[dict[str, Any]], split: str, seed: int = 0, val_frac: float = 0.2
) -> list[dict[str, Any]]:
    """Rows of an evaluation split.

    `validation`: AI Hub's Validation split by visit, without any visit that has an image in
    Training (the overlap would flatter the model); `hash`: the validation visits of
    `deeproot train --split hash --seed S --val-frac F`; `all`: every row; a path to a run's
    `split.json`: its validation images.
    """
    from deeproot.training.train import split_by_visit

    if split == "all":
        return rows
    if split in ("validation", "hash"):
        policy = "original" if split == "validation" else "hash"
        _, va = split_by_visit(rows, val_frac, seed, policy)
        return [rows[i] for i in va]
    p = Path(split)
    if not p.is_file():
        raise InputError(
            f"--split must be validation, hash, all or a run's split.json, got {split!r}"
        )
    try:
        names = set(json.loads(p.read_text(encoding="utf-8"))["val"])
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise InputError(f"{p} is not a run's split.json ({exc})") from exc
    out = [r for r in rows if r["image_file_name"] in names]
    if len(out) != len(names):
        raise DataError(
            f"{len(names) - len(out)} of {len(names)} images of {p} are not in the index"
        )
    return out


def _softmax(x: Any) -> Any:
    import numpy as np

    z = x - x.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def reliability(probs: Any, y: Any, n_bins: int = N_BINS) -> tuple[list[float], list[float]]:
    """(mean confidence, accuracy) of each non-empty equal-width confidence bin."""
    import numpy as np

    conf = probs.max(1)
    correct = probs.argmax(1) == y
    edges = np.linspace(0, 1, n_bins + 1)
    cs, accs = [], []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        sel = (conf > lo) & (conf <= hi)
        if sel.any():
            cs.append(round(float(conf[sel].mean()), 4))
            accs.append(round(float(correct[sel].mean()), 4))
    return cs, accs


def _nll(probs: Any, y: Any) -> float:
    import numpy as np

    p = probs[np.arange(len(y)), y]
    return float(-np.log(np.clip(p, 1e-12, 1.0)).mean())


def symptom_report(logits: Any, y: Any, temperature: float, n_classes: int) -> dict[str, Any]:
    """Every figure for one symptom, each with its majority-baseline counterpart."""
    import numpy as np

    from deeproot.training.metrics import expected_calibration_error, summarize

    m = summarize(y, logits.argmax(1), n_classes)
    support = np.asarray(m["support"], np.float64)
    conf = np.asarray(m["confusion"], np.float64)
    recall = [
        round(float(conf[c, c] / support[c]), 6) if support[c] else None for c in range(n_classes)
    ]
    major = m["majority_class"]
    base_recall = [(1.0 if c == major else 0.0) if support[c] else None for c in range(n_classes)]
    shares = support / max(1.0, support.sum())
    base_probs = np.tile(shares, (len(y), 1))
    p1, pt = _softmax(logits), _softmax(logits / temperature)
    share = float(shares.max()) if len(y) else 0.0
    m.update(
        recall=recall,
        majority_recall=base_recall,
        majority_qwk=0.0,
        temperature=temperature,
        ece_uncalibrated=round(expected_calibration_error(p1, y), 6),
        ece=round(expected_calibration_error(pt, y), 6),
        majority_ece=round(expected_calibration_error(base_probs, y), 6),
        nll_uncalibrated=round(_nll(p1, y), 6),
        nll=round(_nll(pt, y), 6),
        majority_nll=round(_nll(base_probs, y), 6),
        reliability_uncalibrated=reliability(p1, y),
        reliability=reliability(pt, y),
        majority_share=round(share, 6),
    )
    return m


def run_bundle(
    bundle: Any,
    rows: list[dict[str, Any]],
    batch_size: int = 32,
    device: str = "cpu",
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Raw logits per symptom [N, classes] of every row, from the bundle's ONNX models."""
    import numpy as np
    from PIL import Image

    from deeproot.diagnose.infer import providers_for, session
    from deeproot.diagnose.preprocess import prepare
    from deeproot.training.sources import read_bytes

    sessions = [
        session(m.path, providers_for(device), fold_weights=m.dtype == "int8")
        for m in bundle.models
    ]
    out: dict[str, list[Any]] = {s: [] for s in bundle.symptoms}
    for start in range(0, len(rows), batch_size):
        chunk = rows[start : start + batch_size]
        images = []
        for r in chunk:
            try:
                with Image.open(io.BytesIO(read_bytes(r["path"]))) as im:
                    im.load()
                    images.append(im.convert("RGB"))
            except OSError as exc:
                raise DataError(
                    f"cannot read image {r['path']} ({exc}); rebuild the index"
                ) from exc
        for spec, sess in zip(bundle.models, sessions, strict=True):
            x = np.stack([prepare(im, spec.preprocess) for im in images])
            names = [spec.outputs[s] for s in spec.symptoms]
            for s, o in zip(spec.symptoms, sess.run(names, {spec.input: x}), strict=True):
                out[s].append(np.asarray(o, np.float32))
        if progress:
            progress(min(start + batch_size, len(rows)), len(rows))
    return {s: np.concatenate(v) for s, v in out.items()}


def evaluate_bundle(
    bundle_path: str | Path,
    index: str | Path,
    *,
    split: str = "validation",
    seed: int = 0,
    val_frac: float = 0.2,
    out: str | Path | None = None,
    batch_size: int = 32,
    device: str = "cpu",
    progress: Callable[[int, int], None] | None = None,
) -> Evaluation:
    """Evaluate a bundle on an index split; with `out`, write report.md, report.json,
    confusion.png and reliability.png there."""
    import numpy as np

    from deeproot.diagnose.bundle import load_bundle
    from deeproot.taxonomy import symptom
    from deeproot.training.dataset import read_index
    from deeproot.training.metrics import to_classes
    from deeproot.training.sources import path_exists

    t0 = time.perf_counter()
    bundle = load_bundle(bundle_path, require_all=False)
    rows, meta = read_index(index)
    sel = select_rows(rows, split, seed, val_frac)
    if not sel:
        raise DataError(f"the {split} split of {index} has no images; choose another --split")
    missing = [r["path"] for r in sel if not path_exists(r["path"])]
    if missing:
        raise DataError(
            f"{len(missing)} of {len(sel)} images of the index are missing (e.g. {missing[0]}); "
            "rebuild the index where the images are"
        )
    n_classes = len(bundle.classes)
    logits = run_bundle(bundle, sel, batch_size, device, progress)
    symptoms = {}
    for s in bundle.symptoms:
        y = to_classes([r[s] for r in sel], n_classes)
        temp = bundle.model_for(s).temperature[s]
        symptoms[s] = symptom_report(logits[s], y, temp, n_classes)
    keys = ("accuracy", "balanced_accuracy", "macro_f1", "qwk", "ece", "nll")
    mean = {
        k: round(float(np.mean([m[k] for m in symptoms.values()])), 6)
        for k in (*keys, "ece_uncalibrated", "nll_uncalibrated")
    }
    mean.update(
        {
            f"majority_{k}": round(
                float(np.mean([m[f"majority_{k}"] for m in symptoms.values()])), 6
            )
            for k in keys
        }
    )
    overlap = sum(1 for r in sel if r.get("split") == "both")
    report = {
        "bundle": str(bundle.path),
        "bundle_demo": bundle.demo,
        "bundle_dataset": bundle.dataset,
        "index": str(Path(index).resolve()),
        "index_sha256": meta.get("sha256", ""),
        "split": split,
        "n_images": len(sel),
        "n_visits": len({r["visit_id"] for r in sel}),
        "n_in_both_splits": overlap,
        "classes": list(bundle.classes),
        "symptoms": symptoms,
        "mean": mean,
        "seconds": round(time.perf_counter() - t0, 2),
        "names": {s: symptom(s).ko for s in symptoms},
    }
    files: list[Path] = []
    if out is not None:
        files = write_report(report, Path(out))
    return Evaluation(report, tuple(files))


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.3f}" if math.isfinite(v) else "–"
    return str(v)


def markdown(report: dict[str, Any]) -> str:
    """The Markdown report: every figure beside the majority baseline."""
    r = report
    classes = r["classes"]
    lines = [
        "# Evaluation",
        "",
        f"- bundle: `{r['bundle']}`"
        + (" (demo: trained on synthetic images)" if r["bundle_demo"] else ""),
        f"- index: `{r['index']}` (sha256 {r['index_sha256'][:12]}…), split `{r['split']}`: "
        f"{r['n_images']} images, {r['n_visits']} visits"
        + (f", {r['n_in_both_splits']} also in Training" if r["n_in_both_splits"] else ""),
        f"- classes: {', '.join(f'{i} {c}' for i, c in enumerate(classes))}",
        "- majority baseline: always the split's commonest class; as probabilities, the split's "
        "class shares (calibrated by construction, so its ECE is 0)",
        "",
        "## Summary (mean over symptoms)",
        "",
        "| metric | model | majority baseline |",
        "|---|---|---|",
    ]
    mean = r["mean"]
    for k, label in (
        ("accuracy", "accuracy"),
        ("balanced_accuracy", "balanced accuracy"),
        ("macro_f1", "macro-F1"),
        ("qwk", "quadratic weighted kappa"),
        ("ece", "ECE (with temperature)"),
        ("nll", "log loss (with temperature)"),
    ):
        lines.append(f"| {label} | {_fmt(mean[k])} | {_fmt(mean['majority_' + k])} |")
    lines += [
        f"| ECE without temperature | {_fmt(mean['ece_uncalibrated'])} | "
        f"{_fmt(mean['majority_ece'])} |",
        f"| log loss without temperature | {_fmt(mean['nll_uncalibrated'])} | "
        f"{_fmt(mean['majority_nll'])} |",
        "",
        "![confusion matrices](confusion.png)",
        "",
        "![reliability diagrams](reliability.png)",
        "",
    ]
    for s, m in r["symptoms"].items():
        lines += [
            f"## {s} ({r['names'][s]})",
            "",
            f"{m['n']} images; support per class: "
            + ", ".join(f"{i}: {c}" for i, c in enumerate(m["support"])),
            "",
            "| metric | model | majority baseline |",
            "|---|---|---|",
            f"| accuracy | {_fmt(m['accuracy'])} | {_fmt(m['majority_accuracy'])} |",
            f"| balanced accuracy | {_fmt(m['balanced_accuracy'])} | "
            f"{_fmt(m['majority_balanced_accuracy'])} |",
            f"| macro-F1 | {_fmt(m['macro_f1'])} | {_fmt(m['majority_macro_f1'])} |",
            f"| quadratic weighted kappa | {_fmt(m['qwk'])} | {_fmt(m['majority_qwk'])} |",
        ]
        for c in range(len(classes)):
            lines.append(
                f"| recall of class {c} ({classes[c]}) | {_fmt(m['recall'][c])} | "
                f"{_fmt(m['majority_recall'][c])} |"
            )
        lines += [
            f"| ECE, T = 1 | {_fmt(m['ece_uncalibrated'])} | {_fmt(m['majority_ece'])} |",
            f"| ECE, T = {m['temperature']:.2f} | {_fmt(m['ece'])} | {_fmt(m['majority_ece'])} |",
            f"| log loss, T = 1 | {_fmt(m['nll_uncalibrated'])} | {_fmt(m['majority_nll'])} |",
            f"| log loss, T = {m['temperature']:.2f} | {_fmt(m['nll'])} | "
            f"{_fmt(m['majority_nll'])} |",
            "",
            "Confusion matrix (rows: true class, columns: predicted; the majority baseline puts "
            f"every image in column {m['majority_class']}):",
            "",
            "| true \\ predicted | " + " | ".join(str(c) for c in range(len(classes))) + " |",
            "|---" * (len(classes) + 1) + "|",
        ]
        for c, row in enumerate(m["confusion"]):
            lines.append(f"| {c} | " + " | ".join(str(v) for v in row) + " |")
        lines.append("")
    return "\n".join(lines)


def write_report(report: dict[str, Any], out: Path) -> list[Path]:
    """report.md, report.json, confusion.png, reliability.png in `out`."""
    from deeproot.training import plots

    out.mkdir(parents=True, exist_ok=True)
    syms = report["symptoms"]
    conf = plots.confusion_figure(
        {s: m["confusion"] for s, m in syms.items()},
        report["classes"],
        f"{Path(report['split']).name} split, {report['n_images']} images",
    )
    rel = plots.reliability_figure(
        {
            s: {
                "before": m["reliability_uncalibrated"],
                "after": m["reliability"],
                "ece_before": m["ece_uncalibrated"],
                "ece_after": m["ece"],
                "temperature": m["temperature"],
                "majority_share": m["majority_share"],
            }
            for s, m in syms.items()
        }
    )
    files = [plots.save(conf, out / "confusion.png"), plots.save(rel, out / "reliability.png")]
    md = out / "report.md"
    md.write_text(markdown(report) + "\n", encoding="utf-8")
    js = out / "report.json"
    js.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return [md, js, *files]
