"""The crawl store on a real S3 protocol server (moto's, on 127.0.0.1): crawl, kill, build,
refresh, errors. Every crawl runs the offline site with delays off."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pytest
from lake_helpers import CATS, make_bucket

from deeproot import lake
from deeproot.cli.main import main
from deeproot.crawler import storage
from deeproot.crawler.testsite import Faults, serve


def _crawl_args(base_url: str, out: str, *extra: str) -> list[str]:
    return [
        "crawl", "-c", CATS, "--base-url", base_url, "--out", out,
        "--delay", "0", "--backoff", "0.05", "--browser", "never", *extra,
    ]


def _remote_keys(lk: lake.Lake) -> list[str]:
    infos = lk.fs.get_file_info(pafs.FileSelector(lk.base, recursive=True, allow_not_found=True))
    return sorted(i.path[len(lk.base) + 1:] for i in infos if i.type == pafs.FileType.File)


def _one_line(err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, err
    return lines[0]


def test_crawl_build_and_refresh_through_a_bucket(
    s3_env: dict[str, str], lake_site: Path, lake_products: list[Any], tmp_path: Path, capsys
) -> None:
    make_bucket(s3_env["DEEPROOT_S3_ENDPOINT"], "lake-e2e")
    url = "s3://lake-e2e/shop/store"
    with serve(lake_site) as site:
        rc = main(_crawl_args(site.base_url, url))
        out, err = capsys.readouterr()
        assert rc == 0, err
        lk = lake.open_lake(url)
        [cid] = lk.remote_manifests()
        keys = _remote_keys(lk)
        assert keys == [
            f"crawls/{cid}.json",
            f"products/crawl_id={cid}/_SUCCESS",
            f"products/crawl_id={cid}/part-0.parquet",
        ]
        manifest = json.loads(lk.fs.open_input_stream(f"{lk.base}/crawls/{cid}.json").read())
        assert manifest["status"] == "complete"
        size = lk.fs.get_file_info(f"{lk.base}/products/crawl_id={cid}/part-0.parquet").size
        assert manifest["lake"]["files"] == {"part-0.parquet": size}

        # the store is a Hive-partitioned dataset any engine reads as it is
        table = ds.dataset(
            f"{lk.base}/products", filesystem=lk.fs, format="parquet", partitioning="hive"
        ).to_table()
        expected = {(p.goods_no, p.category) for p in lake_products}
        assert {(r["goods_no"], r["category"]) for r in table.to_pylist()} == expected
        assert set(table.column("crawl_id").to_pylist()) == {cid}

        # `deeproot catalog build --data s3://…`: the read cache holds exactly the remote's
        # crawl, and the catalog goes where a refresh of the URL keeps it
        capsys.readouterr()
        assert main(["catalog", "build", "--data", url, "--json"]) == 0
        built = json.loads(capsys.readouterr().out)
        assert built["n_products"] == len({p.goods_no for p in lake_products})
        assert built["db_path"] == str(lk.root / "catalog.duckdb")
        assert [m["crawl_id"] for m in storage.manifests(lk.read)] == [cid]

        # `deeproot refresh --data s3://…`: an incremental crawl published as a second partition
        capsys.readouterr()
        rc = main([
            "refresh", "--data", url, "--categories", CATS, "--base-url", site.base_url,
            "--delay", "0", "--backoff", "0.05", "--browser", "never", "--json",
        ])
        out, err = capsys.readouterr()
    assert rc == 7, err  # same site: nothing new
    report = json.loads(out)
    new_id = report["after"]["crawl_id"]
    assert new_id != cid and report["before"]["crawl_id"] == cid
    assert list(lk.remote_manifests()) == [cid, new_id]
    keys = _remote_keys(lk)
    assert f"reports/{new_id}.json" in keys and f"reports/{new_id}.md" in keys
    assert f"report: {lk.root / 'reports' / (new_id + '.json')}" in err
    # the refresh's catalog lives in the URL's local folder and has both crawls
    assert (lk.root / "catalog.duckdb").is_file()
    assert [m["crawl_id"] for m in storage.manifests(lk.read)] == [cid, new_id]
    # the CLI readers take the URL too
    capsys.readouterr()
    assert main(["changes", "--data", url, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["after"]["crawl_id"] == new_id
    assert main(["crawl", "list", "--out", url, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["crawls"]
    assert [(r["crawl_id"], r["status"]) for r in listed] == [
        (cid, "complete"), (new_id, "complete")
    ]
    assert main(["crawl", "prune", "--keep", "1", "--out", url]) == 3
    assert url in _one_line(capsys.readouterr().err)


def test_killed_crawl_leaves_nothing_visible_then_resume_publishes(
    s3_env: dict[str, str], lake_site: Path, tmp_path: Path, capsys
) -> None:
    make_bucket(s3_env["DEEPROOT_S3_ENDPOINT"], "lake-kill")
    url = "s3://lake-kill/store"
    lk = lake.open_lake(url)
    env = dict(os.environ, COLUMNS="200")
    with serve(lake_site, Faults(latency=0.02)) as site:
        argv = [sys.executable, "-m", "deeproot.cli.main", *_crawl_args(site.base_url, url)]
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        deadline = time.monotonic() + 60
        ckpt = None
        while time.monotonic() < deadline and proc.poll() is None:
            found = list((lk.stage / "crawls").glob("*.records.jsonl"))
            if found and len(storage.read_checkpoint(found[0])) >= 8:
                ckpt = found[0]
                break
            time.sleep(0.02)
        proc.kill()
        proc.wait()
        assert ckpt is not None, proc.stderr.read() if proc.stderr else ""
        # nothing of the crawl is on the remote store, and readers see no crawl
        assert _remote_keys(lk) == []
        assert lk.remote_manifests() == {}
        assert storage.manifests(lake.local_store(url)) == []
        time.sleep(0.5)  # the orphaned worker notices its parent is gone
        rc = main(_crawl_args(site.base_url, url, "--resume"))
        _, err = capsys.readouterr()
    assert rc == 0, err
    assert len(lk.remote_manifests()) == 1


class _FailOn:
    """A filesystem proxy whose writes fail like a dropped connection once `key` is reached."""

    def __init__(self, fs: Any, key: str) -> None:
        self._fs, self._key, self.failed = fs, key, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fs, name)

    def open_output_stream(self, path: str, *a: Any, **k: Any) -> Any:
        if path.endswith(self._key):
            self.failed += 1
            raise OSError(
                f"When uploading object '{path}': AWS Error NETWORK_CONNECTION during "
                "PutObject operation: curlCode: 7, Could not connect to server"
            )
        return self._fs.open_output_stream(path, *a, **k)


def test_network_failure_midway_publishes_nothing_and_next_run_publishes(
    s3_env: dict[str, str], lake_site: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    make_bucket(s3_env["DEEPROOT_S3_ENDPOINT"], "lake-net")
    url = "s3://lake-net/store"
    real_open = lake.open_lake
    proxies: list[_FailOn] = []

    def failing(u: str, endpoint: str | None = None) -> lake.Lake:
        lk = real_open(u, endpoint)
        proxies.append(_FailOn(lk.fs, "_SUCCESS"))  # data file written, then the link drops
        lk.fs = proxies[-1]
        return lk

    monkeypatch.setattr(lake, "open_lake", failing)
    with serve(lake_site) as site:
        rc = main(_crawl_args(site.base_url, url))
        _, err = capsys.readouterr()
        assert rc == 5, err
        line = _one_line(err)
        assert url in line and "network failure" in line and "published first by the next" in line
        assert proxies[0].failed == 1
        lk = real_open(url)
        keys = _remote_keys(lk)
        assert keys and all(k.endswith("part-0.parquet") for k in keys)  # data only, no manifest
        assert lk.remote_manifests() == {}
        assert storage.manifests(lake.local_store(url)) == []  # readers see nothing
        [staged] = lk.pending()
        monkeypatch.setattr(lake, "open_lake", real_open)
        # the next run publishes the staged crawl first, then crawls (incrementally) itself
        rc = main(_crawl_args(site.base_url, url, "--incremental"))
        _, err = capsys.readouterr()
    assert rc == 0, err
    ids = list(lk.remote_manifests())
    assert len(ids) == 2 and ids[0] == staged


def test_missing_bucket_is_a_one_line_config_error(s3_env: dict[str, str], capsys) -> None:
    url = "s3://no-such-bucket-here/store"
    rc = main(["crawl", "-c", CATS, "--base-url", "http://127.0.0.1:9", "--out", url,
               "--delay", "0"])
    _, err = capsys.readouterr()
    assert rc == 3
    line = _one_line(err)
    assert url in line and "does not exist" in line


def test_missing_credentials_is_a_one_line_config_error(
    s3_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE",
              "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE", "DEEPROOT_S3_DEFAULT_CHAIN"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.aws either
    url = "s3://lake-creds/store"
    for argv in (
        ["crawl", "-c", CATS, "--out", url, "--delay", "0"],
        ["changes", "--data", url],
    ):
        rc = main(argv)
        _, err = capsys.readouterr()
        assert rc == 3, err
        line = _one_line(err)
        assert url in line and "AWS_ACCESS_KEY_ID" in line


def test_unreachable_endpoint_is_a_network_error(
    s3_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setenv("DEEPROOT_S3_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    url = "s3://lake-down/store"
    rc = main(["changes", "--data", url])
    _, err = capsys.readouterr()
    assert rc == 5, err
    line = _one_line(err)
    assert url in line and "network failure" in line


def test_feed_import_into_a_bucket_once(s3_env: dict[str, str], tmp_path: Path, capsys) -> None:
    """`catalog import … --data s3://…` publishes the feed as one complete partition; the same
    feed again is recognised as already imported (nothing new published)."""
    from deeproot.catalog.feed import import_feed, parse_mapping

    make_bucket(s3_env["DEEPROOT_S3_ENDPOINT"], "lake-feed")
    url = "s3://lake-feed/store"
    feed = tmp_path / "feed.csv"
    feed.write_text(
        "sku,title,maker,inci,cat\n"
        'P-1,두피 토닉,브랜드A,"정제수, 살리실릭애씨드, 판테놀",scalp_tonic\n'
        'P-2,샴푸,브랜드B,"정제수, 징크피리치온",shampoo\n'
        ",이름만,브랜드C,정제수,shampoo\n",  # no id: reported and skipped
        encoding="utf-8",
    )
    mapping = parse_mapping("goods_no=sku,name=title,brand=maker,ingredients=inci,category=cat")
    rep = import_feed([feed], mapping, "partner", store=url)
    assert rep.status == "added" and rep.records == 2 and len(rep.skipped_rows) == 1
    lk = lake.open_lake(url)
    assert list(lk.remote_manifests()) == [rep.crawl_id]
    again = import_feed([feed], mapping, "partner", store=url)
    assert again.status == "unchanged" and again.crawl_id == rep.crawl_id
    assert list(lk.remote_manifests()) == [rep.crawl_id]
    rows = storage.read_partition(lake.local_store(url), rep.crawl_id)
    assert sorted(r["goods_no"] for r in rows) == ["P-1", "P-2"]
