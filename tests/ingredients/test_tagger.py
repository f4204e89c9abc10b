"""Normalising and tagging: variants reach the same standard name, false friends never match."""

from __future__ import annotations

import pytest

from deeproot.errors import InputError
from deeproot.ingredients import Tagger, tag


@pytest.mark.parametrize(
    ("written", "canonical", "how"),
    [
        ("나이아신아마이드", "나이아신아마이드", "exact"),
        ("니아신아마이드", "나이아신아마이드", "synonym"),
        ("소듐메칠코코일타우레이트", "소듐메틸코코일타우레이트", "synonym"),
        ("살리실산", "살리실릭애씨드", "synonym"),
        ("살리실릭애시드", "살리실릭애씨드", "synonym"),
        ("디메치콘", "다이메티콘", "synonym"),
        ("포타슘소르베이트", "포타슘솔베이트", "synonym"),
        ("1.2-헥산다이올", "1,2-헥산다이올", "variant"),
        ("살리실식애씨드", "살리실릭애씨드", "fuzzy"),  # one mistyped letter
    ],
)
def test_variants_reach_the_standard_name(written, canonical, how):
    (ing,) = tag(written).ingredients
    assert (ing.canonical, ing.how) == (canonical, how)
    assert ing.token.text == written  # the original text is kept


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("나이아신아마이드", "니아신아마이드"),
        ("소듐메틸코코일타우레이트", "소듐메칠코코일타우레이트"),
        ("살리실산", "살리실릭애씨드"),
    ],
)
def test_variants_tag_the_same_types(a, b):
    assert tag(a).types == tag(b).types != ()


@pytest.mark.parametrize(
    ("friend", "false_friends", "type_"),
    [
        ("황", ["황색4호", "황금추출물"], "비듬"),
        ("세린", ["글리세린"], "탈모"),
        ("글리세린", ["에틸헥실글리세린", "폴리글리세린-10"], "건성"),
        ("살리실릭애씨드", ["벤질살리실레이트"], "비듬"),
        ("판테놀", ["판테닐에틸에터"], "탈모"),
    ],
)
def test_false_friends_never_match(friend, false_friends, type_):
    assert type_ in tag(f"정제수, {friend}").types
    for ff in false_friends:
        result = tag(f"정제수, {ff}, 향료")
        assert type_ not in result.types, ff
        assert not [m for m in result.matches if m.type == type_]
        # nor when glued into an unseparated run that segmentation must cut
        assert type_ not in tag(f"정제수{ff}향료").types, ff


def test_evidence_keeps_token_canonical_and_how():
    result = tag("정제수, 니아신아마이드, 판테놀(덱스판테놀), 락토바실러스발효용해물")
    got = {(m.type, m.token, m.canonical, m.entry, m.how) for m in result.matches}
    assert got == {
        ("지성", "니아신아마이드", "나이아신아마이드", "나이아신아마이드", "alias"),
        ("탈모", "니아신아마이드", "나이아신아마이드", "나이아신아마이드", "alias"),
        ("민감성", "판테놀(덱스판테놀)", "판테놀", "판테놀", "canonical"),
        ("탈모", "판테놀(덱스판테놀)", "판테놀", "판테놀", "canonical"),
        ("건성", "락토바실러스발효용해물", "락토바실러스발효용해물", "락토바실러스", "prefix"),
    }
    assert result.types == ("건성", "민감성", "지성", "탈모")


def test_family_members_and_excludes():
    assert tag("알지닌, 식물성아미노산").types == ("탈모",)
    assert tag("소듐코코일아미노산").types == ()  # an amino-acid surfactant
    assert tag("소듐코코일애플아미노산").types == ()
    assert tag("쿼터늄-18헥토라이트").types == ()  # not a clay
    assert "지성" in tag("벤토나이트").types


def test_seed_and_extended_tables():
    text = "정제수, 피록톤올아민, 멘톨"
    assert tag(text, table="seed").types == ()
    assert tag(text, table="extended").types == ("비듬", "지루성", "탈모")
    with pytest.raises(InputError, match="unknown table 'gold'; valid: seed, extended"):
        Tagger("gold")


def test_unknown_tokens_are_reported_not_forced():
    result = tag("정제수, 연필향나무오일, 글리세린")
    assert result.unknown == ("연필향나무오일",)
    ing = result.ingredients[1]
    assert (ing.canonical, ing.how) == (None, "unknown")


def test_fuzzy_is_bounded():
    # a prefix or suffix makes another ingredient, never a typo
    assert tag("다이에탄올아민x").ingredients[0].canonical is None
    assert tag("글리세").ingredients[0].canonical is None  # too short to guess
    # numbers differ: another ingredient
    assert tag("아크릴레이트/C20-30알킬아크릴레이트크로스폴리머").ingredients[0].how == "unknown"
    # a fuzzy match says so in the evidence
    (m,) = [m for m in tag("정제수, 마더카소사이드").matches]
    assert (m.type, m.canonical, m.how) == ("민감성", "마데카소사이드", "canonical+fuzzy")


def test_placeholder_and_empty_records():
    assert tag("상세페이지 참고").record(3) == {
        "row": 3,
        "types": [],
        "matches": [],
        "placeholder": True,
        "n_ingredients": 0,
        "unknown": [],
        "flags": [],
    }
    assert tag("").record()["placeholder"] is False


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Water, Glycerin, Niacinamide", "no Korean ingredient names in the text"),
        ("水, 甘油", "no Korean ingredient names in the text"),
        ("정제수, " * 1_000_000, "over the 100,000 limit"),
    ],
)
def test_bad_text_is_a_clear_error(text, message):
    with pytest.raises(InputError, match=message):
        tag(text)


def test_real_rows_agree_with_the_original_where_it_was_right(crawl_rows):
    """The original tagged by raw substring; where its keyword is a whole standard name on the
    list, both must agree (e.g. 카페인 -> 탈모)."""
    for r in crawl_rows:
        names = {i.canonical for i in tag(r["ingredient"]).ingredients}
        if "카페인" in names:
            assert "탈모" in tag(r["ingredient"]).types
            assert "탈모" in r["type"]


def test_fast_path_equals_full_parser_on_every_real_row(crawl_rows):
    fast, full = Tagger(), Tagger()
    full._fast = lambda text: None  # type: ignore[method-assign]
    used = 0
    for r in crawl_rows:
        used += fast._fast(r["ingredient"]) is not None if r["ingredient"] else 0
        assert fast.tag(r["ingredient"]) == full.tag(r["ingredient"]), r["ingredient"][:80]
    assert used > 600  # most real lists are plain comma lists


def test_short_names_are_never_guessed():
    # 진저추출물 (ginger) is one letter from 진주추출물 (pearl): short names are not fuzzy-matched
    assert tag("진저추출물").ingredients[0].canonical is None
