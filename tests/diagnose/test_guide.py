"""The curated care guide: every diagnosable type, both languages, three steps."""

from __future__ import annotations

import pytest

from deeproot.diagnose.guide import STEP_KEYS, disclaimer, guide, guides, render
from deeproot.errors import InputError

DIAGNOSED = ("dry", "oily", "seborrheic", "dandruff", "hair_loss", "healthy")


@pytest.mark.parametrize("lang", ["ko", "en"])
@pytest.mark.parametrize("key", [*DIAGNOSED, "sensitive"])
def test_every_type_has_full_guide(key: str, lang: str) -> None:
    g = guide(key, lang)
    assert (g.type, g.lang, g.source) == (key, lang, "curated")
    assert g.title and g.causes and g.characteristics
    assert tuple(s.key for s in g.steps) == STEP_KEYS
    assert all(len(s.text) > 40 for s in g.steps)
    hangul = any("가" <= ch <= "힣" for ch in g.title + "".join(g.causes))
    assert hangul is (lang == "ko")


def test_korean_labels_and_titles() -> None:
    assert guide("지성").title == "지성 두피 (피지과다)"
    assert guide("탈모성", "en").title == "Hair-loss-prone scalp"
    assert [s.title for s in guide("건성").steps] == [
        "올바른 세정",
        "맞는 헤어케어 제품",
        "두피 관리",
    ]


def test_combinations_list_each_type_once() -> None:
    got = guides(("dry", "hair_loss", "dry"), "en")
    assert [g.type for g in got] == ["dry", "hair_loss"]


def test_ingredients_named_in_products_step_match_kca_table() -> None:
    assert "살리실릭애씨드" in guide("oily").steps[1].text
    assert "덱스판테놀" in guide("hair_loss").steps[1].text
    assert "ketoconazole" in guide("seborrheic", "en").steps[2].text  # named as a medicine


def test_render_and_disclaimer() -> None:
    text = render(guide("dandruff", "en"))
    lines = text.splitlines()
    assert lines[0] == "Dandruff-prone scalp" and lines[1] == "Causes:"
    assert lines[-3].startswith("  1. Cleansing: While flakes show")
    assert lines[-1].startswith("  3. Scalp care: Once a week")
    assert disclaimer("en").startswith(
        "This guide is general scalp-care information, not a medical"
    )
    assert "의학적 진단" in disclaimer("ko")


def test_bad_lang() -> None:
    with pytest.raises(InputError, match="unknown language 'fr'; valid: ko, en"):
        guide("oily", "fr")
