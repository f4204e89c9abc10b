"""The release as delivered: zip archives are indexed in place (members read from the archive,
nothing extracted) and give exactly the index of the extracted folders."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

from deeproot.cli.main import main
from deeproot.taxonomy import SYMPTOM_KEYS
from deeproot.training.dataset import build_index, read_index
from deeproot.training.sources import member_name, read_bytes, split_zip_path


@pytest.fixture(scope="module")
def extracted(tiny: Path) -> Path:
    return tiny.parent / "ds"


def _zip_folder(folder: Path, archive: Path, nest: bool) -> None:
    """Zip one [원천]/[라벨] folder: members under the folder name (`nest`) or at the top."""
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
        for f in sorted(folder.iterdir()):
            zf.write(f, f"{folder.name}/{f.name}" if nest else f.name)


@pytest.fixture(scope="module")
def per_folder(extracted: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Each symptom x severity folder as its own zip (Training: folder inside the archive;
    Validation: files at the archive's top, the archive named after the folder)."""
    root = tmp_path_factory.mktemp("zips") / "유형별 두피 이미지"
    for split in ("Training", "Validation"):
        (root / split).mkdir(parents=True)
        for d in sorted((extracted / split).iterdir()):
            _zip_folder(d, root / split / f"{d.name}.zip", nest=split == "Training")
    (root / "deeproot-synthetic.json").write_bytes(
        (extracted / "deeproot-synthetic.json").read_bytes()
    )
    return root


def _comparable(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "path"} for r in rows]


def test_zip_and_folder_indexes_are_equal(extracted: Path, per_folder: Path) -> None:
    rows, rep = build_index(extracted)
    zrows, zrep = build_index(per_folder)
    assert _comparable(zrows) == _comparable(rows)
    a, b = rep.to_json(), zrep.to_json()
    for k in ("root", "n_label_files", "n_image_files"):
        a.pop(k), b.pop(k)
    assert a == b  # counts, duplicates, overlap, class counts, sha256, synthetic flag
    assert rep.n_label_files == zrep.n_label_files and rep.n_image_files == zrep.n_image_files
    # every image path points into an archive and reads the same bytes as the extracted file
    for r, z in zip(rows, zrows, strict=True):
        archive, member = split_zip_path(z["path"])  # type: ignore[misc]
        assert archive.endswith(".zip") and Path(archive).is_file()
        assert read_bytes(z["path"]) == Path(r["path"]).read_bytes()
    # nothing was extracted next to the archives
    assert all(
        p.suffix == ".zip" or p.is_dir() or p.name.endswith(".json") for p in per_folder.rglob("*")
    )


def test_one_archive_of_the_whole_release(extracted: Path, tmp_path: Path) -> None:
    archive = tmp_path / "release" / "scalp.zip"
    archive.parent.mkdir()
    with zipfile.ZipFile(archive, "w") as zf:
        for dirpath, _, files in os.walk(extracted):
            for f in sorted(files):
                p = Path(dirpath) / f
                zf.write(p, p.relative_to(extracted).as_posix())
    rows, rep = build_index(extracted)
    zrows, zrep = build_index(archive.parent)
    assert _comparable(zrows) == _comparable(rows) and zrep.sha256 == rep.sha256


def test_cli_index_of_zips_feeds_training(
    per_folder: Path, extracted: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "z.parquet"
    assert main(["dataset", "index", str(per_folder), "--out", str(out)]) == 0
    assert capsys.readouterr().out.startswith("indexed 76 images (16 visits)")
    rows, _ = read_index(out)
    assert all("::" in r["path"] for r in rows) and set(SYMPTOM_KEYS) <= set(rows[0])
    # training reads the members straight from the archives: the same tensors as the folders
    from deeproot.diagnose.preprocess import Preprocess
    from deeproot.training.train import make_stream

    folder_rows, _ = read_index(extracted.parent / "index.parquet")
    pre = Preprocess(size=(32, 48))
    kw = {"shuffle": False, "augment": False}
    a = [x for x, _, _ in make_stream(rows[:9], SYMPTOM_KEYS, 3, pre, 4, **kw)]
    b = [x for x, _, _ in make_stream(folder_rows[:9], SYMPTOM_KEYS, 3, pre, 4, **kw)]
    assert all(bool((x == y).all()) for x, y in zip(a, b, strict=True)) and len(a) == 3


def test_korean_windows_member_names_are_decoded() -> None:
    # a zip made on Korean Windows: CP949 bytes, no UTF-8 flag; Python reads them as CP437
    raw = "[원천]비듬_1.경증/0001_A2LEBJJDE00060O_1606550825417_3_TH.jpg".encode("cp949")
    info = zipfile.ZipInfo(raw.decode("cp437"))
    info.flag_bits = 0
    assert member_name(info) == "[원천]비듬_1.경증/0001_A2LEBJJDE00060O_1606550825417_3_TH.jpg"
    ascii_info = zipfile.ZipInfo("Training/a.jpg")
    assert member_name(ascii_info) == "Training/a.jpg"
