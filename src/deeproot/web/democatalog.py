"""The demo catalog for a fresh install: the bundled sample products, crawled and built.

Built the way `deeproot demo` builds it (deeproot.demo): the fictional sample catalog
(`data/demo_catalog.json`) is written as the crawler's offline imitation site, served on
127.0.0.1, crawled with the real crawler and built into a DuckDB catalog, so the service shows the
same products, tags and evidence a real crawl would. It goes into a folder the caller owns (a
scratch folder for `deeproot serve`), never into the package.
"""

import logging
from collections.abc import Callable
from pathlib import Path

from deeproot.errors import DataError

log = logging.getLogger(__name__)


def build_demo_catalog(folder: Path, progress: Callable[[str], None] | None = None) -> Path:
    """Crawl the bundled sample products into `folder` and build `folder/catalog.duckdb`.

    Raises:
        DataError: the demo crawl or build failed (the message says why); MissingExtraError:
            the crawler (the `crawl` extra) is not installed.
    """
    from deeproot.errors import require

    require("scrapy", "crawl")
    from deeproot.catalog.build import build
    from deeproot.crawler import make_settings, run_crawl
    from deeproot.crawler.testsite import build_site, serve
    from deeproot.demo import demo_products
    from deeproot.files import scratch_dir

    say = progress or (lambda msg: None)
    products = demo_products()
    folder.mkdir(parents=True, exist_ok=True)
    with scratch_dir("serve-site") as site_dir:
        build_site(products, site_dir)
        with serve(site_dir) as site:
            settings = make_settings(
                out=folder, base_url=site.base_url, delay=0.0, timeout=10.0, retries=1,
                backoff=0.0,
            )
            say(f"building the demo catalog ({len(products)} fictional products)")
            report = run_crawl(settings)
    problem = report.problem()
    if problem:
        raise DataError(f"the demo catalog could not be built: {problem}")
    db = folder / "catalog.duckdb"
    rep = build(folder, db)
    say(f"demo catalog ready: {rep.n_products} products")
    from deeproot.catalog.recommend import close_connections

    close_connections()  # the writer's process hands the file to read-only workers
    return db
