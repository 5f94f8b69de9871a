"""``syncd run``: the long-running, scheduled service.

One cycle at start, then one every ``sync.interval`` (or on ``sync.cron``), with optional
``sync.jitter``, scheduled by APScheduler on the running event loop; never two cycles at once
(``max_instances=1``, missed runs coalesced). Each cycle takes the run lock shared with
``syncd run --once``; a cycle that finds it held logs ``sync.skipped`` and waits for the next.

Signals: SIGTERM/SIGINT stop scheduling, let the write in flight finish and be recorded, and exit
0 within ``sync.shutdown_timeout``. SIGHUP reloads and validates the configuration; an invalid
one is logged (``config.reload_failed``) and the old one kept.

With ``NOTIFY_SOCKET`` set (systemd ``Type=notify``) it speaks the notify protocol
(:mod:`syncd.notify`); with ``[metrics] listen`` it serves Prometheus metrics and ``/healthz``
(:mod:`syncd.metrics`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import signal
from typing import Any

import anyio
from anyio.abc import TaskStatus
from apscheduler.events import EVENT_JOB_MAX_INSTANCES, JobEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from syncd import app, config
from syncd.config import Settings, load_credentials, load_settings
from syncd.directory import first_error
from syncd.engine import Engine, ExitCode
from syncd.errors import ConfigError, LockHeldError
from syncd.log import get_logger
from syncd.metrics import Metrics
from syncd.notify import Notifier, watchdog_interval
from syncd.store import Store

log = get_logger(__name__)


def make_trigger(settings: Settings) -> BaseTrigger:
    sync = settings.sync
    jitter = int(sync.jitter) if sync.jitter else None
    if sync.cron:
        trigger = CronTrigger.from_crontab(sync.cron, timezone=dt.UTC)
        trigger.jitter = jitter
        return trigger
    return IntervalTrigger(seconds=sync.every, jitter=jitter, timezone=dt.UTC)


def expected_interval(settings: Settings) -> float:
    """Seconds between two cycles (for cron, between its next two fire times)."""
    if not settings.sync.cron:
        return settings.sync.every
    trigger = CronTrigger.from_crontab(settings.sync.cron, timezone=dt.UTC)
    now = dt.datetime.now(dt.UTC)
    first = trigger.get_next_fire_time(None, now)
    second = trigger.get_next_fire_time(first, first) if first else None
    if first is None or second is None:
        return 900.0
    return max(1.0, float((second - first).total_seconds()))


class Daemon:
    """Runs sync cycles on a schedule until stopped."""

    def __init__(self, config_path: str | None) -> None:
        self.config_path = config_path
        self.settings = load_settings(config_path)
        load_credentials(self.settings)  # fail now, not at the first cycle
        self.notifier = Notifier.from_env()
        self.metrics: Metrics | None = None
        self.engine: Engine | None = None
        self.stopping = False
        self.cycles = 0
        self._idle = anyio.Event()
        self._idle.set()
        self._cycle_task: asyncio.Task[Any] | None = None
        self._stop = anyio.Event()
        self._scheduler: AsyncIOScheduler | None = None

    # --- the cycle ------------------------------------------------------------------------

    def _set_engine(self, engine: Engine | None) -> None:
        self.engine = engine
        if engine is not None and self.stopping:
            engine.stop()

    async def cycle(self) -> None:
        """One scheduled cycle (APScheduler runs it as an asyncio task)."""
        if self.stopping:
            return
        self._idle = anyio.Event()
        self._cycle_task = asyncio.current_task()
        try:
            report = await app.run_cycle(self.settings, mode="daemon", on_engine=self._set_engine)
        except LockHeldError as exc:
            log.info("sync.skipped", reason="lock", detail=str(exc))
            return
        except ConfigError as exc:
            log.error("sync.failed", error=f"configuration error: {exc}", exit_code=2)
            self.notifier.status(f"last cycle failed: configuration error: {exc}")
            return
        except Exception as exc:  # a bug: keep the service alive, say so loudly
            log.exception("sync.crashed", error=f"{type(exc).__name__}: {exc}")
            return
        except anyio.get_cancelled_exc_class():
            # Cancelled after sync.shutdown_timeout: the run is recorded as interrupted.
            return
        finally:
            self._cycle_task = None
            self._idle.set()
        self.cycles += 1
        result = report.result
        if self.metrics is not None and result is not None:
            self.metrics.observe(
                outcome=result.outcome,
                counts=result.counts,
                okta_requests=report.okta_requests,
                scim_requests=report.scim_requests,
                rate_limit_remaining=report.rate_limit_remaining,
                managed=report.managed,
            )
        self.notifier.status(self._summary(report.exit_code, result.counts if result else {}))

    def _summary(self, code: ExitCode, counts: dict[str, Any]) -> str:
        when = dt.datetime.now(dt.UTC).strftime("%H:%M:%SZ")
        parts = ", ".join(
            f"{counts.get(k, 0)} {k}"
            for k in ("created", "updated", "deactivated", "reactivated", "failed")
        )
        outcome = {0: "success", 1: "partial", 3: "guarded (changes held: see guard.tripped)"}.get(
            int(code), f"failed (exit {int(code)})"
        )
        return f"last cycle {outcome} at {when}: {parts}"

    # --- lifecycle ------------------------------------------------------------------------

    async def run(self) -> int:
        """Serve until SIGTERM/SIGINT; return the exit code."""
        async with await Store.open(self.settings.sync.state_db) as store:  # creates and migrates
            last = await store.last_success()
        if self.settings.metrics.address is not None:
            self.metrics = Metrics(expected_interval=expected_interval(self.settings))
            if last is not None and last.finished_at:
                finished = dt.datetime.fromisoformat(last.finished_at.replace("Z", "+00:00"))
                self.metrics.mark_success(finished.timestamp())
            host, port = self.settings.metrics.address
            self.metrics.start(host, port)
            log.info("metrics.listening", address=f"{host}:{port}")

        try:
            async with anyio.create_task_group() as tg:
                # Signal handlers first: a SIGHUP or SIGTERM from now on is handled, not fatal.
                await tg.start(self._signals)
                scheduler = AsyncIOScheduler(event_loop=asyncio.get_running_loop(), timezone=dt.UTC)
                scheduler.add_listener(self._missed, EVENT_JOB_MAX_INSTANCES)
                scheduler.add_job(
                    self.cycle,
                    make_trigger(self.settings),
                    id="sync",
                    max_instances=1,
                    coalesce=True,
                    misfire_grace_time=None,
                    next_run_time=dt.datetime.now(dt.UTC),
                )
                self._scheduler = scheduler
                scheduler.start()
                log.info(
                    "daemon.started",
                    schedule=self.settings.sync.cron or f"every {self.settings.sync.every:g}s",
                    state_db=str(self.settings.sync.state_db),
                )
                self.notifier.ready("started; first cycle running")
                interval = watchdog_interval()
                if interval is not None and self.notifier.enabled:
                    tg.start_soon(self._watchdog, interval)
                await self._stop.wait()
                tg.cancel_scope.cancel()
            await self._shutdown()
        finally:
            if self.metrics is not None:
                self.metrics.stop()
            self.notifier.close()
        return 0

    def _missed(self, event: JobEvent) -> None:
        log.info("sync.skipped", reason="overlap", detail="the previous cycle is still running")

    async def _watchdog(self, interval: float) -> None:
        while True:
            self.notifier.watchdog()
            await anyio.sleep(interval)

    async def _signals(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
            task_status.started()
            async for signum in signals:
                if signum == signal.SIGHUP:
                    self.reload()
                else:
                    log.info("daemon.stopping", signal=signal.Signals(signum).name)
                    self.stopping = True
                    self._stop.set()
                    return

    def reload(self) -> None:
        """SIGHUP: take a new configuration if it is valid; keep the old one otherwise."""
        try:
            settings = load_settings(self.config_path)
            load_credentials(settings)
        except ConfigError as exc:
            log.error(
                "config.reload_failed", error=str(exc), detail="keeping the running configuration"
            )
            return
        old, self.settings = self.settings, settings
        if self._scheduler is not None and (
            old.sync.interval != settings.sync.interval
            or old.sync.cron != settings.sync.cron
            or old.sync.jitter != settings.sync.jitter
        ):
            self._scheduler.reschedule_job("sync", trigger=make_trigger(settings))
            if self.metrics is not None:
                self.metrics.expected_interval = expected_interval(settings)
        log.info("config.reloaded", path=str(config.config_path(self.config_path)))

    async def _shutdown(self) -> None:
        """Stop scheduling; let the write in flight finish and be recorded; give up after the
        shutdown timeout."""
        self.notifier.stopping()
        if self._scheduler is not None:
            # pause(), not shutdown(): APScheduler's shutdown cancels the running job.
            self._scheduler.pause()
        if self.engine is not None:
            self.engine.stop()
        # Within sync.shutdown_timeout: wait for the write in flight, keep a second to cancel.
        budget = self.settings.sync.shutdown_timeout
        with anyio.move_on_after(max(0.0, budget - 1.0)) as scope:
            await self._idle.wait()
        if scope.cancelled_caught and self._cycle_task is not None:
            log.warning(
                "daemon.shutdown_timeout",
                timeout_s=budget,
                detail="cancelling the cycle; a create it cut short is found again next run",
            )
            self._cycle_task.cancel()
            with anyio.move_on_after(min(1.0, budget)):
                await self._idle.wait()
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
        log.info("daemon.stopped", cycles=self.cycles)


async def run_once(
    settings: Settings, *, allow_deactivations: int | None = None
) -> tuple[app.RunReport, int | None]:
    """``syncd run --once``: one cycle. SIGTERM or SIGINT stops it the clean way: the write in
    flight finishes and is recorded, the run is recorded as interrupted. Returns the report and
    the signal that stopped it, if any."""
    current: list[Engine | None] = [None]
    caught: list[int] = []

    def on_engine(engine: Engine | None) -> None:
        current[0] = engine
        if engine is not None and caught:
            engine.stop()

    async def watch(*, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            task_status.started()
            async for signum in signals:
                caught.append(signum)
                log.info("sync.stopping", signal=signal.Signals(signum).name)
                if current[0] is not None:
                    current[0].stop()
                return  # a second signal acts at once

    try:
        async with anyio.create_task_group() as tg:
            await tg.start(watch)
            report = await app.run_cycle(
                settings, mode="once", on_engine=on_engine, allow_deactivations=allow_deactivations
            )
            tg.cancel_scope.cancel()
    except BaseExceptionGroup as group:  # LockHeldError, ConfigError ... as themselves
        raise first_error(group) from None
    return report, (caught[0] if caught else None)
