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
