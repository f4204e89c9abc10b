"""The DuckDB product catalog: build from the crawl store or the original CSVs, recommend, query.

Submodules: `db` (paths and connections), `schema` (tables and views) and `comments` (what they
mean), `store` (the crawler's Parquet store), `csv_import` (original DeepRoot CSVs), `tagging`
(tags and flags per distinct text), `ingest` (what a build adds), `swap` (the build's private copy
and the atomic rename), `build` (the whole refresh), `recommend` and `survey` (product choice),
`sql` (the read-only query sandbox), `output` (query results as text or Parquet), `export`
(derived tables as Parquet); `feed` and `product` belong to the refresh and web helpers.
Nothing here is imported by `deeproot --help`; duckdb is imported inside functions.
"""

from __future__ import annotations

from deeproot.catalog.db import default_db_path, default_store_dir

__all__ = ["default_db_path", "default_store_dir"]
