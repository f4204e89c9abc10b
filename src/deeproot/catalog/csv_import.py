"""Read the original DeepRoot crawl CSVs (2024-11) into crawl records.

The files are UTF-8 with a BOM, start with unnamed pandas index columns, and order their columns
differently (`brand_name` before or after `product_name`), so columns are read by header name. The
category comes from the dispCatNo in `product_link`, else from the file-name prefix (`shampoo_…`);
goodsNo from the link. The files hold no prices. A set of files becomes one pseudo-crawl whose id
is `csv-` plus a hash of the files' contents, so importing the same files twice changes nothing;
it is dated 2024-11-07, when the original crawl was published, unless told otherwise.
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from deeproot.errors import InputError
from deeproot.taxonomy import CATEGORIES, Category

REQUIRED = ("product_link", "product_name", "brand_name", "star", "review_count", "ingredient")
_GOODS_RE = re.compile(r"goodsNo=([A-Z]\d{12})")
DETAIL_URL = "https://www.oliveyoung.co.kr/store/goods/getGoodsDetail.do?goodsNo={}"
SOURCE_LAYOUT = "deeproot-csv-2024"
# When the original crawl was published (dowb2024/scalp commit 2d08677). File times say nothing
# about it (copies get new ones), and a later date would let these 2024 rows outrank real crawls.
ORIGINAL_CRAWL_DATE = datetime(2024, 11, 7)


@dataclass(frozen=True)
class CsvBatch:
    """Records read from a set of CSV files, ready to insert as one pseudo-crawl."""

    crawl_id: str
    crawled_at: datetime  # naive UTC
    files: tuple[str, ...]
    records: tuple[dict, ...]
    skipped_rows: tuple[str, ...]  # "file:line: reason"


def expand_paths(paths: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """Files as given; folders expand to the CSVs in them that have a `product_link` column."""
    out: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = [f for f in sorted(p.glob("*.csv")) if "product_link" in _header(f)]
            if not found:
                raise InputError(f"no DeepRoot crawl CSVs (with a product_link column) in {p}")
            out.extend(found)
        elif p.is_file():
            out.append(p)
        else:
            raise InputError(f"no such file: {p}")
    if not out:
        raise InputError(
            "no CSV files given; pass the DeepRoot *_ingredient_data2_add_type.csv files"
        )
    return out


def _header(path: Path) -> list[str]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            return next(csv.reader(fh), [])
    except (UnicodeDecodeError, OSError):
        return []


def canonical_url(goods_no: str) -> str:
    """The product page without tracking parameters (trackingCd, t_page, t_click, t_number …)."""
    return DETAIL_URL.format(goods_no)


def _category_for(path: Path, link: str) -> Category | None:
    q = parse_qs(urlsplit(link).query)
    disp = (q.get("dispCatNo") or [""])[0]
    for c in CATEGORIES:
        if disp and disp == c.disp_cat_no:
            return c
    stem = path.name.split("_", 1)[0].lower()
    for c in CATEGORIES:
        if stem in (c.file_stem, c.key):
            return c
    return None


_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def _num(value: str, kind: type) -> float | int | None:
    """The first number in a cell ("4.8", "2,855", "(999+)"); None when there is none."""
    m = _NUMBER.search((value or "").replace(",", ""))
    return kind(float(m.group())) if m else None


def read_csvs(
    paths: Sequence[str | os.PathLike[str]], *, crawled_at: datetime | None = None
) -> CsvBatch:
    """Read DeepRoot crawl CSVs into one batch of records (one per goodsNo and category)."""
    files = expand_paths(paths)
    digest = hashlib.sha256()
    records: dict[tuple[str, str], dict] = {}
    skipped: list[str] = []
    for path in files:
        data = path.read_bytes()
        digest.update(path.name.encode() + b"\0" + hashlib.sha256(data).digest())
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise InputError(
                f"{path} is not UTF-8 text ({exc.reason}); expected a DeepRoot CSV"
            ) from exc
        reader = csv.DictReader(text.splitlines(keepends=True))
        missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
        if missing:
            raise InputError(
                f"{path} is not a DeepRoot crawl CSV: missing column(s) {', '.join(missing)}"
            )
        rank = 0
        for row in reader:
            line = f"{path.name}:{reader.line_num}"
            link = (row.get("product_link") or "").strip()
            m = _GOODS_RE.search(link)
            if not m:
                skipped.append(f"{line}: no goodsNo in product_link")
                continue
            cat = _category_for(path, link)
            if cat is None:
                raise InputError(
                    f"cannot tell the category of {path}: no known dispCatNo in its links and the "
                    f"file name does not start with one of "
                    f"{', '.join(c.file_stem for c in CATEGORIES)}"
                )
            rank += 1
            goods_no = m.group(1)
            ingredients = (row.get("ingredient") or "").strip() or None
            records.setdefault(
                (goods_no, cat.key),
                {
                    "goods_no": goods_no,
                    "category": cat.key,
                    "brand": (row.get("brand_name") or "").strip() or None,
                    "name": (row.get("product_name") or "").strip() or None,
                    "price_sale": None,
                    "price_list": None,
                    "currency": None,
                    "rating": _num(row.get("star", ""), float),
                    "review_count": _num(row.get("review_count", ""), int),
                    "image_url": (row.get("img_link") or "").strip() or None,
                    "product_url": canonical_url(goods_no),
                    "ingredients_text": ingredients,
                    "has_ingredients": ingredients is not None,
                    "listing_rank": rank,
                    "disp_cat_no": cat.disp_cat_no,
                    "carried": False,
                    "source_layout": SOURCE_LAYOUT,
                },
            )
    if crawled_at is None:
        crawled_at = ORIGINAL_CRAWL_DATE
    elif crawled_at.tzinfo is not None:
        crawled_at = crawled_at.astimezone(UTC).replace(tzinfo=None)
    return CsvBatch(
        crawl_id="csv-" + digest.hexdigest()[:12],
        crawled_at=crawled_at,
        files=tuple(str(p) for p in files),
        records=tuple(records.values()),
        skipped_rows=tuple(skipped),
    )
