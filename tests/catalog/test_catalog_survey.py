"""The survey-only rule: concerns through table c, the survey's type deciding ties."""

from __future__ import annotations

import pytest

from deeproot.catalog.survey import survey_types
from deeproot.errors import InputError


@pytest.mark.parametrize(
    ("survey", "concerns", "expected"),
    [
        ("건성", [], ["dry"]),  # no concerns: the survey's type
        ("oily", [], ["oily"]),
        (None, [], ["healthy"]),  # nothing answered
        (None, ["탈모"], ["hair_loss"]),  # one concern, one type
        ("건성", ["탈모"], ["hair_loss"]),  # concerns decide over the survey
        ("지성", ["미세각질"], ["dry"]),
        ("건성", ["비듬"], ["dry"]),  # 비듬 -> 건성 or 비듬성: survey decides
        ("지성", ["비듬"], ["dry", "dandruff"]),  # survey not among them: both
        (None, ["dandruff"], ["dry", "dandruff"]),
        ("지성", ["피지과다"], ["oily"]),  # 피지과다 -> 지성 or 지루성
        ("건성", ["excess_sebum"], ["oily", "seborrheic"]),
        (None, ["피지과다", "모낭홍반농포"], ["seborrheic"]),  # intersection
        (None, ["피지과다", "모낭사이홍반"], ["oily"]),
        ("건성", ["미세각질", "비듬"], ["dry"]),
        ("지성", ["탈모", "비듬"], ["dry", "dandruff", "hair_loss"]),  # no common type: union
        ("건성", ["탈모", "모낭홍반농포"], ["seborrheic", "hair_loss"]),
        ("지성", ["탈모", "피지과다"], ["oily"]),  # union {지성, 지루성, 탈모성}: survey decides
    ],
)
def test_survey_rule(survey, concerns, expected):
    assert survey_types(survey, concerns) == expected


def test_bad_answers():
    with pytest.raises(
        InputError, match=r"unknown symptom 'itchy'; valid: fine_scale \(미세각질\)"
    ):
        survey_types("건성", ["itchy"])
    with pytest.raises(InputError, match="survey scalp type must be 건성 \\(dry\\) or 지성"):
        survey_types("지루성", [])
