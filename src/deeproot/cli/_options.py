"""CLI options shared by several commands, declared once (help, choices, validation)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

# Ingredient families a product can be free of; the same tuple as deeproot.ingredients.flags.FREE_OF
# (a test checks), spelled here so that `deeproot --help` does not import the ingredient tables.
FREE_OF_FAMILIES = (
    "sulfate_surfactant",
    "silicone",
    "paraben",
    "mineral_oil",
    "synthetic_colour",
    "fragrance",
)


def one_of(choices: tuple[str, ...], *, commas: bool = False) -> Any:
    """A callback for a repeatable option with fixed values (`commas`: also `a,b` in one value):
    a bad value is a usage error (exit 2) naming the choices. (Repeatable enums would show as
    `<list[...]>` in help.)"""

    def check(value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        flat = [v.strip() for raw in value for v in (raw.split(",") if commas else [raw])]
        for v in flat:
            if v not in choices:
                raise typer.BadParameter(
                    f"{v!r} is not one of {', '.join(repr(c) for c in choices)}"
                )
        return [v for v in flat if v]

    return check


FreeOfOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--free-of",
        metavar="FAMILY[,FAMILY…]",
        callback=one_of(FREE_OF_FAMILIES, commas=True),
        help="Only products free of these ingredient families (comma-separated or repeated): "
        + ", ".join(FREE_OF_FAMILIES)
        + ".",
    ),
]
NoAllergensOpt = Annotated[
    bool,
    typer.Option("--no-allergens", help="Only products without MFDS fragrance allergens."),
]
IncludeSoldOutOpt = Annotated[
    bool, typer.Option("--include-sold-out", help="Show sold-out products too (marked).")
]
