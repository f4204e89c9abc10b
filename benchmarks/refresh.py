"""Change-report benchmark: `deeproot.refresh.changes.compare` between two crawls of N products.

Writes a store like the crawler's with two complete crawls of N products each, ingredient texts
drawn from the 1,051 real lists of the original DeepRoot crawl (../shared/deeproot-scalp-data),
and known differences in the second: 0.5% new, 0.5% delisted, 1% price, 2% rating/reviews,
1% sold out, 0.2% reformulated (one ingredient removed), 0.2% text-only edits (the same list
without the space after each comma): about 5% of products changed. Then runs `compare()` in a
fresh process (so its peak memory is its own) and prints the time, the peak RSS and the counts,
checked against what was planted.

    .venv/bin/python benchmarks/refresh.py [--products 100000 1000000]
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CRAWL = REPO.parent / "shared" / "deeproot-scalp-data"
CATS = ("shampoo", "hair_oil_serum", "hair_water", "scalp_tonic")
PLAN = {  # share of products per planted change
    "new": 0.005,
    "delisted": 0.005,
    "price": 0.01,
    "ratings": 0.02,
    "sold_out": 0.01,
    "reformulated": 0.002,
    "text_changed": 0.002,
}


def _texts() -> list[str]:
    from deeproot.catalog.csv_import import read_csvs

    return sorted(
        {r["ingredients_text"] for r in read_csvs([CRAWL]).records if r["ingredients_text"]}
    )


def _reformable(text: str) -> bool:
    """A plain comma list whose 2nd ingredient is named once (so dropping it is a change)."""
    from deeproot.ingredients import get_tagger

    toks = text.split(", ")
    if "\n" in text or len(toks) < 5 or len(set(toks)) != len(toks):
        return False
    tag = get_tagger("extended").tag

    def names(t: str) -> set[str]:
        return {i.canonical or i.token.name for i in tag(t).ingredients}

    return names(text) != names(", ".join(toks[:1] + toks[2:])) and names(text) == names(
        text.replace(", ", ",")
    )


def _write(store: Path, crawl_id: str, cols: dict[str, list], when: datetime) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    part = store / "products" / f"crawl_id={crawl_id}"
    part.mkdir(parents=True)
    n = len(cols["goods_no"])
    table = pa.table(
        {
            "crawl_id": pa.array([crawl_id] * n),
            "crawled_at": pa.array([when] * n, pa.timestamp("us", tz="UTC")),
            **{k: pa.array(v) for k, v in cols.items()},
        }
    )
    pq.write_table(table, part / "part-0.parquet", compression="zstd")
    (part / "_SUCCESS").write_text(crawl_id)
    (store / "crawls").mkdir(exist_ok=True)
    (store / "crawls" / f"{crawl_id}.json").write_text(
        json.dumps(
            {
                "crawl_id": crawl_id,
                "status": "complete",
                "started_at": when.isoformat(),
                "settings": {"categories": [{"key": c} for c in CATS]},
            }
        )
    )


def make_store(store: Path, n: int, seed: int = 7) -> dict[str, int]:
    """Two crawls of n products; the planted change counts."""
    rng = random.Random(seed)
    pool = _texts()
    goods = [f"A{i:012d}" for i in range(n)]
    text_of = [rng.randrange(len(pool)) for _ in range(n)]
    base = {
        "goods_no": goods,
        "category": [CATS[i % len(CATS)] for i in range(n)],
        "brand": [f"brand{i % 5000}" for i in range(n)],
        "name": [f"product {i}" for i in range(n)],
        "price_sale": [8000 + (i * 37) % 40000 for i in range(n)],
        "price_list": [8000 + (i * 37) % 40000 for i in range(n)],
        "currency": ["KRW"] * n,
        "rating": [round(3.5 + (i % 15) / 10, 1) for i in range(n)],
        "review_count": [(i * 13) % 5000 for i in range(n)],
        "sold_out": [False] * n,
        "ingredients_text": [pool[t] for t in text_of],
        "listing_rank": [i // len(CATS) + 1 for i in range(n)],
        "product_url": [f"https://example.org/{g}" for g in goods],
    }
    idx = list(range(n))
    rng.shuffle(idx)
    planted: dict[str, int] = {}
    at = 0
    picks: dict[str, list[int]] = {}
    for kind, share in PLAN.items():
        k = int(n * share)
        picks[kind] = idx[at : at + k]
        planted[kind] = k
        at += k
    # reformulations and text edits go to plain comma-separated lists (one ingredient each),
    # so each planted change is exactly one change of its kind
    plain = [t for t in range(len(pool)) if _reformable(pool[t])]
    for i in picks["reformulated"] + picks["text_changed"]:
        base["ingredients_text"][i] = pool[rng.choice(plain)]
    t0 = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)
    _write(store, "20261130T030000Z-aaaa", base, t0)
    new = {k: list(v) for k, v in base.items()}
    for i in picks["price"]:
        new["price_sale"][i] -= 1000
    for i in picks["ratings"]:
        new["review_count"][i] += 5
    for i in picks["sold_out"]:
        new["sold_out"][i] = True
    for i in picks["reformulated"]:
        toks = new["ingredients_text"][i].split(", ")
        new["ingredients_text"][i] = ", ".join(toks[:1] + toks[2:])  # drop the 2nd ingredient
    for i in picks["text_changed"]:
        new["ingredients_text"][i] = new["ingredients_text"][i].replace(", ", ",")
    gone = set(picks["delisted"])
    keep = [i for i in range(n) if i not in gone]
    cols = {k: [v[i] for i in keep] for k, v in new.items()}
    for j in range(planted["new"]):
        g = f"B{j:012d}"
        for k, v in cols.items():
            v.append(base[k][j] if k not in ("goods_no", "product_url") else g)
    _write(store, "20261201T030000Z-bbbb", cols, t0 + timedelta(days=1))
    return planted


def run_compare(store: Path) -> dict:
    code = (
        "import json, time\n"
        "from deeproot.refresh.changes import compare\n"
        "t = time.perf_counter()\n"
        f"r = compare({str(store)!r})\n"
        "s = time.perf_counter() - t\n"
        # VmHWM, not ru_maxrss: the latter counts the parent's memory at fork time
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n"
        "print(json.dumps({'seconds': round(s, 2), 'peak_mb': int(hwm.split()[1]) // 1024, "
        "'counts': r.counts()}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--products", type=int, nargs="+", default=[100_000])
    args = ap.parse_args()
    for n in args.products:
        with tempfile.TemporaryDirectory(prefix="deeproot-bench-refresh-") as tmp:
            store = Path(tmp) / "data"
            t = time.perf_counter()
            planted = make_store(store, n)
            made = time.perf_counter() - t
            res = run_compare(store)
            counts = res["counts"]
            ok = all(counts[k] == v for k, v in planted.items())
            print(
                f"{n:>9,} products: compare {res['seconds']:.2f} s, peak RSS {res['peak_mb']} MB "
                f"(store written in {made:.1f} s); changes "
                + ", ".join(f"{k} {counts[k]}" for k in planted)
                + ("" if ok else f"  MISMATCH planted {planted}")
            )


if __name__ == "__main__":
    main()
