"""Real-browser tests: Chromium (Playwright) against uvicorn on 127.0.0.1, desktop and phone.

Screenshots of every step are written under the test's tmp dir, and copied to
`$DEEPROOT_ARTIFACTS/web/` when that is set.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from conftest import DEMO_PHOTO

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("DEEPROOT_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
DESKTOP = {"viewport": {"width": 1280, "height": 900}}
PHONE = {"viewport": {"width": 360, "height": 740}, "is_mobile": True, "has_touch": True,
         "device_scale_factor": 2}
LIMIT_MB = 1  # the test server's upload limit, so "oversized" stays small


@pytest.fixture(scope="module")
def base_url(demo_db: Path, server_thread):
    from deeproot.web.app import create_app
    from deeproot.web.settings import Settings

    app = create_app(Settings(db=demo_db, demo_catalog=True, max_upload_mb=LIMIT_MB))
    with server_thread(app) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        if os.environ.get("DEEPROOT_REQUIRE_BROWSER") == "1":
            pytest.fail(f"DEEPROOT_REQUIRE_BROWSER=1 but Chromium is missing at {CHROMIUM}")
        pytest.skip(f"Chromium not installed at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


class Shots:
    """Screenshots named by step, in tmp_path and (when set) $DEEPROOT_ARTIFACTS/web/."""

    def __init__(self, tmp_path: Path, prefix: str) -> None:
        self.dir = tmp_path / "screenshots"
        self.dir.mkdir(exist_ok=True)
        self.prefix = prefix
        self.paths: list[Path] = []

    def __call__(self, page, step: str) -> Path:
        path = self.dir / f"{self.prefix}-{step}.png"
        page.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 1000
        self.paths.append(path)
        out = os.environ.get("DEEPROOT_ARTIFACTS")
        if out:
            dest = Path(out) / "web"
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dest / path.name)
        return path


def _choose_survey(page) -> None:
    page.check("input[name=survey_type][value=dry]")
    page.check("input[name=concerns][value=hair_loss]")
    page.check("input[name=categories][value=shampoo]")
    page.check("input[name=categories][value=scalp_tonic]")


def _assert_result(page) -> None:
    assert page.locator("#demo-banner").is_visible()
    assert page.locator(".sev tbody tr").count() == 6
    assert page.locator(".sev tbody tr .bar").count() == 18  # 6 symptoms x 3 classes
    assert page.locator(".scalp .badge.type").count() >= 1
    assert page.locator(".guide").count() >= 1
    assert page.locator(".guide .care-steps li").count() >= 3
    cards = page.locator(".product")
    assert cards.count() >= 2
    first = cards.first
    assert first.locator(".name").inner_text().startswith("[데모]")
    assert first.locator(".stars").inner_text().startswith("★ ")
    assert any(c in first.locator(".price").inner_text() for c in "원₩")
    assert first.locator(".ing").count() >= 1  # matched ingredients
    buy = first.locator("a.buy")
    assert buy.get_attribute("href").startswith("https://www.oliveyoung.co.kr/store/goods/")
    assert buy.get_attribute("rel") == "noopener noreferrer"


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_whole_flow_in_the_browser(browser, base_url, tmp_path, device) -> None:
    ctx = browser.new_context(**(DESKTOP if device == "desktop" else PHONE),
                              accept_downloads=True)
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: m.type == "error" and "demo.invalid" not in m.text
            and "ERR_NAME_NOT_RESOLVED" not in m.text and errors.append(m.text))
    shot = Shots(tmp_path, device)

    page.goto(base_url + "/")
    assert "모낭사이홍반" in page.locator(".tips .caution").inner_text()  # the colour caveat
    shot(page, "1-guide")
    page.click("#start")
    page.wait_for_url("**/upload?lang=ko")
    page.set_input_files("#photos", str(DEMO_PHOTO))
    page.wait_for_selector("#previews img[src^='blob:']")  # the browser-side preview
    _choose_survey(page)
    echo = page.locator("#echo-text").inner_text()
    assert "건성" in echo and "탈모" in echo and "샴푸" in echo  # the survey echoed back
    shot(page, "2-upload-survey")
    page.click("#go")
    page.wait_for_url("**/result?lang=ko")
    _assert_result(page)
    assert "건성 타입의 탈모 증상" in page.locator(".echo-box").inner_text()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= (1280 if device == "desktop" else 360)  # no sideways scrolling
    shot(page, "3-result")

    if device == "desktop":  # save as one self-contained file
        with page.expect_download() as dl:
            page.click("#save")
        saved = Path(dl.value.path()).read_text("utf-8")
        assert "<style>" in saved and "<script" not in saved
        assert "deeproot-result" in dl.value.suggested_filename
        assert saved.count('class="product') >= 2

    page.locator(".product a.more").first.click()
    page.wait_for_url("**/products/A9*")
    assert page.locator(".ingredients .ing").count() >= 5
    assert page.locator(".ingredients .ing.hit").count() >= 1  # the evidence highlighted
    shot(page, "4-product")
    assert errors == []
    ctx.close()


def test_flow_without_javascript(browser, base_url, tmp_path) -> None:
    ctx = browser.new_context(java_script_enabled=False, **DESKTOP)
    page = ctx.new_page()
    shot = Shots(tmp_path, "nojs")
    page.goto(base_url + "/upload?lang=en")
    assert page.locator("#photos").is_visible()  # the plain file input, no JS styling
    page.set_input_files("#photos", str(DEMO_PHOTO))
    _choose_survey(page)
    shot(page, "1-upload")
    page.click("#go")
    page.wait_for_url("**/result?lang=en")
    _assert_result(page)
    assert "you chose a dry scalp with hair loss" in page.locator(".echo-box").inner_text()
    assert page.locator("#result-actions").is_hidden()  # print/save need JS: not shown
    shot(page, "2-result")
    ctx.close()


def _bad_files(tmp_path: Path) -> tuple[Path, Path]:
    big = tmp_path / "huge.jpg"
    big.write_bytes(DEMO_PHOTO.read_bytes() + b"\0" * (LIMIT_MB * 1024 * 1024 + 10))
    text = tmp_path / "scalp.jpg"
    text.write_text("this is a shopping list, not a photo\n")
    return big, text


def test_bad_files_are_stopped_in_the_browser(browser, base_url, tmp_path) -> None:
    big, text = _bad_files(tmp_path)
    ctx = browser.new_context(**PHONE)
    page = ctx.new_page()
    shot = Shots(tmp_path, "js-bad")
    page.goto(base_url + "/upload")
    page.set_input_files("#photos", str(big))
    page.wait_for_selector("#check:not([hidden])")
    assert page.locator("#check").inner_text() == (
        f"huge.jpg: 1.1 MB로 {LIMIT_MB} MB 제한을 넘습니다. 더 작은 사진을 골라 주세요."
    )
    page.click("#go")
    page.wait_for_timeout(300)
    assert page.url.endswith("/upload")  # not sent
    shot(page, "1-oversized")
    page.set_input_files("#photos", str(text))
    page.locator("#check", has_text="scalp.jpg").wait_for()  # (CSP forbids eval'd waits)
    assert page.locator("#check").inner_text() == (
        "scalp.jpg: JPG, PNG, WebP 사진이 아닙니다. 사진 파일을 골라 주세요."
    )
    shot(page, "2-text-as-jpg")
    ctx.close()


def test_bad_files_are_refused_by_the_server_without_javascript(
    browser, base_url, tmp_path
) -> None:
    big, text = _bad_files(tmp_path)
    ctx = browser.new_context(java_script_enabled=False, **DESKTOP)
    page = ctx.new_page()
    shot = Shots(tmp_path, "nojs-bad")
    for path, lang, status, message, step in (
        (big, "ko", 413, f"올린 파일이 {LIMIT_MB} MB 제한을 넘습니다."
         " 더 작은 사진이나 더 적은 장수로 다시 올려 주세요.", "1-oversized"),
        (text, "en", 415, "scalp.jpg: not a JPEG, PNG or WebP photo (checked by content, not by"
         " name); send a scalp photo", "2-text-as-jpg"),
    ):
        page.goto(base_url + f"/upload?lang={lang}")
        page.set_input_files("#photos", str(path))
        with page.expect_navigation() as nav:
            page.click("#go")
        assert nav.value.status == status
        assert page.locator("#error-message").inner_text() == message
        assert page.locator("a.button.primary").get_attribute("href") == f"/upload?lang={lang}"
        shot(page, step)
    ctx.close()
