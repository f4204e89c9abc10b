"""From six predicted severities to scalp type(s): SPEC §3 (table c and rules 1-4) and survey notes.

Pure functions over severities keyed by `deeproot.taxonomy` symptom keys; no model, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from deeproot import taxonomy
from deeproot.errors import InputError

# Table c: which scalp types each symptom indicates (taxonomy scalp-type keys).
INDICATES: dict[str, tuple[str, ...]] = {
    "fine_scale": ("dry",),
    "excess_sebum": ("oily", "seborrheic"),
    "interfollicular_erythema": ("oily",),
    "follicular_pustules": ("seborrheic",),
    "dandruff": ("dry", "dandruff"),
    "hair_loss": ("hair_loss",),
}

# Rule 3: the type a single top symptom decides.
SINGLE_TOP: dict[str, str] = {
    "fine_scale": "dry",
    "excess_sebum": "oily",
    "interfollicular_erythema": "oily",
    "follicular_pustules": "seborrheic",
    "dandruff": "dandruff",
    "hair_loss": "hair_loss",
}

SURVEY_TYPES = ("dry", "oily")
_TYPE_ORDER = tuple(t.key for t in taxonomy.SCALP_TYPES)


@dataclass(frozen=True)
class Note:
    """A note for the person, in both languages; `code` is stable for programs."""

    code: str
    ko: str
    en: str

    def text(self, lang: str) -> str:
        """The note in `lang` ("ko" or "en")."""
        return self.ko if lang == "ko" else self.en


@dataclass(frozen=True)
class ScalpTypeResult:
    """The scalp type(s) a set of severities indicates, and why.

    Attributes:
        types: scalp-type keys in taxonomy order (one, or several for rule 4's union).
        rule: "healthy" (rule 1), "survey" (rule 2), "single" (rule 3), "tie_common" or
            "tie_union" (rule 4), or "tie_all_no_survey" (rule 2 without a survey answer).
        top_symptoms: the symptoms sharing the highest severity (empty when healthy).
        top_severity: that severity (0 when healthy).
        survey_type: the survey's answer ("dry"/"oily") or None.
        notes: notes to show beside the result (survey disagreement, colour-sensitive symptom).
    """

    types: tuple[str, ...]
    rule: str
    top_symptoms: tuple[str, ...]
    top_severity: int
    survey_type: str | None
    notes: tuple[Note, ...]

    @property
    def survey_agrees(self) -> bool | None:
        """Whether the survey's type is among the diagnosed types (None without a survey)."""
        return None if self.survey_type is None else self.survey_type in self.types


def survey_type_key(value: str | None) -> str | None:
    """Normalise a survey answer (`dry`, `oily`, `건성`, `지성`) to its key; None stays None."""
    if value is None or not str(value).strip():
        return None
    v = str(value).strip()
    key = next(
        (t.key for t in taxonomy.SCALP_TYPES if t.key in SURVEY_TYPES and v in (t.key, t.ko)),
        None,
    )
    if key is None:
        raise InputError(f"survey scalp type must be 건성 (dry) or 지성 (oily), not {value!r}")
    return key


def _ordered(types: set[str]) -> tuple[str, ...]:
    return tuple(t for t in _TYPE_ORDER if t in types)


def _label(key: str, lang: str) -> str:
    t = taxonomy.scalp_type(key)
    return t.ko if lang == "ko" else t.en


def _labels(keys: tuple[str, ...], lang: str) -> str:
    return ", ".join(_label(k, lang) for k in keys)


def _check(severities: Mapping[str, int]) -> dict[str, int]:
    missing = [k for k in taxonomy.SYMPTOM_KEYS if k not in severities]
    extra = [k for k in severities if k not in taxonomy.SYMPTOM_KEYS]
    if missing or extra:
        raise InputError(
            f"severities must name the six symptoms {', '.join(taxonomy.SYMPTOM_KEYS)};"
            f" missing {missing}, unknown {extra}"
        )
    out = {}
    for k in taxonomy.SYMPTOM_KEYS:
        v = int(severities[k])
        if v < 0:
            raise InputError(f"severity of {k} must be >= 0, got {v}")
        out[k] = v
    return out


def scalp_type(severities: Mapping[str, int], survey_type: str | None = None) -> ScalpTypeResult:
    """Apply SPEC §3 rules 1-4 to the six predicted severities.

    Args:
        severities: symptom key -> predicted class (0 = 양호).
        survey_type: the survey's answer (`dry`/`oily`/`건성`/`지성`) or None.
    """
    sev = _check(severities)
    survey = survey_type_key(survey_type)
    top = max(sev.values())
    notes: list[Note] = []
    types: tuple[str, ...]
    tops: tuple[str, ...]
    if top == 0:
        types, rule, tops = ("healthy",), "healthy", ()
    else:
        tops = tuple(k for k in taxonomy.SYMPTOM_KEYS if sev[k] == top)
        if len(tops) == len(taxonomy.SYMPTOM_KEYS) and survey is not None:
            types, rule = (survey,), "survey"
            notes.append(
                Note(
                    "survey_decides",
                    f"여섯 증상이 모두 같은 정도로 나타나 설문에서 고른 {_label(survey, 'ko')} "
                    "타입으로 판단합니다.",
                    f"all six symptoms show the same severity, so your survey answer "
                    f"({_label(survey, 'en')}) decides the type.",
                )
            )
        elif len(tops) == 1:
            types, rule = (SINGLE_TOP[tops[0]],), "single"
        else:
            common: set[str] = set.intersection(*(set(INDICATES[k]) for k in tops))
            if common:
                types, rule = _ordered(common), "tie_common"
            else:
                union: set[str] = set().union(*(INDICATES[k] for k in tops))
                types = _ordered(union)
                every = len(tops) == len(taxonomy.SYMPTOM_KEYS)
                rule = "tie_all_no_survey" if every else "tie_union"
                if rule == "tie_all_no_survey":
                    notes.append(
                        Note(
                            "no_survey",
                            "여섯 증상이 모두 같은 정도여서 설문 답(건성/지성)이 필요하지만 없어, "
                            "해당하는 모든 타입을 보여 드립니다.",
                            "all six symptoms show the same severity and there is no survey "
                            "answer (dry/oily) to decide, so every indicated type is listed.",
                        )
                    )
        if "interfollicular_erythema" in tops:
            notes.append(
                Note(
                    "erythema_colour",
                    "모낭사이홍반은 사진의 색감에 민감해 잘못 읽히기 쉽습니다. 설문 답을 함께 "
                    "참고하세요.",
                    "erythema between follicles is colour-sensitive and easily misread from a "
                    "photo; read it beside your survey answer.",
                )
            )
    if survey is not None and survey not in types:
        notes.insert(
            0,
            Note(
                "survey_disagrees",
                f"설문에서 {_label(survey, 'ko')} 타입을 고르셨지만, 두피 이미지 분석 결과 "
                f"{_labels(types, 'ko')} 타입으로 판단됩니다.",
                f"you chose {_label(survey, 'en')}, the photo indicates {_labels(types, 'en')}",
            ),
        )
    return ScalpTypeResult(
        types=types,
        rule=rule,
        top_symptoms=tops,
        top_severity=top,
        survey_type=survey,
        notes=tuple(notes),
    )


def survey_echo(
    survey_type: str | None, concerns: tuple[str, ...] = (), lang: str = "ko"
) -> str | None:
    """Echo the survey back (SPEC §2) so that a wrong click is caught; None when nothing chosen."""
    survey = survey_type_key(survey_type)
    keys = tuple(taxonomy.symptom(c).key for c in concerns)
    if survey is None and not keys:
        return None
    if lang == "ko":
        names = ",".join(taxonomy.symptom(k).ko for k in keys)
        check = "두피 이미지 분석으로 확인해 보겠습니다."
        if survey and names:
            t = _label(survey, "ko")
            return f"당신의 두피가 {t} 타입의 {names} 증상이 있다고 선택하셨습니다. {check}"
        if survey:
            return f"당신의 두피를 {_label(survey, 'ko')} 타입으로 선택하셨습니다. {check}"
        return f"당신의 두피에 {names} 증상이 있다고 선택하셨습니다. {check}"
    names = " and ".join(taxonomy.symptom(k).en for k in keys)
    t = (
        f"{'an' if survey == 'oily' else 'a'} {_label(survey, 'en')} scalp"
        if survey
        else "no scalp type"
    )
    what = f"{t} with {names}" if names else t
    return f"you chose {what}; the photo analysis will check this."


def concern_notes(
    severities: Mapping[str, int],
    labels: Mapping[str, tuple[str, str]],
    concerns: tuple[str, ...],
) -> tuple[Note, ...]:
    """Check each survey concern against the photo (SPEC §2: "the photo analysis will check this").

    Args:
        severities: symptom key -> predicted class.
        labels: symptom key -> (Korean, English) name of its predicted class.
        concerns: symptom keys or Korean labels the person chose.
    """
    out = []
    for c in dict.fromkeys(taxonomy.symptom(c).key for c in concerns):
        sym = taxonomy.symptom(c)
        ko, en = labels[c]
        if severities[c] > 0:
            out.append(
                Note(
                    "concern_seen",
                    f"고민으로 고른 {sym.ko}: 사진에서 {ko}(으)로 보입니다.",
                    f"your concern {sym.en}: the photo shows it as {en}",
                )
            )
        else:
            out.append(
                Note(
                    "concern_not_seen",
                    f"고민으로 고른 {sym.ko}: 사진에서는 보이지 않습니다({ko}).",
                    f"your concern {sym.en}: the photo shows no sign of it ({en})",
                )
            )
    return tuple(out)
