"""The pure parsers on pages in the site's markup (rendered by the imitation site's templates)."""

from __future__ import annotations

from deeproot.crawler.parse import (
    DetailInfo,
    Notice,
    canonical,
    is_challenge,
    is_deleted,
    parse_detail,
    parse_listing,
    parse_notice,
    rebase,
    strip_tracking,
)
from deeproot.crawler.testsite import SiteProduct
from deeproot.crawler.testsite.render import (
    CHALLENGE_HTML,
    NOT_FOUND_HTML,
    detail_2025,
    detail_legacy,
    listing_page,
    notice_fragment,
)

CODE = "1000001000400080001"


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
    assert info == DetailInfo("브랜드1", p.name, 17600, 32000, 4.8, 89, p.image_url, "legacy")
    # without the price block the eg: meta tags are used
    html = detail_legacy(p, CODE)
    start, end = html.index('<div class="price">'), html.index('<p class="prd_flag"')
    info2 = parse_detail(html[:start] + html[end:])
    assert (info2.price_sale, info2.price_list) == (17600, 32000)


def test_detail_2025_matches_class_prefix_not_hash():
    p = product(3)
    a, b = detail_2025(p, CODE, "2025"), detail_2025(p, CODE, "other-seed")
    assert a != b  # different hashed class names
    expected = DetailInfo("브랜드3", p.name, 17600, 32000, 4.8, 2855, p.image_url, "2025")
    assert parse_detail(a) == parse_detail(b) == expected
    assert parse_detail("<html><body><p>nothing</p></body></html>") is None


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
