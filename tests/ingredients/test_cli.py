"""`deeproot ingredients parse|tag` and the CSV batch, through the real entry point."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from deeproot.cli.main import main
from deeproot.ingredients import tag

SAMPLE = "정제수, 글리세린, 니아신아마이드, 카페인(0.2%), 황색4호"


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_tag_text(capsys):
    code, out, _ = run(capsys, "ingredients", "tag", SAMPLE)
    assert code == 0
    assert out.splitlines() == [
        "scalp types: 건성, 지성, 탈모  (5 ingredients, table extended)",
        "  건성\t글리세린\t글리세린 (canonical)",
        "  지성\t니아신아마이드\t나이아신아마이드 (alias)",
        "  탈모\t니아신아마이드\t나이아신아마이드 (alias)",
        "  탈모\t카페인(0.2%)\t카페인 (canonical)",
        "flags: synthetic_colour",
        "  synthetic_colour\t황색4호\t황색4호 (name)",
    ]


def test_tag_json_and_seed_table(capsys):
    code, out, _ = run(
        capsys, "ingredients", "tag", "정제수, 멘톨, 카페인", "--table", "seed", "--json"
    )
    assert code == 0
    doc = json.loads(out)
    assert doc["types"] == ["탈모"]
    assert doc["matches"] == [
        {
            "type": "탈모",
            "token": "카페인",
            "canonical": "카페인",
            "entry": "카페인",
            "how": "canonical",
        }
    ]
    assert (doc["n_ingredients"], doc["placeholder"], doc["unknown"]) == (3, False, [])


def test_parse_json(capsys):
    code, out, _ = run(capsys, "ingredients", "parse", "[A] 정제수, 판테놀(덱스판테놀)", "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["groups"] == ["A"]
    assert [(t["name"], t["attrs"], t["group"]) for t in doc["tokens"]] == [
        ("정제수", [], "A"),
        ("판테놀", ["덱스판테놀"], "A"),
    ]


@pytest.mark.parametrize("text", ["", "   ", "\n"])
def test_tag_empty_text_is_no_list(capsys, text):
    code, out, _ = run(capsys, "ingredients", "tag", text)
    assert (code, out) == (0, "no list: the text is empty\n")


def test_parse_placeholder(capsys):
    code, out, _ = run(capsys, "ingredients", "parse", "상세페이지 참고")
    assert (code, out.strip()) == (
        0,
        "no list: the seller refers to the product page (placeholder)",
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["ingredients", "tag", "Water, Glycerin"],
            "error: no Korean ingredient names in the text",
        ),
        (
            ["ingredients", "tag", "정제수", "--table", "x"],
            "error: unknown table 'x'; valid: seed, extended",
        ),
        (
            ["ingredients", "tag", "--csv", "/nonexistent.csv"],
            "error: CSV file not found: /nonexistent.csv",
        ),
        (["ingredients", "tag"], "error: give the ingredient text as an argument"),
    ],
)
def test_bad_input_is_one_line_and_exit_3(capsys, args, message):
    code, _, err = run(capsys, *args)
    assert code == 3
    assert err.startswith(message) and err.count("\n") == 1


def test_batch_reads_original_csv_in_order(capsys, crawl_dir, tmp_path):
    src = crawl_dir / "scaler_ingredient_data2_add_type.csv"
    out = tmp_path / "tags.jsonl"
    code, _, err = run(capsys, "ingredients", "tag", "--csv", str(src), "--out", str(out))
    assert code == 0
    recs = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["row"] for r in recs] == list(range(48))
    assert set(recs[0]) == {
        "row",
        "types",
        "matches",
        "placeholder",
        "n_ingredients",
        "unknown",
        "flags",
        "error",
    }
    assert "tagged 48 rows (utf-8-sig)" in err and "0 bad" in err


def test_batch_parquet_has_the_explicit_schema(capsys, crawl_dir, crawl_rows, tmp_path):
    from deeproot.ingredients.batch import record_schema

    out = tmp_path / "tags.parquet"
    src = crawl_dir / "tonic_ingredient_data2_add_type.csv"
    code, _, _ = run(
        capsys, "ingredients", "tag", "--csv", str(src), "--format", "parquet", "--out", str(out)
    )
    assert code == 0
    table = pq.read_table(out)
    assert table.schema.equals(record_schema())
    assert table.num_rows == 64
    assert list(tmp_path.iterdir()) == [out]  # no partial file left
    flags = table.column("flags").to_pylist()
    assert table.schema.field("flags").type.value_type.names == [
        "flag",
        "token",
        "canonical",
        "entry",
        "source",
        "how",
    ]
    # the same evidence as tagging the row's text directly
    rows = [r for r in crawl_rows if r["file"] == "tonic"]
    assert flags == [tag(r["ingredient"]).record()["flags"] for r in rows]
    assert sum(bool(f) for f in flags) > 50


def test_batch_jsonl_to_stdout_with_dash(capsys, tmp_path):
    src = tmp_path / "in.csv"
    src.write_text('name,ingredient\na,"정제수, 리모넨, 다이메티콘"\n', encoding="utf-8")
    code, out, err = run(capsys, "ingredients", "tag", "--csv", str(src), "--out", "-")
    assert code == 0 and not (tmp_path / "-").exists()
    (rec,) = [json.loads(x) for x in out.splitlines()]
    assert [f["flag"] for f in rec["flags"]] == ["allergen", "silicone"]
    assert "1 with flags" in err


def test_batch_never_stops_at_bad_rows(capsys, tmp_path):
    src = tmp_path / "mixed.csv"
    rows = [
        "name,ingredient",
        'a,"정제수, 카페인"',
        "b,Water Glycerin",
        f'c,"{"정제수, " * 60_000}"',
        "d,상세페이지 참고",
        "e,",
    ]
    data = (
        ("\n".join(rows) + "\n").encode("utf-8")
        + b'f,"\xff\xfe broken"\n'
        + "g,바이오틴\n".encode()
    )
    src.write_bytes(data)
    out = tmp_path / "o.jsonl"
    code, _, err = run(capsys, "ingredients", "tag", "--csv", str(src), "--out", str(out))
    assert code == 0
    recs = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["row"] for r in recs] == [0, 1, 2, 3, 4, 5, 6]
    assert recs[0]["types"] == ["탈모"] and recs[6]["types"] == ["탈모"]
    assert recs[1]["error"].startswith("no Korean ingredient names")
    assert "over the 100,000 limit" in recs[2]["error"]
    assert recs[3]["placeholder"] is True and recs[3]["error"] is None
    assert recs[4]["n_ingredients"] == 0 and recs[4]["error"] is None
    assert recs[5]["error"] == "undecodable bytes in the ingredient text (line 7)"
    assert "3 bad" in err


def test_batch_missing_column_lists_columns(capsys, crawl_dir):
    code, _, err = run(
        capsys,
        "ingredients",
        "tag",
        "--csv",
        str(crawl_dir / "bar_ingredient_data2_add_type.csv"),
        "--column",
        "성분",
    )
    assert code == 3
    assert "has no column '성분'; its columns are: (unnamed), Unnamed: 0, page" in err


def test_batch_parquet_needs_out(capsys, crawl_dir):
    code, _, err = run(
        capsys,
        "ingredients",
        "tag",
        "--csv",
        str(crawl_dir / "bar_ingredient_data2_add_type.csv"),
        "--format",
        "parquet",
    )
    assert (code, err.strip()) == (3, "error: --format parquet needs --out FILE")


def test_console_script_help_and_version():
    exe = shutil.which("deeproot", path=str(Path(sys.executable).parent))
    assert exe is not None
    res = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False)
    assert (res.returncode, res.stdout.strip()) == (0, "deeproot 0.1.0")
    res = subprocess.run(
        [exe, "ingredients", "--help"],
        capture_output=True,
        text=True,
        check=False,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )
    assert res.returncode == 0 and "parse" in res.stdout and "tag" in res.stdout
