"""Ingredient engine benchmark over the shared real crawl and 1,000,000 synthetic lists.

Prints: rows parsed; the share of tokens recognised as MFDS names (separated lists, and all);
the unrecognised tokens; agreement with the original `type` column per type with examples of each
kind of disagreement; tagging throughput on the real rows (cold and warm) and on synthetic lists
built from real tokens (single process and a worker pool).

    .venv/bin/python benchmarks/ingredients.py [--crawl ../shared/deeproot-scalp-data]
        [--synthetic 1000000] [--workers 2] [--flag-overhead 50000]
"""

from __future__ import annotations

import argparse
import collections
import csv
import multiprocessing as mp
import os
import platform
import random
import re
import time
from pathlib import Path

from deeproot.ingredients import Tagger
from deeproot.ingredients.parser import simple_pieces
from deeproot.taxonomy import TABLE_TYPES

HERE = Path(__file__).resolve().parent
DEFAULT_CRAWL = HERE.parent.parent / "shared" / "deeproot-scalp-data"


def read_rows(crawl: Path) -> list[dict]:
    rows = []
    for path in sorted(crawl.glob("*_ingredient_data2_add_type.csv")):
        with path.open(encoding="utf-8-sig", newline="") as fh:
            for i, rec in enumerate(csv.DictReader(fh)):
                rows.append({"file": path.name.split("_")[0], "row": i, **rec})
    return rows


def separated(text: str) -> bool:
    return bool(re.search(r"[,@\n]", text))


def recognition(rows: list[dict], tagger: Tagger) -> None:
    how_sep: collections.Counter = collections.Counter()
    how_all: collections.Counter = collections.Counter()
    unknown: collections.Counter = collections.Counter()
    for r in rows:
        res = tagger.tag(r["ingredient"])
        for ing in res.ingredients:
            how_all[ing.how] += 1
            if separated(r["ingredient"]):
                how_sep[ing.how] += 1
            if ing.canonical is None:
                unknown[ing.token.name] += 1
    for label, how in (("separated lists", how_sep), ("all lists", how_all)):
        total = sum(how.values())
        known = total - how["unknown"]
        print(
            f"tokens on {label}: {total:,}; recognised as MFDS names {known:,} "
            f"({known / total:.2%}); by way: "
            + ", ".join(f"{k} {v:,}" for k, v in how.most_common())
        )
    print(f"unrecognised: {sum(unknown.values())} tokens, {len(unknown)} distinct:")
    print("  " + "; ".join(f"{k} x{v}" if v > 1 else k for k, v in unknown.most_common()))


def agreement(rows: list[dict], tagger: Tagger) -> None:
    print("\nagreement with the original `type` column (raw substring tagging):")
    print(f"  {'type':6} {'both':>5} {'neither':>7} {'orig only':>9} {'ours only':>9}")
    for t in TABLE_TYPES:
        both = neither = orig_only = ours_only = 0
        ex_orig: collections.Counter = collections.Counter()
        ex_ours: collections.Counter = collections.Counter()
        for r in rows:
            orig = t in {x.strip() for x in r["type"].split(",")}
            res = tagger.tag(r["ingredient"])
            ours = t in res.types
            if orig and ours:
                both += 1
            elif not orig and not ours:
                neither += 1
            elif orig:
                orig_only += 1
                ex_orig[_why_orig(r["ingredient"], t)] += 1
            else:
                ours_only += 1
                for m in res.matches:
                    if m.type == t:
                        ex_ours[f"{m.canonical} ({m.how})"] += 1
        print(f"  {t:6} {both:5} {neither:7} {orig_only:9} {ours_only:9}")
        if ex_orig:
            print(
                "     original only, its keyword hit inside: "
                + "; ".join(f"{k} x{v}" for k, v in ex_orig.most_common(4))
            )
        if ex_ours:
            print(
                "     ours only, matched: "
                + "; ".join(f"{k} x{v}" for k, v in ex_ours.most_common(4))
            )


_SEED_KEYWORDS = {
    "지성": [
        "카올린",
        "화산재",
        "옥수수전분",
        "알킬폴리글루코사이트",
        "소듐C14-16올레핀설포네이트",
        "소듐메칠코코일타우레이트",
        "살리실릭애씨드",
        "클레이",
        "니아신아마이드",
    ],
    "건성": [
        "락토바실러스",
        "자이언트켈프발효여과물",
        "글리세린",
        "소듐PCA",
        "히알루론산",
        "세라마이드",
        "스쿠알란",
    ],
    "민감성": [
        "락틱애씨드",
        "살리살릭애씨드",
        "밴조익애씨드",
        "판테놀",
        "비사볼올",
        "마데카소사이드",
    ],
    "비듬": ["다이소듐라우레스설포석시네이트", "케토코나졸", "유황", "살리실산"],
    "탈모": ["비오틴", "카페인", "아미노산", "판테놀", "니아신아마이드"],
    "지루성": ["케토코나졸", "시클로피록스", "세르타코나졸", "살리실산", "스쿠알란"],
}


def _why_orig(text: str, t: str) -> str:
    """Which original keyword matched as a substring, and inside which label word."""
    for kw in _SEED_KEYWORDS[t]:
        i = text.find(kw)
        if i >= 0:
            seps = (",", "@", " ", "\n")
            start = max(text.rfind(s, 0, i) for s in seps) + 1
            ends = [j for j in (text.find(s, i) for s in seps) if j >= 0]
            word = text[start : min(ends) if ends else len(text)].strip()
            return f"{kw} in {word}"
    return "?"


def flag_counts(rows: list[dict], tagger: Tagger) -> None:
    """Rows per flag and per category (file), and the unknown tokens that could hide a flag."""
    from rapidfuzz import fuzz, process

    from deeproot.ingredients.dictionary import fold, key
    from deeproot.ingredients.flags import FLAGS, load_flag_index

    cats = sorted({r["file"] for r in rows})
    per: dict[str, collections.Counter] = {f: collections.Counter() for f in FLAGS}
    n_cat: collections.Counter = collections.Counter(r["file"] for r in rows)
    unknown: collections.Counter = collections.Counter()
    flagged = 0
    for r in rows:
        res = tagger.tag(r["ingredient"])
        flagged += bool(res.flags)
        for f in res.flag_keys:
            per[f][r["file"]] += 1
        unknown.update(res.unknown)
    print(f"\nflags: {flagged:,} of {len(rows):,} rows carry at least one flag")
    print("  rows per flag and category:")
    print(f"  {'flag':20} {'all':>5} " + " ".join(f"{c:>9}" for c in cats))
    print(f"  {'(rows)':20} {len(rows):5} " + " ".join(f"{n_cat[c]:9}" for c in cats))
    for f in FLAGS:
        print(f"  {f:20} {sum(per[f].values()):5} " + " ".join(f"{per[f][c]:9}" for c in cats))
    index = load_flag_index()
    members = sorted({m for f in FLAGS for m in index.members(f)})
    folded = [fold(m) for m in members]
    suspects = []
    for name, n in unknown.most_common():
        hit = process.extractOne(fold(key(name)), folded, scorer=fuzz.ratio, score_cutoff=65)
        if hit is not None:
            member = members[hit[2]]
            flags = [f for f in FLAGS if member in index.members(f)]
            suspects.append(f"{name} x{n} ~ {member} ({', '.join(flags)})")
    print(f"  unknown tokens that could hide a flag ({len(suspects)}):")
    for line in suspects:
        print(f"    {line}")


def flag_overhead(rows: list[dict], texts: list[str], repeats: int = 3) -> None:
    """Tagging time with flags off and on, fresh taggers, alternating, best of `repeats`."""
    from deeproot.ingredients import tagger as tagger_mod

    best: dict[tuple[str, bool], float] = {}
    real = [r["ingredient"] for r in rows]
    for _ in range(repeats):
        for flags in (False, True):
            for label, data in (("real", real), ("synthetic", texts)):
                tagger_mod._PARSED.clear()
                tg = Tagger(flags=flags)
                t0 = time.process_time()  # CPU time: the box is shared, wall time is noisy
                for t in data:
                    tg.tag(t)
                dt = time.process_time() - t0
                k = (label, flags)
                best[k] = min(best.get(k, dt), dt)
    print("\nflags overhead (CPU s; fresh tagger per run, parse cache cleared, best of 3):")
    for label, data in (("real", real), ("synthetic", texts)):
        off, on = best[(label, False)], best[(label, True)]
        print(
            f"  {label:9} {len(data):7,} lists: flags off {off:.3f} s, on {on:.3f} s "
            f"({len(data) / on:,.0f} lists/s), ratio on/off {on / off:.3f}"
        )


def _pool_init() -> None:
    global _TAGGER
    _TAGGER = Tagger()


def _pool_tag(texts: list[str]) -> int:
    n = 0
    for t in texts:
        n += bool(_TAGGER.tag(t).types)
    return n


def synthetic_lists(rows: list[dict], n: int, seed: int = 7) -> list[str]:
    pieces: collections.Counter = collections.Counter()
    lengths = []
    for r in rows:
        p = simple_pieces(r["ingredient"]) if r["ingredient"] else None
        if p:
            pieces.update(p)
            lengths.append(len(p))
    rng = random.Random(seed)
    vocab = list(pieces)
    weights = [pieces[v] for v in vocab]
    out = []
    for _ in range(n):
        k = rng.choice(lengths)
        out.append(", ".join(rng.choices(vocab, weights, k=k)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--crawl", type=Path, default=DEFAULT_CRAWL)
    ap.add_argument("--synthetic", type=int, default=1_000_000)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument(
        "--flag-overhead", type=int, default=50_000, help="synthetic lists for the flags on/off"
    )
    args = ap.parse_args()

    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}"
    )
    rows = read_rows(args.crawl)
    t0 = time.perf_counter()
    cold = Tagger()
    for r in rows:
        cold.tag(r["ingredient"])
    t_cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    for r in rows:
        cold.tag(r["ingredient"])
    t_warm = time.perf_counter() - t0
    print(f"rows parsed: {len(rows):,} (all without error)")
    recognition(rows, cold)
    agreement(rows, cold)
    flag_counts(rows, cold)
    if args.flag_overhead:
        flag_overhead(rows, synthetic_lists(rows, args.flag_overhead))

    print("\nthroughput:")
    print(
        f"  real rows, cold (dictionary load + parse + tag): {t_cold:.3f} s "
        f"({len(rows) / t_cold:,.0f} lists/s); warm: {t_warm:.3f} s"
    )
    if args.synthetic:
        t0 = time.perf_counter()
        texts = synthetic_lists(rows, args.synthetic)
        t_gen = time.perf_counter() - t0
        mean_len = sum(t.count(", ") + 1 for t in texts[:10000]) / min(len(texts), 10000)
        print(
            f"  built {len(texts):,} synthetic lists from real pieces in {t_gen:.1f} s "
            f"(mean {mean_len:.0f} ingredients)"
        )
        sample = texts[: min(len(texts), 200_000)]
        single = Tagger()
        t0 = time.perf_counter()
        for t in sample:
            single.tag(t)
        t_single = time.perf_counter() - t0
        rate1 = len(sample) / t_single
        print(
            f"  1 process: {len(sample):,} lists in {t_single:.2f} s = {rate1:,.0f} lists/s "
            f"({1e6 / rate1:.1f} us/list)"
        )
        chunk = 5_000
        chunks = [texts[i : i + chunk] for i in range(0, len(texts), chunk)]
        t0 = time.perf_counter()
        with mp.get_context("fork").Pool(args.workers, initializer=_pool_init) as pool:
            tagged = sum(pool.imap_unordered(_pool_tag, chunks))
        t_pool = time.perf_counter() - t0
        per_million = t_pool * 1_000_000 / len(texts)
        note = "" if len(texts) == 1_000_000 else " (extrapolated from this run)"
        print(
            f"  {args.workers} workers: {len(texts):,} lists in {t_pool:.1f} s = "
            f"{len(texts) / t_pool:,.0f} lists/s ({tagged:,} tagged with a type)"
        )
        print(
            f"  1,000,000 lists: {per_million:.1f} s{note}; target < 60 s: "
            f"{'met' if per_million < 60 else 'MISSED'} (ratio {per_million / 60:.2f})"
        )
        print(f"  real rows cold vs target 1 s: ratio {t_cold:.2f}")


if __name__ == "__main__":
    main()
