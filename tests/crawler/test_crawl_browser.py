"""`--browser auto|always|never`: Chromium when a page needs JavaScript or is a challenge."""

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

ARGS = ("-c", "scalp_pack_scaler")


@pytest.mark.browser
def test_auto_switches_to_chromium_on_a_challenge_and_renders_js(
    small_products, tmp_path, tmp_path_factory, capsys
):
    require_browser()
    products = [p for p in small_products if p.category == "scalp_pack_scaler"][:3]
    site_dir = build_site(products, tmp_path_factory.mktemp("site-js"))
    with serve(site_dir, Faults(js_listing=True)) as site:
        rc, stdout, err = crawl(
            capsys,
            *ARGS,
            "--base-url",
            site.base_url,
            "--out",
            str(tmp_path / "never"),
            "--browser",
            "never",
        )
    assert rc == 4
    assert (
        "  - listing scalp_pack_scaler: the listing announces 3 products "
        "but has no product cards (rendered by JavaScript? try --browser always)"
    ) in stdout
    # auto (the default): plain HTTP clients are challenged (the offline site tells browsers by
    # their Sec-Fetch-Mode header), so the crawl switches to Chromium, which also runs the
    # listing's JavaScript
    with serve(site_dir, Faults(js_listing=True, challenge_non_browser=True)) as site:
        rc, stdout, err = crawl(
            capsys,
            *ARGS,
            "--base-url",
            site.base_url,
            "--out",
            str(tmp_path / "auto"),
            "--timeout",
            "20",
        )
        plain = [r for r in site.log if r["fault"] == "challenge"]
    assert rc == 0, err
    assert len(plain) == 1  # one challenged plain request, then Chromium
    assert "switching this crawl to Chromium (same delay, same User-Agent)" in err
    assert "browser: switched to Chromium during this crawl" in stdout
    assert comparable(read_records(partitions(tmp_path / "auto")[0])) == expected_records(products)


def test_auto_without_chromium_says_how_to_install_and_stops_cleanly(
    small_products, tmp_path, tmp_path_factory, capsys, monkeypatch
):
    monkeypatch.setenv("DEEPROOT_CHROMIUM", str(tmp_path / "no-chromium"))
    products = [p for p in small_products if p.category == "scalp_pack_scaler"][:3]
    site_dir = build_site(products, tmp_path_factory.mktemp("site-nochrome"))
    with serve(site_dir, Faults(js_listing=True)) as site:
        rc, _, err = crawl(capsys, *ARGS, "--base-url", site.base_url, "--out", str(tmp_path / "d"))
    assert rc == 5
    lines = err.splitlines()
    assert lines[0] == (
        f"note: Chromium not found at {tmp_path / 'no-chromium'}; --browser auto carries on "
        "without it and stops if a page needs it (install it with `apt-get install chromium` "
        "or set DEEPROOT_CHROMIUM to its path)"
    )
    assert lines[-1].startswith("error: crawl stopped: ")
    assert lines[-1].endswith(
        "needs JavaScript and Chromium is not available; install it with `apt-get install "
        "chromium` or set DEEPROOT_CHROMIUM to its path, then rerun with --resume"
    )


def test_browser_requirement_skips_or_fails(monkeypatch):
    monkeypatch.setenv("DEEPROOT_CHROMIUM", "/nonexistent/chromium")
    monkeypatch.delenv("DEEPROOT_REQUIRE_BROWSER", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"Chromium not installed at /nonexistent/chr"):
        require_browser()
    monkeypatch.setenv("DEEPROOT_REQUIRE_BROWSER", "1")
    with pytest.raises(pytest.fail.Exception, match="DEEPROOT_REQUIRE_BROWSER=1 but Chromium is"):
        require_browser()
