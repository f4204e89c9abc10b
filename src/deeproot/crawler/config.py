"""Crawl configuration: the site's URL layout and the category codes (from `categories.yaml`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from deeproot.errors import InputError
from deeproot.taxonomy import CATEGORIES, CATEGORY_KEYS, category

SITE_URL = "https://www.oliveyoung.co.kr"
LISTING_PATH = "/store/display/getMCategoryList.do"
DETAIL_PATH = "/store/goods/getGoodsDetail.do"
NOTICE_PATH = "/store/goods/getGoodsArtcAjax.do"
# The mobile review-stats JSON working crawlers read (issue 14): rating and the exact review count.
# It lives on the mobile host; with --base-url it is fetched from the base host under the same path.
STATS_HOST = "https://m.oliveyoung.co.kr"
STATS_PREFIX = "/review/api/v2/reviews/"


def stats_path(goods_no: str) -> str:
    return f"{STATS_PREFIX}{goods_no}/stats"


CATEGORIES_FILE = Path(__file__).with_name("categories.yaml")


@dataclass(frozen=True)
class CategoryConfig:
    """One category to crawl: taxonomy key, the title its listing shows, the site's code."""

    key: str
    name: str
    disp_cat_no: str


@dataclass(frozen=True)
class SiteConfig:
    """The public site URL (stored product URLs use it) and the categories, in taxonomy order."""

    site_url: str
    categories: tuple[CategoryConfig, ...]

    def get(self, key: str) -> CategoryConfig:
        for c in self.categories:
            if c.key == key:
                return c
        raise InputError(f"category {key!r} is not configured")


def _read_yaml(path: Path) -> dict:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InputError(f"config file {path} not found; pass an existing YAML file") from exc
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"cannot read config {path}: {first}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(f"config {path} must be a mapping with `site` and `categories`")
    return data


def _merge(base: dict[str, dict], override: dict, path: Path) -> None:
    cats = override.get("categories", {}) or {}
    if not isinstance(cats, dict):
        raise InputError(f"config {path}: `categories` must map category keys to settings")
    for raw_key, value in cats.items():
        key = category(str(raw_key)).key  # InputError listing the valid keys
        if not isinstance(value, dict):
            raise InputError(f"config {path}: category {key} needs a mapping (disp_cat_no, name)")
        entry = base.setdefault(key, {"name": category(key).ko, "disp_cat_no": ""})
        if "disp_cat_no" in value:
            code = str(value["disp_cat_no"]).strip()
            if not code.isdigit():
                raise InputError(
                    f"config {path}: category {key} disp_cat_no {code!r} must be digits"
                )
            entry["disp_cat_no"] = code
        if "name" in value:
            entry["name"] = str(value["name"])


def load_site_config(config: str | Path | None = None) -> SiteConfig:
    """The shipped `categories.yaml` with `config` (same shape, any subset of keys) laid over it."""
    base: dict[str, dict] = {}
    if CATEGORIES_FILE.exists():
        shipped = _read_yaml(CATEGORIES_FILE)
    else:  # an install without package data: the taxonomy holds the same defaults
        shipped = {
            "site": SITE_URL,
            "categories": {c.key: {"name": c.ko, "disp_cat_no": c.disp_cat_no} for c in CATEGORIES},
        }
    _merge(base, shipped, CATEGORIES_FILE)
    site = str(shipped.get("site", SITE_URL))
    if config is not None:
        path = Path(config)
        extra = _read_yaml(path)
        unknown = set(extra) - {"site", "categories"}
        if unknown:
            raise InputError(
                f"config {path}: unknown top-level keys {sorted(unknown)}; use site, categories"
            )
        _merge(base, extra, path)
        site = str(extra.get("site", site))
    cats = tuple(
        CategoryConfig(key, str(base[key]["name"]), str(base[key]["disp_cat_no"]))
        for key in CATEGORY_KEYS
        if key in base
    )
    return SiteConfig(site_url=site.rstrip("/"), categories=cats)


def select_categories(cfg: SiteConfig, spec: str) -> tuple[CategoryConfig, ...]:
    """`all` or a comma list of keys (Korean labels accepted) -> configured categories."""
    spec = spec.strip()
    if spec in ("", "all"):
        return cfg.categories
    out: list[CategoryConfig] = []
    for part in spec.split(","):
        if not part.strip():
            continue
        key = category(part).key
        c = cfg.get(key)
        if c not in out:
            out.append(c)
    if not out:
        raise InputError("no categories selected; pass all or keys like shampoo,hair_water")
    return tuple(out)
