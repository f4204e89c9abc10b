"""The JSON API routes: each calls one library function and returns its document.

`POST /api/diagnose` (`diagnose()`, the `deeproot.diagnose/1` document), `GET /api/recommend`
(`recommend()`, `deeproot.recommend/1`), `GET /api/products/{goods_no}` (`product()`,
`deeproot.product/1`), `GET /api/health`, and `/docs`. Errors are raised and rendered by
`app.add_error_handlers`.
"""

from typing import TYPE_CHECKING, Annotated, Any

from deeproot import __version__

if TYPE_CHECKING:  # pragma: no cover
    from fastapi import FastAPI

    from deeproot.web.service import Service

DIAGNOSE_FORM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["photos"],
    "properties": {
        "photos": {
            "type": "array",
            "items": {"type": "string", "format": "binary"},
            "description": "Scalp photos (JPEG, PNG or WebP, recognised by content).",
        },
        "survey_type": {
            "type": "string",
            "enum": ["", "dry", "oily", "건성", "지성"],
            "description": "Survey question 1: your scalp type.",
        },
        "concerns": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Survey question 2: symptom keys or Korean labels (비듬, hair_loss …).",
        },
        "categories": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Survey question 3: category keys or labels (shampoo, 샴푸 …);"
            " none: all.",
        },
        "lang": {"type": "string", "enum": ["ko", "en"], "default": "ko"},
        "force": {"type": "boolean", "default": False,
                  "description": "Diagnose photos that fail the quality check."},
        "visit": {"type": "boolean", "default": False,
                  "description": "Combine the photos into one diagnosis (mean probabilities)."},
        "free_of": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Products: leave out these ingredient families (sulfate_surfactant,"
            " silicone, paraben, mineral_oil, synthetic_colour, fragrance).",
        },
        "no_allergens": {"type": "boolean", "default": False,
                         "description": "Products: leave out those with a fragrance allergen."},
        "include_sold_out": {"type": "boolean", "default": False,
                             "description": "Products: show sold-out ones too (marked)."},
    },
}

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "detail": {"type": "string"},
        "status": {"type": "integer"},
        "code": {"type": "string"},
    },
}


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    what = {
        400: "Malformed request.",
        408: "The upload stalled.",
        404: "No such product.",
        413: "Upload over the size limit.",
        415: "Not multipart/form-data, or no photo is a JPEG, PNG or WebP.",
        422: "A value that cannot be used (listing the valid ones).",
        503: "Busy (Retry-After), or no catalog.",
    }
    return {
        s: {"description": what[s], "content": {"application/json": {"schema": ERROR_SCHEMA}}}
        for s in statuses
    }


def add_routes(app: "FastAPI", svc: "Service") -> None:
    """Register the API routes (and `/docs`) on `app`."""
    from fastapi import Path, Query, Request
    from fastapi.responses import HTMLResponse, JSONResponse, Response

    from deeproot.web import pages
    from deeproot.web.app import HttpError, diagnose_request

    @app.post(
        "/api/diagnose",
        summary="Diagnose scalp photos",
        description=(
            "Multipart photos and the three survey answers. The answer is the `deeproot.diagnose/1`"
            " document `deeproot diagnose --json` prints. Photos are processed in memory, never"
            " stored; at most the configured upload size (200 MB by default) per request. When"
            " every photo is unreadable the answer is 422 with the document under `report`."
        ),
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"multipart/form-data": {"schema": DIAGNOSE_FORM_SCHEMA}},
            }
        },
        responses={
            200: {"description": "The deeproot.diagnose/1 document.",
                  "content": {"application/json": {"schema": {"type": "object"}}}},
            **_errors(400, 408, 413, 415, 422, 503),
        },
    )
    async def api_diagnose(request: Request) -> Response:
        done, _ = await diagnose_request(svc, request)
        doc = done.doc
        if all(p["status"] == "error" for p in doc["photos"]):
            first = doc["photos"][0]["error"]
            raise HttpError(422, first, "unreadable_photo", extra={"report": doc})
        # serialised in the diagnosis thread, exactly as JSONResponse(doc) would be
        return Response(done.body, media_type="application/json",
                        headers={**done.timing_headers(), **svc.gate.reconnect_headers()})

    @app.get(
        "/api/recommend",
        summary="Products for scalp types",
        description="The `deeproot.recommend/1` document (docs/catalog.md).",
        responses={200: {"description": "The deeproot.recommend/1 document."},
                   **_errors(422, 503)},
    )
    def api_recommend(
        type: Annotated[list[str], Query(description="Scalp types: oily, 지성, 탈모성 …",
                                         min_length=1, max_length=7,
                                         examples=[["oily"], ["건성", "탈모성"]])],
        category: Annotated[list[str] | None, Query(description="Category keys or labels; "
                                                    "none: all seven", max_length=7)] = None,
        top: Annotated[int, Query(ge=1, le=20)] = 3,
        ranking: Annotated[str, Query(pattern="^(seed|bayes)$")] = "seed",
        table: Annotated[str, Query(pattern="^(seed|extended)$")] = "extended",
        all_brands: bool = False,
        free_of: Annotated[list[str] | None, Query(
            description="Leave out products with any of these ingredient families (sulfate_"
            "surfactant, silicone, paraben, mineral_oil, synthetic_colour, fragrance)",
            max_length=10)] = None,
        no_allergens: Annotated[bool, Query(description="Leave out products with any of the"
                                            " MFDS-labelled fragrance allergens")] = False,
        include_sold_out: Annotated[bool, Query(description="Show sold-out products too"
                                                " (marked)")] = False,
    ) -> Response:
        from deeproot.catalog.recommend import recommend

        svc.require_catalog()
        families = [f.strip() for v in free_of or () for f in v.split(",") if f.strip()]
        rs = recommend(svc.db_path, types=type, categories=category, top=top, ranking=ranking,
                       all_brands=all_brands, table=table, free_of=families,
                       no_allergens=no_allergens, include_sold_out=include_sold_out)
        return JSONResponse(rs.to_json())

    @app.get(
        "/api/products/{goods_no}",
        summary="One product",
        description="The product with its ingredients, tags per scalp type with the evidence, and"
        " flags (`deeproot.product/1`).",
        responses={200: {"description": "The deeproot.product/1 document."},
                   **_errors(404, 422, 503)},
    )
    def api_product(
        goods_no: Annotated[str, Path(description="The goodsNo", examples=["A900101000001"])],
    ) -> Response:
        from deeproot.catalog.product import product

        svc.require_catalog()
        return JSONResponse(product(svc.db_path, goods_no))

    @app.get("/api/health", summary="Health and configuration of this worker",
             responses={200: {"description": "Ready."}})
    def api_health() -> Response:
        return JSONResponse(
            {
                "status": "ok",
                "version": __version__,
                "model": svc.model_json(),
                "catalog": {"available": svc.has_catalog, "demo": svc.demo_catalog},
                "queue": {"admitted": svc.gate.admitted, "capacity": svc.gate.capacity,
                          "diagnoses": svc.gate.done},
                "limits": {"max_upload_mb": svc.settings.max_upload_mb,
                           "max_photos": svc.settings.max_photos},
            }
        )

    @app.get("/docs", include_in_schema=False)
    def docs(request: Request) -> HTMLResponse:
        return pages.docs_page(request, app.openapi())
