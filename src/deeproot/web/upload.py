"""Reading a multipart upload into memory, with limits enforced while the bytes arrive.

Photos never touch the disk: Starlette's form parser spools files over 1 MB to a temporary file,
so the body is parsed here with python-multipart's streaming parser into memory. A declared
`Content-Length` over the limit is refused before a byte of the body is read; a body without one
(chunked) is counted as it arrives and refused as soon as it passes the limit, so a 2 GB upload
never sits in memory.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from deeproot.terminal import printable

MAX_FIELD_BYTES = 64 * 1024  # all text fields of one form together
MAX_PARTS = 200
_FILE_PARAM = re.compile(rb";\s*filename\*?\s*=", re.IGNORECASE)


class UploadError(Exception):
    """A request body that cannot be accepted: `status` (400, 408, 413, 415), a one-line message."""

    def __init__(self, status: int, message: str, code: str, ko: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.ko = ko  # the message for Korean pages (the API answers in English)


@dataclass(frozen=True)
class UploadedFile:
    """One file part: the form field, the sanitized file name, the declared type, the bytes."""

    field: str
    filename: str
    content_type: str
    data: bytes


@dataclass
class Form:
    """A parsed form: text fields (each name may repeat) and file parts, in order."""

    fields: dict[str, list[str]] = field(default_factory=dict)
    files: list[UploadedFile] = field(default_factory=list)

    def get(self, name: str) -> str | None:
        values = self.fields.get(name)
        return values[0] if values else None

    def getlist(self, name: str) -> list[str]:
        return list(self.fields.get(name, []))


def too_large(limit: int) -> UploadError:
    return UploadError(
        413,
        f"the upload is over the {limit / 1024 / 1024:.0f} MB limit; send smaller or fewer photos",
        "too_large",
        f"올린 파일이 {limit / 1024 / 1024:.0f} MB 제한을 넘습니다. 더 작은 사진이나 더 적은 장수로"
        " 다시 올려 주세요.",
    )


def check_declared(content_type: str | None, content_length: str | None, limit: int) -> bytes:
    """Check the headers before reading the body; return the multipart boundary.

    Raises:
        UploadError: 415 not multipart/form-data, 400 no boundary or a bad Content-Length,
            413 a declared length over `limit`.
    """
    from python_multipart.multipart import parse_options_header

    ctype, params = parse_options_header(content_type or "")
    if ctype != b"multipart/form-data":
        raise UploadError(
            415,
            "send the photos as multipart/form-data (a form with enctype=multipart/form-data,"
            " or curl -F photos=@scalp.jpg)",
            "unsupported_media_type",
        )
    boundary = params.get(b"boundary")
    if not boundary or len(boundary) > 200:
        raise UploadError(400, "the multipart body has no valid boundary; resend the form",
                          "bad_request")
    if content_length is not None:
        if not content_length.isdigit():
            raise UploadError(400, "the Content-Length header is not a number", "bad_request")
        if int(content_length) > limit:
            raise too_large(limit)
    return boundary


def _rfc5987_filename(disposition: bytes) -> str | None:
    """`filename*=UTF-8''…` (RFC 5987), which python-multipart's header parser drops."""
    from urllib.parse import unquote

    m = re.search(rb"filename\*\s*=\s*([^;]+)", disposition, re.IGNORECASE)
    if not m:
        return None
    value = m.group(1).strip().strip(b'"').decode("latin-1")
    charset, _, rest = value.partition("'")
    _, _, encoded = rest.partition("'")
    return unquote(encoded or value, encoding=charset or "utf-8", errors="replace")


def _filename(raw: str, index: int) -> str:
    # Only the last path component, terminal-safe, bounded: the name is echoed in the report.
    name = printable(raw.replace("\\", "/").rsplit("/", 1)[-1]).strip()
    return name[:120] or f"photo-{index}"


def _stalled(idle: float) -> UploadError:
    return UploadError(
        408, f"the upload stalled (nothing received for {idle:g} s); send it again",
        "timeout", f"{idle:g}초 동안 업로드가 멈췄습니다. 다시 올려 주세요.",
    )


async def read_form(
    chunks: AsyncIterator[bytes], boundary: bytes, *, limit: int, max_files: int,
    idle_timeout: float = 30.0,
) -> Form:
    """Parse a multipart body from its chunks, in memory, counting bytes as they arrive.

    Empty file parts (a file input left empty) are dropped.

    Raises:
        UploadError: 413 over `limit` bytes, 400 malformed, too many files or fields, 408 no
            data for `idle_timeout` seconds.
    """
    from python_multipart.exceptions import MultipartParseError
    from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header

    form = Form()
    state: dict = {"headers": {}, "name": b"", "value": b"", "data": None, "parts": 0}
    field_bytes = 0

    def on_part_begin() -> None:
        state["headers"] = {}
        state["data"] = bytearray()
        state["parts"] += 1
        if state["parts"] > MAX_PARTS:
            raise UploadError(400, f"the form has more than {MAX_PARTS} parts", "bad_request")

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["name"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["value"] += data[start:end]

    def on_header_end() -> None:
        state["headers"][state["name"].lower()] = state["value"]
        state["name"], state["value"] = b"", b""

    def is_file() -> bool:
        disposition = state["headers"].get(b"content-disposition", b"")
        return _FILE_PARAM.search(disposition) is not None

    def on_part_data(data: bytes, start: int, end: int) -> None:
        nonlocal field_bytes
        buf = state["data"]
        buf += data[start:end]
        if not is_file():
            field_bytes += end - start
            if field_bytes > MAX_FIELD_BYTES:
                raise UploadError(413, "the form's text fields are over 64 KB", "too_large")

    def on_part_end() -> None:
        raw_disposition = state["headers"].get(b"content-disposition", b"")
        disp, params = parse_options_header(raw_disposition)
        if disp != b"form-data" or b"name" not in params:
            raise UploadError(400, "a form part has no name; resend the form", "bad_request")
        name = params[b"name"].decode("utf-8", "replace")
        data = bytes(state["data"])
        state["data"] = None
        if is_file():
            raw = params[b"filename"].decode("utf-8", "replace") if b"filename" in params else ""
            raw = _rfc5987_filename(raw_disposition) or raw
            if not data and not raw:
                return  # an empty file input
            if len(form.files) >= max_files:
                raise UploadError(
                    400, f"more than {max_files} photos in one request; send at most {max_files}",
                    "too_many_photos", f"사진은 한 번에 {max_files}장까지 올릴 수 있습니다.",
                )
            ctype = state["headers"].get(b"content-type", b"").decode("latin-1")[:100]
            form.files.append(
                UploadedFile(name, _filename(raw, len(form.files) + 1), ctype, data)
            )
        else:
            try:
                value = data.decode("utf-8")
            except UnicodeDecodeError:
                raise UploadError(400, f"form field {name!r} is not UTF-8 text",
                                  "bad_request") from None
            form.fields.setdefault(name, []).append(value)

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
    )
    received = 0
    loop = asyncio.get_running_loop()
    try:
        # A client that sends nothing for `idle_timeout` seconds gets 408: a slow upload must not
        # hold a queue place for ever. One deadline, moved on at each chunk (not a timer task per
        # chunk: that cost ~0.7 ms of a ~100 KB photo's request).
        async with asyncio.timeout(idle_timeout) as deadline:
            async for chunk in chunks:
                deadline.reschedule(loop.time() + idle_timeout)
                received += len(chunk)
                if received > limit:
                    raise too_large(limit)
                if chunk:
                    parser.write(chunk)
        parser.finalize()
    except TimeoutError:
        raise _stalled(idle_timeout) from None
    except MultipartParseError as exc:
        raise UploadError(400, f"malformed multipart body ({exc}); resend the form",
                          "bad_request") from None
    if received and parser.state not in (MultipartState.END_BOUNDARY, MultipartState.END):
        # python-multipart accepts a body cut short without the closing boundary
        raise UploadError(400, "the multipart body ended early; resend the form", "bad_request")
    return form
