"""The DuckDB product catalog: build from the crawl store or the original CSVs, recommend, query.

Submodules: `db` (paths and connections), `schema` (tables and views), `store` (the crawler's
Parquet store), `csv_import` (original DeepRoot CSVs), `tagging` (tags per distinct text),
`build` (the whole refresh), `recommend` and `survey` (product choice), `sql` (read-only queries).
Nothing here is imported by `deeproot --help`; duckdb is imported inside functions.
"""

from __future__ import annotations

from deeproot.catalog.db import default_db_path, default_store_dir

__all__ = ["default_db_path", "default_store_dir"]
