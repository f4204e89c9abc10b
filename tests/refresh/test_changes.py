"""The change report between two crawls of the offline site with known differences.

The crawls are the two refreshes of the `refreshed` fixture (a full crawl of v1, then an
incremental one of v2 that re-read every notice); the report here is made from the store alone.
"""

from __future__ import annotations

import json

import pytest
from refresh_helpers import PRICE, RATING, REFORM, SOLD_OUT, TEXT_ONLY

from deeproot.cli.main import main
from deeproot.errors import InputError
from deeproot.refresh.changes import JSON_SCHEMA, compare
from deeproot.refresh.markdown import render


def _goods(items):
    return [e["goods_no"] for e in items]


def _ids(refreshed):
    return refreshed.data, refreshed.first.crawl_id, refreshed.second.crawl_id


def test_two_crawls_give_exactly_the_changes(refreshed, sites):
    store, a, b = _ids(refreshed)
    rep = compare(store, since=a, until=b)
    assert (rep.before.crawl_id, rep.after.crawl_id) == (a, b)
    ch = rep.changes
    assert _goods(ch["new"]) == [sites.new]
    assert ch["new"][0]["categories"] == ["scalp_tonic"]
    assert _goods(ch["delisted"]) == [sites.delisted]
    [price] = ch["price"]
    assert price["goods_no"] == PRICE and price["delta"] == -1000
    assert price["pct"] == round(-1000 * 100 / price["price_before"], 1)
    [rating] = ch["ratings"]
    assert rating["goods_no"] == RATING
    assert (rating["rating_delta"], rating["reviews_delta"]) == (-0.2, 7)
    [reform] = ch["reformulated"]
    assert reform["goods_no"] == REFORM
    assert (reform["removed"], reform["added"]) == (["피록톤올아민"], [])
    assert (reform["types_lost"], reform["types_gained"]) == (["비듬", "지루성"], [])
    assert reform["removed_unrecognised"] == reform["added_unrecognised"] == []
    # the same list shown one ingredient per line is not a reformulation
    assert ch["text_changed"] == [
        {
            "goods_no": TEXT_ONLY,
            "brand": "라보에이치",
            "name": ch["text_changed"][0]["name"],
            "categories": ["scalp_tonic"],
            "change": "edited",
        }
    ]
    assert [(e["goods_no"], e["sold_out_before"]) for e in ch["sold_out"]] == [(SOLD_OUT, False)]
    assert ch["back_in_stock"] == []
    assert ch["rank"] is None
    assert rep.counts()["rank"] is None
    assert any("only in refresh reports" in n for n in rep.notes)


def test_json_schema_and_markdown(refreshed):
    store, a, b = _ids(refreshed)
    data = compare(store, since=a, until=b).to_json()
    assert data["schema"] == JSON_SCHEMA
    assert list(data["changes"]) == [
        "new",
        "delisted",
        "sold_out",
        "back_in_stock",
        "price",
        "ratings",
        "reformulated",
        "text_changed",
        "rank",
    ]
    assert data["before"]["crawl_id"] == a and data["after"]["crawl_id"] == b
    assert data["after"]["categories"] == ["scalp_tonic", "scalp_pack_scaler"]
    assert data["summary"]["reformulated"] == 1 and data["summary"]["rank"] is None
    json.dumps(data)  # serialisable as is
    md = render(data)
    assert md.startswith(f"**deeproot changes** — crawl {b} vs {a}\n")
    assert "### Reformulated (1)" in md
    assert f"({REFORM}): removed 피록톤올아민; **no longer tagged 비듬, 지루성**" in md
    assert "### Delisted (1)" in md and "### New (1)" in md
    assert "(-" in md.split("### Price changes (1)")[1].splitlines()[1]


def test_first_crawl_and_since(refreshed):
    store, a, b = _ids(refreshed)
    first = compare(store, until=a)
    assert first.before is None and len(first.changes["new"]) == first.after.products
    assert first.changes["delisted"] == []
    default = compare(store, until=b)  # the crawl just before b
    assert default.to_json()["changes"] == compare(store, since=a, until=b).to_json()["changes"]
    with pytest.raises(InputError, match="no complete crawl started before 2001-01-01"):
        compare(store, since="2001-01-01")
    with pytest.raises(InputError, match="neither a complete crawl id nor a date"):
        compare(store, since="yesterday")
    with pytest.raises(InputError, match="20990101T000000Z-abcd: no complete crawl with that id"):
        compare(store, since="20990101T000000Z-abcd")
    # a date after the first crawl started picks it as the baseline
    later = compare(store, since="2999-01-01", until=b)
    assert later.before is not None and later.before.crawl_id == a


def test_changes_cli(refreshed, capsys):
    store, a, b = _ids(refreshed)
    rc = main(["changes", "--data", str(store), "--since", a, "--until", b, "--json"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    data = json.loads(out)
    assert data["summary"]["new"] == 1 and data["after"]["crawl_id"] == b
    assert data["changes"]["rank"] is None and "refresh" not in data
    # no options: the refresh's own report of the newest crawl (it holds the rank changes)
    rc = main(["changes", "--data", str(store), "--json"])
    out, _ = capsys.readouterr()
    stored = json.loads(out)
    newest = sorted(p.stem for p in (store / "reports").glob("*.json"))[-1]
    assert rc == 0 and stored["after"]["crawl_id"] == newest and "refresh" in stored
    assert stored == json.loads((store / "reports" / f"{newest}.json").read_text())
    rc = main(["changes", "--data", str(store), "--since", a, "--until", b])
    out, _ = capsys.readouterr()
    assert rc == 0 and out.startswith("**deeproot changes**")
    rc = main(["changes", "--data", str(store), "--since", "nope"])
    out, err = capsys.readouterr()
    assert rc == 3 and out == ""
    assert err.startswith("error: --since 'nope' is neither a complete crawl id nor a date")
    rc = main(["changes", "--data", str(store / "missing")])
    _, err = capsys.readouterr()
    assert rc == 3 and "no crawl store" in err


def _entry(i: int, **kw) -> dict:
    return {"goods_no": f"P-{i:02d}", "brand": "B", "name": f"n{i}", "categories": ["shampoo"]} | kw


def test_markdown_caps_sections_and_strips_control_characters():
    prices = [
        _entry(
            i,
            currency="KRW",
            price_before=1000,
            price_after=1000 + 10 * i,
            delta=10 * i,
            pct=float(i),
            list_price_before=1000,
            list_price_after=1000,
        )
        for i in range(1, 21)
    ]
    rep = {
        "schema": JSON_SCHEMA,
        "before": {"crawl_id": "20261101T000000Z-aaaa"},
        "after": {"crawl_id": "20261102T000000Z-bbbb", "products": 20},
        "summary": {"price": 20, "new": 1, "rank": None},
        "changes": {
            "price": prices,
            "new": [_entry(99, name="evil\x1b[31m\u202ename\nx", price_sale=None, sold_out=None)],
        },
        "notes": [],
    }
    md = render(rep, limit=15)
    lines = md.split("### Price changes (20)\n")[1].split("\n\n")[0].splitlines()
    assert len(lines) == 16 and lines[-1] == "- … and 5 more in the JSON report"
    assert lines[0].startswith("- **B n20** (P-20): 1,000 → 1,200 (+20.0%)")  # biggest first
    assert "- **B evilname x** (P-99): shampoo" in md
    assert "\x1b" not in md and "\u202e" not in md
