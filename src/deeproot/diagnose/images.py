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
import functools
import io
import logging
import math
import os
import re
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
_ORIENTATION = 0x0112  # the EXIF tag; 2-8 mean the pixels must be flipped or turned


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
    """A photo that cannot be diagnosed; the message names the file and says what to do.

    `name` is the photo's name as it starts the message; `text("ko")` gives the Korean form.
    """

    name: str = ""

    def text(self, lang: str = "en") -> str:
        """The message in `lang` (`ko` or `en`); English where no translation is known."""
        msg = str(self)
        if lang != "ko" or not self.name or not msg.startswith(self.name + ": "):
            return msg
        reason = msg[len(self.name) + 2 :]
        for pattern, ko in _KO_REASONS:
            m = pattern.fullmatch(reason)
            if m:
                groups = [_KO_WHAT.get(g, g) for g in m.groups()]
                return f"{self.name}: {ko.format(*groups)}"
        return msg


_KO_WHAT = {
    "not an image": "이미지가 아닙니다",
    "a GIF image": "GIF 이미지입니다",
    "a PDF document": "PDF 문서입니다",
    "a ZIP archive": "ZIP 압축 파일입니다",
    "a TIFF image": "TIFF 이미지입니다",
    "a BMP image": "BMP 이미지입니다",
    "a HEIC/AVIF image": "HEIC/AVIF 이미지입니다",
}
_KO_REASONS = [
    (re.compile(p), ko)
    for p, ko in (
        (r"no such file", "파일이 없습니다"),
        (
            r"no such file \(a part of the path is not a folder\)",
            "파일이 없습니다 (경로 중간이 폴더가 아님)",
        ),
        (
            r"is a folder, not a photo; pass the photo files inside it",
            "폴더입니다. 폴더 안의 사진 파일을 지정하세요",
        ),
        (
            r"file name too long \(over 255 bytes\); rename the photo",
            "파일 이름이 너무 깁니다 (255바이트 초과). 이름을 줄이세요",
        ),
        (
            r"permission denied; check the file's permissions",
            "읽기 권한이 없습니다. 파일 권한을 확인하세요",
        ),
        (
            r"not a regular file \(a device or pipe\); pass a photo file",
            "일반 파일이 아닙니다 (장치나 파이프). 사진 파일을 지정하세요",
        ),
        (r"invalid file name", "파일 이름이 올바르지 않습니다"),
        (r"too many levels of symbolic links", "심볼릭 링크가 너무 많이 이어집니다"),
        (r"empty file \(0 bytes\)", "빈 파일입니다 (0바이트)"),
        (r"photo data must be bytes", "사진 데이터가 바이트가 아닙니다"),
        (
            r"(\d+) MB is over the (\d+) MB limit; send a smaller photo",
            "{0} MB로 {1} MB 제한을 넘습니다. 더 작은 사진을 보내 주세요",
        ),
        (
            r"(.+); deeproot reads JPEG, PNG or WebP photos",
            "{0}. JPEG, PNG, WebP 사진만 읽을 수 있습니다",
        ),
        (
            r"(\d+x\d+) pixels is over the (\d+)-megapixel limit \(possible decompression bomb\);"
            r" send a smaller photo",
            "{0} 픽셀로 {1}메가픽셀 제한을 넘습니다 (압축 폭탄일 수 있음)."
            " 더 작은 사진을 보내 주세요",
        ),
        (
            r"over the (\d+)-megapixel limit \(possible decompression bomb\); send a smaller photo",
            "{0}메가픽셀 제한을 넘습니다 (압축 폭탄일 수 있음). 더 작은 사진을 보내 주세요",
        ),
        (
            r"a (\d+x\d+) (.+?) needs (\d+) MB to decode, over the (\d+) MB budget per photo;"
            r" send a JPEG or a photo of at most (\d+) megapixels",
            "{0} {1} 사진은 디코딩에 {2} MB가 필요해 사진당 {3} MB 한도를 넘습니다. JPEG나"
            " {4}메가픽셀 이하의 사진을 보내 주세요",
        ),
        (
            r"not enough memory to decode it; send a smaller photo",
            "디코딩할 메모리가 부족합니다. 더 작은 사진을 보내 주세요",
        ),
        (
            r"truncated (\w+) file \((.*)\); copy the photo again",
            "잘린 {0} 파일입니다 ({1}). 사진을 다시 복사하세요",
        ),
        (r"corrupt (\w+) file \((.*)\)", "손상된 {0} 파일입니다 ({1})"),
        (r"cannot read \((.*)\)", "읽을 수 없습니다 ({0})"),
    )
]


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
    try:
        return _load(src, name, min_size, max_bytes, max_pixels, max_decode_bytes)
    except PhotoError as exc:
        exc.name = name
        raise


def _load(
    src: PhotoSource,
    name: str,
    min_size: int,
    max_bytes: int,
    max_pixels: int,
    max_decode_bytes: int,
) -> Photo:
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
        if img.getexif().get(_ORIENTATION, 1) in range(2, 9):
            # only then: exif_transpose copies the whole image even when it has nothing to do
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
        skin_fraction: share of pixels in skin/hair colours (kept for reference; not a gate).
        structure: large-scale structure against fine texture (`_structure`): a microscope
            field of skin and hair about 0.1-1.4, a scene, a face or an object 1.9 and more.
        colourfulness: median chroma after gray-world white balance (a tint does not count).
        chroma: mean raw chroma, 0-255 (under 6: a black-and-white image or a screenshot).
        brightness: mean gray level, 0-255.
        clipped: share of pixels at >= 250 (blown-out highlights, white backgrounds).
        warnings: (code, message) pairs; empty when the photo looks like a usable close-up.
    """

    sharpness: float
    flat_fraction: float
    skin_fraction: float
    warnings: tuple[tuple[str, str], ...]
    structure: float = 0.0
    colourfulness: float = 0.0
    chroma: float = 0.0
    brightness: float = 0.0
    clipped: float = 0.0

    @property
    def ok(self) -> bool:
        """True when nothing was flagged."""
        return not self.warnings


BLUR_MIN = 12.0
FLAT_MAX = 0.5
STRUCTURE_MAX = 1.6
GRAY_CHROMA_MAX = 6.0
DARK_MEAN_MIN = 40.0
CLIPPED_MAX = 0.15
SKIN_MIN = 0.5  # reported only (the old colour gate withheld real close-ups under blue light)

USABLE = {
    "en": (
        "a usable photo is a close-up from a scalp microscope or a macro lens: skin and hair"
        " shafts fill the frame, evenly lit and in focus"
    ),
    "ko": (
        "두피 확대경(또는 접사 렌즈)으로 두피와 모발이 화면을 가득 채우도록,"
        " 고르게 밝고 초점이 맞게 찍은 사진이 필요합니다"
    ),
}
_MESSAGES = {
    "blurry": {
        "en": "the photo is blurry (sharpness {sharpness:.1f} < {limit}); {usable}",
        "ko": "사진이 흐립니다 (선명도 {sharpness:.1f} < {limit}). {usable}",
    },
    "plain": {
        "en": "{flat:.0%} of the photo is plain background, not a scalp close-up; {usable}",
        "ko": "사진의 {flat:.0%}가 밋밋한 배경이라 두피 확대 사진이 아닙니다. {usable}",
    },
    "gray": {
        "en": "a black-and-white image or a screenshot, not a colour scalp close-up; {usable}",
        "ko": "흑백 이미지나 화면 캡처로 보여 두피 확대 사진이 아닙니다. {usable}",
    },
    "dark": {
        "en": "the photo is too dark (mean brightness {brightness:.0f} of 255); {usable}",
        "ko": "사진이 너무 어둡습니다 (평균 밝기 {brightness:.0f}/255). {usable}",
    },
    "clipped": {
        "en": "{clipped:.0%} of the photo is blown-out white (a page, a screen or a flash"
        " reflection); {usable}",
        "ko": "사진의 {clipped:.0%}가 하얗게 날아갔습니다 (문서, 화면 또는 플래시 반사). {usable}",
    },
    "scene": {
        "en": "this looks like a photo of a scene, a person, an animal or an object (large shapes"
        " and edges, structure score {structure:.2f} > {limit}), not a scalp close-up; {usable}",
        "ko": "두피 확대 사진이 아니라 풍경·인물·동물·물건 사진으로 보입니다 (큰 형태와 윤곽, 구조"
        " 점수 {structure:.2f} > {limit}). {usable}",
    },
    "colour": {
        "en": "its colours are not those of skin under white, warm or blue light; {usable}",
        "ko": "흰색·노란색·푸른 조명 아래의 피부 색이 아닙니다. {usable}",
    },
}


def _message(key: str, lang: str, **values: float) -> str:
    lang = lang if lang in USABLE else "en"
    return _MESSAGES[key][lang].format(usable=USABLE[lang], **values)


def _small(img: Image.Image) -> tuple[Image.Image, np.ndarray, np.ndarray]:
    """The photo in gray (full size), gray at 256 px (bilinear) and RGB at 128 px (box)."""
    import numpy as np
    from PIL import Image

    lum = img.convert("L")
    w, h = img.size
    scale = min(1.0, 256 / max(w, h))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = (
        lum if size == lum.size else lum.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
    )
    k = min(1.0, 128 / max(w, h))
    csize = (max(1, round(w * k)), max(1, round(h * k)))
    colour = img if csize == img.size else img.resize(csize, Image.Resampling.BOX)
    return lum, np.asarray(small, dtype=np.float32), np.asarray(colour, dtype=np.int16)


@functools.cache
def _residual_projector(gh: int, gw: int) -> np.ndarray:
    """I - B B+ for the quadratic-surface basis B of a gh x gw grid: applied to the grid, what a
    least-squares fit of smooth lighting leaves (the same as `lstsq` then subtracting, to 1e-13,
    ~50x faster; only two grid shapes ever occur)."""
    import numpy as np

    yy, xx = np.mgrid[0:gh, 0:gw]
    yy, xx = yy / gh - 0.5, xx / gw - 0.5
    basis = np.stack([np.ones_like(xx), xx, yy, xx * xx, yy * yy, xx * yy], -1).reshape(-1, 6)
    projector = np.eye(gh * gw) - basis @ np.linalg.pinv(basis)
    projector.flags.writeable = False
    return projector


def _structure(lum: Image.Image) -> float:
    """Large-scale structure that is not smooth lighting, relative to fine texture.

    A microscope field is a texture (skin, pores, hair shafts) under smooth lighting (a vignette,
    a gradient from the LED ring); a scene, a face or an object has large shapes with edges. On a
    256 px gray copy (box filter), the image is averaged into a 16x12 grid; a quadratic surface
    (smooth lighting) is fitted to the grid, and R is the std of what it leaves, relative to the
    mean brightness. F is the fine texture: mean |Laplacian| at 256 px, relative to the mean.
    The score is R / F weighted by R itself (R / 0.1), so weak large-scale shapes on a
    low-texture scalp (bald skin with red patches) do not count like a face's.
    Measured (benchmarks/diagnose.py --photo-check): 400 synthetic scalps under eight lights at
    most 1.40; colour photographs 1.87 (a tissue micrograph) to 9; the limit is 1.6.
    """
    import numpy as np
    from PIL import Image

    w, h = lum.size
    k = 256 / max(w, h)
    size = (max(16, round(w * k)), max(16, round(h * k)))
    gray = np.asarray(lum.resize(size, Image.Resampling.BOX), dtype=np.float64)
    mean = float(gray.mean()) + 1e-3
    gh, gw = (12, 16) if size[0] >= size[1] else (16, 12)
    ch, cw = gray.shape[0] // gh, gray.shape[1] // gw
    grid = gray[: ch * gh, : cw * gw].reshape(gh, ch, gw, cw).mean(axis=(1, 3))
    residual = float((_residual_projector(gh, gw) @ grid.ravel()).std()) / mean
    lap = np.abs(
        -4 * gray[1:-1, 1:-1] + gray[:-2, 1:-1] + gray[2:, 1:-1] + gray[1:-1, :-2] + gray[1:-1, 2:]
    )
    fine = float(lap.mean()) / mean
    return residual * (residual / 0.1) / (fine + 1e-3)


def quality(img: Image.Image, lang: str = "en") -> Quality:
    """Check that the photo is a usable scalp close-up: in focus, a microscope-like field.

    What a scalp-microscope photo is, measured rather than guessed from colour: a close, evenly
    lit field of skin texture and hair shafts with no large-scale scene structure. In order, the
    first that applies is reported (with what a usable photo looks like): blurry (Laplacian
    variance); plain background (textureless tiles); black-and-white or a screenshot (almost no
    chroma); too dark; blown-out white areas; large-scale structure (`_structure`: a face, a pet,
    an object, a landscape); colours no white, warm or blue light gives skin (the mean colour,
    a weak cue used last). A tint of the light changes none of the structural measures.

    Args:
        img: an RGB image.
        lang: `en` or `ko` for the messages.
    """
    import numpy as np

    lum, gray, rgb = _small(img)
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
    # Colour planes as contiguous arrays: the same values as per-pixel triples, computed ~8x
    # faster (a reduction over the 3-long last axis, np.ptp(axis=2), was most of the cost).
    r, g, b = np.moveaxis(rgb, 2, 0).copy()
    mx, mn = np.maximum(np.maximum(r, g), b), np.minimum(np.minimum(r, g), b)
    spread = mx - mn
    warm = (r >= g - 8) & (g >= b - 20)
    skin = warm | (mx < 70) | (spread * 100 < 18 * mx)
    skin_fraction = float(skin.mean())
    chroma = float(spread.mean())
    means = np.array([r.mean(), g.mean(), b.mean()]) + 1e-3  # exact: sums of small integers
    scale = means.astype(np.float32)
    level = np.float32(means.mean())
    balanced = [plane.astype(np.float32) / scale[c] * level  # gray world: no tint
                for c, plane in enumerate((r, g, b))]
    ptp = np.maximum(np.maximum(*balanced[:2]), balanced[2]) - np.minimum(
        np.minimum(*balanced[:2]), balanced[2])
    balanced_mean = np.stack(balanced, axis=-1).mean()  # summed in the per-pixel order
    colourfulness = float(np.median(ptp) / (balanced_mean + 1e-3))
    brightness = float(gray.mean())
    clipped = float((gray >= 250).mean())  # on the 256 px gray copy
    structure = _structure(lum) if th and tw else 0.0
    # colour as a weak cue: the chromaticity of the mean colour (skin under any usual light has
    # some red and is neither strongly green nor deep blue)
    cr, cg, cb = means / means.sum()
    warnings: list[tuple[str, str]] = []
    if sharpness < BLUR_MIN:
        warnings.append(("blurry", _message("blurry", lang, sharpness=sharpness, limit=BLUR_MIN)))
    elif flat > FLAT_MAX:
        warnings.append(("not_closeup", _message("plain", lang, flat=flat)))
    elif chroma < GRAY_CHROMA_MAX:
        warnings.append(("not_closeup", _message("gray", lang)))
    elif brightness < DARK_MEAN_MIN:
        warnings.append(("not_closeup", _message("dark", lang, brightness=brightness)))
    elif clipped > CLIPPED_MAX:
        warnings.append(("not_closeup", _message("clipped", lang, clipped=clipped)))
    elif structure * (1 + max(0.0, colourfulness - 0.25)) > STRUCTURE_MAX:
        # vivid colours after white balance (a scene's many hues) weigh in a little
        warnings.append(
            ("not_closeup", _message("scene", lang, structure=structure, limit=STRUCTURE_MAX))
        )
    elif cr < 0.2 or cg > 0.45 or cb > 0.5:
        warnings.append(("not_closeup", _message("colour", lang)))
    return Quality(
        sharpness=round(sharpness, 2),
        flat_fraction=round(flat, 3),
        skin_fraction=round(skin_fraction, 3),
        warnings=tuple(warnings),
        structure=round(structure, 3),
        colourfulness=round(colourfulness, 3),
        chroma=round(chroma, 2),
        brightness=round(brightness, 1),
        clipped=round(clipped, 3),
    )
