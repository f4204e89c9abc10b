"""Security headers on every response, as a plain ASGI middleware.

The pages carry their stylesheet inline (so a saved result page is one self-contained file) and
the Content-Security-Policy allows exactly that stylesheet by its hash; scripts only from this
origin, never inline. `/docs` (Swagger UI from its CDN) gets a policy of its own.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

DOCS_CDN = "https://cdn.jsdelivr.net"


def sha256_source(text: str) -> str:
    """The CSP source expression for an inline element with exactly this text."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


def page_policy(style_hash: str) -> str:
    return "; ".join(
        (
            "default-src 'none'",
            "script-src 'self'",
            f"style-src 'self' {style_hash}",
            # product images live on the retailer's CDN; previews of chosen photos are blob: URLs
            "img-src 'self' data: blob: https:",
            "connect-src 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
        )
    )


def docs_policy() -> str:
    return "; ".join(
        (
            "default-src 'none'",
            f"script-src 'self' {DOCS_CDN}",
            f"style-src 'self' {DOCS_CDN} 'unsafe-inline'",  # Swagger UI sets style attributes
            "img-src 'self' data: https:",
            "connect-src 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
        )
    )


class SecurityHeaders:
    """Adds CSP, nosniff, referrer, framing and permissions headers to every HTTP response."""

    def __init__(self, app: Any, style_hash: str) -> None:
        self.app = app
        common = [
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
            (b"x-frame-options", b"DENY"),
            (b"cross-origin-opener-policy", b"same-origin"),
            (b"permissions-policy", b"camera=(self), microphone=(), geolocation=()"),
        ]
        self.page = [*common, (b"content-security-policy", page_policy(style_hash).encode())]
        self.docs = [*common, (b"content-security-policy", docs_policy().encode())]

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = self.docs if scope.get("path") == "/docs" else self.page

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                headers = list(message.get("headers", []))
                headers += [(k, v) for k, v in extra if k not in names]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
