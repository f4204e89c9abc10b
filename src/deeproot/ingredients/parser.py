"""Parsing raw 전성분 text, as Olive Young publishes it, into ingredient tokens.

Real lists use commas, `@`, newlines, `<br>`, full-width punctuation, slashes, only spaces, or
nothing at all; commas also occur inside names (`1,2-헥산다이올`) and decorations
(`티트리잎추출물(230,545ppm)`). Multi-product lists carry headers (`[타입A]`, `<1926.마릴린>`,
`■ 증정 6ml`, `1. 복숭아향 : …`) that become option groups. Where separators are missing, names
are cut out of the run by dictionary segmentation against the MFDS standard names.
"""

from __future__ import annotations

import html
import re
import unicodedata
from functools import lru_cache

from deeproot.ingredients.dictionary import Dictionary, fold_with_map, key, load_dictionary
from deeproot.ingredients.groups import longest_known_prefix, split_groups
from deeproot.ingredients.model import ParsedList, Token

MAX_TEXT_CHARS = 100_000  # a real list is under 5,000 characters; beyond this it is not a list

_PLACEHOLDER = re.compile(
    r"^(?:[-–—.·\s]+|(?:상세\s*(?:페이지|설명|이미지)|제품\s*(?:상세|포장|용기)?|본문|이미지)\s*"
    r"(?:을|를)?\s*(?:참고|참조|확인)(?:\s*(?:해\s*주세요|바랍니다|하세요))?[.!\s]*)$"
)
_TAGS = re.compile(r"<\s*br\s*/?\s*>|</?\s*(?:p|div|li|tr|td|th|dd|dt|ul|ol|table)\b[^>]*>", re.I)
_OTHER_TAGS = re.compile(r"</?[a-zA-Z][^<>]{0,200}>")
# A header opening a line: [타입A], <1926.마릴린>, 【…】, ■ text, 1. text :, text :
_SENTENCE = re.compile(
    r"습니다|바랍니다|십시오|드립니다|변경될\s*수|함량|유래\s*성분|기재|표기|발견되|\s성분$"
)
_DIGIT_COMMA = re.compile(r"(?<=\d),(?=\d)")
# ᅳ/ㅡ (a vowel letter typed for a dash) never starts a name
_LEAD_JUNK = re.compile(r"^[\s*'\"“”‘’`•·■□▶▷※\-–—_~+\u1173\u3161]+")
_TRAIL_JUNK = re.compile(r"[\s*'\"“”‘’`•·.。_~+†‡§※]+$")
_TRAIL_PAREN = re.compile(r"\s*[(\[{]([^()\[\]{}]*)[)\]}]\s*$")
_TRAIL_AMOUNT = re.compile(
    r"\s*(\d+(?:[.,]\d+)*\s*(?:%|ppm|ppb|mg|g|ml|㎖|μg|ug|iu)(?!\w))\s*$", re.I
)
_ILN = re.compile(r"\[?\s*ILN\d+\s*\]?", re.I)
_HANGUL = re.compile(r"[가-힣]")
_MAX_SEGMENT_NAME = 80


# words of product names (used to recognise a product header glued to an ingredient)
_PRODUCT_WORDS_RE = (
    r"샴푸|린스|컨디셔너|트리트먼트|토닉|스케일러|에센스|앰플|세럼|미스트|스프레이|크림|로션|"
    r"스칼프|헤어팩|두피팩|클렌저|폴리쉬"
)


class _Seg(str):
    """A name cut out of an unseparated run by dictionary segmentation."""


def parse(text: str | None, dictionary: Dictionary | None = None) -> ParsedList:
    """Parse a raw ingredient text into tokens and option groups.

    Args:
        text: the 전성분 text as published (None or "" for a missing list).
        dictionary: the MFDS dictionary (the shipped one when omitted).

    Returns:
        A ParsedList; `placeholder` is true for texts such as "상세페이지 참고".
    """
    if text is None:
        return ParsedList(raw=None, placeholder=False)
    d = dictionary or load_dictionary()
    clean = _clean(text)
    if not clean.strip():
        return ParsedList(raw=text, placeholder=False)
    if _PLACEHOLDER.match(clean.strip()):
        return ParsedList(raw=text, placeholder=True)
    groups = split_groups(clean, d)
    tokens: list[Token] = []
    labels: list[str] = []
    for label, body in groups:
        if label is not None and label not in labels:
            labels.append(label)
        for name_text in _tokenize(body, d):
            tok = _make_token(name_text, label, len(tokens), d)
            if tok is not None:
                tokens.append(tok)
    return ParsedList(raw=text, placeholder=False, tokens=tuple(tokens), groups=tuple(labels))


# Characters that hide or reorder text and bytes no label contains: ANSI escape sequences, C0/C1
# controls other than tab and line breaks, zero-width and bidi format characters, BOMs, soft
# hyphens. Glued to a name they would make it unknown (or invisible when echoed), so they go first.
_CONTROLS = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]?"
    r"|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2064"
    r"\u2066-\u2069\ufeff]"
)


def strip_controls(text: str) -> str:
    """`text` without control, zero-width and bidi characters (tabs and line breaks kept)."""
    return _CONTROLS.sub("", text) if _CONTROLS.search(text) else text


def _clean(text: str) -> str:
    s = strip_controls(text)
    s = s.replace("\r\n", "\n").replace("\r", "\n")
    s = _TAGS.sub("\n", s)
    s = _OTHER_TAGS.sub(" ", s)
    s = html.unescape(s)
    s = unicodedata.normalize("NFKC", s)  # full-width ，：＊ become , : *
    return s.replace("\u00a0", " ").replace("\u200b", "")


# --- tokens ----------------------------------------------------------------------------------


def _tokenize(body: str, d: Dictionary) -> list[str]:
    """Split one group's body into name texts (decorations still attached)."""
    body = _ILN.sub(" ", body)
    pieces = _split_outside_parens(body)
    if len(pieces) == 1 and " " not in pieces[0].strip():
        single = pieces[0].strip()
        if not _known_name(single, d) and len(single) > 12:
            if "/" in single:
                cut = _best_cut(single.split("/"), re.compile(r"/"), d)
                if cut is not None:
                    return cut
            return _segment(single, d)  # no separators at all
        return [single]
    if len(pieces) == 1:
        return _split_words(pieces[0], d)  # separated by spaces only
    # slashes separate a few lists ("오일/호호바씨오일/…"); most slashes are inside names
    if sum(p.count("/") for p in pieces) > len(pieces) and len(pieces) <= 3:
        pieces = [q for p in pieces for q in _split_slashes(p, d)]
    return _repair(pieces, d)


def _split_outside_parens(body: str) -> list[str]:
    """Split on separators that are not inside parentheses and not between digits."""
    out: list[str] = []
    depth = 0
    start = 0
    n = len(body)
    for i, ch in enumerate(body):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth = max(0, depth - 1)
        elif depth == 0 and ch in ",@;\n、":
            if ch == "," and 0 < i < n - 1 and body[i - 1].isdigit() and body[i + 1].isdigit():
                continue
            out.append(body[start:i])
            start = i + 1
    out.append(body[start:])
    return [p for p in (x.strip() for x in out) if p]


def _known_name(text: str, d: Dictionary) -> bool:
    return d.known(_strip_decorations(text)[0])


def _repair(pieces: list[str], d: Dictionary) -> list[str]:
    """Fix separators that real lists get wrong: missing, misplaced or wrapped lines."""
    out: list[str] = []
    i = 0
    while i < len(pieces):
        p = pieces[i]
        # a name wrapped across lines or cut at a comma: "페닐트라이메" + "티콘"
        if i + 1 < len(pieces) and not _known_name(p, d):
            joined = p + pieces[i + 1]
            joined_comma = p + "," + pieces[i + 1]
            if _known_name(joined, d):
                out.append(joined)
                i += 2
                continue
            if _known_name(joined_comma, d):
                out.append(joined_comma)
                i += 2
                continue
        if not _known_name(p, d):
            out.extend(_resplit(p, d))
        else:
            out.append(p)
        i += 1
    return out


def _resplit(piece: str, d: Dictionary) -> list[str]:
    """Split an unknown piece at digit commas, slashes or spaces, or by segmentation, but only
    when every part is then a known name; otherwise keep it whole (reported as unknown)."""
    name, _ = _strip_decorations(piece)
    if len(name) < 4:
        return [piece]
    for splitter in (_DIGIT_COMMA, re.compile(r"/"), re.compile(r"\s+"), _NAME_DOT):
        if splitter.search(name):
            parts = _best_cut(splitter.split(name), splitter, d)
            if parts is not None:
                return parts
    if " " not in name and len(name) >= 8:
        parts = _segment(name, d, require_full=True)
        if len(parts) > 1:
            return parts
    return _cut_glued_label(piece, name, d)


# "향료.티트리잎오일": a full stop between two names (never between digits: 0.2%)
_NAME_DOT = re.compile(r"(?<!\d)\.(?!\d)")
_LABELISH = re.compile(rf"\s|\d+\s*(?:ml|g|매)|^\d{{1,2}}\.|TM|[-:]$|{_PRODUCT_WORDS_RE}", re.I)


def _cut_glued_label(piece: str, name: str, d: Dictionary) -> list[str]:
    """A product name glued between two ingredients ("리날룰2.버베나라벤더정제수") or before the
    first one ("헤어 토닉 350ml정제수"): keep the ingredients, drop the label."""
    p = longest_known_prefix(name, d)
    q = _longest_known_suffix(name, d)
    if q >= len(name) and p and _LABELISH.search(name[p:]):
        return [name[:p].strip()]  # "리날룰2. 트리트먼트": an ingredient, then a product name
    if q >= len(name) or (p == 0 and q == 0):
        return [piece]
    middle = name[p:q] if p <= q else ""
    prefix = [name[:p].strip()] if p else []
    suffix = [name[q:].strip()]
    if p and p > q:
        return [piece]
    if not middle.strip():
        return [*prefix, *suffix]
    if _LABELISH.search(middle):
        return [*prefix, *suffix]
    return [piece]


def _longest_known_suffix(s: str, d: Dictionary) -> int:
    for start in range(0, max(0, len(s) - 1)):
        if s[start] != " " and d.known(s[start:]):
            return start
    return len(s)


def _best_cut(parts: list[str], splitter: re.Pattern, d: Dictionary) -> list[str] | None:
    """Regroup parts (joined by the original separator) into the fewest known names."""
    joiner = {_DIGIT_COMMA.pattern: ",", "/": "/", _NAME_DOT.pattern: "."}.get(
        splitter.pattern, " "
    )
    n = len(parts)
    best: list[list[str] | None] = [None] * (n + 1)
    best[0] = []
    for i in range(n):
        if best[i] is None:
            continue
        for j in range(n, i, -1):
            cand = joiner.join(parts[i:j])
            if _known_name(cand, d):
                prev = best[i]
                assert prev is not None
                if best[j] is None or len(prev) + 1 < len(best[j]):  # type: ignore[arg-type]
                    best[j] = [*prev, cand]
    result = best[n]
    if result is None or len(result) < 2:
        return None
    return result


def _split_slashes(piece: str, d: Dictionary) -> list[str]:
    if _known_name(piece, d):
        return [piece]
    parts = _best_cut(piece.split("/"), re.compile(r"/"), d)
    return parts if parts is not None else [piece]


def _split_words(text: str, d: Dictionary) -> list[str]:
    """A space-separated list: words, merged where a name holds spaces, segmented where glued."""
    words = _paren_words(text.split())
    out: list[str] = []
    i = 0
    while i < len(words):
        for span in (3, 2):
            if i + span <= len(words):
                cand = " ".join(words[i : i + span])
                if _known_name(cand, d) and not all(_known_name(w, d) for w in words[i : i + span]):
                    out.append(cand)
                    i += span
                    break
        else:
            w = words[i]
            if _known_name(w, d) or len(w) < 8 or "(" in w:
                out.append(w)
            else:
                out.extend(_segment(w, d))
            i += 1
    return out


def _paren_words(words: list[str]) -> list[str]:
    """Words with spaces inside parentheses joined back ("아쿠아(아벤느 온천수)") and a bare
    parenthesised group joined to the word before it ("향료 (식물 유래 향)")."""
    out: list[str] = []
    depth = 0
    for w in words:
        if depth > 0 or (w.startswith("(") and out and depth == 0 and not _opens(out[-1])):
            out[-1] = out[-1] + " " + w
        else:
            out.append(w)
        depth = max(0, depth + w.count("(") - w.count(")"))
    return out


def _opens(word: str) -> bool:
    return word.count("(") > word.count(")")


def _segment(run: str, d: Dictionary, *, require_full: bool = False) -> list[str]:
    """Cut an unseparated run into dictionary names (fewest unknown characters, then fewest
    names); unknown stretches stay as single unknown pieces."""
    name, _ = _strip_decorations(run)
    compact = key(name)
    folded, index = fold_with_map(compact)
    n = len(folded)
    unknown_cost = 1000
    inf = float("inf")
    cost = [inf] * (n + 1)
    back: list[tuple[int, bool]] = [(0, False)] * (n + 1)
    cost[0] = 0
    max_len = min(d.max_len, n, _MAX_SEGMENT_NAME)
    prefixes = d.fold_prefixes
    is_key = d.known_folded
    for i in range(n):
        if cost[i] == inf:
            continue
        # names of 2+ characters from i, stopping where no name starts with the text so far
        # (each end j is tried once per start i, so the order of j does not change the result)
        for j in range(i + 1, min(n, i + max_len) + 1):
            sub = folded[i:j]
            if sub not in prefixes:
                break
            if j > i + 1 and is_key(sub):
                c = cost[i] + 1
                if c < cost[j]:
                    cost[j] = c
                    back[j] = (i, True)
        c = cost[i] + unknown_cost
        if c < cost[i + 1]:
            cost[i + 1] = c
            back[i + 1] = (i, False)
    pieces: list[tuple[int, int, bool]] = []
    j = n
    while j > 0:
        i, known = back[j]
        if not known and pieces and not pieces[-1][2] and pieces[-1][0] == j:
            pieces[-1] = (i, pieces[-1][1], False)
        else:
            pieces.append((i, j, known))
        j = i
    pieces.reverse()
    if require_full and not all(k for _, _, k in pieces):
        return [run]
    return [_Seg(compact[index[a] : index[b]]) for a, b, _ in pieces]


# Pure (the dictionary is process-wide), and the parser asks it about the same pieces many times
# (every repair and resplit looks again): cached, bounded.
@lru_cache(maxsize=50_000)
def _strip_decorations(text: str) -> tuple[str, tuple[str, ...]]:
    """Name and decorations: `카페인(0.2%)` -> (`카페인`, (`0.2%`,))."""
    s = _LEAD_JUNK.sub("", text)
    s = _TRAIL_JUNK.sub("", s)
    attrs: list[str] = []
    d = load_dictionary()
    while True:
        if d.known(s):
            break
        star = s.find("*")
        if star > 0 and d.known(s[:star].strip()):
            attrs.insert(0, s[star + 1 :].strip())
            s = s[:star].strip()
            continue
        m = _TRAIL_PAREN.search(s)
        if m and m.start() > 0:
            inner = m.group(1).strip()
            if inner:
                attrs.insert(0, inner)
            s = _TRAIL_JUNK.sub("", s[: m.start()])
            continue
        m = _TRAIL_AMOUNT.search(s)
        if m and m.start() > 0 and _HANGUL.search(s[: m.start()]):
            attrs.insert(0, m.group(1).replace(" ", ""))
            s = s[: m.start()].rstrip()
            continue
        break
    return re.sub(r"\s+", " ", s).strip(), tuple(attrs)


def _make_token(text: str, group: str | None, position: int, d: Dictionary) -> Token | None:
    segmented = isinstance(text, _Seg)
    text = text.strip()
    name, attrs = _strip_decorations(text)
    if not name or not re.search(r"[가-힣A-Za-z]", name):
        return None
    if not d.known(name):
        if _SENTENCE.search(name) or is_note(name) or _PRODUCT_ONLY.search(name):
            return None  # a seller's note or a product name, not an ingredient
        name, attrs = _name_in_parens(name, attrs, d)
    return Token(
        text=text, name=name, attrs=attrs, group=group, position=position, segmented=segmented
    )


# Seller's notes split into words ("식물 / 유래 / 향"): a piece made only of these words is a note.
_NOTE_WORDS = (
    r"식물|식물성|천연|자연|유래|향|성분|유기농|오가닉|인증|원료|함유|코코넛|추출|합성|무첨가"
)
_NOTE = re.compile(rf"^[\s*※/·,]*(?:(?:{_NOTE_WORDS})[\s*※/·,]*)+$")
# A product name that ended up as a piece ("그루밍토닉", "스프레이"): it ends in a product word.
# Invented from the real headers seen in the shared crawl; applies only to unknown names.
# (크림 and 로션 are left out here: an unknown "…크림" may be an ingredient, and stays unknown)
_PRODUCT_WORDS = (
    r"샴푸|린스|컨디셔너|트리트먼트|토닉|스케일러|에센스|앰플|세럼|미스트|스프레이|"
    r"스칼프팩|헤어팩|클렌저"
)
_PRODUCT_ONLY = re.compile(rf"^[^,]{{0,30}}(?:{_PRODUCT_WORDS})$")
_LEAD_PAREN = re.compile(r"^\(([^()]{1,40})\)\s*")


def is_note(name: str) -> bool:
    """Whether an unknown piece is a seller's note made of note words only (식물 유래 향)."""
    return bool(_NOTE.match(name))


def _name_in_parens(
    name: str, attrs: tuple[str, ...], d: Dictionary
) -> tuple[str, tuple[str, ...]]:
    """An unknown name whose parentheses hold the real one: "(헤어그루밍토닉)정제수" (a header
    in front), "아쿠아(아벤느 온천수)" (the MFDS name inside, after a brand word)."""
    m = _LEAD_PAREN.match(name)
    if m and d.known(name[m.end() :]):
        return name[m.end() :], (m.group(1), *attrs)
    for k, inner in enumerate(attrs):
        words = inner.split()
        for cand in (inner, "".join(words), words[-1] if len(words) > 1 else ""):
            if len(cand) >= 2 and d.known(cand):
                return cand, (*attrs[:k], name, *attrs[k + 1 :])
    return name, attrs


__all__ = ["MAX_TEXT_CHARS", "is_note", "parse"]


# --- fast path for plain comma lists ---------------------------------------------------------

_NOT_SIMPLE = re.compile(r"[\n\r\[\]<>【】■□◆◇●○▶▷★☆:*※@;、&\u00a0\u200b\uff00-\uffef]")
_PAREN_COMMA = re.compile(r"\([^()]*?(?:(?<!\d),|,(?!\d))[^()]*\)")
_SIMPLE_SPLIT = re.compile(r"(?<!\d),|,(?!\d)")


def simple_pieces(text: str) -> list[str] | None:
    """The comma-separated pieces of a plain list, or None when the text needs the full parser.

    A plain list has more than three pieces, a comma early on, no group headers, notes, markup
    or compatibility characters: there the full parser reduces to splitting plus `piece_names`.
    """
    if "," not in text[:40] or _NOT_SIMPLE.search(text) or _PAREN_COMMA.search(text):
        return None
    if not unicodedata.is_normalized("NFKC", text):
        return None
    text = text.strip().lstrip("'\"“”‘’`")  # as the parser does at the start of a line
    raw = text.split(",")
    if _DIGIT_COMMA.search(text):  # "1,2-헥산다이올": glue back commas between digits
        raw = _SIMPLE_SPLIT.split(text)
    pieces = [q for q in (p.strip() for p in raw) if q]
    return pieces if len(pieces) > 3 else None


def piece_known(piece: str, d: Dictionary | None = None) -> bool:
    """Whether a piece is a known name once decorations are stripped."""
    return _known_name(piece, d or load_dictionary())


def joins_with_next(piece: str, following: str, d: Dictionary | None = None) -> bool:
    """Whether the full parser would join an unknown piece with the next one."""
    d = d or load_dictionary()
    return _known_name(piece + following, d) or _known_name(piece + "," + following, d)


def piece_tokens(piece: str, d: Dictionary | None = None) -> tuple[Token, ...]:
    """The tokens one piece of a plain list becomes (positions from 0, no group)."""
    d = d or load_dictionary()
    texts = [piece] if _known_name(piece, d) else _resplit(piece, d)
    out: list[Token] = []
    for t in texts:
        tok = _make_token(t, None, len(out), d)
        if tok is not None:
            out.append(tok)
    return tuple(out)
