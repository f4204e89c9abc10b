"""Safe photo loading and a quality check: the only way a user's file becomes a PIL image.

A photo is a file path or a `PhotoInput` (a name and the bytes, for uploads that must never touch
the disk); both go through the same checks. Formats are recognised by content (JPEG, PNG, WebP)
from the first 16 bytes, so a 199 MB file of zeros is refused without being read. Every photo has
a budget checked on the header, before any pixel is decoded:

- bytes: at most `MAX_BYTES` (200 MiB), the original service's upload limit;
- declared pixels: at most `MAX_PIXELS` (150 megapixels); more is a decompression bomb;
- decode memory: the pixels actually decoded (JPEGs are decoded at reduced size in draft mode)
  times 4 bytes must fit `MAX_DECODE_BYTES` (128 MiB), so a PNG or WebP may have up to 32
  megapixels (6,900 x 4,600), a JPEG up to `MAX_PIXELS`.

After decoding, a large PNG or WebP is reduced by an integer factor (box filter, like JPEG draft
decoding) to a long side of at least `min_size`, EXIF orientation is applied and every mode (CMYK,
palette, 16-bit, alpha) ends as 8-bit RGB. Pillow's warnings (corrupt EXIF, bomb warnings) are
logged at DEBUG, never printed. Each failure, including every `OSError` (a name over 255 bytes,
no permission, a folder, a device), is a `PhotoError` with a one-line message naming the photo
with terminal control characters removed.
"""

from __future__ import annotations

import errno
import io
import logging
import math
import os
import stat
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Union

from deeproot.errors import InputError, require
from deeproot.terminal import printable

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    from PIL import Image

log = logging.getLogger(__name__)

MAX_BYTES = 200 * 1024 * 1024  # the original service's upload limit
MAX_PIXELS = 150_000_000  # declared by the header; more is treated as a decompression bomb
MAX_DECODE_BYTES = 128 * 1024 * 1024  # decoded pixels x 4 bytes, checked before decoding
_BYTES_PER_PIXEL = 4  # Pillow keeps RGB, RGBA, CMYK and 32-bit modes in 4 bytes a pixel
_REDUCIBLE = frozenset({"L", "LA", "RGB", "RGBA", "CMYK", "I", "F"})


@dataclass(frozen=True)
class PhotoInput:
    """A photo held in memory (an upload): `name` is used in messages, `data` is the file's bytes.

    Accepted wherever a photo path is (`load_photo`, `diagnose(photos=[...])`) and checked the
    same way (content sniffing, byte, pixel and memory budgets); nothing is written to disk.
    """

    name: str
    data: bytes = field(repr=False)


PhotoSource = Union[str, "os.PathLike[str]", PhotoInput]


class PhotoError(InputError):
    """A photo that cannot be diagnosed; the message names the file and says what to do."""


@dataclass(frozen=True)
class Photo:
    """A decoded photo ready for preprocessing.

    Attributes:
        path: the file as given (None for a `PhotoInput`).
        image: 8-bit RGB, EXIF orientation applied, possibly decoded or reduced to a smaller size.
        format: "JPEG", "PNG" or "WEBP" (from the content).
        original_size: (width, height) as stored in the file, before orientation and draft.
        notes: what was done to it ("converted CMYK to RGB", "decoded at 500x375 from 2000x1500").
        name: the photo's name for messages (terminal-safe).
    """

    path: Path | None
    image: Image.Image
    format: str
    original_size: tuple[int, int]
    notes: tuple[str, ...] = ()
    name: str = ""


def sniff(head: bytes) -> str | None:
    """The image format named by a file's first bytes, or None for anything else."""
    if head[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    return None


def _describe(head: bytes) -> str:
    known = {
        b"GIF8": "a GIF image",
        b"%PDF": "a PDF document",
        b"PK\x03\x04": "a ZIP archive",
        b"II*\x00": "a TIFF image",
        b"MM\x00*": "a TIFF image",
        b"BM": "a BMP image",
    }
    for magic, what in known.items():
        if head.startswith(magic):
            return what
    if head[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftypavif"):
        return "a HEIC/AVIF image"
    return "not an image"


def photo_name(src: PhotoSource) -> str:
    """The terminal-safe name of a photo source, as used in messages and reports."""
    if isinstance(src, PhotoInput):
        raw = src.name
    else:
        try:
            raw = os.fsdecode(src)
        except TypeError:
            raw = str(src)
    return printable(raw) or "<photo>"


def _os_reason(exc: OSError) -> str:
    if exc.errno == errno.ENAMETOOLONG:
        return "file name too long (over 255 bytes); rename the photo"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied; check the file's permissions"
    if exc.errno == errno.ENOTDIR:
        return "no such file (a part of the path is not a folder)"
    if exc.errno == errno.ELOOP:
        return "too many levels of symbolic links"
    return f"cannot read ({exc.strerror or type(exc).__name__})"


def _open_file(p: Path, name: str, max_bytes: int) -> IO[bytes]:
    """Open a regular file for reading, refusing folders, devices and pipes without blocking."""
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise PhotoError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise PhotoError(
            f"{name}: is a folder, not a photo; pass the photo files inside it"
        ) from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the name
        reason = _os_reason(exc) if isinstance(exc, OSError) else "invalid file name"
        raise PhotoError(f"{name}: {reason}") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise PhotoError(f"{name}: is a folder, not a photo; pass the photo files inside it")
        if not stat.S_ISREG(st.st_mode):
            raise PhotoError(f"{name}: not a regular file (a device or pipe); pass a photo file")
        _check_size(name, st.st_size, max_bytes)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _check_size(name: str, size: int, max_bytes: int) -> None:
    if size == 0:
        raise PhotoError(f"{name}: empty file (0 bytes)")
    if size > max_bytes:
        raise PhotoError(
            f"{name}: {size / 1024 / 1024:.0f} MB is over the {max_bytes / 1024 / 1024:.0f} MB"
            " limit; send a smaller photo"
        )


def load_photo(
    src: PhotoSource,
    *,
    min_size: int = 480,
    max_bytes: int = MAX_BYTES,
    max_pixels: int = MAX_PIXELS,
    max_decode_bytes: int = MAX_DECODE_BYTES,
) -> Photo:
    """Open one photo safely, within its byte, pixel and memory budgets.

    Args:
        src: a file path or a `PhotoInput` (name and bytes).
        min_size: JPEGs are decoded at the smallest draft scale (1/2, 1/4, 1/8), larger PNG/WebP
            photos reduced by the largest integer factor, whose long side stays >= this.
        max_bytes: refuse larger files.
        max_pixels: refuse images declaring more pixels (decompression bombs).
        max_decode_bytes: refuse images whose decoded pixels x 4 bytes exceed this.

    Raises:
        PhotoError: one line naming the photo: missing, a folder, unreadable, empty, too large,
            not JPEG/PNG/WebP, over budget, corrupt or truncated.
    """
    name = photo_name(src)
    if isinstance(src, PhotoInput):
        if not isinstance(src.data, (bytes, bytearray, memoryview)):
            raise PhotoError(f"{name}: photo data must be bytes")
        _check_size(name, len(src.data), max_bytes)
        path = None
        fh: IO[bytes] = io.BytesIO(src.data)
    else:
        path = Path(src)
        fh = _open_file(path, name, max_bytes)
    with fh:
        try:
            head = fh.read(16)
            fh.seek(0)
        except OSError as exc:
            raise PhotoError(f"{name}: {_os_reason(exc)}") from exc
        fmt = sniff(head)
        if fmt is None:
            raise PhotoError(f"{name}: {_describe(head)}; deeproot reads JPEG, PNG or WebP photos")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            img, size, notes = _decode(fh, fmt, name, min_size, max_pixels, max_decode_bytes)
        for w in caught:
            log.debug("%s: %s", name, w.message)
    return Photo(path=path, image=img, format=fmt, original_size=size, notes=notes, name=name)


def _decode(
    fh: IO[bytes], fmt: str, name: str, min_size: int, max_pixels: int, max_decode_bytes: int
) -> tuple[Image.Image, tuple[int, int], tuple[str, ...]]:
    image_mod = require("PIL.Image", "infer")
    from PIL import ImageOps

    notes: list[str] = []
    limit_mp = f"{max_pixels / 1e6:.0f}-megapixel limit"
    w = h = 0
    try:
        img = image_mod.open(fh, formats=[fmt])
        w, h = img.size
        if w * h > max_pixels:
            raise PhotoError(
                f"{name}: {w}x{h} pixels is over the {limit_mp}"
                " (possible decompression bomb); send a smaller photo"
            )
        if fmt == "JPEG" and max(w, h) >= 2 * min_size:
            k = min_size / max(w, h)
            img.draft("RGB", (math.ceil(w * k), math.ceil(h * k)))
            if img.size != (w, h):
                notes.append(f"decoded at {img.size[0]}x{img.size[1]} from {w}x{h}")
        dw, dh = img.size
        need = dw * dh * _BYTES_PER_PIXEL
        kind = fmt
        if fmt == "JPEG" and img.info.get("progressive"):
            # libjpeg keeps every DCT coefficient of a progressive JPEG (2 bytes each, at full
            # size whatever the draft scale): measured 380 MB for a 2908x42902 one.
            kind = "progressive JPEG"
            need = max(need, round(w * h * _jpeg_components(img) * 2))
        if need > max_decode_bytes:
            most = max_decode_bytes // _BYTES_PER_PIXEL / 1e6
            raise PhotoError(
                f"{name}: a {w}x{h} {kind} needs {need / 2**20:.0f} MB to decode, over the"
                f" {max_decode_bytes / 2**20:.0f} MB budget per photo; send a JPEG or a photo of"
                f" at most {int(most)} megapixels"
            )
        img.load()
        img = _reduce(img, min_size, notes, (w, h))
        img = ImageOps.exif_transpose(img)
        img, converted = _to_rgb(img)
        if converted:
            notes.append(converted)
        img = _reduce(img, min_size, notes, (w, h))
        if img.mode != "RGB":
            img = img.convert("RGB")
    except PhotoError:
        raise
    except image_mod.DecompressionBombError as exc:
        raise PhotoError(
            f"{name}: over the {limit_mp} (possible decompression bomb); send a smaller photo"
        ) from exc
    except MemoryError as exc:
        raise PhotoError(f"{name}: not enough memory to decode it; send a smaller photo") from exc
    except (
        Exception
    ) as exc:  # decoders raise many types on bad data; one bad photo must not stop the rest
        msg = printable(str(exc).splitlines()[0]) if str(exc) else type(exc).__name__
        if "truncated" in msg:
            raise PhotoError(f"{name}: truncated {fmt} file ({msg}); copy the photo again") from exc
        raise PhotoError(f"{name}: corrupt {fmt} file ({msg})") from exc
    return img, (w, h), tuple(notes)


def _jpeg_components(img: Image.Image) -> float:
    """Samples per pixel a JPEG stores: 1.5 for 4:2:0 colour, 3 for 4:4:4, 1 for gray."""
    layers = getattr(img, "layer", None) or []
    try:
        hmax = max(h for _, h, _, _ in layers)
        vmax = max(v for _, _, v, _ in layers)
        return sum(h * v for _, h, v, _ in layers) / (hmax * vmax)
    except (ValueError, TypeError, ZeroDivisionError):
        return float(len(img.getbands()))


def _reduce(
    img: Image.Image, min_size: int, notes: list[str], original: tuple[int, int]
) -> Image.Image:
    """Shrink by the largest integer factor keeping the long side >= min_size (box filter)."""
    if img.mode not in _REDUCIBLE:
        return img
    factor = max(img.size) // min_size
    if factor < 2:
        return img
    out = img.reduce(factor)
    notes[:] = [n for n in notes if not n.startswith(("decoded at", "reduced to"))]
    notes.append(f"reduced to {out.size[0]}x{out.size[1]} from {original[0]}x{original[1]}")
    return out


def _to_rgb(img: Image.Image) -> tuple[Image.Image, str | None]:
    from PIL import Image

    mode = img.mode
    if mode == "RGB":
        return img, None
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        import numpy as np

        arr = np.asarray(img)
        peak = 65535 if mode.startswith("I;16") or arr.max() > 255 else 255
        gray = np.empty(arr.shape, dtype=np.uint8)
        for top in range(0, arr.shape[0], 256):  # in bands: no full-size int64/float64 copy
            band = arr[top : top + 256].astype(np.int64)
            gray[top : top + 256] = np.clip((band * 255 + peak // 2) // peak, 0, 255)
        del arr
        # Gray stays 1 byte a pixel until the caller has reduced it; it then becomes RGB.
        return Image.fromarray(gray, "L"), f"converted 16-bit {mode} to RGB"
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
        if img.mode == "RGB":
            return img, "converted palette to RGB"
        mode = "palette"
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        # Transparent parts become white rather than the undefined colour under the alpha.
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB"), (
            f"flattened {mode} transparency onto white"
        )
    return img.convert("RGB"), f"converted {mode} to RGB"


@dataclass(frozen=True)
class Quality:
    """Quality measures of a photo and the warnings they raise.

    Attributes:
        sharpness: variance of the Laplacian on a 256 px gray copy (low = blurry).
        flat_fraction: share of 16x16 tiles with almost no texture (large plain areas).
        skin_fraction: share of pixels in skin/hair colours (scalp close-ups are mostly these).
        warnings: (code, message) pairs; empty when the photo looks like a usable close-up.
    """

    sharpness: float
    flat_fraction: float
    skin_fraction: float
    warnings: tuple[tuple[str, str], ...]

    @property
    def ok(self) -> bool:
        """True when nothing was flagged."""
        return not self.warnings


BLUR_MIN = 12.0
FLAT_MAX = 0.5
SKIN_MIN = 0.5


def _gray_small(img: Image.Image, side: int = 256) -> tuple[np.ndarray, np.ndarray]:
    import numpy as np
    from PIL import Image

    w, h = img.size
    scale = min(1.0, side / max(w, h))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = (
        img if size == img.size else img.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
    )
    return np.asarray(small.convert("L"), dtype=np.float32), np.asarray(small, dtype=np.int16)


def quality(img: Image.Image) -> Quality:
    """Check blur and whether the photo looks like a scalp close-up (not a selfie or a scene).

    Heuristics, kept simple on purpose: the variance of a 4-neighbour Laplacian for blur; the share
    of textureless tiles (a plain wall, sky or background); the share of pixels that are neither
    skin- nor hair-coloured (saturated greens and blues, bright colours of a scene).
    """
    import numpy as np

    gray, rgb = _gray_small(img)
    lap = (
        -4 * gray[1:-1, 1:-1] + gray[:-2, 1:-1] + gray[2:, 1:-1] + gray[1:-1, :-2] + gray[1:-1, 2:]
    )
    sharpness = float(lap.var()) if lap.size else 0.0
    th, tw = gray.shape[0] // 16, gray.shape[1] // 16
    if th and tw:
        tiles = gray[: th * 16, : tw * 16].reshape(th, 16, tw, 16).swapaxes(1, 2)
        flat = float((tiles.std(axis=(2, 3)) < 2.0).mean())
    else:
        flat = 1.0
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    mx, mn = np.maximum(np.maximum(r, g), b), np.minimum(np.minimum(r, g), b)
    # Skin and hair: red >= green >= blue-ish (warm hues), or dark / unsaturated (hair, shadow);
    # saturation (mx - mn) / mx < 0.18 without a division.
    warm = (r >= g - 8) & (g >= b - 20)
    skin = warm | (mx < 70) | ((mx - mn) * 100 < 18 * mx)
    skin_fraction = float(skin.mean())
    warnings: list[tuple[str, str]] = []
    if sharpness < BLUR_MIN:
        warnings.append(("blurry", f"the photo is blurry (sharpness {sharpness:.1f} < {BLUR_MIN})"))
    if flat > FLAT_MAX:
        warnings.append(
            (
                "not_closeup",
                f"{flat:.0%} of the photo is plain background; take a close-up of the scalp",
            )
        )
    elif skin_fraction < SKIN_MIN:
        warnings.append(
            (
                "not_closeup",
                f"only {skin_fraction:.0%} of the photo is skin or hair coloured; "
                "take a close-up of the scalp",
            )
        )
    return Quality(
        sharpness=round(sharpness, 2),
        flat_fraction=round(flat, 3),
        skin_fraction=round(skin_fraction, 3),
        warnings=tuple(warnings),
    )
