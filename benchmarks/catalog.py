"""Catalog benchmark: a synthetic store built from the real crawl's token distributions.

Builds a Parquet store like the crawler's (`products/crawl_id=…/part-0.parquet`, `_SUCCESS`,
`crawls/<id>.json`) with N products whose ingredient lists are drawn from a pool of D distinct
lists, themselves sampled from the token frequencies, list lengths and token positions of the real
DeepRoot crawl (../shared/deeproot-scalp-data). Then measures, each build in a fresh process:
the first build, an incremental build after a second crawl (5% of prices changed, 1% new
formulas), peak memory, database size, and warm `recommend()` latency.

    .venv/bin/python benchmarks/catalog.py [--products 1000000] [--texts 100000] [--workers 2]
        [--memory-limit 2GB] [--stages] [--dir DIR --reuse-store] [--builds-only]
        [--shape plain|real]

`--shape real` draws the lists from the real crawl's own lists (option groups, notes, line
breaks) with names swapped, so about a third need the full parser as on the real crawl; the
default draws plain comma lists. `--stages` prints, for each build, every stage's wall seconds,
share, CPU seconds (the build process and its tagging workers: use these on a shared box) and peak
RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CRAWL = REPO.parent / "shared" / "deeproot-scalp-data"
WEIGHTS = {  # SPEC §5 category sizes
    "shampoo": 563,
    "rinse_conditioner": 77,
    "shampoo_bar_dry_shampoo": 44,
    "hair_oil_serum": 182,
    "hair_water": 261,
    "scalp_tonic": 75,
    "scalp_pack_scaler": 59,
}


def real_distributions():
    """Token frequencies, mean relative positions, list lengths, (star, reviews) and brands."""
    from deeproot.catalog.csv_import import read_csvs
    from deeproot.ingredients import parse

    batch = read_csvs([CRAWL])
    freq: dict[str, int] = {}
    pos: dict[str, float] = {}
    lengths, stars, brands = [], [], []
    for r in batch.records:
        stars.append((r["rating"] or 0.0, r["review_count"] or 0))
        brands.append(r["brand"] or "?")
        toks = [t.name for t in parse(r["ingredients_text"]).tokens]
        if not toks:
            continue
        lengths.append(len(toks))
        for i, t in enumerate(toks):
            freq[t] = freq.get(t, 0) + 1
            pos[t] = pos.get(t, 0.0) + i / len(toks)
    names = sorted(freq)
    return (
        names,
        [freq[n] for n in names],
        {n: pos[n] / freq[n] for n in names},
        lengths,
        stars,
        brands,
    )


def make_pool(rng, n_texts: int, dist) -> list[str]:
    import numpy as np

    names, counts, mean_pos, lengths, _, _ = dist
    p = np.asarray(counts, float) / sum(counts)
    lens = rng.choice(lengths, size=n_texts)
    pool = []
    for n in lens:
        idx = rng.choice(len(names), size=min(int(n), len(names)), replace=False, p=p)
        toks = sorted((names[i] for i in idx), key=lambda t: mean_pos[t])
        pool.append(", ".join(toks))
    return pool


def make_pool_real(rng, n_texts: int, dist) -> list[str]:
    """Lists shaped like the real ones: each is a real list of the crawl (option groups, `*`
    notes, headers, line breaks and all) with about 30% of its ingredient names swapped for names
    drawn from the real frequencies, so the share of lists that need the full parser is the real
    crawl's, and almost every list is distinct."""
    import numpy as np

    from deeproot.catalog.csv_import import read_csvs
    from deeproot.ingredients import parse

    names, counts = dist[0], dist[1]
    p = np.asarray(counts, float) / sum(counts)
    templates = []
    for r in read_csvs([CRAWL]).records:
        text = r["ingredients_text"]
        if not text or not text.strip():
            continue
        spans, cursor = [], 0
        for tok in parse(text).tokens:
            at = text.find(tok.name, cursor)
            if at >= 0:
                spans.append((at, at + len(tok.name)))
                cursor = at + len(tok.name)
        templates.append((text, spans))
    pick = rng.integers(0, len(templates), size=n_texts)
    pool = []
    for k in pick:
        text, spans = templates[k]
        swap = rng.random(len(spans)) < 0.3
        new = rng.choice(len(names), size=int(swap.sum()), p=p)
        out, last, j = [], 0, 0
        for (a, b), sw in zip(spans, swap, strict=True):
            if sw:
                out.append(text[last:a])
                out.append(names[new[j]])
                j += 1
                last = b
        out.append(text[last:])
        pool.append("".join(out))
    return pool


def write_crawl(out: Path, crawl_id: str, at: datetime, rows: dict) -> None:
    """One complete crawl in the crawler's layout (docs/crawler.md), written here directly."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from deeproot.crawler import storage

    part = out / "products" / f"crawl_id={crawl_id}"
    part.mkdir(parents=True)
    table = pa.Table.from_pydict(
        rows
        | {
            "crawl_id": [crawl_id] * len(rows["goods_no"]),
            "crawled_at": [at] * len(rows["goods_no"]),
        }
    )
    schema = storage.PRODUCT_SCHEMA
    for f in schema:  # columns the crawler added since this script was written: NULL
        if f.name not in table.column_names:
            table = table.append_column(f.name, pa.nulls(len(table), f.type))
    table = table.select(schema.names).cast(schema)
    pq.write_table(table, part / "part-0.parquet", row_group_size=100_000)
    (part / "_SUCCESS").write_text("")
    (out / "crawls").mkdir(exist_ok=True)
    (out / "crawls" / f"{crawl_id}.json").write_text(
        # as the crawler's manifest: its start time dates the carried-forward records
        json.dumps({"crawl_id": crawl_id, "status": "complete", "started_at": at.isoformat()})
    )


def make_store(out: Path, n: int, n_texts: int, seed: int = 7, shape: str = "plain") -> None:
    import numpy as np

    rng = np.random.default_rng(seed)
    dist = real_distributions()
    t0 = time.perf_counter()
    pool = (make_pool_real if shape == "real" else make_pool)(rng, n_texts, dist)
    stars, brands = dist[4], dist[5]
    cats = list(WEIGHTS)
    w = np.asarray(list(WEIGHTS.values()), float)
    cat = rng.choice(len(cats), size=n, p=w / w.sum())
    text_ix = rng.integers(0, n_texts, size=n)
    sr = rng.integers(0, len(stars), size=n)
    brand_ix = rng.integers(0, len(brands), size=n)
    brand_sfx = rng.integers(0, 25, size=n)  # ~25x the real brands: a 1M catalog has more
    price = (rng.integers(30, 600, size=n) * 100).astype(int)
    goods = [f"A{i:012d}" for i in range(n)]
    rows = {
        "goods_no": goods,
        "category": [cats[c] for c in cat],
        "disp_cat_no": ["1000001000400080001"] * n,
        "brand": [
            f"{brands[b]}{'' if s == 0 else s}" for b, s in zip(brand_ix, brand_sfx, strict=True)
        ],
        "name": [f"product {i}" for i in range(n)],
        "price_sale": price.tolist(),
        "price_list": (price + 1000).tolist(),
        "currency": ["KRW"] * n,
        "rating": [stars[i][0] for i in sr],
        "review_count": [stars[i][1] for i in sr],
        "image_url": [f"https://image.example/{g}.jpg" for g in goods],
        "product_url": [
            f"https://www.oliveyoung.co.kr/store/goods/getGoodsDetail.do?goodsNo={g}" for g in goods
        ],
        "ingredients_text": [pool[i] for i in text_ix],
        "has_ingredients": [True] * n,
        "listing_rank": list(range(1, n + 1)),
        "carried": [False] * n,
        "carried_from": [None] * n,
        "source_layout": ["synthetic"] * n,
        "listing_hash": ["x"] * n,
        "sold_out": (rng.random(n) < 0.03).tolist(),  # about 3% sold out
    }
    t1 = datetime(2026, 1, 1, tzinfo=UTC)
    write_crawl(out, "bench-1", t1, rows)
    # second crawl: 5% of prices change, 1% of products get a new formula
    changed = rng.choice(n, size=n // 20, replace=False)
    for i in changed:
        rows["price_sale"][i] = int(rows["price_sale"][i] * 0.9)
    new_pool = make_pool(rng, max(1, n // 100), dist)
    for j, i in enumerate(rng.choice(n, size=len(new_pool), replace=False)):
        rows["ingredients_text"][i] = new_pool[j] + ", 카페인"
    write_crawl(out, "bench-2", t1 + timedelta(days=7), rows)
    print(
        f"store: {n:,} products x 2 crawls, {n_texts:,} + {len(new_pool):,} distinct lists, "
        f"written in {time.perf_counter() - t0:.1f} s",
        flush=True,
    )


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return out + [g for c in out for g in _children(c)]


def _cpu_s() -> float:
    """CPU seconds of this process and its waited-for children (the tagging pool's workers)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def stage_build(store: str, db: str, workers: int, memory_limit: str) -> dict:
    """One build with every stage timed: wall and CPU seconds (this process and its tagging
    workers) and this process's peak RSS during the stage (sampled every 0.1 s)."""
    import threading

    from deeproot.catalog import build as b
    from deeproot.catalog import schema as sch
    from deeproot.catalog.comments import comment_sql

    stages: list[dict] = []
    peak = [0.0]

    def sample() -> None:
        while True:
            peak[0] = max(peak[0], _rss_mb(os.getpid()))
            time.sleep(0.1)

    threading.Thread(target=sample, daemon=True).start()

    def timed(name, f):
        def run(*a, **k):
            peak[0] = _rss_mb(os.getpid())
            w, c = time.perf_counter(), _cpu_s()
            try:
                return f(*a, **k)
            finally:
                stages.append({"stage": name, "s": time.perf_counter() - w, "cpu": _cpu_s() - c,
                               "rss_mb": peak[0]})
        return run

    def derive(con) -> None:  # create_derived, one statement at a time
        timed("derive: functional_claims", sch.create_functional_claims)(con)
        for stmt in sch._ddl_derived().split(";\n"):
            words = stmt.split()
            if words[:2] == ["INSERT", "INTO"]:  # a declared table filled by a query
                timed(f"derive: {words[2]}", con.execute)(stmt)
            elif "TABLE" in words[:5] and "AS" in words:
                timed(f"derive: {words[words.index('TABLE') + 1]}", con.execute)(stmt)
            elif stmt.strip():
                con.execute(stmt)
        timed("derive: recommend_shortlist", sch._fill_shortlist)(con)
        for c in comment_sql(con):
            con.execute(c)

    b._start_file = timed("start file (copy of the catalog)", b._start_file)
    b.ingest = timed("ingest (Parquet -> crawl_records)", b.ingest)
    b.tagging.tag_new_texts = timed("tag new texts", b.tagging.tag_new_texts)
    sch.create_derived = derive
    w, c = time.perf_counter(), _cpu_s()
    r = b.build(store, db, workers=workers, memory_limit=memory_limit)
    total = {"s": time.perf_counter() - w, "cpu": _cpu_s() - c}
    return {"total": total, "stages": stages, "tagged": r.texts_tagged, "records": r.n_records,
            "products": r.n_products, "added": list(r.added)}


def print_stages(res: dict) -> None:
    tot = res["total"]
    merged: dict[str, dict] = {}
    for st in res["stages"]:  # ingest runs once per crawl: add them up
        m = merged.setdefault(st["stage"], {"s": 0.0, "cpu": 0.0, "rss_mb": 0.0})
        m["s"] += st["s"]
        m["cpu"] += st["cpu"]
        m["rss_mb"] = max(m["rss_mb"], st["rss_mb"])
    rest = tot["s"] - sum(m["s"] for m in merged.values())
    rest_cpu = tot["cpu"] - sum(m["cpu"] for m in merged.values())
    for name, m in merged.items():
        print(f"  {name:<36} {m['s']:6.1f} s {100 * m['s'] / tot['s']:4.0f}%  "
              f"CPU {m['cpu']:6.1f} s  peak RSS {m['rss_mb']:5.0f} MB")
    print(f"  {'other (plan, fingerprints, checkpoint)':<36} {rest:6.1f} s "
          f"{100 * rest / tot['s']:4.0f}%  CPU {rest_cpu:6.1f} s")
    print(f"  {'total':<36} {tot['s']:6.1f} s  100%  CPU {tot['cpu']:6.1f} s")


def timed_build(
    store: Path, db: Path, workers: int, memory_limit: str = "2GB", stages: bool = False
) -> dict:
    """Run one build in a fresh process; wall time, and peak RSS sampled every 0.2 s from /proc
    (the build process alone, and it plus its tagging workers); with `stages`, every stage's
    wall and CPU time (`stage_build`)."""
    code = (
        "import json, sys, time\n"
        f"sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})\n"
        "from catalog import stage_build\n"
        "from deeproot.catalog.build import build\n"
        "t = time.perf_counter()\n"
        + (
            f"res = stage_build({str(store)!r}, {str(db)!r}, {workers}, {memory_limit!r})\n"
            "res['s'] = res['total']['s']\n"
            if stages
            else f"r = build({str(store)!r}, {str(db)!r}, workers={workers}, "
            f"memory_limit={memory_limit!r})\n"
            "res = {'s': time.perf_counter() - t, 'tagged': r.texts_tagged,"
            " 'records': r.n_records, 'products': r.n_products, 'added': list(r.added)}\n"
        )
        + "print(json.dumps(res))\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    peak_main = peak_all = 0.0
    while proc.poll() is None:
        main_rss = _rss_mb(proc.pid)
        total = main_rss + sum(_rss_mb(c) for c in _children(proc.pid))
        peak_main, peak_all = max(peak_main, main_rss), max(peak_all, total)
        time.sleep(0.2)
    out = proc.stdout.read() if proc.stdout else ""
    if proc.returncode:
        raise SystemExit(f"build failed with exit code {proc.returncode}")
    return json.loads(out.strip().splitlines()[-1]) | {"rss_mb": peak_main, "all_mb": peak_all}


def latency(db: Path, n: int = 300, seed: int = 3) -> dict:
    import random

    from deeproot.catalog.recommend import recommend
    from deeproot.taxonomy import CATEGORY_KEYS

    rnd = random.Random(seed)
    types = ["dry", "oily", "seborrheic", "dandruff", "hair_loss", "sensitive", "healthy"]
    recommend(db, types=["oily"])  # warm: open, first scan
    one, seven = [], []
    for _ in range(n):
        t = rnd.sample(types[:-1], rnd.choice([1, 1, 2])) if rnd.random() > 0.1 else ["healthy"]
        c = rnd.choice(CATEGORY_KEYS)
        ranking = rnd.choice(["seed", "bayes"])
        s = time.perf_counter()
        recommend(db, types=t, categories=[c], ranking=ranking)
        one.append((time.perf_counter() - s) * 1000)
    for _ in range(n // 3):
        t = rnd.sample(types[:-1], rnd.choice([1, 2]))
        s = time.perf_counter()
        recommend(db, types=t)
        seven.append((time.perf_counter() - s) * 1000)

    def pct(xs, q):
        return statistics.quantiles(xs, n=100)[q - 1]

    return {
        "one_p50": pct(one, 50),
        "one_p95": pct(one, 95),
        "seven_p50": pct(seven, 50),
        "seven_p95": pct(seven, 95),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--products", type=int, default=1_000_000)
    ap.add_argument("--texts", type=int, default=100_000, help="distinct ingredient lists")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--dir", type=Path, default=None, help="work folder (default: a temp dir)")
    ap.add_argument("--reuse-store", action="store_true", help="keep a store already in --dir")
    ap.add_argument("--memory-limit", default="2GB", help="DuckDB memory limit of the builds")
    ap.add_argument("--stages", action="store_true", help="time every build stage (wall, CPU)")
    ap.add_argument("--builds-only", action="store_true", help="skip the latency figures")
    ap.add_argument("--shape", choices=("plain", "real"), default="plain",
                    help="plain: comma lists from the real token distribution; real: the real "
                         "crawl's lists (groups, notes, line breaks) with names swapped")
    args = ap.parse_args()
    work = args.dir or Path(tempfile.mkdtemp(prefix="deeproot-bench-"))
    store, db = work / "store", work / "catalog.duckdb"
    try:
        if not (args.reuse_store and store.is_dir()):
            make_store(store, args.products, args.texts, shape=args.shape)
        for f in work.glob("catalog.duckdb*"):
            shutil.rmtree(f) if f.is_dir() else f.unlink()
        shutil.move(str(store / "products" / "crawl_id=bench-2"), work / "held")
        first = timed_build(store, db, args.workers, args.memory_limit, args.stages)
        print(
            f"build 1 ({first['records']:,} records, {first['tagged']:,} lists tagged): "
            f"{first['s']:.1f} s, peak RSS {first['rss_mb']:.0f} MB "
            f"({first['all_mb']:.0f} MB with its tagging workers)",
            flush=True,
        )
        if "stages" in first:
            print_stages(first)
        shutil.move(str(work / "held"), store / "products" / "crawl_id=bench-2")
        second = timed_build(store, db, args.workers, args.memory_limit, args.stages)
        print(
            f"build 2 (+1 crawl, {second['records']:,} records, {second['tagged']:,} new lists "
            f"tagged): {second['s']:.1f} s, peak RSS {second['rss_mb']:.0f} MB "
            f"({second['all_mb']:.0f} MB with workers)",
            flush=True,
        )
        if "stages" in second:
            print_stages(second)
        same = timed_build(store, db, args.workers, args.memory_limit, args.stages)
        print(f"rebuild with nothing new: {same['s']:.1f} s", flush=True)
        print(
            f"database: {db.stat().st_size / 2**20:.0f} MiB; tagging rate "
            f"{first['tagged'] / first['s']:.0f} lists/s over the whole first build",
            flush=True,
        )
        if args.builds_only:
            return
        lat = latency(db)
        print(
            f"recommend, warm, one category: p50 {lat['one_p50']:.1f} ms, "
            f"p95 {lat['one_p95']:.1f} ms",
            flush=True,
        )
        print(
            f"recommend, warm, all 7 categories: p50 {lat['seven_p50']:.1f} ms, "
            f"p95 {lat['seven_p95']:.1f} ms",
            flush=True,
        )
        print(
            f"max RSS of this benchmark process: "
            f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
        )
    finally:
        if args.dir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
