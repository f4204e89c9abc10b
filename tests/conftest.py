"""Shared fixtures: paths to ../shared reference data (read in place, never copied)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _shared() -> Path:
    """The project's shared/ folder: $DEEPROOT_SHARED, else ../shared beside the checkout (as on
    CI), else /work/shared (a clone made elsewhere on a project machine)."""
    env = os.environ.get("DEEPROOT_SHARED")
    candidates = [Path(env)] if env else [REPO.parent / "shared", Path("/work/shared")]
    for c in candidates:
        if (c / "deeproot-scalp-data").is_dir():
            return c
    return candidates[0]


SHARED = _shared()
CRAWL_DIR = SHARED / "deeproot-scalp-data"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The shared/ folder (reference data and the original crawl)."""
    if not CRAWL_DIR.is_dir():
        pytest.fail(
            f"shared data not found at {SHARED}; tests read ../shared (or set DEEPROOT_SHARED)"
        )
    return SHARED


@pytest.fixture(scope="session")
def crawl_dir(shared_dir: Path) -> Path:
    """The original DeepRoot crawl CSVs (1,051 rows), read from shared/."""
    return shared_dir / "deeproot-scalp-data"
