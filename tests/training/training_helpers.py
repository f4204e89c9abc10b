"""Helpers shared by the training tests (imported by name: pytest puts this folder on sys.path)."""

from __future__ import annotations

from pathlib import Path

EPOCHS = 3  # epochs of the shared trained run (conftest.run)


def tiny_train(index: Path, out: Path, *extra: str) -> list[str]:
    """`deeproot train` arguments for a seconds-long run on the tiny index."""
    return [
        "train",
        "--index",
        str(index),
        "--out",
        str(out),
        "--size",
        "32x48",
        "--batch-size",
        "8",
        "--lr",
        "2e-3",
        "--threads",
        "1",
        "--no-tensorboard",
        *extra,
    ]
