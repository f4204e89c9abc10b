"""Any fsspec URL works as a store (here `memory://`), and URLs versus paths."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deeproot import lake
from deeproot.crawler import storage


def _local_crawl(out: Path, crawl_id: str) -> None:
    rec = {
        "crawl_id": crawl_id, "crawled_at": "2026-12-01T00:00:00+00:00", "goods_no": "A1",
        "category": "scalp_tonic", "disp_cat_no": "1", "currency": "KRW",
        "product_url": "https://example.org/A1", "has_ingredients": True, "listing_rank": 1,
        "carried": False, "source_layout": "listing", "listing_hash": "h",
        "ingredients_text": "정제수, 글리세린",
    }
    storage.crawls_dir(out).mkdir(parents=True, exist_ok=True)
    storage.publish(out, crawl_id, [rec])
    storage.write_json_atomic(
        storage.manifest_path(out, crawl_id), {"crawl_id": crawl_id, "status": "complete"}
    )


def test_is_url() -> None:
    assert lake.is_url("s3://b/p") and lake.is_url("memory://x") and lake.is_url("gs://b")
    assert not lake.is_url("deeproot-data") and not lake.is_url("/abs/path")
    assert not lake.is_url("file:///tmp/x") and not lake.is_url(Path("s3:/b"))


def test_push_and_pull_through_fsspec_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("DEEPROOT_LAKE_CACHE", str(tmp_path / "cache"))
    lk = lake.open_lake("memory://deeproot-test-lake/store")
    cid = "20261201T000000Z-abcd"
    _local_crawl(lk.stage, cid)
    assert lk.pending() == [cid]
    assert lk.push(cid) is True and lk.push(cid) is False  # published once
    assert lk.pending() == []
    assert list(lk.remote_manifests()) == [cid]
    read = lake.local_store("memory://deeproot-test-lake/store")
    assert storage.read_partition(read, cid)[0]["ingredients_text"] == "정제수, 글리세린"
    # a remote manifest whose sizes disagree with the cached file: downloaded again
    part = storage.partition_dir(read, cid) / "part-0.parquet"
    part.write_bytes(b"damaged")
    assert lk.pull() == [cid]
    assert storage.read_partition(read, cid)[0]["goods_no"] == "A1"
    # removing the manifest on the remote hides the crawl; the read cache follows
    lk.fs.delete_file(f"{lk.base}/crawls/{cid}.json")
    assert lk.remote_manifests() == {}
    lk.pull()
    assert storage.manifests(read) == []
    # a manifest without the marker is not trusted
    lk.push(cid)
    lk.fs.delete_file(f"{lk.base}/products/crawl_id={cid}/_SUCCESS")
    assert lk.remote_manifests() == {}
    m = json.loads(lk.fs.open_input_stream(f"{lk.base}/crawls/{cid}.json").read())
    assert m["status"] == "complete" and m["lake"]["files"]["part-0.parquet"] > 0
