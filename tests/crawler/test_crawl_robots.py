"""robots.txt as RFC 9309 reads it: groups, longest match, wildcards, crawl-delay, errors."""

from __future__ import annotations

from deeproot.crawler.robots import fetch_robots, parse_robots
from deeproot.crawler.testsite import Faults, build_site, serve

TEXT = """# comment
User-agent: Googlebot
Disallow: /

User-agent: *
Disallow: /store/
Allow: /store/display/getMCategoryList.do
Disallow: /*.json$
Crawl-delay: 5

User-agent: deeproot
User-agent: otherbot
Disallow: /store/goods/getGoodsDetail.do
Allow: /store/goods/
Disallow: /private*/x
"""


def test_our_group_longest_match_and_wildcards():
    r = parse_robots(TEXT, "https://x/robots.txt")
    assert r.group == "deeproot" and r.crawl_delay is None  # our group wins over *
    d = r.check("https://x/store/goods/getGoodsDetail.do?goodsNo=A000000000001")
    assert not d.allowed
    assert (
        d.why == "line 13: Disallow: /store/goods/getGoodsDetail.do (group `User-agent: deeproot`)"
    )
    assert r.check("https://x/store/goods/getGoodsArtcAjax.do").allowed  # Allow: /store/goods/
    assert not r.check("https://x/private-area/x/y").allowed
    assert r.check("https://x/store/display/getMCategoryList.do?dispCatNo=1").allowed
    assert r.check("https://x/").why == "no rule matches (group `User-agent: deeproot`)"


def test_star_group_crawl_delay_anchors_and_ties():
    r = parse_robots(TEXT, "https://x/robots.txt", agent="somebot")
    assert r.group == "*" and r.crawl_delay == 5
    assert r.check("https://x/store/display/getMCategoryList.do?x=1").allowed  # longer Allow
    assert not r.check("https://x/store/goods/getGoodsDetail.do").allowed
    assert not r.check("https://x/api/stats.json").allowed
    assert r.check("https://x/api/stats.json?x=1").allowed  # `$` anchors the end
    tie = parse_robots("User-agent: *\nDisallow: /a\nAllow: /a\n", "u")
    assert tie.check("https://x/a").allowed  # Allow wins a tie
    none = parse_robots("User-agent: googlebot\nDisallow: /\n", "u")
    assert none.group is None and none.check("https://x/anything").allowed


def test_fetch_answers(small_products, tmp_path_factory):
    site_dir = build_site(small_products[:2], tmp_path_factory.mktemp("site-r"))
    ua = "deeproot/test"
    for faults, state in (
        (Faults(robots_txt="User-agent: *\nDisallow: /\n"), "rules"),
        (Faults(robots_status=404), "allow_all"),
        (Faults(robots_status=403), "allow_all"),
        (Faults(robots_status=503), "disallow_all"),
        (Faults(robots_delay=1.5), "disallow_all"),
    ):
        with serve(site_dir, faults) as site:
            r = fetch_robots(site.base_url + "/store/x", ua, timeout=0.5)
        assert r.state == state, faults
        allowed = r.check(site.base_url + "/store/x").allowed
        assert allowed is (state == "allow_all")
