"""The pure parsers on pages in the site's markup (rendered by the imitation site's templates)."""

from __future__ import annotations

from pathlib import Path

from deeproot.crawler.parse import (
    DetailInfo,
    Notice,
    ReviewStats,
    canonical,
    is_challenge,
    is_deleted,
    parse_detail,
    parse_listing,
    parse_notice,
    parse_review_stats,
    rebase,
    stop_reason,
    strip_tracking,
)
from deeproot.crawler.testsite import SiteProduct
from deeproot.crawler.testsite.render import (
    AKAMAI_HTML,
    CHALLENGE_HTML,
    CHALLENGE_LATE_HTML,
    NOT_FOUND_HTML,
    detail_2025,
    detail_legacy,
    listing_page,
    notice_fragment,
)

CODE = "1000001000400080001"
FIXTURES = Path(__file__).with_name("fixtures")


def product(i: int, **kw) -> SiteProduct:
    base = dict(
        goods_no=f"A{i:012d}",
        category="shampoo",
        brand=f"브랜드{i}",
        name=f"제품 {i} 400ml & 리필 <기획>",
        price_sale=17600,
        price_list=32000 if i % 2 else 17600,
        rating=4.8,
        review_count=2855 if i % 3 == 0 else 89,
        image_url=f"https://image.oliveyoung.co.kr/uploads/images/goods/550/10/0000/0021/A{i:012d}03ko.jpg?l=ko",
        ingredients_text="정제수, 글리세린, 1,2-헥산다이올",
    )
    return SiteProduct(**(base | kw))


def test_listing_cards_every_goodsno_source_and_field():
    products = [product(i) for i in range(1, 8)]
    page = parse_listing(listing_page("shampoo", CODE, products, 1, 24))
    assert [c.goods_no for c in page.cards] == [p.goods_no for p in products]
    assert page.total == 7 and page.title == "샴푸" and page.max_page_link is None
    # rank 3: goodsNo only in the href; rank 5: only in criteo-goods (href is javascript:)
    assert page.cards[2].href.startswith("https://www.oliveyoung.co.kr/store/goods/getGoodsDetail")
    assert page.cards[4].href is None
    c = page.cards[0]
    assert (c.brand, c.name) == ("브랜드1", "제품 1 400ml & 리필 <기획>")
    assert (c.price_sale, c.price_list) == (17600, 32000)
    assert (page.cards[1].price_sale, page.cards[1].price_list) == (17600, 17600)
    assert c.rating == 4.8  # width 96% / 20, never the "10점만점에 5.5점" placeholder
    assert c.review_count_text == "(89)" and page.cards[2].review_count_text == "(999+)"
    assert c.image_url.endswith("/400/10/0000/0021/A00000000000103ko.jpg?l=ko")
    assert c.fingerprint() != page.cards[1].fingerprint() and len(c.fingerprint()) == 16


def test_listing_paging_links():
    products = [product(i) for i in range(1, 300)]
    page = parse_listing(listing_page("shampoo", CODE, products, 1, 24))
    assert len(page.cards) == 24 and page.total == 299
    assert page.max_page_link == 11  # pages 2..10 and "next 10"


def test_detail_legacy_and_meta_fallback():
    p = product(1)
    info = parse_detail(detail_legacy(p, CODE))
    assert info == DetailInfo(
        "브랜드1", p.name, 17600, 32000, 4.8, 89, p.image_url, "legacy", sold_out=False
    )
    assert parse_detail(detail_legacy(product(1, sold_out=True), CODE)).sold_out is True
    # without the price block the eg: meta tags are used
    html = detail_legacy(p, CODE)
    start, end = html.index('<div class="price">'), html.index('<p class="prd_flag"')
    info2 = parse_detail(html[:start] + html[end:])
    assert (info2.price_sale, info2.price_list) == (17600, 32000)


def test_detail_2025_golden_fixtures_every_field_by_prefix():
    """Every field of issue 14's table from fixture pages in the real structure; the two
    fixtures differ only in their hashed class suffixes."""
    a = (FIXTURES / "detail_2025_a.html").read_text(encoding="utf-8")
    b = (FIXTURES / "detail_2025_b.html").read_text(encoding="utf-8")
    assert a != b and "__gZoOZ" in a and "__gZoOZ" not in b
    image = (
        "https://image.oliveyoung.co.kr/cfimages/cf-goods/uploads/images/thumbnails/550/10/"
        "0000/0021/A00000090000103ko.jpg?l=ko"
    )
    expected = DetailInfo(
        brand="예시브랜드",
        name="예시브랜드 허브 스칼프 스케일링 샴푸 400ml",
        price_sale=28000,
        price_list=32000,
        rating=4.8,
        review_count=62,
        image_url=image,
        layout="2025",
        sold_out=False,
    )
    assert parse_detail(a) == parse_detail(b) == expected
    plain = parse_detail((FIXTURES / "detail_2025_plain.html").read_text(encoding="utf-8"))
    assert plain == DetailInfo(
        brand="닥터포헤어",
        name="닥터포헤어 폴리젠 스칼프 토닉 100ml",
        price_sale=19800,
        price_list=19800,  # no price-before: not discounted
        rating=4.6,
        review_count=1204,
        image_url=(
            "https://image.oliveyoung.co.kr/cfimages/cf-goods/uploads/images/thumbnails/550/10/"
            "0000/0019/A00000019092807ko.jpg?l=ko"
        ),  # og:image
        layout="2025",
        sold_out=False,
    )
    assert parse_detail("<html><body><p>nothing</p></body></html>") is None


def test_detail_2025_offline_site_matches_the_real_structure():
    p = product(3)
    a, b = detail_2025(p, CODE, "2025"), detail_2025(p, CODE, "other-seed")
    assert a != b  # different hashed class names
    expected = DetailInfo(
        "브랜드3", p.name, 17600, 32000, 4.8, 2855, p.image_url, "2025", sold_out=False
    )
    assert parse_detail(a) == parse_detail(b) == expected
    assert parse_detail(detail_2025(product(3, sold_out=True), CODE)).sold_out is True


def test_listing_cards_sold_out_and_capped_counts():
    page = parse_listing((FIXTURES / "listing_cards.html").read_text(encoding="utf-8"))
    capped, exact = page.cards
    assert (capped.goods_no, capped.sold_out, capped.review_capped) == ("A000000900001", True, True)
    assert capped.review_count is None and capped.rating == 4.8
    assert (exact.sold_out, exact.review_capped, exact.review_count) == (False, False, 57)
    assert exact.rating == 4.5 and exact.price_list == exact.price_sale == 12900
    # a sold-out flag changes the listing fingerprint (an incremental crawl sees it)
    assert (
        capped.fingerprint()
        != type(capped)(**(capped.__dict__ | {"sold_out": False})).fingerprint()
    )


def test_review_stats_json():
    body = (FIXTURES / "review_stats.json").read_text(encoding="utf-8")
    assert parse_review_stats(body) == ReviewStats(rating=4.7, review_count=12345)
    assert parse_review_stats('{"data": {"reviewCount": "2,048"}}') == ReviewStats(None, 2048)
    for bad in ("", "<html>blocked</html>", '{"data": null}', '{"status": "FAIL"}', "[1]"):
        assert parse_review_stats(bad) is None


def test_notice_variants():
    text = "정제수, 글리세린, 1,2-헥산다이올"
    assert parse_notice(notice_fragment(product(1))) == Notice("ok", text)
    br = parse_notice(notice_fragment(product(1, dd_variant="br")))
    assert br == Notice("ok", "정제수\n글리세린\n1,2-헥산다이올")
    opt = parse_notice(notice_fragment(product(1, dd_variant="options")))
    assert opt.text == f"1. 브랜드1 본품 : {text}\n\n2. 브랜드1 리필 : {text}"
    ph = parse_notice(notice_fragment(product(1, ingredients_text="상세페이지 참고")))
    assert ph == Notice("ok", "상세페이지 참고")  # placeholders are stored verbatim
    assert parse_notice(notice_fragment(product(1, ingredients_text=None))) == Notice(
        "missing", None
    )
    assert parse_notice("") == Notice("empty", None)
    assert parse_notice('<dl class="detail_info_list"></dl>') == Notice("empty", None)
    amp = parse_notice(notice_fragment(product(1, ingredients_text="A&B <C>, 물")))
    assert amp.text == "A&B <C>, 물"
    spaced = (
        '<dl class="detail_info_list"><dt>화장품법에 따라  기재해야 하는 모든 성분 </dt>'
        "<dd> 물 </dd></dl>"
    )
    assert parse_notice(spaced) == Notice("ok", "물")
    table = (
        "<table><tr><th>제조국</th><td>한국</td></tr>"
        "<tr><th>화장품법에 따라 기재해야 하는 모든 성분</th><td>물<br>향료</td></tr></table>"
    )
    assert parse_notice(table) == Notice("ok", "물\n향료")
    claim = "탈모 증상의 완화에 도움을 주는 기능성 화장품"
    with_claim = parse_notice(notice_fragment(product(1, functional_claim=claim)))
    assert with_claim == Notice("ok", text, claim)
    assert parse_notice(
        '<dl class="detail_info_list"><dt>기능성 화장품 식품의약품안전처 심사필 유무</dt>'
        "<dd>해당사항 없음</dd></dl>"
    ) == Notice("missing", None, "해당사항 없음")


def test_detail_page_delivery_blocks_are_not_ingredients():
    assert parse_notice(detail_legacy(product(1), CODE)) == Notice("missing", None)


def test_challenge_and_deleted_pages():
    assert is_challenge(CHALLENGE_HTML)
    assert is_challenge("<html></html>", {"cf-mitigated": "challenge"})
    assert not is_challenge(detail_legacy(product(1), CODE))
    ordinary = (
        "<html><head><title>샴푸 | 올리브영</title></head><body><div class='loading'>잠시만 기다려 "
        "주세요</div><script src='/cdn-cgi/challenge-platform/scripts/jsd/main.js'></script></body>"
    )
    assert not is_challenge(ordinary)
    assert is_challenge("<html><head><title>Just a moment...</title></head></html>")
    # markers after 40 KB of script, under an ordinary title: the whole body is searched
    assert CHALLENGE_LATE_HTML.index("_cf_chl_opt") > 40 * 1024
    assert "잠시만" not in CHALLENGE_LATE_HTML and "Just a moment" not in CHALLENGE_LATE_HTML
    assert stop_reason(403, CHALLENGE_LATE_HTML) == "challenge"
    assert stop_reason(200, "<html></html>", {"cf-mitigated": "challenge"}) == "challenge"
    assert stop_reason(403, AKAMAI_HTML) == "blocked"  # Akamai: Access Denied / Reference #
    assert stop_reason(200, AKAMAI_HTML) is None  # only as a 403
    assert stop_reason(403, "<html>Forbidden</html>") is None  # bare 403s count elsewhere
    assert is_deleted(NOT_FOUND_HTML) and not is_deleted(detail_legacy(product(1), CODE))


def test_urls():
    link = (
        "https://www.oliveyoung.co.kr/store/goods/getGoodsDetail.do?goodsNo=A000000123456"
        "&dispCatNo=1000001000400080001&trackingCd=Cat1_Small&t_page=x&t_number=1"
    )
    site = "https://www.oliveyoung.co.kr"
    clean = "https://www.oliveyoung.co.kr/store/goods/getGoodsDetail.do?goodsNo=A000000123456"
    assert strip_tracking(link) == clean
    local = rebase(clean, site, "http://127.0.0.1:8000/mirror")
    assert (
        local == "http://127.0.0.1:8000/mirror/store/goods/getGoodsDetail.do?goodsNo=A000000123456"
    )
    assert rebase("https://image.oliveyoung.co.kr/a.jpg", site, "http://127.0.0.1:1") == (
        "https://image.oliveyoung.co.kr/a.jpg"
    )
    assert rebase("/store/x.do", site, "http://127.0.0.1:1") == "http://127.0.0.1:1/store/x.do"
    assert canonical(local + "&dispCatNo=1", site, "http://127.0.0.1:8000/mirror") == clean
