"""Issue 15, catalog side: kills at any point lose nothing and leave nothing stale, history is
append-only, wrong column types are refused, one lock per store, readers keep their snapshot,
tagging workers die with their parent, evidence order is the same in identical builds."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from catalog_store import NEW, OLD, PRODUCT_SCHEMA, T3, make_two_crawls, rec, write_crawl

from deeproot.catalog import tagging
from deeproot.catalog.build import build
from deeproot.catalog.recommend import recommend
from deeproot.errors import InputError, LockedError
from deeproot.lock import StoreLock


def q(db: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def add_c3(store: Path) -> None:
    write_crawl(
        store,
        "c3",
        [
            rec("c3", T3, "A000000000001", "shampoo", price=8000, reviews=50, text=NEW),
            rec("c3", T3, "A000000000005", "shampoo", price=3000, reviews=9, rank=2,
                brand="브랜드C", text="정제수, 소듐라우릴설페이트, 멘톨, 리모넨"),
        ],
    )


_KILLER = textwrap.dedent(
    """
    import os, signal, sys
    from deeproot.catalog.build import build

    def progress(stage, done, total):
        if stage == sys.argv[3]:
            os.kill(os.getpid(), signal.SIGKILL)

    build(sys.argv[1], sys.argv[2], progress=progress)
    """
)


def test_kill_9_mid_build_leaves_the_old_catalog_and_the_next_build_redoes_it(tmp_path):
    """Killed while "computing products…": the next build must not say unchanged."""
    stage = "derive"
    store, db = make_two_crawls(tmp_path / "store"), tmp_path / "c.duckdb"
    build(store, db)
    before = q(db, "SELECT * FROM products ORDER BY goods_no")
    add_c3(store)
    proc = subprocess.run(
        [sys.executable, "-c", _KILLER, str(store), str(db), stage], capture_output=True
    )
    assert proc.returncode == -signal.SIGKILL
    # the catalog is the one before, whole and consistent; the dead build's file is beside it
    assert q(db, "SELECT * FROM products ORDER BY goods_no") == before
    assert q(db, "SELECT crawl_id FROM crawls ORDER BY 1") == [("c1",), ("c2",)]
    assert [p.name for p in tmp_path.glob(".c.duckdb.building-*")]
    rep = build(store, db)  # not "unchanged": the new crawl goes in now
    assert (rep.added, rep.unchanged, rep.written) == (("c3",), ("c1", "c2"), True)
    assert q(db, "SELECT price_sale FROM products WHERE goods_no = 'A000000000005'") == [(3000,)]
    assert not list(tmp_path.glob(".c.duckdb.building-*"))  # swept
    res = recommend(db, types=["healthy"], categories=["shampoo"], top=5, all_brands=True)
    assert {p.goods_no for p in res.categories[0].picks} >= {"A000000000001", "A000000000005"}


def test_tag_results_go_in_together_or_not_at_all(tmp_path):
    store, db = make_two_crawls(tmp_path / "store"), tmp_path / "c.duckdb"
    build(store, db)
    con = duckdb.connect(str(tmp_path / "x.duckdb"))
    con.execute(f"ATTACH '{db}' AS src (READ_ONLY)")
    con.execute("CREATE TABLE crawl_records AS SELECT * FROM src.crawl_records")
    for t in ("texts", "text_ingredients", "text_matches", "text_flags"):
        con.execute(f"CREATE TABLE {t} AS SELECT * FROM src.{t} LIMIT 0")
    con.execute("DETACH src")

    class FailOnMatches:  # a fault between the inserts
        def __getattr__(self, name):
            return getattr(con, name)

        def execute(self, sql, *args):
            if sql.startswith("INSERT INTO text_matches"):
                raise duckdb.IOException("disk full (injected)")
            return con.execute(sql, *args)

    with pytest.raises(duckdb.IOException, match="injected"):
        tagging.tag_new_texts(FailOnMatches(), workers=1)
    assert con.execute("SELECT count(*) FROM texts").fetchall() == [(0,)]
    assert con.execute("SELECT count(*) FROM text_ingredients").fetchall() == [(0,)]
    assert tagging.tag_new_texts(con, workers=1) == 2  # nothing half-done blocks a retry
    assert con.execute("SELECT count(DISTINCT text_hash) FROM text_matches").fetchall() == [(2,)]
    con.close()


def test_wrong_column_types_are_refused_with_the_reason(tmp_path):
    store = make_two_crawls(tmp_path / "store")
    bad_schema = pa.schema(
        [pa.field("goods_no", pa.int64()) if f.name == "goods_no" else f for f in PRODUCT_SCHEMA]
    )
    row = rec("c3", T3, "A000000000009", "shampoo", price=1, reviews=1, text=OLD)
    write_crawl(store, "c3", [row | {"goods_no": 9}], schema=bad_schema)
    db = tmp_path / "c.duckdb"
    rep = build(store, db)
    assert rep.added == ("c1", "c2")
    assert [(s.crawl_id, s.reason) for s in rep.skipped] == [
        (
            "c3",
            "column goods_no has type int64 in part-0.parquet, expected varchar; not ingested "
            "(a wrong type is never read as NULLs)",
        )
    ]
    assert q(db, "SELECT count(*) FROM crawl_records WHERE goods_no IS NULL") == [(0,)]


def test_history_is_append_only(tmp_path):
    store, db = make_two_crawls(tmp_path / "store"), tmp_path / "c.duckdb"
    build(store, db)
    history = q(db, "SELECT * FROM product_history ORDER BY ALL")
    # same bytes, new mtime (a copy, a restore): unchanged, nothing refused
    part = store / "products" / "crawl_id=c2" / "part-0.parquet"
    os.utime(part, (time.time() + 60, time.time() + 60))
    rep = build(store, db)
    assert (rep.unchanged, rep.skipped) == (("c1", "c2"), ())
    # rewritten with one row: refused and reported, the records ingested before stay
    part.unlink()
    (part.parent / "_SUCCESS").unlink()
    part.parent.rmdir()
    write_crawl(
        store, "c2", [rec("c2", T3, "A000000000001", "shampoo", price=1, reviews=1, text=OLD)]
    )
    rep = build(store, db)
    (skip,) = rep.skipped
    assert skip.crawl_id == "c2" and skip.reason.startswith(
        "its files changed after it was ingested ("
    )
    assert "history is append-only" in skip.reason
    assert q(db, "SELECT * FROM product_history ORDER BY ALL") == history


def test_one_lock_per_store_and_wait(tmp_path):
    store, db = make_two_crawls(tmp_path / "store"), tmp_path / "c.duckdb"
    with StoreLock(store, "deeproot crawl"):
        with pytest.raises(LockedError, match=r"is locked by pid \d+ .*deeproot crawl"):
            build(store, db)
    assert not db.exists()
    lock = StoreLock(store, "deeproot crawl").acquire()
    threading.Timer(0.5, lock.release).start()
    t0 = time.monotonic()
    rep = build(store, db, wait=20)
    assert rep.added == ("c1", "c2") and time.monotonic() - t0 >= 0.4


_READER = textwrap.dedent(
    """
    import sys, duckdb
    con = duckdb.connect(sys.argv[1], read_only=True)
    q = "SELECT count(*) FROM crawls"
    print(con.execute(q).fetchone()[0], flush=True)
    sys.stdin.readline()
    print(con.execute(q).fetchone()[0], flush=True)
    """
)


def test_a_reader_keeps_its_snapshot_while_a_build_swaps_in_the_new_file(tmp_path):
    store, db = make_two_crawls(tmp_path / "store"), tmp_path / "c.duckdb"
    build(store, db)
    shampoo = dict(types=["healthy"], categories=["shampoo"], top=9, all_brands=True)
    assert len(recommend(db, **shampoo).categories[0].picks) == 2  # caches a connection
    reader = subprocess.Popen(
        [sys.executable, "-c", _READER, str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert reader.stdout.readline().strip() == "2"
        add_c3(store)
        t0 = time.monotonic()
        rep = build(store, db)  # never waits on the reader
        assert rep.added == ("c3",) and time.monotonic() - t0 < 30
        out, _ = reader.communicate("go\n", timeout=60)
    finally:
        reader.kill()
    assert out.split() == ["2"]  # the reader's snapshot held across the swap
    assert q(db, "SELECT count(*) FROM crawls") == [(3,)]  # a new open sees the new file
    # this process's cached connection notices the new file (inode) and reopens
    picks = recommend(db, **shampoo).categories[0].picks
    assert [p.goods_no for p in picks] == ["A000000000001", "A000000000005"]


_POOL = textwrap.dedent(
    """
    import time
    from deeproot.catalog import tagging
    pool = tagging.make_pool(2)
    futures = [pool.submit(time.sleep, 120) for _ in range(2)]
    while len(pool._processes) < 2:
        time.sleep(0.05)
    time.sleep(1.5)
    print(" ".join(str(p) for p in pool._processes), flush=True)
    time.sleep(120)
    """
)


def test_tagging_workers_die_with_a_killed_parent():
    parent = subprocess.Popen([sys.executable, "-c", _POOL], stdout=subprocess.PIPE, text=True)
    try:
        pids = [int(p) for p in parent.stdout.readline().split()]
        assert len(pids) == 2 and all(Path(f"/proc/{p}").exists() for p in pids)
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_running(p) for p in pids):
            time.sleep(0.1)
        assert not any(_running(p) for p in pids)
    finally:
        parent.kill()


def _running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited


def test_scratch_space_is_cleaned_and_evidence_order_is_deterministic(tmp_path):
    from deeproot.files import scratch_root

    store = make_two_crawls(tmp_path / "store")
    a, b = tmp_path / "a.duckdb", tmp_path / "b.duckdb"
    build(store, a, workers=1)
    build(store, b, workers=1)
    assert not list(scratch_root().glob(f"catalog-tags-{os.getpid()}-*"))
    for query in (
        "SELECT goods_no, table_name, type, matches FROM product_types ORDER BY 1, 2, 3",
        "SELECT goods_no, flag, matches FROM product_flags ORDER BY 1, 2",
        "SELECT table_name, type, category, goods_no, ev_seed, ev_extended "
        "FROM recommend_shortlist ORDER BY 1, 2, 3, 4",
    ):
        assert q(a, query) == q(b, query)


def test_an_older_catalog_is_carried_forward(tmp_path):
    """A catalog of schema 2 keeps its history: the build copies its stored tables by name."""
    store, db = make_two_crawls(tmp_path / "store"), tmp_path / "c.duckdb"
    build(store, db)
    history = q(db, "SELECT * FROM product_history ORDER BY ALL")
    con = duckdb.connect(str(db))
    con.execute("UPDATE catalog_meta SET value = '2' WHERE key = 'schema_version'")
    con.execute("UPDATE crawls SET fingerprint = 'stat-based', stat_signature = NULL")
    con.close()
    with pytest.raises(Exception, match="schema version 2"):
        recommend(db, types=["oily"])
    rep = build(store, db)
    assert (rep.unchanged, rep.skipped, rep.written) == (("c1", "c2"), (), True)
    assert q(db, "SELECT * FROM product_history ORDER BY ALL") == history
    assert q(db, "SELECT value FROM catalog_meta WHERE key = 'schema_version'") == [("3",)]
    assert build(store, db).written is False  # and now it is up to date


def test_empty_inputs_are_errors(tmp_path):
    store = tmp_path / "store"
    write_crawl(
        store,
        "c1",
        [rec("c1", T3, "A000000000001", "shampoo", price=1, reviews=1, text=OLD)],
        status="stopped",
    )
    with pytest.raises(InputError, match=r"no complete crawl to build from in .*1 skipped \(c1: "):
        build(store, tmp_path / "c.duckdb")
    (store / "products" / "crawl_id=c1" / "_SUCCESS").unlink()
    import shutil

    shutil.rmtree(store / "products" / "crawl_id=c1")
    with pytest.raises(InputError, match=r"no crawls in the store"):
        build(store, tmp_path / "c.duckdb")


def test_memory_limit_is_a_size_not_sql(tmp_path):
    store = make_two_crawls(tmp_path / "store")
    with pytest.raises(InputError, match=r"--memory-limit \"2GB'; DROP TABLE x; --\" is not"):
        build(store, tmp_path / "c.duckdb", memory_limit="2GB'; DROP TABLE x; --")
    assert not (tmp_path / "c.duckdb").exists()


def test_cli_build_on_a_locked_store_exits_6(capsys, tmp_path):
    from deeproot.cli.main import main

    store, db = make_two_crawls(tmp_path / "store"), tmp_path / "c.duckdb"
    with StoreLock(store, "deeproot crawl"):
        code = main(["catalog", "build", "--data", str(store), "--db", str(db), "--wait", "0.2"])
    err = capsys.readouterr().err
    assert code == 6 and err.startswith(f"error: {store} is locked by pid {os.getpid()} ")
    assert err.endswith("pass --wait SECONDS to queue behind it\n") and err.count("\n") == 1


def test_a_catalog_without_a_newer_nullable_column_gets_it(tmp_path):
    store, db = make_two_crawls(tmp_path / "store"), tmp_path / "c.duckdb"
    build(store, db)
    con = duckdb.connect(str(db))
    con.execute("DROP VIEW product_history")
    con.execute("DROP VIEW analyst.product_history")  # views read the column
    con.execute("DROP VIEW analyst.reformulations")
    con.execute("DROP VIEW formula_changes")
    con.execute("DROP VIEW analyst.formula_changes")
    con.execute("ALTER TABLE crawl_records DROP COLUMN ingredients_at")
    con.close()
    add_c3(store)
    rep = build(store, db)
    assert rep.added == ("c3",)
    assert q(db, "SELECT count(*), count(ingredients_at) FROM product_history") == [(9, 0)]
