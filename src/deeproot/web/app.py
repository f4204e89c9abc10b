"""`create_app()`: the FastAPI application, errors, and reading a diagnosis request.

Routes live in `api.py` (JSON) and `pages.py` (HTML). Every route calls one library function
(`diagnose()`, `recommend()`, `product()`) and renders its document; errors become JSON (under
/api) or a page, with a message a person can act on and the right status, never a stack trace
(that goes to the server log).
"""

import logging
from importlib import resources
from typing import TYPE_CHECKING, Any

from deeproot import __version__
from deeproot.errors import DataError, DeeprootError, InputError
from deeproot.web.settings import Settings

if TYPE_CHECKING:  # pragma: no cover
    from fastapi import FastAPI, Request

    from deeproot.web.service import Diagnosed, Service, Survey

log = logging.getLogger(__name__)

class HttpError(Exception):
    """An error answer: status, one-line message, short code, extra headers and fields."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str,
        *,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
        ko: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.ko = ko  # the message on Korean pages, where it differs
        self.headers = headers or {}
        self.extra = extra or {}


def to_http(exc: BaseException) -> HttpError:
    """The HTTP form of a library or web error."""
    from deeproot.catalog.product import ProductNotFound
    from deeproot.web.gate import Overloaded
    from deeproot.web.upload import UploadError

    if isinstance(exc, HttpError):
        return exc
    if isinstance(exc, UploadError):
        return HttpError(exc.status, exc.message, exc.code, ko=exc.ko)
    if isinstance(exc, Overloaded):
        return HttpError(503, str(exc), "busy", headers={"Retry-After": str(exc.retry_after)},
                         ko=f"지금 진단 요청이 많습니다. {exc.retry_after}초 뒤에 다시"
                         " 시도해 주세요.")
    if isinstance(exc, ProductNotFound):
        return HttpError(404, str(exc), "not_found")
    if isinstance(exc, InputError):
        return HttpError(422, str(exc), "invalid_value")
    if isinstance(exc, DataError):
        return HttpError(503, str(exc), "unavailable")
    if isinstance(exc, DeeprootError):
        return HttpError(500, str(exc), "error")
    log.error("unexpected error", exc_info=exc)
    return HttpError(500, "internal error; the server log has the details", "internal")


def _photo_problem(files: list[Any]) -> HttpError | None:
    """415 when no uploaded photo is a JPEG, PNG or WebP by content (the CLI's sniffing)."""
    from deeproot.diagnose.images import sniff

    if files and all(sniff(f.data[:16]) is None for f in files):
        names = ", ".join(f.filename for f in files[:3])
        return HttpError(
            415,
            f"{names}: not a JPEG, PNG or WebP photo (checked by content, not by name);"
            " send a scalp photo",
            "unsupported_media_type",
            ko=f"{names}: JPG, PNG, WebP 사진이 아닙니다 (이름이 아니라 파일 내용으로 확인합니다)."
            " 두피 사진을 올려 주세요.",
        )
    return None


async def diagnose_request(svc: "Service", request: "Request") -> tuple["Diagnosed", "Survey"]:
    """Read a multipart diagnosis request within the limits and run `diagnose()` on it.

    Raises:
        HttpError, UploadError, FieldError, Overloaded: the request's problem, for `to_http`.
    """
    from starlette.requests import ClientDisconnect

    from deeproot.diagnose.images import PhotoInput
    from deeproot.web.service import survey_from_form
    from deeproot.web.upload import check_declared, read_form

    limit = svc.settings.max_upload_bytes
    boundary = check_declared(
        request.headers.get("content-type"), request.headers.get("content-length"), limit
    )
    with svc.gate.admit():
        try:
            form = await read_form(
                request.stream(), boundary, limit=limit, max_files=svc.settings.max_photos,
                idle_timeout=svc.settings.upload_idle_s,
            )
        except ClientDisconnect:
            raise HttpError(400, "the upload was interrupted; send it again",
                            "bad_request") from None
        survey = survey_from_form(form)
        if not form.files:
            raise HttpError(
                422,
                "no photo in the request; attach one or more JPEG, PNG or WebP photos as 'photos'",
                "no_photo",
                ko="사진이 없습니다. JPG, PNG, WebP 두피 사진을 한 장 이상 골라 주세요.",
            )
        problem = _photo_problem(form.files)
        if problem is not None:
            raise problem
        photos = [PhotoInput(f.filename, f.data) for f in form.files]
        del form
        done = await svc.gate.run(svc.diagnose_document, photos, survey)
    return done, survey


def add_error_handlers(app: "FastAPI") -> None:
    """Every error becomes JSON (under /api) or a page: a message, the status, no trace."""
    from fastapi import Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, Response
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from deeproot.web import pages
    from deeproot.web.gate import Overloaded
    from deeproot.web.upload import UploadError

    def error_response(request: Request, err: HttpError) -> Response:
        if request.url.path.startswith("/api/") or request.url.path == "/openapi.json":
            body = {"detail": err.message, "status": err.status, "code": err.code, **err.extra}
            return JSONResponse(body, status_code=err.status, headers=err.headers)
        return pages.error_page(request, err.status, err.message, headers=err.headers, ko=err.ko)

    @app.exception_handler(Exception)
    async def _any(request: Request, exc: Exception) -> Response:
        return error_response(request, to_http(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        msg = {404: "no such page or endpoint", 405: "method not allowed here"}.get(
            exc.status_code, str(exc.detail)
        )
        return error_response(request, HttpError(exc.status_code, msg, "http",
                                                 headers=dict(exc.headers or {})))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        parts = []
        for e in exc.errors()[:5]:
            where = ".".join(str(x) for x in e.get("loc", ()) if x not in ("query", "path", "body"))
            parts.append(f"{where}: {e.get('msg', 'invalid')}")
        return error_response(request, HttpError(422, "; ".join(parts) or "invalid request",
                                                 "invalid_value"))

    for exc_type in (DeeprootError, HttpError, UploadError, Overloaded):
        app.add_exception_handler(exc_type, _any)  # type: ignore[arg-type]


def create_app(settings: Settings | None = None, service: "Service | None" = None) -> "FastAPI":
    """The ASGI app for one worker (uvicorn calls it with no arguments: settings from env).

    Raises:
        DataError: the model bundle does not load; InputError: bad settings.
    """
    from fastapi import FastAPI
    from fastapi.staticfiles import StaticFiles

    from deeproot.web import api, pages
    from deeproot.web.security import SecurityHeaders, sha256_source
    from deeproot.web.service import Service

    svc = service or Service(settings or Settings.from_env())
    css = pages.stylesheet()
    app = FastAPI(
        title="deeproot",
        version=__version__,
        summary="Scalp photo + three survey answers -> diagnosis, care guide and products.",
        docs_url=None,
        redoc_url=None,
    )
    app.router.redirect_slashes = False  # no redirects built from the request path at all
    app.state.service = svc
    static = resources.files("deeproot.web").joinpath("static")
    app.mount("/static", StaticFiles(directory=str(static)), name="static")

    add_error_handlers(app)
    api.add_routes(app, svc)
    pages.add_routes(app, svc, css)
    return SecurityHeaders(app, sha256_source(css))  # type: ignore[return-value]
