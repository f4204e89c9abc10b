"""Issue 15 photo hardening: in-memory photos, budgets checked before decoding, OSErrors per file.

Each hostile case here made the previous loader use gigabytes, crash the run or leak to the
terminal; the memory figures are in docs/diagnose.md (benchmarks/fuzz.py measures them).
"""

from __future__ import annotations

import io
import os
import struct
import time
import zlib
from pathlib import Path

import pytest
from diagnose_fakes import scalp_image

from deeproot.diagnose.images import (
    MAX_DECODE_BYTES,
    PhotoError,
    PhotoInput,
    load_photo,
)


def _webp_claiming(w: int, h: int) -> bytes:
    """A lossless-WebP header claiming w x h pixels and no image data (34 bytes)."""
    bits = (w - 1) | ((h - 1) << 14)
    payload = b"\x2f" + struct.pack("<I", bits) + b"\x00" * 9
    chunk = b"VP8L" + struct.pack("<I", len(payload)) + payload
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


def _png16(w: int, h: int) -> bytes:
    """A valid 16-bit grayscale PNG of w x h zero pixels: compresses to a few hundred KB."""
    ihdr = struct.pack(">IIBBBBB", w, h, 16, 0, 0, 0, 0)
    raw = zlib.compress(b"\0" * ((w * 2 + 1) * h), 9)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


def _jpeg_bytes(**kw) -> bytes:
    buf = io.BytesIO()
    scalp_image(**kw).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def test_photo_input_is_loaded_like_a_file(tmp_path: Path) -> None:
    data = _jpeg_bytes()
    f = tmp_path / "a.jpg"
    f.write_bytes(data)
    from_file, from_mem = load_photo(f), load_photo(PhotoInput("upload.jpg", data))
    assert (from_mem.format, from_mem.original_size, from_mem.name) == (
        "JPEG",
        (640, 480),
        "upload.jpg",
    )
    assert from_mem.path is None
    assert from_mem.image.tobytes() == from_file.image.tobytes()
    assert (
        "data" not in repr(PhotoInput("x.jpg", data)) or len(repr(PhotoInput("x.jpg", data))) < 60
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "up.jpg: empty file (0 bytes)"),
        (b"%PDF-1.7\n" + b"\0" * 20, "up.jpg: a PDF document; deeproot reads JPEG, PNG or WebP"),
        (_webp_claiming(13000, 12000), "up.jpg: 13000x12000 pixels is over the 150-megapixel"),
        (_webp_claiming(16384, 16384), "up.jpg: over the 150-megapixel limit (possible"),
        (_webp_claiming(10000, 10000), "up.jpg: a 10000x10000 WEBP needs 381 MB to decode"),
    ],
)
def test_photo_input_same_checks(data: bytes, message: str) -> None:
    with pytest.raises(PhotoError) as info:
        load_photo(PhotoInput("up.jpg", data))
    assert str(info.value).startswith(message)


def test_photo_input_byte_limit() -> None:
    with pytest.raises(PhotoError, match=r"^big.png: 0 MB is over the 0 MB limit"):
        load_photo(PhotoInput("big.png", _jpeg_bytes()), max_bytes=1000)


def test_photo_input_name_is_made_terminal_safe() -> None:
    with pytest.raises(PhotoError) as info:
        load_photo(PhotoInput("evil\x1b[31m\u202e.jpg\x07", b"nope"))
    assert str(info.value) == "evil.jpg: not an image; deeproot reads JPEG, PNG or WebP photos"


def test_tiny_webp_claiming_huge_size_refused_before_decoding() -> None:
    data = _webp_claiming(10000, 10000)
    assert len(data) < 40
    with pytest.raises(PhotoError, match="over the 128 MB budget per photo"):
        load_photo(PhotoInput("w.webp", data))


def test_16bit_png_bomb_refused_before_decoding() -> None:
    # The header is what is judged: the real 250 KB file of zeros (benchmarks/fuzz.py) took
    # 2 GB and 9 s in the old loader; here only its first row is compressed, to stay fast.
    data = _png16(9000, 1)
    data = data[:16] + struct.pack(">II", 9000, 9000) + data[24:29]
    data = data[:29] + struct.pack(">I", zlib.crc32(data[12:29])) + _png16(9000, 1)[33:]
    with pytest.raises(PhotoError, match=r"a 9000x9000 PNG needs 309 MB to decode"):
        load_photo(PhotoInput("deep.png", data))


def test_16bit_png_within_budget_is_reduced() -> None:
    p = load_photo(PhotoInput("deep.png", _png16(2000, 1500)), min_size=480)
    assert p.image.mode == "RGB" and p.image.size == (500, 375)
    assert p.notes == ("converted 16-bit I;16 to RGB", "reduced to 500x375 from 2000x1500")


def test_large_png_is_reduced_after_decoding(tmp_path: Path) -> None:
    f = tmp_path / "big.png"
    scalp_image(1200, 900).save(f, compress_level=1)
    p = load_photo(f, min_size=300)
    assert p.image.size == (300, 225) and p.original_size == (1200, 900)
    assert p.notes == ("reduced to 300x225 from 1200x900",)
    # the budget is on decoded pixels x 4 bytes
    with pytest.raises(PhotoError, match="needs 4 MB to decode"):
        load_photo(f, max_decode_bytes=4 * 2**20)
    assert MAX_DECODE_BYTES == 128 * 2**20


def test_zero_filled_file_refused_by_sniffing_without_reading_it(tmp_path: Path) -> None:
    f = tmp_path / "zeros.jpg"
    with f.open("wb") as fh:  # sparse: 199 MB of zeros that take no disk space
        fh.truncate(199 * 2**20)
    t = time.perf_counter()
    with pytest.raises(PhotoError, match="zeros.jpg: not an image"):
        load_photo(f)
    assert time.perf_counter() - t < 1.0  # a generous bound: reading it whole took 18 s


def test_os_errors_are_one_line_photo_errors(tmp_path: Path, monkeypatch) -> None:
    long_name = tmp_path / ("x" * 300 + ".jpg")
    with pytest.raises(PhotoError, match=r"file name too long \(over 255 bytes\); rename"):
        load_photo(long_name)
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    with pytest.raises(PhotoError, match=r"pipe.jpg: not a regular file"):
        load_photo(fifo)  # opened without blocking, refused
    with pytest.raises(PhotoError, match="invalid file name"):
        load_photo("bad\0name.jpg")
    locked = tmp_path / "locked.jpg"
    locked.write_bytes(_jpeg_bytes())
    real_open = os.open

    def deny(path, *a, **kw):
        if str(path) == str(locked):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *a, **kw)

    monkeypatch.setattr(os, "open", deny)
    with pytest.raises(PhotoError, match=r"locked.jpg: permission denied; check the file"):
        load_photo(locked)


def test_read_error_is_a_photo_error(tmp_path: Path, monkeypatch) -> None:
    from deeproot.diagnose import images

    class Failing(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def readinto(self, b):  # noqa: ANN001
            raise OSError(5, "Input/output error")

    monkeypatch.setattr(images, "_open_file", lambda *a: io.BufferedReader(Failing()))
    with pytest.raises(PhotoError, match=r"eio.jpg: cannot read \(Input/output error\)"):
        load_photo(tmp_path / "eio.jpg")


def test_pillow_exif_warnings_do_not_reach_the_terminal(tmp_path: Path, capfd) -> None:
    import warnings

    img = scalp_image(64, 48)
    f = tmp_path / "exif.jpg"
    # An EXIF block whose IFD offset points past its end: Pillow warns while reading it.
    img.save(f, format="JPEG", exif=b"Exif\x00\x00MM\x00*\x00\x00\xff\xf0")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning that escaped would raise here
        p = load_photo(f)
    assert p.image.size == (64, 48)
    cap = capfd.readouterr()
    assert cap.err == "" and cap.out == ""


# --- through diagnose(): bad photos beside good ones, one photo decoded at a time ---------------

import diagnose_fakes as fakes  # noqa: E402


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    pytest.importorskip("onnx")
    return fakes.build_bundle(tmp_path_factory.mktemp("b") / "multihead")


def test_oserrors_and_uploads_beside_good_photos(bundle: Path, tmp_path: Path) -> None:
    from deeproot.diagnose.service import diagnose

    good = tmp_path / "good.jpg"
    good.write_bytes(_jpeg_bytes(seed=1))
    fifo = tmp_path / "fifo.jpg"
    os.mkfifo(fifo)
    rep = diagnose(
        [
            tmp_path / ("y" * 300 + ".jpg"),
            good,
            fifo,
            PhotoInput("upload\x1b]0;pwned\x07.jpg", _jpeg_bytes(seed=1)),
            PhotoInput("bomb.webp", _webp_claiming(10000, 10000)),
        ],
        models=bundle,
        device="cpu",
        recommend_products=False,
        lang="en",
    )
    assert [p.status for p in rep.photos] == ["error", "diagnosed", "error", "diagnosed", "error"]
    assert rep.photos[0].error.endswith("file name too long (over 255 bytes); rename the photo")
    assert rep.photos[3].photo == "upload.jpg"
    assert "budget per photo" in rep.photos[4].error
    same = [s.probabilities for s in rep.photos[1].diagnosis.symptoms]
    assert same == [s.probabilities for s in rep.photos[3].diagnosis.symptoms]
    assert rep.exit_code == 3


def test_photos_are_decoded_one_at_a_time(bundle: Path, tmp_path: Path, monkeypatch) -> None:
    """When a photo is decoded, no earlier photo's decoded image is still alive."""
    import gc
    import weakref

    from deeproot.diagnose import images
    from deeproot.diagnose.service import diagnose

    files = []
    for i in range(4):
        f = tmp_path / f"p{i}.png"
        scalp_image(seed=i).save(f)
        files.append(f)
    alive: list[weakref.ref] = []
    seen: list[int] = []
    real = images.load_photo

    def tracking(src, **kw):  # noqa: ANN001, ANN003
        gc.collect()
        seen.append(sum(r() is not None for r in alive))
        ph = real(src, **kw)
        alive.append(weakref.ref(ph.image))
        return ph

    monkeypatch.setattr(images, "load_photo", tracking)
    rep = diagnose(files, models=bundle, device="cpu", recommend_products=False)
    assert [p.status for p in rep.photos] == ["diagnosed"] * 4
    assert seen == [0, 0, 0, 0]  # the old loop kept every decoded image until inference: [0,1,2,3]
