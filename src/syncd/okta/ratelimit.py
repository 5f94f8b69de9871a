"""Pacing for Okta's rate limits, so syncd never starves the org's other integrations.

Okta limits each endpoint family per minute, per org, and every client of the org shares the
bucket. Each response says where the bucket stands (``X-Rate-Limit-Limit``, ``-Remaining``,
``-Reset``). The :class:`RateLimiter` tracks one :class:`Bucket` per family and lets a request go
only while both hold:

* syncd has used less than ``share`` of the bucket in this window, and
* the bucket keeps at least the other ``1 - share`` of its limit for everyone else.

Otherwise the request waits for the window's reset (plus jitter). The reset is an epoch second
on Okta's clock; it is read against the response's ``Date`` header, so a skewed local clock does
not matter. While a family's limit is still unknown, one request at a time probes it.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

import anyio
import httpx

from syncd.clock import Clock

FAMILIES = ("users", "groups", "apps", "logs", "oauth", "other")


def family_of(path: str) -> str:
    """The rate-limit family of an API path (``/api/v1/groups/x/users`` is ``groups``)."""
    if path.startswith("/oauth2/"):
        return "oauth"
    if path.startswith("/api/v1/meta/schemas/apps"):
        return "apps"
    for family in ("users", "groups", "apps", "logs"):
        prefix = f"/api/v1/{family}"
        if path == prefix or path.startswith(prefix + "/"):
            return family
    return "other"


def _header_min(headers: httpx.Headers, name: str) -> int | None:
    """The smallest integer value of a header that may be repeated or comma-joined."""
    values: list[int] = []
    for raw in headers.get_list(name, split_commas=True):
        try:
            values.append(int(raw.strip()))
        except ValueError:
            continue
    return min(values) if values else None


def seconds_until_reset(headers: httpx.Headers) -> float | None:
    """Seconds from the response until the bucket resets, on the server's own clock.

    ``X-Rate-Limit-Reset - Date``; ``None`` when either header is missing or unreadable.
    """
    reset = _header_min(headers, "x-rate-limit-reset")
    date = headers.get("date")
    if reset is None or not date:
        return None
    try:
        server_now = parsedate_to_datetime(date).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, reset - server_now)


@dataclass
class Bucket:
    """What syncd knows of one family's bucket in the current window."""

    family: str
    limit: int | None = None
    remaining: int | None = None
    reset_at: float | None = None  # local clock time of the window's end
    used: int = 0  # requests syncd started in this window
    in_flight: int = 0
    probe: anyio.Event | None = None

    def allowance(self, share: float) -> int:
        assert self.limit is not None
        return max(1, math.floor(self.limit * share))


@dataclass
class RateLimiter:
    """Decides when the next request of a family may go. One per Okta client."""

    share: float
    clock: Clock
    rng: random.Random = field(default_factory=random.Random)
    on_wait: Callable[[str, float, Bucket], None] | None = None
    buckets: dict[str, Bucket] = field(default_factory=dict)

    def bucket(self, family: str) -> Bucket:
        if family not in self.buckets:
            self.buckets[family] = Bucket(family)
        return self.buckets[family]

    def jitter(self) -> float:
        return self.rng.uniform(0.0, 1.0)

    async def acquire(self, family: str) -> None:
        """Wait until a request of ``family`` may go, and count it."""
        bucket = self.bucket(family)
        while True:
            now = self.clock.time()
            if bucket.reset_at is not None and now >= bucket.reset_at:
                bucket.used = 0
                bucket.remaining = bucket.limit
                bucket.reset_at = None
            if bucket.limit is None:
                if bucket.probe is None:
                    bucket.probe = anyio.Event()
                    bucket.used += 1
                    bucket.in_flight += 1
                    return
                await bucket.probe.wait()
                continue
            allowance = bucket.allowance(self.share)
            reserve = bucket.limit - allowance
            remaining = bucket.remaining if bucket.remaining is not None else bucket.limit
            if bucket.used < allowance and remaining > reserve:
                bucket.used += 1
                bucket.in_flight += 1
                bucket.remaining = remaining - 1
                return
            if bucket.reset_at is None:
                if bucket.in_flight:
                    # A response in flight will tell us when the window resets.
                    await self.clock.sleep(0.05)
                    continue
                # The server gave a limit but no reset: assume Okta's one-minute window.
                bucket.reset_at = now + 60.0
            wait = max(0.0, bucket.reset_at - now) + self.jitter()
            if self.on_wait is not None:
                self.on_wait(family, wait, bucket)
            await self.clock.sleep(wait)

    def release(self, family: str, response: httpx.Response | None, received_at: float) -> None:
        """Record a finished request (``response`` is None when it failed without one)."""
        bucket = self.bucket(family)
        bucket.in_flight = max(0, bucket.in_flight - 1)
        if response is not None:
            self._update(bucket, response.headers, received_at)
        if bucket.probe is not None:
            # Wake the requests that waited for the probe; if the limit is still unknown,
            # one of them probes next.
            probe, bucket.probe = bucket.probe, None
            probe.set()

    def _update(self, bucket: Bucket, headers: httpx.Headers, received_at: float) -> None:
        limit = _header_min(headers, "x-rate-limit-limit")
        remaining = _header_min(headers, "x-rate-limit-remaining")
        until_reset = seconds_until_reset(headers)
        if not limit:  # absent, or 0 on a concurrency 429: says nothing about the bucket
            return
        bucket.limit = limit
        if remaining is not None:
            known = bucket.remaining if bucket.remaining is not None else remaining
            bucket.remaining = min(known, remaining)
        if until_reset is not None:
            reset_at = received_at + until_reset
            if bucket.reset_at is None or reset_at > bucket.reset_at + 0.5:
                if bucket.reset_at is not None and remaining is not None:
                    # A new window began on Okta's side: trust its figure.
                    bucket.remaining = remaining
                bucket.reset_at = reset_at

    def wait_after_429(self, response: httpx.Response) -> float:
        """How long to wait after a 429: until the reset, plus jitter (1 s if unknown)."""
        until = seconds_until_reset(response.headers)
        return (until if until is not None else 1.0) + self.jitter()

    def snapshot(self) -> dict[str, int | None]:
        """``{family: remaining}``, for metrics."""
        return {name: b.remaining for name, b in self.buckets.items()}
