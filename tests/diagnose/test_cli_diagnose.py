"""`deeproot diagnose`: exact output, stderr banner, exit codes, --json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deeproot.cli.main import main
from deeproot.taxonomy import SYMPTOM_KEYS

pytest.importorskip("onnx")


import diagnose_fakes as fakes  # noqa: E402


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return fakes.build_bundle(tmp_path_factory.mktemp("cli") / "b")


@pytest.fixture()
def env(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("DEEPROOT_DATA_DIR", str(tmp_path / "data"))
    photo = tmp_path / "scalp.jpg"
    fakes.scalp_image(seed=5).save(photo, quality=92)
    return photo


def test_help_lists_options(capsys) -> None:
    assert main(["diagnose", "--help"]) == 0
    out = capsys.readouterr().out
    for opt in (
        "--models",
        "--survey-type",
        "--concern",
        "--category",
        "--device",
        "--db",
        "--lang",
        "--visit",
        "--force",
        "--guide",
        "--json",
    ):
        assert opt in out
    assert main(["demo", "--help"]) == 0
    assert "--data-dir" in capsys.readouterr().out


def test_text_output_en(bundle: Path, env: Path, capsys) -> None:
    code = main(
        [
            "diagnose",
            str(env),
            "--models",
            str(bundle),
            "--device",
            "cpu",
            "--lang",
            "en",
            "--survey-type",
            "지성",
            "--concern",
            "dandruff",
        ]
    )
    cap = capsys.readouterr()
    assert code == 0
    lines = cap.out.splitlines()
    assert lines[0] == "you chose an oily scalp with dandruff; the photo analysis will check this."
    assert lines[2] == f"{env} (640x480)"
    assert lines[3] == "  symptoms (good / mild-moderate / severe):"
    assert lines[4].startswith("    fine dead-skin flakes          ")
    assert any(line.startswith("  scalp type: ") for line in lines)
    assert "  care guide:" in lines
    assert lines[-1].startswith("This guide is general scalp-care information")
    err = cap.err.splitlines()
    assert err[1] == "!! DEMO MODEL: these results come from a model trained on SYNTHETIC images."
    assert err[5] == f"model: {bundle.resolve()} (CPUExecutionProvider)"
    assert err[6].startswith("warning: no product recommendations: no catalog database at ")


def test_bad_photo_exit_code_and_one_line_error(
    bundle: Path, env: Path, tmp_path: Path, capsys
) -> None:
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    code = main(["diagnose", str(empty), str(env), "--models", str(bundle), "--device", "cpu"])
    cap = capsys.readouterr()
    assert code == 3
    err = cap.err.splitlines()
    assert f"오류: {empty}: 빈 파일입니다 (0바이트)" in err  # --lang ko is the default
    assert err[-1] == (
        "error: 사진 2장 중 1장을 진단하지 못했습니다 (읽을 수 없음 1장, 사진 확인에서 보류 0장)"
    )
    assert f"{env} (640x480)" in cap.out.splitlines()  # the good photo is still diagnosed
    assert "  두피 타입: " in "\n".join(cap.out.splitlines())


def test_json_output(bundle: Path, env: Path, capsys) -> None:
    code = main(
        ["diagnose", str(env), "--models", str(bundle), "--device", "cpu", "--json", "--lang", "en"]
    )
    cap = capsys.readouterr()
    assert code == 0
    j = json.loads(cap.out)
    assert j["schema"] == "deeproot.diagnose/1"
    assert [s["symptom"] for s in j["photos"][0]["diagnosis"]["symptoms"]] == list(SYMPTOM_KEYS)
    assert j["model"]["demo"] is True and j["exit_code"] == 0


def test_bad_option_values_list_the_choices(bundle: Path, env: Path, capsys) -> None:
    assert main(["diagnose", str(env), "--models", str(bundle), "--device", "tpu"]) == 2
    assert "'tpu' is not one of 'auto', 'cpu', 'cuda'" in capsys.readouterr().err
    # 보통 ("normal") is not a survey answer: the two answers SPEC §2 offers are listed
    assert main(["diagnose", str(env), "--models", str(bundle), "--survey-type", "보통"]) == 2
    err = capsys.readouterr().err
    assert "'보통' is not one of '건성', '지성', 'dry', 'oily'" in err
    assert "탈모성" not in err
    assert main(["diagnose", str(env), "--concern", "itch"]) == 2
    assert "'fine_scale', '미세각질'" in capsys.readouterr().err


def test_help_shows_choices_not_types(capsys) -> None:
    assert main(["diagnose", "--help"]) == 0
    out = capsys.readouterr().out
    assert "<bool>" not in out and "list[str]" not in out
    choices = ("건성|지성|dry|oily", "auto|cpu|cuda", "ko|en", "curated|chat", "hair_loss", "탈모")
    for choice in choices:
        assert choice in out, choice
    for opt in ("--free-of", "--no-allergens", "--include-sold-out", "--quiet"):
        assert opt in out


def test_second_photo_with_same_types_refers_to_first(
    bundle: Path, env: Path, tmp_path: Path, capsys
) -> None:
    second = tmp_path / "second.png"
    fakes.scalp_image(seed=6).save(second)
    code = main(
        [
            "diagnose",
            str(env),
            str(second),
            "--models",
            str(bundle),
            "--device",
            "cpu",
            "--lang",
            "en",
        ]
    )
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert out.count("  care guide:") == 1
    assert f"  care guide, products: same as for {env}" in out
