"""The curated care guide (SPEC §7) shipped in `deeproot/data/care_guide.yaml`, Korean and English.

For each scalp type: causes, characteristics and three care steps (cleansing, hair-care products,
scalp care). Several diagnosed types give one guide each. Works offline; `chat.py` may replace the
text with a chat model's answer.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources
from typing import Any

from deeproot import taxonomy
from deeproot.errors import DataError, InputError

LANGS = ("ko", "en")
STEP_KEYS = ("cleansing", "products", "scalp_care")
FORMAT = "deeproot.care_guide/1"


@dataclass(frozen=True)
class CareStep:
    """One care step: its key (`cleansing`, `products`, `scalp_care`), title and text."""

    key: str
    title: str
    text: str


@dataclass(frozen=True)
class CareGuide:
    """The guide for one scalp type in one language.

    Attributes:
        type: scalp-type key.
        lang: "ko" or "en".
        title: e.g. "지성 두피 (피지과다)".
        causes: short lines.
        characteristics: short lines.
        steps: the three care steps in order.
        source: "curated" (shipped text) or "chat" (a chat model's answer).
        text: the full free text when source is "chat", else "".
    """

    type: str
    lang: str
    title: str
    causes: tuple[str, ...]
    characteristics: tuple[str, ...]
    steps: tuple[CareStep, ...]
    source: str = "curated"
    text: str = ""

    def to_json(self) -> dict[str, Any]:
        """JSON form used by `deeproot diagnose --json`."""
        return {
            "type": self.type,
            "lang": self.lang,
            "title": self.title,
            "causes": list(self.causes),
            "characteristics": list(self.characteristics),
            "steps": [{"key": s.key, "title": s.title, "text": s.text} for s in self.steps],
            "source": self.source,
            "text": self.text,
        }


def check_lang(lang: str) -> str:
    """Validate a `--lang` value."""
    if lang not in LANGS:
        raise InputError(f"unknown language {lang!r}; valid: {', '.join(LANGS)}")
    return lang


@functools.cache
def _data() -> dict[str, Any]:
    import yaml

    res = resources.files("deeproot.data").joinpath("care_guide.yaml")
    try:
        data = yaml.safe_load(res.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise DataError(
            f"the shipped care guide cannot be read ({exc}); reinstall deeproot"
        ) from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise DataError(f"the shipped care guide is not {FORMAT}; reinstall deeproot")
    return data


def disclaimer(lang: str = "ko") -> str:
    """The one-line not-medical-advice disclaimer."""
    return str(_data()["disclaimer"][check_lang(lang)])


def guide(scalp_type: str, lang: str = "ko") -> CareGuide:
    """The curated guide for one scalp type (key or Korean label)."""
    key = taxonomy.scalp_type(scalp_type).key
    check_lang(lang)
    data = _data()
    try:
        entry = data["types"][key][lang]
        titles = data["step_titles"]
        steps = tuple(CareStep(k, titles[k][lang], entry["steps"][k].strip()) for k in STEP_KEYS)
        return CareGuide(
            type=key,
            lang=lang,
            title=entry["title"],
            causes=tuple(entry["causes"]),
            characteristics=tuple(entry["characteristics"]),
            steps=steps,
        )
    except (KeyError, TypeError) as exc:
        raise DataError(f"the shipped care guide lacks {key}/{lang} ({exc}); reinstall") from exc


def guides(types: tuple[str, ...] | list[str], lang: str = "ko") -> tuple[CareGuide, ...]:
    """One guide per diagnosed type, in the order given, duplicates dropped."""
    return tuple(guide(t, lang) for t in dict.fromkeys(types))


def render(g: CareGuide) -> str:
    """Plain-text rendering of one guide (the CLI and the chat prompt use it)."""
    if g.source == "chat" and g.text:
        return f"{g.title}\n{g.text.strip()}"
    head = (
        ("원인", "특징", "관리 방법")
        if g.lang == "ko"
        else (
            "Causes",
            "Characteristics",
            "Care",
        )
    )
    lines = [g.title, f"{head[0]}:"]
    lines += [f"  - {c}" for c in g.causes]
    lines.append(f"{head[1]}:")
    lines += [f"  - {c}" for c in g.characteristics]
    lines.append(f"{head[2]}:")
    lines += [f"  {i}. {s.title}: {s.text}" for i, s in enumerate(g.steps, 1)]
    return "\n".join(lines)
