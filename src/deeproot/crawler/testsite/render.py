# ruff: noqa: E501 - HTML templates read better unwrapped
"""HTML of the imitation site, in the real site's markup (research notes §2): listing pages, legacy
and 2025-style detail pages, notice fragments, the not-found page and the Cloudflare interstitial."""

from __future__ import annotations

import hashlib
from html import escape
from urllib.parse import quote

from deeproot.crawler.config import DETAIL_PATH, LISTING_PATH, SITE_URL
from deeproot.crawler.testsite.model import SiteProduct
from deeproot.taxonomy import category

INGREDIENT_LABEL = "화장품법에 따라 기재해야 하는 모든 성분"
CLAIM_LABEL = "기능성 화장품 식품의약품안전처 심사필 여부"
CARDS_START, CARDS_END = "<!--cards-->", "<!--/cards-->"

NOT_FOUND_HTML = """<!DOCTYPE html><html lang="ko"><head><meta charset="utf-8">
<title>올리브영</title></head><body><div id="Contents"><div class="error-page noProduct">
<p class="tit">상품을 찾을 수 없습니다</p><p>판매가 종료되었거나 삭제된 상품입니다.</p>
</div></div></body></html>"""

AKAMAI_HTML = """<HTML><HEAD>
<TITLE>Access Denied</TITLE>
</HEAD><BODY>
<H1>Access Denied</H1>

You don't have permission to access "http&#58;&#47;&#47;www&#46;oliveyoung&#46;co&#46;kr&#47;store&#47;" on this server.<P>
Reference&#32;&#35;18&#46;2d4e1402&#46;1764000000&#46;1a2b3c4d
<P>https&#58;&#47;&#47;errors&#46;edgesuite&#46;net&#47;18&#46;2d4e1402&#46;1764000000&#46;1a2b3c4d</P>
</BODY>
</HTML>"""

# A challenge page whose only markers come after 40 KB of inline script, under an ordinary title
# (the shape of the real page the issue describes; the script body here is filler).
CHALLENGE_LATE_HTML = (
    '<!DOCTYPE html><html lang="en-US"><head><title>www.oliveyoung.co.kr</title>'
    "<script>window.__cf$cv$params={r:'8f1c2a'};"
    + "var _pad='"
    + "x" * 41000
    + "';"
    + '</script></head><body><div class="main-wrapper" role="main">'
    "<script>(function(){window._cf_chl_opt={cvId: '3',cZone: 'www.oliveyoung.co.kr'};})();"
    '</script><noscript><span id="challenge-error-text">Enable JavaScript and cookies to '
    "continue</span></noscript></div></body></html>"
)

CHALLENGE_HTML = """<!DOCTYPE html><html lang="ko-KR"><head><title>잠시만 기다려 주세요...</title>
<meta http-equiv="refresh" content="390"></head><body><div class="main-wrapper" role="main">
<div class="main-content"><h1 class="zone-name-title h1">www.oliveyoung.co.kr</h1>
<noscript><div class="h2"><span id="challenge-error-text">Enable JavaScript and cookies to continue
</span></div></noscript></div></div>
<script src="/cdn-cgi/challenge-platform/h/g/orchestrate/chl_page/v1"></script></body></html>"""


def _e(s: object) -> str:
    return escape(str(s), quote=True)


def _won(n: int) -> str:
    return f"{n:,}"


def listing_image(url: str) -> str:
    """The listing thumbnail of a detail image (400 px instead of 550 px)."""
    return url.replace("/550/", "/400/")


def review_count_listing(n: int) -> str:
    return "(999+)" if n > 999 else f"({n:,})"


def _card(p: SiteProduct, code: str, rank: int) -> str:
    name = category(p.category).ko
    href = (
        f"{SITE_URL}{DETAIL_PATH}?goodsNo={p.goods_no}&dispCatNo={code}"
        f"&trackingCd=Cat{code}_Small&t_page={quote('카테고리관')}"
        f"&t_click={quote(name)}_{quote('소')}_{quote(name)}__{quote('상품상세')}&t_number={rank}"
    )
    ref = f' data-ref-goodsno="{p.goods_no}"'
    if rank % 7 == 3:  # goodsNo only in the href
        ref = ""
    if rank % 11 == 5:  # goodsNo only in criteo-goods
        ref, href = "", "javascript:;"
    info_cls = "prd_info " if rank % 5 == 2 else "prd_info"
    org = (
        f'<span class="tx_org"><span class="tx_num">{_won(p.price_list)}</span>원 </span>'
        if p.price_list != p.price_sale
        else ""
    )
    # some 2025-26 cards carry an empty star width ("width:%", research notes §2.1)
    width = "" if rank % 17 == 8 else f"{round(p.rating * 20, 1):g}"
    best = '<span class="thumb_flag best">베스트</span>' if rank <= 3 else ""
    soldout = '<span class="status_flag soldout">일시품절</span>' if p.sold_out else ""
    return f"""<li class="{"flag" if rank % 4 == 1 else ""}" criteo-goods="{p.goods_no}001" data-index="{rank - 1}">
<div class="{info_cls}">
<a class="prd_thumb goodsList" name="Cat{code}_Small" href="{_e(href)}"{ref} data-ref-dispcatno="{code}" data-ref-itemno="001">
{best}<img src="{_e(listing_image(p.image_url))}" alt="{_e(p.name)}" onerror="common.errorImg(this);">{soldout}
</a>
<div class="prd_name"><a href="javascript:;" class="goodsList" data-ref-goodsno="{p.goods_no}" data-ref-itemno="001">
<span class="tx_brand">{_e(p.brand)}</span>
<p class="tx_name">{_e(p.name)}</p>
</a></div>
<button class="btn_zzim jeem" data-ref-goodsno="{p.goods_no}"><span>찜하기전</span></button>
<p class="prd_price">{org}<span class="tx_cur"><span class="tx_num">{_won(p.price_sale)}</span>원 </span></p>
<p class="prd_flag"><span class="icon_flag sale">세일</span><span class="icon_flag delivery">오늘드림</span></p>
<p class="prd_point_area tx_num"><span class="review_point"><span class="point" style="width: {width}%">10점만점에 5.5점</span></span>{review_count_listing(p.review_count)}</p>
<p class="prd_btn_area"><button class="cartBtn" data-ref-goodsno="{p.goods_no}" data-ref-dispcatno="{code}" data-ref-itemno="001">장바구니</button></p>
</div>
</li>"""


def _pageing(page: int, pages: int) -> str:
    if pages <= 1:
        return '<div class="pageing"></div>'
    block = (page - 1) // 10
    first, last = block * 10 + 1, min(block * 10 + 10, pages)
    parts = []
    if block:
        parts.append(
            f'<a class="prev" href="javascript:void(0);" data-page-no="{first - 1}">이전 10 페이지</a>'
        )
    for n in range(first, last + 1):
        if n == page:
            parts.append(f'<strong title="현재 페이지">{n}</strong>')
        else:
            parts.append(f'<a href="javascript:void(0);" data-page-no="{n}">{n}</a>')
    if last < pages:
        parts.append(
            f'<a class="next" href="javascript:void(0);" data-page-no="{last + 1}">다음 10 페이지</a>'
        )
    return '<div class="pageing">' + "".join(parts) + "</div>"


def listing_page(cat_key: str, code: str, products: list[SiteProduct], page: int, rows: int) -> str:
    """One listing page (`getMCategoryList.do`) of a category, cards in rows of four."""
    cat = category(cat_key)
    total = len(products)
    pages = max(1, -(-total // rows))
    start = (page - 1) * rows
    chunk = products[start : start + rows]
    uls = []
    for i in range(0, len(chunk), 4):
        cards = "\n".join(_card(p, code, start + i + j + 1) for j, p in enumerate(chunk[i : i + 4]))
        uls.append(f'<ul class="cate_prd_list gtm_cate_list">\n{cards}\n</ul>')
    return f"""<!DOCTYPE html><html lang="ko"><head><meta charset="utf-8">
<title>{_e(cat.ko)} | 올리브영</title></head><body>
<div id="Contents">
<div class="page_location"><ul class="loc_history"><li><a class="cate_y">헤어케어</a></li>
<li><a class="cate_y" data-ref-dispcatno="{code}">{_e(cat.ko)}</a></li></ul></div>
<div class="titBox"><h1>{_e(cat.ko)}</h1></div>
<p class="cate_info_tx">{_e(cat.ko)} 카테고리에 <span> {total} </span> 개의 상품이 등록되어 있습니다.</p>
<div class="cate_align_box"><div class="align_sort"><ul>
<li class="on"><a href="javascript:;" data-prdsoting="01">인기순</a></li>
<li><a href="javascript:;" data-prdsoting="02">신상품순</a></li>
<li><a href="javascript:;" data-prdsoting="03">판매순</a></li>
<li><a href="javascript:;" data-prdsoting="05">낮은 가격순</a></li>
<li><a href="javascript:;" data-prdsoting="09">할인율순</a></li></ul></div>
<div class="count_sort tx_num"><span class="tx_view">VIEW</span><ul>
<li{' class="on"' if rows == 24 else ""}><a title="24개씩 보기">24</a></li><li{' class="on"' if rows == 36 else ""}><a>36</a></li><li{' class="on"' if rows == 48 else ""}><a>48</a></li></ul></div></div>
{CARDS_START}
{chr(10).join(uls)}
{CARDS_END}
{_pageing(page, pages)}
</div>
<div id="Footer"><a href="{SITE_URL}{LISTING_PATH}?dispCatNo={code}">{_e(cat.ko)}</a></div>
</body></html>"""


def class_hash(name: str, seed: str) -> str:
    """A CSS-module style hash suffix (`ReviewArea_rating-star__al_PT`), stable per seed."""
    h = hashlib.sha1(f"{seed}:{name}".encode()).hexdigest()
    return name + "__" + h[:5]


_STATIC_DL = """<h3 class="detail_tit mgT40">배송안내</h3>
<dl class="detail_info_list" id="dlexAjaxInfo"><dt>배송비/배송가능일</dt><dd>[일반 배송] 배송지역 : 전국<br>배송비 : 2,500원</dd></dl>
<h3 class="detail_tit mgT40">교환/반품/환불 안내</h3>
<dl class="detail_info_list"><dt>교환/반품 신청 방법</dt><dd>고객센터 또는 마이페이지에서 신청</dd></dl>
<dl class="detail_info_list"><dt>교환/반품 신청 기간</dt><dd>수령 후 15일 이내</dd></dl>"""


def detail_legacy(p: SiteProduct, code: str) -> str:
    """A detail page in the pre-2025 layout."""
    price1 = (
        f'<span class="price-1"><strike>{_won(p.price_list)}</strike><span>원</span></span>'
        if p.price_list != p.price_sale
        else ""
    )
    cat = category(p.category)
    return f"""<!DOCTYPE html><html lang="ko"><head><meta charset="utf-8">
<title>{_e(p.name)} | 올리브영</title>
<meta property="eg:brandName" content="{_e(p.brand)}">
<meta property="eg:itemName" content="{_e(p.name)}">
<meta property="eg:category3" content="{code}">
<meta property="eg:itemImage" content="{_e(p.image_url)}">
<meta property="eg:originalPrice" content="{p.price_list}">
<meta property="eg:salePrice" content="{p.price_sale}">
<meta property="eg:itemUrl" content="{SITE_URL}{DETAIL_PATH}?goodsNo={p.goods_no}">
</head><body>
<div id="Contents">
<div class="page_location"><a class="cate_y" id="midCatNm">헤어케어</a> <a class="cate_y" id="dtlCatNm">{_e(cat.ko)}</a></div>
<div class="prd_detail_box renew">
<div class="left_area">
<div class="prd_img"><img id="mainImg" src="{_e(p.image_url)}" alt="{_e(p.name)}"></div>
<ul class="prd_thumb_list" id="prd_thumb_list"><li class="sel"><a data-img="{_e(p.image_url)}"><img src="{_e(p.image_url.replace("/550/", "/85/"))}"></a></li></ul>
<div class="prd_social_info"><p id="repReview"><strong>고객 리뷰</strong>
<span class="review_point"><span class="point" style="width:{p.rating * 20:.1f}%"></span></span>
<b>{p.rating:.1f}</b>
<em>({p.review_count:,}건)</em></p></div>
</div>
<div class="right_area"><div class="prd_info">
<p class="prd_brand"><a id="moveBrandShop" class="pd_arrow_link">{_e(p.brand)}</a></p>
<p class="prd_name">{_e(p.name)}</p>
<div class="price">{price1}<span class="price-2"><strong>{_won(p.price_sale)}</strong><span>원</span></span></div>
<p class="prd_flag" id="icon_area"><span class="icon_flag sale">세일</span></p>
{'<button class="btnSoldout" disabled>일시품절</button>' if p.sold_out else '<button class="btnBuy">바로구매 하기</button>'}
</div></div>
</div>
<ul class="prd_detail_tab" id="tabList"><li class="on" id="productInfo"><a class="goods_detailinfo">상품설명</a></li>
<li id="buyInfo"><a class="goods_buyinfo">구매정보</a></li>
<li id="reviewInfo"><a class="goods_reputation">리뷰<span>({p.review_count:,})</span></a></li></ul>
<div class="tabConts prd_detail_cont show"><div class="contEditor"><img src="{_e(p.image_url)}"></div></div>
<div class="tabConts prd_detail_cont"><h3 class="detail_tit">상품정보 제공고시</h3>
<div id="kcInfo"></div><div id="artcInfo"></div>
{_STATIC_DL}
</div>
</div></body></html>"""


def detail_2025(p: SiteProduct, code: str, seed: str = "2025") -> str:
    """A detail page in the real 2025 layout (issue 14's table): CSS-module classes with hashed
    suffixes, brand in the top utilities, sale price in `GoodsDetailInfo_price__ > span`, list
    price in `GoodsDetailInfo_price-before`, review count as `리뷰 <span>N</span>건`, image in the
    carousel and `og:image`. Wrapper elements not named in the table are neutral scaffolding; the
    sold-out purchase button is our invention (the real marker is undocumented)."""

    def c(name: str) -> str:
        return class_hash(name, seed)

    before = (
        f'<span class="{c("GoodsDetailInfo_price-before")}">{_won(p.price_list)}원</span>'
        if p.price_list != p.price_sale
        else ""
    )
    buy = (
        f'<button class="{c("GoodsDetailBuy_btn-soldout")}" disabled>일시품절</button>'
        if p.sold_out
        else f'<button class="{c("GoodsDetailBuy_btn-buy")}">바로구매</button>'
    )
    return f"""<!DOCTYPE html><html lang="ko"><head><meta charset="utf-8">
<title>{_e(p.name)} | 올리브영</title>
<meta property="og:image" content="{_e(p.image_url)}"></head><body>
<div id="__next"><div class="{c("page_product-details-wrapper")}">
<div class="{c("TopUtils_top-utils")}"><a class="{c("TopUtils_btn-brand")}" href="javascript:;">{_e(p.brand)}</a></div>
<div class="{c("GoodsDetailCarousel_visual-container")}"><img src="{_e(p.image_url)}" alt="{_e(p.name)}"></div>
<div class="{c("GoodsDetailInfo_goods-info")}">
<div class="{c("GoodsDetailInfo_title-area")}"><h3>{_e(p.name)}</h3></div>
<div class="{c("GoodsDetailInfo_price-area")}">{before}
<span class="{c("GoodsDetailInfo_price")}"><span>{_won(p.price_sale)}</span>원</span></div>
{buy}
</div>
<div class="{c("ReviewArea_review-area")}"><span class="{c("ReviewArea_rating-star")}">{p.rating:.1f}</span>
<div class="{c("ReviewArea_review-count")}"><button class="{c("ReviewArea_btn-review")}">리뷰 <span>{p.review_count:,}</span>건</button></div></div>
<section id="tab-panels"><ul><li><button>상품설명</button></li><li><button>구매정보</button></li></ul>
{_STATIC_DL}</section>
</div></div>
<script id="__NEXT_DATA__" type="application/json">{{"props":{{"pageProps":{{"goodsNumber":"{p.goods_no}"}}}}}}</script>
</body></html>"""


def review_stats_json(p: SiteProduct) -> str:
    """The mobile review-stats JSON (`/review/api/v2/reviews/{goodsNo}/stats`): only the two
    fields the issue reports (`data.reviewCount`, `data.ratingDistribution.averageRating`)."""
    import json

    return json.dumps(
        {
            "data": {
                "reviewCount": p.review_count,
                "ratingDistribution": {"averageRating": p.rating},
            }
        }
    )


def _dd(p: SiteProduct) -> str:
    text = p.ingredients_text or ""
    if p.dd_variant == "br":
        return _e(text).replace(", ", "<br>").replace("\n", "<br>")
    if p.dd_variant == "options":
        body = _e(text).replace("\n", "<br>")
        return f"<br>1. {_e(p.brand)} 본품 : {body}<br><br>2. {_e(p.brand)} 리필 : {body}"
    return _e(text)


def notice_fragment(p: SiteProduct) -> str:
    """The `getGoodsArtcAjax.do` fragment; without the ingredient row when the text is None."""
    rows = [
        ("내용물의 용량 또는 중량", "400ml"),
        ("제품 주요 사양", "모든 두피용"),
        ("사용기한(또는 개봉 후 사용기간)", "제조일로부터 36개월(개봉 후 12개월)"),
        ("사용방법", "적당량을 취해 두피에 마사지한 후 헹궈냅니다."),
        ("화장품제조업자,화장품책임판매업자 및 맞춤형화장품판매업자", _e(p.brand)),
        ("제조국", "대한민국"),
    ]
    dls = ['<dl class="detail_info_list"></dl>']
    dls += [f'<dl class="detail_info_list"><dt>{k}</dt><dd>{v}</dd></dl>' for k, v in rows]
    if p.ingredients_text is not None:
        dls.append(
            f'<dl class="detail_info_list"><dt>{INGREDIENT_LABEL}</dt><dd>{_dd(p)}</dd></dl>'
        )
    if p.functional_claim is not None:
        dls.append(
            f'<dl class="detail_info_list"><dt>{CLAIM_LABEL}</dt>'
            f"<dd>{_e(p.functional_claim)}</dd></dl>"
        )
    dls.append(
        '<dl class="detail_info_list"><dt>사용할 때의 주의사항</dt><dd>눈에 들어가지 않도록 주의</dd></dl>'
    )
    dls.append('<dl class="detail_info_list"><dt>소비자상담 전화번호</dt><dd>1577-4887</dd></dl>')
    return "\n".join(dls)
