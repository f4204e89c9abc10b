"""What every table, view and column of the catalog means, written into the file (`COMMENT ON`).

Any DuckDB client sees them (`duckdb_tables()`, `duckdb_columns()`); `deeproot sql --schema`
prints them. A column's comment is looked up by (table, column), then by column name alone.
"""

from __future__ import annotations

from typing import Any

TABLES: dict[str, str] = {
    "catalog_meta": "Settings of this catalog file: schema_version, built_at, source_fingerprint.",
    "crawls": "Stored, append-only: one row per crawl ingested (or CSV/feed import).",
    "crawl_records": "Stored, append-only: product x category x crawl, as the crawl saw it.",
    "texts": "Stored: one row per distinct ingredient text (md5), as the engine read it.",
    "text_ingredients": "Stored: the ingredients of each text, in label order.",
    "text_matches": "Stored: evidence that a text serves a scalp type (ingredient x type x table).",
    "text_flags": "Stored: evidence that a text carries a flag (allergen, free-of family ...).",
    "functional_claims": "Derived: each distinct functional-cosmetic notice text and its claims.",
    "text_flag_summary": "Derived, kept per text (only new texts are added): its flags, allergens "
    "and flag bit mask.",
    "product_categories": "Derived serving table: current listings (latest crawl per category).",
    "products": "Derived serving table: the latest state of every product ever crawled.",
    "recommend_index": "Derived serving table for recommend: per listed product and category.",
    "recommend_shortlist": "Derived serving table for recommend: top 100 per table, type, cat.",
    "fit_counts": "Derived serving table for recommend: n_fit and n_total per type mask.",
    "product_history": "View (compatibility alias of analyst.product_history).",
    "product_ingredients": "View (compatibility alias of analyst.product_ingredients).",
    "product_types": "View (compatibility alias of analyst.product_types).",
    "product_flags": "View (compatibility alias of analyst.product_flags).",
    "category_type_counts": "View (compatibility alias of analyst.category_type_counts).",
    "formula_changes": "View (compatibility alias of analyst.formula_changes).",
    "analyst.product_history": "Every crawl record of every product: price, rating, stock trends.",
    "analyst.product_ingredients": "The ingredients of each product's current list.",
    "analyst.product_types": "Scalp types each product serves, with the matched ingredients.",
    "analyst.product_flags": "Flags each product carries, with the ingredients that set them.",
    "analyst.category_type_counts": "Products per category serving each scalp type.",
    "analyst.category_flag_counts": "Products per category carrying each flag.",
    "analyst.formula_changes": "Crawls whose ingredient text differs from the previous crawl's.",
    "analyst.reformulations": "Formula changes that add or remove an ingredient (text-only "
    "changes left out), with what was added and removed.",
    "analyst.brand_free_of": "Per brand and free-of family: listed products, and how many are "
    "free of it (n_free = n_products: the whole range is free of it).",
}

COLUMNS: dict[str, str] = {
    "key": "Setting name.",
    "value": "Setting value.",
    "crawl_id": "Crawl id (the crawler's partition name; `csv-<hash>` for a CSV import).",
    "crawled_at": "When the record was crawled (UTC). Carried-forward records: the crawl's start.",
    "started_at": "When the crawl started (UTC), from its manifest.",
    "source": "Where it came from: parquet (crawl store) or csv; for flags, the legal source.",
    "location": "The folder or files it was read from.",
    "fingerprint": "sha256 over the crawl's files (names and bytes): history is append-only.",
    "stat_signature": "File names, sizes and mtimes when last checked (a fast unchanged test).",
    "n_records": "Records ingested.",
    "imported_at": "When it was ingested (UTC).",
    "goods_no": "Olive Young goods number (A/B + 12 digits).",
    "category": "Category key (deeproot.taxonomy): shampoo, rinse_conditioner, scalp_tonic, ...",
    "brand": "Brand as listed.",
    "name": "Product name; in ingredient tables, the token without decorations.",
    "price_sale": "Sale price (KRW), NULL when unknown.",
    "price_list": "List price before discount (KRW), NULL when unknown.",
    "currency": "Currency of the prices (KRW).",
    "rating": "Average star rating 1-5; NULL when unrated (never 0.0).",
    "review_count": "Number of reviews.",
    "image_url": "Product image URL.",
    "product_url": "Product page URL without tracking parameters.",
    "ingredients_text": "The 전성분 (full ingredient list) text as published.",
    "text_hash": "md5 of the ingredient text; NULL when there is none.",
    "has_ingredients": "Whether an ingredient list was found.",
    "listing_rank": "Position in the category listing (1 = first).",
    "disp_cat_no": "Olive Young display-category number.",
    "carried": "True when the crawl reused an earlier detail record (listing card unchanged).",
    "carried_from": "The crawl whose detail record a carried record reuses.",
    "review_source": "Where rating and review count came from (listing card, stats API, detail).",
    "ingredients_at": "When the ingredient notice was last read (UTC); NULL in older crawls.",
    "source_layout": "Which page layout the record was parsed from.",
    "sold_out": "Sold out when crawled; NULL when the source did not say (older crawls, CSV).",
    "functional_claim": "The notice's 기능성 화장품 (MFDS functional cosmetic) row, as written.",
    "hair_loss_functional_claim": "True when the notice states a 탈모 증상 완화 functional claim.",
    "placeholder": "True when the seller gave no real list (e.g. '상세페이지 참조').",
    "n_ingredients": "Ingredients read from the text.",
    "n_unknown": "Ingredients the engine could not name.",
    "error": "Why the engine refused the text (e.g. over its size limit); NULL when read.",
    "position": "0-based position of the ingredient on the label.",
    "token": "The ingredient as written on the label.",
    "canonical": "MFDS standard name; NULL when unknown.",
    "how": "How the name was matched (exact, synonym, variant, fuzzy, rule ...).",
    "group_label": "Option group such as [텐더블룸], NULL outside groups.",
    "table_name": "Ingredient table: seed (the KCA table as the seed had it) or extended.",
    "type": "Ingredient-table scalp type: 지성 건성 민감성 비듬 탈모 지루성.",
    "entry": "The table entry it matched.",
    "flag": "Flag key: allergen, hair_loss_functional, sulfate_surfactant, silicone, paraben, "
    "mineral_oil, synthetic_colour, fragrance.",
    "flags": "Flag keys the product's ingredient list carries.",
    "allergens": "The MFDS fragrance allergens in the list (standard names).",
    "free_of": "Free-of families the list does not contain; NULL without a readable list.",
    "flag_mask": "Bit mask of flags (bit i = FLAGS[i]).",
    "claim_text": "A distinct functional-claim notice text.",
    "claims": "The MFDS functional claims it states (hair_loss, whitening ...).",
    "listed_ok": "True when the text was read as a real ingredient list.",
    "categories": "Categories the product is listed in now, taxonomy order.",
    "listed": "In some current listing.",
    "first_crawled_at": "First crawl that saw the product (UTC).",
    "last_crawled_at": "Latest crawl that saw the product (UTC).",
    "last_crawl_id": "Latest crawl that saw the product.",
    "n_crawls": "Crawls that saw the product.",
    "brand_key": "Brand compared case-insensitively (one pick per brand).",
    "score_bayes": "Bayesian average rating (see docs/catalog.md).",
    "mask_seed": "Bit mask of scalp types matched in the seed table.",
    "mask_extended": "Bit mask of scalp types matched in the extended table.",
    "hair_loss_claim": "The product states the hair-loss functional claim.",
    "has_list": "The product has a readable ingredient list (free-of filters need one).",
    "is_sold_out": "Sold out (NULL counted as in stock).",
    "seed_rank": "Rank by rating, then reviews, in the category.",
    "bayes_rank": "Rank by Bayesian average, then reviews, in the category.",
    "pos_seed": "Position in this shortlist by seed rank.",
    "pos_bayes": "Position in this shortlist by bayes rank.",
    "ev_seed": "Matched ingredients in the seed table.",
    "ev_extended": "Matched ingredients in the extended table.",
    "mask": "Bit mask of scalp types.",
    "n_total": "Listed products in the category.",
    "n_fit_seed": "Products of the category matching the mask in the seed table.",
    "n_fit_extended": "Products of the category matching the mask in the extended table.",
    "n_matches": "Matching ingredients.",
    "evidence": "Matched standard names, sorted.",
    "matches": "Each match: position, token, canonical, entry, how.",
    "n_products": "Products.",
    "n_with_list": "Products with a readable ingredient list.",
    "n_listed": "Products listed in the category.",
    "n_free": "Products free of the family.",
    "family": "Free-of family (a flag key).",
    "previous_crawl_id": "The product's crawl before.",
    "previous_text_hash": "Its ingredient text before.",
    "added": "Ingredients added (standard names, else label names).",
    "removed": "Ingredients removed (standard names, else label names).",
}


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def comment_sql(con: Any) -> list[str]:
    """`COMMENT ON` statements for every commented table, view and column in the catalog."""
    rows = con.execute(
        "SELECT schema_name, table_name, column_name, "
        "(SELECT count(*) FROM duckdb_views() v WHERE v.schema_name = c.schema_name "
        " AND v.view_name = c.table_name AND NOT v.internal) > 0 AS is_view "
        "FROM duckdb_columns() c WHERE database_name = current_database() "
        "AND schema_name IN ('main', 'analyst') AND NOT internal ORDER BY ALL"
    ).fetchall()
    out: list[str] = []
    seen: set[str] = set()
    for schema, table, column, is_view in rows:
        qual = table if schema == "main" else f"{schema}.{table}"
        if qual not in seen:
            seen.add(qual)
            if qual in TABLES:
                kind = "VIEW" if is_view else "TABLE"
                out.append(f"COMMENT ON {kind} {qual} IS {_lit(TABLES[qual])}")
        text = COLUMNS.get(column)
        if text:
            out.append(f"COMMENT ON COLUMN {qual}.{column} IS {_lit(text)}")
    return out
