"""Store details that need no crawl."""

from __future__ import annotations

import json
from pathlib import Path

from deeproot.crawler.storage import read_checkpoint


def test_checkpoint_with_a_torn_multibyte_last_line_keeps_the_whole_lines(tmp_path: Path) -> None:
    """A crawl killed mid-write can cut a Korean character in half at the end of its checkpoint."""
    good = [{"goods_no": "A1", "name": "두피 토닉"}, {"goods_no": "A2", "name": "스케일러"}]
    torn = json.dumps({"goods_no": "A3", "name": "한"}, ensure_ascii=False).encode()
    torn = torn[: torn.index("한".encode()) + 1]  # first byte of a three-byte character
    path = tmp_path / "x.records.jsonl"
    body = b"".join(json.dumps(r, ensure_ascii=False).encode() + b"\n" for r in good)
    path.write_bytes(body + torn)
    assert read_checkpoint(path) == good


def test_crawl_ids_started_in_the_same_second_sort_in_start_order():
    from datetime import UTC, datetime

    from deeproot.crawler.storage import new_crawl_id, valid_crawl_id

    times = [datetime(2026, 12, 1, 16, 23, 58, us, tzinfo=UTC) for us in (0, 17, 500_000, 999_999)]
    ids = [new_crawl_id(t) for t in times]
    assert ids == sorted(ids) and len(set(ids)) == 4
    assert all(valid_crawl_id(i) for i in ids)
    assert ids[-1] < new_crawl_id(datetime(2026, 12, 1, 16, 23, 59, tzinfo=UTC))
