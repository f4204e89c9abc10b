"""`deeproot sql` and its sandbox (`deeproot.catalog.sql.run_query`): what gets refused, the
timeout and row cap, golden outputs in every format, input from files and stdin, parameters,
--output, --schema, and `catalog export`."""

from __future__ import annotations

import io
import json
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from rich.cells import cell_len

from deeproot.catalog.sql import run_query
from deeproot.cli.main import main
from deeproot.errors import InputError

GOLDEN = Path(__file__).parent / "golden"


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(autouse=True)
def _width(monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")


REFUSED = "only read-only queries run here (SELECT, WITH, DESCRIBE, EXPLAIN …), not "
DISABLED = "file system operations are disabled by configuration"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("COPY products TO '{tmp}/out.csv'", REFUSED + "COPY"),
        ("COPY (SELECT 1) TO '{tmp}/out.csv'", REFUSED + "COPY"),
        ("EXPORT DATABASE '{tmp}/exp'", REFUSED + "EXPORT"),
        ("ATTACH '{tmp}/other.duckdb' AS o (READ_WRITE)", REFUSED + "ATTACH"),
        ("INSTALL httpfs", REFUSED),
        ("SET max_expression_depth = 100000", REFUSED + "SET"),
        ("PRAGMA show_tables", REFUSED + "PRAGMA"),
        ("CALL pragma_version()", REFUSED + "CALL"),
        ("DELETE FROM products", REFUSED + "DELETE"),
        ("SELECT * FROM read_csv('{tmp}/secret.txt')", DISABLED),
        ("SELECT * FROM read_text('{tmp}/secret.txt')", DISABLED),
        ("SELECT * FROM glob('{tmp}/*')", DISABLED),
        ("SELECT * FROM read_parquet('{tmp}/x.parquet')", DISABLED),
        ("SELECT 1; SELECT 2", "2 statements given; `deeproot sql` runs exactly one query"),
        (";", "empty query; pass one SQL statement"),
        ("SELECT " + "(" * 400 + "1" + ")" * 400, "Max expression depth limit of 250 exceeded"),
    ],
)
def test_the_sandbox_refuses(real_db, tmp_path, query, message):
    (tmp_path / "secret.txt").write_text("secret")
    before = real_db.read_bytes()
    with pytest.raises(InputError, match=None) as err:
        run_query(query.format(tmp=tmp_path), db_path=real_db)
    assert message in str(err.value) and "\n" not in str(err.value)
    assert real_db.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret.txt"]  # nothing written


def test_configuration_is_locked_and_external_access_off(real_db):
    res = run_query(
        "SELECT current_setting('lock_configuration'), current_setting('enable_external_access')",
        db_path=real_db,
    )
    assert res.rows == ((True, False),)


def test_timeout_and_row_cap(real_db):
    with pytest.raises(InputError, match=r"^query stopped after 0.5 s \(the time limit\)"):
        run_query("SELECT count(*) FROM range(100000000000) a", db_path=real_db, timeout_s=0.5)
    res = run_query("SELECT * FROM range(25000)", db_path=real_db, max_rows=12_345)
    assert (len(res.rows), res.truncated, res.rows[-1]) == (12_345, True, (12_344,))
    res = run_query("SELECT * FROM range(5)", db_path=real_db, max_rows=5)
    assert (len(res.rows), res.truncated) == (5, False)
    res = run_query(
        "SELECT goods_no FROM products WHERE goods_no = $g",
        db_path=real_db,
        params={"g": "A000000202566"},
    )
    assert res.rows == (("A000000202566",),)


def test_semicolon_alone_is_one_clean_line(capsys, real_db):
    code, out, err = run(capsys, "sql", ";", "--db", real_db)
    assert (code, out) == (3, "")
    assert err == (
        'error: empty query; pass one SQL statement, e.g. "SELECT count(*) FROM products"\n'
    )


@pytest.mark.parametrize("fmt", ["table", "csv", "json", "jsonl", "markdown"])
def test_golden_output(capsys, real_db, fmt):
    code, out, err = run(
        capsys, "sql", "--file", GOLDEN / "nested.sql", "--db", real_db, "--format", fmt
    )
    assert (code, err) == (0, "")
    assert out == (GOLDEN / f"nested.{fmt}").read_text(encoding="utf-8")
    if fmt == "table":
        assert all(cell_len(line) <= 100 for line in out.splitlines())
        assert len(out.splitlines()) == 7  # a newline inside a cell never adds a line


def test_parquet_output_stdin_params_and_output_file(capsys, monkeypatch, real_db, tmp_path):
    out_file = tmp_path / "r.parquet"
    code, out, err = run(
        capsys, "sql", "--file", GOLDEN / "nested.sql", "--db", real_db, "--format", "parquet",
        "--output", out_file,
    )
    assert (code, out, err) == (0, "", f"{out_file}: 2 rows\n")
    tbl = pq.read_table(out_file)
    assert tbl.column("tags").to_pylist() == [["샴푸", "tonic"], []]
    assert str(tbl.schema.field("seen_at").type) == "timestamp[us, tz=UTC]"
    code, _, err = run(capsys, "sql", "SELECT 1", "--db", real_db, "--format", "parquet")
    assert (code, err) == (3, "error: --format parquet writes a file; add --output FILE.parquet\n")
    monkeypatch.setattr("sys.stdin", io.StringIO("SELECT $n::INT + 1 AS x"))
    code, out, _ = run(capsys, "sql", "-", "--db", real_db, "--param", "n=41", "--format", "csv")
    assert (code, out) == (0, "x\n42\n")
    code, _, err = run(capsys, "sql", "SELECT 1", "--db", real_db, "--param", "oops")
    assert code == 3 and err.startswith("error: --param 'oops' is not name=value")
    target = tmp_path / "out.json"
    code, out, _ = run(
        capsys, "sql", "SELECT 1 AS a", "--db", real_db, "--format", "json", "-o", target
    )
    assert (code, out, json.loads(target.read_text())) == (0, "", [{"a": 1}])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json", "r.parquet"]
    code, _, err = run(capsys, "sql", "SELECT 1", "--db", real_db, "-o", tmp_path)
    assert code == 3 and "is a folder" in err


def test_table_row_limit(capsys, real_db):
    code, out, _ = run(capsys, "sql", "SELECT * FROM range(500)", "--db", real_db)
    assert code == 0 and len(out.splitlines()) == 100 + 5
    assert out.splitlines()[-1] == (
        "100 rows shown; the query returned more (raise --max-rows to see them)"
    )


def test_schema_prints_tables_columns_and_comments(capsys, real_db):
    code, out, _ = run(capsys, "sql", "--schema", "--db", real_db)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("analyst.")  # analyst views first, apart from serving tables
    assert (
        "analyst.reformulations (view): Formula changes that add or remove an ingredient "
        "(text-only changes left out), with what was added and removed." in lines
    )
    assert "    rating DOUBLE  -- Average star rating 1-5; NULL when unrated (never 0.0)." in lines
    assert (
        "products (table): Derived serving table: the latest state of every product ever "
        "crawled." in lines
    )
    assert run(capsys, "sql", "tables", "--db", real_db)[1] == out


def test_export_writes_parquet_of_the_derived_tables(capsys, real_db, real_rows, tmp_path):
    out = tmp_path / "export"
    code, text, _ = run(capsys, "catalog", "export", out, "--db", real_db)
    assert code == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(
        f"{n}.parquet"
        for n in (
            "products",
            "product_categories",
            "product_types",
            "product_flags",
            "product_ingredients",
            "product_history",
            "reformulations",
        )
    )
    con = duckdb.connect()
    n_products = con.execute(f"SELECT count(*) FROM '{out}/products.parquet'").fetchall()[0][0]
    assert n_products == len({r.goods_no for r in real_rows})
    assert f"{out / 'products.parquet'}: {n_products:,} rows" in text.splitlines()
    history = con.execute(f"SELECT count(*) FROM '{out}/product_history.parquet'").fetchall()
    assert history == [(len(real_rows),)]
