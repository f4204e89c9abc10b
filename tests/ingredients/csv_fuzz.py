"""A seeded generator of hostile CSV files for the batch reader, and the properties every case
must keep. Shared by `test_fuzz_csv.py` (a few seconds) and `benchmarks/fuzz_csv.py` (long runs).

Each case is a real-looking DeepRoot CSV (index columns, product name, ingredient list, type) in
UTF-8, UTF-8 with BOM or CP949, where some rows are damaged: a bad byte, a stray or unclosed quote,
control characters glued to names, a list wrapped over lines, CRLF endings, an empty list; and now
and then the whole file is truncated or replaced by noise.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

NAMES = [
    "정제수",
    "글리세린",
    "소듐라우레스설페이트",
    "코카미도프로필베타인",
    "다이메티콘",
    "리모넨",
    "리날룰",
    "시트로넬올",
    "제라니올",
    "향료",
    "판테놀",
    "덱스판테놀",
    "바이오틴",
    "멘톨",
    "살리실릭애씨드",
    "나이아신아마이드",
    "카페인",
    "징크피리치온",
    "1,2-헥산다이올",
    "부틸렌글라이콜",
    "메틸파라벤",
    "황색4호",
    "적색504호",
    "미네랄오일",
    "녹차추출물",
    "병풀추출물",
    "소듐클로라이드",
]
CONTROLS = ["\u202e", "\ufeff", "\x07", "\x1b[31m", "\x1b[0m", "\u200b", "\x1b]0;x\x07", "\u2066"]
HEADER = ",Unnamed: 0,page,product_name,ingredient,type"
_MARKS = ("\u202e", "\ufeff", "\x07", "\x1b", "\u200b", "\u2066")
DAMAGE = ("bad_byte", "stray_quote", "open_quote", "controls", "wrap", "empty")


@dataclass
class Case:
    data: bytes
    encoding: str
    clean_texts: list[str] = field(default_factory=list)  # rows no damage touched, in order
    control_rows: list[list[str]] = field(default_factory=list)  # names of "controls" rows
    whole_file: str | None = None  # truncated | noise, when the whole file was damaged


def make_case(rng: random.Random) -> Case:
    encoding = rng.choice(["utf-8", "utf-8-sig", "cp949"])
    enc = "cp949" if encoding == "cp949" else "utf-8"
    eol = "\r\n" if rng.random() < 0.2 else "\n"
    case = Case(b"", encoding)
    out = bytearray(b"\xef\xbb\xbf" if encoding == "utf-8-sig" else b"")
    out += (HEADER + eol).encode(enc)
    for i in range(rng.randint(1, 25)):
        names = rng.sample(NAMES, rng.randint(2, 10))
        text = ", ".join(names)
        damage = rng.choice(DAMAGE) if rng.random() < 0.3 else None
        cell = text
        if damage == "controls":
            marks = CONTROLS if enc == "utf-8" else [c for c in CONTROLS if c.isascii()]
            cell = ", ".join(
                rng.choice(marks) + nm if rng.random() < 0.5 else nm + rng.choice(marks)
                for nm in names
            )
            case.control_rows.append(names)
        elif damage == "wrap":
            cell = text.replace(", ", "," + eol, rng.randint(1, 3))
        elif damage == "empty":
            cell = ""
        row = f'{i},{i},1,상품 {i},"{cell}",지성'
        if damage == "stray_quote":
            pos = rng.randint(0, len(row))
            row = row[:pos] + '"' + row[pos:]
        elif damage == "open_quote":
            last = row.rindex('"')
            row = row[:last] + row[last + 1 :]
        raw = (row + eol).encode(enc)
        if damage == "bad_byte":
            at = raw.index(names[0][0].encode(enc))  # the first byte of the list
            raw = raw[:at] + rng.choice([b"\xff", b"\x80", b"\xfe"]) + raw[at + 1 :]
        if damage is None:
            case.clean_texts.append(text)
        out += raw
    if rng.random() < 0.05:
        case.whole_file = "truncated"
        out = out[: rng.randint(0, len(out))]
    elif rng.random() < 0.03:
        case.whole_file = "noise"
        out = bytearray(rng.randbytes(rng.randint(0, 400)))
    case.data = bytes(out)
    return case


def check_case(case: Case, path) -> int:  # noqa: ANN001 - a pathlib.Path
    """Run the reader and the tagger over one case and assert the properties; return the number
    of rows read. Properties: only InputError escapes (a header problem); every undamaged row is
    read with exactly its text, in order; names with control characters glued on are recognised;
    no record carries a control character."""
    from deeproot.errors import InputError
    from deeproot.ingredients.batch import read_csv_rows
    from deeproot.ingredients.tagger import get_tagger

    path.write_bytes(case.data)
    try:
        rows, _ = read_csv_rows(path, "ingredient")
        got = list(rows)
    except InputError:
        assert case.whole_file is not None or not case.data, "InputError on a whole file"
        return 0
    if case.whole_file is None:
        good = [t for t, e in got if e is None]
        it = iter(good)
        missing = [t for t in case.clean_texts if not any(g == t for g in it)]
        assert missing == [], f"clean rows lost or merged: {missing[:2]}"
    tagger = get_tagger()
    for text, error in got:
        if error is not None:
            assert "\n" not in error
            continue
        try:
            result = tagger.tag(text)
        except InputError:
            continue
        rec = str(result.record())
        assert not any(c in rec for c in ("\u202e", "\ufeff", "\x07", "\x1b", "\u200b"))
        if case.whole_file is None and '"' not in text and any(c in text for c in _MARKS):
            # a row with control characters glued to names: every name is recognised
            assert result.unknown == (), result.unknown
    return len(got)
