"""DistributedDataParallel on CPU: 2 gloo processes (started by `deeproot train --nproc 2`
through torchrun) see the same training samples per epoch as one process with the same global
batch, evaluate every validation image exactly once, gather metrics that equal a single process's
on the same weights, and only rank 0 writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from training_helpers import tiny_train

from deeproot.cli.main import main
from deeproot.diagnose.preprocess import Preprocess
from deeproot.taxonomy import SYMPTOM_KEYS
from deeproot.training.dataset import read_index
from deeproot.training.models import MultiHead
from deeproot.training.train import evaluate, make_loader, predict_logits

pytestmark = pytest.mark.train


def _lines(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]


def test_ddp_two_gloo_processes_match_one_process(
    tiny: Path, tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ddp, single = tmp_path / "ddp", tiny_run
    # 2 processes x batch 4 against 1 process x batch 8 (tiny_run): the same global batch
    assert main([*tiny_train(tiny, ddp, "--epochs", "1", "--batch-size", "4"), "--nproc", "2"]) == 0
    capsys.readouterr()
    d, s = _lines(ddp), _lines(single)[:1]
    assert len(d) == 1  # rank 0 alone wrote the epoch line
    for a, b in zip(d, s, strict=True):
        assert (a["train_seen"], a["train_unique"], a["train_digest"], a["val_seen"]) == (
            b["train_seen"],
            b["train_unique"],
            b["train_digest"],
            b["val_seen"],
        )
        assert a["train_seen"] == a["train_unique"] == 56 and a["val_seen"] == 19
    assert sorted(p.name for p in ddp.iterdir()) == sorted(p.name for p in single.iterdir())
    # the processes torchrun started got every option of the command line
    args_d, args_s = (yaml.safe_load((r / "args.yaml").read_text()) for r in (ddp, single))
    for k in ("out", "epochs", "batch_size"):
        args_d.pop(k), args_s.pop(k)
    assert args_d == args_s
    run = json.loads((ddp / "run.json").read_text())
    assert run["world_size"] == 2 and run["device"] == "cpu" and run["precision"] == "fp32"
    assert run["arch"] == "efficientnet_tiny"
    # the metrics the two ranks gathered equal one process evaluating rank 0's saved weights
    ck = torch.load(ddp / "last.pt", weights_only=True)
    model = MultiHead(SYMPTOM_KEYS, 3, arch=run["arch"])
    model.load_state_dict(ck["model"])
    rows, _ = read_index(tiny)
    val = set(json.loads((ddp / "split.json").read_text())["val"])
    va_rows = [r for r in rows if r["image_file_name"] in val]
    loader = make_loader(va_rows, SYMPTOM_KEYS, 3, Preprocess(size=(32, 48)), 8, False, False, 0, 0)
    heads, labels = predict_logits(model, loader, torch.device("cpu"))
    again = evaluate(heads, labels, SYMPTOM_KEYS, 3)
    for k in SYMPTOM_KEYS:
        assert again[k]["confusion"] == d[-1]["val"][k]["confusion"], k
        assert again[k]["macro_f1"] == d[-1]["val"][k]["macro_f1"]
