"""Shared fixtures: paths to ../shared reference data (read in place, never copied)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
CRAWL_DIR = SHARED / "deeproot-scalp-data"


@pytest.fixture(scope="session")
def crawl_dir() -> Path:
    """The original DeepRoot crawl CSVs (1,051 rows), read from ../shared."""
    if not CRAWL_DIR.is_dir():
        pytest.fail(f"shared crawl not found at {CRAWL_DIR}; tests read it from ../shared")
    return CRAWL_DIR
