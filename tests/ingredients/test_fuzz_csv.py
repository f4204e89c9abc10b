"""Seeded fuzz of the CSV batch reader (see csv_fuzz.py); the long run is benchmarks/fuzz_csv.py."""

from __future__ import annotations

import random

from csv_fuzz import check_case, make_case

CASES = 300


def test_fuzz_csv_input(tmp_path):
    rng = random.Random(15)
    rows = 0
    path = tmp_path / "case.csv"
    for _ in range(CASES):
        rows += check_case(make_case(rng), path)
    assert rows > CASES  # the cases were read, not all refused
