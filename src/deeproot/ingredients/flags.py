"""Ingredient flags people shop by: fragrance allergens, MFDS hair-loss functional actives and the
"free-of" families (sulfate surfactants, silicones, parabens, mineral oil, synthetic colours,
fragrance), plus the functional-cosmetic claim of a product notice.

A flag is decided on the token's MFDS standard name (after the normaliser's synonyms, old
spellings and guarded fuzzy rules), never on a raw substring of the label: 설페이트 inside
콘드로이틴설페이트 is not a sulfate surfactant and 유제놀 inside 메틸유제놀 is not 유제놀.

The curated names live in `deeproot/data/ingredient_flags.csv` (one row per name, with the legal
or documented source). Families add a documented rule over the MFDS dictionary (its Korean
standard names and INCI names), evaluated once per standard name; see `_RULES`.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

from deeproot.ingredients.dictionary import key, mfds_rows

FLAGS: tuple[str, ...] = (
    "allergen",
    "hair_loss_functional",
    "sulfate_surfactant",
    "silicone",
    "paraben",
    "mineral_oil",
    "synthetic_colour",
    "fragrance",
)
# The families a shopper filters out ("sulfate-free", "silicone-free", ...).
FREE_OF: tuple[str, ...] = FLAGS[2:]

FLAG_LABELS: dict[str, dict[str, str]] = {
    "allergen": {"ko": "알레르기 유발 향료 성분", "en": "fragrance allergen"},
    "hair_loss_functional": {
        "ko": "탈모 증상 완화 기능성 성분",
        "en": "hair-loss functional active",
    },
    "sulfate_surfactant": {"ko": "황산계 계면활성제", "en": "sulfate surfactant"},
    "silicone": {"ko": "실리콘", "en": "silicone"},
    "paraben": {"ko": "파라벤", "en": "paraben"},
    "mineral_oil": {"ko": "광물성 오일", "en": "mineral oil"},
    "synthetic_colour": {"ko": "합성 착색료(타르색소)", "en": "synthetic colour (tar colour)"},
    "fragrance": {"ko": "향료", "en": "fragrance"},
}

FLAG_SOURCES: dict[str, str] = {
    "allergen": (
        "MFDS 화장품 사용 시의 주의사항 및 알레르기 유발성분 표시에 관한 규정 [별표 2] "
        "착향제의 구성 성분 중 알레르기 유발성분 (25종)"
    ),
    "hair_loss_functional": (
        "MFDS 기능성화장품 기준 및 시험방법 [별표 9] 탈모 증상의 완화에 도움을 주는 "
        "기능성화장품 원료 (덱스판테놀, 비오틴, 엘-멘톨, 징크피리치온, 징크피리치온액(50%))"
    ),
    "sulfate_surfactant": (
        "deeproot curated list + rule: alkyl and alkyl-ether sulfate salts by their MFDS names "
        "(INCI ...yl Sulfate / ...eth-n Sulfate); inorganic and sugar sulfates excluded"
    ),
    "silicone": (
        "deeproot curated list + rule: MFDS names whose INCI is a siloxane, methicone, "
        "dimethiconol or silsesquioxane"
    ),
    "paraben": (
        "deeproot rule: MFDS names whose INCI is an ester or salt of 4-hydroxybenzoic acid "
        "(…paraben)"
    ),
    "mineral_oil": (
        "deeproot curated list: petroleum-derived hydrocarbons (mineral oil, petrolatum, paraffin, "
        "microcrystalline wax, ceresin, ozokerite); synthetic polyolefins excluded"
    ),
    "synthetic_colour": (
        "MFDS 화장품의 색소 종류와 기준 및 시험방법 [별표 1] tar colours by MFDS name (적색40호 …) "
        "and Colour Index numbers below 75000 (synthetic organic; 75000+ natural and inorganic)"
    ),
    "fragrance": "화장품법 시행규칙 [별표 4] 전성분 표시: 착향제는 '향료'로 표시",
}

FUNCTIONAL_CLAIMS: tuple[str, ...] = (
    "whitening",
    "anti_wrinkle",
    "uv",
    "hair_dye",
    "hair_removal",
    "hair_loss",
    "acne",
    "atopic_dryness",
    "stretch_marks",
)


@dataclass(frozen=True)
class FlagEntry:
    """One curated row of the flag table."""

    flag: str
    name: str  # the name as the legal list writes it
    match: str  # the MFDS standard name it matches (== name unless MFDS spells it otherwise)
    source: str
    note: str = ""


@dataclass(frozen=True)
class FlagHit:
    """A flag a standard name carries, with the entry and the way it matched."""

    flag: str
    entry: str
    source: str
    how: str  # name | rule


def _read_flag_rows() -> list[dict[str, str]]:
    path = resources.files("deeproot.data").joinpath("ingredient_flags.csv")
    with path.open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@cache
def flag_entries() -> tuple[FlagEntry, ...]:
    """The curated flag table shipped as data."""
    out = []
    for r in _read_flag_rows():
        flag = r["flag"].strip()
        if flag not in FLAGS:
            raise ValueError(f"ingredient_flags.csv: unknown flag {flag!r}")
        name = r["name_ko"].strip()
        out.append(
            FlagEntry(
                flag=flag,
                name=name,
                match=(r.get("mfds_name") or "").strip() or name,
                source=r["source"].strip(),
                note=(r.get("note") or "").strip(),
            )
        )
    return tuple(out)


class FlagIndex:
    """Which flags an MFDS standard name carries: curated names first, then the family rules.

    Built once per process (`load_flag_index`); lookups are cached per standard name.
    """

    def __init__(self, entries: tuple[FlagEntry, ...], mfds: list[tuple[str, str]]):
        self.entries = entries
        self._by_key: dict[str, list[FlagEntry]] = {}
        for e in entries:
            self._by_key.setdefault(key(e.match), []).append(e)
        # MFDS rows by standard-name key; the family rules run on a row the first time its name
        # is looked up (a catalog meets a few thousand of the 21,723 names)
        # (standard names are the dictionary's own strings, so no key() is needed here)
        self._inci: dict[str, str] = dict(mfds)
        self._cache: dict[str, tuple[FlagHit, ...]] = {}
        self._members: dict[str, list[str]] = {}

    def _rule_hits(self, canonical: str) -> list[tuple[str, str]]:
        inci = self._inci.get(canonical)
        return rule_flags(canonical, inci) if inci is not None else []

    def members(self, flag: str) -> list[str]:
        """Standard-name keys of a flag (curated and by rule), for documentation and tests."""
        if not self._members:
            by_flag: dict[str, set[str]] = {f: set() for f in FLAGS}
            for k, es in self._by_key.items():
                for e in es:
                    by_flag[e.flag].add(k)
            for name in self._inci:
                for f, _ in self._rule_hits(name):
                    by_flag[f].add(key(name))
            self._members = {f: sorted(v) for f, v in by_flag.items()}
        return self._members[flag]

    def match_written(self, written: str) -> tuple[FlagHit, ...]:
        """Flags a written name carries on its own when it reaches no standard name: a bare
        Colour Index number of a synthetic colour ("CI 42090")."""
        if synthetic_ci(written) and _CI_ONLY.fullmatch(written.strip()):
            src = FLAG_SOURCES["synthetic_colour"]
            return (FlagHit("synthetic_colour", "rule: Colour Index < 75000", src, "rule"),)
        return ()

    def match(self, canonical: str | None) -> tuple[FlagHit, ...]:
        """Flags of one standard name (unknown tokens carry none: a flag needs a name)."""
        if canonical is None:
            return ()
        hit = self._cache.get(canonical)
        if hit is not None:
            return hit
        found: list[FlagHit] = []
        seen: set[str] = set()
        for e in self._by_key.get(key(canonical), ()):
            if e.flag not in seen:
                seen.add(e.flag)
                found.append(FlagHit(e.flag, e.name, e.source, "name"))
        for flag, rule in self._rule_hits(canonical):
            if flag not in seen:
                seen.add(flag)
                found.append(FlagHit(flag, rule, FLAG_SOURCES[flag], "rule"))
        found.sort(key=lambda h: FLAGS.index(h.flag))
        out = tuple(found)
        self._cache[canonical] = out
        return out


# -- family rules ----------------------------------------------------------------------------------
# Each rule reads one MFDS row (Korean standard name and INCI name) and is evaluated once per row
# when the index is built, so a label name reaches a family only through its standard name.

# sulfate_surfactant: an alkyl or alkyl-ether sulfate salt. INCI "<counter-ion(s)> <stem>[-n]
# Sulfate" with the stem a fatty alkyl, a fatty alkyl ether (…eth) or an ethoxylated amide; the
# counter-ion part is free (Sodium, Ammonium, TEA-, MIPA-, Magnesium/TEA-, an amine). Inorganic
# sulfates (Zinc Sulfate), sugar and protein sulfates (Chondroitin, Dextran), sterol sulfates,
# quaternary methosulfates/ethosulfates and hair-dye sulfates have no such stem.
_ALKYL = (
    r"Lauryl|Myristyl|Cetyl|Stearyl|Cetearyl|Decyl|Tridecyl|Oleyl|Caprylyl|Ethylhexyl|Coco|"
    r"Babassu|Palm Kernel|Tallow|Cocomonoglyceride|C\d+-\d+ (?:Sec-)?Alkyl|"
    r"Coco/[A-Za-z /]+"
)
_ALKYL_ETHER = (
    r"Laureth|Myreth|Oleth|Coceth|Trideceth|Deceth|Laneth|Capryleth|"
    r"C\d+-\d+ (?:Sec-)?Alketh|Octoxynol|Dodoxynol|Butoxynol|"
    r"PEG-\d+ (?:Cocamide|Lauramide)|PPG-\d+/PEG-\d+ Lauryl Ether"
)
_SULFATE_INCI = re.compile(
    rf"(?:^|[\s/-])(?:{_ALKYL}|{_ALKYL_ETHER})(?:-\d+)?[\s-]Sulfate$", re.IGNORECASE
)
# silicone: a siloxane polymer by its INCI root (…methicone, dimethiconol, …siloxane,
# silsesquioxane, siloxysilicate, Silicone Quaternium). Silanes, silica and silylates are not.
_SILICONE_INCI = re.compile(
    r"methicon(?:e|ol|yl)|siloxane|siloxy|silsesquioxane|\bsilicone\b", re.IGNORECASE
)
# paraben: an ester or salt of 4-hydroxybenzoic acid; INCI "…paraben" as a whole word.
_PARABEN_INCI = re.compile(r"paraben\b", re.IGNORECASE)
# synthetic_colour: a tar colour by its MFDS name (적색40호, 염기성청색99호 …) or a Colour Index
# number below 75000 (synthetic organic; 75000-75999 natural, 77000+ inorganic pigments).
_TAR_NAME = re.compile(
    r"^(?:염기성|산성|분산|에이치씨|에치씨|피그먼트)?"
    r"(?:적색|황색|청색|녹색|등색|자색|흑색|갈색)\d+호"
)
_CI = re.compile(r"\bC\.?\s?I\.?\s?(\d{5})\b", re.IGNORECASE)
_SYNTHETIC_CI_MAX = 75000
_CI_ONLY = re.compile(r"C\.?\s?I\.?\s?\d{5}(?::\d)?", re.IGNORECASE)


def rule_flags(name_ko: str, inci: str) -> list[tuple[str, str]]:
    """(flag, rule) pairs the family rules give one MFDS row."""
    out: list[tuple[str, str]] = []
    incis = [i.strip() for i in _INCI_SPLIT.split(inci or "") if i.strip()]
    if any(_SULFATE_INCI.search(i) for i in incis):
        out.append(("sulfate_surfactant", "rule: alkyl/alkyl-ether sulfate (INCI)"))
    if any(_SILICONE_INCI.search(i) for i in incis):
        out.append(("silicone", "rule: siloxane/methicone (INCI)"))
    if any(_PARABEN_INCI.search(i) for i in incis):
        out.append(("paraben", "rule: …paraben (INCI)"))
    if _TAR_NAME.match(name_ko):
        out.append(("synthetic_colour", "rule: tar colour name (…호)"))
    elif synthetic_ci(inci):
        out.append(("synthetic_colour", "rule: Colour Index < 75000"))
    return out


def synthetic_ci(text: str) -> bool:
    """Whether a text carries a Colour Index number of a synthetic organic colour."""
    return any(int(n) < _SYNTHETIC_CI_MAX for n in _CI.findall(text or ""))


# INCI cells list several names separated by commas; "CI 15850:1" keeps its colon
_INCI_SPLIT = re.compile(r",(?!\d)")


@cache
def load_flag_index() -> FlagIndex:
    """The process-wide flag index over the shipped table."""
    return FlagIndex(flag_entries(), [(name.strip(), inci) for name, _, inci in mfds_rows()])


# -- functional claims ----------------------------------------------------------------------------

_NONE = re.compile(
    r"^(?:[-–—·.\s]*|해당\s*(?:사항|사향)?\s*(?:없음|무|아님|없습니다)|비\s*해당|없음|무|"
    r"n/?a|none|x|일반\s*화장품|기능성\s*(?:화장품\s*)?(?:아님|해당\s*없음|미해당))[.\s]*$",
    re.IGNORECASE,
)
# A claim keyword; the first group of each says which claim it is.
_CLAIM_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("whitening", re.compile(r"미\s*백|멜라닌\s*색소|기미\s*[·,/]?\s*주근깨")),
    ("anti_wrinkle", re.compile(r"주\s*름")),
    ("uv", re.compile(r"자외선")),
    ("hair_dye", re.compile(r"염\s*모|모발의?\s*색상|탈\s*색|탈\s*염|염\s*색")),
    ("hair_removal", re.compile(r"체\s*모|제\s*모")),
    ("hair_loss", re.compile(r"탈\s*모")),
    ("acne", re.compile(r"여\s*드\s*름")),
    ("atopic_dryness", re.compile(r"아\s*토\s*피|피부\s*장벽")),
    ("stretch_marks", re.compile(r"튼\s*살")),
)
# "탈모 증상 완화 기능성 아님", "미백 해당없음": a claim word followed by a denial
_DENIAL = re.compile(
    r"^[^,/;\n]{0,40}?(?:해당\s*(?:사항\s*)?(?:없음|무)|아님|아닙니다|아니다|미해당|비해당|없음)"
)


def functional_claims(text: str | None) -> tuple[str, ...]:
    """The MFDS functional-cosmetic claims a notice's "기능성 화장품 식품의약품안전처 심사필 유무"
    row states, in `FUNCTIONAL_CLAIMS` order: "hair_loss" for 탈모 증상 완화, "whitening",
    "anti_wrinkle", "uv", "hair_dye", "hair_removal", "acne", "atopic_dryness", "stretch_marks".

    "해당없음", "해당사항 없음", "비해당", empty or None give (). A claim word followed by a denial
    ("탈모 기능성 아님") is not a claim.
    """
    if not text:
        return ()
    t = " ".join(text.split())
    if _NONE.match(t):
        return ()
    found = set()
    for claim, pat in _CLAIM_PATTERNS:
        for m in pat.finditer(t):
            if _DENIAL.match(t[m.end() :]):
                continue
            found.add(claim)
            break
    return tuple(c for c in FUNCTIONAL_CLAIMS if c in found)


__all__ = [
    "FLAGS",
    "FLAG_LABELS",
    "FLAG_SOURCES",
    "FREE_OF",
    "FUNCTIONAL_CLAIMS",
    "FlagEntry",
    "FlagHit",
    "FlagIndex",
    "flag_entries",
    "load_flag_index",
    "functional_claims",
]
