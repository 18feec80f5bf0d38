"""What keeps other programs and other web pages out of a local interface.

* **Host**: only the loopback names with our port are served (a DNS-rebinding page arrives with
  its own host name).
* **Binding**: the one-time link printed at start is exchanged once for a random cookie
  (HttpOnly, SameSite=Strict); only its SHA-256 is kept. A new exchange ends the old binding.
* **CSRF**: every request that changes something carries the binding's CSRF token, in a form
  field or the ``X-CSRF-Token`` header, compared in constant time.
* **Headers**: a strict Content-Security-Policy (no inline script, no framing, no other
  origin), no caching anywhere, no referrer.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

COOKIE = "relay_ui"
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"
START_PATH = "/start/"
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; media-src 'self' blob:; "
       "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
}


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode()).digest()


@dataclass
class Binding:
    """The one browser this interface serves, and the one-time link that binds it."""

    start_token: str | None = field(default_factory=lambda: secrets.token_urlsafe(32))
    cookie_hash: bytes | None = None
    csrf: str = ""

    def exchange(self, offered: str) -> str | None:
        """The start token for a new cookie (once); None if it is wrong or already used."""
        if self.start_token is None or not hmac.compare_digest(offered.encode(), self.start_token.encode()):
            return None
        self.start_token = None
        cookie = secrets.token_urlsafe(32)
        self.cookie_hash = _digest(cookie)
        self.csrf = secrets.token_urlsafe(32)
        return cookie

    def bound(self, cookie: str | None) -> bool:
        return bool(cookie) and self.cookie_hash is not None and hmac.compare_digest(_digest(cookie or ""),
                                                                                      self.cookie_hash)

    def csrf_ok(self, offered: str | None) -> bool:
        return bool(offered) and bool(self.csrf) and hmac.compare_digest((offered or "").encode(), self.csrf.encode())


class Refused(Exception):
    """A request the guard refuses: status and the message key for the page."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def allowed_host(host: str | None, port: int) -> bool:
    return host in {f"{name}:{port}" for name in LOOPBACK_NAMES}


async def csrf_token_of(request: web.Request, binding: Binding) -> str | None:
    header = request.headers.get(CSRF_HEADER)
    if header is not None:
        return header
    if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        value = form.get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None
