"""SPEC §3: severities -> scalp type(s), every rule and the survey notes."""

from __future__ import annotations

import pytest

from deeproot.diagnose.rules import INDICATES, scalp_type, survey_echo, survey_type_key
from deeproot.errors import InputError
from deeproot.taxonomy import SYMPTOM_KEYS


def sev(**kw: int) -> dict[str, int]:
    out = dict.fromkeys(SYMPTOM_KEYS, 0)
    out.update(kw)
    return out


def test_table_c_matches_spec() -> None:
    assert INDICATES == {
        "fine_scale": ("dry",),
        "excess_sebum": ("oily", "seborrheic"),
        "interfollicular_erythema": ("oily",),
        "follicular_pustules": ("seborrheic",),
        "dandruff": ("dry", "dandruff"),
        "hair_loss": ("hair_loss",),
    }


def test_all_healthy() -> None:
    r = scalp_type(sev())
    assert (r.types, r.rule, r.top_symptoms, r.top_severity, r.notes) == (
        ("healthy",),
        "healthy",
        (),
        0,
        (),
    )


def test_all_healthy_with_survey_says_both() -> None:
    r = scalp_type(sev(), "건성")
    assert r.types == ("healthy",)
    assert r.notes[0].code == "survey_disagrees"
    assert r.notes[0].en == "you chose dry, the photo indicates healthy"


@pytest.mark.parametrize(
    ("symptom", "expected"),
    [
        ("fine_scale", "dry"),
        ("excess_sebum", "oily"),
        ("interfollicular_erythema", "oily"),
        ("follicular_pustules", "seborrheic"),
        ("dandruff", "dandruff"),
        ("hair_loss", "hair_loss"),
    ],
)
@pytest.mark.parametrize("level", [1, 2])
def test_single_top_symptom(symptom: str, expected: str, level: int) -> None:
    # Other symptoms below the top do not matter.
    others = {k: level - 1 for k in SYMPTOM_KEYS if k != symptom}
    r = scalp_type({**others, symptom: level})
    assert (r.types, r.rule, r.top_symptoms, r.top_severity) == (
        (expected,),
        "single",
        (symptom,),
        level,
    )
    codes = [n.code for n in r.notes]
    assert codes == (["erythema_colour"] if symptom == "interfollicular_erythema" else [])


def test_erythema_survey_disagreement_photo_stands() -> None:
    r = scalp_type(sev(interfollicular_erythema=2), "dry")
    assert r.types == ("oily",)
    assert [n.code for n in r.notes] == ["survey_disagrees", "erythema_colour"]
    assert r.notes[0].en == "you chose dry, the photo indicates oily"
    ko = "설문에서 건성 타입을 고르셨지만, 두피 이미지 분석 결과 지성 타입으로 판단됩니다."
    assert r.notes[0].ko == ko
    assert r.survey_agrees is False


def test_survey_agreement_has_no_note() -> None:
    r = scalp_type(sev(excess_sebum=1), "지성")
    assert r.types == ("oily",) and r.notes == () and r.survey_agrees is True


def test_tie_with_common_type() -> None:
    # 미세각질 (건성) and 비듬 (건성, 비듬성) share 건성.
    r = scalp_type(sev(fine_scale=2, dandruff=2, hair_loss=1))
    assert (r.types, r.rule, r.top_symptoms) == (("dry",), "tie_common", ("fine_scale", "dandruff"))
    # 피지과다 (지성, 지루성) and 모낭홍반농포 (지루성) share 지루성.
    r = scalp_type(sev(excess_sebum=1, follicular_pustules=1))
    assert (r.types, r.rule) == (("seborrheic",), "tie_common")
    # 피지과다 and 모낭사이홍반 share 지성.
    r = scalp_type(sev(excess_sebum=2, interfollicular_erythema=2))
    assert r.types == ("oily",) and [n.code for n in r.notes] == ["erythema_colour"]


def test_tie_without_common_type_gives_union() -> None:
    r = scalp_type(sev(fine_scale=1, hair_loss=1))
    assert (r.types, r.rule) == (("dry", "hair_loss"), "tie_union")
    r = scalp_type(sev(excess_sebum=2, dandruff=2, hair_loss=2), "oily")
    assert (r.types, r.rule) == (
        ("dry", "oily", "seborrheic", "dandruff", "hair_loss"),
        "tie_union",
    )
    assert r.notes == ()  # the survey's type is among them


def test_tie_union_survey_disagreement_lists_all_types() -> None:
    r = scalp_type(sev(follicular_pustules=1, hair_loss=1), "dry")
    assert r.types == ("seborrheic", "hair_loss")
    assert r.notes[0].en == "you chose dry, the photo indicates seborrheic, hair-loss-prone"
    assert r.notes[0].ko.endswith("지루성, 탈모성 타입으로 판단됩니다.")


@pytest.mark.parametrize("level", [1, 2])
@pytest.mark.parametrize(("answer", "key"), [("건성", "dry"), ("oily", "oily")])
def test_all_equal_nonzero_survey_decides(level: int, answer: str, key: str) -> None:
    r = scalp_type(dict.fromkeys(SYMPTOM_KEYS, level), answer)
    assert (r.types, r.rule, r.top_symptoms) == ((key,), "survey", SYMPTOM_KEYS)
    assert [n.code for n in r.notes] == ["survey_decides", "erythema_colour"]


def test_all_equal_without_survey_lists_every_type() -> None:
    r = scalp_type(dict.fromkeys(SYMPTOM_KEYS, 1))
    assert r.rule == "tie_all_no_survey"
    assert r.types == ("dry", "oily", "seborrheic", "dandruff", "hair_loss")
    assert r.notes[0].code == "no_survey"


def test_bad_inputs() -> None:
    with pytest.raises(InputError, match="missing \\['hair_loss'\\]"):
        scalp_type({k: 0 for k in SYMPTOM_KEYS if k != "hair_loss"})
    with pytest.raises(InputError, match="must be 건성 \\(dry\\) or 지성 \\(oily\\), not '탈모성'"):
        scalp_type(sev(), "탈모성")
    with pytest.raises(InputError, match=r"must be 건성 \(dry\) or 지성 \(oily\), not 'greasy'"):
        survey_type_key("greasy")
    with pytest.raises(InputError, match=r"must be 건성 \(dry\) or 지성 \(oily\), not '보통'"):
        survey_type_key("보통")  # SPEC §2 offers two answers; 보통 is not one of them
    assert survey_type_key("") is None and survey_type_key("지성") == "oily"


def test_survey_echo() -> None:
    assert survey_echo(None) is None
    assert survey_echo("건성", ("탈모", "interfollicular_erythema")) == (
        "당신의 두피가 건성 타입의 탈모,모낭사이홍반 증상이 있다고 선택하셨습니다. "
        "두피 이미지 분석으로 확인해 보겠습니다."
    )
    assert survey_echo("dry", ("hair_loss", "모낭사이홍반"), lang="en") == (
        "you chose a dry scalp with hair loss and erythema between follicles; "
        "the photo analysis will check this."
    )
    assert survey_echo("oily", lang="ko") == (
        "당신의 두피를 지성 타입으로 선택하셨습니다. 두피 이미지 분석으로 확인해 보겠습니다."
    )


def test_concern_checks() -> None:
    from deeproot.diagnose.rules import concern_notes

    s = sev(hair_loss=1)
    labels = {k: ("양호", "good") for k in SYMPTOM_KEYS}
    labels["hair_loss"] = ("경증·중등도", "mild-moderate")
    notes = concern_notes(s, labels, ("탈모", "dandruff", "hair_loss"))
    assert [n.code for n in notes] == ["concern_seen", "concern_not_seen"]
    assert notes[0].en == "your concern hair loss: the photo shows it as mild-moderate"
    assert notes[0].ko == "고민으로 고른 탈모: 사진에서 경증·중등도(으)로 보입니다."
    assert notes[1].en == "your concern dandruff: the photo shows no sign of it (good)"
    assert notes[1].ko == "고민으로 고른 비듬: 사진에서는 보이지 않습니다(양호)."
    assert concern_notes(s, labels, ()) == ()
