"""Optional chat-model care guide through an OpenAI-compatible `/v1/chat/completions` endpoint.

Off by default. Configured only by environment variables: `DEEPROOT_CHAT_BASE_URL` (e.g.
`http://127.0.0.1:8000/v1`), `DEEPROOT_CHAT_MODEL`, optional `DEEPROOT_CHAT_API_KEY` and
`DEEPROOT_CHAT_TIMEOUT` (seconds, default 20). stdlib urllib only. Any failure raises `ChatError`;
the caller falls back to the curated guide with a warning.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.error
import urllib.request
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
    """Read the chat settings; raises ChatError naming the missing variable."""
    e = os.environ if env is None else env
    url = e.get(ENV_URL, "").strip()
    model = e.get(ENV_MODEL, "").strip()
    if not url:
        raise ChatError(f"the chat guide needs {ENV_URL} (an OpenAI-compatible endpoint)")
    if not url.startswith(("http://", "https://")):
        raise ChatError(f"{ENV_URL} must be an http(s) URL, not {url!r}")
    if not model:
        raise ChatError(f"the chat guide needs {ENV_MODEL} (the model name)")
    try:
        timeout = float(e.get(ENV_TIMEOUT, "20"))
    except ValueError as exc:
        raise ChatError(f"{ENV_TIMEOUT} must be a number of seconds") from exc
    return ChatConfig(url, model, e.get(ENV_KEY) or None, timeout)


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
    """POST one chat-completions request and return the first choice's text."""
    body = json.dumps(
        {"model": config.model, "messages": messages, "temperature": 0.3}, ensure_ascii=False
    ).encode("utf-8")
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if config.api_key:
        headers["Authorization"] = f"Bearer {config.api_key}"
    req = urllib.request.Request(config.url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=config.timeout) as resp:  # noqa: S310
            raw = resp.read(1_000_000)
    except urllib.error.HTTPError as exc:
        raise ChatError(f"chat endpoint {config.url} answered HTTP {exc.code}") from exc
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ChatError(f"chat endpoint {config.url} unreachable ({reason})") from exc
    try:
        answer = json.loads(raw)["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise ChatError(f"chat endpoint {config.url} answered without choices[0].message") from exc
    if not isinstance(answer, str) or not answer.strip():
        raise ChatError(f"chat endpoint {config.url} answered an empty message")
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
