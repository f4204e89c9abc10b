"""Ingredient flags: the shipped tables, the family rules, and flags on real-looking lists."""

from __future__ import annotations

import csv
from importlib import resources

import pytest

from deeproot.ingredients import FLAG_LABELS, FLAG_SOURCES, FLAGS, FREE_OF, tag
from deeproot.ingredients.dictionary import key
from deeproot.ingredients.flags import flag_entries, functional_claims, load_flag_index

# The 25 fragrance allergens of the MFDS labelling rule (별표 2), by their MFDS standard names.
ALLERGENS_25 = [
    "아밀신남알",
    "벤질알코올",
    "신나밀알코올",
    "시트랄",
    "유제놀",
    "하이드록시시트로넬알",
    "아이소유제놀",
    "아밀신나밀알코올",
    "벤질살리실레이트",
    "신남알",
    "쿠마린",
    "제라니올",
    "아니스알코올",
    "벤질신나메이트",
    "파네솔",
    "부틸페닐메틸프로피오날",
    "리날룰",
    "벤질벤조에이트",
    "시트로넬올",
    "헥실신남알",
    "리모넨",
    "메틸2-옥티노에이트",
    "알파-아이소메틸아이오논",
    "참나무이끼추출물",
    "나무이끼추출물",
]


def flags_of(text: str) -> dict[str, set[str]]:
    """flag -> the canonical names that carry it."""
    out: dict[str, set[str]] = {}
    for f in tag(text).flags:
        out.setdefault(f.flag, set()).add(f.canonical)
    return out


def test_contract():
    assert FLAGS == (
        "allergen",
        "hair_loss_functional",
        "sulfate_surfactant",
        "silicone",
        "paraben",
        "mineral_oil",
        "synthetic_colour",
        "fragrance",
    )
    assert FREE_OF == FLAGS[2:]
    assert set(FLAG_LABELS) == set(FLAG_SOURCES) == set(FLAGS)
    assert all(set(v) == {"ko", "en"} and all(v.values()) for v in FLAG_LABELS.values())


def test_every_curated_name_is_an_mfds_standard_name():
    with (
        resources.files("deeproot.data")
        .joinpath("mfds_cosmetic_ingredients.csv")
        .open(encoding="utf-8-sig") as fh
    ):
        names = {key(r["name_ko"]) for r in csv.DictReader(fh)}
    entries = flag_entries()
    missing = [e.match for e in entries if key(e.match) not in names]
    assert missing == []
    assert all(e.source for e in entries)
    assert {e.flag for e in entries} == set(FLAGS)


def test_allergen_table_is_the_25_of_the_mfds_rule():
    assert sorted(e.name for e in flag_entries() if e.flag == "allergen") == sorted(ALLERGENS_25)


def test_curated_family_names_agree_with_their_rule():
    """The rules are the definition; the curated names are the common ones, and the rule must
    admit every one of them (else the rule or the list is wrong)."""
    index = load_flag_index()
    for e in flag_entries():
        if e.flag in ("sulfate_surfactant", "silicone", "paraben", "synthetic_colour"):
            assert key(e.match) in index.members(e.flag), e.name


def test_every_allergen_by_its_mfds_name_in_a_list():
    text = "정제수, 글리세린, " + ", ".join(ALLERGENS_25) + ", 향료"
    found = flags_of(text)
    assert found["allergen"] == set(ALLERGENS_25)
    assert found["fragrance"] == {"향료"}


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        ("이소유제놀", "아이소유제놀"),
        ("알파-이소메칠이오논", "알파-아이소메틸아이오논"),
        ("알파-이소메틸이오논", "알파-아이소메틸아이오논"),
        ("벤질알콜", "벤질알코올"),
        ("메칠2-옥티노에이트", "메틸2-옥티노에이트"),
    ],
)
def test_allergen_by_old_spelling(written, canonical):
    (f,) = [f for f in tag(f"정제수, 글리세린, {written}, 페녹시에탄올").flags]
    assert (f.flag, f.token, f.canonical, f.entry) == ("allergen", written, canonical, canonical)
    assert f.how in ("name+synonym", "name+variant")
    assert f.source.startswith("MFDS")


def test_allergens_inside_option_groups():
    a, b = ALLERGENS_25[:13], ALLERGENS_25[13:]
    text = (
        "[타입A] 정제수, 소듐라우레스설페이트, " + ", ".join(a) + ", 향료\n"
        "[타입B] 정제수, 코카미도프로필베타인, 이소유제놀, " + ", ".join(b)
    )
    result = tag(text)
    assert result.groups == ("타입A", "타입B")
    assert flags_of(text)["allergen"] == set(ALLERGENS_25)
    assert result.flag_keys == ("allergen", "fragrance", "sulfate_surfactant")


def test_unseparated_list_still_flags():
    found = flags_of("정제수글리세린소듐라우릴설페이트다이메티콘리모넨메틸파라벤")
    assert found == {
        "allergen": {"리모넨"},
        "sulfate_surfactant": {"소듐라우릴설페이트"},
        "silicone": {"다이메티콘"},
        "paraben": {"메틸파라벤"},
    }


@pytest.mark.parametrize(
    "false_friend",
    [
        "징크설페이트",  # an inorganic salt
        "마그네슘설페이트",
        "소듐콘드로이틴설페이트",  # a sugar sulfate
        "콘드로이틴설페이트",
        "베헨트라이모늄메토설페이트",  # a quaternary conditioner, not a sulfate surfactant
        "메틸유제놀",  # not 유제놀
        "하이드로제네이티드폴리데센",  # synthetic, not mineral oil
        "실리카",  # not a silicone
        "트라이에톡시카프릴릴실레인",  # a silane
        "티타늄디옥사이드(CI 77891)",  # inorganic pigment, not a tar colour
        "호호바씨오일",  # 호 is not a colour number
        "판테놀",  # DL-panthenol is not the notified 덱스판테놀
        "소듐C14-16올레핀설포네이트",  # a sulfonate
    ],
)
def test_false_friends_carry_no_flag(false_friend):
    assert tag(f"정제수, 글리세린, {false_friend}, 부틸렌글라이콜").flags == ()


@pytest.mark.parametrize(
    ("name", "flag"),
    [
        ("소듐라우릴설페이트", "sulfate_surfactant"),
        ("소듐라우레스설페이트", "sulfate_surfactant"),
        ("암모늄라우릴설페이트", "sulfate_surfactant"),
        ("티이에이-라우릴설페이트", "sulfate_surfactant"),
        ("소듐C12-13알킬설페이트", "sulfate_surfactant"),  # by the rule only
        ("소듐트라이데세스설페이트", "sulfate_surfactant"),
        ("다이메티콘", "silicone"),
        ("디메치콘", "silicone"),  # old spelling
        ("사이클로펜타실록세인", "silicone"),
        ("아모다이메티콘", "silicone"),
        ("비스-피이지-18메틸에터다이메틸실레인", None),  # a silane, by the INCI rule
        ("피이지-12다이메티콘", "silicone"),
        ("메칠파라벤", "paraben"),
        ("소듐메틸파라벤", "paraben"),
        ("미네랄오일", "mineral_oil"),
        ("페트롤라툼", "mineral_oil"),
        ("파라핀", "mineral_oil"),
        ("황색4호", "synthetic_colour"),
        ("적색504호", "synthetic_colour"),
        ("염기성청색99호", "synthetic_colour"),
        ("CI 19140", "synthetic_colour"),  # by Colour Index number alone
        ("CI 42090", "synthetic_colour"),  # a number two MFDS names share
        ("향료", "fragrance"),
        ("덱스판테놀", "hair_loss_functional"),
        ("비오틴", "hair_loss_functional"),
        ("엘-멘톨", "hair_loss_functional"),
        ("징크피리치온", "hair_loss_functional"),
        ("징크피리치온액(50%)", "hair_loss_functional"),
        ("판테놀(덱스판테놀)", "hair_loss_functional"),  # the decoration names the active
    ],
)
def test_family_members(name, flag):
    keys = tag(f"정제수, 글리세린, {name}, 부틸렌글라이콜").flag_keys
    assert keys == (() if flag is None else (flag,))


def test_flag_evidence_chain_and_record():
    result = tag("정제수, 알파-이소메칠이오논, 청색1호(CI 42090), 디메치콘")
    assert [f.record() for f in result.flags] == [
        {
            "flag": "allergen",
            "token": "알파-이소메칠이오논",
            "canonical": "알파-아이소메틸아이오논",
            "entry": "알파-아이소메틸아이오논",
            "source": "MFDS 알레르기 유발성분 표시 규정 별표2 (25종)",
            "how": "name+synonym",
        },
        {
            "flag": "synthetic_colour",
            "token": "청색1호(CI 42090)",
            "canonical": "청색1호",
            "entry": "청색1호",
            "source": "MFDS 화장품의 색소 종류와 기준 및 시험방법 별표1 (타르색소)",
            "how": "name",
        },
        {
            "flag": "silicone",
            "token": "디메치콘",
            "canonical": "다이메티콘",
            "entry": "다이메티콘",
            "source": "deeproot curated: common silicones (family rule adds the rest)",
            "how": "name+synonym",
        },
    ]
    assert result.record()["flags"] == [f.record() for f in result.flags]
    assert result.flag_keys == ("allergen", "silicone", "synthetic_colour")


def test_unknown_tokens_carry_no_flag():
    # a name inside another is not that name: no substring ever flags
    result = tag("정제수, 리모넨향오일블렌드, 라우릴설페이트프리")
    assert result.flags == ()


@pytest.mark.parametrize(
    ("text", "claims"),
    [
        (None, ()),
        ("", ()),
        ("해당없음", ()),
        ("해당사항 없음", ()),
        ("해당 사항 없음", ()),
        ("비해당", ()),
        ("-", ()),
        ("기능성 화장품 아님", ()),
        ("탈모 증상 완화에 도움을 주는 기능성 화장품", ("hair_loss",)),
        ("식품의약품안전처 심사필 (탈모 증상의 완화에 도움을 주는 기능성화장품)", ("hair_loss",)),
        ("기능성화장품(탈모증상완화) 보고필", ("hair_loss",)),
        ("미백, 주름개선 2중 기능성 화장품", ("whitening", "anti_wrinkle")),
        ("자외선 차단 기능성 화장품 (SPF50+ PA++++)", ("uv",)),
        ("모발의 색상 변화(염모) 기능성 화장품", ("hair_dye",)),
        ("여드름성 피부를 완화하는 데 도움을 주는 화장품", ("acne",)),
        ("탈모 증상 완화 기능성 아님", ()),
        ("탈모 증상 완화 / 미백 해당없음", ("hair_loss",)),
        ("탈모 증상 완화에 도움을 주는 기능성 화장품이 아닙니다", ()),
        ("해당없음(일반화장품)", ()),
        ("기능성화장품 해당 없음", ()),
        ("체모를 제거하는 기능을 가진 화장품", ("hair_removal",)),
        (
            "SPF50+ PA++++ 자외선 차단, 미백, 주름 개선 3중 기능성",
            ("whitening", "anti_wrinkle", "uv"),
        ),
    ],
)
def test_functional_claims(text, claims):
    assert functional_claims(text) == claims
