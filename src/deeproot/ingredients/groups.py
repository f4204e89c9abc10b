"""Option groups of multi-product lists: headers such as `[타입A]`, `<1926.마릴린>`, `■ 증정 6ml`,
`1. 복숭아향 :`, `S19 :`, a product-name line above its list, or a header glued to the end of the
previous list. Also drops seller notes (`* 제공된 성분은 …`)."""

from __future__ import annotations

import re

from deeproot.ingredients.dictionary import Dictionary

# separators of ingredient lists (a comma between digits is part of a name: 1,2-헥산다이올)
SEPARATORS = re.compile(r"(?<!\d),|,(?!\d)|[@;\n、]")
_BRACKET_HEAD = re.compile(
    r"^\s*(?:\[([^\[\]\n]{1,80})\]|<([^<>\n]{1,80})>|【([^【】\n]{1,80})】)\s*"
)
_BULLET_HEAD = re.compile(r"^\s*[■□◆◇●○▶▷★☆]\s*(.+?)\s*$")
_COLON_HEAD = re.compile(r"^\s*((?:\d{1,2}\s*[.)]\s*)?[^,:@\n]{1,60}?)\s*:\s*(?=\S)")
_NOTE_LINE = re.compile(
    r"^\s*(?:[*※]|\(?주\)?\s*의|참고\s*[:)]|\[?ILN\d+\]?)|습니다|바랍니다|십시오|드립니다|"
    r"있습니다|변경될|함량\s*:|유래\s*성분"
)
_MID_HEAD = re.compile(r"\[([^\[\]\n]{1,80})\]|<([^<>\n]{1,80})>|【([^【】\n]{1,80})】")


def split_groups(text: str, d: Dictionary) -> list[tuple[str | None, str]]:
    """Cut the text into (label, body) pieces at group headers."""
    lines = [ln.strip().lstrip("'\"“”‘’`") for ln in text.split("\n")]
    lines = [ln for line in lines for ln in _cut_mid_headers(line) if ln and not _is_note(ln)]
    groups: list[tuple[str | None, list[str]]] = [(None, [])]
    for i, line in enumerate(lines):
        rest = line
        label = None
        m = _BRACKET_HEAD.match(rest)
        if m:
            label = next(g for g in m.groups() if g is not None).strip()
            rest = rest[m.end() :]
        else:
            m = _BULLET_HEAD.match(rest)
            if m and SEPARATORS.search(m.group(1)):
                rest = m.group(1)  # "■ 정제수, 글리세린, …": a bullet before the list itself
            elif m:
                label, rest = m.group(1), ""
            elif _is_bare_header(line, lines[i + 1] if i + 1 < len(lines) else "", d):
                label, rest = line, ""
        if label is not None:
            groups.append((_clean_label(label), []))
        # colon headers, at the start of a line or glued after a list's last ingredient
        for part_label, part in _colon_parts(rest, d):
            if part_label is not None:
                groups.append((_clean_label(part_label), []))
            if part:
                groups[-1][1].append(part)
    out = [(lbl, "\n".join(body)) for lbl, body in groups if body]
    if len(out) == 1 and out[0][0] is not None and len([g for g in groups if g[0]]) == 1:
        # a single labelled list ("S19 : …", "[텐더블룸] …") is still one option group
        return out
    return out


def _cut_mid_headers(line: str) -> list[str]:
    """Put a bracketed header found inside a line on a line of its own:
    "…, 리날룰[메종 드 파리]정제수, …" -> "…, 리날룰" / "[메종 드 파리]정제수, …"."""
    out: list[str] = []
    start = 0
    for m in _MID_HEAD.finditer(line):
        inner = next(g for g in m.groups() if g is not None)
        if m.start() == 0 or _is_amount(inner) or re.fullmatch(r"\s*ILN\d+\s*", inner, re.I):
            continue
        if line[m.start() - 1] in "([{":
            continue
        out.append(line[start : m.start()])
        start = m.start()
    out.append(line[start:])
    return [x.strip() for x in out if x.strip()]


def _colon_parts(line: str, d: Dictionary) -> list[tuple[str | None, str]]:
    """Split a line at `label : list` headers; the first part keeps the current group."""
    if ":" not in line:
        return [(None, line)]
    parts: list[tuple[str | None, str]] = []
    label: str | None = None
    rest = line
    while True:
        colon = _top_level(rest, ":")
        if colon < 0:
            parts.append((label, rest))
            return parts
        m = _COLON_HEAD.match(rest)
        if m and m.end() <= colon:
            m = None  # the match crossed a parenthesis: "…(3:1)"
        if m and not _looks_like_list(m.group(1)):
            if label is not None or parts:
                parts.append((label, ""))
            label = m.group(1)
            rest = rest[m.end() :]
            continue
        # a header glued to the end of the previous list: "…, 리날룰S20 : 라우릭애씨드, …"
        head_start = (
            max(_top_level(rest[:colon], ",", last=True), _top_level(rest[:colon], "@", last=True))
            + 1
        )
        chunk = rest[head_start:colon].strip()
        value_after = rest[colon + 1 :].strip()
        if not chunk or _is_amount(value_after.split(",")[0]):
            parts.append((label, rest))
            return parts
        known_prefix = longest_known_prefix(chunk, d)
        before = rest[:head_start] + chunk[:known_prefix]
        parts.append((label, before))
        label = chunk[known_prefix:].strip() or chunk
        rest = rest[colon + 1 :]


def _is_amount(s: str) -> bool:
    return bool(re.fullmatch(r"\s*\d+(?:\.\d+)?\s*(?:%|ppm|ppb|mg|g)?\s*", s, re.I))


def _top_level(s: str, ch: str, *, last: bool = False) -> int:
    """Index of the first (or last) `ch` outside parentheses, -1 when none."""
    depth = 0
    found = -1
    for i, c in enumerate(s):
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth = max(0, depth - 1)
        elif c == ch and depth == 0:
            if not last:
                return i
            found = i
    return found


def _looks_like_list(s: str) -> bool:
    return "," in s or "@" in s


def longest_known_prefix(s: str, d: Dictionary) -> int:
    """Length of the longest start of `s` (spaces allowed inside) that is a known name."""
    compact = s.replace(" ", "")
    for end in range(len(compact), 1, -1):
        if d.known(compact[:end]):
            # map back onto s, which may hold spaces
            seen = 0
            for i, ch in enumerate(s):
                if ch != " ":
                    seen += 1
                if seen == end:
                    return i + 1
    return 0


def _is_note(line: str) -> bool:
    return bool(_NOTE_LINE.search(line)) and "," not in line[:40]


def _is_bare_header(line: str, next_line: str, d: Dictionary) -> bool:
    """A line such as "실크 케라틴 워터팩 2X" that names the product of the list under it."""
    if SEPARATORS.search(line) or ":" in line or not next_line:
        return False
    if len(SEPARATORS.findall(next_line)) < 2:
        return False  # the next line is no list: this may be one ingredient per line
    if d.known(line):
        return False
    return " " in line.strip() or bool(re.search(r"\d+\s*(?:ml|g|X|x|매|개)\b", line))


def _clean_label(label: str) -> str | None:
    label = re.sub(r"\s+", " ", label).strip(" :'\"*■□◆●")
    # "성분 : 정제수, …" announces the list; it names no option
    return None if re.fullmatch(r"(?:전\s*)?성분(?:\s*(?:표|명|표시|정보))?", label) else label
