"""Category codes from configuration, and the politeness defaults as real code paths."""

from __future__ import annotations

import pytest
from crawler_helpers import comparable, crawl, expected_records, partitions, read_records

from deeproot.crawler import config
from deeproot.crawler.config import load_site_config
from deeproot.crawler.settings import make_settings, scrapy_settings
from deeproot.crawler.testsite import build_site, serve
from deeproot.errors import InputError
from deeproot.taxonomy import CATEGORIES

NEW_CODE = "1000001000400140001"


def test_shipped_config_matches_taxonomy(monkeypatch, tmp_path):
    cfg = load_site_config()
    assert cfg.site_url == "https://www.oliveyoung.co.kr"
    assert [(c.key, c.name, c.disp_cat_no) for c in cfg.categories] == [
        (c.key, c.ko, c.disp_cat_no) for c in CATEGORIES
    ]
    # an install without the YAML (no package data) falls back to the same taxonomy defaults
    monkeypatch.setattr(config, "CATEGORIES_FILE", tmp_path / "absent.yaml")
    assert load_site_config() == cfg


def test_config_override_and_errors(tmp_path):
    f = tmp_path / "cats.yaml"
    f.write_text(f'categories:\n  scalp_tonic: {{disp_cat_no: "{NEW_CODE}"}}\n', encoding="utf-8")
    cfg = load_site_config(f)
    assert cfg.get("scalp_tonic").disp_cat_no == NEW_CODE
    assert cfg.get("scalp_tonic").name == "헤어토닉/두피토닉"
    assert cfg.get("shampoo").disp_cat_no == "1000001000400080001"
    f.write_text("categories:\n  lotion: {disp_cat_no: '1'}\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"^unknown category 'lotion'; valid: shampoo \(샴푸\), "):
        load_site_config(f)
    f.write_text("categories:\n  shampoo: {disp_cat_no: '12ab'}\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"category shampoo disp_cat_no '12ab' must be digits$"):
        load_site_config(f)
    f.write_text("sites: x\n", encoding="utf-8")
    with pytest.raises(
        InputError, match=r"unknown top-level keys \['sites'\]; use site, categories"
    ):
        load_site_config(f)
    with pytest.raises(InputError, match="not found; pass an existing YAML file"):
        load_site_config(tmp_path / "missing.yaml")


def test_moved_category_code_reported_then_fixed_by_config(
    small_products, tmp_path, tmp_path_factory, capsys
):
    site_dir = build_site(
        small_products, tmp_path_factory.mktemp("site-moved"), codes={"scalp_tonic": NEW_CODE}
    )
    out = tmp_path / "data"
    cats = "scalp_tonic,scalp_pack_scaler"
    with serve(site_dir) as site:
        rc, stdout, err = crawl(capsys, "-c", cats, "--base-url", site.base_url, "--out", str(out))
        # an empty category is a loss, never a "complete" crawl (issue 15): exit 4
        assert rc == 4, err
        assert err.splitlines()[-1] == (
            "error: quality gates failed: category scalp_tonic: no products (the listing "
            "failed). Nothing was published; rerun with --resume to retry what failed"
        )
        assert partitions(out) == []
        lines = stdout.splitlines()
        assert lines[2].split() == ["scalp_tonic", "-", "0", "0", "0", "0", "0", "0", "0"]
        assert (
            "  - category scalp_tonic: code 1000001000400130004 did not answer with a product "
            "listing; the code may have changed (see --config) ("
        ) in stdout
        cfg = tmp_path / "cats.yaml"
        cfg.write_text(
            f"categories:\n  scalp_tonic: {{disp_cat_no: '{NEW_CODE}', name: 두피토닉}}\n",
            encoding="utf-8",
        )
        rc, stdout, err = crawl(
            capsys, "-c", cats, "--base-url", site.base_url, "--out", str(out), "--config", str(cfg)
        )
    assert rc == 0, err
    assert (
        "warning: category scalp_tonic: listing title '헤어토닉/두피토닉' differs from the "
        "configured name '두피토닉'; check the code in the config"
    ) in stdout.splitlines()
    expected = expected_records(small_products, cats=("scalp_tonic", "scalp_pack_scaler"))
    for key, rec in expected.items():
        if key[1] == "scalp_tonic":
            rec["disp_cat_no"] = NEW_CODE
    assert comparable(read_records(partitions(out)[-1])) == expected


def test_politeness_defaults(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPROOT_CONTACT", "data-team@example.org")
    s = make_settings(out=tmp_path / "d")
    assert (s.delay, s.jitter, s.autothrottle, s.obey_robots) == (2.5, 0.5, True, True)
    assert s.base_url == s.site_url == "https://www.oliveyoung.co.kr"
    d = scrapy_settings(s)
    assert d["CONCURRENT_REQUESTS"] == d["CONCURRENT_REQUESTS_PER_DOMAIN"] == 1
    # robots.txt is ours (fetched once, RFC 9309 errors), not Scrapy's middleware
    assert d["ROBOTSTXT_OBEY"] is False and d["AUTOTHROTTLE_ENABLED"] is True
    assert d["DOWNLOAD_MAXSIZE"] == 8 * 1024 * 1024  # decompressed size too (Scrapy >= 2.11)
    assert d["LOG_LEVEL"] == "WARNING"  # Scrapy's own log only at DEBUG (-vv)
    assert s.browser_mode == "auto" and s.browser is False and s.details is False
    low = d["DOWNLOAD_DELAY"] * (1 - d["DOWNLOAD_DELAY_JITTER"])
    high = d["DOWNLOAD_DELAY"] * (1 + d["DOWNLOAD_DELAY_JITTER"])
    assert (round(low, 9), round(high, 9)) == (2.5, 3.75)
    assert d["USER_AGENT"] == (
        "deeproot/0.1.0 (scalp-care catalog crawler; contact: data-team@example.org)"
    )
    assert d["RETRY_ENABLED"] is False  # ours: backoff and Retry-After
    assert "DOWNLOAD_HANDLERS" not in d
    off = scrapy_settings(make_settings(out=tmp_path / "d", delay=0))
    assert off["DOWNLOAD_DELAY"] == 0 and off["AUTOTHROTTLE_ENABLED"] is False
    assert make_settings(out=tmp_path / "d", ignore_robots=True).obey_robots is False
    monkeypatch.setenv("DEEPROOT_CHROMIUM", str(tmp_path / "no-chromium"))
    with pytest.raises(
        InputError, match=r"^--browser always needs Chromium at .*no-chromium; install it with"
    ):
        make_settings(out=tmp_path / "d", browser="always")
    assert make_settings(out=tmp_path / "d").chromium_ok is False  # auto carries on without it
    with pytest.raises(InputError, match=r"--browser 'sometimes': use one of auto, always, never"):
        make_settings(out=tmp_path / "d", browser="sometimes")


def test_delay_spaces_every_request(small_products, tmp_path, tmp_path_factory, capsys):
    products = [p for p in small_products if p.category == "scalp_pack_scaler"][:3]
    site_dir = build_site(products, tmp_path_factory.mktemp("site-3"))
    with serve(site_dir) as site:
        rc, _, err = main_with_delay(capsys, site.base_url, tmp_path / "data")
    assert rc == 0, err
    times = [r["t"] for r in site.log if r["kind"] != "robots"]  # robots.txt: before the worker
    assert len(times) >= 4  # listing, 3 notices (+ review stats where the count is capped)
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    # gaps are drawn from [0.3, 0.45] s; arrival times at the server wobble a little under load
    assert min(gaps) >= 0.3 - 0.06
    assert max(gaps) - min(gaps) > 0.02  # jittered, not a fixed beat


def main_with_delay(capsys, base_url: str, out) -> tuple[int, str, str]:
    from deeproot.cli.main import main

    capsys.readouterr()
    rc = main(
        [
            "crawl",
            "-c",
            "scalp_pack_scaler",
            "--base-url",
            base_url,
            "--out",
            str(out),
            "--delay",
            "0.3",
            "--no-autothrottle",
        ]
    )
    o, e = capsys.readouterr()
    return rc, o, e
