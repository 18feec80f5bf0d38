"""Prometheus metrics at ``GET /metrics`` (prometheus-client), one registry per application.

Labels are route templates (``/v1/items/{item_id}``, never a path as sent), methods, status
classes (``2xx``), item states and retention rules: never an identifier of a person, a case, an
item or a device. Who may read them: nobody, until the operator sets ``metrics_token``
(``RELAY_METRICS_TOKEN``, or a file ``relay_metrics_token`` in ``RELAY_SECRETS_DIR``); then a
scraper that sends ``Authorization: Bearer <token>``. Anyone else gets 404, as if the route did
not exist: a reverse proxy that forwards everything cannot expose them by accident.
"""

from __future__ import annotations

import secrets
import shutil
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from relay.server.context import CONTEXT, SETTINGS
from relay.server.problems import route_of
from storage import metrics as counts_of

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
SIGN_IN = ("POST", "/v1/auth/session")
UPLOADS = {("PATCH", "/v1/uploads/{upload_id}"), ("POST", "/v1/items")}


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.latency = Histogram("relay_http_request_duration_seconds", "Time to answer a request, by route template",
                                 ("route", "method", "status_class"), buckets=LATENCY_BUCKETS, registry=r)
        self.upload_bytes = Counter("relay_upload_bytes", "Content bytes accepted (upload chunks and whole letters)",
                                    registry=r)
        self.failed_sign_ins = Counter("relay_failed_sign_ins", "Sign-ins refused", registry=r)
        self.rate_limited = Counter("relay_rate_limit_refusals", "Requests refused as too many (429)", registry=r)
        self.items = Gauge("relay_items", "Items stored, by state", ("state",), registry=r)
        self.queue = Gauge("relay_review_queue_depth", "Items waiting for a mediator's review", registry=r)
        self.oldest = Gauge("relay_review_queue_oldest_age_seconds", "Age of the oldest item waiting for review",
                            registry=r)
        self.purged = Gauge("relay_purged_items", "Items purged since the relay's first start, by rule", ("rule",),
                            registry=r)
        self.disk_free = Gauge("relay_disk_free_bytes", "Free space where the data directory is", registry=r)

    def observe(self, request: web.BaseRequest, status: int, seconds: float, response: web.StreamResponse | None
                ) -> None:
        route = route_of(request)
        self.latency.labels(route, request.method, f"{status // 100}xx").observe(seconds)
        if status == 429:
            self.rate_limited.inc()
        key = (request.method, route)
        if key == SIGN_IN and status in (401, 403):
            self.failed_sign_ins.inc()
        if key in UPLOADS and 200 <= status < 300 and response is not None:
            if key[0] == "PATCH":
                try:
                    added = int(response.headers["Upload-Offset"]) - int(request.headers["Upload-Offset"])
                except (KeyError, ValueError):
                    added = 0
            else:  # a letter's multipart body, as received (chunked bodies announce no length)
                added = request.content.total_bytes
            self.upload_bytes.inc(max(added, 0))


METRICS = web.AppKey("metrics", Metrics)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def refresh(request: web.Request) -> bytes:
    """The exposition, with the counts read from the database now. The caller has checked the token."""
    ctx, metrics = request.app[CONTEXT], request.app[METRICS]
    found = await counts_of.counts(ctx.db)
    metrics.items.clear()
    for state, n in found.items_by_state.items():
        metrics.items.labels(state).set(n)
    metrics.queue.set(found.review_queue)
    oldest = 0.0
    if found.oldest_waiting_since:
        since = datetime.fromisoformat(found.oldest_waiting_since.replace("Z", "+00:00"))
        oldest = max((ctx.clock.now() - since.astimezone(UTC)).total_seconds(), 0.0)
    metrics.oldest.set(oldest)
    for rule, n in found.purged_by_rule.items():
        metrics.purged.labels(rule).set(n)
    metrics.disk_free.set(shutil.disk_usage(ctx.settings.data_dir).free)
    return bytes(generate_latest(metrics.registry))


def allowed(request: web.Request) -> bool:
    """The metrics token, compared in constant time; False while none is set."""
    token = request.app[SETTINGS].metrics_token
    if token is None:
        return False
    given = request.headers.get("Authorization", "")
    return secrets.compare_digest(given.encode(), f"Bearer {token.get_secret_value()}".encode())


@web.middleware
async def measure(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Outermost: it sees the status the client gets (problems included)."""
    began = time.perf_counter()
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        request.app[METRICS].observe(request, exc.status, time.perf_counter() - began, exc)
        raise
    except BaseException:
        request.app[METRICS].observe(request, 500, time.perf_counter() - began, None)
        raise
    request.app[METRICS].observe(request, response.status, time.perf_counter() - began, response)
    return response
