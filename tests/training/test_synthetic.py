"""Synthetic dataset: the real AI Hub layout with its quirks, and features that follow labels."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from deeproot.training.synthetic import class_counts, folder_name, generate, render

NAME = re.compile(r"^\d{4}_A2LE[A-Z0-9]{11}_\d{9,13}_[2-6]_(TH|LH|RH|BH)\.jpg$")


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    return generate(tmp_path_factory.mktemp("syn") / "ds", 30, seed=3)


def test_layout_folders_and_names(synth) -> None:  # noqa: ANN001
    root: Path = synth.root
    assert sorted(p.name for p in root.iterdir()) == [
        "Training",
        "Validation",
        "deeproot-synthetic.json",
    ]
    for split in ("Training", "Validation"):
        for d in (root / split).iterdir():
            assert re.match(
                r"^\[(원천|라벨)\](미세각질|피지과다|모낭사이홍반|모낭홍반농포|비듬|탈모)"
                r"_[0-3]\.(양호|경증|중등도|중증)$",
                d.name,
            ), d.name
    assert folder_name("원천", 5, 3) == "[원천]탈모_3.중증"
    jpgs = list(root.rglob("*.jpg"))
    assert len(jpgs) == synth.n_folder_entries
    assert all(NAME.match(p.name) for p in jpgs)
    with Image.open(jpgs[0]) as im:
        assert (im.format, im.size, im.mode) == ("JPEG", (640, 480), "RGB")
    # every copy sits in a folder that matches its label (or a 0.양호 folder)
    for p in jpgs:
        k = re.match(r"\[원천\](.+)_([0-3])\.", p.parent.name)
        sym = ["미세각질", "피지과다", "모낭사이홍반", "모낭홍반농포", "비듬", "탈모"].index(
            k.group(1)
        )
        assert synth.labels[p.name][sym] == int(k.group(2))


def test_duplicates_overlap_and_visits(synth) -> None:  # noqa: ANN001
    n = len(synth.labels)
    per_split_copies = synth.n_folder_entries / sum(len(s) for s in synth.splits.values())
    assert 1.5 < per_split_copies < 5  # the same image in several symptom folders
    assert synth.n_overlap > 0 and all(
        s == frozenset({"Training", "Validation"}) or len(s) == 1 for s in synth.splits.values()
    )
    assert len(synth.visits) <= 30 and n >= 4 * len(synth.visits) * 0.8
    counts = class_counts(synth.labels)
    assert all(sum(c.values()) == n for c in counts)


def test_json_quirks(synth) -> None:  # noqa: ANN001
    labels = [
        p
        for p in synth.root.rglob("*.json")
        if p.parent.name.startswith("[라벨]") and not p.name.endswith("_META.json")
    ]
    metas = list(synth.root.rglob("*_META.json"))
    raw = [p.read_bytes() for p in labels]
    assert any(b.startswith(b"\xef\xbb\xbf") for b in raw)
    assert any(not b.startswith(b"\xef\xbb\xbf") for b in raw)
    objs = [json.loads(b.decode("utf-8-sig")) for b in raw]
    kinds = {type(o[f"value_{k}"]) for o in objs for k in range(1, 7)}
    assert kinds == {str, int}
    assert any("gender" in o for o in objs) and metas  # inline metadata and sidecar files
    meta = json.loads(metas[0].read_text(encoding="utf-8-sig"))
    assert set(meta) >= {"gender", "age", "location", "question1", "answers7"}
    for o in objs[:50]:
        assert o["image_file_name"] == o["image_id"] + ".jpg"
        assert (
            tuple(int(o[f"value_{k}"]) for k in range(1, 7)) == synth.labels[o["image_file_name"]]
        )


def test_same_seed_same_files(tmp_path: Path) -> None:
    a = generate(tmp_path / "a", 3, seed=11)
    b = generate(tmp_path / "b", 3, seed=11)
    assert a.labels == b.labels
    fa = sorted(p.relative_to(a.root) for p in a.root.rglob("*.jpg"))
    assert fa == sorted(p.relative_to(b.root) for p in b.root.rglob("*.jpg"))
    assert (a.root / fa[0]).read_bytes() == (b.root / fa[0]).read_bytes()


def _feature(values: tuple[int, ...], fn) -> float:  # noqa: ANN001
    rng = np.random.default_rng(0)
    return float(np.mean([fn(np.asarray(render(values, rng), np.float32)) for _ in range(4)]))


@pytest.mark.parametrize(
    ("k", "fn"),
    [
        (0, lambda a: (a.min(2) > 215).mean()),  # fine_scale: many small white flakes
        (1, lambda a: (a[..., 0] + a[..., 1] - 2 * a[..., 2]).mean()),  # sebum: yellow gloss
        (2, lambda a: (a[..., 0] - a[..., 1]).mean()),  # erythema: red between follicles
        (3, lambda a: ((a[..., 0] > 170) & (a[..., 1] < 90)).mean()),  # pustules: red rings
        (4, lambda a: (a.min(2) > 215).mean()),  # dandruff: large flakes
        (5, lambda a: -(a.max(2) < 60).mean()),  # hair loss: fewer dark hair pixels
    ],
)
def test_visible_features_follow_labels(k: int, fn) -> None:  # noqa: ANN001
    feats = []
    for v in range(4):
        values = [0] * 6
        values[k] = v
        feats.append(_feature(tuple(values), fn))
    assert feats[0] < feats[1] < feats[2] < feats[3], feats
