"""The CLI: import-csv, recommend, sql (exact output, exit codes, one-line errors)."""

from __future__ import annotations

import csv
import io
import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from deeproot.cli.main import main


@pytest.fixture(autouse=True)
def _width(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_import_csv_is_idempotent_and_reports(capsys, crawl_dir, real_rows, tmp_path):
    db = tmp_path / "c.duckdb"
    files = sorted(crawl_dir.glob("*_add_type.csv"))
    code, out, _ = run(capsys, "catalog", "import-csv", *files, "--db", db, "--json")
    rep = json.loads(out)
    assert code == 0 and rep["schema"] == "deeproot.build/1" and rep["written"] is True
    assert rep["added"][0].startswith("csv-") and len(rep["added"][0]) == 16
    n_products = len({r.goods_no for r in real_rows})
    assert (rep["n_records"], rep["n_products"], rep["skipped_rows"]) == (
        len(real_rows),
        n_products,
        [],
    )
    assert (len(real_rows), n_products) == (1051, 894)  # the shared copy, per its PROVENANCE.md
    code, out, _ = run(capsys, "catalog", "import-csv", crawl_dir, "--db", db)
    assert code == 0
    assert out.splitlines()[0] == (
        f"catalog {db}: 0 crawl(s) added, 1 unchanged, 0 skipped; "
        "0 new ingredient text(s) tagged"
    )
    code, out, _ = run(
        capsys,
        "sql",
        "SELECT category, count(*) AS n FROM product_categories GROUP BY category ORDER BY n DESC",
        "--db",
        db,
        "--format",
        "csv",
    )
    per_cat = Counter(r.category for r in real_rows)
    assert out == "category,n\n" + "".join(
        f"{c},{n}\n" for c, n in sorted(per_cat.items(), key=lambda kv: -kv[1])
    )
    code, out, _ = run(
        capsys,
        "sql",
        "SELECT count(*) FROM products WHERE product_url LIKE "
        "'%t_page%' OR product_url LIKE '%trackingCd%'",
        "--db",
        db,
        "--format",
        "json",
    )
    assert json.loads(out) == [{"count_star()": 0}]


def test_import_csv_category_from_file_name_and_bad_files(capsys, crawl_dir, tmp_path):
    # a file whose links lost their dispCatNo still gets its category from the file name
    src = crawl_dir / "tonic_ingredient_data2_add_type.csv"
    text = src.read_text(encoding="utf-8-sig").replace("dispCatNo=", "x=")
    f = tmp_path / "tonic_ingredient_data2_add_type.csv"
    f.write_text(text, encoding="utf-8-sig")
    db = tmp_path / "c.duckdb"
    assert run(capsys, "catalog", "import-csv", f, "--db", db)[0] == 0
    code, out, _ = run(
        capsys, "sql", "SELECT DISTINCT category FROM crawl_records", "--db", db, "--format", "csv"
    )
    assert out == "category\nscalp_tonic\n"
    odd = tmp_path / "mystery.csv"
    odd.write_text(text, encoding="utf-8")
    code, _, err = run(capsys, "catalog", "import-csv", odd, "--db", db)
    assert code == 3 and err.startswith(f"error: cannot tell the category of {odd}:")
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n", encoding="utf-8")
    code, _, err = run(capsys, "catalog", "import-csv", bad, "--db", db)
    assert (code, err) == (
        3,
        f"error: {bad} is not a DeepRoot crawl CSV: missing column(s) "
        "product_link, product_name, brand_name, star, review_count, "
        "ingredient\n",
    )
    code, _, err = run(capsys, "catalog", "import-csv", tmp_path / "none.csv", "--db", db)
    assert (code, err) == (3, f"error: no such file: {tmp_path / 'none.csv'}\n")


def test_recommend_text_and_json(capsys, real_db):
    code, out, err = run(
        capsys,
        "recommend",
        "--type",
        "지루성",
        "--category",
        "scalp_tonic",
        "--table",
        "seed",
        "--db",
        real_db,
    )
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == "scalp type: 지루성 seborrheic; ranking seed, seed ingredient table"
    assert lines[2].startswith("헤어토닉/두피토닉 (scalp_tonic): ")
    assert lines[2].endswith(" of 64 products for 지루성 seborrheic")
    assert lines[3].startswith("  1. ") and "★" in lines[3]
    assert lines[4].startswith("     why: ") and "(지루성)" in lines[4]
    code, out, _ = run(
        capsys,
        "recommend",
        "--type",
        "seborrheic",
        "--category",
        "scalp_tonic",
        "--table",
        "seed",
        "--db",
        real_db,
        "--json",
    )
    doc = json.loads(out)
    assert doc["schema"] == "deeproot.recommend/1"
    assert lines[2].split(": ")[1].split(" of ")[0] == str(doc["categories"][0]["n_fit"])


def test_recommend_survey_only_equals_the_type(capsys, real_db):
    _, by_survey, _ = run(
        capsys,
        "recommend",
        "--survey-type",
        "지성",
        "--concern",
        "피지과다",
        "--db",
        real_db,
        "--json",
    )
    _, by_type, _ = run(capsys, "recommend", "--type", "oily", "--db", real_db, "--json")
    assert json.loads(by_survey) == json.loads(by_type)
    _, healthy, _ = run(capsys, "recommend", "--db", real_db, "--json", "--top", "1")
    assert json.loads(healthy)["types"] == ["healthy"]


def test_recommend_errors(capsys, real_db, tmp_path):
    code, _, err = run(capsys, "recommend", "--type", "greasy", "--db", real_db)
    assert code == 3 and err.startswith("error: unknown scalp type 'greasy'; valid: dry (건성), ")
    assert err.count("\n") == 1
    code, _, err = run(capsys, "recommend", "--concern", "itch", "--db", real_db)
    assert code == 3 and err.startswith("error: unknown symptom 'itch'; valid: fine_scale")
    code, _, err = run(capsys, "recommend", "--type", "oily", "--category", "soap", "--db", real_db)
    assert code == 3 and err.startswith("error: unknown category 'soap'; valid: shampoo (샴푸)")
    code, _, err = run(capsys, "recommend", "--type", "oily", "--db", tmp_path / "x.duckdb")
    assert (code, err) == (
        1,
        f"error: no catalog database at {tmp_path / 'x.duckdb'}; build it "
        "with `deeproot catalog build` (from a crawl store) or `deeproot "
        "catalog import-csv FILE...` (from the original DeepRoot CSVs)\n",
    )


def test_sql_is_read_only(capsys, real_db, tmp_path):
    db = tmp_path / "copy.duckdb"
    shutil.copy(real_db, db)
    before = db.read_bytes()
    for stmt, kind in (
        ("DELETE FROM products", "DELETE"),
        ("CREATE TABLE t (x INT)", "CREATE"),
        ("DROP VIEW product_types", "DROP"),
    ):
        code, out, err = run(capsys, "sql", stmt, "--db", db)
        assert (code, out, err) == (
            3,
            "",
            "error: only read-only queries run here (SELECT, WITH, DESCRIBE, EXPLAIN …), not "
            f"{kind}; the catalog is never changed and nothing is read or written outside it\n",
        )
    assert db.read_bytes() == before
    code, _, err = run(capsys, "sql", "SELEC 1", "--db", db)
    assert code == 3 and err.startswith("error: query failed: Parser Error: syntax error")
    code, _, err = run(capsys, "sql", "SELECT 1", "--db", db, "--format", "xml")
    assert code == 2 and "'xml' is not one of" in err
    for choice in ("table", "csv", "json", "jsonl", "markdown", "parquet"):
        assert choice in err
    code, _, err = run(capsys, "sql", "SELECT 1", "--db", tmp_path / "none.duckdb")
    assert code == 1 and "deeproot catalog build" in err


def test_sql_formats(capsys, real_db):
    query = (
        "SELECT goods_no, brand, categories, rating FROM products "
        "WHERE goods_no IN ('A000000202566', 'A000000202567') ORDER BY goods_no"
    )
    code, out, _ = run(capsys, "sql", query, "--db", real_db, "--format", "json")
    rows = json.loads(out)
    assert code == 0 and [r["goods_no"] for r in rows] == ["A000000202566", "A000000202567"]
    assert rows[0]["brand"] == "솔랩" and isinstance(rows[0]["categories"], list)
    _, out, _ = run(capsys, "sql", query, "--db", real_db, "--format", "csv")
    parsed = list(csv.reader(io.StringIO(out)))
    assert parsed[0] == ["goods_no", "brand", "categories", "rating"]
    assert json.loads(parsed[1][2]) == rows[0]["categories"]
    _, out, _ = run(capsys, "sql", query, "--db", real_db)
    lines = out.splitlines()
    assert lines[1].split("│")[1].strip() == "goods_no" and lines[-1] == "2 rows"
    assert lines[0].startswith("┌") and lines[-2].startswith("└")


def test_every_command_has_help(capsys):
    for argv in (
        ["catalog", "build"],
        ["catalog", "import-csv"],
        ["catalog", "export"],
        ["recommend"],
        ["sql"],
    ):
        code, out, _ = run(capsys, *argv, "--help")
        assert code == 0 and "--db" in out
    # options with fixed values list them
    _, out, _ = run(capsys, "recommend", "--help")
    assert "<seed|bayes>" in out and "<seed|extended>" in out
    _, out, _ = run(capsys, "sql", "--help")
    assert "<table|csv|json|jsonl|markdown|parquet>" in out


def test_build_of_a_store_with_no_complete_crawl_is_an_error(capsys, tmp_path: Path):
    (tmp_path / "store" / "products" / "crawl_id=x").mkdir(parents=True)
    db = tmp_path / "c.duckdb"
    code, out, err = run(capsys, "catalog", "build", "--data", tmp_path / "store", "--db", db)
    assert (code, out) == (3, "")
    assert err == (
        f"error: no complete crawl to build from in {tmp_path / 'store'}: 1 skipped (x: no "
        "manifest (crawl running or interrupted)); run `deeproot crawl --out "
        f"{tmp_path / 'store'}` (or --resume) until one completes\n"
    )
    assert not db.exists()
    assert not [p.name for p in tmp_path.iterdir() if "building" in p.name]


def test_default_paths_follow_deeproot_data_dir(capsys, monkeypatch, crawl_dir, tmp_path):
    monkeypatch.setenv("DEEPROOT_DATA_DIR", str(tmp_path / "data"))
    tonic = crawl_dir / "tonic_ingredient_data2_add_type.csv"
    assert run(capsys, "catalog", "import-csv", tonic)[0] == 0
    assert (tmp_path / "data" / "catalog.duckdb").is_file()
    code, out, _ = run(capsys, "sql", "SELECT count(*) AS n FROM products", "--format", "csv")
    assert (code, out) == (0, "n\n64\n")
    code, out, _ = run(capsys, "recommend", "--type", "탈모성", "--top", "1", "--json")
    doc = json.loads(out)
    assert [c["category"] for c in doc["categories"] if c["picks"]] == ["scalp_tonic"]
    assert [c["n_total"] for c in doc["categories"]] == [0, 0, 0, 0, 0, 64, 0]
    # `catalog build` reads the store in the same data dir: none there yet
    code, _, err = run(capsys, "catalog", "build")
    assert code == 3
    assert err == (
        f"error: no crawl store at {tmp_path / 'data'} (no products/ folder); run "
        f"`deeproot crawl --out {tmp_path / 'data'}` first\n"
    )


def test_import_of_csvs_without_a_single_product_is_an_error(capsys, crawl_dir, tmp_path):
    src = crawl_dir / "tonic_ingredient_data2_add_type.csv"
    text = src.read_text(encoding="utf-8-sig").replace("goodsNo=", "goods=")
    f = tmp_path / "tonic_ingredient_data2_add_type.csv"
    f.write_text(text, encoding="utf-8-sig")
    db = tmp_path / "c.duckdb"
    code, out, err = run(capsys, "catalog", "import-csv", f, "--db", db)
    assert (code, out, err) == (3, "", f"error: no rows with a goodsNo in {f}; nothing to import\n")
    assert not db.exists()
