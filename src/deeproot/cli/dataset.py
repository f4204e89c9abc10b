"""`deeproot dataset …`: index the AI Hub scalp dataset, prepare training shards, write a
synthetic dataset."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from deeproot.cli._output import progress_bar
from deeproot.taxonomy import SEVERITIES_4, SYMPTOMS

dataset_app = typer.Typer(
    help="Index the AI Hub scalp image dataset; make synthetic data.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    app.add_typer(dataset_app, name="dataset")


@dataset_app.command("index")
def index_cmd(
    root: Path = typer.Argument(..., help="Dataset root holding Training/ and Validation/."),
    out: Path = typer.Option(Path("index.parquet"), "--out", "-o", help="Index Parquet file."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    strict: bool = typer.Option(False, "--strict", help="Exit 1 when any file had a problem."),
) -> None:
    """Index a dataset: one row per unique image, with a report of duplicates and problems."""
    from deeproot.training.dataset import PROBLEM_KINDS, build_index, write_index

    with progress_bar("reading labels") as bar:
        task = bar.add_task("labels", total=None)
        rows, report = build_index(root, lambda d, n: bar.update(task, completed=d, total=n))
    write_index(rows, report, out)
    if as_json:
        typer.echo(json.dumps(report.to_json(), ensure_ascii=False, indent=2))
    else:
        r = report
        typer.echo(
            f"indexed {r.n_images} images ({r.n_visits} visits) from {r.n_label_files} "
            f"label files and {r.n_image_files} image files under {r.root}"
        )
        typer.echo(f"duplicates removed: {r.n_duplicates} label copies of already indexed images")
        typer.echo(f"in both Training and Validation: {r.n_overlap} images")
        head = "".join(f"{f'{i} {s}':>10}" for i, s in enumerate(SEVERITIES_4))
        typer.echo(f"{'symptom':<26}{head}  majority 3-class  4-class")
        for s in SYMPTOMS:
            counts = "".join(f"{c:>10}" for c in r.class_counts[s.key])
            typer.echo(
                f"{s.key:<26}{counts}  "
                f"{r.majority_rate(s.key):>16.1%}  {r.majority_rate(s.key, False):>7.1%}  {s.ko}"
            )
        if r.problems:
            typer.echo("problems:")
            for kind, files in r.problems.items():
                shown = ", ".join(files[:5]) + (
                    f", … (+{len(files) - 5})" if len(files) > 5 else ""
                )
                typer.echo(f"  {len(files)} {PROBLEM_KINDS[kind]}: {shown}")
        else:
            typer.echo("problems: none")
        typer.echo(f"wrote {out}")
    if strict and report.problems:
        from deeproot.errors import DataError

        n = sum(len(v) for v in report.problems.values())
        raise DataError(f"{n} files had problems (see the report); fix them or drop --strict")


@dataset_app.command("synth")
def synth_cmd(
    out: Path = typer.Argument(..., help="Folder to write Training/ and Validation/ into."),
    visits: int = typer.Option(40, "--visits", min=1, help="Visits (up to 5 photos each)."),
    seed: int = typer.Option(0, "--seed", help="Random seed (same seed, same files)."),
    temper: float = typer.Option(
        0.5,
        "--temper",
        min=0.0,
        max=1.0,
        help="Exponent on AI Hub class priors: 1 real skew, 0 uniform.",
    ),
    bad: bool = typer.Option(False, "--bad", help="Also write broken files (for testing)."),
) -> None:
    """Write a synthetic dataset in the exact AI Hub layout (drawn scalp close-ups)."""
    from deeproot.errors import InputError
    from deeproot.training.synthetic import generate

    if out.exists() and any(out.iterdir()):
        raise InputError(f"{out} exists and is not empty; choose a new folder")
    with progress_bar("drawing visits") as bar:
        task = bar.add_task("visits", total=visits)
        m = generate(
            out,
            visits,
            seed=seed,
            temper=temper,
            bad=bad,
            progress=lambda d, n: bar.update(task, completed=d),
        )
    typer.echo(
        f"wrote {len(m.labels)} images ({len(m.visits)} visits, {m.n_folder_entries} "
        f"image files, {m.n_label_files} label files, {m.n_overlap} in both splits) to {out}"
    )


@dataset_app.command("prepare")
def prepare_cmd(
    index: Path = typer.Argument(..., help="Dataset index from `deeproot dataset index`."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder to write the shards into."),
    size: str = typer.Option("240", "--size", help="Training size N or HxW (as `train --size`)."),
    resize: str = typer.Option("letterbox", "--resize", help="letterbox or stretch."),
    fmt: str = typer.Option("tar", "--format", help="tar (WebDataset-style) or parquet."),
    shard_size: int = typer.Option(1000, "--shard-size", help="Images per shard."),
    quality: int = typer.Option(95, "--quality", help="JPEG quality of the stored images."),
    workers: int = typer.Option(0, "--workers", help="Processes decoding (0: one per core)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the order images are shuffled into."),
    force: bool = typer.Option(False, "--force", help="Replace an existing folder."),
) -> None:
    """Decode, resize and re-encode every image once into shards that training streams."""
    from deeproot.training.sources import prepare_dataset
    from deeproot.training.train import parse_size

    with progress_bar("preparing images") as bar:
        task = bar.add_task("images", total=None)
        res = prepare_dataset(
            index,
            out,
            size=parse_size(size),
            resize=resize,
            shard_format=fmt,
            shard_size=shard_size,
            quality=quality,
            workers=workers,
            seed=seed,
            force=force,
            progress=lambda d, n: bar.update(task, completed=d, total=n),
        )
    failed = f", {res.n_failed} unreadable images left out" if res.n_failed else ""
    typer.echo(
        f"prepared {res.n_images} images into {res.n_shards} {fmt} shards "
        f"({res.bytes / 1e6:.1f} MB) in {res.seconds:.1f} s{failed}: {res.root}"
    )
    typer.echo(f"train on it with: deeproot train --index {res.root} --size {size} ...")
