"""A seeded mutation fuzzer over photo bytes, shared by the fuzz test and `benchmarks/fuzz.py`.

Seeds are small valid JPEG, PNG and WebP files in the modes users send (baseline and progressive
JPEG, CMYK, EXIF; RGB, RGBA, palette, 16-bit PNG; lossy and lossless WebP). Each case applies one
to three mutations: bit flips, "interesting" bytes, truncation, inserted or deleted runs, spliced
files, and header dimension tampering with the PNG CRC fixed so the decoder believes it (the shape
of a decompression bomb). `check` feeds a case to `load_photo` and returns the outcome; anything
other than a Photo in 8-bit RGB or a one-line PhotoError naming the photo is a finding.
"""

from __future__ import annotations

import io
import random
import struct
import zlib
from collections.abc import Iterator

NAME = "fuzz.bin"


def _scalp(w: int, h: int, seed: int):  # noqa: ANN202 - a PIL image
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    base = np.array([175, 125, 105], np.float32)
    arr = base + rng.normal(0, 25, (h, w, 3))
    for _ in range(6):  # a few dark hair-like lines
        y = int(rng.integers(0, h))
        arr[max(0, y - 1) : y + 1, :] = 40
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")


def seeds() -> list[bytes]:
    """Small valid photos in every format and mode the loader handles."""
    import numpy as np
    from PIL import Image

    img = _scalp(48, 36, 1)
    out = []

    def save(im, **kw) -> None:  # noqa: ANN001, ANN003
        buf = io.BytesIO()
        im.save(buf, **kw)
        out.append(buf.getvalue())

    exif = Image.Exif()
    exif[0x0112] = 6
    save(img, format="JPEG", quality=80)
    save(img, format="JPEG", quality=60, progressive=True)
    save(img, format="JPEG", exif=exif.tobytes())
    save(img.convert("CMYK"), format="JPEG")
    save(img, format="PNG")
    save(img.convert("RGBA"), format="PNG")
    save(img.convert("P", palette=Image.Palette.ADAPTIVE, colors=16), format="PNG", transparency=0)
    save(Image.fromarray(np.asarray(img.convert("L"), np.uint16) * 257), format="PNG")
    save(img, format="WEBP", quality=70)
    save(img, format="WEBP", lossless=True)
    return out


INTERESTING = (0x00, 0xFF, 0x7F, 0x80, 0x01, 0xFE)


def _png_dims(data: bytes, rng: random.Random) -> bytes:
    """Rewrite a PNG's IHDR width/height (CRC fixed) to a large or odd size."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        return data
    w = rng.choice((1, 0, 65535, 30000, 9000, 2**31 - 1, rng.randrange(1, 20000)))
    h = rng.choice((1, 0, 65535, 1000, 9000, 2**31 - 1, rng.randrange(1, 20000)))
    ihdr = struct.pack(">II", w, h) + data[24:29]
    crc = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return data[:16] + ihdr + crc + data[33:]


def _jpeg_dims(data: bytes, rng: random.Random) -> bytes:
    """Rewrite the first SOF marker's height/width."""
    for marker in (b"\xff\xc0", b"\xff\xc2"):
        i = data.find(marker)
        if i > 0:
            h = rng.choice((0, 1, 65535, 30000, rng.randrange(1, 65536)))
            w = rng.choice((0, 1, 65535, 30000, rng.randrange(1, 65536)))
            return data[: i + 5] + struct.pack(">HH", h, w) + data[i + 9 :]
    return data


def _webp_dims(data: bytes, rng: random.Random) -> bytes:
    """Rewrite a lossless WebP's 14-bit width/height fields."""
    i = data.find(b"VP8L")
    if i < 0:
        return data
    w, h = rng.randrange(1, 16385), rng.randrange(1, 16385)
    bits = struct.unpack("<I", data[i + 9 : i + 13])[0]
    bits = (bits & ~((1 << 28) - 1)) | (w - 1) | ((h - 1) << 14)
    return data[: i + 9] + struct.pack("<I", bits) + data[i + 13 :]


def mutate(data: bytes, rng: random.Random, pool: list[bytes]) -> bytes:
    """One random mutation of `data`."""
    b = bytearray(data)
    kind = rng.randrange(9)
    if kind == 0 and b:  # bit flips
        for _ in range(rng.randint(1, 16)):
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
    elif kind == 1 and b:  # interesting bytes
        for _ in range(rng.randint(1, 8)):
            b[rng.randrange(len(b))] = rng.choice(INTERESTING)
    elif kind == 2:  # truncation
        return bytes(b[: rng.randrange(0, len(b) + 1)])
    elif kind == 3:  # inserted run
        i = rng.randrange(len(b) + 1)
        run = bytes([rng.randrange(256)]) * rng.randint(1, 64)
        return bytes(b[:i]) + run + bytes(b[i:])
    elif kind == 4 and b:  # deleted run
        i = rng.randrange(len(b))
        return bytes(b[:i] + b[i + rng.randint(1, 64) :])
    elif kind == 5:  # splice with another seed
        other = rng.choice(pool)
        i, j = rng.randrange(len(b) + 1), rng.randrange(len(other) + 1)
        return bytes(b[:i]) + other[j:]
    elif kind == 6:
        return _png_dims(bytes(b), rng)
    elif kind == 7:
        return _jpeg_dims(bytes(b), rng)
    elif kind == 8:
        return _webp_dims(bytes(b), rng)
    return bytes(b)


def cases(seed: int, n: int) -> Iterator[bytes]:
    """`n` fuzz cases from a seed (deterministic)."""
    rng = random.Random(seed)
    pool = seeds()
    for _ in range(n):
        data = rng.choice(pool)
        for _ in range(rng.randint(1, 3)):
            data = mutate(data, rng, pool)
        yield data


def check(data: bytes) -> str:
    """Load one case; "ok", "error" (a proper PhotoError), or raise AssertionError on a finding."""
    from deeproot.diagnose.images import PhotoError, PhotoInput, load_photo

    try:
        photo = load_photo(PhotoInput(NAME, data), min_size=64)
    except PhotoError as exc:
        msg = str(exc)
        assert msg.startswith(f"{NAME}: "), msg
        assert "\n" not in msg and "\r" not in msg, msg
        assert len(msg) < 400, msg
        return "error"
    assert photo.image.mode == "RGB", photo.image.mode
    assert max(photo.image.size) < 2 * 64 * 2 or max(photo.original_size) < 2 * 64 * 2, (
        photo.image.size,
        photo.original_size,
    )
    photo.image.tobytes()  # the pixels are really there
    return "ok"
