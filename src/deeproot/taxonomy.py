"""The product's shared vocabulary (SPEC §1, §3, §5): symptoms, severities, scalp types, categories.

Every module that names a symptom, a scalp type or a category takes it from here, so keys and Korean
labels are spelled once. Lookups accept the English key or the Korean label.
"""

from __future__ import annotations

from dataclasses import dataclass

from deeproot.errors import InputError


@dataclass(frozen=True)
class Symptom:
    key: str
    ko: str
    en: str
    field: str  # AI Hub label field


SYMPTOMS: tuple[Symptom, ...] = (
    Symptom("fine_scale", "미세각질", "fine dead-skin flakes", "value_1"),
    Symptom("excess_sebum", "피지과다", "excess sebum", "value_2"),
    Symptom("interfollicular_erythema", "모낭사이홍반", "erythema between follicles", "value_3"),
    Symptom("follicular_pustules", "모낭홍반농포", "follicular erythema / pustules", "value_4"),
    Symptom("dandruff", "비듬", "dandruff", "value_5"),
    Symptom("hair_loss", "탈모", "hair loss", "value_6"),
)
SYMPTOM_KEYS: tuple[str, ...] = tuple(s.key for s in SYMPTOMS)

# Dataset severities 0..3 and the merged model classes (SPEC §1).
SEVERITIES_4 = ("양호", "경증", "중등도", "중증")
SEVERITIES_3 = ("양호", "경증·중등도", "중증")
SEVERITIES_3_EN = ("good", "mild-moderate", "severe")


@dataclass(frozen=True)
class ScalpType:
    key: str
    ko: str
    en: str
    table_type: str | None  # the type's name in the KCA ingredient table (None: healthy)


SCALP_TYPES: tuple[ScalpType, ...] = (
    ScalpType("dry", "건성", "dry", "건성"),
    ScalpType("oily", "지성", "oily", "지성"),
    ScalpType("seborrheic", "지루성", "seborrheic", "지루성"),
    ScalpType("dandruff", "비듬성", "dandruff-prone", "비듬"),
    ScalpType("hair_loss", "탈모성", "hair-loss-prone", "탈모"),
    ScalpType("sensitive", "민감성", "sensitive", "민감성"),
    ScalpType("healthy", "양호", "healthy", None),
)
# The ingredient table's own type names, in table order.
TABLE_TYPES: tuple[str, ...] = ("지성", "건성", "민감성", "비듬", "탈모", "지루성")


@dataclass(frozen=True)
class Category:
    key: str
    ko: str
    disp_cat_no: str  # default Olive Young code (late 2024); the crawler reads codes from config
    file_stem: str  # the original DeepRoot CSV file prefix


CATEGORIES: tuple[Category, ...] = (
    Category("shampoo", "샴푸", "1000001000400080001", "shampoo"),
    Category("rinse_conditioner", "린스/컨디셔너", "1000001000400080002", "rinse"),
    Category("shampoo_bar_dry_shampoo", "샴푸바/드라이샴푸", "1000001000400080005", "bar"),
    Category("hair_oil_serum", "헤어오일/헤어세럼", "1000001000400130002", "hairoil"),
    Category("hair_water", "헤어워터", "1000001000400130001", "hairwater"),
    Category("scalp_tonic", "헤어토닉/두피토닉", "1000001000400130004", "tonic"),
    Category("scalp_pack_scaler", "두피팩/스케일러", "1000001000400070003", "scaler"),
)
CATEGORY_KEYS: tuple[str, ...] = tuple(c.key for c in CATEGORIES)


def _lookup(kind: str, value: str, items: tuple, names: tuple[str, ...]):  # noqa: ANN202
    v = value.strip()
    for item in items:
        if v == item.key or any(v == getattr(item, n) for n in names):
            return item
    valid = ", ".join(f"{i.key} ({i.ko})" for i in items)
    raise InputError(f"unknown {kind} {value!r}; valid: {valid}")


def symptom(value: str) -> Symptom:
    """The symptom named by its key (`dandruff`) or Korean label (`비듬`)."""
    return _lookup("symptom", value, SYMPTOMS, ("ko",))


def scalp_type(value: str) -> ScalpType:
    """The scalp type named by key (`oily`), Korean (`지성`) or table name (`비듬` for 비듬성)."""
    return _lookup("scalp type", value, SCALP_TYPES, ("ko", "table_type"))


def category(value: str) -> Category:
    """The category named by key (`shampoo`), Korean label or original file stem."""
    return _lookup("category", value, CATEGORIES, ("ko", "file_stem", "disp_cat_no"))
