"""Scheduled refresh and the change report.

Submodules: `changes` (what changed between two complete crawls of the store: schema
`deeproot.changes/1`, JSON and Markdown), `refresh` (one locked run: incremental crawl, catalog
build, change report). Nothing here is imported by `deeproot --help`; duckdb and pyarrow load
inside functions.
"""

from __future__ import annotations
