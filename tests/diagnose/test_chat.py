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
    with pytest.raises(ChatError, match="unreachable"):
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
