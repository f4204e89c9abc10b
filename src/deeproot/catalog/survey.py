"""Scalp types from the survey alone, for recommendations without a photo (SPEC §2, §3).

The rule (documented in docs/catalog.md):

1. No concerns: the survey's scalp type (건성 dry / 지성 oily); with no answer at all, 양호 healthy.
2. Concerns map to types through table c. The candidate types are those that every concern
   indicates (the intersection of their rows); when the concerns share none, the union.
3. One candidate: that type. Several candidates: the survey's scalp type decides when it is one
   of them; otherwise all candidates are kept, so products for each are recommended.
"""

from __future__ import annotations

from collections.abc import Sequence

from deeproot import taxonomy
from deeproot.diagnose.rules import INDICATES, survey_type_key

_ORDER = tuple(t.key for t in taxonomy.SCALP_TYPES)


def survey_types(survey_type: str | None, concerns: Sequence[str]) -> list[str]:
    """Scalp-type keys (taxonomy order) for a survey answer and its concerns.

    Args:
        survey_type: `dry`/`oily`/`건성`/`지성`, or None when not answered.
        concerns: symptom keys or Korean labels (`hair_loss`, `탈모`, …).

    Raises:
        InputError: an unknown symptom or survey answer, listing the valid ones.
    """
    survey = survey_type_key(survey_type)
    keys = list(dict.fromkeys(taxonomy.symptom(c).key for c in concerns))
    if not keys:
        return [survey] if survey else ["healthy"]
    rows = [set(INDICATES[k]) for k in keys]
    candidates = set.intersection(*rows) or set.union(*rows)
    if len(candidates) > 1 and survey in candidates:
        candidates = {survey}
    return [k for k in _ORDER if k in candidates]
