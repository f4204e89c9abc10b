"""preprocess.prepare: exact geometry, normalisation and letterbox padding."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from deeproot.diagnose.preprocess import Preprocess, prepare, prepare_batch
from deeproot.errors import DataError


def test_letterbox_keeps_aspect_and_pads_with_zero() -> None:
    img = Image.new("RGB", (640, 480), (255, 0, 0))
    pre = Preprocess(size=(240, 240), resize="letterbox")
    out = prepare(img, pre)
    assert out.shape == (3, 240, 240) and out.dtype == np.float32
    # 640x480 -> 240x180, centred: 30 rows of padding on top and bottom.
    assert np.all(out[:, :30, :] == 0) and np.all(out[:, 210:, :] == 0)
    red = (1.0 - 0.485) / 0.229
    assert out[0, 30:210, :] == pytest.approx(red, abs=1e-5)
    assert out[1, 100, 100] == pytest.approx((0 - 0.456) / 0.224, abs=1e-5)


def test_stretch_fills_whole_frame() -> None:
    img = Image.new("RGB", (640, 480), (0, 255, 0))
    out = prepare(img, Preprocess(size=(96, 128), resize="stretch"))
    assert out.shape == (3, 96, 128)
    assert np.allclose(out[1], (1.0 - 0.456) / 0.224, atol=1e-5)


def test_grayscale_repeats_one_channel() -> None:
    arr = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    pre = Preprocess(size=(48, 64), grayscale=True, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    out = prepare(Image.fromarray(arr), pre)
    assert np.array_equal(out[0], out[1]) and np.array_equal(out[1], out[2])


def test_batch_and_json_round_trip() -> None:
    pre = Preprocess(size=(32, 32), resize="stretch", grayscale=True)
    assert Preprocess.from_json(pre.to_json()) == pre
    batch = prepare_batch([Image.new("RGB", (10, 20))] * 3, pre)
    assert batch.shape == (3, 3, 32, 32)


@pytest.mark.parametrize(
    ("obj", "msg"),
    [
        ({"size": [240, 240], "resize": "crop"}, "resize must be one of letterbox, stretch"),
        ({"size": [2, 240]}, "size must be two integers"),
        ({"std": [0, 1, 1]}, "std > 0"),
    ],
)
def test_bad_preprocess_is_a_data_error(obj: dict, msg: str) -> None:
    with pytest.raises(DataError, match=msg):
        Preprocess.from_json(obj)


def _reference(image: Image.Image, pre: Preprocess) -> np.ndarray:
    """The per-pixel float32 arithmetic `prepare` replaced by a lookup table."""
    h, w = pre.size
    img = image.convert("L").convert("RGB") if pre.grayscale else image.convert("RGB")
    mean = np.asarray(pre.mean, dtype=np.float32).reshape(3, 1, 1)
    std = np.asarray(pre.std, dtype=np.float32).reshape(3, 1, 1)
    if pre.resize == "stretch":
        nw, nh, top, left = w, h, 0, 0
    else:
        scale = min(w / img.size[0], h / img.size[1])
        nw, nh = max(1, round(img.size[0] * scale)), max(1, round(img.size[1] * scale))
        top, left = (h - nh) // 2, (w - nw) // 2
    arr = np.asarray(img.resize((nw, nh), Image.Resampling.BILINEAR), dtype=np.float32)
    out = np.zeros((3, h, w), dtype=np.float32)
    out[:, top : top + nh, left : left + nw] = ((arr.transpose(2, 0, 1) / 255.0) - mean) / std
    return out


@pytest.mark.parametrize("size", [(640, 480), (480, 640), (100, 37), (7, 300)])
@pytest.mark.parametrize(
    "pre",
    [
        Preprocess(),
        Preprocess(size=(120, 160)),
        Preprocess(size=(96, 128), resize="stretch"),
        Preprocess(size=(48, 64), grayscale=True, mean=(0.5, 0.4, 0.3), std=(0.2, 0.3, 0.4)),
    ],
)
def test_lookup_table_gives_bit_identical_inputs(size: tuple[int, int], pre: Preprocess) -> None:
    arr = np.random.default_rng(size[0]).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    img = Image.fromarray(arr)
    assert prepare(img, pre).tobytes() == _reference(img, pre).tobytes()
