"""Input safety: formats by content, limits, EXIF, mode conversion, bad files, quality check."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from diagnose_fakes import scalp_image
from PIL import Image, ImageDraw, ImageFilter

from deeproot.diagnose.images import PhotoError, load_photo, quality, sniff
from deeproot.errors import InputError


def test_sniff() -> None:
    assert sniff(b"\xff\xd8\xff\xe0") == "JPEG"
    assert sniff(b"\x89PNG\r\n\x1a\n") == "PNG"
    assert sniff(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "WEBP"
    assert sniff(b"GIF89a") is None and sniff(b"") is None


def test_formats_recognised_by_content_not_extension(tmp_path: Path) -> None:
    img = scalp_image()
    png_named_jpg = tmp_path / "photo.jpg"
    img.save(png_named_jpg, format="PNG")
    webp = tmp_path / "photo.dat"
    img.save(webp, format="WEBP")
    jpeg_no_ext = tmp_path / "photo"
    img.save(jpeg_no_ext, format="JPEG")
    assert load_photo(png_named_jpg).format == "PNG"
    assert load_photo(webp).format == "WEBP"
    p = load_photo(jpeg_no_ext)
    assert (p.format, p.image.mode, p.image.size, p.notes) == ("JPEG", "RGB", (640, 480), ())


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        (b"", "empty.jpg", "empty.jpg: empty file (0 bytes)"),
        (
            b"hello, not an image",
            "notes.jpg",
            "notes.jpg: not an image; deeproot reads JPEG, PNG or WebP photos",
        ),
        (
            b"GIF89a" + b"\0" * 20,
            "anim.gif",
            "anim.gif: a GIF image; deeproot reads JPEG, PNG or WebP photos",
        ),
        (
            b"%PDF-1.7\n",
            "scan.png",
            "scan.png: a PDF document; deeproot reads JPEG, PNG or WebP photos",
        ),
        (b"\xff\xd8\xff\xe0" + b"\x00garbage" * 4, "bad.jpg", "bad.jpg: corrupt JPEG file"),
    ],
)
def test_bad_files_one_line_errors(tmp_path: Path, content: bytes, name: str, message: str) -> None:
    f = tmp_path / name
    f.write_bytes(content)
    with pytest.raises(PhotoError) as info:
        load_photo(f)
    text = str(info.value)
    assert text.startswith(str(tmp_path / message.split(":")[0]) + ":")
    assert message.split(": ", 1)[1] in text
    assert "\n" not in text
    assert isinstance(info.value, InputError)


def test_folder_and_missing(tmp_path: Path) -> None:
    with pytest.raises(PhotoError, match="is a folder, not a photo"):
        load_photo(tmp_path)
    with pytest.raises(PhotoError, match="nope.jpg: no such file"):
        load_photo(tmp_path / "nope.jpg")


def test_truncated_jpeg(tmp_path: Path) -> None:
    f = tmp_path / "cut.jpg"
    scalp_image().save(f, format="JPEG", quality=90)
    data = f.read_bytes()
    f.write_bytes(data[: len(data) // 2])
    with pytest.raises(PhotoError, match=r"cut.jpg: truncated JPEG file .*copy the photo again"):
        load_photo(f)


def test_truncated_png(tmp_path: Path) -> None:
    f = tmp_path / "cut.png"
    scalp_image().save(f, format="PNG")
    data = f.read_bytes()
    f.write_bytes(data[: len(data) // 2])
    with pytest.raises(PhotoError, match=r"cut.png: (truncated|corrupt) PNG file"):
        load_photo(f)


def test_size_limit(tmp_path: Path) -> None:
    f = tmp_path / "big.jpg"
    scalp_image().save(f, format="JPEG")
    with pytest.raises(PhotoError, match=r"big.jpg: 0 MB is over the 0 MB limit; send a smaller"):
        load_photo(f, max_bytes=1000)


def _png_claiming(path: Path, w: int, h: int) -> None:
    """A tiny PNG whose header claims w x h pixels (a decompression bomb's shape)."""
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    idat = zlib.compress(b"\0" * 1000)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", 13)
        + chunk
        + struct.pack(">I", zlib.crc32(chunk))
        + struct.pack(">I", len(idat))
        + b"IDAT"
        + idat
        + struct.pack(">I", zlib.crc32(b"IDAT" + idat))
        + struct.pack(">I", 0)
        + b"IEND"
        + struct.pack(">I", zlib.crc32(b"IEND"))
    )


def test_pixel_limit_before_decoding(tmp_path: Path) -> None:
    f = tmp_path / "bomb.png"
    _png_claiming(f, 13_000, 12_000)
    assert f.stat().st_size < 2000
    with pytest.raises(PhotoError, match=r"bomb.png: 13000x12000 pixels is over the 150-megapixel"):
        load_photo(f)
    _png_claiming(f, 12_000, 11_000)  # under the pixel limit, over the decode-memory budget
    with pytest.raises(PhotoError, match=r"bomb.png: a 12000x11000 PNG needs 504 MB to decode"):
        load_photo(f)
    _png_claiming(f, 50_000, 50_000)  # beyond Pillow's own hard limit too
    with pytest.raises(PhotoError, match=r"bomb.png: over the 150-megapixel limit \(possible"):
        load_photo(f)


def test_exif_orientation_applied(tmp_path: Path) -> None:
    img = Image.new("RGB", (60, 40), (200, 150, 130))
    img.paste((0, 0, 255), (0, 0, 20, 40))  # blue left third
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW to display
    f = tmp_path / "rot.jpg"
    img.save(f, format="JPEG", exif=exif.tobytes(), quality=95)
    p = load_photo(f)
    assert p.image.size == (40, 60)
    top = np.asarray(p.image)[:10].mean(axis=(0, 1))
    assert top[2] > 200 and top[0] < 60  # the blue band is now at the top


def test_mode_conversions(tmp_path: Path) -> None:
    base = scalp_image(64, 48)
    cmyk = tmp_path / "cmyk.jpg"
    base.convert("CMYK").save(cmyk, format="JPEG")
    pal = tmp_path / "pal.png"
    base.convert("P", palette=Image.Palette.ADAPTIVE).save(pal)
    rgba = tmp_path / "rgba.png"
    a = base.convert("RGBA")
    a.putalpha(Image.new("L", a.size, 0))  # fully transparent -> white
    a.save(rgba)
    sixteen = tmp_path / "16.png"
    Image.fromarray(np.full((48, 64), 65535 // 2, np.uint16)).save(sixteen)
    la = tmp_path / "la.png"
    base.convert("LA").save(la)
    got = {f.name: load_photo(f) for f in (cmyk, pal, rgba, sixteen, la)}
    assert all(p.image.mode == "RGB" and p.image.size == (64, 48) for p in got.values())
    assert got["cmyk.jpg"].notes == ("converted CMYK to RGB",)
    assert got["pal.png"].notes == ("converted palette to RGB",)
    assert got["rgba.png"].notes == ("flattened RGBA transparency onto white",)
    assert got["la.png"].notes == ("flattened LA transparency onto white",)
    assert np.asarray(got["rgba.png"].image).min() == 255
    assert got["16.png"].notes[0].startswith("converted 16-bit I;16")
    # mid-grey 16-bit becomes mid-grey 8-bit, not clipped white
    assert np.asarray(got["16.png"].image).mean() == pytest.approx(128, abs=1)
    diff = np.abs(np.asarray(got["cmyk.jpg"].image, float) - np.asarray(base, float)).mean()
    assert diff < 12


def test_large_jpeg_decoded_in_draft_mode(tmp_path: Path) -> None:
    f = tmp_path / "phone.jpg"
    scalp_image(2000, 1500).save(f, format="JPEG", quality=85)
    p = load_photo(f, min_size=480)
    assert p.original_size == (2000, 1500)
    assert p.image.size == (500, 375)  # 1/4: the long side stays >= 480
    assert p.notes == ("decoded at 500x375 from 2000x1500",)
    assert load_photo(f, min_size=600).image.size == (1000, 750)
    small = tmp_path / "small.jpg"
    scalp_image(800, 600).save(small, format="JPEG")
    assert load_photo(small, min_size=480).image.size == (800, 600)


def test_quality_accepts_a_sharp_closeup() -> None:
    q = quality(scalp_image())
    assert q.ok and q.warnings == ()


def test_quality_flags_blur() -> None:
    q = quality(scalp_image().filter(ImageFilter.GaussianBlur(6)))
    assert [c for c, _ in q.warnings] == ["blurry"]
    assert q.warnings[0][1].startswith("the photo is blurry (sharpness ")


def test_quality_flags_selfie_on_plain_background() -> None:
    img = Image.new("RGB", (640, 480), (90, 140, 200))
    draw = ImageDraw.Draw(img)
    draw.ellipse((220, 80, 420, 400), fill=(225, 180, 160))
    draw.ellipse((270, 180, 290, 200), fill=(30, 30, 30))
    draw.ellipse((350, 180, 370, 200), fill=(30, 30, 30))
    q = quality(img)
    assert [c for c, _ in q.warnings] == ["not_closeup"]
    assert (
        "plain background, not a scalp close-up; a usable photo is a close-up" in q.warnings[0][1]
    )


def test_quality_flags_a_green_field_by_colour() -> None:
    rng = np.random.default_rng(2)
    arr = np.zeros((480, 640, 3), np.float32)
    arr[..., 1] = 120
    arr += rng.normal(0, 20, arr.shape)
    q = quality(Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)))
    assert [c for c, _ in q.warnings] == ["not_closeup"]
    assert q.warnings[0][1].startswith("its colours are not those of skin under white, warm or")


def test_palette_with_transparency(tmp_path: Path) -> None:
    f = tmp_path / "pt.png"
    pal = scalp_image(64, 48).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    pal.save(f, transparency=0)
    p = load_photo(f)
    assert p.image.mode == "RGB" and p.notes == ("flattened palette transparency onto white",)


def test_unexpected_decoder_error_is_a_photo_error(tmp_path: Path, monkeypatch) -> None:
    from PIL import Image

    f = tmp_path / "odd.jpg"
    scalp_image(64, 48).save(f)

    def broken(img):
        raise KeyError("bad EXIF tag")

    monkeypatch.setattr(Image.Image, "getexif", broken)
    with pytest.raises(PhotoError, match=r"odd.jpg: corrupt JPEG file \('bad EXIF tag'\)"):
        load_photo(f)
