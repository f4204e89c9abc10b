"""`deeproot train` and `deeproot export`: EfficientNet-B1 classifiers to ONNX bundles."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer


def register(app: typer.Typer) -> None:
    app.command("train")(train_cmd)
    app.command("export")(export_cmd)


def train_cmd(
    index: Path = typer.Option(..., "--index", help="Dataset index from `deeproot dataset index`."),
    out: Path = typer.Option(..., "--out", "-o", help="Run folder to write."),
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
    batch_size: int = typer.Option(32, "--batch-size"),
    lr: float = typer.Option(1e-3, "--lr", help="AdamW learning rate."),
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
    pretrained: bool = typer.Option(False, "--pretrained", help="Start from ImageNet weights."),
    weights: Path | None = typer.Option(None, "--weights", help="Start from a weights file."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    workers: int = typer.Option(0, "--workers", help="DataLoader worker processes."),
    threads: int = typer.Option(
        0, "--threads", help="torch CPU threads (0: torch's default, one per core)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print results as JSON."),
) -> None:
    """Train EfficientNet-B1 severity classifiers; metrics per epoch go to the run folder."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from deeproot.errors import require
    from deeproot.training.train import TrainConfig, train

    require("torch", "train")
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
    )
    cfg.check()
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
    ) as bar:
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

        results = train(cfg, progress)
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {
                        "run_dir": str(r.run_dir),
                        "symptoms": list(r.symptoms),
                        "best_epoch": r.best_epoch,
                        "best_mean_macro_f1": r.best_score,
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
        typer.echo(
            f"{r.run_dir}: best epoch {r.best_epoch}, mean macro-F1 {r.best_score:.3f} "
            f"({r.n_train} train / {r.n_val} val images, {r.images_per_s:.1f} images/s)"
        )
        _metrics_table(r.metrics)


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
    as_json: bool = typer.Option(False, "--json", help="Print results as JSON."),
) -> None:
    """Export runs to an ONNX bundle with calibrated temperatures and a parity check."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from deeproot.training.export import export_bundle

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
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
