"""What keeps other programs and other web pages out of a local interface.

* **Host**: each start serves one random name under ``.localhost`` (browsers send every
  ``*.localhost`` name to loopback themselves), with its port, and nothing else: a DNS-rebinding
  page arrives with its own host name. The name also keeps the cookie ours: browsers send a
  cookie to every port of its host, so on plain ``127.0.0.1`` any other local listener would get
  it; nobody else is served under this random name.
* **Same origin only**: a request that a browser marks as coming from another site or origin
  (``Sec-Fetch-Site``) is refused, so no other page can make the bound browser act.
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
ALLOWED_FETCH_SITES = ("same-origin", "none")  # "none": typed, or opened from the printed link

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
    host_name: str = field(default_factory=lambda: f"relay-{secrets.token_hex(8)}.localhost")
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


def allowed_host(host: str | None, binding: Binding, port: int) -> bool:
    return host == f"{binding.host_name}:{port}"


def same_origin(fetch_site: str | None) -> bool:
    """False for a request the browser says another site or origin caused (no header: not a browser)."""
    return fetch_site is None or fetch_site in ALLOWED_FETCH_SITES


async def csrf_token_of(request: web.Request, binding: Binding) -> str | None:
    header = request.headers.get(CSRF_HEADER)
    if header is not None:
        return header
    if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        value = form.get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None
