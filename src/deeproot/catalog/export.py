"""`deeproot catalog export OUT`: the catalog's derived tables as Parquet, for any other tool.

One file per table in OUT (created when missing): products (latest state), product_categories
(current listings), product_types (scalp-type tags with evidence), product_flags (flags with
evidence), product_ingredients, product_history (every crawl record), reformulations. Each file
is written beside its final name and renamed into place, so a reader never sees half a file.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from deeproot.catalog import db
from deeproot.errors import InputError

EXPORTS: tuple[tuple[str, str], ...] = (
    ("products", "SELECT * EXCLUDE (flag_mask) FROM products ORDER BY goods_no"),
    ("product_categories", "SELECT * FROM product_categories ORDER BY category, listing_rank"),
    ("product_types", "SELECT * FROM analyst.product_types ORDER BY ALL"),
    ("product_flags", "SELECT * FROM analyst.product_flags ORDER BY ALL"),
    ("product_ingredients",
     "SELECT * FROM analyst.product_ingredients ORDER BY goods_no, position"),
    ("product_history", "SELECT * FROM analyst.product_history ORDER BY goods_no, crawled_at"),
    ("reformulations", "SELECT * FROM analyst.reformulations ORDER BY crawled_at, goods_no"),
)


def export(
    out: str | os.PathLike[str], db_path: str | os.PathLike[str] | None = None
) -> list[tuple[Path, int]]:
    """Write the derived tables as Parquet files into `out`; returns (file, rows) pairs."""
    target = Path(out)
    if target.exists() and not target.is_dir():
        raise InputError(f"{target} is not a folder; give a folder to export the tables into")
    path = Path(db_path) if db_path is not None else db.default_db_path()
    con = db.connect_read(path)
    try:
        target.mkdir(parents=True, exist_ok=True)
        written = []
        for name, query in EXPORTS:
            final = target / f"{name}.parquet"
            tmp = target / f".{name}.parquet.partial-{os.getpid()}"
            try:
                con.execute(
                    f"COPY ({query}) TO '{db.sql_str(str(tmp))}' (FORMAT parquet, "
                    "COMPRESSION zstd)"
                )
                os.replace(tmp, final)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
            n = con.execute(f"SELECT count(*) FROM ({query})").fetchall()[0][0]
            written.append((final, int(n)))
        return written
    finally:
        con.close()
