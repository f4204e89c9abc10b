"""Photo-input fuzzing and hostile-photo memory: cases/s, outcomes and peak RSS.

Two parts:

1. A long seeded fuzz run (tests/diagnose/photo_fuzz.py: mutated JPEG/PNG/WebP bytes through
   `load_photo`), reporting cases/s, outcomes, findings and the peak RSS of the process.
2. The hostile photos of issue 15, each loaded in a fresh process, reporting its peak RSS and wall
   time; with `--before REV` the same files go through the loader of an older revision too (its
   `src/` is extracted with `git archive` into a temporary folder), for a before/after table.

    .venv/bin/python benchmarks/fuzz.py [--cases 20000] [--seed 1] [--before 451e167] [--no-fuzz]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import resource
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "diagnose"))

import photo_fuzz  # noqa: E402


def fuzz(seed: int, n: int) -> None:
    outcomes: collections.Counter[str] = collections.Counter()
    findings = []
    t0 = time.perf_counter()
    for i, data in enumerate(photo_fuzz.cases(seed, n)):
        try:
            outcomes[photo_fuzz.check(data)] += 1
        except Exception as exc:  # noqa: BLE001 - a finding: keep going, report it
            outcomes["finding"] += 1
            findings.append(f"case {i}: {type(exc).__name__}: {str(exc)[:120]}")
    dt = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"fuzz: seed {seed}, {n} cases in {dt:.1f} s = {n / dt:.0f} cases/s")
    print(f"fuzz: outcomes {dict(outcomes)}; peak RSS of the process {peak:.0f} MB")
    for f in findings[:20]:
        print(f"  finding {f}")


def _png(w: int, h: int, bit_depth: int, color: int, row: bytes) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    raw = zlib.compressobj(9)
    body = b"".join(raw.compress(b"\0" + row) for _ in range(h)) + raw.flush()
    ihdr = struct.pack(">IIBBBBB", w, h, bit_depth, color, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


def _webp(w: int, h: int) -> bytes:
    bits = (w - 1) | ((h - 1) << 14)
    payload = b"\x2f" + struct.pack("<I", bits) + b"\x00" * 9
    chunk = b"VP8L" + struct.pack("<I", len(payload)) + payload
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


def make_hostile(folder: Path) -> dict[str, list[Path]]:
    """The issue's hostile photos, written once into `folder`."""
    import numpy as np
    from PIL import Image

    out: dict[str, list[Path]] = {}

    def put(name: str, data: bytes) -> Path:
        p = folder / name
        p.write_bytes(data)
        return p

    out["WebP header claiming 10000x10000 (34 bytes)"] = [put("claim.webp", _webp(10000, 10000))]
    out["16-bit PNG 9000x9000 of zeros (~250 KB)"] = [
        put("deep.png", _png(9000, 9000, 16, 0, b"\0" * 18000))
    ]
    out["8-bit RGB PNG bomb 10000x10000 (~300 KB)"] = [
        put("bomb.png", _png(10000, 10000, 8, 2, b"\0" * 30000))
    ]
    zeros = folder / "zeros.jpg"
    with zeros.open("wb") as fh:
        fh.truncate(199 * 2**20)
    out["199 MB of zeros"] = [zeros]
    rng = np.random.default_rng(0)
    six = []
    for i in range(6):
        arr = (rng.normal(150, 30, (3000, 4000, 3))).clip(0, 255).astype(np.uint8)
        p = folder / f"big{i}.png"
        Image.fromarray(arr).save(p, compress_level=1)
        six.append(p)
    out["six 4000x3000 PNGs in one diagnose() call"] = six
    return out


_CHILD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
paths = sys.argv[2:]

def hwm():  # this process's peak RSS in MB (VmHWM; ru_maxrss would include the parent's)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024

from deeproot.diagnose import images
if len(paths) > 1:
    from deeproot.diagnose.bundle import DEMO_BUNDLE
    from deeproot.diagnose.service import diagnose
    from deeproot.demo import _data_file  # warm up on the small demo photo

    warm = [_data_file("demo_photo.jpg")]
    diagnose(warm, models=DEMO_BUNDLE, device="cpu", recommend_products=False)
base = hwm()
t = time.perf_counter()
if len(paths) > 1:
    rep = diagnose(paths, models=DEMO_BUNDLE, device="cpu", recommend_products=False, force=True)
    outcome = ",".join(sorted(set(p.status for p in rep.photos)))
else:
    try:
        images.load_photo(paths[0])
        outcome = "loaded"
    except Exception as exc:
        outcome = str(exc).split(": ", 1)[-1][:60]
out = {"s": time.perf_counter() - t, "peak": hwm(), "base": base, "outcome": outcome}
print(json.dumps(out))
"""


def hostile_run(src: Path, files: list[Path]) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(src), *map(str, files)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if proc.returncode != 0:
        return {
            "s": float("nan"),
            "peak": float("nan"),
            "base": 0,
            "outcome": f"crashed: {proc.stderr.strip().splitlines()[-1:]}",
        }
    return json.loads(proc.stdout.strip().splitlines()[-1])


def hostile(before: str | None) -> None:
    with tempfile.TemporaryDirectory(prefix="deeproot-fuzz-") as tmp:
        folder = Path(tmp)
        cases = make_hostile(folder)
        srcs = {"now": REPO / "src"}
        if before:
            old = folder / "before"
            old.mkdir()
            archive = subprocess.run(
                ["git", "-C", str(REPO), "archive", before, "src"], capture_output=True, check=True
            ).stdout
            subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
            srcs = {f"before ({before})": old / "src", **srcs}
        print(
            "\n| hostile photo | "
            + " | ".join(f"{k}: peak RSS, time, outcome" for k in srcs)
            + " |"
        )
        print("|---|" + "---|" * len(srcs))
        for name, files in cases.items():
            cells = []
            for src in srcs.values():
                r = hostile_run(src, files)
                peak, extra = r["peak"], r["peak"] - r["base"]
                cells.append(f"{peak:.0f} MB (+{extra:.0f}), {r['s']:.2f} s, {r['outcome']}")
            print(f"| {name} | " + " | ".join(cells) + " |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--before", help="git revision whose loader to compare against")
    ap.add_argument("--no-fuzz", action="store_true")
    ap.add_argument("--no-hostile", action="store_true")
    a = ap.parse_args()
    os.environ.setdefault("DEEPROOT_THREADS", "1")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    if not a.no_fuzz:
        fuzz(a.seed, a.cases)
    if not a.no_hostile:
        hostile(a.before)


if __name__ == "__main__":
    main()
