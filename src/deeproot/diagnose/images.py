"""Safe photo loading and a quality check: the only way a user's file becomes a PIL image.

Formats are recognised by content (JPEG, PNG, WebP), size and pixel limits are enforced before any
pixel is decoded, large JPEGs are decoded at reduced size (draft mode), EXIF orientation is applied
and every mode (CMYK, palette, 16-bit, alpha) ends as 8-bit RGB. Each failure is a `PhotoError`
with a one-line message naming the file.
"""

from __future__ import annotations

import logging
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from deeproot.errors import InputError, require

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    from PIL import Image

log = logging.getLogger(__name__)

MAX_BYTES = 200 * 1024 * 1024  # the original service's upload limit
MAX_PIXELS = 120_000_000  # about a 12,600 x 9,500 photo; more is treated as a decompression bomb
_DRAFT_FACTOR = 2  # decode JPEGs at no less than twice the model input


class PhotoError(InputError):
    """A photo that cannot be diagnosed; the message names the file and says what to do."""


@dataclass(frozen=True)
class Photo:
    """A decoded photo ready for preprocessing.

    Attributes:
        path: the file as given.
        image: 8-bit RGB, EXIF orientation applied, possibly decoded at reduced size.
        format: "JPEG", "PNG" or "WEBP" (from the content).
        original_size: (width, height) as stored in the file, before orientation and draft.
        notes: what was done to it ("converted CMYK to RGB", "decoded at 1/4 size").
    """

    path: Path
    image: Image.Image
    format: str
    original_size: tuple[int, int]
    notes: tuple[str, ...] = ()


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


def load_photo(
    path: str | os.PathLike[str],
    *,
    min_size: int = 480,
    max_bytes: int = MAX_BYTES,
    max_pixels: int = MAX_PIXELS,
) -> Photo:
    """Open one photo safely.

    Args:
        path: the file.
        min_size: JPEGs are decoded at the smallest draft scale (1/2, 1/4, 1/8) whose long side
            stays >= this.
        max_bytes: refuse larger files.
        max_pixels: refuse images declaring more pixels (decompression bombs).

    Raises:
        PhotoError: one line naming the file: missing, a folder, empty, too large, not
            JPEG/PNG/WebP, corrupt or truncated.
    """
    image_mod = require("PIL.Image", "infer")
    from PIL import ImageOps

    p = Path(path)
    if not p.exists():
        raise PhotoError(f"{p}: no such file")
    if p.is_dir():
        raise PhotoError(f"{p}: is a folder, not a photo; pass the photo files inside it")
    size = p.stat().st_size
    if size == 0:
        raise PhotoError(f"{p}: empty file (0 bytes)")
    if size > max_bytes:
        raise PhotoError(
            f"{p}: {size / 1024 / 1024:.0f} MB is over the {max_bytes / 1024 / 1024:.0f} MB limit;"
            " send a smaller photo"
        )
    try:
        with p.open("rb") as fh:
            head = fh.read(16)
    except OSError as exc:
        raise PhotoError(f"{p}: cannot read: {exc.strerror or exc}") from exc
    fmt = sniff(head)
    if fmt is None:
        raise PhotoError(f"{p}: {_describe(head)}; deeproot reads JPEG, PNG or WebP photos")
    notes: list[str] = []
    try:
        # Our own pixel limit replaces Pillow's global one, checked on the header before decoding.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", image_mod.DecompressionBombWarning)
            img = image_mod.open(p, formats=[fmt])
        w, h = img.size
        if w * h > max_pixels:
            raise PhotoError(
                f"{p}: {w}x{h} pixels is over the {max_pixels / 1e6:.0f}-megapixel limit"
                " (possible decompression bomb); send a smaller photo"
            )
        if fmt == "JPEG" and max(w, h) >= 2 * min_size:
            k = min_size / max(w, h)
            img.draft("RGB", (math.ceil(w * k), math.ceil(h * k)))
            if img.size != (w, h):
                notes.append(f"decoded at {img.size[0]}x{img.size[1]} from {w}x{h}")
        img.load()
        img = ImageOps.exif_transpose(img)
        img, converted = _to_rgb(img)
        if converted:
            notes.append(converted)
    except PhotoError:
        raise
    except image_mod.DecompressionBombError as exc:
        raise PhotoError(
            f"{p}: over the {max_pixels / 1e6:.0f}-megapixel limit"
            " (possible decompression bomb); send a smaller photo"
        ) from exc
    except MemoryError as exc:
        raise PhotoError(f"{p}: not enough memory to decode it; send a smaller photo") from exc
    except (
        Exception
    ) as exc:  # decoders raise many types on bad data; one bad photo must not stop the rest
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "truncated" in msg:
            raise PhotoError(f"{p}: truncated {fmt} file ({msg}); copy the photo again") from exc
        raise PhotoError(f"{p}: corrupt {fmt} file ({msg})") from exc
    return Photo(path=p, image=img, format=fmt, original_size=(w, h), notes=tuple(notes))


def _to_rgb(img: Image.Image) -> tuple[Image.Image, str | None]:
    from PIL import Image

    mode = img.mode
    if mode == "RGB":
        return img, None
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        import numpy as np

        arr = np.asarray(img, dtype=np.float64)
        peak = 65535.0 if mode.startswith("I;16") or arr.max() > 255 else 255.0
        gray = np.clip(arr / peak * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(gray, "L").convert("RGB"), f"converted 16-bit {mode} to RGB"
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
