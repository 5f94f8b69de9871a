"""The sync cycle: read Okta -> resolve roles -> plan -> apply over SCIM -> record.

:class:`Engine` knows its parts only through :mod:`syncd.interfaces` and the checkpoint
:class:`~syncd.store.Store`; :mod:`syncd.app` builds the real parts from the configuration.
:meth:`Engine.compute_plan` is the read-only half (``syncd plan``); :meth:`Engine.run_cycle`
applies the plan (people first, then pushed groups) and records the run.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import anyio

from syncd.apply import Applier, ApplyResult
from syncd.config import Settings
from syncd.directory import Directory, read_directory
from syncd.errors import AuthError, OktaNotFoundError, RemoteError
from syncd.interfaces import OktaSource, ScimService
from syncd.log import bind_run, get_logger
from syncd.plan import Plan, actual_downstream, make_plan, plan_groups, predicted_downstream
from syncd.push import GroupPusher, PushResult
from syncd.roles import DesiredState, RoleCatalog, resolve
from syncd.store import Store

log = get_logger(__name__)


class ExitCode(IntEnum):
    """The exit codes of ``syncd run --once`` (and the other commands); see the README."""

    OK = 0  # everything applied
    PARTIAL = 1  # finished, but some people or groups failed or were skipped
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
    outcome: str  # "success", "partial", "failed" or "interrupted"
    exit_code: ExitCode
    counts: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    plan: Plan | None = None


@dataclass
class Snapshot:
    """One cycle's view: what Okta says, what it means, and the plan against the checkpoint."""

    directory: Directory
    desired: DesiredState
    plan: Plan


GROUP_COUNTS = (
    "groups_created",
    "groups_adopted",
    "groups_renamed",
    "groups_deleted",
    "groups_unmanaged",
    "groups_failed",
    "members_added",
    "members_removed",
)


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
        target: ScimService | None,
        store: Store,
    ) -> None:
        self.settings = settings
        self.source = source
        self.target = target
        self.store = store
        self.catalog = RoleCatalog(settings.roles.catalog)
        self.applier: Applier | None = None
        self.pusher: GroupPusher | None = None
        self._stopping = False
        self._read_scope: anyio.CancelScope | None = None

    def stop(self) -> None:
        """Stop the cycle early: abandon the Okta read, or let the writes in flight finish and
        be recorded, and start no new one. The run is recorded as ``interrupted``."""
        self._stopping = True
        if self._read_scope is not None:
            self._read_scope.cancel()
        if self.applier is not None:
            self.applier.stop()
        if self.pusher is not None:
            self.pusher.stop()

    async def compute_plan(self) -> Snapshot:
        """Read Okta, resolve roles, diff against the checkpoint. Writes nothing.

        The plan's group changes are predicted from the people's changes; a real run plans
        the groups again once the people are applied.
        """
        try:
            directory = await read_directory(
                self.source,
                self.settings.roles.attribute,
                push_patterns=self.settings.scim.push_groups,
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
        for pattern in directory.unmatched:
            log.warning(
                "group.not_found",
                pattern=pattern,
                detail="this scim.push_groups entry matches no Okta group name or id",
            )
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
        plan = make_plan(desired, records, self.settings.role_attribute)
        group_records = await self.store.groups()
        if directory.pushed or group_records:
            groups = plan_groups(
                directory,
                desired,
                predicted_downstream(desired, records),
                group_records,
                self.settings.scim.on_group_unpushed,
            )
            plan = dataclasses.replace(plan, groups=groups)
        return Snapshot(directory, desired, plan)

    async def run_cycle(self, mode: str = "once") -> CycleResult:
        """One full cycle, recorded in the runs table, logged from ``sync.started`` on."""
        run_id = uuid.uuid4().hex[:16]
        with bind_run(run_id):
            return await self._run(run_id, mode)

    async def _push_groups(self, snapshot: Snapshot) -> PushResult:
        """Plan the groups against the people as they now are downstream, and apply."""
        assert self.target is not None
        group_records = await self.store.groups()
        if not snapshot.directory.pushed and not group_records:
            return PushResult()
        downstream = actual_downstream(await self.store.users())
        changes = plan_groups(
            snapshot.directory,
            snapshot.desired,
            downstream,
            group_records,
            self.settings.scim.on_group_unpushed,
        )
        self.pusher = GroupPusher(
            self.target,
            self.store,
            max_members_per_patch=self.settings.scim.max_members_per_patch,
            concurrency=self.settings.scim.concurrency,
        )
        return await self.pusher.apply(changes, downstream)

    async def _run(self, run_id: str, mode: str) -> CycleResult:
        assert self.target is not None, "run_cycle needs a SCIM target"
        started = time.monotonic()
        okta_before, scim_before = _requests(self.source), _requests(self.target)
        await self.store.start_run(run_id, mode)
        log.info("sync.started", mode=mode, app_id=self.settings.okta.app_id)

        plan: Plan | None = None
        applied = ApplyResult()
        pushed = PushResult()
        error: str | None = None
        exit_code = ExitCode.OK
        try:
            with anyio.CancelScope() as self._read_scope:
                snapshot = await self.compute_plan()
            self._read_scope = None
            if self._stopping:
                raise CycleAborted(ExitCode.OK, "stopped before applying anything")
            plan = snapshot.plan
            self.applier = Applier(
                self.target,
                self.store,
                catalog=self.catalog,
                role_attribute=self.settings.role_attribute,
                concurrency=self.settings.scim.concurrency,
            )
            if self._stopping:
                self.applier.stop()
            applied = await self.applier.apply(plan)
            if applied.fatal is None and not applied.stopped and not self._stopping:
                pushed = await self._push_groups(snapshot)
        except CycleAborted as exc:
            error, exit_code = (str(exc), exc.exit_code) if exc.exit_code else (None, ExitCode.OK)
        fatal = applied.fatal or pushed.fatal
        if fatal is not None:
            kind = "refused our credentials" if isinstance(fatal, AuthError) else "unreachable"
            error, exit_code = f"SCIM server {kind}: {fatal}", ExitCode.REMOTE
        elif exit_code == ExitCode.OK and (
            applied.counts["failed"] or pushed.counts["groups_failed"] or (plan and plan.skipped)
        ):
            exit_code = ExitCode.PARTIAL

        outcome = {ExitCode.OK: "success", ExitCode.PARTIAL: "partial"}.get(exit_code, "failed")
        if self._stopping and fatal is None:
            outcome = "interrupted"
        counts: dict[str, Any] = {
            "created": applied.counts["created"],
            "updated": applied.counts["updated"],
            "deactivated": applied.counts["deactivated"],
            "reactivated": applied.counts["reactivated"],
            "adopted": applied.counts["adopted"],
            "unchanged": plan.unchanged if plan else 0,
            "failed": applied.counts["failed"],
            "skipped": len(plan.skipped) if plan else 0,
            **{name: pushed.counts[name] for name in GROUP_COUNTS},
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
