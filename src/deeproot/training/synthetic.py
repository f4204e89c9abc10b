"""Synthetic scalp dataset in the exact AI Hub "유형별 두피 이미지" layout (tests, demo model).

Images are procedurally drawn microscope-like scalp close-ups (640x480 JPEG) whose visible features
follow the six labels: small white flakes (미세각질), yellow sebum gloss and highlights (피지과다),
redness between follicles (모낭사이홍반), red pustules around follicles (모낭홍반농포), large
dandruff flakes (비듬), and hair density and thickness (탈모). The layout reproduces the real
release's quirks (see docs/models.md): `[원천]`/`[라벨]` folders per symptom and severity, the same
image in several folders and in both splits, utf-8-sig JSON with a BOM in some files, values as
strings or ints, metadata inline or in `<stem>_META.json`, 9-digit timestamps, and, on request,
broken files (malformed JSON, out-of-range values, labels without images, conflicting copies).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deeproot.taxonomy import SEVERITIES_4, SYMPTOMS

log = logging.getLogger(__name__)

W, H = 640, 480
# Class priors over unique images, AI Hub release (research note §1.6), value_1..value_6.
AIHUB_PRIORS: tuple[tuple[float, float, float, float], ...] = (
    (0.828, 0.063, 0.077, 0.032),
    (0.199, 0.397, 0.350, 0.054),
    (0.324, 0.430, 0.185, 0.061),
    (0.953, 0.031, 0.011, 0.005),
    (0.598, 0.235, 0.135, 0.032),
    (0.741, 0.193, 0.054, 0.012),
)
SHOTS = ((2, "TH"), (3, "TH"), (4, "LH"), (5, "RH"), (6, "BH"))
SURVEY = (
    ("샴푸 사용 빈도", ("1일 1회", "1일 2회", "2일 1회")),
    ("펌 주기", ("하지않음", "1~3회/연", "4~6회/연", "7회 이상/연")),
    ("염색 주기 (자가 염색 포함)", ("하지않음", "1~3회/연", "4~6회/연", "7회 이상/연")),
    ("현재 모발 상태", ("염색 모발", "기타", "가발 사용(붙임머리 포함)", "모발이식/시술")),
    ("현재 사용하고 있는 두피모발용 제품", ("샴푸", "샴푸,트리트먼트", "샴푸,린스", "두피 세럼")),
    ("맞춤두피케어 제품사용을 희망(선호)하시나요", ("예", "아니오")),
    ("샴푸 구매시 중요시 고려하는 부분은 무엇인가요?", ("세정력", "두피자극", "머리결", "향")),
)
AGES = ("10대", "20대", "30대", "40대", "50대", "60대", "70대")


def folder_name(kind: str, symptom_index: int, value: int) -> str:
    """`[원천]미세각질_0.양호`-style folder name; kind is "원천" (images) or "라벨" (labels)."""
    return f"[{kind}]{SYMPTOMS[symptom_index].ko}_{value}.{SEVERITIES_4[value]}"


@dataclass(frozen=True)
class SyntheticManifest:
    """What the generator wrote, for exact assertions on the index.

    Attributes:
        root: dataset root (holds Training/ and Validation/).
        labels: image file name -> six values, for every valid image.
        splits: image file name -> set of splits ("Training", "Validation") it was written to.
        n_label_files: label JSON files written (valid and broken, META files excluded).
        n_folder_entries: image files written (all copies).
        bad: problem kind -> file names deliberately broken.
    """

    root: Path
    labels: dict[str, tuple[int, ...]]
    splits: dict[str, frozenset[str]]
    n_label_files: int
    n_folder_entries: int
    bad: dict[str, list[str]] = field(default_factory=dict)

    @property
    def n_overlap(self) -> int:
        return sum(1 for s in self.splits.values() if len(s) == 2)

    @property
    def visits(self) -> set[str]:
        return {"_".join(n.split("_")[:3]) for n in self.labels}


def _lowfreq(rng: Any, gh: int, gw: int) -> Any:
    """Smooth random field in 0..1 at full size, upsampled bilinearly from a gh x gw grid."""
    import numpy as np
    from PIL import Image

    small = rng.random((gh, gw)).astype(np.float32)
    return np.asarray(Image.fromarray(small, mode="F").resize((W, H), Image.Resampling.BILINEAR))


_CACHE: dict[str, Any] = {}


def _statics() -> tuple[Any, Any]:
    """Vignette and a grain tile, computed once per process."""
    import numpy as np

    if "vig" not in _CACHE:
        yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
        r2 = ((xx - W / 2) / (W / 2)) ** 2 + ((yy - H / 2) / (H / 2)) ** 2
        _CACHE["vig"] = (1.0 - 0.28 * r2).clip(0.5, 1.0)[..., None]
        g = np.random.default_rng(12345).normal(0, 5.0, (H + 64, W + 64, 3))
        _CACHE["grain"] = g.astype(np.float32)
    return _CACHE["vig"], _CACHE["grain"]


def render(values: tuple[int, ...], rng: Any, tint: tuple[float, float, float] = (1, 1, 1)) -> Any:
    """Draw one 640x480 RGB scalp close-up whose features follow `values` (value_1..value_6)."""
    import numpy as np
    from PIL import Image, ImageDraw

    v1, v2, v3, v4, v5, v6 = values
    vig, grain = _statics()
    skin = np.array([206, 168, 150], np.float32) * (1 + rng.normal(0, 0.04, 3)).astype(np.float32)
    light = 0.85 + 0.3 * _lowfreq(rng, 4, 5)
    img = skin * light[..., None]
    red = [0.0, 0.35, 0.65, 1.0][v3] * (0.5 + _lowfreq(rng, 10, 13))
    img += red[..., None] * np.array([28, -55, -38], np.float32)
    if v2:
        s = [0.0, 0.35, 0.65, 1.0][v2]
        img += s * np.array([12, 6, -40], np.float32)
        shine = np.clip(_lowfreq(rng, 7, 9) * 2.2 - 1.25, 0, 1) ** 1.5
        img += (90 * s) * shine[..., None]
    oy, ox = rng.integers(0, 64, 2)
    img += grain[oy : oy + H, ox : ox + W]
    img = img * vig * np.asarray(tint, np.float32)
    im = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")
    d = ImageDraw.Draw(im)
    gy, gx = np.mgrid[0:7, 0:9]
    fol = np.stack([gx.ravel() * 76 + 16, gy.ravel() * 72 + 20], 1) + rng.integers(-18, 18, (63, 2))
    n_pus = [0, int(rng.integers(2, 4)), int(rng.integers(5, 8)), int(rng.integers(9, 13))][v4]
    pustules = fol[rng.permutation(len(fol))[:n_pus]]
    n_fine = [int(rng.integers(0, 8)), 70, 160, 300][v1]
    fx, fy = rng.integers(0, W, n_fine), rng.integers(0, H, n_fine)
    fr = rng.integers(3, 6, n_fine)
    for x, y, r in zip(fx.tolist(), fy.tolist(), fr.tolist(), strict=True):
        d.ellipse((x - r, y - r + 1, x + r, y + r), fill=(238, 234, 228))
    n_dan = [0, int(rng.integers(5, 8)), int(rng.integers(11, 15)), int(rng.integers(20, 26))][v5]
    for _ in range(n_dan):
        cx, cy, rad = rng.integers(0, W), rng.integers(0, H), rng.integers(12, 30)
        ang = np.sort(rng.random(7)) * 2 * np.pi
        rr = rad * (0.6 + 0.4 * rng.random(7))
        pts = list(
            zip((cx + rr * np.cos(ang)).tolist(), (cy + rr * np.sin(ang)).tolist(), strict=True)
        )
        d.polygon(pts, fill=(242, 240, 222))
    keep = [1.0, 0.8, 0.55, 0.3][v6]
    per = [3, 2, 2, 1][v6]
    width = [6, 5, 3, 2][v6]
    flow = rng.uniform(0, 2 * np.pi)
    hair = tuple(int(c) for c in rng.integers(18, 45, 3))
    for x, y in fol.tolist():
        d.ellipse((x - 4, y - 4, x + 4, y + 4), fill=(120, 80, 70))
        if rng.random() > keep:
            continue
        for _ in range(int(rng.integers(1, per + 1))):
            a = flow + rng.normal(0, 0.25)
            length = rng.uniform(100, 300)
            d.line((x, y, x + length * np.cos(a), y + length * np.sin(a)), fill=hair, width=width)
    # Pustules are raised above the hair shafts: drawn last so hairs never hide them.
    for x, y in pustules.tolist():
        r = int(rng.integers(16, 24))
        d.ellipse((x - r, y - r, x + r, y + r), fill=(204, 46, 56))
        c = r // 2
        d.ellipse((x - c, y - c, x + c, y + c), fill=(248, 236, 190))
    return im


def _sample_values(rng: Any, priors: Any) -> list[int]:
    return [int(rng.choice(4, p=p)) for p in priors]


def _priors(temper: float) -> Any:
    import numpy as np

    p = np.asarray(AIHUB_PRIORS, dtype=np.float64) ** temper
    return p / p.sum(1, keepdims=True)


def _label_text(name: str, values: list[int], meta: dict | None, rng: Any) -> str:
    obj: dict[str, Any] = {"image_id": name[:-4], "image_file_name": name}
    for k, v in enumerate(values, 1):
        obj[f"value_{k}"] = str(v) if rng.random() < 0.6 else v
    if meta:
        obj.update(meta)
    return json.dumps(obj, ensure_ascii=False, indent=2)


def _write_json(path: Path, text: str, bom: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8-sig" if bom else "utf-8")


def generate(
    root: str | Path,
    n_visits: int = 40,
    *,
    seed: int = 0,
    val_frac: float = 0.25,
    overlap_frac: float = 0.2,
    temper: float = 0.5,
    bad: bool = False,
    quality: int = 85,
    progress: Callable[[int, int], None] | None = None,
) -> SyntheticManifest:
    """Write a synthetic dataset under `root` in the real AI Hub layout.

    Args:
        root: output folder; Training/ and Validation/ are created inside it.
        n_visits: number of visits (one person's capture session, up to 5 shots each).
        seed: random seed; the same seed writes the same files.
        val_frac: share of visits written to Validation only.
        overlap_frac: share of Training visits whose shots are also copied into Validation.
        temper: exponent on the AI Hub class priors (1 = real skew, <1 flatter, 0 = uniform).
        bad: also write broken files (two of each kind; see `SyntheticManifest.bad`).
        quality: JPEG quality.
        progress: called with (visits done, n_visits).
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    root = Path(root)
    priors = _priors(temper)
    sites = [f"{int(s):04d}" for s in rng.choice(200, 12, replace=False)]
    alnum = list("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789")
    serials = {s: "A2LE" + "".join(rng.choice(alnum, 10)) + str(rng.choice(alnum)) for s in sites}
    tints = {s: tuple(1 + rng.normal(0, 0.05, 3)) for s in sites}
    labels: dict[str, tuple[int, ...]] = {}
    splits: dict[str, set[str]] = {}
    n_labels = n_entries = 0
    used: set[str] = set()

    def place(
        split: str,
        name: str,
        values: list[int],
        jpeg: bytes,
        text: str,
        meta_text: str | None,
        bom: bool,
    ) -> None:
        nonlocal n_labels, n_entries
        targets = [k for k in range(6) if values[k] > 0]
        targets += [k for k in range(6) if values[k] == 0 and rng.random() < 0.05]
        if not targets:
            targets = [int(rng.integers(0, 6))]
        for k in targets:
            img_dir = root / split / folder_name("원천", k, values[k])
            lab_dir = root / split / folder_name("라벨", k, values[k])
            img_dir.mkdir(parents=True, exist_ok=True)
            (img_dir / name).write_bytes(jpeg)
            _write_json(lab_dir / (name[:-4] + ".json"), text, bom)
            if meta_text is not None:
                _write_json(lab_dir / (name[:-4] + "_META.json"), meta_text, bom)
            n_labels += 1
            n_entries += 1
        splits.setdefault(name, set()).add(split)

    for i in range(n_visits):
        site = str(rng.choice(sites))
        ts = int(rng.integers(1602460800000, 1612569600000))
        if rng.random() < 0.03:
            ts = int(rng.integers(100_000_000, 999_999_999))  # the release has a few 9-digit stamps
        visit = f"{site}_{serials[site]}_{ts}"
        if visit in used:
            continue
        used.add(visit)
        split = "Validation" if rng.random() < val_frac else "Training"
        also_val = split == "Training" and rng.random() < overlap_frac
        base = _sample_values(rng, priors)
        person = {"gender": str(rng.choice(["남", "여"])), "age": str(rng.choice(AGES))}
        answers = {}
        for q, (question, options) in enumerate(SURVEY, 1):
            answers[f"question{q}"] = question
            answers[f"answers{q}"] = str(rng.choice(options))
        inline = rng.random() < 0.5
        shots = SHOTS if rng.random() < 0.85 else SHOTS[:4]
        for shot, loc in shots:
            values = [int(np.clip(v + rng.choice([-1, 0, 0, 0, 0, 1]), 0, 3)) for v in base]
            name = f"{visit}_{shot}_{loc}.jpg"
            meta = {**person, "location": loc, **answers}
            text = _label_text(name, values, meta if inline else None, rng)
            meta_text = None if inline else json.dumps(meta, ensure_ascii=False, indent=2)
            bom = bool(rng.random() < 0.3)
            jpeg = _jpeg(render(tuple(values), rng, tints[site]), quality)
            place(split, name, values, jpeg, text, meta_text, bom)
            if also_val and rng.random() < 0.7:
                place("Validation", name, values, jpeg, text, meta_text, bom)
            labels[name] = tuple(values)
        if progress:
            progress(i + 1, n_visits)

    marker = {"generator": "deeproot.training.synthetic", "seed": seed, "n_visits": n_visits}
    (root / "deeproot-synthetic.json").write_text(json.dumps(marker) + "\n", "utf-8")
    bad_files: dict[str, list[str]] = {}
    if bad:
        n_labels += _write_bad(root, rng, bad_files)
        n_entries += len(bad_files["malformed_json"]) + len(bad_files["bad_value"])
        n_entries += 2  # the conflicting image's two copies
    log.info("synthetic dataset: %d images, %d label files under %s", len(labels), n_labels, root)
    return SyntheticManifest(
        root=root,
        labels=labels,
        splits={k: frozenset(v) for k, v in splits.items()},
        n_label_files=n_labels,
        n_folder_entries=n_entries,
        bad=bad_files,
    )


def _jpeg(im: Any, quality: int) -> bytes:
    import io

    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _write_bad(root: Path, rng: Any, bad: dict[str, list[str]]) -> int:
    """Broken files, two of each kind plus one conflicting image; returns label files written."""
    split = root / "Training"
    jpeg = _jpeg(render((1, 1, 1, 0, 1, 0), rng), 80)
    n = 0
    for kind, i0 in (("malformed_json", 10), ("bad_value", 20), ("missing_image", 30)):
        bad[kind] = []
        for j in range(2):
            stem = f"9999_A2LEBADBAD{i0 + j:04d}Z_1606550825{i0 + j:03d}_2_TH"
            name = stem + ".json"
            lab = split / folder_name("라벨", 4, 1) / name
            if kind == "malformed_json":
                _write_json(lab, '{"image_id": "' + stem + '", "value_1": ', False)
            else:
                vals = {f"value_{k}": "1" for k in range(1, 7)}
                if kind == "bad_value":
                    vals["value_3" if j == 0 else "value_5"] = "7" if j == 0 else "x"
                _write_json(
                    lab,
                    json.dumps({"image_id": stem, "image_file_name": stem + ".jpg", **vals}),
                    j == 1,
                )
            if kind != "missing_image":
                img_dir = split / folder_name("원천", 4, 1)
                img_dir.mkdir(parents=True, exist_ok=True)
                (img_dir / (stem + ".jpg")).write_bytes(jpeg)
            bad[kind].append(name)
            n += 1
    stem = "9999_A2LEBADBAD0040Z_1606550825040_2_TH"
    for k, v in ((4, 1), (5, 2)):
        ints = {f"value_{i}": 0 for i in range(1, 7)}
        ints["value_5"], ints["value_6"] = 1, 2 if k == 5 else 3
        obj = {"image_id": stem, "image_file_name": stem + ".jpg", **ints}
        _write_json(split / folder_name("라벨", k, v) / (stem + ".json"), json.dumps(obj), False)
        (split / folder_name("원천", k, v)).mkdir(parents=True, exist_ok=True)
        (split / folder_name("원천", k, v) / (stem + ".jpg")).write_bytes(jpeg)
        n += 1
    bad["conflict"] = [stem + ".jpg"]
    return n


def class_counts(labels: dict[str, tuple[int, ...]]) -> list[Counter]:
    """Per symptom, a Counter of values over the given images."""
    return [Counter(v[k] for v in labels.values()) for k in range(6)]
