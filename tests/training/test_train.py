"""A short CPU training run that really learns, and its export to a bundle with parity checks.

One EfficientNet-B1 multi-head model is trained through the CLI on synthetic visits at a small
input (48x64, the 4:3 shape of the photos) for 3 epochs on ~350 images, then exported; held-out
visits (~140 images) must score a mean macro-F1 well above the majority baseline. Tests that only
check plumbing train the tiny test network (`--arch tiny`) instead.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import yaml
from PIL import Image
from training_helpers import EPOCHS, SHARED_SIZE

from deeproot.cli.main import main
from deeproot.diagnose.bundle import load_bundle, verify_onnx
from deeproot.diagnose.preprocess import prepare
from deeproot.errors import DataError, InputError
from deeproot.taxonomy import SYMPTOM_KEYS

pytestmark = pytest.mark.train
T1 = ["--threads", "1"]  # 2 spinning threads stall when other processes share a 2-core CPU


def test_run_folder_records_everything(run: Path) -> None:
    assert sorted(p.name for p in run.iterdir()) == [
        "args.yaml",
        "best.pt",
        "last.pt",
        "metrics.jsonl",
        "run.json",
        "split.json",
    ]
    args = yaml.safe_load((run / "args.yaml").read_text())
    assert (args["epochs"], args["size"], args["symptom"], args["classes"]) == (
        EPOCHS,
        SHARED_SIZE,
        "all",
        3,
    )
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [x["epoch"] for x in lines] == list(range(1, EPOCHS + 1))
    for x in lines:
        assert set(x["val"]) == set(SYMPTOM_KEYS)
        m = x["val"]["hair_loss"]
        assert set(m) >= {
            "accuracy",
            "balanced_accuracy",
            "macro_f1",
            "qwk",
            "confusion",
            "majority_accuracy",
            "majority_macro_f1",
        }
        assert np.array(m["confusion"]).shape == (3, 3) and np.array(m["confusion"]).sum() == m["n"]
    meta = json.loads((run / "run.json").read_text())
    best = max(lines, key=lambda x: x["mean_macro_f1"])
    assert meta["best_epoch"] == best["epoch"]
    assert meta["preprocess"] == {
        "size": [int(v) for v in SHARED_SIZE.split("x")],
        "resize": "letterbox",
        "grayscale": False,
        "mean": [0.485, 0.456, 0.406],
        "std": [0.229, 0.224, 0.225],
    }
    split = json.loads((run / "split.json").read_text())
    visits = lambda names: {"_".join(n.split("_")[:3]) for n in names}  # noqa: E731
    assert not visits(split["train"]) & visits(split["val"])
    assert meta["dataset"]["n_val"] == len(split["val"]) > 30


def test_training_learns_beyond_majority(run: Path) -> None:
    meta = json.loads((run / "run.json").read_text())
    m = meta["metrics"]
    f1 = np.mean([m[k]["macro_f1"] for k in SYMPTOM_KEYS])
    base = np.mean([m[k]["majority_macro_f1"] for k in SYMPTOM_KEYS])
    bal = np.mean([m[k]["balanced_accuracy"] for k in SYMPTOM_KEYS])
    assert f1 >= base + 0.15, (f1, base)
    assert bal >= 1 / 3 + 0.1, bal  # majority balanced accuracy is exactly 1/3 with 3 classes
    assert sum(m[k]["macro_f1"] > m[k]["majority_macro_f1"] + 0.15 for k in SYMPTOM_KEYS) >= 3


def test_export_bundle_schema_and_parity(bundle: Path, run: Path, capsys) -> None:  # noqa: ANN001
    b = load_bundle(bundle)
    verify_onnx(b)
    assert (b.demo, b.dataset["name"], b.classes) == (
        True,
        "synthetic",
        ("양호", "경증·중등도", "중증"),
    )
    (m,) = b.models
    assert (m.file, m.dtype, m.input, m.symptoms) == (
        "multihead.onnx",
        "fp32",
        "image",
        SYMPTOM_KEYS,
    )
    assert all(0.05 <= t <= 20 for t in m.temperature.values())
    assert set(m.metrics) == set(SYMPTOM_KEYS)
    # the bundle's metrics are the ONNX model's own; with fp32 they equal torch's best epoch
    best = json.loads((run / "run.json").read_text())["metrics"]
    for k in SYMPTOM_KEYS:
        assert m.metrics[k]["confusion"] == best[k]["confusion"]
    # dynamic batch axis, raw logits per symptom
    sess = ort.InferenceSession(str(m.path), providers=["CPUExecutionProvider"])
    split = json.loads((run / "split.json").read_text())["val"][:5]
    root = json.loads((run / "run.json").read_text())["dataset"]["index"]
    from deeproot.training.dataset import read_index

    paths = {r["image_file_name"]: r["path"] for r in read_index(root)[0]}
    x = np.stack([prepare(Image.open(paths[n]), m.preprocess) for n in split])
    five = sess.run(None, {"image": x})
    one = sess.run(None, {"image": x[:1]})
    assert [o.shape for o in five] == [(5, 3)] * 6
    assert np.allclose(five[0][:1], one[0], atol=1e-5)


def test_export_int8_small_and_agrees(run: Path, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    assert (
        main(["export", str(run), "--out", str(tmp_path / "q"), "--dtype", "int8", "--json"] + T1)
        == 0
    )
    rep = json.loads(capsys.readouterr().out)
    (m,) = rep["models"]
    assert m["size_bytes"] < 8_000_000 and m["agreement"] >= 0.97 and m["max_abs_diff"] < 0.5
    assert load_bundle(tmp_path / "q").models[0].dtype == "int8"


def test_export_refuses_bad_targets(run: Path, bundle: Path, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    assert main(["export", str(run), "--out", str(bundle)]) == 3
    assert "exists and is not empty; pass --force" in capsys.readouterr().err
    assert main(["export", str(tmp_path), "--out", str(tmp_path / "x")]) == 3
    assert "is not a training run folder" in capsys.readouterr().err


def test_train_rejects_bad_options(run: Path, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    index = json.loads((run / "run.json").read_text())["dataset"]["index"]
    base = ["train", "--index", index, "--out", str(tmp_path / "r")]
    assert main([*base, "--symptom", "itch"]) == 3
    assert "unknown symptom 'itch'" in capsys.readouterr().err
    assert main([*base, "--loss", "hinge"]) == 3
    assert "--loss must be one of ce, focal" in capsys.readouterr().err
    assert main(["train", "--index", str(tmp_path / "no.parquet"), "--out", str(tmp_path)]) == 3
    assert "does not exist; build it with `deeproot dataset index ROOT`" in capsys.readouterr().err
    with pytest.raises((InputError, DataError)):
        from deeproot.training.train import TrainConfig

        TrainConfig(index=index, out=str(tmp_path), size="12").check()


def test_single_symptom_run_uses_seed_recipe_and_exports(run: Path, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    index = json.loads((run / "run.json").read_text())["dataset"]["index"]
    out = tmp_path / "fs"
    args = [
        "train",
        "--index",
        index,
        "--out",
        str(out),
        "--symptom",
        "미세각질",
        "--epochs",
        "1",
        "--size",
        "64",
        "--limit",
        "60",
        "--batch-size",
        "8",
        "--loss",
        "focal",
        "--threads",
        "1",
        "--arch",
        "tiny",  # plumbing only: the single-head, grayscale, export path of any architecture
    ]
    assert main(args) == 0
    meta = json.loads((out / "run.json").read_text())
    assert meta["arch"] == "efficientnet_tiny"
    assert meta["symptoms"] == ["fine_scale"] and meta["preprocess"]["grayscale"] is True
    assert meta["dataset"]["n_train"] + meta["dataset"]["n_val"] <= 65
    assert main(["export", str(out), "--out", str(tmp_path / "b"), *T1]) == 0
    b = load_bundle(tmp_path / "b", require_all=False)
    assert [m.file for m in b.models] == ["fine_scale.onnx"] and b.symptoms == ("fine_scale",)
    with pytest.raises(DataError, match="no model for symptom"):
        load_bundle(tmp_path / "b")
    # beyond tolerance the export fails and leaves nothing (on this small run: cheap)
    code = main(
        ["export", str(out), "--out", str(tmp_path / "f"), "--dtype", "fp16", "--atol", "1e-9", *T1]
    )
    err = capsys.readouterr().err
    assert code == 1 and "export parity failed" in err and "max |torch - onnxruntime| =" in err
    assert not (tmp_path / "f").exists()


def _tables(md: str) -> list[list[list[str]]]:
    """Rows (cells) of every `| metric | model | majority baseline |` table in a report."""
    tables, cur = [], None
    for line in md.splitlines():
        if line == "| metric | model | majority baseline |":
            cur = []
            tables.append(cur)
        elif cur is not None and line.startswith("|") and not line.startswith("|---"):
            cur.append([c.strip() for c in line.strip("|").split("|")])
        elif not line.startswith("|"):
            cur = None
    return tables


def test_evaluate_writes_report_and_plots_with_baseline(
    bundle: Path, run: Path, tmp_path: Path, capsys
) -> None:  # noqa: ANN001
    index = json.loads((run / "run.json").read_text())["dataset"]["index"]
    out = tmp_path / "ev"
    args = ["evaluate", str(bundle), "--index", index, "--split", str(run / "split.json")]
    assert main([*args, "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "macroF1" in text and f"wrote {out / 'report.md'}" in text
    assert sorted(p.name for p in out.iterdir()) == [
        "confusion.png",
        "reliability.png",
        "report.json",
        "report.md",
    ]
    for png in ("confusion.png", "reliability.png"):
        with Image.open(out / png) as im:
            assert im.format == "PNG" and im.size[0] > 600 and im.size[1] > 500
    rep = json.loads((out / "report.json").read_text())
    n_val = len(json.loads((run / "split.json").read_text())["val"])
    assert rep["n_images"] == n_val and rep["bundle_demo"] is True
    (m,) = load_bundle(bundle).models
    for k in SYMPTOM_KEYS:
        r = rep["symptoms"][k]
        # the same images through the same ONNX model as the export's own check
        assert r["confusion"] == m.metrics[k]["confusion"]
        assert r["ece"] == pytest.approx(m.metrics[k]["ece"], abs=2e-3)
        assert r["ece_uncalibrated"] == pytest.approx(m.metrics[k]["ece_uncalibrated"], abs=2e-3)
        for key in ("accuracy", "balanced_accuracy", "macro_f1", "qwk", "ece", "nll", "recall"):
            assert f"majority_{key}" in r
        assert r["majority_ece"] == pytest.approx(0.0, abs=1e-9)
        assert r["majority_qwk"] == 0.0 and r["majority_recall"][r["majority_class"]] == 1.0
    # every figure of the report has the baseline beside it
    tables = _tables((out / "report.md").read_text())
    assert len(tables) == 1 + len(SYMPTOM_KEYS)
    assert len(tables[0]) == 8 and all(len(t) == 4 + 3 + 4 for t in tables[1:])
    for t in tables:
        for label, model, base in t:
            assert label and model and base
            for v in (model, base):
                assert v == "–" or -1.0 <= float(v) <= 20.0, (label, v)  # QWK may be < 0
    # --split hash with the run's seed and share selects the same validation visits
    assert main(["evaluate", str(bundle), "--index", index, "--split", "hash", "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["n_images"] == n_val
    assert again["symptoms"]["hair_loss"]["confusion"] == rep["symptoms"]["hair_loss"]["confusion"]


def test_evaluate_refuses_bad_inputs(bundle: Path, run: Path, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    index = json.loads((run / "run.json").read_text())["dataset"]["index"]
    assert main(["evaluate", str(bundle), "--index", index, "--split", "nope"]) == 3
    assert "--split must be validation, hash, all or a run's split.json" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path), "--index", index]) == 1
    assert "bundle.json is missing" in capsys.readouterr().err


def test_evaluate_runs_without_torch(bundle: Path, run: Path) -> None:
    import subprocess
    import sys

    index = json.loads((run / "run.json").read_text())["dataset"]["index"]
    code = (
        "import sys; from deeproot.cli.main import main; "
        f"c = main(['evaluate', {str(bundle)!r}, '--index', {index!r}, '--split', 'hash', "
        "'--json']); assert 'torch' not in sys.modules, 'torch imported'; sys.exit(c)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert json.loads(res.stdout)["n_images"] > 30
