"""CUDA paths (deselected by default: `pytest -m gpu` on a machine with NVIDIA GPUs).

bf16 autocast and channels-last are on by default on CUDA and off with `--precision fp32`;
`--nproc 2` uses NCCL with one GPU per process; pinned memory and persistent workers feed it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from training_helpers import tiny_train

from deeproot.cli.main import main

pytestmark = [pytest.mark.gpu, pytest.mark.train]


def _run(out: Path) -> dict:
    return json.loads((out / "run.json").read_text())


def test_cuda_defaults_to_bf16_channels_last(tiny: Path, tmp_path: Path) -> None:
    assert torch.cuda.is_available(), "the gpu tests need a CUDA GPU"
    args = tiny_train(tiny, tmp_path / "auto", "--epochs", "1", "--device", "cuda")
    assert main([*args, "--workers", "2"]) == 0
    r = _run(tmp_path / "auto")
    assert (r["device"], r["precision"], r["channels_last"]) == ("cuda:0", "bf16", True)
    args = tiny_train(tiny, tmp_path / "fp32", "--epochs", "1", "--device", "cuda")
    assert main([*args, "--precision", "fp32"]) == 0
    r = _run(tmp_path / "fp32")
    assert (r["precision"], r["channels_last"]) == ("fp32", False)


def test_nccl_two_processes(tiny: Path, tmp_path: Path) -> None:
    assert torch.cuda.device_count() >= 2, "the NCCL test needs 2 GPUs"
    out = tmp_path / "ddp"
    args = tiny_train(tiny, out, "--epochs", "1", "--batch-size", "4", "--device", "cuda")
    assert main([*args, "--nproc", "2"]) == 0
    r = _run(out)
    assert r["world_size"] == 2 and r["precision"] == "bf16"
    line = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
    assert line["train_seen"] == line["train_unique"] == 56 and line["val_seen"] == 19
