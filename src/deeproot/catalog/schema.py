"""The catalog's tables and views (documented in docs/catalog.md).

Stored tables keep everything ever imported (`crawls`, `crawl_records`, append-only) and every tag
and flag result keyed by the md5 of the ingredient text (`texts`, `text_ingredients`,
`text_matches`, `text_flags`). Derived tables (`product_categories`, `products`, `recommend_*`,
`fit_counts`) and the views are recomputed from them by every build that changes anything. The
analyst views live in their own schema, `analyst`; every table, view and column carries a
comment (`deeproot sql --schema` prints them).
"""

from __future__ import annotations

from deeproot.catalog.comments import comment_sql
from deeproot.errors import DataError
from deeproot.taxonomy import CATEGORY_KEYS, TABLE_TYPES

SCHEMA_VERSION = "3"
# Versions whose stored tables a build copies forward (by column name) into a new catalog.
MIGRATES_FROM = ("2", "3")
TAG_TABLES: tuple[str, ...] = ("seed", "extended")

# Columns of one crawl record, in storage order, with their DuckDB types.
RECORD_COLUMNS: tuple[tuple[str, str], ...] = (
    ("crawl_id", "VARCHAR"),
    ("crawled_at", "TIMESTAMPTZ"),  # carried-forward records: the crawl's start time
    ("goods_no", "VARCHAR"),
    ("category", "VARCHAR"),
    ("brand", "VARCHAR"),
    ("name", "VARCHAR"),
    ("price_sale", "BIGINT"),
    ("price_list", "BIGINT"),
    ("currency", "VARCHAR"),
    ("rating", "DOUBLE"),  # NULL when unrated (never 0.0)
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
    ("sold_out", "BOOLEAN"),  # NULL: the source did not say (older crawls, the CSV import)
    ("functional_claim", "VARCHAR"),  # the notice's MFDS functional-cosmetic row, as written
    ("carried_from", "VARCHAR"),  # the crawl whose detail record a carried record reuses
    ("review_source", "VARCHAR"),  # where rating and review count came from (crawler's name)
    ("ingredients_at", "TIMESTAMPTZ"),  # when the ingredient notice was last read (UTC)
)
REQUIRED_SOURCE_COLUMNS = ("goods_no", "category", "crawled_at")

# The ingredient text (about 500 bytes a record, 1M records a crawl) is stored with zstd: DuckDB's
# automatic choice (FSST or dictionary, after an analysis pass) cost twice the CPU and three times
# the disk at 1M records (benchmarks/catalog.py, docs/benchmarks.md). A column setting, so catalogs
# made before keep theirs; readers see no difference (DuckDB 1.2+ reads zstd strings).
TEXT_COMPRESSION = "USING COMPRESSION zstd"


def _stored_type(name: str, typ: str) -> str:
    return f"{typ} {TEXT_COMPRESSION}" if name == "ingredients_text" else typ


_RECORD_DDL = ", ".join(f"{n} {_stored_type(n, t)}" for n, t in RECORD_COLUMNS)
_DDL_STORED = f"""
CREATE TABLE IF NOT EXISTS catalog_meta (key VARCHAR, value VARCHAR);
CREATE TABLE IF NOT EXISTS crawls (
    crawl_id VARCHAR PRIMARY KEY, crawled_at TIMESTAMPTZ, source VARCHAR, location VARCHAR,
    fingerprint VARCHAR, n_records BIGINT, imported_at TIMESTAMPTZ, started_at TIMESTAMPTZ,
    stat_signature VARCHAR);
CREATE TABLE IF NOT EXISTS crawl_records ({_RECORD_DDL});
CREATE TABLE IF NOT EXISTS texts (
    text_hash VARCHAR, placeholder BOOLEAN, n_ingredients INTEGER, n_unknown INTEGER,
    error VARCHAR);
CREATE TABLE IF NOT EXISTS text_ingredients (
    text_hash VARCHAR, position INTEGER, token VARCHAR, name VARCHAR, canonical VARCHAR,
    how VARCHAR, group_label VARCHAR);
CREATE TABLE IF NOT EXISTS text_matches (
    text_hash VARCHAR, table_name VARCHAR, type VARCHAR, position INTEGER, token VARCHAR,
    canonical VARCHAR, entry VARCHAR, how VARCHAR);
CREATE TABLE IF NOT EXISTS text_flags (
    text_hash VARCHAR, flag VARCHAR, position INTEGER, token VARCHAR, canonical VARCHAR,
    entry VARCHAR, source VARCHAR, how VARCHAR);
"""
STORED_TABLES = ("crawls", "crawl_records", "texts", "text_ingredients", "text_matches",
                 "text_flags")
TAG_RESULT_TABLES = ("texts", "text_ingredients", "text_matches", "text_flags")


def flag_keys() -> tuple[str, ...]:
    from deeproot.ingredients.flags import FLAGS

    return FLAGS


def free_of_keys() -> tuple[str, ...]:
    from deeproot.ingredients.flags import FREE_OF

    return FREE_OF


def _type_bit_case(column: str) -> str:
    whens = " ".join(f"WHEN '{t}' THEN {1 << i}" for i, t in enumerate(TABLE_TYPES))
    return f"CASE {column} {whens} ELSE 0 END"


def _flag_bit_case(column: str) -> str:
    whens = " ".join(f"WHEN '{f}' THEN {1 << i}" for i, f in enumerate(flag_keys()))
    return f"CASE {column} {whens} ELSE 0 END"


def type_mask(types: list[str] | tuple[str, ...]) -> int:
    """The bit mask of ingredient-table types used by `recommend_index.mask_<table>`."""
    return sum(1 << TABLE_TYPES.index(t) for t in set(types))


def flag_mask(flags: list[str] | tuple[str, ...]) -> int:
    """The bit mask of flags used by `recommend_index.flag_mask`."""
    keys = flag_keys()
    return sum(1 << keys.index(f) for f in set(flags))


_CATEGORY_CASE = (
    "CASE category "
    + " ".join(f"WHEN '{k}' THEN {i}" for i, k in enumerate(CATEGORY_KEYS))
    + " END"
)


# The products table, declared (not CREATE TABLE AS) so its text column can be stored with zstd.
PRODUCT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("goods_no", "VARCHAR"),
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
    ("text_hash", "VARCHAR"),
    ("has_ingredients", "BOOLEAN"),
    ("categories", "VARCHAR[]"),
    ("listed", "BOOLEAN"),
    ("first_crawled_at", "TIMESTAMPTZ"),
    ("last_crawled_at", "TIMESTAMPTZ"),
    ("last_crawl_id", "VARCHAR"),
    ("n_crawls", "BIGINT"),
    ("sold_out", "BOOLEAN"),
    ("functional_claim", "VARCHAR"),
    ("hair_loss_functional_claim", "BOOLEAN"),
    ("flags", "VARCHAR[]"),
    ("allergens", "VARCHAR[]"),
    ("free_of", "VARCHAR[]"),
    ("flag_mask", "INTEGER"),
)
_PRODUCT_DDL = ", ".join(f"{n} {_stored_type(n, t)}" for n, t in PRODUCT_COLUMNS)


def _ddl_derived() -> str:
    flags_order = "CASE flag " + " ".join(
        f"WHEN '{f}' THEN {i}" for i, f in enumerate(flag_keys())
    ) + " END"
    free_of = "[" + ", ".join(f"'{f}'" for f in free_of_keys()) + "]"
    return f"""
CREATE SCHEMA IF NOT EXISTS analyst;

CREATE OR REPLACE TABLE product_categories AS
WITH cover AS (
    SELECT category, crawl_id, max(crawled_at) AS t FROM crawl_records GROUP BY ALL),
latest AS (
    SELECT category, crawl_id FROM cover
    QUALIFY row_number() OVER (PARTITION BY category ORDER BY t DESC, crawl_id DESC) = 1)
SELECT r.goods_no, r.category, min(r.listing_rank) AS listing_rank, r.crawl_id
FROM crawl_records r JOIN latest USING (category, crawl_id)
GROUP BY ALL;

-- per text, so kept across builds like the tag tables it sums up: only new texts are added
-- (a retag drops it with them)
CREATE TABLE IF NOT EXISTS text_flag_summary (
    text_hash VARCHAR, flags VARCHAR[], allergens VARCHAR[], flag_mask INTEGER,
    listed_ok BOOLEAN);
DELETE FROM text_flag_summary WHERE text_hash NOT IN (SELECT text_hash FROM texts);
INSERT INTO text_flag_summary BY NAME
SELECT t.text_hash,
       coalesce(list(DISTINCT f.flag ORDER BY {flags_order.replace("flag", "f.flag")})
           FILTER (WHERE f.flag IS NOT NULL), []::VARCHAR[]) AS flags,
       coalesce(list(DISTINCT f.canonical ORDER BY f.canonical)
           FILTER (WHERE f.flag = 'allergen'), []::VARCHAR[]) AS allergens,
       coalesce(bit_or({_flag_bit_case("f.flag")}), 0)::INTEGER AS flag_mask,
       bool_and(t.error IS NULL AND NOT t.placeholder AND t.n_ingredients > 0) AS listed_ok
FROM texts t LEFT JOIN text_flags f USING (text_hash)
WHERE t.text_hash NOT IN (SELECT text_hash FROM text_flag_summary)
GROUP BY t.text_hash;

CREATE OR REPLACE TABLE products ({_PRODUCT_DDL});
INSERT INTO products BY NAME
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
       m.n_crawls, l.sold_out, l.functional_claim,
       coalesce(list_contains(fc.claims, 'hair_loss'), false) AS hair_loss_functional_claim,
       coalesce(fs.flags, []::VARCHAR[]) AS flags,
       coalesce(fs.allergens, []::VARCHAR[]) AS allergens,
       CASE WHEN fs.listed_ok
            THEN list_filter({free_of}, lambda x: NOT list_contains(fs.flags, x)) END AS free_of,
       coalesce(fs.flag_mask, 0)::INTEGER AS flag_mask
FROM crawl_records l JOIN meta m USING (goods_no, crawl_id, category)
LEFT JOIN text_flag_summary fs ON fs.text_hash = l.text_hash
LEFT JOIN functional_claims fc ON fc.claim_text = l.functional_claim;

CREATE OR REPLACE TABLE recommend_index AS
WITH base AS (
    SELECT pc.category, p.goods_no,
           coalesce(nullif(lower(trim(p.brand)), ''), p.goods_no) AS brand_key,
           coalesce(p.rating, 0.0) AS rating, coalesce(p.review_count, 0) AS review_count,
           p.text_hash, p.sold_out IS TRUE AS sold_out, p.flag_mask,
           p.hair_loss_functional_claim AS hair_loss_claim, p.free_of IS NOT NULL AS has_list
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
           coalesce(m.mask_extended, 0)::INTEGER AS mask_extended,
           b.sold_out, b.flag_mask, b.hair_loss_claim, b.has_list
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

-- analyst views (schema analyst); the same names in main stay for existing readers
CREATE OR REPLACE VIEW analyst.product_history AS
SELECT r.goods_no, r.crawl_id, r.crawled_at, r.category, r.price_sale, r.price_list,
       r.currency, r.rating, r.review_count, r.text_hash, r.carried, r.sold_out,
       r.functional_claim, r.carried_from, r.review_source, r.ingredients_at
FROM crawl_records r;

CREATE OR REPLACE VIEW analyst.product_ingredients AS
SELECT p.goods_no, i.position, i.token, i.name, i.canonical, i.how, i.group_label
FROM products p JOIN text_ingredients i USING (text_hash);

CREATE OR REPLACE VIEW analyst.product_types AS
SELECT p.goods_no, m.table_name, m.type, count(*) AS n_matches,
       list(DISTINCT m.canonical ORDER BY m.canonical) AS evidence,
       list({{'position': m.position, 'token': m.token, 'canonical': m.canonical,
              'entry': m.entry, 'how': m.how}}
            ORDER BY m.position NULLS LAST, m.token, m.canonical, m.entry, m.how) AS matches
FROM products p JOIN text_matches m USING (text_hash)
GROUP BY ALL;

CREATE OR REPLACE VIEW analyst.product_flags AS
SELECT p.goods_no, f.flag, count(*) AS n_matches,
       list(DISTINCT f.canonical ORDER BY f.canonical) AS evidence,
       list({{'position': f.position, 'token': f.token, 'canonical': f.canonical,
              'entry': f.entry, 'how': f.how}}
            ORDER BY f.position NULLS LAST, f.token, f.canonical, f.entry, f.how) AS matches
FROM products p JOIN text_flags f USING (text_hash)
GROUP BY ALL;

CREATE OR REPLACE VIEW analyst.category_type_counts AS
SELECT pc.category, m.table_name, m.type, count(DISTINCT pc.goods_no) AS n_products
FROM product_categories pc JOIN products p USING (goods_no)
JOIN (SELECT DISTINCT text_hash, table_name, type FROM text_matches) m USING (text_hash)
GROUP BY ALL;

CREATE OR REPLACE VIEW analyst.category_flag_counts AS
WITH cat AS (
    SELECT pc.category, p.goods_no, p.flags, p.free_of IS NOT NULL AS has_list
    FROM product_categories pc JOIN products p USING (goods_no)),
flags AS (SELECT unnest({list(flag_keys())!r}::VARCHAR[]) AS flag)
SELECT c.category, f.flag,
       count(*) FILTER (WHERE list_contains(c.flags, f.flag)) AS n_products,
       count(*) FILTER (WHERE c.has_list) AS n_with_list,
       count(*) AS n_listed
FROM cat c, flags f
GROUP BY ALL;

CREATE OR REPLACE VIEW analyst.formula_changes AS
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

CREATE OR REPLACE VIEW analyst.reformulations AS
WITH ing AS (
    SELECT text_hash, list_sort(list(DISTINCT coalesce(canonical, name))) AS names
    FROM text_ingredients GROUP BY text_hash),
ch AS (
    SELECT f.*, o.names AS previous_names, n.names AS names
    FROM analyst.formula_changes f
    JOIN ing o ON o.text_hash = f.previous_text_hash
    JOIN ing n ON n.text_hash = f.text_hash)
SELECT goods_no, previous_crawl_id, crawl_id, crawled_at, previous_text_hash, text_hash,
       list_sort(list_filter(names, lambda x: NOT list_contains(previous_names, x))) AS added,
       list_sort(list_filter(previous_names, lambda x: NOT list_contains(names, x))) AS removed
FROM ch
WHERE names <> previous_names;

CREATE OR REPLACE VIEW analyst.brand_free_of AS
WITH p AS (
    SELECT brand, goods_no, free_of FROM products
    WHERE listed AND brand IS NOT NULL AND free_of IS NOT NULL),
fam AS (SELECT unnest({free_of}::VARCHAR[]) AS family)
SELECT p.brand, fam.family, count(*) AS n_products,
       count(*) FILTER (WHERE list_contains(p.free_of, fam.family)) AS n_free
FROM p, fam
GROUP BY ALL;

CREATE OR REPLACE VIEW product_history AS SELECT * FROM analyst.product_history;
CREATE OR REPLACE VIEW product_ingredients AS SELECT * FROM analyst.product_ingredients;
CREATE OR REPLACE VIEW product_types AS SELECT * FROM analyst.product_types;
CREATE OR REPLACE VIEW product_flags AS SELECT * FROM analyst.product_flags;
CREATE OR REPLACE VIEW category_type_counts AS SELECT * FROM analyst.category_type_counts;
CREATE OR REPLACE VIEW formula_changes AS SELECT * FROM analyst.formula_changes;
"""


def stored_version(con) -> str | None:  # noqa: ANN001 - duckdb connection
    """The schema version a catalog was built with (None: new or never finished a build)."""
    return meta_value(con, "schema_version")


def meta_value(con, key: str, catalog: str = "") -> str | None:  # noqa: ANN001
    """One `catalog_meta` value (None when the table or key is missing)."""
    where = f"AND database_name = '{catalog}'" if catalog else ""
    has_meta = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'catalog_meta' "
        f"AND schema_name = 'main' {where}"
    ).fetchall()[0][0]
    if not has_meta:
        return None
    prefix = f"{catalog}." if catalog else ""
    rows = con.execute(f"SELECT value FROM {prefix}catalog_meta WHERE key = ?", [key]).fetchall()
    return rows[0][0] if rows else None


def check_version(version: str | None, path: object = "") -> None:
    """Refuse a catalog whose stored tables this deeproot cannot carry forward."""
    if version not in (None, *MIGRATES_FROM):
        raise DataError(
            f"{path} holds a catalog of schema version {version}, this deeproot writes "
            f"version {SCHEMA_VERSION}; build a new one with --db NEW_FILE (or delete it)"
        )


def create_stored(con) -> None:  # noqa: ANN001
    """Create the stored tables when missing, and add columns this version added (never drops
    anything): a catalog of this schema version written before a nullable column was added
    gets the column, NULL for its old records."""
    con.execute(_DDL_STORED)
    have = {
        (t, c)
        for t, c in con.execute(
            "SELECT table_name, column_name FROM duckdb_columns() "
            "WHERE database_name = current_database() AND schema_name = 'main'"
        ).fetchall()
    }
    for name, typ in RECORD_COLUMNS:
        if ("crawl_records", name) not in have:
            con.execute(f"ALTER TABLE crawl_records ADD COLUMN {name} {typ}")
    for name, typ in (("started_at", "TIMESTAMPTZ"), ("stat_signature", "VARCHAR")):
        if ("crawls", name) not in have:
            con.execute(f"ALTER TABLE crawls ADD COLUMN {name} {typ}")


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
    "sold_out",
    "flags",
    "allergens",
    "free_of",
    "functional_claim",
    "hair_loss_functional_claim",
)
EVIDENCE_SQL = """
    SELECT text_hash, table_name,
           list({'type': type, 'token': token, 'canonical': canonical}
                ORDER BY position NULLS LAST, token, type, canonical) AS ev
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
               r.bayes_rank, k.pos_seed, k.pos_bayes, r.score_bayes, r.flag_mask,
               r.hair_loss_claim, r.has_list, r.sold_out AS is_sold_out,
               {cols},
               es.ev AS ev_seed, ee.ev AS ev_extended
        FROM shortlist_keys k JOIN recommend_index r USING (category, goods_no)
        JOIN p USING (goods_no)
        LEFT JOIN ev es ON es.text_hash = p.text_hash AND es.table_name = 'seed'
        LEFT JOIN ev ee ON ee.text_hash = p.text_hash AND ee.table_name = 'extended'
        ORDER BY k.table_name, k.type, k.category, r.seed_rank"""
    )
    con.execute("DROP TABLE shortlist_keys")


def create_functional_claims(con) -> None:  # noqa: ANN001
    """`functional_claims`: each distinct notice text with the MFDS claims it states."""
    import pyarrow as pa

    from deeproot.ingredients.flags import functional_claims

    texts = [
        r[0]
        for r in con.execute(
            "SELECT DISTINCT functional_claim FROM crawl_records "
            "WHERE functional_claim IS NOT NULL ORDER BY 1"
        ).fetchall()
    ]
    tbl = pa.table(
        {
            "claim_text": pa.array(texts, pa.string()),
            "claims": pa.array([list(functional_claims(t)) for t in texts], pa.list_(pa.string())),
        }
    )
    con.register("claims_arrow", tbl)
    try:
        con.execute("CREATE OR REPLACE TABLE functional_claims AS SELECT * FROM claims_arrow")
    finally:
        con.unregister("claims_arrow")


def create_derived(con) -> None:  # noqa: ANN001
    """Recompute the derived tables and views from the stored tables, with their comments."""
    create_functional_claims(con)
    con.execute(_ddl_derived())
    _fill_shortlist(con)
    for stmt in comment_sql(con):
        con.execute(stmt)
