"""Dataset index on synthetic data with every quirk: exact counts, problems, visit splits."""

from __future__ import annotations

import json
import shutil
import unicodedata
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from deeproot.cli.main import main
from deeproot.errors import DataError, InputError
from deeproot.taxonomy import SYMPTOM_KEYS
from deeproot.training.dataset import build_index, index_schema, read_index, write_index
from deeproot.training.synthetic import class_counts, generate
from deeproot.training.train import split_by_visit


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    return generate(tmp_path_factory.mktemp("idx") / "ds", 24, seed=5, bad=True)


@pytest.fixture(scope="module")
def indexed(synth):  # noqa: ANN001, ANN201
    return build_index(synth.root)


def test_counts_match_what_was_written(synth, indexed) -> None:  # noqa: ANN001
    rows, rep = indexed
    assert rep.n_images == len(rows) == len(synth.labels)
    assert rep.n_label_files == synth.n_label_files
    assert rep.n_image_files == synth.n_folder_entries
    valid_files = synth.n_label_files - 6  # 2 malformed + 2 bad values + 2 missing images
    assert rep.n_duplicates == valid_files - (len(synth.labels) + 1)  # +1: the conflicting image
    assert rep.n_overlap == synth.n_overlap > 0
    assert rep.n_visits == len(synth.visits)
    expected = class_counts(synth.labels)
    for k, key in enumerate(SYMPTOM_KEYS):
        assert rep.class_counts[key] == [expected[k][v] for v in range(4)]
    for r in rows:
        assert tuple(r[k] for k in SYMPTOM_KEYS) == synth.labels[r["image_file_name"]]
        want = (
            "both"
            if len(synth.splits[r["image_file_name"]]) == 2
            else next(iter(synth.splits[r["image_file_name"]]))
        )
        assert r["split"] == want
        assert Path(r["path"]).name == r["image_file_name"] and Path(r["path"]).is_file()
    assert rep.synthetic is True


def test_problems_named_with_counts(synth, indexed) -> None:  # noqa: ANN001
    _, rep = indexed
    assert rep.problems["malformed_json"] == sorted(synth.bad["malformed_json"])
    assert rep.problems["bad_value"] == sorted(synth.bad["bad_value"])
    assert rep.problems["missing_image"] == sorted(synth.bad["missing_image"])
    assert rep.problems["conflict"] == synth.bad["conflict"]
    assert len(rep.problems["unlabelled_image"]) == 4  # images of the malformed/bad-value labels
    assert set(rep.problems) == {
        "malformed_json",
        "bad_value",
        "missing_image",
        "conflict",
        "unlabelled_image",
    }


def test_metadata_inline_and_sidecar_and_name_fields(indexed) -> None:  # noqa: ANN001
    rows, _ = indexed
    assert all(r["gender"] in ("남", "여") and r["age"].endswith("대") for r in rows)
    assert all(r["dye"] and r["perm"] and r["location"] in ("TH", "LH", "RH", "BH") for r in rows)
    r = rows[0]
    site, device, ms, shot, loc = r["image_file_name"][:-4].split("_")
    assert (r["site"], r["device"], r["captured_ms"], r["shot"], r["location"]) == (
        site,
        device,
        int(ms),
        int(shot),
        loc,
    )
    assert r["visit_id"] == f"{site}_{device}_{ms}"


def test_parquet_round_trip(tmp_path: Path, indexed) -> None:  # noqa: ANN001
    rows, rep = indexed
    out = write_index(rows, rep, tmp_path / "index.parquet")
    t = pq.read_table(out)
    assert t.schema.remove_metadata() == index_schema()
    back, meta = read_index(out)
    assert back == rows and meta["n_images"] == rep.n_images and meta["sha256"] == rep.sha256
    assert json.loads((tmp_path / "index.report.json").read_text())["n_overlap"] == rep.n_overlap


@pytest.mark.parametrize("policy", ["hash", "original"])
def test_split_keeps_visits_together(indexed, policy: str) -> None:  # noqa: ANN001
    rows, _ = indexed
    tr, va = split_by_visit(rows, 0.3, seed=1, policy=policy)
    assert sorted(tr + va) == list(range(len(rows)))
    assert not {rows[i]["visit_id"] for i in tr} & {rows[i]["visit_id"] for i in va}
    if policy == "original":
        assert all(rows[i]["split"] == "Validation" for i in va)
        assert all(rows[i]["split"] != "both" or i in tr for i in range(len(rows)))


def test_nfd_names_and_nested_layout(tmp_path: Path, synth) -> None:  # noqa: ANN001
    root = tmp_path / "유형별 두피 이미지"
    shutil.copytree(synth.root / "Training", root / "Training" / "nested")
    for d in list((root / "Training" / "nested").iterdir()):
        d.rename(d.with_name(unicodedata.normalize("NFD", d.name)))  # macOS-made zips
    rows, rep = build_index(root)
    train_only = {n for n, s in synth.splits.items() if "Training" in s}
    assert {r["image_file_name"] for r in rows} == train_only
    assert all(r["split"] == "Training" for r in rows)


def test_no_labels_is_an_input_error(tmp_path: Path) -> None:
    (tmp_path / "Training").mkdir()
    (tmp_path / "Training" / "labels.zip").write_bytes(b"PK")
    with pytest.raises(
        InputError, match=r"no label JSON files under .*\(1 of 1 zip archives could not be opened\)"
    ):
        build_index(tmp_path)


def test_only_bad_files_is_a_data_error(tmp_path: Path) -> None:
    d = tmp_path / "Training" / "[라벨]비듬_1.경증"
    d.mkdir(parents=True)
    (d / "x.json").write_text("{", "utf-8")
    with pytest.raises(
        DataError, match="no usable images .* 1 label files that are not valid JSON"
    ):
        build_index(tmp_path)


def test_cli_index_report(tmp_path: Path, synth, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: ANN001
    out = tmp_path / "i.parquet"
    assert main(["dataset", "index", str(synth.root), "--out", str(out)]) == 0
    text = capsys.readouterr().out.splitlines()
    n = len(synth.labels)
    assert text[0].startswith(
        f"indexed {n} images ({len(synth.visits)} visits) from {synth.n_label_files} label files"
    )
    assert text[2] == f"in both Training and Validation: {synth.n_overlap} images"
    assert any(line.startswith("  2 label files that are not valid JSON: 9999_") for line in text)
    assert any(
        line.startswith("  2 labels whose image is not in any [원천] folder") for line in text
    )
    assert text[-1] == f"wrote {out}"
    assert main(["dataset", "index", str(synth.root), "--out", str(out), "--strict"]) == 1
    assert capsys.readouterr().err.strip() == (
        "error: 11 files had problems (see the report); fix them or drop --strict"
    )
    assert main(["dataset", "index", str(tmp_path / "none"), "--out", str(out)]) == 3
    assert "is not a folder" in capsys.readouterr().err


def test_cli_synth_refuses_non_empty(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dataset", "synth", str(tmp_path / "s"), "--visits", "2", "--seed", "4"]) == 0
    assert capsys.readouterr().out.startswith("wrote ")
    assert main(["dataset", "synth", str(tmp_path / "s"), "--visits", "2"]) == 3
    assert "exists and is not empty" in capsys.readouterr().err
