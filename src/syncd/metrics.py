"""Prometheus metrics and a health check for ``syncd run`` (``[metrics] listen``).

Served from a small thread with the standard library's WSGI server: ``/metrics`` in the
Prometheus text format, and ``/healthz``, 200 while the last completed cycle (``success``,
``partial`` or ``guarded``: it read Okta and applied what it could) is younger than three
intervals, 503 otherwise, so a monitor notices a sync that silently stopped working.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    disable_created_metrics,
    make_wsgi_app,
)

# The *_created series double every counter and nothing here needs them.
disable_created_metrics()  # type: ignore[no-untyped-call]

# A cycle that completed: it read Okta whole and applied everything, or everything but some
# people who failed or were skipped (partial), or everything a safety guard did not hold back.
COMPLETED = frozenset({"success", "partial", "guarded"})

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class Metrics:
    """The metrics of one daemon; :meth:`observe` after each cycle."""

    def __init__(self, *, expected_interval: float, clock: Callable[[], float] = time.time) -> None:
        self.expected_interval = expected_interval
        self.clock = clock
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.last_success = Gauge(
            "syncd_last_success_timestamp_seconds",
            "When the last completed cycle (success, partial or guarded) finished (Unix time).",
            registry=r,
        )
        self.runs = Counter("syncd_runs", "Sync cycles, by outcome.", ["outcome"], registry=r)
        self.changes = Counter(
            "syncd_changes", "Changes applied downstream, by action.", ["action"], registry=r
        )
        self.okta_requests = Counter(
            "syncd_okta_requests",
            "Requests sent to Okta, by endpoint family.",
            ["endpoint"],
            registry=r,
        )
        self.okta_remaining = Gauge(
            "syncd_okta_rate_limit_remaining",
            "Requests left in each Okta rate-limit bucket, as last seen.",
            ["bucket"],
            registry=r,
        )
        self.scim_requests = Counter(
            "syncd_scim_requests",
            "Requests sent to the SCIM server, by method.",
            ["method"],
            registry=r,
        )
        self.managed_users = Gauge(
            "syncd_managed_users", "People syncd manages downstream.", registry=r
        )
        self.managed_groups = Gauge(
            "syncd_managed_groups", "Pushed groups syncd manages downstream.", registry=r
        )
        self.held = Gauge(
            "syncd_held_changes",
            "Changes a safety guard held back in the last cycle (a person must look).",
            registry=r,
        )
        self._last_success: float | None = None
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def mark_success(self, when: float) -> None:
        self._last_success = when
        self.last_success.set(when)

    def observe(
        self,
        *,
        outcome: str,
        counts: dict[str, Any],
        okta_requests: dict[str, int],
        scim_requests: dict[str, int],
        rate_limit_remaining: dict[str, int],
        managed: dict[str, int],
    ) -> None:
        self.runs.labels(outcome).inc()
        if outcome in COMPLETED:
            self.mark_success(self.clock())
        for action in (
            "created",
            "updated",
            "deactivated",
            "reactivated",
            "groups_created",
            "groups_renamed",
            "groups_deleted",
            "members_added",
            "members_removed",
        ):
            if counts.get(action):
                self.changes.labels(action).inc(counts[action])
        for family, n in okta_requests.items():
            self.okta_requests.labels(family).inc(n)
        for bucket, remaining in rate_limit_remaining.items():
            self.okta_remaining.labels(bucket).set(remaining)
        for method, n in scim_requests.items():
            self.scim_requests.labels(method).inc(n)
        self.held.set(counts.get("held", 0))
        if managed:
            self.managed_users.set(managed.get("users", 0))
            self.managed_groups.set(managed.get("groups", 0))

    def healthy(self) -> tuple[bool, str]:
        if self._last_success is None:
            return False, "no completed sync cycle yet"
        age = self.clock() - self._last_success
        limit = 3 * self.expected_interval
        if age > limit:
            return False, f"last success {age:.0f}s ago (more than 3 intervals, {limit:.0f}s)"
        return True, f"last success {age:.0f}s ago"

    def _app(self) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
        metrics_app = make_wsgi_app(self.registry)

        def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
            if environ.get("PATH_INFO") == "/healthz":
                ok, detail = self.healthy()
                status = "200 OK" if ok else "503 Service Unavailable"
                start_response(status, [("Content-Type", "text/plain; charset=utf-8")])
                return [f"{'ok' if ok else 'unhealthy'}: {detail}\n".encode()]
            if environ.get("PATH_INFO") in ("/metrics", "/"):
                return metrics_app(environ, start_response)  # type: ignore[no-any-return]
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found: try /metrics or /healthz\n"]

        return app

    def start(self, host: str, port: int) -> None:
        """Serve ``/metrics`` and ``/healthz`` from a daemon thread."""
        self._server = make_server(host, port, self._app(), handler_class=_QuietHandler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="syncd-metrics", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
