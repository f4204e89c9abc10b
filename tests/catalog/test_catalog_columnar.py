"""The columnar tagging path of catalog builds gives exactly the per-text Tagger's rows."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyarrow as pa
import pytest

from deeproot.catalog import columnar, tagging
from deeproot.catalog.schema import TAG_TABLES
from deeproot.ingredients import Tagger

# Lists that exercise what the fast path must either get right or hand back to the Tagger.
TRICKY = [
    "정제수, 글리세린, 판테놀(덱스판테놀), 판테놀, 향료, 리모넨",  # name == an earlier text's name
    "정제수, 글리세린, 소듐라우레스설페이트, 소듐라우레스설페이트, 향료, 리날룰",  # repeated
    "정제수, 글리세린, 1,2-헥산다이올, 부틸렌글라이콜, 향료",  # a digit comma
    "정제수, 글리세린, 하이드로제네이티드, 폴리데센, 향료",  # a wrapped name: the parser joins
    "정제수, 글리세린, 연필향나무오일, 대왕송잎추출물, 향료",  # unknown names
    "정제수, 클리세린, 나이아신아마이드, 살리실릭애씨드, 멘톨",  # a typo, types
    "[타입A] 정제수, 글리세린, 향료 [타입B] 정제수, 부틸렌글라이콜, 멘톨",  # groups: full parser
    "상세페이지 참고",  # placeholder
    "water, glycerin, fragrance, menthol",  # another script: an error row
    "정제수 글리세린 판테놀 향료",  # space-only list
    "",
    None,
]


def _pairs(texts: list[str | None]) -> list[tuple[str, str | None]]:
    return [(hashlib.md5(f"{i}:{t}".encode()).hexdigest(), t) for i, t in enumerate(texts)]


def _by_text(out: dict) -> dict[str, dict[str, list[tuple]]]:
    """Rows per result table, grouped by text in their written order."""
    res: dict[str, dict[str, list[tuple]]] = {}
    for name, table in out.items():
        per: dict[str, list[tuple]] = {}
        for row in zip(*(c.to_pylist() for c in table.columns), strict=True):
            per.setdefault(row[0], []).append(row)
        res[name] = per
    return res


@pytest.fixture(scope="module")
def real_texts(crawl_dir: Path) -> list[str | None]:
    from deeproot.catalog.csv_import import read_csvs

    return [r["ingredients_text"] for r in read_csvs([crawl_dir]).records]


def test_same_rows_as_the_tagger_on_every_real_row(real_texts):
    pairs = _pairs(real_texts + TRICKY)
    tagging._REGISTRY.clear()  # a cold registry: every piece tagged here
    slow = _by_text(tagging._tag_batch(pairs, columnar=False))
    fast = _by_text(tagging._tag_batch(pairs, columnar=True))
    for name in slow:
        assert fast[name] == slow[name], name  # same rows, same order within each text
    assert sum(len(v) for v in slow["text_ingredients"].values()) > 40_000


def test_most_real_lists_take_the_fast_path_and_the_rest_do_not(real_texts):
    reg = columnar.PieceRegistry({t: Tagger(t) for t in TAG_TABLES})
    fast, flat, counts = columnar.split_plain(reg, real_texts + TRICKY)
    n_real = len(real_texts)
    assert sum(1 for i in fast if i < n_real) > 0.6 * n_real
    taken = {i - n_real for i in fast if i >= n_real}
    assert taken == {0, 1, 2, 4, 5}  # groups, wrapped names, errors, blanks go to the Tagger
    assert len(flat) == sum(counts)


def test_registry_starts_over_past_its_bound(monkeypatch, real_texts):
    monkeypatch.setattr(columnar, "MAX_PIECES", 10)
    tagging._REGISTRY.clear()
    pairs = _pairs(real_texts[:50])
    slow = _by_text(tagging._tag_batch(pairs, columnar=False))
    first = tagging._tag_batch(pairs[:25])
    reg = tagging._REGISTRY[0]
    assert len(reg.known) > 10
    second = tagging._tag_batch(pairs[25:])
    assert tagging._REGISTRY[0] is not reg  # a fresh registry for the next batch
    both = _by_text({n: pa.concat_tables([first[n], second[n]]) for n in first})
    assert both == slow


SPLIT_CASES = [
    "정제수, 글리세린, 1,2-헥산다이올, 판테놀, 향료",  # a digit comma: not a separator
    "정제수, 글리세린, 1,2,3-프로판트라이올, 판테놀, 향료",  # a run of digit commas
    "정제수,,글리세린, , 판테놀,향료 ,멘톨 ",  # empty pieces and stray spaces
    "정제수, 글리세린, 판테놀(1,000ppm), 향료, 멘톨",  # a comma inside parentheses
    "정제수, 글리세린, 판테놀(덱스판테놀, 비타민), 향료, 멘톨",
    "'정제수, 글리세린, 판테놀, 향료, 멘톨",  # a leading quote
    "가" * 39 + ", 글리세린, 판테놀, 향료",  # the first comma at character 40 ...
    "가" * 40 + ", 글리세린, 판테놀, 향료",  # ... and at 41 (the 40-character rule)
    "정제수, 글리세린, 판테놀",  # three pieces only
    "정제수, 글리세린\u00a0스테아레이트, 판테놀, 향료",  # outside the vectorised charset
    "Water, Glycerin, 정제수, 향료, 멘톨",
]


def test_the_vectorised_split_agrees_with_the_per_text_split(real_texts):
    """Every text, alone: the piece ids the vectorised path gives (or its refusal) equal the
    per-text split's."""
    reg = columnar.PieceRegistry({t: Tagger(t) for t in TAG_TABLES})
    n_vec = 0
    for text in real_texts + TRICKY + SPLIT_CASES:
        arr = pa.array([text], pa.string())
        taken = columnar._split_vectorised(reg, arr)[0]
        n_vec += int(taken[0])
        fast, flat, counts = columnar.split_plain(reg, arr)
        e_fast, e_flat, e_counts = columnar._split_each(reg, [text])
        assert (fast.tolist(), flat.tolist(), counts.tolist()) == (e_fast, e_flat, e_counts), text
    assert n_vec > 600  # most real lists take the vectorised split


def test_tagging_workers_get_room_under_the_memory_limit():
    import duckdb

    def limit(con) -> str:
        return con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]

    con = duckdb.connect()
    con.execute("SET memory_limit='1GB'")
    before = limit(con)
    with tagging._room_for_workers(con, 2, "1GB"):
        assert limit(con) == "453.0 MiB"  # 953.6 MiB - 2 x 250 MiB
    assert limit(con) == before
    with tagging._room_for_workers(con, 1):  # tagging in the build process itself
        assert limit(con) == before
    con.execute("SET memory_limit='400MB'")
    with tagging._room_for_workers(con, 4):
        assert limit(con) == "256.0 MiB"  # never below
