"""A `deeproot.changes/1` report as Markdown short enough for a chat message or an email.

Rendered from the JSON object (not the dataclass), so a stored report renders the same as a fresh
one. Each kind is one section, biggest movements first, at most `limit` lines, then a line
saying how many more the JSON report holds.
"""

from __future__ import annotations

import functools
from typing import Any

from deeproot import taxonomy
from deeproot.terminal import printable

_TITLES = {
    "reformulated": "Reformulated",
    "new": "New",
    "delisted": "Delisted",
    "sold_out": "Sold out",
    "back_in_stock": "Back in stock",
    "price": "Price changes",
    "rank": "Recommendation rank changes",
    "ratings": "Rating and review movement",
    "text_changed": "Ingredient text edited (no ingredient added or removed)",
}
_ORDER = (
    "reformulated",
    "new",
    "delisted",
    "sold_out",
    "back_in_stock",
    "price",
    "rank",
    "ratings",
    "text_changed",
)
_SUMMARY = {  # kind -> (one, many)
    "new": ("new", "new"),
    "delisted": ("delisted", "delisted"),
    "sold_out": ("sold out", "sold out"),
    "back_in_stock": ("back in stock", "back in stock"),
    "price": ("price change", "price changes"),
    "ratings": ("rating/review move", "rating/review moves"),
    "reformulated": ("reformulated", "reformulated"),
    "text_changed": ("text-only edit", "text-only edits"),
    "rank": ("rank change", "rank changes"),
}


def _t(v: Any) -> str:
    # product names come from a web page: never let them carry terminal escapes or break a line
    return printable(str(v)).replace("\n", " ").replace("|", "/").strip()


def _who(e: dict[str, Any]) -> str:
    brand = f"{_t(e['brand'])} " if e.get("brand") else ""
    return f"**{brand}{_t(e.get('name') or '')}** ({e['goods_no']})"


def _won(v: int | None) -> str:
    return "?" if v is None else f"{v:,}"


def _names(xs: list[str]) -> str:
    return ", ".join(_t(x) for x in xs)


def _reform(e: dict[str, Any]) -> str:
    parts = []
    if e["removed"] or e["removed_unrecognised"]:
        parts.append("removed " + _names(e["removed"] + e["removed_unrecognised"]))
    if e["added"] or e["added_unrecognised"]:
        parts.append("added " + _names(e["added"] + e["added_unrecognised"]))
    if e["types_lost"]:
        parts.append("**no longer tagged " + _names(e["types_lost"]) + "**")
    if e["types_gained"]:
        parts.append("now tagged " + _names(e["types_gained"]))
    if e["flags_lost"]:
        parts.append("flags lost: " + _names(e["flags_lost"]))
    if e["flags_gained"]:
        parts.append("flags gained: " + _names(e["flags_gained"]))
    return "; ".join(parts)


def _line(kind: str, e: dict[str, Any]) -> str:
    if kind == "reformulated":
        return f"{_who(e)}: {_reform(e)}"
    if kind == "new":
        price = (
            f", {_won(e['price_sale'])} {e.get('currency') or ''}".rstrip()
            if e.get("price_sale") is not None
            else ""
        )
        cats = ", ".join(e["categories"])
        sold = ", sold out" if e.get("sold_out") else ""
        return f"{_who(e)}: {cats}{price}{sold}"
    if kind == "delisted":
        return f"{_who(e)}: {', '.join(e['categories'])}"
    if kind == "sold_out":
        return _who(e) + ("" if e.get("sold_out_before") is False else " (first seen sold out)")
    if kind == "back_in_stock":
        return _who(e)
    if kind == "price":
        pct = "" if e["pct"] is None else f" ({e['pct']:+.1f}%)"
        return f"{_who(e)}: {_won(e['price_before'])} → {_won(e['price_after'])}{pct}"
    if kind == "ratings":
        bits = []
        if e["rating_before"] != e["rating_after"]:
            bits.append(f"rating {e['rating_before']} → {e['rating_after']}")
        if e["reviews_before"] != e["reviews_after"]:
            d = e["reviews_delta"]
            bits.append(
                f"reviews {_won(e['reviews_before'])} → {_won(e['reviews_after'])}"
                + ("" if d is None else f" ({d:+,})")
            )
        return f"{_who(e)}: " + ", ".join(bits)
    if kind == "text_changed":
        return f"{_who(e)}: {e['change']}"
    if kind == "rank":
        where = f"{_type_ko(e['type'])} × {e['category']}"
        b = "—" if e["before"] is None else f"#{e['before']}"
        a = "—" if e["after"] is None else f"#{e['after']}"
        return f"{where}: {_who(e)} {b} → {a}"
    return _who(e)


def _type_ko(key: str) -> str:
    try:
        return taxonomy.scalp_type(key).ko
    except Exception:  # noqa: BLE001 - an unknown key from an old report renders as is
        return key


def _sort_key(kind: str, e: dict[str, Any]) -> tuple:
    if kind == "price":
        return (-abs(e["pct"] or 0.0), e["goods_no"])
    if kind == "ratings":
        return (-abs(e["rating_delta"] or 0.0), -abs(e["reviews_delta"] or 0), e["goods_no"])
    if kind == "rank":
        return (e["type"], e["category"], e["after"] or 999, e["goods_no"])
    return (e["goods_no"],)


def _rank_section(items: list[dict[str, Any]], limit: int, visible: int = 3) -> list[str]:
    """One line per scalp type x category whose first `visible` picks changed."""
    types = {t.key: i for i, t in enumerate(taxonomy.SCALP_TYPES)}
    cats = {c.key: i for i, c in enumerate(taxonomy.CATEGORIES)}
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for e in items:
        if min(e["before"] or 999, e["after"] or 999) <= visible:
            groups.setdefault((e["type"], e["category"]), []).append(e)
    keys = sorted(groups, key=lambda k: (types.get(k[0], 99), cats.get(k[1], 99), k))
    lines = ["", f"### {_TITLES['rank']} ({len(items)}; lists whose top {visible} changed)"]
    for key in keys[:limit]:
        moves = []
        for e in sorted(groups[key], key=lambda e: (e["after"] or 999, e["before"] or 999)):
            who = f"{_t(e['brand'] or '')} ({e['goods_no']})".strip()
            if e["before"] is None:
                moves.append(f"{who} in at #{e['after']}")
            elif e["after"] is None:
                moves.append(f"{who} out (was #{e['before']})")
            else:
                moves.append(f"{who} #{e['before']} → #{e['after']}")
        lines.append(f"- **{_type_ko(key[0])} × {key[1]}**: " + "; ".join(moves))
    if len(keys) > limit:
        lines.append(f"- … and {len(keys) - limit} more lists in the JSON report")
    if not keys:
        lines.append(f"- only positions below #{visible} moved; see the JSON report")
    return lines


def render(report: dict[str, Any], *, limit: int = 15) -> str:
    """Markdown for a `deeproot.changes/1` object."""
    after, before = report["after"], report.get("before")
    head = f"**deeproot changes** — crawl {after['crawl_id']}"
    head += f" vs {before['crawl_id']}" if before else " (first crawl)"
    lines = [head, ""]
    counts = report["summary"]
    bits = [
        f"{counts[k]} {_SUMMARY[k][counts[k] != 1]}" for k in _SUMMARY if counts.get(k) is not None
    ]
    lines.append(f"{after['products']:,} products now; " + ", ".join(bits) + ".")
    if all(not counts.get(k) for k in counts):
        lines.append("")
        lines.append("Nothing changed.")
    ref = report.get("refresh") or {}
    crawl = ref.get("crawl") or {}
    if crawl:
        cost = (
            f"Crawl: {crawl.get('requests', '?')} requests for {crawl.get('records', '?')} records"
        )
        if crawl.get("recheck_requests") is not None:
            cost += f", of which {crawl['recheck_requests']} re-read ingredient notices"
            cost += f" (--recheck-days {crawl.get('recheck_days')})"
        lines += ["", cost + "."]
    for kind in _ORDER:
        items = report["changes"].get(kind)
        if not items:
            continue
        if kind == "rank":
            lines += _rank_section(items, limit)
            continue
        lines += ["", f"### {_TITLES[kind]} ({len(items)})"]
        shown = sorted(items, key=functools.partial(_sort_key, kind))[:limit]
        lines += [f"- {_line(kind, e)}" for e in shown]
        if len(items) > limit:
            lines.append(f"- … and {len(items) - limit} more in the JSON report")
    for note in report.get("notes") or []:
        lines += ["", f"_{_t(note)}_"]
    return "\n".join(lines) + "\n"
