"""Image preprocessing shared by training (torch side) and inference (numpy/PIL side).

One function, `prepare`, turns a PIL image into the model's float32 CHW input, so training and
serving cannot drift apart. Imports only numpy and PIL (inside functions).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from deeproot.errors import DataError

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    from PIL import Image

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RESIZE_POLICIES = ("letterbox", "stretch")


@dataclass(frozen=True)
class Preprocess:
    """How a model wants its input.

    Attributes:
        size: output (height, width) in pixels.
        resize: "letterbox" (keep aspect ratio, scale the long side, pad with the mean colour,
            centred) or "stretch" (resize to size ignoring aspect ratio).
        grayscale: convert to gray first; the gray channel is repeated 3 times.
        mean: per-channel mean (RGB, 0..1 scale) subtracted before dividing by std.
        std: per-channel standard deviation.
    """

    size: tuple[int, int] = (240, 240)
    resize: str = "letterbox"
    grayscale: bool = False
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def __post_init__(self) -> None:
        h, w = self.size
        if not (isinstance(h, int) and isinstance(w, int) and 8 <= h <= 4096 and 8 <= w <= 4096):
            raise DataError(f"preprocess size must be two integers in 8..4096, got {self.size!r}")
        if self.resize not in RESIZE_POLICIES:
            raise DataError(
                f"preprocess resize must be one of {', '.join(RESIZE_POLICIES)}, "
                f"got {self.resize!r}"
            )
        if len(self.mean) != 3 or len(self.std) != 3 or any(s <= 0 for s in self.std):
            raise DataError("preprocess mean/std must be 3 numbers each, std > 0")

    def to_json(self) -> dict[str, Any]:
        """The bundle.json form."""
        return {
            "size": [self.size[0], self.size[1]],
            "resize": self.resize,
            "grayscale": self.grayscale,
            "mean": list(self.mean),
            "std": list(self.std),
        }

    @classmethod
    def from_json(cls, obj: Any) -> Preprocess:
        """Parse the bundle.json form; raises DataError naming the bad field."""
        if not isinstance(obj, dict):
            raise DataError("preprocess must be an object")
        try:
            size = obj.get("size", [240, 240])
            mean = obj.get("mean", list(IMAGENET_MEAN))
            std = obj.get("std", list(IMAGENET_STD))
            return cls(
                size=(int(size[0]), int(size[1])),
                resize=str(obj.get("resize", "letterbox")),
                grayscale=bool(obj.get("grayscale", False)),
                mean=tuple(float(v) for v in mean),  # type: ignore[arg-type]
                std=tuple(float(v) for v in std),  # type: ignore[arg-type]
            )
        except (TypeError, ValueError, IndexError) as exc:
            raise DataError(f"preprocess is malformed: {exc}") from exc


def _resample() -> Any:
    from PIL import Image

    return Image.Resampling.BILINEAR


def _lut(pre: Preprocess) -> np.ndarray:
    """[3, 256] float32: channel c's normalised value of each 8-bit level.

    Computed with exactly the float32 steps `((v / 255) - mean) / std` that were applied to every
    pixel before, so looking values up gives bit-identical inputs (training and serving share
    this function), at a fraction of the cost of three float passes over the image.
    """
    import numpy as np

    key = (pre.mean, pre.std)
    lut = _LUTS.get(key)
    if lut is None:
        levels = np.arange(256, dtype=np.float32) / 255.0
        mean = np.asarray(pre.mean, dtype=np.float32).reshape(3, 1)
        std = np.asarray(pre.std, dtype=np.float32).reshape(3, 1)
        lut = ((levels[None, :] - mean) / std).astype(np.float32, copy=False)
        lut.setflags(write=False)
        _LUTS[key] = lut
    return lut


_LUTS: dict[tuple[tuple[float, ...], tuple[float, ...]], np.ndarray] = {}


def prepare(image: Image.Image, pre: Preprocess) -> np.ndarray:
    """Turn a PIL image into a normalised float32 array [3, H, W].

    Steps: RGB (or gray repeated to 3 channels), resize per policy (bilinear), scale to 0..1,
    subtract mean, divide by std. Letterbox padding is exactly 0 after normalisation.
    """
    import numpy as np

    h, w = pre.size
    if pre.grayscale:
        img = image.convert("L").convert("RGB")
    else:  # convert() copies even an RGB image; only resize() below reads it
        img = image if image.mode == "RGB" else image.convert("RGB")
    lut = _lut(pre)
    if pre.resize == "stretch":
        nw, nh, top, left = w, h, 0, 0
    else:
        iw, ih = img.size
        scale = min(w / iw, h / ih)
        nw, nh = max(1, round(iw * scale)), max(1, round(ih * scale))
        top, left = (h - nh) // 2, (w - nw) // 2
    pixels = np.asarray(img.resize((nw, nh), _resample()))  # [nh, nw, 3] uint8
    out = np.zeros((3, h, w), dtype=np.float32)
    for c in range(3):
        np.take(lut[c], pixels[..., c], out=out[c, top : top + nh, left : left + nw])
    return out


def prepare_batch(images: list[Image.Image], pre: Preprocess) -> np.ndarray:
    """Stack `prepare` over several images into [N, 3, H, W]."""
    import numpy as np

    if not images:
        h, w = pre.size
        return np.zeros((0, 3, h, w), dtype=np.float32)
    return np.stack([prepare(im, pre) for im in images])
