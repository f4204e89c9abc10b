"""Long fuzz run of the CSV batch reader and tagger (the suite runs 300 cases in seconds).

Generates hostile CSV files with tests/ingredients/csv_fuzz.py (bad bytes, stray and unclosed
quotes, control characters glued to names, wrapped lists, CRLF, truncation, noise), checks the
same properties as the test on every case, and prints cases/s, rows/s and peak memory.

    .venv/bin/python benchmarks/fuzz_csv.py [--cases 20000] [--seed 1]
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "ingredients"))

from csv_fuzz import check_case, make_case  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--trace", action="store_true", help="also measure Python heap peak")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    from deeproot.ingredients import get_tagger

    get_tagger()  # load the dictionary before timing
    if args.trace:
        tracemalloc.start()
    failures: list[str] = []
    rows = 0
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "case.csv"
        for i in range(args.cases):
            case = make_case(rng)
            try:
                rows += check_case(case, path)
            except AssertionError as exc:
                failures.append(f"case {i}: {exc}")
                (Path(tmp).parent / f"deeproot-fuzz-{args.seed}-{i}.csv").write_bytes(case.data)
    dt = time.perf_counter() - t0
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"cases        {args.cases:,} (seed {args.seed})")
    print(f"rows read    {rows:,}")
    print(f"time         {dt:.1f} s: {args.cases / dt:,.0f} cases/s, {rows / dt:,.0f} rows/s")
    print(f"peak RSS     {peak_rss:,.0f} MiB (whole process, dictionary included)")
    if args.trace:
        _, peak = tracemalloc.get_traced_memory()
        print(f"heap peak    {peak / 2**20:,.1f} MiB during the run (tracemalloc)")
    print(f"failures     {len(failures)}")
    for f in failures[:10]:
        print("  ", f)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
