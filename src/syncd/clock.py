"""Time, behind a small interface, so that tests and benchmarks control it.

Everything in syncd that reads the time or waits (rate-limit pacing, retries, backoff) and the
Okta simulator (rate-limit windows, ``Date`` headers) takes a :class:`Clock`. Production code
uses :class:`SystemClock`; tests share one :class:`FakeClock` between syncd and the simulator, so
that "wait for the rate-limit reset" takes no real time and is exactly reproducible.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol

import anyio
import anyio.lowlevel


class Clock(Protocol):
    """Wall-clock time in epoch seconds, and a way to wait."""

    def time(self) -> float:
        """Seconds since the epoch (UTC)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (a non-positive value returns at once, after a checkpoint)."""
        ...


class SystemClock:
    """The real clock."""

    def time(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(max(0.0, seconds))

    def __repr__(self) -> str:
        return "SystemClock()"


class FakeClock:
    """A clock that only moves when someone sleeps on it, or when a test advances it.

    ``sleep(s)`` moves the time forward to ``now + s`` at once (never backwards, so concurrent
    sleepers that wait for the same deadline all wake at that deadline). It is thread-safe: the
    simulator may read it from its server thread while syncd sleeps on it in another.
    """

    def __init__(self, start: float = 1_780_000_000.0) -> None:
        self._now = float(start)
        self._lock = threading.Lock()
        self.slept = 0.0
        self.sleeps: list[float] = []

    def time(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += max(0.0, seconds)

    async def sleep(self, seconds: float) -> None:
        seconds = max(0.0, seconds)
        with self._lock:
            target = self._now + seconds
            if target > self._now:
                self._now = target
            self.slept += seconds
            self.sleeps.append(seconds)
        await anyio.lowlevel.checkpoint()

    def __repr__(self) -> str:
        return f"FakeClock(now={self.time():.3f})"
