"""Helpers shared by the training tests (imported by name: pytest puts this folder on sys.path)."""

from __future__ import annotations

from pathlib import Path

EPOCHS = 3  # epochs of the shared trained run (conftest.run)
SHARED_SIZE = "48x64"  # its input size (height x width)
SHARED_VISITS = 100  # its synthetic visits (generate(seed=1))


def tiny_train(index: Path, out: Path, *extra: str) -> list[str]:
    """`deeproot train` arguments for a seconds-long run on the tiny index: the tiny test network
    (`--arch tiny`, same building blocks and code path as B1, ~12x faster per batch), as these
    runs check plumbing (resume, DDP, early stopping), not learning."""
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
        "--arch",
        "tiny",
        *extra,
    ]
