"""The chat-model guide against a local OpenAI-compatible stub on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from deeproot.diagnose.chat import ChatConfig, ChatError, chat_guide, config_from_env


class Stub:
    def __init__(self) -> None:
        self.requests: list[tuple[str, dict, dict]] = []
        self.status = 200
        self.body: bytes = b""
        self.delay = 0.0

    def answer(self, content: str) -> None:
        self.body = json.dumps(
            {"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]}
        ).encode()


@pytest.fixture()
def stub() -> Iterator[tuple[Stub, str]]:
    state = Stub()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            n = int(self.headers["Content-Length"])
            state.requests.append((self.path, dict(self.headers), json.loads(self.rfile.read(n))))
            time.sleep(state.delay)
            self.send_response(state.status)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(state.body)

        def log_message(self, *args: object) -> None:
            pass

    class Server(ThreadingHTTPServer):
        def handle_error(self, request, client_address) -> None:
            pass  # the timeout test hangs up on purpose

    server = Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def cfg(url: str, timeout: float = 5.0) -> ChatConfig:
    return ChatConfig(url, "tiny-chat", "sk-test", timeout)


def test_chat_guide_posts_openai_request(stub) -> None:
    state, url = stub
    state.answer("지성 두피는 피지가 많습니다.\n1. 세정 ...")
    g = chat_guide("oily", "ko", "피지과다: 중증", config=cfg(url))
    assert (g.source, g.type, g.title) == ("chat", "oily", "지성 두피 (피지과다)")
    assert g.text == "지성 두피는 피지가 많습니다.\n1. 세정 ..."
    path, headers, body = state.requests[0]
    assert path == "/v1/chat/completions"
    assert headers["Authorization"] == "Bearer sk-test"
    assert body["model"] == "tiny-chat"
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert "피지과다: 중증" in body["messages"][1]["content"]
    assert "지성 두피 (피지과다)" in body["messages"][1]["content"]  # curated guide as reference


def test_http_error(stub) -> None:
    state, url = stub
    state.status = 500
    with pytest.raises(ChatError, match=r"chat endpoint .*/v1/chat/completions answered HTTP 500"):
        chat_guide("dry", "en", config=cfg(url))


def test_malformed_answer(stub) -> None:
    state, url = stub
    state.body = b'{"error": "nope"}'
    with pytest.raises(ChatError, match="answered without choices\\[0\\].message"):
        chat_guide("dry", "en", config=cfg(url))
    state.answer("   ")
    with pytest.raises(ChatError, match="answered an empty message"):
        chat_guide("dry", "en", config=cfg(url))


def test_timeout(stub) -> None:
    state, url = stub
    state.delay = 0.6
    state.answer("late")
    t0 = time.perf_counter()
    with pytest.raises(ChatError, match=r"did not answer within 0.2 s"):
        chat_guide("dry", "en", config=cfg(url, timeout=0.2))
    assert time.perf_counter() - t0 < 0.55


def test_unreachable() -> None:
    with pytest.raises(ChatError, match=r"chat endpoint http://127.0.0.1:9/v1/chat/completions"):
        chat_guide("dry", "en", config=cfg("http://127.0.0.1:9"))


def test_config_from_env() -> None:
    with pytest.raises(ChatError, match="needs DEEPROOT_CHAT_BASE_URL"):
        config_from_env({})
    with pytest.raises(ChatError, match="needs DEEPROOT_CHAT_MODEL"):
        config_from_env({"DEEPROOT_CHAT_BASE_URL": "http://127.0.0.1:1/v1"})
    with pytest.raises(ChatError, match="must be an http\\(s\\) URL"):
        config_from_env({"DEEPROOT_CHAT_BASE_URL": "ftp://x", "DEEPROOT_CHAT_MODEL": "m"})
    c = config_from_env({"DEEPROOT_CHAT_BASE_URL": "http://h:1", "DEEPROOT_CHAT_MODEL": "m"})
    assert (c.url, c.api_key, c.timeout) == ("http://h:1/v1/chat/completions", None, 20.0)


# --- issue 15: no redirects, an overall deadline, a fallback on every failure -------------------


class _Raw:
    """A one-shot TCP server on 127.0.0.1 that runs `script(conn)` for each connection."""

    def __init__(self, script) -> None:  # noqa: ANN001
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.received: list[bytes] = []
        self.script = script
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                data = b""
                try:
                    while b"\r\n\r\n" not in data:
                        data += conn.recv(65536)
                    self.received.append(data)
                    self.script(conn)
                except OSError:
                    pass

    def close(self) -> None:
        self.sock.close()


def test_redirect_is_not_followed_and_key_not_resent() -> None:
    other = _Raw(lambda c: c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"))
    location = f"http://localhost:{other.port}/steal"
    first = _Raw(
        lambda c: c.sendall(
            f"HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n".encode()
        )
    )
    try:
        with pytest.raises(ChatError, match=r"redirect \(HTTP 302 to localhost\); redirects are"):
            chat_guide("dry", "en", config=cfg(f"http://127.0.0.1:{first.port}/v1"))
        time.sleep(0.1)
        assert b"Bearer sk-test" in first.received[0]
        assert other.received == []  # the key never went to the other host
    finally:
        first.close()
        other.close()


def test_dripping_server_is_cut_off_at_the_deadline() -> None:
    def drip(c) -> None:  # noqa: ANN001
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
        for _ in range(50):
            c.sendall(b" ")
            time.sleep(0.2)  # never silent for the socket timeout, never finished

    srv = _Raw(drip)
    try:
        t0 = time.perf_counter()
        with pytest.raises(ChatError, match=r"did not answer within 0.8 s"):
            chat_guide("dry", "en", config=cfg(f"http://127.0.0.1:{srv.port}/v1", timeout=0.8))
        assert time.perf_counter() - t0 < 1.5
    finally:
        srv.close()


def test_dripping_headers_are_cut_off_too() -> None:
    def drip(c) -> None:  # noqa: ANN001
        for ch in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 40:
            c.sendall(bytes([ch]))
            time.sleep(0.2)

    srv = _Raw(drip)
    try:
        t0 = time.perf_counter()
        with pytest.raises(ChatError, match=r"did not answer within 0.6 s"):
            chat_guide("dry", "en", config=cfg(f"http://127.0.0.1:{srv.port}/v1", timeout=0.6))
        assert time.perf_counter() - t0 < 1.3
    finally:
        srv.close()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DEEPROOT_CHAT_TIMEOUT": "nan"}, r"DEEPROOT_CHAT_TIMEOUT must be a number of seconds"),
        ({"DEEPROOT_CHAT_TIMEOUT": "-1"}, r"DEEPROOT_CHAT_TIMEOUT must be a number of seconds"),
        ({"DEEPROOT_CHAT_TIMEOUT": "inf"}, r"DEEPROOT_CHAT_TIMEOUT must be a number of seconds"),
        ({"DEEPROOT_CHAT_TIMEOUT": "soon"}, r"DEEPROOT_CHAT_TIMEOUT must be a number of seconds"),
        ({"DEEPROOT_CHAT_BASE_URL": "http://[::1/v1"}, r"DEEPROOT_CHAT_BASE_URL is not a valid"),
        ({"DEEPROOT_CHAT_BASE_URL": "http://h:port/v1"}, r"DEEPROOT_CHAT_BASE_URL is not a valid"),
        ({"DEEPROOT_CHAT_BASE_URL": "http:///v1"}, r"DEEPROOT_CHAT_BASE_URL is not a valid"),
        ({"DEEPROOT_CHAT_BASE_URL": "http://h/v1\r\nX: y"}, r"spaces or control characters"),
    ],
)
def test_bad_settings_are_chat_errors(env: dict[str, str], message: str) -> None:
    base = {"DEEPROOT_CHAT_BASE_URL": "http://127.0.0.1:9/v1", "DEEPROOT_CHAT_MODEL": "m"}
    with pytest.raises(ChatError, match=message):
        config_from_env({**base, **env})


def test_bad_json_and_garbage_answers_are_chat_errors() -> None:
    for reply in (
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n{oops",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]",
        b"garbage that is not HTTP\r\n\r\n",
        b"",
    ):
        srv = _Raw(lambda c, r=reply: c.sendall(r))
        try:
            with pytest.raises(ChatError):
                chat_guide("dry", "en", config=cfg(f"http://127.0.0.1:{srv.port}/v1", timeout=2))
        finally:
            srv.close()
