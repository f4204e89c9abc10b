"""Shared training fixtures: one tiny synthetic dataset, and ONE small trained run (plus its
exported bundle) that every test needing a trained model uses (session scope: the run is the
largest share of the suite's time)."""

from __future__ import annotations

from pathlib import Path

import pytest
from training_helpers import EPOCHS, SHARED_SIZE, SHARED_VISITS, tiny_train

from deeproot.cli.main import main
from deeproot.training.synthetic import generate


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Index of 16 synthetic visits (76 images), for runs at 32x48 that take seconds."""
    base = tmp_path_factory.mktemp("tiny")
    generate(base / "ds", 16, seed=2)
    assert main(["dataset", "index", str(base / "ds"), "--out", str(base / "index.parquet")]) == 0
    return base / "index.parquet"


@pytest.fixture(scope="session")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared trained run: multi-head B1 at 48x64 (the photos' 4:3 shape), 3 epochs on the
    ~490 images of 100 synthetic visits (~350 train, ~140 validation). The only test run that
    must learn (test_training_learns_beyond_majority); its margins held over 5 training seeds,
    70 visits did not (see docs/models.md, "Test-suite runs")."""
    base = tmp_path_factory.mktemp("train")
    generate(base / "ds", SHARED_VISITS, seed=1)
    assert main(["dataset", "index", str(base / "ds"), "--out", str(base / "index.parquet")]) == 0
    args = [
        "train",
        "--index",
        str(base / "index.parquet"),
        "--out",
        str(base / "run"),
        "--size",
        SHARED_SIZE,
        "--epochs",
        str(EPOCHS),
        "--batch-size",
        "8",
        "--lr",
        "2e-3",
        "--threads",
        "1",
        "--no-tensorboard",  # TensorBoard logging is tested on a tiny run (test_resume.py)
    ]
    assert main(args) == 0
    return base / "run"


@pytest.fixture(scope="session")
def bundle(run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bundle") / "b"
    assert main(["export", str(run), "--out", str(out), "--threads", "1"]) == 0
    return out


@pytest.fixture(scope="session")
def tiny_run(tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-epoch, single-process run on the tiny index (batch 8): the uninterrupted reference
    of the resume test and the one-process reference of the DDP test."""
    out = tmp_path_factory.mktemp("tiny_run") / "run"
    assert main(tiny_train(tiny, out, "--epochs", "2")) == 0
    return out
