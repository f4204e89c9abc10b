"""The JSON API through FastAPI's test client: every endpoint and every error status."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from conftest import jpeg
from deeproot.web.app import create_app
from deeproot.web.service import Service
from deeproot.web.settings import Settings


@pytest.fixture(scope="module")
def service(demo_db: Path) -> Service:
    return Service(Settings(db=demo_db, demo_catalog=True, max_upload_mb=2, queue=1))


@pytest.fixture(scope="module")
def client(service: Service):
    from fastapi.testclient import TestClient

    with TestClient(create_app(service=service), raise_server_exceptions=False) as c:
        yield c


SURVEY = {"survey_type": "건성", "concerns": ["hair_loss"],
          "categories": ["shampoo", "scalp_tonic"]}


def _post(client, files, data=None, **kw):
    return client.post("/api/diagnose", files=files, data=data or {}, **kw)


def test_health_says_model_catalog_and_limits(client) -> None:
    r = client.get("/api/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert body["model"]["bundle"] == "demo" and body["model"]["demo"] is True
    assert body["catalog"] == {"available": True, "demo": True}
    assert body["limits"] == {"max_upload_mb": 2.0, "max_photos": 10}
    assert body["queue"]["capacity"] == 2


def test_diagnose_answers_exactly_the_cli_document(client, service, photo, no_disk_writes) -> None:
    from deeproot.diagnose.images import PhotoInput
    from deeproot.diagnose.service import diagnose

    r = _post(client, [("photos", ("scalp.jpg", photo, "image/jpeg"))], SURVEY)
    assert r.status_code == 200, r.text
    assert no_disk_writes == []  # the upload was never written to a (temporary) file
    expected = diagnose(
        [PhotoInput("scalp.jpg", photo)], models=service.bundle.path, survey_type="건성",
        concerns=["hair_loss"], categories=["shampoo", "scalp_tonic"], db=service.db_path,
    ).to_json()
    assert r.json() == expected
    from fastapi.responses import JSONResponse

    # serialised in the diagnosis thread: byte for byte what JSONResponse(document) sends
    assert r.content == JSONResponse(expected).body
    assert r.headers["content-type"] == "application/json"
    import re

    # the diagnose() call's own duration, so clients can tell it from the service's overhead
    assert re.fullmatch(r"diagnose;dur=\d+\.\d\d", r.headers["server-timing"])
    assert 0 < float(r.headers["server-timing"].split("=")[1]) < r.elapsed.total_seconds() * 1000
    doc = r.json()
    assert doc["schema"] == "deeproot.diagnose/1"
    dx = doc["photos"][0]["diagnosis"]
    assert len(dx["symptoms"]) == 6
    assert [c["category"] for c in dx["products"]["categories"]] == ["shampoo", "scalp_tonic"]


def test_diagnose_in_english_with_comma_separated_and_key_values(client, photo) -> None:
    r = _post(client, [("photos", ("a.jpg", photo, "image/jpeg"))],
              {"survey_type": "dry", "concerns": "hair_loss,dandruff", "lang": "en"})
    assert r.status_code == 200
    doc = r.json()
    assert doc["lang"] == "en"
    assert doc["survey"]["concerns"] == ["hair_loss", "dandruff"]
    assert doc["survey"]["echo"].startswith("you chose a dry scalp")


def test_one_bad_photo_among_good_ones_is_reported_in_the_document(client, photo) -> None:
    files = [("photos", ("good.jpg", photo, "image/jpeg")),
             ("photos", ("notes.jpg", b"shopping list\n", "image/jpeg"))]
    r = _post(client, files)
    assert r.status_code == 200
    statuses = [(p["photo"], p["status"]) for p in r.json()["photos"]]
    assert statuses == [("good.jpg", "diagnosed"), ("notes.jpg", "error")]
    error = r.json()["photos"][1]["error"]
    assert error.startswith("notes.jpg: ") and "JPEG, PNG" in error  # diagnose()'s own message


def test_text_renamed_jpg_is_415_with_an_actionable_message(client) -> None:
    r = _post(client, [("photos", ("scalp.jpg", b"not a photo at all", "image/jpeg"))])
    assert r.status_code == 415
    assert r.json() == {
        "detail": "scalp.jpg: not a JPEG, PNG or WebP photo (checked by content, not by name);"
        " send a scalp photo",
        "status": 415,
        "code": "unsupported_media_type",
    }


def test_not_multipart_is_415(client) -> None:
    r = client.post("/api/diagnose", json={"photos": "x"})
    assert r.status_code == 415
    assert "multipart/form-data" in r.json()["detail"]


def test_corrupt_photo_is_422_with_the_report(client, photo) -> None:
    r = _post(client, [("photos", ("cut.jpg", photo[:300], "image/jpeg"))])
    assert r.status_code == 422
    body = r.json()
    assert body["code"] == "unreadable_photo"
    assert body["detail"].startswith("cut.jpg: ")
    assert body["report"]["photos"][0]["status"] == "error"


def test_declared_body_over_the_limit_is_413_before_reading(client) -> None:
    r = client.post(
        "/api/diagnose", content=b"--x--\r\n",
        headers={"content-type": "multipart/form-data; boundary=x",
                 "content-length": str(2 * 1024**3)},
    )
    assert r.status_code == 413
    assert r.json()["detail"] == (
        "the upload is over the 2 MB limit; send smaller or fewer photos"
    )


def test_streamed_body_over_the_limit_is_413(client) -> None:
    big = jpeg(1800, 1400, seed=3) * 3  # ~3 MB of real photo bytes, over the 2 MB limit
    assert len(big) > 2 * 1024 * 1024
    r = _post(client, [("photos", ("big.jpg", big, "image/jpeg"))])
    assert r.status_code == 413


def test_malformed_multipart_is_400(client) -> None:
    body = b'--xx\r\nContent-Disposition: form-data; name="photos"; filename="a.jpg"\r\n\r\nabc'
    r = client.post("/api/diagnose", content=body,
                    headers={"content-type": "multipart/form-data; boundary=xx"})
    assert r.status_code == 400
    assert "ended early" in r.json()["detail"]
    r = client.post("/api/diagnose", content=b"x",
                    headers={"content-type": "multipart/form-data"})
    assert r.status_code == 400 and "boundary" in r.json()["detail"]


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"concerns": "itchy"}, "unknown symptom 'itchy'; valid: fine_scale (미세각질)"),
        ({"categories": "soap"}, "unknown category 'soap'"),
        ({"survey_type": "탈모성"}, "survey scalp type must be 건성 (dry) or 지성 (oily)"),
        ({"lang": "fr"}, "lang must be ko or en"),
        ({"force": "maybe"}, "force must be true or false"),
    ],
)
def test_bad_survey_values_are_422_naming_the_valid_ones(client, photo, data, needle) -> None:
    r = _post(client, [("photos", ("a.jpg", photo, "image/jpeg"))], data)
    assert r.status_code == 422
    assert needle in r.json()["detail"]


def test_no_photo_is_422(client) -> None:
    r = client.post("/api/diagnose", data={"lang": "ko"}, files=[("x", ("", b"", "text/plain"))])
    assert r.status_code == 422
    assert r.json()["detail"].startswith("no photo in the request")


def test_too_many_photos_is_400(client, photo) -> None:
    files = [("photos", (f"{i}.jpg", b"\xff\xd8\xff", "image/jpeg")) for i in range(11)]
    r = _post(client, files)
    assert r.status_code == 400
    assert r.json()["detail"] == "more than 10 photos in one request; send at most 10"


def test_full_queue_answers_503_with_retry_after(service, photo, monkeypatch) -> None:
    """Capacity 2 (one running, one waiting): the third concurrent request is refused."""
    import httpx

    app = create_app(service=service)
    release = threading.Event()
    real = service.diagnose

    def slow(photos, survey):
        release.wait(20)
        return real(photos, survey)

    monkeypatch.setattr(service, "diagnose", slow)
    files = [("photos", ("a.jpg", photo, "image/jpeg"))]

    async def scenario():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as ac:
            first = asyncio.create_task(ac.post("/api/diagnose", files=files))
            second = asyncio.create_task(ac.post("/api/diagnose", files=files))
            while service.gate.admitted < 2:
                await asyncio.sleep(0.01)
            third = await ac.post("/api/diagnose", files=files)
            health = await ac.get("/api/health")  # the loop still answers while busy
            release.set()
            return third, health, await first, await second

    third, health, first, second = asyncio.run(scenario())
    assert third.status_code == 503
    assert int(third.headers["retry-after"]) >= 1
    assert third.json()["code"] == "busy"
    assert health.status_code == 200 and health.json()["queue"]["admitted"] == 2
    assert (first.status_code, second.status_code) == (200, 200)
    assert service.gate.admitted == 0


def test_recommend_is_the_library_document(client, demo_db) -> None:
    from deeproot.catalog.recommend import recommend

    r = client.get("/api/recommend", params={"type": ["oily", "탈모성"], "category": "shampoo"})
    assert r.status_code == 200
    want = recommend(demo_db, types=["oily", "탈모성"], categories=["shampoo"])
    assert r.json() == want.to_json()
    assert r.json()["schema"] == "deeproot.recommend/1"


def test_recommend_filters_pass_through(client, demo_db) -> None:
    from deeproot.catalog.recommend import recommend

    r = client.get("/api/recommend", params={"type": "dry", "free_of": "silicone,fragrance",
                                             "no_allergens": "true", "top": 2})
    assert r.status_code == 200
    want = recommend(demo_db, types=["dry"], top=2, free_of=["silicone", "fragrance"],
                     no_allergens=True)
    assert r.json() == want.to_json()


@pytest.mark.parametrize(
    ("params", "status", "needle"),
    [
        ({"type": "bald"}, 422, "unknown scalp type 'bald'"),
        ({}, 422, "type: Field required"),
        ({"type": "oily", "top": 0}, 422, "top: Input should be greater than or equal to 1"),
        ({"type": "oily", "ranking": "best"}, 422, "ranking: String should match pattern"),
        ({"type": "oily", "free_of": "gluten"}, 422, "gluten"),
    ],
)
def test_recommend_bad_values_are_422(client, params, status, needle) -> None:
    r = client.get("/api/recommend", params=params)
    assert r.status_code == status
    assert needle in r.json()["detail"]


def test_product_has_ingredients_tags_and_evidence(client) -> None:
    r = client.get("/api/products/A900101000001")
    assert r.status_code == 200
    p = r.json()
    assert p["schema"] == "deeproot.product/1"
    assert p["goods_no"] == "A900101000001" and p["categories"] == ["shampoo"]
    assert p["ingredients"][0]["token"] == "정제수"
    oily = next(t for t in p["tags"]["extended"] if t["type"] == "지성")
    assert "살리실릭애씨드" in oily["evidence"]
    assert all({"position", "token", "canonical"} <= set(m) for m in oily["matches"])


@pytest.mark.parametrize(
    ("goods", "status", "needle"),
    [
        ("A999999999999", 404, "no product A999999999999 in the catalog"),
        ("x;drop table", 422, "is not a goods number"),
    ],
)
def test_product_errors(client, goods, status, needle) -> None:
    r = client.get(f"/api/products/{goods}")
    assert r.status_code == status
    assert needle in r.json()["detail"]


def test_without_a_catalog_recommend_is_503_and_diagnose_still_works(tmp_path, photo) -> None:
    from fastapi.testclient import TestClient

    svc = Service(Settings(db=tmp_path / "none.duckdb"))
    with TestClient(create_app(service=svc)) as c:
        r = c.get("/api/recommend", params={"type": "oily"})
        assert r.status_code == 503 and "no product catalog" in r.json()["detail"]
        assert c.get("/api/products/A900101000001").status_code == 503
        d = c.post("/api/diagnose", files=[("photos", ("a.jpg", photo, "image/jpeg"))])
        assert d.status_code == 200
        assert d.json()["photos"][0]["diagnosis"]["products"] is None


def test_unexpected_error_is_500_without_a_stack_trace(client, monkeypatch) -> None:
    import deeproot.catalog.product as product_mod

    def boom(*a, **k):
        raise RuntimeError("secret internals at /srv/x.py line 3")

    monkeypatch.setattr(product_mod, "product", boom)
    r = client.get("/api/products/A900101000001")
    assert r.status_code == 500
    assert r.json() == {"detail": "internal error; the server log has the details",
                        "status": 500, "code": "internal"}


def test_security_headers_and_csp_allow_only_the_inline_stylesheet(client) -> None:
    import base64
    import hashlib
    import re

    for path in ("/", "/upload", "/api/health", "/nope"):
        r = client.get(path)
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "no-referrer"
        csp = r.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self';" in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    page = client.get("/upload").text
    css = re.search(r"<style>(.*?)</style>", page, re.S).group(1)
    digest = base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()
    assert f"'sha256-{digest}'" in client.get("/upload").headers["content-security-policy"]
    assert "<script>" not in page  # scripts only by src from this origin
    assert not re.search(r"<[^>]+\son[a-z]+=", page)  # no inline event handlers


def test_no_open_redirect(client) -> None:
    for path in ("//evil.example/", "/result?lang=//evil.example", "/\\evil.example"):
        r = client.get(path, follow_redirects=False)
        loc = r.headers.get("location", "")
        assert not loc or loc.startswith("/") and not loc.startswith("//"), (path, loc)
    r = client.get("/result?lang=//evil.example", follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (303, "/upload?lang=ko")


def test_openapi_lists_every_endpoint_and_docs_render(client) -> None:
    spec = client.get("/openapi.json").json()
    assert set(spec["paths"]) == {"/api/diagnose", "/api/recommend", "/api/products/{goods_no}",
                                  "/api/health"}
    body = spec["paths"]["/api/diagnose"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in body
    docs = client.get("/docs")
    assert docs.status_code == 200 and "/api/products/{goods_no}" in docs.text
    assert "cdn.jsdelivr.net" in docs.headers["content-security-policy"]


def test_diagnose_passes_product_filters_to_the_library(client, service, photo) -> None:
    from deeproot.diagnose.images import PhotoInput
    from deeproot.diagnose.service import diagnose

    data = {"categories": "shampoo", "free_of": ["silicone", "fragrance"], "no_allergens": "on"}
    r = _post(client, [("photos", ("a.jpg", photo, "image/jpeg"))], data)
    assert r.status_code == 200, r.text
    want = diagnose([PhotoInput("a.jpg", photo)], models=service.bundle.path, db=service.db_path,
                    categories=["shampoo"], free_of=["silicone", "fragrance"], no_allergens=True)
    assert r.json() == want.to_json()
    products = r.json()["photos"][0]["diagnosis"]["products"]
    assert products["free_of"] == ["silicone", "fragrance"] and products["no_allergens"] is True
    bad = _post(client, [("photos", ("a.jpg", photo, "image/jpeg"))], {"free_of": "gluten"})
    assert bad.status_code == 422 and "gluten" in bad.json()["detail"]


def test_file_names_korean_rfc5987_and_paths(client, photo) -> None:
    """Names as browsers and clients send them; only the last path part, no control chars."""
    def post(disposition: bytes):
        body = (b"--b\r\nContent-Disposition: form-data; name=\"photos\"; " + disposition
                + b"\r\nContent-Type: image/jpeg\r\n\r\n" + photo + b"\r\n--b--\r\n")
        return client.post("/api/diagnose", content=body,
                           headers={"content-type": "multipart/form-data; boundary=b"})

    cases = [
        ('filename="두피 사진.jpg"'.encode(), "두피 사진.jpg"),
        (b"filename*=UTF-8''%EB%91%90%ED%94%BC.jpg", "두피.jpg"),
        (b'filename="C:\\\\Users\\\\me\\\\scalp.jpg"', "scalp.jpg"),
        (b'filename="../../etc/a\x1b[31m.jpg"', "a.jpg"),  # the ANSI escape goes whole
    ]
    for disposition, name in cases:
        r = post(disposition)
        assert r.status_code == 200, (disposition, r.text)
        assert r.json()["photos"][0]["photo"] == name
    r = client.post("/api/diagnose", data={"profilename": "x"},
                    files=[("photos", ("a.jpg", photo, "image/jpeg"))])
    assert r.status_code == 200  # a field whose name contains "filename" stays a field


def test_a_worker_warms_up_with_one_diagnosis_in_memory(demo_db, monkeypatch, no_disk_writes):
    """Before its first request a worker diagnoses the bundled demo photo once, as an in-memory
    upload with the catalog, so no user pays for the first model run, imports and query."""
    import deeproot.diagnose.service as ds
    from deeproot.diagnose.images import PhotoInput

    calls = []
    real = ds.diagnose

    def spy(photos, **kw):
        report = real(photos, **kw)
        calls.append((photos, kw, report))
        return report

    monkeypatch.setattr(ds, "diagnose", spy)
    Service(Settings(db=demo_db, demo_catalog=True))
    assert len(calls) == 1
    photos, kw, report = calls[0]
    assert [type(p) for p in photos] == [PhotoInput]
    assert kw["db"] == demo_db and kw["recommend_products"] and kw["force"]
    assert report.photos[0].status == "diagnosed" and report.photos[0].diagnosis.products
    assert no_disk_writes == []
