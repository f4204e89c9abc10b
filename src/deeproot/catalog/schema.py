"""The catalog's tables and views (documented in docs/catalog.md).

Stored tables keep everything ever imported (`crawls`, `crawl_records`) and every tag result
keyed by the md5 of the ingredient text (`texts`, `text_ingredients`, `text_matches`), so a
rebuild only adds. Derived tables (`product_categories`, `products`, `recommend_*`, `fit_counts`)
and the views are recomputed from them on every build.
"""

from __future__ import annotations

from deeproot.errors import DataError
from deeproot.taxonomy import CATEGORY_KEYS, TABLE_TYPES

SCHEMA_VERSION = "2"
TAG_TABLES: tuple[str, ...] = ("seed", "extended")

# Columns of one crawl record, in storage order, with their DuckDB types.
RECORD_COLUMNS: tuple[tuple[str, str], ...] = (
    ("crawl_id", "VARCHAR"),
    ("crawled_at", "TIMESTAMP"),  # UTC
    ("goods_no", "VARCHAR"),
    ("category", "VARCHAR"),
    ("brand", "VARCHAR"),
    ("name", "VARCHAR"),
    ("price_sale", "BIGINT"),
    ("price_list", "BIGINT"),
    ("currency", "VARCHAR"),
    ("rating", "DOUBLE"),
    ("review_count", "BIGINT"),
    ("image_url", "VARCHAR"),
    ("product_url", "VARCHAR"),
    ("ingredients_text", "VARCHAR"),
    ("text_hash", "VARCHAR"),  # md5 of ingredients_text; NULL when there is none
    ("has_ingredients", "BOOLEAN"),
    ("listing_rank", "INTEGER"),
    ("disp_cat_no", "VARCHAR"),
    ("carried", "BOOLEAN"),
    ("source_layout", "VARCHAR"),
)
REQUIRED_SOURCE_COLUMNS = ("goods_no", "category", "crawled_at")

_DDL_STORED = f"""
CREATE TABLE IF NOT EXISTS catalog_meta (key VARCHAR, value VARCHAR);
CREATE TABLE IF NOT EXISTS crawls (
    crawl_id VARCHAR PRIMARY KEY, crawled_at TIMESTAMP, source VARCHAR, location VARCHAR,
    fingerprint VARCHAR, n_records BIGINT, imported_at TIMESTAMP);
CREATE TABLE IF NOT EXISTS crawl_records ({", ".join(f"{n} {t}" for n, t in RECORD_COLUMNS)});
CREATE TABLE IF NOT EXISTS texts (
    text_hash VARCHAR, placeholder BOOLEAN, n_ingredients INTEGER, n_unknown INTEGER,
    error VARCHAR);
CREATE TABLE IF NOT EXISTS text_ingredients (
    text_hash VARCHAR, position INTEGER, token VARCHAR, name VARCHAR, canonical VARCHAR,
    how VARCHAR, group_label VARCHAR);
CREATE TABLE IF NOT EXISTS text_matches (
    text_hash VARCHAR, table_name VARCHAR, type VARCHAR, position INTEGER, token VARCHAR,
    canonical VARCHAR, entry VARCHAR, how VARCHAR);
"""


def _type_bit_case(column: str) -> str:
    whens = " ".join(f"WHEN '{t}' THEN {1 << i}" for i, t in enumerate(TABLE_TYPES))
    return f"CASE {column} {whens} ELSE 0 END"


def type_mask(types: list[str] | tuple[str, ...]) -> int:
    """The bit mask of ingredient-table types used by `recommend_index.mask_<table>`."""
    return sum(1 << TABLE_TYPES.index(t) for t in set(types))


_CATEGORY_CASE = (
    "CASE category "
    + " ".join(f"WHEN '{k}' THEN {i}" for i, k in enumerate(CATEGORY_KEYS))
    + " END"
)

_DDL_DERIVED = f"""
CREATE OR REPLACE TABLE product_categories AS
WITH cover AS (
    SELECT category, crawl_id, max(crawled_at) AS t FROM crawl_records GROUP BY ALL),
latest AS (
    SELECT category, crawl_id FROM cover
    QUALIFY row_number() OVER (PARTITION BY category ORDER BY t DESC, crawl_id DESC) = 1)
SELECT r.goods_no, r.category, min(r.listing_rank) AS listing_rank, r.crawl_id
FROM crawl_records r JOIN latest USING (category, crawl_id)
GROUP BY ALL;

CREATE OR REPLACE TABLE products AS
WITH pick AS (  -- narrow first: sorting or joining whole records (texts) costs several times more
    SELECT goods_no, crawl_id, category FROM crawl_records
    QUALIFY row_number() OVER (
        PARTITION BY goods_no
        ORDER BY crawled_at DESC, crawl_id DESC, text_hash IS NULL, category) = 1),
cats AS (
    SELECT goods_no, list(category ORDER BY {_CATEGORY_CASE}) AS categories
    FROM product_categories GROUP BY goods_no),
seen AS (
    SELECT goods_no, min(crawled_at) AS first_crawled_at, count(DISTINCT crawl_id) AS n_crawls
    FROM crawl_records GROUP BY goods_no),
meta AS (
    SELECT p.*, c.categories, s.first_crawled_at, s.n_crawls
    FROM pick p JOIN seen s USING (goods_no) LEFT JOIN cats c USING (goods_no))
SELECT l.goods_no, l.brand, l.name, l.price_sale, l.price_list, l.currency, l.rating,
       l.review_count, l.image_url, l.product_url, l.ingredients_text, l.text_hash,
       coalesce(l.has_ingredients, l.text_hash IS NOT NULL) AS has_ingredients,
       coalesce(m.categories, []::VARCHAR[]) AS categories, m.categories IS NOT NULL AS listed,
       m.first_crawled_at, l.crawled_at AS last_crawled_at, l.crawl_id AS last_crawl_id,
       m.n_crawls
FROM crawl_records l JOIN meta m USING (goods_no, crawl_id, category);

CREATE OR REPLACE TABLE recommend_index AS
WITH base AS (
    SELECT pc.category, p.goods_no,
           coalesce(nullif(lower(trim(p.brand)), ''), p.goods_no) AS brand_key,
           coalesce(p.rating, 0.0) AS rating, coalesce(p.review_count, 0) AS review_count,
           p.text_hash
    FROM product_categories pc JOIN products p USING (goods_no) WHERE p.listed),
prior AS (
    SELECT category,
           -- DECIMAL: an exact mean, the same whatever order the threads add in
           coalesce(avg(rating::DECIMAL(18, 4)) FILTER (WHERE review_count > 0), 0)::DOUBLE
               AS prior_m,
           coalesce(median(review_count) FILTER (WHERE review_count > 0), 1.0) AS prior_c
    FROM base GROUP BY category),
masks AS (
    SELECT text_hash,
           coalesce(bit_or(bit) FILTER (WHERE table_name = 'seed'), 0) AS mask_seed,
           coalesce(bit_or(bit) FILTER (WHERE table_name = 'extended'), 0) AS mask_extended
    FROM (SELECT DISTINCT text_hash, table_name, {_type_bit_case("type")} AS bit FROM text_matches)
    GROUP BY text_hash),
scored AS (
    SELECT b.category, b.goods_no, b.brand_key, b.rating, b.review_count,
           CASE WHEN b.review_count > 0
                THEN (b.review_count * b.rating + pr.prior_c * pr.prior_m)
                     / (b.review_count + pr.prior_c)
                ELSE pr.prior_m END AS score_bayes,
           coalesce(m.mask_seed, 0)::INTEGER AS mask_seed,
           coalesce(m.mask_extended, 0)::INTEGER AS mask_extended
    FROM base b JOIN prior pr USING (category) LEFT JOIN masks m USING (text_hash))
SELECT *,
       row_number() OVER (PARTITION BY category
                          ORDER BY rating DESC, review_count DESC, goods_no)::INTEGER AS seed_rank,
       row_number() OVER (PARTITION BY category
                          ORDER BY score_bayes DESC, review_count DESC, goods_no)::INTEGER
           AS bayes_rank
FROM scored
ORDER BY category, seed_rank;

CREATE OR REPLACE TABLE fit_counts AS
WITH g AS (
    SELECT category, mask_seed, mask_extended, count(*) AS n
    FROM recommend_index GROUP BY ALL)
SELECT g.category, m.mask::INTEGER AS mask, sum(g.n)::BIGINT AS n_total,
       coalesce(sum(g.n) FILTER (WHERE (g.mask_seed & m.mask) <> 0), 0)::BIGINT AS n_fit_seed,
       coalesce(sum(g.n) FILTER (WHERE (g.mask_extended & m.mask) <> 0), 0)::BIGINT
           AS n_fit_extended
FROM g, range({1 << len(TABLE_TYPES)}) m(mask)
GROUP BY ALL;

CREATE OR REPLACE TEMP TABLE shortlist_keys (
    table_name VARCHAR, type VARCHAR, category VARCHAR, goods_no VARCHAR, pos_seed INTEGER,
    pos_bayes INTEGER);

CREATE OR REPLACE VIEW product_history AS
SELECT goods_no, crawl_id, crawled_at, category, price_sale, price_list, currency, rating,
       review_count, text_hash, carried
FROM crawl_records;

CREATE OR REPLACE VIEW product_ingredients AS
SELECT p.goods_no, i.position, i.token, i.name, i.canonical, i.how, i.group_label
FROM products p JOIN text_ingredients i USING (text_hash);

CREATE OR REPLACE VIEW product_types AS
SELECT p.goods_no, m.table_name, m.type, count(*) AS n_matches,
       list(DISTINCT m.canonical ORDER BY m.canonical) AS evidence,
       list({{'position': m.position, 'token': m.token, 'canonical': m.canonical,
              'entry': m.entry, 'how': m.how}} ORDER BY m.position) AS matches
FROM products p JOIN text_matches m USING (text_hash)
GROUP BY ALL;

CREATE OR REPLACE VIEW category_type_counts AS
SELECT pc.category, m.table_name, m.type, count(DISTINCT pc.goods_no) AS n_products
FROM product_categories pc JOIN products p USING (goods_no)
JOIN (SELECT DISTINCT text_hash, table_name, type FROM text_matches) m USING (text_hash)
GROUP BY ALL;

CREATE OR REPLACE VIEW formula_changes AS
WITH per_crawl AS (
    SELECT goods_no, crawl_id, max(crawled_at) AS crawled_at,
           list_sort(list_distinct(list(text_hash))) AS texts
    FROM crawl_records WHERE text_hash IS NOT NULL GROUP BY goods_no, crawl_id),
seq AS (
    SELECT *, lag(crawl_id) OVER w AS previous_crawl_id, lag(texts) OVER w AS previous_texts
    FROM per_crawl WINDOW w AS (PARTITION BY goods_no ORDER BY crawled_at, crawl_id))
SELECT goods_no, previous_crawl_id, crawl_id, crawled_at,
       previous_texts[1] AS previous_text_hash, texts[1] AS text_hash
FROM seq
WHERE previous_texts IS NOT NULL AND previous_texts <> texts;
"""


def stored_version(con) -> str | None:  # noqa: ANN001 - duckdb connection
    """The schema version a catalog was built with (None: new or never finished a build)."""
    has_meta = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'catalog_meta'"
    ).fetchall()[0][0]
    if not has_meta:
        return None
    rows = con.execute("SELECT value FROM catalog_meta WHERE key = 'schema_version'").fetchall()
    return rows[0][0] if rows else None


def create_stored(con, path: object = "") -> None:  # noqa: ANN001
    """Create the stored tables when missing (never drops anything).

    Raises:
        DataError: the database holds a catalog of another schema version.
    """
    version = stored_version(con)
    if version not in (None, SCHEMA_VERSION):
        raise DataError(
            f"{path} holds a catalog of schema version {version}, this deeproot writes "
            f"version {SCHEMA_VERSION}; build a new one with --db NEW_FILE (or delete it)"
        )
    con.execute(_DDL_STORED)


SHORTLIST_K = 100  # per (table, type, category) and ranking, the top products kept


# What a recommendation shows of a product, then its evidence per table.
DETAIL_COLUMNS = (
    "goods_no",
    "name",
    "brand",
    "rating",
    "review_count",
    "price_sale",
    "price_list",
    "currency",
    "image_url",
    "product_url",
)
EVIDENCE_SQL = """
    SELECT text_hash, table_name,
           list({'type': type, 'token': token, 'canonical': canonical}
                ORDER BY position NULLS LAST, token) AS ev
    FROM (SELECT text_hash, table_name, type, token, canonical, min(position) AS position
          FROM text_matches WHERE text_hash IN (SELECT text_hash FROM {source})
          GROUP BY ALL)
    GROUP BY ALL"""


def _fill_shortlist(con) -> None:  # noqa: ANN001
    """The top SHORTLIST_K of every (table, type, category) by each ranking; type '*': all.

    Top-N aggregates (`min_by(goods_no, rank, K)`) instead of window sorts; a product in one
    ranking's top K only gets position K + 1 in the other, which is all a reader needs.
    """
    k = SHORTLIST_K
    lists = [("*", "*", "TRUE")] + [
        (table, t, f"(mask_{table} & {1 << i}) <> 0")
        for table in TAG_TABLES
        for i, t in enumerate(TABLE_TYPES)
    ]
    for table, t, cond in lists:
        con.execute(
            f"""INSERT INTO shortlist_keys
            WITH tops AS (
                SELECT category, min_by(goods_no, seed_rank, {k}) AS by_seed,
                       min_by(goods_no, bayes_rank, {k}) AS by_bayes
                FROM recommend_index WHERE {cond} GROUP BY category),
            s AS (SELECT category, unnest(by_seed) AS goods_no,
                         generate_subscripts(by_seed, 1) AS pos FROM tops),
            b AS (SELECT category, unnest(by_bayes) AS goods_no,
                         generate_subscripts(by_bayes, 1) AS pos FROM tops)
            SELECT '{table}', '{t}', category, goods_no, coalesce(s.pos, {k + 1}),
                   coalesce(b.pos, {k + 1})
            FROM s FULL OUTER JOIN b USING (category, goods_no)"""
        )
    cols = ", ".join(f"p.{c}" for c in DETAIL_COLUMNS[1:])
    con.execute(
        f"""CREATE OR REPLACE TABLE recommend_shortlist AS
        WITH p AS (
            SELECT goods_no, {cols}, p.text_hash FROM products p
            WHERE goods_no IN (SELECT goods_no FROM shortlist_keys)),
        ev AS ({EVIDENCE_SQL.replace("{source}", "p")})
        SELECT k.table_name, k.type, k.category, k.goods_no, r.brand_key, r.seed_rank,
               r.bayes_rank, k.pos_seed, k.pos_bayes, r.score_bayes,
               {cols},
               es.ev AS ev_seed, ee.ev AS ev_extended
        FROM shortlist_keys k JOIN recommend_index r USING (category, goods_no)
        JOIN p USING (goods_no)
        LEFT JOIN ev es ON es.text_hash = p.text_hash AND es.table_name = 'seed'
        LEFT JOIN ev ee ON ee.text_hash = p.text_hash AND ee.table_name = 'extended'
        ORDER BY k.table_name, k.type, k.category, r.seed_rank"""
    )
    con.execute("DROP TABLE shortlist_keys")


def create_derived(con) -> None:  # noqa: ANN001
    """Recompute the derived tables and views from the stored tables."""
    con.execute(_DDL_DERIVED)
    _fill_shortlist(con)
