"""Route guards: which device kinds and which roles may call a handler.

Every handler is wrapped by :func:`guard`; a handler without one cannot be registered (see
``relay.routes``), so no endpoint is open by accident. The device token travels in
``X-Relay-Device``; the session token in ``Authorization: Bearer``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from functools import wraps

from aiohttp import web

from relay.server.context import CONTEXT
from relay.server.errors import Forbidden, SessionRequired
from relay.server.principal import Principal
from relay.server.services import sessions
from relay.wire import DEVICE_HEADER

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PRINCIPAL = web.RequestKey("principal", Principal)


@dataclass(frozen=True)
class Access:
    """What a route's guard lets through, kept on the handler (``__relay_access__``) so that
    ``/openapi.json`` is written from the guard itself. ``None`` means any (kind or role)."""

    public: bool = False
    devices: frozenset[str] | None = None
    roles: frozenset[str] | None = None
    session: bool = True


def guard(
    *, devices: Collection[str] | None = None, roles: Collection[str] | None = None, session: bool = True
) -> Callable[[Handler], Handler]:
    """Require an approved device (of ``devices`` kinds) and, if ``session``, a person in ``roles``."""

    def wrap(handler: Handler) -> Handler:
        @wraps(handler)
        async def guarded(request: web.Request) -> web.StreamResponse:
            ctx = request.app[CONTEXT]
            scheme, _, token = _only(request, "Authorization").partition(" ")
            bearer = token if session and scheme.lower() == "bearer" and token else None
            # Device and session read together, as they are now (one trip to the database).
            shown = await sessions.presented(ctx, _only(request, DEVICE_HEADER) or None, bearer)
            device = await sessions.authenticate_device(ctx, shown)
            if devices is not None and device["kind"] not in devices:
                raise Forbidden()
            principal = Principal(device=device)
            if session:
                if bearer is None:
                    raise SessionRequired()
                principal = await sessions.resume_session(ctx, device, shown)
                if roles is not None and principal.role not in roles:
                    raise Forbidden()
            request[PRINCIPAL] = principal
            return await handler(request)

        guarded.__relay_guarded__ = True  # type: ignore[attr-defined]
        guarded.__relay_access__ = Access(  # type: ignore[attr-defined]
            devices=frozenset(devices) if devices is not None else None,
            roles=frozenset(roles) if roles is not None and session else None, session=session)
        return guarded

    return wrap


def _only(request: web.Request, name: str) -> str:
    """A credential header's value if the request carries it once; "" if it is absent or repeated.
    Two device tokens or two bearers are no credential at all: the relay would read the first, a
    proxy or a log in front of it perhaps the last, and they must not disagree on who is asking."""
    values = request.headers.getall(name, ())
    return values[0] if len(values) == 1 else ""


def public(handler: Handler) -> Handler:
    """Mark a handler that needs no device (health check, first enrollment)."""
    handler.__relay_guarded__ = True  # type: ignore[attr-defined]
    handler.__relay_access__ = Access(public=True, session=False)  # type: ignore[attr-defined]
    return handler


def principal_of(request: web.Request) -> Principal:
    return request[PRINCIPAL]
