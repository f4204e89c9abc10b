"""Long runs that survive: a run killed in the middle of epoch 2 and resumed from its epoch-1
checkpoint ends exactly where an uninterrupted run ends; early stopping; TensorBoard logs."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from training_helpers import tiny_train

from deeproot.cli.main import main
from deeproot.training.train import load_run_config, train

pytestmark = pytest.mark.train
TIMING = ("train_seconds", "images_per_s")


class Killed(Exception):
    """Stands in for SIGKILL: nothing after it runs, only what is on disk survives."""


def _lines(run: Path) -> list[dict]:
    out = []
    for line in (run / "metrics.jsonl").read_text().splitlines():
        d = json.loads(line)
        out.append({k: v for k, v in d.items() if k not in TIMING})
    return out


def _assert_same_tensors(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], dict):
            _assert_same_tensors(a[k], b[k])
        elif isinstance(a[k], torch.Tensor):
            assert torch.equal(a[k], b[k]), k
        elif isinstance(a[k], list | tuple) and a[k] and isinstance(a[k][0], dict):
            for x, y in zip(a[k], b[k], strict=True):
                _assert_same_tensors(x, y)
        else:
            assert a[k] == b[k], k


def test_resume_after_kill_equals_uninterrupted_run(tiny_run: Path, tmp_path: Path) -> None:
    straight, killed = tiny_run, tmp_path / "killed"
    # the same run, killed in the middle of epoch 2 (after its second batch)
    cfg = replace(load_run_config(straight), out=str(killed))

    def kill(kind: str, done: int, total: int, info: dict) -> None:
        if kind == "batch" and done == 2 and len(_lines(killed)) == 1:
            raise Killed

    with pytest.raises(Killed):
        train(cfg, kill)
    ck = torch.load(killed / "last.pt", weights_only=True)
    assert ck["state"]["epoch"] == 1 and len(_lines(killed)) == 1
    # resume from the command line: only the run folder is given
    assert main(["train", "--resume", str(killed), "--threads", "1"]) == 0
    a = torch.load(straight / "last.pt", weights_only=True)
    b = torch.load(killed / "last.pt", weights_only=True)
    _assert_same_tensors(a["model"], b["model"])
    _assert_same_tensors(a["optimizer"], b["optimizer"])
    assert a["scheduler"] == b["scheduler"] and a["state"] == b["state"]
    _assert_same_tensors(
        torch.load(straight / "best.pt", weights_only=True),
        torch.load(killed / "best.pt", weights_only=True),
    )
    assert _lines(straight) == _lines(killed) and len(_lines(killed)) == 2
    ra, rb = (json.loads((r / "run.json").read_text()) for r in (straight, killed))
    ra["dataset"].pop("index"), rb["dataset"].pop("index")
    assert ra == rb
    # every epoch saw each training image once: the coverage record of the resumed epoch
    # matches the uninterrupted one
    assert [x["train_digest"] for x in _lines(killed)] == [
        x["train_digest"] for x in _lines(straight)
    ]


def test_resume_refuses_what_it_cannot_continue(
    tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["train", "--resume", str(tmp_path)]) == 3
    assert "is not a resumable run (args.yaml or last.pt missing)" in capsys.readouterr().err
    assert main(["train", "--out", str(tmp_path)]) == 3
    assert "--index and --out are required (or --resume RUN)" in capsys.readouterr().err


def test_early_stopping_and_tensorboard(tiny: Path, tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "es"
    args = tiny_train(tiny, run, "--epochs", "6", "--patience", "1", "--lr", "1e-9")
    args.remove("--no-tensorboard")
    args += ["--no-augment", "--json"]
    assert main(args) == 0
    meta = json.loads((run / "run.json").read_text())
    lines = _lines(run)
    scores = [x["mean_macro_f1"] for x in lines]
    # stopped at the first epoch that did not beat the best before it
    assert meta["stopped_early"] is True and meta["last_epoch"] == len(lines) < 6
    assert scores[-1] <= max(scores[:-1]) and all(
        scores[i] > max(scores[:i]) for i in range(1, len(scores) - 1)
    )
    acc = EventAccumulator(str(run / "tensorboard"), size_guidance={"images": 0})
    acc.Reload()
    tags = acc.Tags()
    assert {"val/mean_macro_f1", "train/train_loss", "hair_loss/macro_f1"} <= set(tags["scalars"])
    assert [e.step for e in acc.Scalars("val/mean_macro_f1")] == list(range(1, len(lines) + 1))
    assert "val/confusion" in tags["images"] and "misclassified/0" in tags["images"]
