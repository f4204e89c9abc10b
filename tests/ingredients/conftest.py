from __future__ import annotations

import csv
from pathlib import Path

import pytest


def read_crawl(crawl_dir: Path) -> list[dict]:
    """Every row of the shared crawl, with its file stem and 0-based row number."""
    rows = []
    for path in sorted(crawl_dir.glob("*_ingredient_data2_add_type.csv")):
        with path.open(encoding="utf-8-sig", newline="") as fh:
            for i, rec in enumerate(csv.DictReader(fh)):
                rows.append({"file": path.name.split("_")[0], "row": i, **rec})
    return rows


@pytest.fixture(scope="session")
def crawl_rows(crawl_dir: Path) -> list[dict]:
    return read_crawl(crawl_dir)


@pytest.fixture(scope="session")
def crawl_text(crawl_rows):
    """The ingredient text of one real row: crawl_text("hairoil_", 20)."""

    def get(file: str, row: int) -> str:
        return next(
            r["ingredient"] for r in crawl_rows if r["file"].startswith(file) and r["row"] == row
        )

    return get
