"""`product()`: one product of the catalog with its ingredients, tags, evidence and flags.

Read-only: the catalog is opened with `db.connect_read` and nothing is written. JSON form: schema
"deeproot.product/1" (`product()` returns it as a plain dict, documented in docs/web.md):

- the product row (`products`: brand, name, prices, rating, review_count, image_url, product_url,
  categories, ingredients_text, crawl times …; every column the catalog has, so columns added by
  a later catalog, e.g. `sold_out`, come through unchanged);
- `ingredients`: the parsed label in order (`product_ingredients`);
- `tags`: per ingredient table (`seed`, `extended`) the scalp types with the ingredients that
  justify each (`product_types`: evidence names and the matches with their position and token);
- `flags`: rows of a `product_flags` table or view when the catalog has one (an empty list
  otherwise).
"""

from __future__ import annotations

import datetime as _dt
import os
import re
from pathlib import Path
from typing import Any

from deeproot.catalog import db, schema
from deeproot.errors import DataError, InputError

JSON_SCHEMA = "deeproot.product/1"
# Olive Young goods numbers are a letter and 12 digits; the demo catalog uses the same shape.
# Anything else a caller sends is refused before it reaches SQL (it is a bound parameter anyway).
_GOODS_RE = re.compile(r"[A-Za-z0-9_-]{1,40}")


class ProductNotFound(InputError):
    """No product with this goods number in the catalog."""


def _jsonable(value: Any) -> Any:
    if isinstance(value, _dt.datetime | _dt.date):
        return value.isoformat()
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def _rows(cur: Any, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    res = cur.execute(sql, params)
    names = [d[0] for d in res.description]
    return [dict(zip(names, (_jsonable(v) for v in row), strict=True)) for row in res.fetchall()]


def _has_relation(cur: Any, name: str) -> bool:
    return bool(
        cur.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]
        ).fetchall()[0][0]
    )


def product(db_path: str | os.PathLike[str] | None, goods_no: str) -> dict[str, Any]:
    """One product with ingredients, tags, evidence and flags (the `deeproot.product/1` dict).

    Args:
        db_path: the catalog database (None: `$DEEPROOT_DATA_DIR/catalog.duckdb`).
        goods_no: the retailer's product id (goodsNo).

    Raises:
        InputError: a malformed goods number; ProductNotFound: none in the catalog.
        DataError: no catalog at `db_path`, or one of another schema version.
    """
    if not isinstance(goods_no, str) or not _GOODS_RE.fullmatch(goods_no):
        raise InputError(
            f"{str(goods_no)[:60]!r} is not a goods number; use the goodsNo of a product "
            "(a letter and 12 digits, e.g. A000000123456)"
        )
    path = Path(db_path) if db_path is not None else db.default_db_path()
    con = db.connect_read(path)
    try:
        version = schema.stored_version(con)
        if version != schema.SCHEMA_VERSION:
            raise DataError(
                f"{path} is not a deeproot catalog of schema version {schema.SCHEMA_VERSION}"
                f" (found {version or 'none'}); {db.BUILD_HINT}"
            )
        rows = _rows(con, "SELECT * FROM products WHERE goods_no = ?", [goods_no])
        if not rows:
            raise ProductNotFound(f"no product {goods_no} in the catalog {path}")
        row = rows[0]
        ingredients = _rows(
            con,
            "SELECT position, token, name, canonical, how, group_label FROM product_ingredients "
            "WHERE goods_no = ? ORDER BY position",
            [goods_no],
        )
        tags = _rows(
            con,
            "SELECT table_name, type, n_matches, evidence, matches FROM product_types "
            "WHERE goods_no = ? ORDER BY table_name, type",
            [goods_no],
        )
        flags = (
            _rows(con, "SELECT * FROM product_flags WHERE goods_no = ?", [goods_no])
            if _has_relation(con, "product_flags")
            else []
        )
    finally:
        con.close()
    by_table: dict[str, list[dict[str, Any]]] = {t: [] for t in schema.TAG_TABLES}
    for t in tags:
        by_table.setdefault(t.pop("table_name"), []).append(t)
    for f in flags:
        f.pop("goods_no", None)
    return {"schema": JSON_SCHEMA, **row, "ingredients": ingredients, "tags": by_table,
            "flags": flags}
