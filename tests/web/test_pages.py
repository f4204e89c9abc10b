"""The HTML pages through the test client: what each page says, in Korean and English."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from deeproot.web.app import create_app
from deeproot.web.settings import Settings


@pytest.fixture(scope="module")
def client(demo_db: Path):
    from fastapi.testclient import TestClient

    with TestClient(create_app(Settings(db=demo_db, demo_catalog=True))) as c:
        yield c


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def _blank_png() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (640, 480), (200, 200, 200)).save(buf, format="PNG")
    return buf.getvalue()


def test_guide_names_the_colour_caveat_and_limits(client) -> None:
    ko = _text(client.get("/").text)
    assert "모낭사이홍반" in ko and "흰색(주광색) 조명" in ko
    assert "JPG, PNG, WebP · 한 번에 최대 200 MB, 10장까지." in ko
    en = _text(client.get("/?lang=en").text)
    assert "Redness between follicles depends strongly on the colour of the light" in en
    assert 'href="/?lang=ko"' in client.get("/?lang=en").text  # the language switch


def test_upload_form_posts_multipart_and_offers_camera_capture(client) -> None:
    html = client.get("/upload").text
    assert re.search(r'<form[^>]+method="post" action="/result\?lang=ko"'
                     r' enctype="multipart/form-data"', html)
    assert 'capture="environment"' in html and 'accept="image/*"' in html
    assert html.count('name="concerns"') == 6 and html.count('name="categories"') == 7
    assert 'data-max-bytes="209715200"' in html


def test_result_page_in_english_with_products_and_guide(client, photo) -> None:
    r = client.post("/result?lang=en", files=[("photos", ("scalp.jpg", photo, "image/jpeg"))],
                    data={"survey_type": "dry", "concerns": "hair_loss",
                          "categories": "shampoo", "lang": "en"})
    assert r.status_code == 200
    text = _text(r.text)
    assert "DEMO MODEL: these results come from a model trained on synthetic images" in text
    assert "Demo catalog: all products are fictional examples." in text
    assert "you chose a dry scalp with hair loss" in text
    for name in ("fine dead-skin flakes", "excess sebum", "hair loss", "dandruff"):
        assert name in text
    assert "Care guide:" in text and "Products" in text
    assert re.search(r"Shampoo: \d of \d+ products for", text)
    assert "View at Olive Young" in text


def test_visit_combines_photos_and_withheld_photo_says_why(client, photo) -> None:
    files = [("photos", ("a.jpg", photo, "image/jpeg")), ("photos", ("b.jpg", photo, "image/jpeg")),
             ("photos", ("wall.png", _blank_png(), "image/png"))]
    r = client.post("/result", files=files, data={"visit": "true"})
    assert r.status_code == 200
    text = _text(r.text)
    assert "방문 종합" in text
    assert text.count("증상별 심각도") == 3  # two photos and the visit
    assert "품질 검사에 걸려 진단하지 않았습니다" in text


def test_page_errors_are_pages_with_the_message(client) -> None:
    r = client.post("/result?lang=en", files=[("photos", ("x.jpg", b"hello", "image/jpeg"))])
    assert r.status_code == 415
    assert r.headers["content-type"].startswith("text/html")
    assert "x.jpg: not a JPEG, PNG or WebP photo" in r.text
    assert "Back to photo &amp; survey" in r.text
    r = client.get("/products/A999999999999")
    assert r.status_code == 404 and "no product A999999999999" in r.text
    r = client.get("/no/such/page")
    assert r.status_code == 404 and "no such page or endpoint" in r.text
    r = client.post("/result", files=[("photos", ("x.jpg", b"hello", "image/jpeg"))])
    assert r.status_code == 415  # a Korean page says it in Korean
    ko = "x.jpg: JPG, PNG, WebP 사진이 아닙니다 (이름이 아니라 파일 내용으로 확인합니다)."
    assert ko in r.text


def test_product_page_shows_ingredients_with_evidence(client) -> None:
    r = client.get("/products/A900101000001?lang=en")
    assert r.status_code == 200
    text = _text(r.text)
    assert "[데모] 쿨링 피지케어 샴푸 500ml" in text
    assert "Evidence per scalp type" in text and "살리실릭애씨드" in text
    assert '<span class="ing hit">살리실릭애씨드</span>' in r.text
    assert "sulfate surfactant 소듐라우레스설페이트" in text  # flags by name, with the evidence


def test_crawled_urls_only_become_links_when_http(client) -> None:
    from deeproot.web.pages import safe_url

    assert safe_url("https://www.oliveyoung.co.kr/x") == "https://www.oliveyoung.co.kr/x"
    for bad in ("javascript:alert(1)", "data:text/html,x", "//evil", "/local", None, 3):
        assert safe_url(bad) is None


def test_every_setting_variable_is_documented_and_in_the_image() -> None:
    """docs/web.md and the Dockerfile name every DEEPROOT_SERVE_* variable a worker reads."""
    repo = Path(__file__).resolve().parents[2]
    docs = (repo / "docs/web.md").read_text("utf-8")
    image = (repo / "Dockerfile").read_text("utf-8")
    for name in Settings().to_env():
        assert f"`{name}`" in docs, name
        if name != "DEEPROOT_SERVE_DEMO_CATALOG":  # set by serve itself, not by users
            assert name in image, name
