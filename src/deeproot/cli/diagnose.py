"""`deeproot diagnose` and `deeproot demo`: thin wrappers over `diagnose()` and `run_demo()`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from deeproot import taxonomy
from deeproot.errors import InputError


class NotDiagnosed(InputError):
    """Some photos were not diagnosed; main() prints this one line and exits 1."""


def _pad(text: str, width: int) -> str:
    """Left-justify by display width (Hangul and other wide characters take two columns)."""
    import unicodedata

    w = sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
    return text + " " * max(0, width - w)


BANNER = (
    "!" * 78 + "\n"
    "!! DEMO MODEL: these results come from a model trained on SYNTHETIC images.\n"
    "!! They are NOT a medical assessment. Install a trained bundle with\n"
    "!! `deeproot export` into $DEEPROOT_DATA_DIR/models/default, or pass --models.\n" + "!" * 78
)


def _probs(p: tuple[float, ...]) -> str:
    return " ".join(f"{v:.2f}" for v in p)


def render_diagnosis(
    dx: Any, lang: str, *, indent: str = "  ", shown: dict[tuple[str, ...], str] | None = None
) -> list[str]:
    """Text lines for one diagnosis: symptoms, scalp type, notes, guide, products.

    `shown` maps scalp-type tuples already printed (guide and products) to the photo that printed
    them; a later photo with the same types refers to it instead of repeating the text.
    """
    from deeproot.diagnose.guide import render

    ko = lang == "ko"
    out = [f"{indent}{'증상' if ko else 'symptoms'} (" + " / ".join(_class_names(dx, ko)) + "):"]
    for s in dx.symptoms:
        sym = taxonomy.symptom(s.symptom)
        name = sym.ko if ko else sym.en
        label = s.label if ko else s.label_en
        out.append(f"{indent}  {_pad(name, 30)} {_pad(label, 14)} [{_probs(s.probabilities)}]")
    types = ", ".join(
        taxonomy.scalp_type(t).ko if ko else taxonomy.scalp_type(t).en for t in dx.scalp.types
    )
    out.append(f"{indent}{'두피 타입' if ko else 'scalp type'}: {types}")
    for n in (*dx.scalp.notes, *dx.concern_checks):
        out.append(f"{indent}{'참고' if ko else 'note'}: {n.text(lang)}")
    if shown is not None and dx.scalp.types in shown:
        same = "위와 같음" if ko else "same as for"
        out.append(
            f"{indent}{'관리 가이드, 추천 제품' if ko else 'care guide, products'}: "
            f"{same} {shown[dx.scalp.types]}"
        )
        return out
    if dx.guides:
        out.append(f"{indent}{'관리 가이드' if ko else 'care guide'}:")
        for g in dx.guides:
            out += [f"{indent}  {line}" for line in render(g).splitlines()]
    if dx.products is not None:
        out.append(f"{indent}{'추천 제품' if ko else 'products'}:")
        for c in dx.products.categories:
            what = ", ".join(
                taxonomy.scalp_type(t).ko if ko else taxonomy.scalp_type(t).en
                for t in dx.products.types
            )
            if ko:
                head = (
                    f"{c.category_ko}: {what} 두피 타입에 맞는 제품 {c.n_fit}개 중 "
                    f"{len(c.picks)}개를 추천합니다"
                )
            else:
                head = f"{c.category}: {len(c.picks)} of {c.n_fit} for {what} scalps"
            out.append(f"{indent}  {head}")
            for p in c.picks:
                rating = f"{p.rating:.1f}" if p.rating is not None else "-"
                reviews = f"{p.review_count:,}" if p.review_count is not None else "-"
                out.append(f"{indent}    {p.rank}. [{p.brand}] {p.name}  ★{rating} ({reviews})")
                if p.matched:
                    names = ", ".join(dict.fromkeys(m.canonical for m in p.matched))
                    out.append(f"{indent}       {'성분' if ko else 'matched'}: {names}")
                if p.product_url:
                    out.append(f"{indent}       {p.product_url}")
    return out


def _class_names(dx: Any, ko: bool) -> list[str]:
    from deeproot.diagnose.infer import _class_en

    n = len(dx.symptoms[0].probabilities)
    if ko:
        from deeproot.taxonomy import SEVERITIES_3, SEVERITIES_4

        return list(SEVERITIES_3 if n == 3 else SEVERITIES_4)
    return [_class_en([""] * n, i) for i in range(n)]


def render_report(rep: Any) -> str:
    """The text form of a DiagnoseReport (stdout)."""
    ko = rep.lang == "ko"
    lines: list[str] = []
    shown: dict[tuple[str, ...], str] = {}
    if rep.survey_echo:
        lines += [rep.survey_echo, ""]
    for p in rep.photos:
        size = f" ({p.size[0]}x{p.size[1]})" if p.size else ""
        lines.append(f"{p.photo}{size}")
        if p.status == "error":
            lines.append(f"  error: {p.error}")
        for _, msg in p.warnings:
            lines.append(f"  {'경고' if ko else 'warning'}: {msg}")
        if p.status == "withheld":
            lines.append(
                "  진단하지 않았습니다 (--force 로 강제 진단)"
                if ko
                else "  not diagnosed (use --force to diagnose anyway)"
            )
        if p.diagnosis is not None:
            if rep.visit is not None:
                lines += render_diagnosis(p.diagnosis, rep.lang)[: 1 + len(p.diagnosis.symptoms)]
            else:
                lines += render_diagnosis(p.diagnosis, rep.lang, shown=shown)
                shown.setdefault(p.diagnosis.scalp.types, p.photo)
        lines.append("")
    if rep.visit is not None:
        n = sum(p.status == "diagnosed" for p in rep.photos)
        lines.append(f"{'방문 종합' if ko else 'visit'} ({n} {'장' if ko else 'photos'}):")
        lines += render_diagnosis(rep.visit, rep.lang)
        lines.append("")
    lines.append(rep.disclaimer)
    return "\n".join(lines)


def emit(rep: Any, as_json: bool) -> None:
    """Print a report: banner and warnings to stderr, results to stdout; exit non-zero on errors."""
    if rep.demo:
        typer.echo(BANNER, err=True)
    typer.echo(f"model: {rep.bundle} on {rep.provider}", err=True)
    for w in rep.warnings:
        if not (rep.demo and w.startswith("results come from a DEMO model")):
            typer.echo(f"warning: {w}", err=True)
    for p in rep.photos:
        if p.status == "error":
            typer.echo(f"error: {p.error}", err=True)
    if as_json:
        typer.echo(json.dumps(rep.to_json(), ensure_ascii=False, indent=2))
    else:
        typer.echo(render_report(rep))
    if rep.exit_code:
        # A DeeprootError, not typer.Exit: main() maps it to one line and exit status 1.
        bad = [p for p in rep.photos if p.status != "diagnosed"]
        errors = sum(p.status == "error" for p in bad)
        raise NotDiagnosed(
            f"{len(bad)} of {len(rep.photos)} photo(s) not diagnosed ({errors} unreadable,"
            f" {len(bad) - errors} failed the quality check)"
        )


def diagnose_cmd(
    photos: Annotated[
        list[Path], typer.Argument(help="Scalp photos (JPEG, PNG or WebP).", metavar="PHOTO")
    ],
    models: Annotated[
        Path | None,
        typer.Option(
            "--models",
            help="Model bundle folder (default: $DEEPROOT_DATA_DIR/models/default, else the demo).",
        ),
    ] = None,
    survey_type: Annotated[
        str | None, typer.Option("--survey-type", help="Survey: your scalp type, 건성|지성.")
    ] = None,
    concern: Annotated[
        list[str] | None,
        typer.Option("--concern", help="Survey: a symptom that concerns you (repeat)."),
    ] = None,
    category: Annotated[
        list[str] | None,
        typer.Option("--category", help="Survey: a product category you want (repeat)."),
    ] = None,
    device: Annotated[str, typer.Option("--device", help="auto, cpu or cuda.")] = "auto",
    db: Annotated[
        Path | None,
        typer.Option("--db", help="Catalog database (default: $DEEPROOT_DATA_DIR/catalog.duckdb)."),
    ] = None,
    lang: Annotated[str, typer.Option("--lang", help="ko or en.")] = "ko",
    visit: Annotated[
        bool, typer.Option("--visit", help="Combine the photos of one visit (mean probabilities).")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Diagnose photos that fail the quality check.")
    ] = False,
    guide: Annotated[
        str,
        typer.Option("--guide", help="curated, or chat (DEEPROOT_CHAT_* endpoint; falls back)."),
    ] = "curated",
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the deeproot.diagnose/1 JSON report.")
    ] = False,
) -> None:
    """Diagnose scalp photos: six symptom severities, scalp type, care guide and products."""
    from deeproot.diagnose.service import diagnose

    rep = diagnose(
        photos,
        models=models,
        survey_type=survey_type,
        concerns=tuple(concern or ()),
        categories=tuple(category or ()),
        device=device,
        db=db,
        lang=lang,
        visit=visit,
        force=force,
        guide=guide,
    )
    emit(rep, as_json)


def demo_cmd(
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", help="Keep the demo crawl and catalog here (default: temp)."),
    ] = None,
    lang: Annotated[str, typer.Option("--lang", help="ko or en.")] = "ko",
    models: Annotated[
        Path | None,
        typer.Option("--models", help="Model bundle (default: the shipped demo bundle)."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the deeproot.diagnose/1 JSON report.")
    ] = False,
) -> None:
    """Run the whole flow offline: sample site, crawl, catalog, diagnosis, guide, products."""
    from deeproot.demo import run_demo

    def progress(msg: str) -> None:
        typer.echo(f"demo: {msg}", err=True)

    rep = run_demo(data_dir, lang=lang, models=models, progress=progress)
    emit(rep, as_json)


def register(app: typer.Typer) -> None:
    """Add `diagnose` and `demo` to the app."""
    app.command("diagnose")(diagnose_cmd)
    app.command("demo")(demo_cmd)
