"""End to end: the real crawler crawls the offline site made from the shared CSVs; the catalog built
from its Parquet store recommends exactly what the CSV import of the same products recommends."""

from __future__ import annotations

from pathlib import Path

from deeproot.catalog.build import build, import_csv
from deeproot.catalog.recommend import recommend


def test_crawl_store_and_csv_import_agree(crawl_dir: Path, tmp_path: Path):
    from deeproot.crawler import make_settings, run_crawl
    from deeproot.crawler.testsite import build_site, serve
    from deeproot.crawler.testsite.model import load_deeproot_csvs

    products = [p for p in load_deeproot_csvs(crawl_dir) if p.category == "scalp_tonic"]
    build_site(products, tmp_path / "site")
    with serve(tmp_path / "site") as site:
        settings = make_settings(
            out=tmp_path / "data",
            base_url=site.base_url,
            delay=0.0,
            timeout=10.0,
            retries=1,
            backoff=0.0,
            categories="scalp_tonic",
        )
        assert run_crawl(settings).problem() is None
    rep = build(tmp_path / "data", tmp_path / "crawl.duckdb")
    assert (len(rep.added), rep.skipped, rep.n_products, rep.n_listed) == (1, (), 64, 64)
    import_csv([crawl_dir / "tonic_ingredient_data2_add_type.csv"], tmp_path / "csv.duckdb")
    sold = {p.goods_no for p in products if p.sold_out}
    assert sold  # the offline site marks about 1 product in 13 sold out
    import duckdb

    con = duckdb.connect(str(tmp_path / "crawl.duckdb"), read_only=True)
    stored = {g for (g,) in con.execute("SELECT goods_no FROM products WHERE sold_out").fetchall()}
    # the crawler's newer columns come through: when each notice was read, where reviews came from
    assert con.execute(
        "SELECT count(*) FILTER (WHERE ingredients_at IS NOT NULL), "
        "count(*) FILTER (WHERE review_source IS NOT NULL), count(*) FROM crawl_records"
    ).fetchall() == [(64, 64, 64)]
    con.close()
    assert stored == sold  # read from the listing cards, kept in the catalog
    every = recommend(
        tmp_path / "crawl.duckdb", types=["healthy"], categories=["scalp_tonic"], top=64,
        all_brands=True,
    )
    assert not {p.goods_no for p in every.categories[0].picks} & sold  # left out by default
    assert len(every.categories[0].picks) == 64 - len(sold)
    for kwargs in (
        dict(types=["탈모성"]),
        dict(types=["healthy"], ranking="bayes", top=5),
        dict(types=["지성", "건성"], all_brands=True),
        dict(types=["지루성"], table="seed"),
    ):
        a = recommend(
            tmp_path / "crawl.duckdb", categories=["scalp_tonic"], include_sold_out=True, **kwargs
        )
        b = recommend(tmp_path / "csv.duckdb", categories=["scalp_tonic"], **kwargs)
        (ca,), (cb,) = a.categories, b.categories
        assert (ca.n_fit, ca.n_total) == (cb.n_fit, cb.n_total)
        assert [(p.goods_no, p.rating, p.review_count, p.matched) for p in ca.picks] == [
            (p.goods_no, p.rating, p.review_count, p.matched) for p in cb.picks
        ]
        # the crawl knows prices, the CSVs do not
        assert all(p.price_sale and p.currency == "KRW" for p in ca.picks)
        assert all(p.price_sale is None for p in cb.picks)
