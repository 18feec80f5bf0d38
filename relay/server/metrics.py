"""Prometheus metrics at ``/metrics``: how the relay is doing, never who or what.

Labels are route templates (``/v1/items/{item_id}``), status classes (``2xx``), problem types,
item states and retention rules: no identifier of a person, a case or an item ever becomes a
label (``tests/test_metrics.py`` scans the exposition for them). Counters live in a registry of
the app's own (not the process-global one), so two relays in one process never mix.

Counts that the database already holds (items by state, the review queue, purges by rule) are
read when Prometheus scrapes, in one read, so they survive restarts and never drift.
"""

from __future__ import annotations

import hmac
import shutil
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from storage import items as item_rows
from storage import retention as retention_rows
from storage.clock import parse

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.latency = Histogram("relay_request_seconds", "Time to answer a request, by route template and status class",
                                 ["route", "status"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.problems = Counter("relay_problems", "Problem answers, by type", ["type"], registry=self.registry)
        self.failed_sign_ins = Counter("relay_failed_sign_ins", "Sign-ins refused", registry=self.registry)
        self.rate_limited = Counter("relay_rate_limit_refusals", "Requests refused by a rate limit or a quota",
                                    ["type"], registry=self.registry)
        self.upload_bytes = Counter("relay_upload_bytes", "Bytes of ciphertext received (uploads and items)",
                                    registry=self.registry)
        self.open_connections = Gauge("relay_open_connections", "Client connections open now",
                                      registry=self.registry)
        self.connections_refused = Counter("relay_connections_refused",
                                           "Connections answered too-busy and closed (max_connections open)",
                                           registry=self.registry)
        self.snapshot: dict[str, Any] = {}

    def problem(self, problem_type: str) -> None:
        self.problems.labels(problem_type).inc()
        if problem_type == "login-refused":
            self.failed_sign_ins.inc()
        elif problem_type in ("rate-limited", "quota-exceeded"):
            self.rate_limited.labels(problem_type).inc()


class _StoreCollector:
    """Gauges read from the database at scrape time (set by :func:`refresh` just before)."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Any:
        snap = self.metrics.snapshot
        states = GaugeMetricFamily("relay_items", "Items, by state", labels=["state"])
        for state, n in sorted(snap.get("items_by_state", {}).items()):
            states.add_metric([state], n)
        yield states
        yield GaugeMetricFamily("relay_review_queue_depth", "Items waiting for a mediator (pending or held)",
                                value=snap.get("queue_depth", 0))
        yield GaugeMetricFamily("relay_review_queue_oldest_seconds", "Age of the oldest item waiting for review",
                                value=snap.get("queue_oldest_seconds", 0))
        purged = CounterMetricFamily("relay_purged_items", "Items purged by the retention schedule, by rule",
                                     labels=["rule"])
        for rule, n in sorted(snap.get("purged_by_rule", {}).items()):
            purged.add_metric([rule], n)
        yield purged
        yield GaugeMetricFamily("relay_disk_free_bytes", "Free space where the relay keeps its data",
                                value=snap.get("disk_free_bytes", 0))
        yield CounterMetricFamily("relay_db_commits", "Write transactions committed (one fsync each)",
                                  value=snap.get("db_commits", 0))
        yield CounterMetricFamily("relay_db_writes", "Writes committed (group commit: several share a transaction)",
                                  value=snap.get("db_writes", 0))


METRICS = web.AppKey("metrics", Metrics)


def install(app: web.Application) -> Metrics:
    metrics = Metrics()
    metrics.registry.register(_StoreCollector(metrics))  # type: ignore[arg-type]
    app[METRICS] = metrics
    return metrics


def route_template(request: web.Request) -> str:
    info = request.match_info
    resource = info.route.resource if info is not None and info.route is not None else None
    return resource.canonical if resource is not None else "unrouted"


@web.middleware
async def timing(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                 ) -> web.StreamResponse:
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        metrics = request.app.get(METRICS)
        if metrics is not None:
            metrics.latency.labels(route_template(request), f"{status // 100}xx").observe(
                time.perf_counter() - started)


async def refresh(app: web.Application, ctx: Any) -> None:
    """What the database says now, for the gauges of this scrape."""
    status = await retention_rows.status(ctx.db)
    depth, oldest_at = await item_rows.review_backlog(ctx.db)
    oldest = max(0.0, (ctx.clock.now() - parse(oldest_at)).total_seconds()) if oldest_at else 0.0
    app[METRICS].snapshot = {
        "items_by_state": status["items_by_state"], "purged_by_rule": status["purged_by_rule"],
        "queue_depth": depth, "queue_oldest_seconds": oldest,
        "disk_free_bytes": shutil.disk_usage(ctx.settings.data_dir).free,
        "db_commits": ctx.db.commits, "db_writes": ctx.db.committed_writes}


def exposition(app: web.Application) -> tuple[bytes, str]:
    return generate_latest(app[METRICS].registry), CONTENT_TYPE_LATEST


def may_read(request: web.Request, token: str | None) -> bool:
    """With a token set, only its bearer; without one, only a direct peer on loopback (a request a
    proxy forwarded names its client in a header, and is refused)."""
    if token:
        scheme, _, offered = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(offered.encode(), token.encode())
    if any(h in request.headers for h in ("Forwarded", "X-Forwarded-For", "X-Real-IP")):
        return False
    remote = request.remote or ""
    return remote == "::1" or remote.startswith("127.")
