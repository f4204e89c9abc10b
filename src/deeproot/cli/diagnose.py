"""`deeproot diagnose` and `deeproot demo`: thin wrappers over `diagnose()` and `run_demo()`.

Output is wrapped to the terminal width (`$COLUMNS`, else the terminal, else 80) by display width
(Hangul takes two columns), in one language per run (`--lang`), and `--quiet` leaves only errors
on stderr. Options with fixed values are enums, so `--help` lists the choices.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import unicodedata
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Annotated, Any

import typer

from deeproot import taxonomy
from deeproot.cli._options import (
    FreeOfOpt,
    IncludeSoldOutOpt,
    NoAllergensOpt,
    one_of,
)
from deeproot.errors import InputError
from deeproot.terminal import printable


class SurveyType(StrEnum):
    """Survey question 1: SPEC §2 offers only dry and oily."""

    dry_ko = "건성"
    oily_ko = "지성"
    dry = "dry"
    oily = "oily"


CONCERNS: tuple[str, ...] = tuple(x for s in taxonomy.SYMPTOMS for x in (s.key, s.ko))
CATEGORY_CHOICES: tuple[str, ...] = tuple(x for c in taxonomy.CATEGORIES for x in (c.key, c.ko))


class Device(StrEnum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class Lang(StrEnum):
    ko = "ko"
    en = "en"


class GuideSource(StrEnum):
    curated = "curated"
    chat = "chat"


class NotDiagnosed(InputError):
    """Some photos were not diagnosed; main() prints this one line and exits 3."""


# --- display width and wrapping -------------------------------------------------------------


def _cw(ch: str) -> int:
    if unicodedata.combining(ch):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in "WF" else 1


def display_width(text: str) -> int:
    """Columns `text` takes on a terminal (Hangul and other wide characters take two)."""
    return sum(_cw(ch) for ch in text)


def _pad(text: str, width: int) -> str:
    """Left-justify by display width."""
    return text + " " * max(0, width - display_width(text))


def terminal_width() -> int:
    """`$COLUMNS`, else the terminal's width, else 80; at least 40."""
    return max(40, shutil.get_terminal_size((80, 24)).columns)


_HANG = re.compile(r"(?:- |\d+\. |[^\W\d][\w ()/·-]{0,19}: |!! )")


def _hard_break(word: str, room: int) -> list[str]:
    out, cur, w = [], "", 0
    for ch in word:
        if w + _cw(ch) > room and cur:
            out.append(cur)
            cur, w = "", 0
        cur += ch
        w += _cw(ch)
    return [*out, cur]


def wrap(line: str, width: int) -> list[str]:
    """One output line wrapped to `width` columns, continuation lines under the text they
    continue (after a list marker or a `label: `); words longer than a line are broken."""
    if display_width(line) <= width:
        return [line]
    body = line.lstrip(" ")
    indent = line[: len(line) - len(body)]
    m = _HANG.match(body)
    hang = indent + " " * (display_width(m.group(0)) if m else 0)
    if display_width(hang) > width // 2:
        hang = indent
    out: list[str] = []
    cur, cur_w = indent, display_width(indent)
    first = True
    for word in body.split(" "):
        ww = display_width(word)
        sep = 0 if cur_w == display_width(hang if not first else indent) else 1
        if cur_w + sep + ww <= width:
            cur += (" " if sep else "") + word
            cur_w += sep + ww
            continue
        if cur.strip():
            out.append(cur)
            first = False
        cur, cur_w = hang, display_width(hang)
        if cur_w + ww > width:
            pieces = _hard_break(word, width - cur_w)
            out += [hang + p for p in pieces[:-1]]
            word, ww = pieces[-1], display_width(pieces[-1])
        cur += word
        cur_w += ww
    if cur.strip():
        out.append(cur)
    return out


def wrap_text(text: str, width: int | None = None) -> str:
    """Every line of `text` wrapped to `width` (default: the terminal's)."""
    w = width or terminal_width()
    return "\n".join(part for line in text.split("\n") for part in wrap(line, w))


def _short_url(url: str, room: int) -> str:
    """The URL as is when it fits, else without the scheme and `www.`."""
    if display_width(url) <= room:
        return url
    return re.sub(r"^https?://(www\.)?", "", url)


@cache
def _english_names() -> dict[str, str]:
    """MFDS standard Korean name -> its English (INCI) name, where the table has one."""
    from deeproot.ingredients.dictionary import mfds_rows

    # "Bentonite,CI 77004": the first of several INCI names
    return {ko: re.split(r"[;,/]", inci)[0].strip() for ko, _s, inci in mfds_rows() if inci.strip()}


def ingredient_name(name: str, lang: str) -> str:
    """An ingredient's name in `lang`: the MFDS English name for `en` where there is one."""
    if lang != "en":
        return name
    return _english_names().get(name, name)


def _flag_label(flag: str, lang: str) -> str:
    from deeproot.ingredients.flags import FLAG_LABELS

    return FLAG_LABELS.get(flag, {}).get(lang, flag)


BANNER = {
    "en": (
        "!" * 78 + "\n"
        "!! DEMO MODEL: these results come from a model trained on SYNTHETIC images.\n"
        "!! They are NOT a medical assessment. Install a trained bundle with\n"
        "!! `deeproot models install FILE_OR_URL --sha256 HEX`, or pass --models.\n" + "!" * 78
    ),
    "ko": (
        "!" * 78 + "\n"
        "!! 데모 모델: 합성(SYNTHETIC) 이미지로 학습한 모델의 결과입니다.\n"
        "!! 의학적 평가가 아닙니다. 학습된 모델을 `deeproot models install\n"
        "!! 파일_또는_URL --sha256 HEX`로 설치하거나 --models 로 지정하세요.\n" + "!" * 78
    ),
}
_WORDS = {
    "en": {
        "model": "model",
        "error": "error",
        "warning": "warning",
        "withheld": "not diagnosed (use --force to diagnose anyway)",
        "demo_quiet": "(DEMO model: not a medical assessment)",
        "sold_out": "SOLD OUT",
        "allergens": "fragrance allergens",
        "free_of": "free of",
        "functional": "hair-loss functional cosmetic",
        "none": "none",
        "unknown": "unknown (no ingredient list)",
    },
    "ko": {
        "model": "모델",
        "error": "오류",
        "warning": "경고",
        "withheld": "진단하지 않았습니다 (--force 로 강제 진단)",
        "demo_quiet": "(데모 모델 결과: 의학적 평가가 아님)",
        "sold_out": "품절",
        "allergens": "알레르기 유발 향료 성분",
        "free_of": "무첨가",
        "functional": "탈모 증상 완화 기능성 화장품",
        "none": "없음",
        "unknown": "알 수 없음 (전성분 정보 없음)",
    },
}


def _probs(p: tuple[float, ...]) -> str:
    return " ".join(f"{v:.2f}" for v in p)


def _pick_lines(
    p: Any, lang: str, indent: str, width: int, *, sensitive: bool = False
) -> list[str]:
    w = _WORDS["en" if lang == "en" else "ko"]
    rating = f"{p.rating:.1f}" if p.rating is not None else "-"
    reviews = f"{p.review_count:,}" if p.review_count is not None else "-"
    sold = f" [{w['sold_out']}]" if getattr(p, "sold_out", None) else ""
    out = [f"{indent}{p.rank}. [{p.brand}] {p.name}  ★{rating} ({reviews}){sold}"]
    sub = indent + "   "
    if p.matched:
        names = ", ".join(dict.fromkeys(ingredient_name(m.canonical, lang) for m in p.matched))
        out.append(f"{sub}{'matched' if lang == 'en' else '성분'}: {names}")
    badges = []
    if getattr(p, "hair_loss_functional_claim", False):
        badges.append(w["functional"])
    allergens = getattr(p, "allergens", ()) or ()
    if allergens:
        names = ", ".join(ingredient_name(a, lang) for a in allergens)
        cautions = getattr(p, "cautions", ()) or ()
        caution = "! " if sensitive or cautions else ""
        out.append(f"{sub}{caution}{w['allergens']}: {names}")
    elif sensitive:
        # a sensitive scalp sees the allergen line on every product (issue 10)
        known = getattr(p, "free_of", None) is not None
        out.append(f"{sub}{w['allergens']}: {w['none'] if known else w['unknown']}")
    free = getattr(p, "free_of", None)
    if free:
        badges.append(f"{w['free_of']}: " + ", ".join(_flag_label(f, lang) for f in free))
    if badges:
        out.append(f"{sub}" + " · ".join(badges))
    if p.product_url:
        out.append(f"{sub}{_short_url(p.product_url, width - len(sub))}")
    return out


def render_diagnosis(
    dx: Any,
    lang: str,
    *,
    indent: str = "  ",
    shown: dict[tuple[str, ...], str] | None = None,
    width: int | None = None,
) -> list[str]:
    """Text lines for one diagnosis: symptoms, scalp type, notes, guide, products.

    `shown` maps scalp-type tuples already printed (guide and products) to the photo that printed
    them; a later photo with the same types refers to it instead of repeating the text.
    """
    from deeproot.diagnose.guide import render

    width = width or terminal_width()
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
            sensitive = "sensitive" in dx.products.types
            for p in c.picks:
                out += _pick_lines(p, lang, indent + "    ", width, sensitive=sensitive)
    return out


def _class_names(dx: Any, ko: bool) -> list[str]:
    from deeproot.diagnose.infer import _class_en

    n = len(dx.symptoms[0].probabilities)
    if ko:
        from deeproot.taxonomy import SEVERITIES_3, SEVERITIES_4

        return list(SEVERITIES_3 if n == 3 else SEVERITIES_4)
    return [_class_en([""] * n, i) for i in range(n)]


def render_report(rep: Any, width: int | None = None, *, quiet: bool = False) -> str:
    """The text form of a DiagnoseReport (stdout), wrapped to `width` columns."""
    width = width or terminal_width()
    ko = rep.lang == "ko"
    w = _WORDS["ko" if ko else "en"]
    lines: list[str] = []
    shown: dict[tuple[str, ...], str] = {}
    if quiet and rep.demo:
        lines.append(w["demo_quiet"])
    if rep.survey_echo:
        lines += [rep.survey_echo, ""]
    for p in rep.photos:
        size = f" ({p.size[0]}x{p.size[1]})" if p.size else ""
        lines.append(f"{printable(p.photo)}{size}")
        if p.status == "error":
            lines.append(f"  {w['error']}: {printable(p.error or '')}")
        for _, msg in p.warnings:
            lines.append(f"  {w['warning']}: {msg}")
        if p.status == "withheld":
            lines.append(f"  {w['withheld']}")
        if p.diagnosis is not None:
            if rep.visit is not None:
                lines += render_diagnosis(p.diagnosis, rep.lang, width=width)[
                    : 1 + len(p.diagnosis.symptoms)
                ]
            else:
                lines += render_diagnosis(p.diagnosis, rep.lang, shown=shown, width=width)
                shown.setdefault(p.diagnosis.scalp.types, printable(p.photo))
        lines.append("")
    if rep.visit is not None:
        n = sum(p.status == "diagnosed" for p in rep.photos)
        lines.append(f"{'방문 종합' if ko else 'visit'} ({n} {'장' if ko else 'photos'}):")
        lines += render_diagnosis(rep.visit, rep.lang, width=width)
        lines.append("")
    lines.append(rep.disclaimer)
    return wrap_text("\n".join(lines), width)


def _is_quiet(quiet: bool) -> bool:
    """--quiet on the command, or the global `deeproot --quiet` (root logger at ERROR)."""
    return quiet or logging.getLogger().getEffectiveLevel() >= logging.ERROR


def emit(rep: Any, as_json: bool, *, quiet: bool = False) -> None:
    """Print a report: banner and warnings to stderr, results to stdout; exit non-zero on errors.

    Quiet: only the per-photo errors on stderr (no banner, model line or warnings).
    """
    quiet = _is_quiet(quiet)
    lang = "ko" if rep.lang == "ko" else "en"
    w = _WORDS[lang]
    width = terminal_width()

    def err(text: str) -> None:
        typer.echo(wrap_text(printable(text), width), err=True)

    if not quiet:
        if rep.demo:
            typer.echo(BANNER[lang], err=True)
        err(f"{w['model']}: {rep.bundle} ({rep.provider})")
        from deeproot.diagnose.service import DEMO_WARNING

        for warning in rep.warnings:
            if not (rep.demo and warning == DEMO_WARNING.get(rep.lang)):
                err(f"{w['warning']}: {warning}")
    for p in rep.photos:
        if p.status == "error":
            err(f"{w['error']}: {p.error}")
    if as_json:
        typer.echo(json.dumps(rep.to_json(), ensure_ascii=False, indent=2))
    else:
        typer.echo(render_report(rep, width, quiet=quiet))
    if rep.exit_code:
        # A DeeprootError, not typer.Exit: main() maps it to one line and the exit status 3.
        bad = [p for p in rep.photos if p.status != "diagnosed"]
        errors = sum(p.status == "error" for p in bad)
        if lang == "ko":
            msg = (
                f"사진 {len(rep.photos)}장 중 {len(bad)}장을 진단하지 못했습니다"
                f" (읽을 수 없음 {errors}장, 사진 확인에서 보류 {len(bad) - errors}장)"
            )
        else:
            msg = (
                f"{len(bad)} of {len(rep.photos)} photo(s) not diagnosed ({errors} unreadable,"
                f" {len(bad) - errors} failed the quality check)"
            )
        raise NotDiagnosed(msg)


def diagnose_cmd(
    photos: Annotated[
        list[Path], typer.Argument(help="Scalp photos (JPEG, PNG or WebP).", metavar="PHOTO")
    ],
    models: Annotated[
        Path | None,
        typer.Option(
            "--models",
            help="Model bundle folder (default: the installed bundle, else the demo).",
        ),
    ] = None,
    survey_type: Annotated[
        SurveyType | None,
        typer.Option("--survey-type", help="Survey question 1: your scalp type (dry or oily)."),
    ] = None,
    concern: Annotated[
        list[str] | None,
        typer.Option(
            "--concern",
            metavar="SYMPTOM",
            callback=one_of(CONCERNS),
            help="Survey question 2, repeatable: a symptom that concerns you, one of "
            + ", ".join(f"{s.key}|{s.ko}" for s in taxonomy.SYMPTOMS)
            + ".",
        ),
    ] = None,
    category: Annotated[
        list[str] | None,
        typer.Option(
            "--category",
            metavar="CATEGORY",
            callback=one_of(CATEGORY_CHOICES),
            help="Survey question 3, repeatable: a product category, one of "
            + ", ".join(f"{c.key}|{c.ko}" for c in taxonomy.CATEGORIES)
            + ".",
        ),
    ] = None,
    device: Annotated[Device, typer.Option("--device", help="onnxruntime device.")] = Device.auto,
    db: Annotated[
        Path | None,
        typer.Option("--db", help="Catalog database (default: $DEEPROOT_DATA_DIR/catalog.duckdb)."),
    ] = None,
    lang: Annotated[Lang, typer.Option("--lang", help="Language of the whole output.")] = Lang.ko,
    visit: Annotated[
        bool, typer.Option("--visit", help="Combine the photos of one visit (mean probabilities).")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Diagnose photos that fail the photo check.")
    ] = False,
    guide: Annotated[
        GuideSource,
        typer.Option("--guide", help="Care guide: curated, or chat (DEEPROOT_CHAT_*; falls back)."),
    ] = GuideSource.curated,
    free_of: FreeOfOpt = None,
    no_allergens: NoAllergensOpt = False,
    include_sold_out: IncludeSoldOutOpt = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the deeproot.diagnose/1 JSON report.")
    ] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Only errors on stderr (no banner, no model).")
    ] = False,
) -> None:
    """Diagnose scalp photos: six symptom severities, scalp type, care guide and products."""
    from deeproot.diagnose.service import diagnose

    if db is not None and not db.is_file():
        # an explicit catalog that is not there is a typo, not an empty success; the default
        # catalog missing stays a warning (a fresh install diagnoses without products)
        raise InputError(
            f"카탈로그 데이터베이스 {printable(str(db))} 이(가) 없습니다; --db 를 확인하거나 빼세요"
            if lang.value == "ko"
            else f"catalog database {printable(str(db))} does not exist; check --db, or leave it "
            "out to use the default catalog"
        )
    rep = diagnose(
        photos,
        models=models,
        survey_type=survey_type.value if survey_type else None,
        concerns=tuple(concern or ()),
        categories=tuple(category or ()),
        device=device.value,
        db=db,
        lang=lang.value,
        visit=visit,
        force=force,
        guide=guide.value,
        free_of=tuple(free_of or ()),
        no_allergens=no_allergens,
        include_sold_out=include_sold_out,
    )
    emit(rep, as_json, quiet=quiet)


def demo_cmd(
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", help="Keep the demo crawl and catalog here (default: scratch)."),
    ] = None,
    lang: Annotated[Lang, typer.Option("--lang", help="Language of the whole output.")] = Lang.ko,
    models: Annotated[
        Path | None,
        typer.Option("--models", help="Model bundle (default: the shipped demo bundle)."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the deeproot.diagnose/1 JSON report.")
    ] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Only errors on stderr (no progress, no banner).")
    ] = False,
) -> None:
    """Run the whole flow offline: sample site, crawl, catalog, diagnosis, guide, products."""
    from deeproot.demo import run_demo

    q = _is_quiet(quiet)

    def progress(msg: str) -> None:
        if not q:
            typer.echo(wrap_text(f"demo: {msg}"), err=True)

    rep = run_demo(data_dir, lang=lang.value, models=models, progress=progress)
    emit(rep, as_json, quiet=q)


def register(app: typer.Typer) -> None:
    """Add `diagnose` and `demo` to the app."""
    app.command("diagnose")(diagnose_cmd)
    app.command("demo")(demo_cmd)
