"""Issue 10 item 5: causes of unknown and wrong names seen on lists from other crawls."""

from __future__ import annotations

import csv
from importlib import resources

import pytest

from deeproot.ingredients import tag
from deeproot.ingredients.dictionary import fold, key, same_substance


def only(text: str) -> tuple[str, str | None, str]:
    """(name, canonical, how) of the one ingredient between 정제수 and 글리세린."""
    ings = tag(f"정제수, {text}, 글리세린, 부틸렌글라이콜").ingredients
    assert len(ings) == 4, [i.token.name for i in ings]
    i = ings[1]
    return i.token.name, i.canonical, i.how


@pytest.mark.parametrize(
    ("written", "wrong"),
    [
        ("예덕나무피추출물", "예덕나무잎추출물"),  # bark is not leaf
        ("치자나무꽃추출물", "치자나무추출물"),  # a part dropped
        ("프리클리페어추출물", "프리클리페어잎추출물"),  # a part added
        (
            "피이지-9다이글리시딜에터/소듐하이알루로네이트크로스폴리머",
            "소듐하이알루로네이트크로스폴리머-6",
        ),
    ],
)
def test_fuzzy_never_changes_the_plant_part_or_the_polymer(written, wrong):
    name, canonical, how = only(written)
    assert canonical != wrong
    assert (canonical, how) == (None, "unknown")


def test_a_name_inside_another_is_refused():
    # MFDS lists 프리지어꽃추출물 as a synonym of 알바프리지어추출물: reaching it would both drop
    # the part and land on a name that contains the written one
    _, canonical, _ = only("프리지어추출물")
    assert canonical != "알바프리지어추출물"
    assert canonical == "프리지아추출물"  # one letter off the MFDS name of the same plant


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("부텔렌글라이콜", "부틸렌글라이콜", True),  # a typo
        ("베헨트리모늄메토셀페이트", "베헨트라이모늄메토설페이트", True),  # a typo inside a word
        ("소듐클로라이드", "소듐브로마이드", False),  # another anion
        ("메틸파라벤", "에틸파라벤", False),  # another alkyl
        ("포타슘코코일글리시네이트", "소듐코코일글리시네이트", False),  # another cation
        ("아크릴레이트코폴리머", "아크릴레이트크로스폴리머", False),  # another polymer
        ("소듐라우레스설페이트", "소듐트라이데세스설페이트", False),  # another ether chain
        ("예덕나무피추출물", "예덕나무잎추출물", False),
        ("피이지-40하이드로제네이티드캐스터오일", "피이지-40하이드로제네이티드캐스터오일", True),
        ("살리실릭애싸드", "살리실릭애씨드", True),  # 씨 of 애씨드 is no seed
    ],
)
def test_same_substance(a, b, same):
    assert same_substance(fold(key(a)), fold(key(b))) is same


@pytest.mark.parametrize(
    "written",
    [
        "하이드로제네이티드폴리(C6-12올레핀)",
        "하이드로제네이티드폴리(C6-12 올레핀)",
        "하이드로제네이티드폴리 (C6-12올레핀)",
    ],
)
def test_parenthesis_that_belongs_to_the_name(written):
    assert only(written)[1] == "하이드로제네이티드폴리(C6-12올레핀)"


@pytest.mark.parametrize(
    "text",
    [
        "정제수, 글리세린, 향료, 식물, 유래, 향, 부틸렌글라이콜",
        "정제수, 글리세린, 향료, *식물 유래 향, 부틸렌글라이콜",
        "정제수, 글리세린, 향료, 식물 / 유래 / 향, 부틸렌글라이콜",
        "정제수 글리세린 향료 (식물 유래 향) 부틸렌글라이콜",
    ],
)
def test_a_note_split_into_words_is_no_ingredient(text):
    result = tag(text)
    assert [i.canonical for i in result.ingredients] == [
        "정제수",
        "글리세린",
        "향료",
        "부틸렌글라이콜",
    ]
    assert result.flag_keys == ("fragrance",)


@pytest.mark.parametrize(
    "text",
    [
        "정제수, 아쿠아(아벤느 온천수), 글리세린, 향료",
        "아쿠아(아벤느 온천수) 글리세린 향료",  # separated by spaces only
    ],
)
def test_a_space_inside_a_name_in_parentheses(text):
    result = tag(text)
    assert result.unknown == ()
    (water,) = [i for i in result.ingredients if "아쿠아" in i.token.text]
    # Aqua is the INCI name of water; the parentheses stay one decoration
    assert (water.canonical, water.token.attrs) == ("정제수", ("아벤느 온천수",))


def test_the_mfds_name_inside_parentheses_of_an_unknown_name():
    assert only("아벤느워터(아벤느 온천수)")[:2] == ("온천수", "온천수")


def test_common_names_mfds_lists_inside_synonyms():
    assert only("위치하젤추출물")[1:] == ("버지니아풍년화추출물", "synonym")
    # bare 위치하젤 could be the water (버지니아풍년화수) or the extract: unknown, not a guess
    assert only("위치하젤")[1] is None


@pytest.mark.parametrize(
    ("text", "canonicals"),
    [
        ("두피스케일러정제수, 글리세린, 향료, 카페인", ["정제수", "글리세린", "향료", "카페인"]),
        (
            "(헤어그루밍토닉)정제수, 글리세린, 향료, 카페인",
            ["정제수", "글리세린", "향료", "카페인"],
        ),
        (
            "정제수, 글리세린, 리날룰2. 트리트먼트, 카페인",
            ["정제수", "글리세린", "리날룰", "카페인"],
        ),
        (
            "정제수, 쿠마린헤어폴리쉬정제수, 글리세린, 카페인",
            ["정제수", "쿠마린", "정제수", "글리세린", "카페인"],
        ),
        ("정제수, 그루밍토닉, 글리세린, 카페인", ["정제수", "글리세린", "카페인"]),
    ],
)
def test_names_glued_to_a_product_header(text, canonicals):
    assert [i.canonical for i in tag(text).ingredients] == canonicals


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        ("가수분해콩단백질", "하이드롤라이즈드콩단백질"),
        ("히드록시에틸셀룰로오스", "하이드록시에틸셀룰로오스"),
        ("C12-13파레스-9", "C12-13알케스-9"),  # MFDS renamed Pareth to Alketh
        ("구연산", "시트릭애씨드"),
        ("대왕송잎추출물", "대왕소나무잎추출물"),
        ("ᅳ변성알코올", "변성알코올"),  # a vowel letter typed for a dash
    ],
)
def test_old_and_common_spellings(written, canonical):
    assert only(written)[1] == canonical


def test_a_full_stop_between_two_names():
    names = [i.canonical for i in tag("정제수, 향료.티트리잎오일, 글리세린, 카페인").ingredients]
    assert names == ["정제수", "향료", "티트리잎오일", "글리세린", "카페인"]


def test_every_alias_targets_an_mfds_standard_name():
    data = resources.files("deeproot.data")
    with data.joinpath("mfds_cosmetic_ingredients.csv").open(encoding="utf-8-sig") as fh:
        names = {key(r["name_ko"]) for r in csv.DictReader(fh)}
    with data.joinpath("ingredient_aliases.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert rows and all(r["source"] and r["note"] for r in rows)
    assert [r["name_ko"] for r in rows if key(r["name_ko"]) not in names] == []
    assert [r["alias"] for r in rows if key(r["alias"]) in names] == []  # not already a name


@pytest.mark.parametrize(
    ("label", "canonical", "flag"),
    [
        ("리날를", "리날룰", "allergen"),
        ("리날로울", "리날룰", "allergen"),
        ("스트로넬올", "시트로넬올", "allergen"),
        ("핵실신남알", "헥실신남알", "allergen"),
        ("황색204", "황색204호", "synthetic_colour"),
        ("클리세린", "글리세린", None),
    ],
)
def test_hand_checked_misspellings_are_read_and_keep_their_flags(label, canonical, flag):
    res = tag(f"정제수, {label}, 향료")
    assert [i.canonical for i in res.ingredients] == ["정제수", canonical, "향료"]
    flagged = {(f.flag, f.canonical) for f in res.flags}
    assert flag is None or (flag, canonical) in flagged
