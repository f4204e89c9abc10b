"""Rebuild the shipped demo bundle (src/deeproot/data/models/demo/) from synthetic data.

Runs the documented CLI sequence (docs/models.md, "The demo bundle"):

    deeproot dataset synth WORK/ds --visits 500 --seed 7 --temper 0.5
    deeproot dataset index WORK/ds --out WORK/index.parquet
    deeproot train --index WORK/index.parquet --out WORK/run --size 120x160 --epochs 6 \
        --batch-size 16 --lr 2e-3 --seed 0
    deeproot export WORK/run --out src/deeproot/data/models/demo --dtype int8 --force

Usage: python scripts/make_demo_bundle.py [--work DIR] [--out DIR] [--epochs N] [--dtype D]
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description="Rebuild the demo model bundle.")
    ap.add_argument("--work", type=Path, default=REPO / "deeproot-data" / "demo-build")
    ap.add_argument("--out", type=Path, default=REPO / "src/deeproot/data/models/demo")
    ap.add_argument("--visits", type=int, default=500)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--size", default="120x160")
    ap.add_argument("--dtype", default="int8", choices=["fp32", "fp16", "int8"])
    ap.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    ap.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    ap.add_argument(
        "--compare",
        type=Path,
        default=None,
        help="also export fp32, fp16 and int8 into WORK and write a JSON comparison",
    )
    a = ap.parse_args()

    from deeproot.cli.main import main as cli

    w = a.work
    if w.exists():
        shutil.rmtree(w)
    steps = [
        [
            "dataset",
            "synth",
            str(w / "ds"),
            "--visits",
            str(a.visits),
            "--seed",
            "7",
            "--temper",
            "0.5",
        ],
        ["dataset", "index", str(w / "ds"), "--out", str(w / "index.parquet")],
        [
            "train",
            "--index",
            str(w / "index.parquet"),
            "--out",
            str(w / "run"),
            "--size",
            a.size,
            "--epochs",
            str(a.epochs),
            "--batch-size",
            "16",
            "--lr",
            "2e-3",
            "--seed",
            "0",
        ],
        ["export", str(w / "run"), "--out", str(a.out), "--dtype", a.dtype, "--force"],
    ]
    for argv in steps:
        print("$ deeproot " + " ".join(argv), file=sys.stderr, flush=True)
        code = cli(argv)
        if code:
            return code
    if a.compare:
        _compare(w, a.compare)
    return 0


def _compare(work: Path, out: Path) -> None:
    """Export the run with each weight storage and record size, parity and validation scores."""
    import json

    from deeproot.training.export import export_bundle

    result = {}
    for dtype in ("fp32", "fp16", "int8"):
        res = export_bundle([work / "run"], work / f"bundle-{dtype}", dtype=dtype, force=True)
        (m,) = res.models
        result[dtype] = {
            "size_bytes": m.size_bytes,
            "max_abs_diff": m.max_abs_diff,
            "agreement": m.agreement,
            "n_parity": m.n_parity,
            "macro_f1": {k: v["macro_f1"] for k, v in m.onnx_metrics.items()},
            "accuracy": {k: v["accuracy"] for k, v in m.onnx_metrics.items()},
            "balanced_accuracy": {k: v["balanced_accuracy"] for k, v in m.onnx_metrics.items()},
            "majority_macro_f1": {k: v["majority_macro_f1"] for k, v in m.onnx_metrics.items()},
            "majority_accuracy": {k: v["majority_accuracy"] for k, v in m.onnx_metrics.items()},
        }
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
