"""Lake fixtures: moto's S3 server on 127.0.0.1 (a real S3 protocol server) and a small site."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from deeproot.crawler.testsite import SiteProduct, build_site, load_deeproot_csvs


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per S3 request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture()
def s3_env(
    s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """Credentials, endpoint and a fresh lake cache for one test; returns the env for children."""
    env = {
        "AWS_ACCESS_KEY_ID": "deeproot-test",
        "AWS_SECRET_ACCESS_KEY": "deeproot-test-secret",
        "AWS_REGION": "us-east-1",
        "DEEPROOT_S3_ENDPOINT": s3_endpoint,
        "DEEPROOT_LAKE_CACHE": str(tmp_path / "lake-cache"),
        "DEEPROOT_S3_CONNECT_TIMEOUT": "2",
        "DEEPROOT_S3_REQUEST_TIMEOUT": "10",
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    return env


@pytest.fixture(scope="session")
def lake_products(crawl_dir: Path) -> list[SiteProduct]:
    """14 scalp tonics and 10 scalp packs of the original DeepRoot crawl."""
    allp = load_deeproot_csvs(crawl_dir)
    tonic = [p for p in allp if p.category == "scalp_tonic"][:14]
    pack = [p for p in allp if p.category == "scalp_pack_scaler"][:10]
    return tonic + pack


@pytest.fixture(scope="session")
def lake_site(lake_products: list[SiteProduct], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_site(lake_products, tmp_path_factory.mktemp("lake-site"), layout_mix=0.0)
