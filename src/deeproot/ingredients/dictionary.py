"""The MFDS standard-name dictionary: exact names, synonyms, spelling variants and fuzzy lookup.

Owns how a written ingredient name becomes an MFDS standard name. Lookups are keyed on a compact
form (NFKC, no whitespace, one kind of hyphen, lower-case Latin) and, for spelling variants, on a
folded form where old and new spellings coincide (메칠/메틸, 애시드/애씨드, 디/다이, ...). A folded
key shared by two different standard names is ambiguous and never used.
"""

from __future__ import annotations

import collections
import csv
import re
import unicodedata
from dataclasses import dataclass
from functools import cached_property, lru_cache
from importlib import resources

_WS = re.compile(r"\s+")
_DASHES = re.compile(r"[\u2010-\u2015\u2212\uff0d]")

# Old or alternative spellings on labels -> one folded form. Each pair folds the longer modern
# spelling onto the shorter one so that a replacement never re-triggers another.
_FOLDS: tuple[tuple[str, str], ...] = (
    ("나이아신", "니아신"),
    ("애씨드", "애시드"),
    ("에씨드", "애시드"),
    ("메틸", "메칠"),
    ("에틸", "에칠"),
    ("아이소", "이소"),
    ("트라이", "트리"),
    ("다이", "디"),
    ("티콘", "치콘"),
    ("솔베이트", "소르베이트"),
    ("글루코스", "글루코오스"),
    ("하이알루론", "히알루론"),
    ("에이치씨엘", "에이치시엘"),
    ("피씨에이", "피시에이"),
    ("알코올", "알콜"),
    # old label spellings of MFDS words: 히드록시에틸셀룰로오스, 가수분해콩단백질, 베르가못오일
    ("가수분해", "하이드롤라이즈드"),  # old onto modern, so typos of the modern word still match
    ("히드록시", "하이드록시"),
    ("베르가모트", "베르가못"),
    # MFDS renamed Pareth to Alketh and keeps 파레스 as the synonym (C12-14Sec-알케스-3)
    ("알케스", "파레스"),
)
_FOLD_RE = re.compile("|".join(re.escape(a) for a, _ in _FOLDS))
_FOLD_MAP = dict(_FOLDS)


def key(name: str) -> str:
    """Compact lookup key: NFKC, whitespace removed, hyphens unified, Latin lower-cased."""
    s = unicodedata.normalize("NFKC", name)
    s = _DASHES.sub("-", s)
    return _WS.sub("", s).lower()


# "1.2-헥산다이올" and "1-2-헥산다이올" are typed for "1,2-헥산다이올" (same length: positions hold)
_LOCANT = re.compile(r"(?<=\d)[.\-](?=\d+-)")


def fold(k: str) -> str:
    """Fold spelling variants of a key onto one form."""
    return _FOLD_RE.sub(lambda m: _FOLD_MAP[m.group()], _LOCANT.sub(",", k))


def fold_with_map(k: str) -> tuple[str, list[int]]:
    """Fold a key and return, for every folded position, the index in `k` it came from.

    The list has one extra entry (len(k)) so a folded end position maps to an original end.
    """
    k = _LOCANT.sub(",", k)
    out: list[str] = []
    index: list[int] = []
    pos = 0
    for m in _FOLD_RE.finditer(k):
        for i in range(pos, m.start()):
            out.append(k[i])
            index.append(i)
        rep = _FOLD_MAP[m.group()]
        out.append(rep)
        index.extend([m.start()] * len(rep))
        pos = m.end()
    for i in range(pos, len(k)):
        out.append(k[i])
        index.append(i)
    index.append(len(k))
    return "".join(out), index


@dataclass(frozen=True)
class Lookup:
    """A dictionary hit: the standard name and how the written name reached it."""

    canonical: str
    how: str  # exact | synonym | variant | fuzzy
    score: float = 100.0


_SYN_SPLIT = re.compile(r"(?<!\d),|,(?!\d)|[|;]")


class Dictionary:
    """MFDS standard names with synonyms; built once per process (see `load_dictionary`)."""

    def __init__(self, rows: list[tuple[str, str]], extra_aliases: dict[str, str] | None = None):
        """Build from (standard name, synonyms) rows; `extra_aliases` maps label spellings
        that MFDS lacks (from the KCA table) to standard names."""
        self.names: list[str] = []
        self.exact: dict[str, str] = {}
        self.synonym: dict[str, str] = {}
        folded: dict[str, set[str]] = {}
        for name, synonyms in rows:
            name = name.strip()
            if not name:
                continue
            self.names.append(name)
            k = key(name)
            self.exact.setdefault(k, name)
            folded.setdefault(fold(k), set()).add(name)
            for syn in _SYN_SPLIT.split(synonyms or ""):
                syn = syn.strip()
                if not syn:
                    continue
                sk = key(syn)
                if sk in self.exact:
                    continue
                self.synonym.setdefault(sk, name)
                folded.setdefault(fold(sk), set()).add(name)
        for alias, name in (extra_aliases or {}).items():
            ak = key(alias)
            if ak not in self.exact and ak not in self.synonym and key(name) in self.exact:
                self.synonym[ak] = self.exact[key(name)]
                folded.setdefault(fold(ak), set()).add(self.exact[key(name)])
        # a synonym that two standard names claim is not a synonym anyone can rely on
        self.variant: dict[str, str] = {f: next(iter(n)) for f, n in folded.items() if len(n) == 1}
        self.ambiguous: frozenset[str] = frozenset(f for f, n in folded.items() if len(n) > 1)
        self.max_len = max(len(f) for f in folded) if folded else 0
        self._fold_keys = frozenset(folded)
        self._by_length: dict[int, list[tuple[str, str]]] | None = None
        self._known_cache: dict[str, bool] = {}

    def lookup(self, name: str) -> Lookup | None:
        """The standard name for a written name by exact, synonym or variant spelling."""
        k = key(name)
        hit = self.exact.get(k)
        if hit is not None:
            return Lookup(hit, "exact")
        hit = self.synonym.get(k)
        if hit is not None:
            return Lookup(hit, "synonym")
        hit = self.variant.get(fold(k))
        if hit is not None:
            return Lookup(hit, "variant")
        return None

    def known(self, name: str) -> bool:
        """Whether a written name reaches a standard name without fuzzy matching."""
        hit = self._known_cache.get(name)
        if hit is None:
            k = key(name)
            hit = k in self.exact or k in self.synonym or fold(k) in self.variant
            if len(self._known_cache) > 200_000:  # bounded: a build worker meets millions
                self._known_cache.clear()
            self._known_cache[name] = hit
        return hit

    def known_folded(self, folded_key: str) -> bool:
        """Whether an already folded key is a (possibly ambiguous) dictionary entry."""
        return folded_key in self._fold_keys

    @cached_property
    def fold_prefixes(self) -> frozenset[str]:
        """Every prefix of every folded key: segmentation stops extending a candidate name as
        soon as no entry starts with it (built on first use)."""
        return frozenset(k[:i] for k in self._fold_keys for i in range(1, len(k) + 1))

    def fuzzy(self, name: str, *, min_score: float = 92.0, min_len: int = 6) -> Lookup | None:
        """A bounded fuzzy match: long enough, high score, length close, clear winner, and the
        same plant part, polymer and chemical (see `same_substance`)."""
        from rapidfuzz import fuzz, process

        k = fold(key(name))
        if len(k) < min_len or not re.search(r"[가-힣]", k):
            return None
        choices, names = self._near_length(len(k))
        hits = process.extract(k, choices, scorer=fuzz.ratio, limit=5, score_cutoff=min_score)
        hits = [h for h in hits if _plausible_typo(k, h[0]) and same_substance(k, h[0])]
        if not hits:
            return self._one_typo(k, choices, names)
        best_key, score, idx = hits[0]
        best = names[idx]
        if not same_substance(k, fold(key(best))) or _inside(k, fold(key(best))):
            return None  # reached through a synonym that hides a different part or name
        # a near tie between two different standard names is a guess, not a match
        for _other_key, other_score, other_idx in hits[1:]:
            if names[other_idx] != best and score - other_score < 3:
                return None
        return Lookup(best, "fuzzy", float(score))

    def _near_length(self, n: int) -> tuple[list[str], list[str]]:
        """Folded keys (and their names) within 2 characters of length n: a typo keeps length."""
        if self._by_length is None:
            by: dict[int, list[tuple[str, str]]] = {}
            for f, name in sorted(self.variant.items()):
                by.setdefault(len(f), []).append((f, name))
            self._by_length = by
        pairs = [p for m in range(n - 2, n + 3) for p in self._by_length.get(m, ())]
        return [f for f, _ in pairs], [name for _, name in pairs]

    def _one_typo(self, k: str, choices: list[str], names: list[str]) -> Lookup | None:
        """One mistyped letter (살리실식애씨드): a single standard name at edit distance 1,
        digits untouched (C12-13파레스-9 is not C12-13파레스-3)."""
        from rapidfuzz import fuzz, process
        from rapidfuzz.distance import Levenshtein

        if len(k) < 6:
            return None
        hits = process.extract(k, choices, scorer=Levenshtein.distance, limit=3, score_cutoff=1)
        hits = [h for h in hits if _plausible_typo(k, h[0]) and same_substance(k, h[0])]
        found = {names[i] for _, _, i in hits}
        if len(found) != 1:
            return None
        best_key = hits[0][0]
        name = next(iter(found))
        if not same_substance(k, fold(key(name))) or _inside(k, fold(key(name))):
            return None
        return Lookup(name, "fuzzy", float(fuzz.ratio(k, best_key)))


_DIGITS = re.compile(r"\d")


def _plausible_typo(written: str, name: str) -> bool:
    """A misspelling keeps the length and the numbers; one name inside the other is a different
    ingredient (에탄올아민 / 다이에탄올아민) or a cut-off list, not a typo."""
    if abs(len(written) - len(name)) > 2:
        return False
    if _DIGITS.findall(written) != _DIGITS.findall(name):
        return False
    return not _inside(written, name)


def _inside(a: str, b: str) -> bool:
    return a in b or b in a


# What a typo must not change (folded spellings: 메틸 -> 메칠, 다이 -> 디, 애씨드 -> 애시드).
# Plant parts: any difference is another ingredient (예덕나무피 / 예덕나무잎, 치자나무꽃 /
# 치자나무).
# Words that merely contain a part syllable are removed first (피이지 is PEG, 애시드 an acid).
_NOT_PARTS = re.compile(r"애시드|피이지|피피지|피시에이|피롤리|피리|피토|피크|씨엘|씨디")
_PARTS = re.compile(
    r"뿌리줄기|덩이줄기|꽃봉오리|알뿌리|껍질|뿌리|줄기|열매|과피|수피|종자|전초|과육|과즙|수액|"
    r"캘러스|꽃잎|꽃|잎|씨|피|싹|심재|목부"
)
# Chemical words in classes: swapping one member for another is another substance (메칠 / 에칠,
# 클로라이드 / 브로마이드, 코폴리머 / 크로스폴리머); a typo inside one word only loses it.
_CHEM_CLASSES = tuple(
    re.compile(p)
    for p in (
        r"이소프로필|메칠|에칠|프로필|부틸|펜틸|헥실|헵틸|옥틸|노닐|데실|운데실|라우릴|미리스틸|"
        r"세틸|세테아릴|스테아릴|베헤닐|올레일|벤질|페닐",
        r"테트라|펜타|헥사|트리|모노|디",
        r"클로라이드|브로마이드|설페이트|설포네이트|포스페이트|나이트레이트|카보네이트|아세테이트|"
        r"시트레이트|락테이트|벤조에이트|살리실레이트|글루코네이트|석시네이트|옥사이드|하이드록사이드",
        r"소듐|포타슘|칼슘|마그네슘|징크|암모늄|알루미늄|카퍼|리튬|바륨|실버",
        r"크로스폴리머|코폴리머|폴리머",
        r"라우레스|파레스|세테스|스테아레스|올레스|미레스|데세스|코세스|트리데세스",
    )
)


def same_substance(written: str, name: str) -> bool:
    """Whether a fuzzy pair (folded keys) names the same substance: the same plant parts, the
    same slash-separated structure, and no chemical word swapped for another of its class."""
    if written.count("/") != name.count("/"):
        return False
    w_parts = sorted(_PARTS.findall(_NOT_PARTS.sub("", written)))
    n_parts = sorted(_PARTS.findall(_NOT_PARTS.sub("", name)))
    if w_parts != n_parts:
        return False
    for cls in _CHEM_CLASSES:
        w = collections.Counter(cls.findall(written))
        n = collections.Counter(cls.findall(name))
        if (w - n) and (n - w):
            return False
    return True


def _read_csv(name: str) -> list[dict[str, str]]:
    with resources.files("deeproot.data").joinpath(name).open(encoding="utf-8-sig") as fh:
        return list(csv.DictReader(fh))


@lru_cache(maxsize=1)
def mfds_rows() -> tuple[tuple[str, str, str], ...]:
    """(standard name, synonyms, INCI) of every row of the shipped MFDS table (cached)."""
    return tuple(
        (r["name_ko"], r["synonyms_ko"] or "", r["inci"] or "")
        for r in _read_csv("mfds_cosmetic_ingredients.csv")
    )


_CI_NUMBER = re.compile(r"\bCI ?(\d{5}(?::\d)?)")


def colour_index_aliases(rows: tuple[tuple[str, str, str], ...]) -> dict[str, str]:
    """ "CI 42053" -> 녹색3호 for every Colour Index number that exactly one MFDS row carries in
    its INCI cell (labels write colours by CI number alone); shared numbers stay unknown."""
    names: dict[str, set[str]] = {}
    for name, _syn, inci in rows:
        for number in _CI_NUMBER.findall(inci):
            names.setdefault(number, set()).add(name.strip())
    return {f"CI {n}": next(iter(v)) for n, v in names.items() if len(v) == 1}


@lru_cache(maxsize=1)
def load_dictionary() -> Dictionary:
    """The shipped MFDS dictionary, extended with KCA label aliases MFDS lacks, the label aliases
    of `ingredient_aliases.csv` and unambiguous Colour Index numbers (cached)."""
    rows = mfds_rows()
    aliases: dict[str, str] = {}
    for r in _read_csv("kca_scalp_ingredients.csv"):
        for alias in filter(None, (a.strip() for a in r["aliases"].split("|"))):
            aliases.setdefault(alias, r["canonical_ko"])
    for r in _read_csv("ingredient_aliases.csv"):
        aliases.setdefault(r["alias"].strip(), r["name_ko"].strip())
    for alias, name in colour_index_aliases(rows).items():
        aliases.setdefault(alias, name)
    return Dictionary([(name, syn) for name, syn, _ in rows], aliases)
