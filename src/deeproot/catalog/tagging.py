"""Tag every ingredient text not tagged yet, once per distinct text, in bounded memory.

Texts are keyed by md5. New texts stream out of DuckDB in record batches; each is tagged with
`deeproot.ingredients.Tagger` for both ingredient tables and the results are written to Parquet
files in a scratch folder, then loaded with one INSERT per table. Memory holds one batch.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from deeproot.catalog.schema import TAG_TABLES

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]
BATCH = 2000


def _schemas() -> dict[str, Any]:
    import pyarrow as pa

    s, i = pa.string(), pa.int32()
    return {
        "texts": pa.schema(
            [
                ("text_hash", s),
                ("placeholder", pa.bool_()),
                ("n_ingredients", i),
                ("n_unknown", i),
                ("error", s),
            ]
        ),
        "text_ingredients": pa.schema(
            [
                ("text_hash", s),
                ("position", i),
                ("token", s),
                ("name", s),
                ("canonical", s),
                ("how", s),
                ("group_label", s),
            ]
        ),
        "text_matches": pa.schema(
            [
                ("text_hash", s),
                ("table_name", s),
                ("type", s),
                ("position", i),
                ("token", s),
                ("canonical", s),
                ("entry", s),
                ("how", s),
            ]
        ),
    }


def _rows(text_hash: str, text: str, taggers: dict[str, Any]) -> dict[str, list[tuple]]:
    from deeproot.errors import InputError

    out: dict[str, list[tuple]] = {"texts": [], "text_ingredients": [], "text_matches": []}
    first = None
    for table, tagger in taggers.items():
        try:
            res = tagger.tag(text)
        except InputError as exc:  # over the size limit, another script: kept untagged, said why
            out["texts"] = [(text_hash, False, 0, 0, str(exc))]
            out["text_matches"] = []
            return out
        if first is None:
            first = res
        pos = {}
        for ing in res.ingredients:
            pos.setdefault(ing.token.text, ing.token.position)
            pos.setdefault(ing.token.name, ing.token.position)
        for m in res.matches:
            out["text_matches"].append(
                (text_hash, table, m.type, pos.get(m.token), m.token, m.canonical, m.entry, m.how)
            )
    assert first is not None
    n_unknown = len(first.unknown)
    out["texts"].append((text_hash, first.placeholder, first.n_ingredients, n_unknown, None))
    for ing in first.ingredients:
        t = ing.token
        out["text_ingredients"].append(
            (text_hash, t.position, t.text, t.name, ing.canonical, ing.how, t.group)
        )
    return out


def tag_new_texts(con: Any, progress: Progress | None = None, batch: int = BATCH) -> int:
    """Tag the ingredient texts of `crawl_records` that `texts` lacks; returns how many."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from deeproot.ingredients import Tagger

    total = con.execute(
        "SELECT count(DISTINCT text_hash) FROM crawl_records r "
        "WHERE text_hash IS NOT NULL AND text_hash NOT IN (SELECT text_hash FROM texts)"
    ).fetchall()[0][0]
    if not total:
        return 0
    taggers = {t: Tagger(t) for t in TAG_TABLES}
    schemas = _schemas()
    scratch = Path(tempfile.mkdtemp(prefix="deeproot-tags-"))
    try:
        writers = {n: pq.ParquetWriter(scratch / f"{n}.parquet", s) for n, s in schemas.items()}
        reader = con.sql(
            "SELECT text_hash, any_value(ingredients_text) AS t FROM crawl_records "
            "WHERE text_hash IS NOT NULL AND text_hash NOT IN (SELECT text_hash FROM texts) "
            "GROUP BY text_hash"
        ).to_arrow_reader(batch)  # one batch in memory at a time
        done = 0
        for rb in reader:
            acc: dict[str, list[tuple]] = {n: [] for n in schemas}
            for h, text in zip(rb.column(0).to_pylist(), rb.column(1).to_pylist(), strict=True):
                for name, rows in _rows(h, text, taggers).items():
                    acc[name].extend(rows)
            for name, rows in acc.items():
                cols = list(zip(*rows, strict=True)) if rows else [[] for _ in schemas[name]]
                writers[name].write_table(
                    pa.Table.from_arrays(
                        [pa.array(c, f.type) for c, f in zip(cols, schemas[name], strict=True)],
                        schema=schemas[name],
                    )
                )
            done += rb.num_rows
            if progress:
                progress("tag", done, total)
        for w in writers.values():
            w.close()
        for name in schemas:
            path = str(scratch / f"{name}.parquet").replace("'", "''")
            con.execute(f"INSERT INTO {name} SELECT * FROM read_parquet('{path}')")
        log.info("tagged %d new ingredient texts", done)
        return done
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
