"""Optional chat-model care guide through an OpenAI-compatible `/v1/chat/completions` endpoint.

Off by default. Configured only by environment variables: `DEEPROOT_CHAT_BASE_URL` (e.g.
`http://127.0.0.1:8000/v1`), `DEEPROOT_CHAT_MODEL`, optional `DEEPROOT_CHAT_API_KEY` and
`DEEPROOT_CHAT_TIMEOUT` (seconds for the whole request, default 20, at most 600).

stdlib `http.client` only, so nothing is done behind our back: redirects are never followed (a
302 must not carry the `Authorization` key to another host; it is an error), the timeout is an
overall deadline enforced by a watchdog that closes the socket (a server dripping one byte every
2 s is cut off at the deadline, not after 20 s of silence), and the answer is capped at 1 MB. Any
failure (bad configuration, malformed URL, network, HTTP status, bad JSON) raises `ChatError`;
the caller falls back to the curated guide with a warning.
"""

from __future__ import annotations

import http.client
import json
import logging
import math
import os
import socket
import ssl
import threading
import time
import urllib.parse
from dataclasses import dataclass

from deeproot import taxonomy
from deeproot.diagnose.guide import CareGuide, check_lang, guide, render
from deeproot.errors import DeeprootError

log = logging.getLogger(__name__)

ENV_URL = "DEEPROOT_CHAT_BASE_URL"
ENV_KEY = "DEEPROOT_CHAT_API_KEY"
ENV_MODEL = "DEEPROOT_CHAT_MODEL"
ENV_TIMEOUT = "DEEPROOT_CHAT_TIMEOUT"
MAX_ANSWER = 8000
MAX_RESPONSE = 1_000_000  # bytes read from the endpoint at most
MAX_TIMEOUT = 600.0

_SYSTEM = {
    "ko": (
        "당신은 두피 관리 안내를 돕는 도우미입니다. 의학적 진단이나 치료를 말하지 말고, 일반적인 "
        "화장품·생활 관리 정보만 한국어로 짧게 답하세요. 증상이 심하면 피부과 상담을 권하세요."
    ),
    "en": (
        "You help people care for their scalp. Do not diagnose or prescribe; give general "
        "cosmetic and lifestyle care information only, briefly, in English. Suggest a "
        "dermatologist when symptoms are severe."
    ),
}


class ChatError(DeeprootError):
    """The chat backend is not configured, unreachable, too slow or answered nonsense."""


@dataclass(frozen=True)
class ChatConfig:
    """Endpoint settings read from the environment."""

    base_url: str
    model: str
    api_key: str | None
    timeout: float

    @property
    def url(self) -> str:
        """The full chat-completions URL."""
        base = self.base_url.rstrip("/")
        if base.endswith("/chat/completions"):
            return base
        if not base.endswith("/v1"):
            base += "/v1"
        return base + "/chat/completions"


def config_from_env(env: dict[str, str] | None = None) -> ChatConfig:
    """Read the chat settings; raises ChatError naming the missing or bad variable."""
    e = os.environ if env is None else env
    url = e.get(ENV_URL, "").strip()
    model = e.get(ENV_MODEL, "").strip()
    if not url:
        raise ChatError(f"the chat guide needs {ENV_URL} (an OpenAI-compatible endpoint)")
    if not url.startswith(("http://", "https://")):
        raise ChatError(f"{ENV_URL} must be an http(s) URL, not {url!r}")
    _split(url)  # a malformed URL is a configuration error here, not a crash later
    if not model:
        raise ChatError(f"the chat guide needs {ENV_MODEL} (the model name)")
    raw = e.get(ENV_TIMEOUT, "20")
    try:
        timeout = float(raw)
    except ValueError:
        timeout = math.nan
    if not (0 < timeout <= MAX_TIMEOUT):  # also false for nan
        raise ChatError(
            f"{ENV_TIMEOUT} must be a number of seconds in (0, {MAX_TIMEOUT:.0f}], not {raw!r}"
        )
    return ChatConfig(url, model, e.get(ENV_KEY) or None, timeout)


def _split(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path?query) of an http(s) URL; ChatError when it is malformed."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
        host = parts.hostname
    except ValueError as exc:
        raise ChatError(f"{ENV_URL} is not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not host:
        raise ChatError(f"{ENV_URL} is not a valid http(s) URL: {url!r}")
    if any(c in url for c in "\r\n\t ") or any(ord(c) < 32 for c in url):
        raise ChatError(f"{ENV_URL} contains spaces or control characters")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.scheme, host, port or (443 if parts.scheme == "https" else 80), path


def _prompt(scalp_type: str, lang: str, symptoms: str) -> str:
    curated = render(guide(scalp_type, lang))
    t = taxonomy.scalp_type(scalp_type)
    if lang == "ko":
        return (
            f"두피 진단 결과: {t.ko} 두피. 증상: {symptoms}.\n"
            "원인, 특징, 그리고 세 가지 관리 방법(1. 세정, 2. 헤어케어 제품, 3. 두피 관리)을 "
            "알려 주세요. 아래 기본 안내를 참고하세요.\n\n" + curated
        )
    return (
        f"Scalp diagnosis: {t.en} scalp. Symptoms: {symptoms}.\n"
        "Give the causes, characteristics and three care steps (1. cleansing, 2. hair-care "
        "products, 3. scalp care). Use this reference guide.\n\n" + curated
    )


def ask(config: ChatConfig, messages: list[dict[str, str]]) -> str:
    """POST one chat-completions request and return the first choice's text.

    The whole exchange (connect, send, headers, body) must finish within `config.timeout`
    seconds; redirects are refused. Every failure is a ChatError.
    """
    url = config.url
    timeout = config.timeout
    if not (isinstance(timeout, (int, float)) and 0 < timeout <= MAX_TIMEOUT):
        raise ChatError(f"chat timeout must be a number of seconds in (0, {MAX_TIMEOUT:.0f}]")
    scheme, host, port, path = _split(url)
    body = json.dumps(
        {"model": config.model, "messages": messages, "temperature": 0.3}, ensure_ascii=False
    ).encode("utf-8")
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "Content-Length": str(len(body)),
    }
    if config.api_key:
        headers["Authorization"] = f"Bearer {config.api_key}"
    deadline = time.monotonic() + timeout
    conn: http.client.HTTPConnection
    if scheme == "https":
        conn = http.client.HTTPSConnection(
            host, port, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    expired = threading.Event()

    def watchdog() -> None:
        # Closing the socket wakes a recv() blocked on a server that drips bytes.
        expired.set()
        sock = conn.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    timer = threading.Timer(timeout, watchdog)
    timer.daemon = True
    timer.start()
    try:
        conn.request("POST", path, body=body, headers=headers)
        resp = conn.getresponse()
        if 300 <= resp.status < 400:
            where = urllib.parse.urlsplit(resp.getheader("Location") or "").hostname or "?"
            raise ChatError(
                f"chat endpoint {url} answered a redirect (HTTP {resp.status} to {where});"
                " redirects are not followed, set the final URL in " + ENV_URL
            )
        if resp.status != 200:
            raise ChatError(f"chat endpoint {url} answered HTTP {resp.status}")
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_RESPONSE:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            if conn.sock is not None:
                conn.sock.settimeout(left)
            chunk = resp.read1(65536) if hasattr(resp, "read1") else resp.read(65536)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        raw = b"".join(chunks)[:MAX_RESPONSE]
    except ChatError:
        raise
    except TimeoutError as exc:
        raise ChatError(f"chat endpoint {url} did not answer within {timeout:g} s") from exc
    except (OSError, http.client.HTTPException, ValueError) as exc:
        if expired.is_set():
            raise ChatError(f"chat endpoint {url} did not answer within {timeout:g} s") from exc
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise ChatError(f"chat endpoint {url} unreachable ({reason})") from exc
    finally:
        timer.cancel()
        conn.close()
    if expired.is_set():
        raise ChatError(f"chat endpoint {url} did not answer within {timeout:g} s")
    try:
        answer = json.loads(raw)["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise ChatError(f"chat endpoint {url} answered without choices[0].message") from exc
    if not isinstance(answer, str) or not answer.strip():
        raise ChatError(f"chat endpoint {url} answered an empty message")
    return answer.strip()[:MAX_ANSWER]


def chat_guide(
    scalp_type: str, lang: str = "ko", symptoms: str = "", config: ChatConfig | None = None
) -> CareGuide:
    """A care guide written by the chat model; the curated guide's structure is kept beside it.

    Raises:
        ChatError: not configured, unreachable, timed out, HTTP error or malformed answer.
    """
    check_lang(lang)
    cfg = config or config_from_env()
    base = guide(scalp_type, lang)
    messages = [
        {"role": "system", "content": _SYSTEM[lang]},
        {"role": "user", "content": _prompt(scalp_type, lang, symptoms or "-")},
    ]
    log.info("asking %s (%s) for the %s guide", cfg.url, cfg.model, base.type)
    text = ask(cfg, messages)
    return CareGuide(
        type=base.type,
        lang=lang,
        title=base.title,
        causes=base.causes,
        characteristics=base.characteristics,
        steps=base.steps,
        source="chat",
        text=text,
    )
