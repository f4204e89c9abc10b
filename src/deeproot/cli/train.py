"""`deeproot train`, `deeproot export` and `deeproot evaluate`: EfficientNet-B1 classifiers to
ONNX bundles, and how good a bundle is."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from deeproot.cli._output import progress_bar


def register(app: typer.Typer) -> None:
    app.command("train")(train_cmd)
    app.command("export")(export_cmd)
    app.command("evaluate")(evaluate_cmd)


def train_cmd(
    index: Path | None = typer.Option(
        None,
        "--index",
        help="Dataset index from `deeproot dataset index`, or a folder from `dataset prepare`.",
    ),
    out: Path | None = typer.Option(None, "--out", "-o", help="Run folder to write."),
    symptom: str = typer.Option(
        "all", "--symptom", help="all (one multi-head model) or one symptom key."
    ),
    per_symptom: bool = typer.Option(
        False, "--per-symptom", help="With --symptom all: six single-head runs in OUT/<key>."
    ),
    classes: int = typer.Option(3, "--classes", help="3 (0 / 1+2 / 3 merged) or 4."),
    size: str = typer.Option("240", "--size", help="Input size N or HxW (e.g. 180x240)."),
    resize: str = typer.Option("letterbox", "--resize", help="letterbox (keep aspect) or stretch."),
    grayscale: str = typer.Option(
        "auto",
        "--grayscale",
        help="auto (seed recipe: gray for fine_scale, dandruff, "
        "excess_sebum single-symptom runs), on, off.",
    ),
    epochs: int = typer.Option(10, "--epochs"),
    batch_size: int = typer.Option(32, "--batch-size", help="Images per batch per process."),
    lr: float = typer.Option(1e-3, "--lr", help="AdamW learning rate."),
    weight_decay: float = typer.Option(1e-4, "--weight-decay", help="AdamW weight decay."),
    loss: str = typer.Option("ce", "--loss", help="ce or focal."),
    focal_gamma: float = typer.Option(2.0, "--focal-gamma"),
    class_weights: bool = typer.Option(
        True, "--class-weights/--no-class-weights", help="Inverse-frequency class weights."
    ),
    scheduler: str = typer.Option("cosine", "--scheduler", help="cosine or none."),
    val_frac: float = typer.Option(0.2, "--val-frac", help="Share of visits for validation."),
    split: str = typer.Option(
        "hash", "--split", help="hash (seeded, by visit) or original (AI Hub's, de-overlapped)."
    ),
    seed: int = typer.Option(0, "--seed"),
    limit: int = typer.Option(0, "--limit", help="Use about this many images (whole visits)."),
    augment: bool = typer.Option(True, "--augment/--no-augment", help="Random flips."),
    drop_path: float = typer.Option(
        0.2, "--drop-path", help="Stochastic depth rate of the backbone (B1 default 0.2)."
    ),
    arch: str = typer.Option(
        "b1",
        "--arch",
        help="b1 (EfficientNet-B1), or tiny: a small network for tests and smoke runs only.",
    ),
    pretrained: bool = typer.Option(
        False,
        "--pretrained",
        help="Start from torchvision's ImageNet weights, read from the local torch cache "
        "(never downloaded).",
    ),
    weights: Path | None = typer.Option(None, "--weights", help="Start from a state dict file."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    precision: str = typer.Option(
        "auto",
        "--precision",
        help="auto (bf16 autocast + channels-last on CUDA; fp32 on CPU, channels-last training "
        "steps in one process), bf16 or fp32 (both off).",
    ),
    workers: int = typer.Option(0, "--workers", help="DataLoader worker processes per process."),
    prefetch: int = typer.Option(4, "--prefetch", help="Batches each worker keeps ready."),
    threads: int = typer.Option(
        0, "--threads", help="torch CPU threads (0: torch's default, one per core)."
    ),
    patience: int = typer.Option(
        0, "--patience", help="Stop after this many epochs without a better macro-F1 (0: off)."
    ),
    tensorboard: bool = typer.Option(
        True, "--tensorboard/--no-tensorboard", help="TensorBoard logs in OUT/tensorboard."
    ),
    resume: Path | None = typer.Option(
        None,
        "--resume",
        help="Continue this run folder from its last checkpoint, with its own options "
        "(only --workers, --prefetch, --threads, --device, --nproc may change).",
    ),
    nproc: int = typer.Option(
        1, "--nproc", help="Processes on this machine (DistributedDataParallel via torchrun)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print results as JSON."),
) -> None:
    """Train EfficientNet-B1 severity classifiers; metrics per epoch go to the run folder."""
    from deeproot.errors import DeeprootError, InputError, require
    from deeproot.training import distributed
    from deeproot.training.train import TrainConfig, load_run_config, train

    require("torch", "train")
    if resume is not None:
        cfg = load_run_config(
            resume, workers=workers, threads=threads, device=device, prefetch=prefetch
        )
    else:
        if index is None or out is None:
            raise InputError("--index and --out are required (or --resume RUN)")
        cfg = TrainConfig(
            index=str(index),
            out=str(out),
            symptom=symptom,
            per_symptom=per_symptom,
            classes=classes,
            size=size,
            resize=resize,
            grayscale=grayscale,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            weight_decay=weight_decay,
            loss=loss,
            focal_gamma=focal_gamma,
            class_weights=class_weights,
            scheduler=scheduler,
            val_frac=val_frac,
            split=split,
            seed=seed,
            limit=limit,
            augment=augment,
            drop_path=drop_path,
            pretrained=pretrained,
            weights=str(weights) if weights else None,
            device=device,
            workers=workers,
            threads=threads,
            patience=patience,
            precision=precision,
            tensorboard=tensorboard,
            prefetch=prefetch,
            arch=arch,
        )
    cfg.check()
    if cfg.pretrained and resume is None:
        from deeproot.training.models import imagenet_weights_file

        imagenet_weights_file()  # fail before any data is read when the cache lacks them
    de = distributed.env()
    if nproc > 1 and not de.active:
        argv = _argv(cfg, resume, as_json)
        code = distributed.launch(nproc, argv)
        if code != 0:
            raise DeeprootError(
                f"training with {nproc} processes failed (torchrun exit status {code}); "
                "see the messages above"
            )
        return
    results = _train_with_bar(cfg, resume is not None, show=de.main, train=train)
    if not de.main:
        return
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {
                        "run_dir": str(r.run_dir),
                        "symptoms": list(r.symptoms),
                        "best_epoch": r.best_epoch,
                        "best_mean_macro_f1": r.best_score,
                        "last_epoch": r.last_epoch,
                        "stopped_early": r.stopped_early,
                        "n_train": r.n_train,
                        "n_val": r.n_val,
                        "images_per_s": round(r.images_per_s, 2),
                        "metrics": r.metrics,
                    }
                    for r in results
                ],
                ensure_ascii=False,
                indent=2,
            )
        )
        return
    for r in results:
        early = f", stopped early after epoch {r.last_epoch}" if r.stopped_early else ""
        typer.echo(
            f"{r.run_dir}: best epoch {r.best_epoch}, mean macro-F1 {r.best_score:.3f} "
            f"({r.n_train} train / {r.n_val} val images, {r.images_per_s:.1f} images/s{early})"
        )
        _metrics_table(r.metrics)


def _argv(cfg: Any, resume: Path | None, as_json: bool) -> list[str]:
    """Command-line arguments that reproduce `cfg` (for the processes torchrun starts)."""
    from dataclasses import fields

    if resume is not None:
        argv = ["--resume", str(resume)]
        for name in ("workers", "threads", "device", "prefetch"):
            argv += [f"--{name}", str(getattr(cfg, name))]
        return argv + (["--json"] if as_json else [])
    argv = []
    flags = {"class_weights", "augment", "tensorboard"}
    for f in fields(cfg):
        v = getattr(cfg, f.name)
        opt = "--" + f.name.replace("_", "-")
        if f.name in flags:
            argv.append(opt if v else "--no-" + f.name.replace("_", "-"))
        elif isinstance(v, bool):
            if v:
                argv.append(opt)
        elif v is not None:
            argv += [opt, str(v)]
    return argv + (["--json"] if as_json else [])


def _train_with_bar(cfg: Any, resume: bool, show: bool, train: Any) -> Any:
    if not show:
        return train(cfg, None, resume=resume)
    with progress_bar(info=True, elapsed=True, transient=False) as bar:
        ep = bar.add_task("epochs", total=cfg.epochs, info="")
        bt = bar.add_task("batches", total=None, info="")

        def progress(kind: str, done: int, total: int, info: dict) -> None:
            if kind == "epoch":
                text = (
                    f"mean macro-F1 {info['mean_macro_f1']:.3f}" if "mean_macro_f1" in info else ""
                )
                bar.update(ep, completed=done, total=total, info=text)
                if done < total:
                    bar.reset(bt)
            else:
                bar.update(bt, completed=done, total=total, info=f"loss {info['loss']:.3f}")

        return train(cfg, progress, resume=resume)


def _metrics_table(metrics: dict) -> None:
    typer.echo(
        f"  {'symptom':<26}{'acc':>7}{'bal.acc':>9}{'macroF1':>9}{'QWK':>7}"
        f"{'maj.acc':>9}{'maj.F1':>8}"
    )
    for k, m in metrics.items():
        typer.echo(
            f"  {k:<26}{m['accuracy']:>7.3f}{m['balanced_accuracy']:>9.3f}"
            f"{m['macro_f1']:>9.3f}{m['qwk']:>7.3f}{m['majority_accuracy']:>9.3f}"
            f"{m['majority_macro_f1']:>8.3f}"
        )


def export_cmd(
    runs: list[Path] = typer.Argument(..., help="Run folders (or a folder of per-symptom runs)."),
    out: Path = typer.Option(..., "--out", "-o", help="Bundle folder to write."),
    dtype: str = typer.Option("fp32", "--dtype", help="Weight storage: fp32, fp16 or int8."),
    atol: float | None = typer.Option(
        None,
        "--atol",
        help="Max |torch - onnxruntime| logit difference (default fp32 1e-3, fp16 0.05, int8 0.5).",
    ),
    demo: bool | None = typer.Option(
        None, "--demo/--no-demo", help="Mark as demo (default: when trained on synthetic)."
    ),
    index: Path | None = typer.Option(None, "--index", help="Index to find validation images."),
    force: bool = typer.Option(False, "--force", help="Replace an existing bundle folder."),
    threads: int = typer.Option(
        0, "--threads", help="CPU threads for the parity run (0: torch's default, one per core)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print results as JSON."),
) -> None:
    """Export runs to an ONNX bundle with calibrated temperatures and a parity check."""
    from deeproot.training.export import export_bundle

    with progress_bar() as bar:
        tasks: dict[str, Any] = {}

        def progress(what: str, done: int, total: int) -> None:
            if what not in tasks:
                tasks[what] = bar.add_task(what, total=total)
            bar.update(tasks[what], completed=done)

        res = export_bundle(
            runs,
            out,
            dtype=dtype,
            atol=atol,
            demo=demo,
            index=index,
            force=force,
            progress=progress,
            threads=threads,
        )
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "bundle": str(res.bundle.path),
                    "demo": res.bundle.demo,
                    "models": [
                        {
                            "file": m.file,
                            "run_dir": str(m.run_dir),
                            "size_bytes": m.size_bytes,
                            "max_abs_diff": m.max_abs_diff,
                            "agreement": m.agreement,
                            "n_parity": m.n_parity,
                            "temperature": m.temperature,
                            "ece_before": m.ece_before,
                            "ece_after": m.ece_after,
                            "metrics": m.onnx_metrics,
                        }
                        for m in res.models
                    ],
                },
                ensure_ascii=False,
                indent=2,
            )
        )
        return
    b = res.bundle
    typer.echo(
        f"wrote bundle {b.path} ({'demo, ' if b.demo else ''}{len(b.models)} model(s), "
        f"classes {' / '.join(b.classes)})"
    )
    for m in res.models:
        typer.echo(
            f"{m.file}: {m.size_bytes / 1e6:.1f} MB {b.models[0].dtype}, parity on "
            f"{m.n_parity} validation images: max |torch - onnxruntime| {m.max_abs_diff:.2e}, "
            f"argmax agreement {m.agreement:.4f}"
        )
        temps = ", ".join(f"{k} {t:.2f}" for k, t in m.temperature.items())
        typer.echo(f"  temperatures: {temps}")
        _metrics_table(m.onnx_metrics)


def evaluate_cmd(
    bundle: Path = typer.Argument(
        ..., help="Model bundle folder (any: demo, exported, installed)."
    ),
    index: Path = typer.Option(..., "--index", help="Dataset index (or prepared folder)."),
    split: str = typer.Option(
        "validation",
        "--split",
        help="validation (AI Hub's, without visits also in Training), hash (as `train --split "
        "hash` with --seed/--val-frac), all, or a run's split.json.",
    ),
    seed: int = typer.Option(0, "--seed", help="With --split hash: the run's --seed."),
    val_frac: float = typer.Option(0.2, "--val-frac", help="With --split hash: the run's value."),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Folder for report.md, report.json and PNG plots."
    ),
    batch_size: int = typer.Option(32, "--batch-size"),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or auto (onnxruntime)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Score a bundle on labelled images: every metric beside the majority baseline."""
    from deeproot.training.evaluate import evaluate_bundle

    with progress_bar("images") as bar:
        task = bar.add_task("images", total=None)
        res = evaluate_bundle(
            bundle,
            index,
            split=split,
            seed=seed,
            val_frac=val_frac,
            out=out,
            batch_size=batch_size,
            device=device,
            progress=lambda d, n: bar.update(task, completed=d, total=n),
        )
    r = res.report
    if as_json:
        typer.echo(json.dumps(r, ensure_ascii=False, indent=2))
        return
    typer.echo(
        f"{r['bundle']} on {r['n_images']} images ({r['n_visits']} visits, split {r['split']})"
        + (" [demo bundle]" if r["bundle_demo"] else "")
    )
    typer.echo(
        f"  {'symptom':<26}{'macroF1':>9}{'maj.':>7}{'bal.acc':>9}{'maj.':>7}{'QWK':>7}"
        f"{'ECE T=1':>9}{'ECE T':>8}"
    )
    for k, m in r["symptoms"].items():
        typer.echo(
            f"  {k:<26}{m['macro_f1']:>9.3f}{m['majority_macro_f1']:>7.3f}"
            f"{m['balanced_accuracy']:>9.3f}{m['majority_balanced_accuracy']:>7.3f}"
            f"{m['qwk']:>7.3f}{m['ece_uncalibrated']:>9.3f}{m['ece']:>8.3f}"
        )
    for f in res.files:
        typer.echo(f"wrote {f}")
