"""The sync cycle: read Okta -> resolve roles -> plan -> apply over SCIM -> record.

:class:`Engine` knows its parts only through :mod:`syncd.interfaces` and the checkpoint
:class:`~syncd.store.Store`; :mod:`syncd.app` builds the real parts from the configuration.
:meth:`Engine.compute_plan` is the read-only half (``syncd plan``); :meth:`Engine.run_cycle`
applies the plan and records the run.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from syncd.apply import Applier, ApplyResult
from syncd.config import Settings
from syncd.directory import read_directory
from syncd.errors import (
    AuthError,
    OktaNotFoundError,
    RemoteError,
)
from syncd.interfaces import OktaSource, ScimTarget
from syncd.log import bind_run, get_logger
from syncd.plan import Plan, make_plan
from syncd.roles import DesiredState, RoleCatalog, resolve
from syncd.store import Store

log = get_logger(__name__)


class ExitCode(IntEnum):
    """The exit codes of ``syncd run --once`` (and the other commands); see the README."""

    OK = 0  # everything applied
    PARTIAL = 1  # finished, but some people failed or were skipped
    CONFIG = 2  # configuration or usage error
    GUARD = 3  # a safety guard held changes back
    REMOTE = 4  # Okta or the SCIM server unreachable or refusing our credentials
    LOCKED = 5  # another run holds the lock
    INTERNAL = 70  # a bug in syncd


class CycleAborted(Exception):
    """A cycle stopped before applying anything; carries the exit code and the reason."""

    def __init__(self, exit_code: ExitCode, message: str) -> None:
        self.exit_code = exit_code
        super().__init__(message)


@dataclass
class CycleResult:
    """The outcome of one run."""

    run_id: str
    outcome: str  # "success", "partial" or "failed"
    exit_code: ExitCode
    counts: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    plan: Plan | None = None


def _requests(part: object) -> int:
    value = getattr(part, "requests", 0)
    return int(value) if isinstance(value, int) else 0


class Engine:
    """One Okta app synced to one SCIM server, with one checkpoint database."""

    def __init__(
        self,
        settings: Settings,
        *,
        source: OktaSource,
        target: ScimTarget | None,
        store: Store,
    ) -> None:
        self.settings = settings
        self.source = source
        self.target = target
        self.store = store
        self.catalog = RoleCatalog(settings.roles.catalog)
        self.applier: Applier | None = None

    async def compute_plan(self) -> tuple[Plan, DesiredState]:
        """Read Okta, resolve roles, diff against the checkpoint. Writes nothing."""
        try:
            directory = await read_directory(
                self.source,
                self.settings.roles.attribute,
                concurrency=self.settings.okta.concurrency,
            )
        except OktaNotFoundError as exc:
            raise CycleAborted(
                ExitCode.CONFIG,
                f"okta.app_id: app {self.settings.okta.app_id} not found in "
                f"{self.settings.okta.org_url} ({exc.error_summary or exc})",
            ) from None
        except RemoteError as exc:
            raise CycleAborted(ExitCode.REMOTE, f"Okta: {exc}") from None
        desired = resolve(directory, self.catalog, self.settings.roles.default)
        for invalid in desired.invalid.values():
            log.warning(
                "user.invalid_role",
                okta_id=invalid.okta_id,
                user_name=invalid.user_name,
                value=invalid.value,
                source=invalid.source,
                detail="not a role id or role name of roles.catalog; this person is left as is",
            )
        for user in desired.users.values():
            if user.role_id is None and not user.staged:
                log.info("user.no_role", okta_id=user.okta_id, user_name=user.user_name)
        records = await self.store.users()
        return make_plan(desired, records, self.settings.role_attribute), desired

    async def run_cycle(self, mode: str = "once") -> CycleResult:
        """One full cycle, recorded in the runs table, logged from ``sync.started`` on."""
        run_id = uuid.uuid4().hex[:16]
        with bind_run(run_id):
            return await self._run(run_id, mode)

    async def _run(self, run_id: str, mode: str) -> CycleResult:
        assert self.target is not None, "run_cycle needs a SCIM target"
        started = time.monotonic()
        okta_before, scim_before = _requests(self.source), _requests(self.target)
        await self.store.start_run(run_id, mode)
        log.info("sync.started", mode=mode, app_id=self.settings.okta.app_id)

        plan: Plan | None = None
        applied = ApplyResult()
        error: str | None = None
        exit_code = ExitCode.OK
        try:
            plan, _ = await self.compute_plan()
            self.applier = Applier(
                self.target,
                self.store,
                catalog=self.catalog,
                role_attribute=self.settings.role_attribute,
                concurrency=self.settings.scim.concurrency,
            )
            applied = await self.applier.apply(plan)
        except CycleAborted as exc:
            error, exit_code = str(exc), exc.exit_code
        if applied.fatal is not None:
            kind = (
                "refused our credentials" if isinstance(applied.fatal, AuthError) else "unreachable"
            )
            error, exit_code = f"SCIM server {kind}: {applied.fatal}", ExitCode.REMOTE
        elif exit_code == ExitCode.OK and (applied.counts["failed"] or (plan and plan.skipped)):
            exit_code = ExitCode.PARTIAL

        outcome = {ExitCode.OK: "success", ExitCode.PARTIAL: "partial"}.get(exit_code, "failed")
        counts: dict[str, Any] = {
            "created": applied.counts["created"],
            "updated": applied.counts["updated"],
            "deactivated": applied.counts["deactivated"],
            "reactivated": applied.counts["reactivated"],
            "adopted": applied.counts["adopted"],
            "unchanged": plan.unchanged if plan else 0,
            "failed": applied.counts["failed"],
            "skipped": len(plan.skipped) if plan else 0,
            "okta_requests": _requests(self.source) - okta_before,
            "scim_requests": _requests(self.target) - scim_before,
            "duration_s": round(time.monotonic() - started, 3),
        }
        if error:
            log.error("sync.failed", error=error, exit_code=int(exit_code))
        await self.store.finish_run(
            run_id, outcome=outcome, exit_code=int(exit_code), counts=counts, error=error
        )
        log.info("sync.finished", outcome=outcome, exit_code=int(exit_code), **counts)
        return CycleResult(run_id, outcome, exit_code, counts, error, plan)
