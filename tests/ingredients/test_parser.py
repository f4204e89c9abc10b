"""Parsing real 전성분 text: every separator and pitfall seen on Olive Young, with exact tokens."""

from __future__ import annotations

import pytest

from deeproot.ingredients import parse, tag


def names(text: str) -> list[str]:
    return [t.name for t in parse(text).tokens]


def test_every_real_row_parses(crawl_rows):
    assert len(crawl_rows) == 1051
    placeholders = empty = 0
    for r in crawl_rows:
        parsed = parse(r["ingredient"])
        placeholders += parsed.placeholder
        empty += (not parsed.placeholder) and parsed.empty
        for tok in parsed.tokens:
            assert tok.name and tok.name == tok.name.strip()
    assert placeholders == 3  # 상세페이지 참고 x2, 상세페이지참조
    # the crawl's 26 empty strings, and two marketing blurbs with no list ("■ 고압축 아르간 오일…")
    assert empty == 28


def test_comma_list_keeps_commas_inside_names_and_decorations():
    text = "정제수, 1,2-헥산다이올, 티트리잎추출물(230,545ppm), 폴리쿼터늄-10,1,2-헥산다이올"
    assert names(text) == [
        "정제수",
        "1,2-헥산다이올",
        "티트리잎추출물",
        "폴리쿼터늄-10",
        "1,2-헥산다이올",
    ]
    assert parse(text).tokens[2].attrs == ("230,545ppm",)


@pytest.mark.parametrize(
    ("text", "name", "attrs"),
    [
        ("카페인(0.2%)", "카페인", ("0.2%",)),
        ("바이오틴(10,000ppm)", "바이오틴", ("10,000ppm",)),
        ("판테놀(덱스판테놀)", "판테놀", ("덱스판테놀",)),
        ("리모넨(향료)", "리모넨", ("향료",)),
        ("하이드롤라이즈드실크 (10 ppb)", "하이드롤라이즈드실크", ("10 ppb",)),
        ("페녹시에탄올 0.9%", "페녹시에탄올", ("0.9%",)),
        # parentheses that belong to a standard name stay in it
        (
            "비스-에틸(아이소스테아릴이미다졸린)아이소스테아라마이드",
            "비스-에틸(아이소스테아릴이미다졸린)아이소스테아라마이드",
            (),
        ),
    ],
)
def test_decorations_are_attributes(text, name, attrs):
    (tok,) = parse(text).tokens
    assert (tok.name, tok.attrs, tok.text) == (name, attrs, text)


def test_at_sign_newline_br_and_fullwidth_separators():
    assert names("정제수@글리세린@판테놀") == ["정제수", "글리세린", "판테놀"]
    assert names("정제수\n글리세린\n판테놀") == ["정제수", "글리세린", "판테놀"]
    assert names("정제수<br>글리세린<BR/>판테놀") == ["정제수", "글리세린", "판테놀"]
    assert names("정제수，글리세린、판테놀") == ["정제수", "글리세린", "판테놀"]


def test_line_wrapped_name_is_joined(crawl_text):
    text = crawl_text("hairoil", 20)  # "…페닐트라이메\n티콘, …동백나\n무잎추출물…"
    got = names(text)
    assert "페닐트라이메티콘" in got and "동백나무잎추출물" in got
    assert "페닐트라이메" not in got and "티콘" not in got


def test_space_only_list_is_split_and_glued_words_segmented(crawl_text):
    got = names(crawl_text("hairwate", 185))
    assert got[:4] == ["정제수", "아이소프로필미리스테이트", "다이메티콘", "트라이에탄올아민"]
    assert "하이드롤라이즈드식물성단백질피지-프로필실란트라이올" in got


def test_unseparated_list_is_segmented_against_mfds(crawl_text):
    text = crawl_text("hairwate", 149)
    got = names(text)
    assert got == [
        "사이클로펜타실록세인",
        "다이메티콘올",
        "다이메티콘",
        "아이소도데케인",
        "프로폭시테트라메틸피페리다이닐다이메티콘",
        "향료",
        "페닐트라이메티콘",
        "헥실신나몰",
        "벤질살리실레이트",
        "리날룰",
        "리모넨",
        "제라니올",
        "아밀신남알",
        "시트로넬올",
    ]
    assert all(t.segmented for t in parse(text).tokens)


def test_long_unseparated_list_is_fully_segmented(crawl_text):
    parsed = parse(crawl_text("shampoo", 115))
    got = [t.name for t in parsed.tokens]
    assert len(got) == 57
    assert got[:3] == ["정제수", "소듐라우레스설페이트", "다이소듐코코암포다이아세테이트"]
    assert got[-2:] == ["리날룰", "부틸페닐메틸프로피오날"]
    assert "황금추출물" in got and "황" not in got
    result = tag(crawl_text("shampoo", 115))
    assert "비듬" not in result.types  # 황금추출물 is no sulfur
    assert result.unknown == ()


def test_unseparated_run_keeps_unknown_tail():
    result = tag("정제수소듐라우레스설페이트글리세린아스코빌테")
    assert [i.token.name for i in result.ingredients] == [
        "정제수",
        "소듐라우레스설페이트",
        "글리세린",
        "아스코빌테",
    ]
    assert result.unknown == ("아스코빌테",)


def test_slash_separated_list(crawl_text):
    got = names(crawl_text("hairoil", 102))
    assert got[:4] == ["사이클로펜타실록세인", "다이메티콘올", "다이메티콘", "아르간커넬오일"]
    assert got[-2:] == ["판테놀", "향료"]


def test_slashes_inside_names_are_kept():
    assert names("카프릴릭/카프릭트라이글리세라이드, 정제수") == [
        "카프릴릭/카프릭트라이글리세라이드",
        "정제수",
    ]


@pytest.mark.parametrize(
    "text", ["상세페이지 참고", "상세페이지 참조", "상세페이지참조", "제품 참조", "-"]
)
def test_placeholders_mean_no_list(text):
    parsed = parse(text)
    assert parsed.placeholder and parsed.tokens == ()


def test_empty_is_not_a_placeholder():
    assert parse("").placeholder is False and parse("").tokens == ()
    assert parse(None).raw is None


def test_bracketed_option_groups():
    parsed = parse("[타입A] 정제수, 글리세린\n[타입B] 정제수, 카페인")
    assert parsed.groups == ("타입A", "타입B")
    assert [(t.group, t.name) for t in parsed.tokens] == [
        ("타입A", "정제수"),
        ("타입A", "글리세린"),
        ("타입B", "정제수"),
        ("타입B", "카페인"),
    ]


def test_numbered_option_groups_with_colons():
    parsed = parse("1. 복숭아향 : 정제수, 글리세린\n2. 자몽향 : 정제수, 카페인")
    assert parsed.groups == ("1. 복숭아향", "2. 자몽향")
    assert [t.name for t in parsed.tokens] == ["정제수", "글리세린", "정제수", "카페인"]


def test_real_multi_product_lists(crawl_text):
    p = parse(crawl_text("hairoil", 15))  # [히노키] … \n\n[오스만투스] …
    assert p.groups == ("히노키", "오스만투스")
    p = parse(crawl_text("hairoil", 27))  # "<1926.마릴린>\n… <1994.마틸다>\n…
    assert p.groups[:2] == ("1926.마릴린", "1994.마틸다")
    p = parse(crawl_text("hairoil", 17))  # ■ product lines
    assert p.groups[:2] == ("달리프글램 트루에센스 오리지널 100ml", "증정 6ml (일랑로즈향)")
    p = parse(crawl_text("bar", 24))  # "S19 : …, 리날룰S20 : 라우릭애씨드, …"
    assert p.groups[:2] == ("S19", "S20")
    s19 = [t.name for t in p.tokens if t.group == "S19"]
    assert s19[0] == "소듐코코일이세티오네이트" and s19[-1] == "리날룰"


def test_seller_notes_are_not_ingredients(crawl_text):
    got = names(crawl_text("hairoil", 71))
    assert got[-1] == "포타슘소르베이트"
    assert not any("제공된" in n or "ILN" in n for n in got)


def test_colons_inside_parentheses_and_list_announcements():
    p = parse("정제수, 메칠클로로이소치아졸리논/메칠이소치아졸리논(3:1), 유칼립투스잎추출물")
    assert p.groups == ()
    assert [t.name for t in p.tokens][-1] == "유칼립투스잎추출물"
    p = parse("성분 : 정제수, 글리세린, 카페인")
    assert (p.groups, [t.name for t in p.tokens]) == ((), ["정제수", "글리세린", "카페인"])


def test_footnote_with_amount_is_not_a_group(crawl_text):
    p = parse(crawl_text("rinse", 9))  # "…, 리날룰* 단백질성분(밀, 콩, 쌀) : 50 ppm"
    assert p.groups == ()
    assert p.tokens[-1].name == "리날룰"
