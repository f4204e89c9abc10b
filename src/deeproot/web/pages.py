"""The HTML pages: shooting guide -> photo and survey -> result, and a product page.

Server-rendered with Jinja2 from the same documents the API returns; plain form posts, so the
flow works without JavaScript (`static/app.js` only adds previews, checks in the browser, drag
and drop and saving). The stylesheet is inlined in every page, so a saved result page is one file.
"""

import functools
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from deeproot import __version__, taxonomy
from deeproot.web.i18n import CATEGORY_EN, lang_of, strings

if TYPE_CHECKING:  # pragma: no cover
    from fastapi import FastAPI, Request
    from fastapi.responses import HTMLResponse

    from deeproot.web.service import Service

SEVERITY_EN = {"양호": "good", "경증·중등도": "mild-moderate", "경증": "mild", "중등도": "moderate",
               "중증": "severe"}


@functools.lru_cache(maxsize=1)
def stylesheet() -> str:
    """The pages' stylesheet, read once per process (its hash is in the CSP header)."""
    return resources.files("deeproot.web").joinpath("static/style.css").read_text("utf-8")


def safe_url(value: Any) -> str | None:
    """`value` when it is an absolute http(s) URL (links and images from crawled data)."""
    if not isinstance(value, str):
        return None
    try:
        parts = urlsplit(value.strip())
    except ValueError:
        return None
    return value.strip() if parts.scheme in ("http", "https") and parts.netloc else None


def _flag_label(key: str, lang: str) -> str:
    try:
        from deeproot.ingredients.flags import FLAG_LABELS
    except ImportError:  # an older ingredients package: show the key
        return key
    return FLAG_LABELS.get(key, {}).get(lang, key)


def _free_of_families(lang: str) -> list[tuple[str, str]]:
    """The families `diagnose()` can leave out, with their names (none on an older library)."""
    from deeproot.web.service import _diagnose_keywords

    if "free_of" not in _diagnose_keywords():
        return []
    try:
        from deeproot.ingredients.flags import FREE_OF
    except ImportError:
        return []
    return [(k, _flag_label(k, lang)) for k in FREE_OF]


def _won(value: Any, lang: str) -> str:
    if value is None:
        return "-"
    return f"{int(value):,}원" if lang == "ko" else f"₩{int(value):,}"


@functools.lru_cache(maxsize=1)
def _env() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("deeproot.web", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["safe_url"] = safe_url
    env.filters["won"] = _won
    env.filters["flag_label"] = _flag_label
    env.filters["lookup"] = lambda key, mapping: mapping.get(key, key)
    env.filters["pct"] = lambda p: f"{100 * float(p):.0f}%"
    return env


def _names(lang: str) -> dict[str, Any]:
    en = lang == "en"
    return {
        "symptom": {s.key: (s.en if en else s.ko) for s in taxonomy.SYMPTOMS},
        "scalp": {s.key: (s.en if en else s.ko) for s in taxonomy.SCALP_TYPES},
        "category": {c.key: (CATEGORY_EN[c.key] if en else c.ko) for c in taxonomy.CATEGORIES},
        "symptoms": [(s.key, s.en if en else s.ko) for s in taxonomy.SYMPTOMS],
        "categories": [(c.key, CATEGORY_EN[c.key] if en else c.ko) for c in taxonomy.CATEGORIES],
    }


def render(
    request: "Request", template: str, *, lang: str, status: int = 200, page: str = "",
    headers: dict[str, str] | None = None, **context: Any,
) -> "HTMLResponse":
    from fastapi.responses import HTMLResponse

    other = "en" if lang == "ko" else "ko"
    html = _env().get_template(template).render(
        css=stylesheet(),
        t=strings(lang),
        lang=lang,
        names=_names(lang),
        page=page,
        version=__version__,
        switch_url=f"{request.url.path}?lang={other}" if request.method == "GET"
        else f"/upload?lang={other}",
        **context,
    )
    return HTMLResponse(html, status_code=status, headers=headers)


def error_page(
    request: "Request", status: int, message: str, *, headers: dict[str, str] | None = None,
    ko: str | None = None,
) -> "HTMLResponse":
    lang = lang_of(request.query_params.get("lang"))
    if lang == "ko" and ko:
        message = ko
    return render(request, "error.html", lang=lang, status=status, page="error",
                  headers=headers, status_code=status, message=message)


def docs_page(request: "Request", openapi: dict[str, Any]) -> "HTMLResponse":
    """The API reference: endpoints listed from the OpenAPI document (works offline), with
    Swagger UI loaded from its CDN when the browser can reach it."""
    lang = lang_of(request.query_params.get("lang"))
    ops = []
    for path, methods in openapi.get("paths", {}).items():
        for method, op in methods.items():
            ops.append({
                "method": method.upper(), "path": path, "summary": op.get("summary", ""),
                "description": op.get("description", ""),
                "params": [p["name"] for p in op.get("parameters", [])],
                "statuses": sorted(op.get("responses", {})),
            })
    return render(request, "docs.html", lang=lang, page="docs", ops=ops)


def _class_names(doc: dict[str, Any], lang: str) -> list[str]:
    classes = doc["model"]["classes"]
    return list(classes) if lang == "ko" else [SEVERITY_EN.get(c, c) for c in classes]


def add_routes(app: "FastAPI", svc: "Service", css: str) -> None:
    """Register the page routes on `app`."""
    from fastapi import Request
    from fastapi.responses import HTMLResponse, RedirectResponse

    from deeproot.web.app import diagnose_request

    def limits(lang: str) -> dict[str, Any]:
        return {"max_mb": f"{svc.settings.max_upload_mb:g}", "max_bytes":
                svc.settings.max_upload_bytes, "max_photos": svc.settings.max_photos,
                "free_of_families": _free_of_families(lang) if svc.has_catalog else []}

    @app.get("/", include_in_schema=False)
    def guide(request: Request, lang: str = "ko") -> HTMLResponse:
        lang = lang_of(lang)
        return render(request, "guide.html", lang=lang, page="guide", **limits(lang))

    @app.get("/upload", include_in_schema=False)
    def upload(request: Request, lang: str = "ko") -> HTMLResponse:
        lang = lang_of(lang)
        return render(request, "upload.html", lang=lang, page="upload", **limits(lang))

    @app.post("/result", include_in_schema=False)
    async def result(request: Request) -> HTMLResponse:
        done, survey = await diagnose_request(svc, request)
        doc = done.doc
        return render(
            request, "result.html", lang=survey.lang, page="result", doc=doc,
            classes=_class_names(doc, survey.lang), demo_catalog=svc.demo_catalog,
            has_catalog=svc.has_catalog,
            # the demo warning is the banner at the top already
            notices=[w for w in doc["warnings"] if not w.startswith("results come from a DEMO")],
            headers=svc.gate.reconnect_headers(),
        )

    @app.get("/result", include_in_schema=False)
    def result_get(lang: str = "ko") -> RedirectResponse:
        # A reload or a bookmark of a result: photos are not kept, so start again (a fixed,
        # local target: nothing from the request goes into Location but the language).
        return RedirectResponse(f"/upload?lang={lang_of(lang)}", status_code=303)

    @app.get("/products/{goods_no}", include_in_schema=False)
    def product_page(request: Request, goods_no: str, lang: str = "ko") -> HTMLResponse:
        from deeproot.catalog.product import product

        lang = lang_of(lang)
        svc.require_catalog()
        doc = product(svc.db_path, goods_no)
        return render(request, "product.html", lang=lang, page="product", p=doc,
                      demo_catalog=svc.demo_catalog)
