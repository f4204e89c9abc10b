"""Issue 9 item 7: the photo check on real photographs and on scalp close-ups under tinted light.

Scalps: synthetic close-ups (`deeproot.training.synthetic.render`) under white, warm, blue and a
bluish-white LED ring light (the whole image multiplied by the light's colour). Non-scalps: real
photographs shipped with scikit-image and matplotlib (a portrait, a cat, coffee, a rocket on its
pad, a page of text, a camera-man, a brick wall, coins, a galaxy field, a retina, a stained-tissue
micrograph, Grace Hopper's portrait) and a screenshot-like page. The rates over a larger set are
in docs/diagnose.md.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from deeproot.diagnose.images import quality

LIGHTS = {
    "white": (1.0, 1.0, 1.0),
    "warm": (1.08, 0.96, 0.76),
    "blue": (0.78, 0.92, 1.2),
    "blue-white LED ring": (0.72, 0.9, 1.3),
}


def _scalps(n: int, seed: int) -> list[tuple[str, Image.Image]]:
    from deeproot.training.synthetic import render

    rng = np.random.default_rng(seed)
    out = []
    for light, tint in LIGHTS.items():
        for i in range(n):
            values = tuple(int(v) for v in rng.integers(0, 4, 6))
            arr = np.asarray(render(values, rng), np.float32) * np.asarray(tint, np.float32)
            out.append(
                (f"{light} {i} {values}", Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)))
            )
    return out


def _real_photos() -> dict[str, Image.Image]:
    import os

    import matplotlib
    from skimage import data

    names = {
        "astronaut (portrait)": data.astronaut,
        "chelsea (cat)": data.chelsea,
        "coffee (object)": data.coffee,
        "rocket (outdoor scene)": data.rocket,
        "text (document)": data.text,
        "page (document)": data.page,
        "camera (portrait, b/w)": data.camera,
        "brick (wall)": data.brick,
        "coins (objects)": data.coins,
        "hubble deep field (galaxies)": data.hubble_deep_field,
        "retina (fundus photo)": data.retina,
        "immunohistochemistry (tissue micrograph)": data.immunohistochemistry,
        "motorcycle (object)": lambda: data.stereo_motorcycle()[0],
        "logo (graphic)": data.logo,
    }
    out = {n: Image.fromarray(np.asarray(f())).convert("RGB") for n, f in names.items()}
    hopper = os.path.join(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg")
    out["grace hopper (portrait)"] = Image.open(hopper).convert("RGB")
    return out


def _screenshot() -> Image.Image:
    """A settings-page-like screenshot: title bar, sidebar, text, a coloured button."""
    im = Image.new("RGB", (1280, 800), (245, 246, 248))
    d = ImageDraw.Draw(im)
    d.rectangle((0, 0, 1280, 48), fill=(32, 33, 36))
    d.rectangle((0, 48, 240, 800), fill=(230, 232, 236))
    for i in range(12):
        d.text((16, 70 + i * 28), f"Menu item {i}", fill=(40, 40, 40))
    for r in range(20):
        d.text(
            (270, 80 + r * 30), "Lorem ipsum dolor sit amet, consectetur " * 3, fill=(20, 20, 20)
        )
    d.rectangle((1000, 700, 1200, 750), fill=(26, 115, 232))
    return im


@pytest.fixture(scope="module")
def real_photos() -> dict[str, Image.Image]:
    return _real_photos()


def test_scalp_closeups_pass_under_white_warm_and_blue_light() -> None:
    failed = [(name, q.warnings) for name, im in _scalps(5, seed=2026) if not (q := quality(im)).ok]
    assert failed == []


def test_bluish_led_closeup_is_not_withheld() -> None:
    """The issue's case: pale blue-grey skin, dark hairs; the old skin-colour gate withheld it."""
    from deeproot.training.synthetic import render

    rng = np.random.default_rng(3)
    values = tuple(int(v) for v in rng.integers(0, 4, 6))
    arr = np.asarray(render(values, rng), np.float32) * np.asarray(LIGHTS["blue-white LED ring"])
    q = quality(Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)))
    assert q.skin_fraction < 0.5  # the old rule: "only 2% of the photo is skin or hair coloured"
    assert q.ok, q.warnings


def test_real_photographs_are_flagged_with_what_a_usable_photo_is(real_photos) -> None:
    passed = []
    for name, im in {**real_photos, "screenshot": _screenshot()}.items():
        q = quality(im)
        if q.ok:
            passed.append(name)
            continue
        code, msg = q.warnings[0]
        assert code in ("not_closeup", "blurry"), (name, code)
        assert "a usable photo is a close-up from a scalp microscope or a macro lens" in msg
    assert passed == []


def test_korean_messages() -> None:
    from skimage import data

    q = quality(Image.fromarray(data.astronaut()), lang="ko")
    assert q.warnings[0][1].startswith(
        "두피 확대 사진이 아니라 풍경·인물·동물·물건 사진으로 보입니다"
    )
    assert "두피 확대경" in q.warnings[0][1]


def test_force_still_diagnoses_a_flagged_photo(tmp_path) -> None:
    pytest.importorskip("onnx")
    import diagnose_fakes as fakes
    from skimage import data

    from deeproot.diagnose.service import diagnose

    bundle = fakes.build_bundle(tmp_path / "b")
    f = tmp_path / "cat.png"
    Image.fromarray(data.chelsea()).save(f)
    rep = diagnose([f], models=bundle, device="cpu", recommend_products=False)
    assert rep.photos[0].status == "withheld"
    rep = diagnose([f], models=bundle, device="cpu", recommend_products=False, force=True)
    assert rep.photos[0].status == "diagnosed" and rep.photos[0].warnings[0][0] == "not_closeup"



class _LstsqResidual:
    """What the structure score first did per photo: fit the quadratic lighting surface with
    np.linalg.lstsq and subtract it; stands in for the cached projector (`projector @ grid`)."""

    def __init__(self, gh: int, gw: int) -> None:
        yy, xx = np.mgrid[0:gh, 0:gw]
        yy, xx = yy / gh - 0.5, xx / gw - 0.5
        self.basis = np.stack([np.ones_like(xx), xx, yy, xx * xx, yy * yy, xx * yy], -1)
        self.basis = self.basis.reshape(-1, 6)

    def __matmul__(self, grid: np.ndarray) -> np.ndarray:
        coef, *_ = np.linalg.lstsq(self.basis, grid, rcond=None)
        return grid - self.basis @ coef


def test_structure_score_equals_the_least_squares_fit(real_photos, monkeypatch) -> None:
    """The cached projector (one matrix product per photo) gives the per-photo lstsq's score, in
    landscape and portrait, on scalps and on the real photographs."""
    from deeproot.diagnose import images

    photos = [im for _, im in _scalps(2, seed=5)] + list(real_photos.values())
    photos += [photos[0].rotate(90, expand=True), photos[-1].resize((97, 130))]
    lums = [im.convert("L") for im in photos]
    scores = [images._structure(lum) for lum in lums]
    monkeypatch.setattr(images, "_residual_projector", _LstsqResidual)
    for lum, score in zip(lums, scores, strict=True):
        assert score == pytest.approx(images._structure(lum), rel=1e-12, abs=1e-15)
