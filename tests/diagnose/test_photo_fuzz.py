"""Fuzz: 800 mutated JPEG/PNG/WebP files (seeded) through load_photo, under a second on CI.

Every case must end as an 8-bit RGB photo or a one-line PhotoError naming it; any other exception
fails the test with the seed and case number to reproduce it (`benchmarks/fuzz.py` runs longer).
"""

from __future__ import annotations

import collections
import resource

import photo_fuzz
import pytest

SEED, CASES = 2026, 800


def test_fuzzed_photo_bytes() -> None:
    outcomes: collections.Counter[str] = collections.Counter()
    for i, data in enumerate(photo_fuzz.cases(SEED, CASES)):
        try:
            outcomes[photo_fuzz.check(data)] += 1
        except Exception as exc:  # noqa: BLE001 - report which case, then fail
            pytest.fail(f"case {i} of seed {SEED}: {type(exc).__name__}: {exc}")
    # the fuzzer must reach the decoder, not only the sniffer: both outcomes are common
    assert outcomes["ok"] > CASES // 10 and outcomes["error"] > CASES // 10, outcomes


def test_progressive_jpeg_claiming_huge_size_is_refused() -> None:
    """libjpeg holds a progressive JPEG's coefficients at full size: 380 MB for 125 MP."""
    import io
    import struct

    from deeproot.diagnose.images import PhotoError, PhotoInput, load_photo

    buf = io.BytesIO()
    photo_fuzz._scalp(64, 48, 0).save(buf, format="JPEG", progressive=True)
    data = buf.getvalue()
    i = data.find(b"\xff\xc2")
    data = data[: i + 5] + struct.pack(">HH", 42902, 2908) + data[i + 9 :]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(PhotoError, match=r"a 2908x42902 progressive JPEG needs 357 MB to decode"):
        load_photo(PhotoInput("prog.jpg", data))
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50_000  # KiB
