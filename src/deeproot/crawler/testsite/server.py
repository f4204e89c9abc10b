"""Serve a built imitation site on 127.0.0.1: a stdlib threaded HTTP server with fault rules."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from deeproot.crawler.config import DETAIL_PATH, LISTING_PATH, NOTICE_PATH, STATS_PREFIX
from deeproot.crawler.testsite.model import Fault, Faults
from deeproot.crawler.testsite.render import (
    AKAMAI_HTML,
    CARDS_END,
    CARDS_START,
    CHALLENGE_HTML,
    CHALLENGE_LATE_HTML,
    NOT_FOUND_HTML,
)

_BOMB: bytes | None = None


def gzip_bomb() -> bytes:
    """About 1 MB of gzip that inflates to 1 GiB of zeros (1,024 members of 1 MiB each)."""
    global _BOMB
    if _BOMB is None:
        import gzip

        _BOMB = gzip.compress(bytes(1 << 20), compresslevel=9, mtime=0) * 1024
    return _BOMB


_NO_CATEGORY_HTML = """<!DOCTYPE html><html lang="ko"><head><meta charset="utf-8">
<title>올리브영</title></head><body><div id="Contents"><div class="error-page">
<p>카테고리 정보가 없습니다.</p></div></div></body></html>"""


@dataclass
class RunningSite:
    """A site being served: its base URL and the log of requests it answered."""

    base_url: str
    log: list[dict] = field(default_factory=list)

    def __str__(self) -> str:
        return self.base_url

    def count(self, kind: str | None = None, status: int | None = None) -> int:
        """How many requests of `kind` (robots, listing, detail, notice, other) got `status`."""
        return sum(
            1
            for r in self.log
            if (kind is None or r["kind"] == kind) and (status is None or r["status"] == status)
        )


_STATS_RE = re.compile(re.escape(STATS_PREFIX) + r"([A-Z]\d{12})/stats$")


def _kind(path: str) -> str:
    if path == "/robots.txt":
        return "robots"
    for kind, p in (("listing", LISTING_PATH), ("detail", DETAIL_PATH), ("notice", NOTICE_PATH)):
        if path.endswith(p):
            return kind
    if _STATS_RE.search(path):
        return "stats"
    return "other"


def _mangle(body: str) -> str:
    """Malformed HTML as browsers tolerate it: closing tags dropped, a stray `<` and `&`."""
    body = re.sub(r"</(div|li|p|ul|body|html)>", "", body)
    return body.replace('<div id="Contents">', '<div id="Contents"> 5 < 7 & <b>', 1)


def _js_listing(body: str) -> str:
    i, j = body.find(CARDS_START), body.find(CARDS_END)
    if i < 0 or j < 0:
        return body
    cards = body[i + len(CARDS_START) : j]
    script = (
        '<div id="prdListArea"></div><script>document.addEventListener("DOMContentLoaded",'
        'function(){document.getElementById("prdListArea").innerHTML='
        + json.dumps(cards)
        + ";});</script>"
    )
    return body[:i] + script + body[j + len(CARDS_END) :]


class _State:
    def __init__(self, root: Path, faults: Faults, site: RunningSite) -> None:
        self.root, self.faults, self.site = root, faults, site
        self.lock = threading.Lock()
        self.n = 0
        self.used: dict[int, int] = {}
        meta = json.loads((root / "site.json").read_text(encoding="utf-8"))
        self.codes: dict[str, str] = meta["codes"]
        self.rows: list[int] = meta["rows"]

    def fault_for(self, kind: str, path: str, goods: str | None, page: int | None) -> Fault | None:
        with self.lock:
            for i, rule in enumerate(self.faults.rules):
                if rule.path and rule.path not in path:
                    continue
                if rule.goods_no is not None and rule.goods_no != goods:
                    continue
                if rule.page is not None and (kind != "listing" or rule.page != page):
                    continue
                if rule.times is not None:
                    if self.used.get(i, 0) >= rule.times:
                        continue
                    self.used[i] = self.used.get(i, 0) + 1
                return rule
        return None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state: _State

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; without this, Nagle + delayed ACK add 40 ms.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        self._handle({})

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n).decode("utf-8", "replace") if n else ""
        self._handle({k: v[0] for k, v in parse_qs(body).items()})

    def _send(
        self,
        status: int,
        body: str | bytes,
        ctype: str = "text/html; charset=UTF-8",
        headers: dict[str, str] | None = None,
    ) -> None:
        data = body.encode("utf-8") if isinstance(body, str) else body
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _handle(self, form: dict[str, str]) -> None:
        st = self.state
        url = urlparse(self.path)
        params = {k: v[0] for k, v in parse_qs(url.query).items()} | form
        kind = _kind(url.path)
        goods = params.get("goodsNo")
        if kind == "stats":
            m = _STATS_RE.search(url.path)
            goods = m.group(1) if m else None
        page = int(params["pageIdx"]) if params.get("pageIdx", "").isdigit() else 1
        entry = {
            "method": self.command,
            "path": url.path,
            "kind": kind,
            "goods_no": goods,
            "page": page if kind == "listing" else None,
            "status": 0,
            "fault": None,
            "t": time.monotonic(),
        }
        with st.lock:
            st.n += 1
            n = st.n
            st.site.log.append(entry)
        status, body, headers = self._answer(kind, url.path, params, goods, page, n, entry)
        entry["status"] = status
        if st.faults.latency:
            time.sleep(st.faults.latency)
        ctype = "text/plain; charset=UTF-8" if kind == "robots" else "text/html; charset=UTF-8"
        if kind == "stats" and status == 200 and not entry["fault"]:
            ctype = "application/json;charset=UTF-8"
        self._send(status, body, ctype, headers)

    def _answer(
        self, kind: str, path: str, params: dict, goods: str | None, page: int, n: int, entry: dict
    ) -> tuple[int, str | bytes, dict[str, str]]:
        st = self.state
        if kind == "robots":
            if st.faults.robots_delay:
                time.sleep(st.faults.robots_delay)
            if st.faults.robots_status != 200:
                return st.faults.robots_status, "Server Error", {}
            return 200, st.faults.robots_txt or "User-agent: *\nAllow: /\n", {}
        if st.faults.challenge_after is not None and n > st.faults.challenge_after:
            entry["fault"] = "challenge"
            return 403, CHALLENGE_HTML, {"cf-mitigated": "challenge"}
        if st.faults.blocked_after is not None and n > st.faults.blocked_after:
            entry["fault"] = "blocked"
            return 403, "<html><body>Forbidden</body></html>", {}
        if st.faults.challenge_non_browser and not self.headers.get("Sec-Fetch-Mode"):
            entry["fault"] = "challenge"
            return 403, CHALLENGE_HTML, {"cf-mitigated": "challenge"}
        fault = st.fault_for(kind, path, goods, page)
        if fault is not None:
            entry["fault"] = fault.kind
            after = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
            if fault.kind == "429":
                return 429, "Too Many Requests", after
            if fault.kind == "503":
                return 503, "Service Unavailable", after
            if fault.kind == "404":
                return 404, "<html><body>Not Found</body></html>", {}
            if fault.kind == "challenge_late":
                return 403, CHALLENGE_LATE_HTML, {}
            if fault.kind == "akamai":
                return 403, AKAMAI_HTML, {}
            if fault.kind == "offsite":
                return 302, "", {"Location": f"http://offsite.invalid{path}"}
            if fault.kind == "bomb":
                return 200, gzip_bomb(), {"Content-Encoding": "gzip"}
            if fault.kind == "empty":
                return 200, "", {}
            if fault.kind == "challenge":
                return 403, CHALLENGE_HTML, {"cf-mitigated": "challenge"}
            if fault.kind == "deleted" and kind == "detail":
                return 200, NOT_FOUND_HTML, {}
            if fault.kind == "timeout":
                time.sleep(fault.seconds)
        status, body = self._page(kind, params, goods, page)
        if fault is not None and fault.kind == "malformed":
            body = _mangle(body)
        if kind == "listing" and st.faults.js_listing:
            body = _js_listing(body)
        return status, body, {}

    def _page(self, kind: str, params: dict, goods: str | None, page: int) -> tuple[int, str]:
        st = self.state
        if kind == "listing":
            code = params.get("dispCatNo", "")
            if code not in st.codes:
                return 200, _NO_CATEGORY_HTML
            rows = int(params.get("rowsPerPage") or 24)
            rows = rows if rows in st.rows else 24
            f = st.root / "listing" / code / str(rows) / f"{page}.html"
            if not f.exists():
                f = st.root / "listing" / code / str(rows) / "empty.html"
            return 200, f.read_text(encoding="utf-8")
        if kind in ("detail", "notice") and goods and re.fullmatch(r"[A-Z]\d{12}", goods):
            f = st.root / kind / f"{goods}.html"
            if f.exists():
                return 200, f.read_text(encoding="utf-8")
            return (200, NOT_FOUND_HTML) if kind == "detail" else (200, "")
        if kind == "stats" and goods:
            f = st.root / "stats" / f"{goods}.json"
            if f.exists():
                return 200, f.read_text(encoding="utf-8")
            return 404, '{"status":"FAIL","data":null}'
        return 404, "<html><body>Not Found</body></html>"


@contextmanager
def serve(
    site_dir: str | Path, faults: Faults | None = None, *, port: int = 0
) -> Iterator[RunningSite]:
    """Serve `site_dir` (from `build_site`) on 127.0.0.1 while in the block (port 0: any free)."""
    handler: type[_Handler] = type("Handler", (_Handler,), {})  # per-server class attribute
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    site = RunningSite(base_url=f"http://127.0.0.1:{server.server_address[1]}")
    handler.state = _State(Path(site_dir), faults or Faults(), site)
    thread = threading.Thread(target=server.serve_forever, name="deeproot-testsite", daemon=True)
    thread.start()
    try:
        yield site
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
