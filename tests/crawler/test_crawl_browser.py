"""`--browser`: a listing whose cards exist only after JavaScript runs, rendered by Chromium."""

from __future__ import annotations

import pytest
from crawler_helpers import (
    comparable,
    crawl,
    expected_records,
    partitions,
    read_records,
    require_browser,
)

from deeproot.crawler.testsite import Faults, build_site, serve


@pytest.mark.browser
def test_js_listing_needs_browser(small_products, tmp_path, tmp_path_factory, capsys):
    require_browser()
    products = [p for p in small_products if p.category == "scalp_pack_scaler"][:6]
    site_dir = build_site(products, tmp_path_factory.mktemp("site-js"))
    out = tmp_path / "data"
    with serve(site_dir, Faults(js_listing=True)) as site:
        rc, stdout, err = crawl(
            capsys, "-c", "scalp_pack_scaler", "--base-url", site.base_url, "--out", str(out)
        )
        assert rc == 1
        assert err.splitlines()[-1] == "error: quality gates failed: no products were crawled"
        assert (
            "  - listing scalp_pack_scaler: the listing announces 6 products "
            "but has no product cards (rendered by JavaScript? try --browser)"
        ) in stdout
        rc, stdout, err = crawl(
            capsys,
            "-c",
            "scalp_pack_scaler",
            "--base-url",
            site.base_url,
            "--out",
            str(out),
            "--browser",
            "--timeout",
            "20",
        )
    assert rc == 0, err
    assert comparable(read_records(partitions(out)[0])) == expected_records(products)


def test_browser_requirement_skips_or_fails(monkeypatch):
    monkeypatch.setenv("DEEPROOT_CHROMIUM", "/nonexistent/chromium")
    monkeypatch.delenv("DEEPROOT_REQUIRE_BROWSER", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"Chromium not installed at /nonexistent/chr"):
        require_browser()
    monkeypatch.setenv("DEEPROOT_REQUIRE_BROWSER", "1")
    with pytest.raises(pytest.fail.Exception, match="DEEPROOT_REQUIRE_BROWSER=1 but Chromium is"):
        require_browser()
