"""The in-memory multipart reader: limits, and no input that makes it fail other than cleanly."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deeproot.web.upload import Form, UploadError, check_declared, read_form


async def _chunks(data: bytes, size: int):
    for i in range(0, len(data), size):
        yield data[i : i + size]


def parse(data: bytes, boundary: bytes = b"b", *, limit: int = 10_000, size: int = 7) -> Form:
    return asyncio.run(read_form(_chunks(data, size), boundary, limit=limit, max_files=3))


PART = (b'--b\r\nContent-Disposition: form-data; name="photos"; filename="a.jpg"\r\n'
        b"Content-Type: image/jpeg\r\n\r\n\xff\xd8\xffDATA\r\n"
        b'--b\r\nContent-Disposition: form-data; name="concerns"\r\n\r\n'
        + "탈모".encode() + b"\r\n"
        b'--b\r\nContent-Disposition: form-data; name="photos"; filename=""\r\n\r\n\r\n--b--\r\n')


@pytest.mark.parametrize("size", [1, 3, 64, 10_000])
def test_parts_come_out_whatever_the_chunking(size: int) -> None:
    form = parse(PART, size=size)
    assert [(f.field, f.filename, f.content_type, f.data) for f in form.files] == [
        ("photos", "a.jpg", "image/jpeg", b"\xff\xd8\xffDATA")
    ]  # the empty file input is dropped
    assert form.fields == {"concerns": ["탈모"]}


def test_limit_counts_the_bytes_as_they_arrive() -> None:
    with pytest.raises(UploadError) as exc:
        parse(PART, limit=len(PART) - 1)
    assert exc.value.status == 413
    assert parse(PART, limit=len(PART)).files


@pytest.mark.parametrize(
    ("ctype", "length", "status"),
    [("application/json", None, 415), ("multipart/form-data", None, 400),
     ("multipart/form-data; boundary=b", "12x", 400),
     ("multipart/form-data; boundary=b", "11", 413)],
)
def test_headers_are_checked_before_the_body(ctype, length, status) -> None:
    with pytest.raises(UploadError) as exc:
        check_declared(ctype, length, 10)
    assert exc.value.status == status


@settings(max_examples=300, deadline=None, database=None, derandomize=True)
@given(
    body=st.one_of(
        st.binary(max_size=400),
        st.lists(st.sampled_from([b"--b", b"\r\n", b"--", b"Content-Disposition: form-data; ",
                                  b'name="photos"', b'; filename="x.jpg"', b"\xff\xd8\xff",
                                  b"filename*=UTF-8''%FF", b"\x00", b";", b'"']),
                 max_size=40).map(b"".join),
    ),
    size=st.integers(1, 50),
)
def test_any_body_parses_or_fails_with_an_upload_error(body: bytes, size: int) -> None:
    try:
        form = parse(body, size=size, limit=300)
    except UploadError as exc:
        assert exc.status in (400, 413) and exc.message
    else:
        assert len(form.files) <= 3
