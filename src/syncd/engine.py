"""The sync cycle: read Okta -> resolve roles -> plan -> apply over SCIM -> record.

:class:`Engine` knows its parts only through :mod:`syncd.interfaces` and the checkpoint
:class:`~syncd.store.Store`; :mod:`syncd.app` builds the real parts from the configuration.
:meth:`Engine.compute_plan` is the read-only half (``syncd plan``): it reads, resolves, diffs
and puts the plan through the safety guards. :meth:`Engine.run_cycle` applies the plan (people
first, then pushed groups), checks for drift and repairs it, and records the run.
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
from syncd.drift import Finding, detect_drift, log_findings, repairs
from syncd.errors import AuthError, OktaNotFoundError, RemoteError
from syncd.guards import admin_removals, guard_groups, guard_users
from syncd.interfaces import OktaSource, ScimService
from syncd.log import bind_run, get_logger
from syncd.plan import (
    Plan,
    Trip,
    actual_downstream,
    make_plan,
    plan_groups,
    predicted_downstream,
)
from syncd.push import GroupPusher, PushResult
from syncd.roles import DesiredState, RoleCatalog, resolve
from syncd.store import Store, now_iso

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


def _failed_read(detail: str) -> CycleAborted:
    """The fail-safe read guard: an Okta read that failed or is incomplete is never taken as
    an answer. Nothing is applied at all, so the exit code is 4 (Okta's side), not 3."""
    log.warning("guard.tripped", guard="failed_read", detail=detail)
    return CycleAborted(ExitCode.REMOTE, detail)


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


def log_trips(trips: tuple[Trip, ...] | list[Trip]) -> None:
    for trip in trips:
        log.warning("guard.tripped", guard=trip.guard, detail=trip.detail)


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
        allow_deactivations: int | None = None,
    ) -> None:
        self.settings = settings
        self.source = source
        self.target = target
        self.store = store
        self.allow_deactivations = allow_deactivations
        self.catalog = RoleCatalog(settings.roles.catalog)
        self.admin_roles = self.catalog.ids(settings.roles.admin)
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

    async def compute_plan(self, *, predict_groups: bool = True) -> Snapshot:
        """Read Okta, resolve roles, diff against the checkpoint, apply the guards. Writes nothing.

        The plan's group changes are predicted from the people's changes (``predict_groups``); a
        real run plans the groups again once the people are applied.
        """
        directory = await self._read(self.settings.scim.push_groups)
        for pattern in directory.unmatched:
            log.warning(
                "group.not_found",
                pattern=pattern,
                detail="this scim.push_groups entry matches no Okta group name or id",
            )
        desired = resolve(directory, self.catalog, self.settings.roles.default)
        return await self._plan(directory, desired, predict_groups=predict_groups)

    async def _read(self, push_patterns: list[str]) -> Directory:
        """Read Okta whole, or raise :class:`CycleAborted` saying why nothing can be applied."""
        try:
            directory = await read_directory(
                self.source,
                self.settings.roles.attribute,
                push_patterns=push_patterns,
                concurrency=self.settings.okta.concurrency,
            )
        except OktaNotFoundError as exc:
            if f"/apps/{self.settings.okta.app_id}/" in (exc.url or ""):
                raise CycleAborted(
                    ExitCode.CONFIG,
                    f"okta.app_id: app {self.settings.okta.app_id} not found in "
                    f"{self.settings.okta.org_url} ({exc.error_summary or exc})",
                ) from None
            # Something listed a moment ago is gone (a group deleted during the read).
            raise _failed_read(f"Okta changed during the read: {exc}") from None
        except AuthError as exc:  # credentials refused: not a suspect read, a setup to fix
            raise CycleAborted(ExitCode.REMOTE, f"Okta: {exc}") from None
        except RemoteError as exc:
            raise _failed_read(f"Okta: {exc}") from None
        if directory.incomplete:
            raise _failed_read(
                f"Okta: incomplete read, nothing applied: {directory.incomplete} "
                "(a malformed record without an id cannot be attributed)"
            )
        return directory

    async def _plan(
        self, directory: Directory, desired: DesiredState, *, predict_groups: bool
    ) -> Snapshot:
        """Diff against the checkpoint and put the plan through the guards."""
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
        plan, released = guard_users(
            plan,
            directory=directory,
            records=records,
            settings=self.settings,
            allow_deactivations=self.allow_deactivations,
        )
        for note in released:
            log.warning("guard.released", detail=note, allowed=self.allow_deactivations)
        group_records = await self.store.groups()
        if predict_groups and (directory.pushed or group_records):
            changes = plan_groups(
                directory,
                desired,
                predicted_downstream(desired, records),
                group_records,
                self.settings.scim.on_group_unpushed,
            )
            kept, held, trips, skipped = guard_groups(
                changes, directory=directory, records=group_records, settings=self.settings
            )
            plan = dataclasses.replace(
                plan,
                groups=tuple(kept),
                held=plan.held + tuple(held),
                trips=plan.trips + tuple(trips),
                skipped=plan.skipped + tuple(skipped),
            )
        log_trips(plan.trips)
        return Snapshot(directory, desired, plan)

    async def check_drift(self) -> list[Finding]:
        """``syncd drift``: read Okta and every downstream resource; report, write nothing."""
        directory = await self._read([])
        desired = resolve(directory, self.catalog, self.settings.roles.default)
        try:
            findings, _, _ = await self._find_drift(desired)
        except RemoteError as exc:
            raise CycleAborted(ExitCode.REMOTE, f"SCIM server: {exc}") from None
        return findings

    async def run_cycle(self, mode: str = "once") -> CycleResult:
        """One full cycle, recorded in the runs table, logged from ``sync.started`` on."""
        run_id = uuid.uuid4().hex[:16]
        with bind_run(run_id):
            return await self._run(run_id, mode)

    def _applier(self, records: dict[str, Any]) -> Applier:
        assert self.target is not None
        return Applier(
            self.target,
            self.store,
            catalog=self.catalog,
            role_attribute=self.settings.role_attribute,
            concurrency=self.settings.scim.concurrency,
            admin_roles=self.admin_roles,
            quarantine_after=self.settings.sync.quarantine_after,
            quarantined=frozenset(k for k, r in records.items() if r.retry_after),
        )

    def _pusher(self, group_records: dict[str, Any]) -> GroupPusher:
        assert self.target is not None
        self.pusher = GroupPusher(
            self.target,
            self.store,
            max_members_per_patch=self.settings.scim.max_members_per_patch,
            concurrency=self.settings.scim.concurrency,
            quarantine_after=self.settings.sync.quarantine_after,
            quarantined=frozenset(k for k, g in group_records.items() if g.retry_after),
        )
        if self._stopping:
            self.pusher.stop()
        return self.pusher

    async def _apply_people(self, run: _Run, plan: Plan) -> None:
        """People first; the changes that take an admin role away last, and only if an admin
        is still active downstream once the rest succeeded (a failed promotion must not let the
        last admin go)."""
        records = await self.store.users()
        self.applier = self._applier(records)
        if self._stopping:
            self.applier.stop()
        rest, removals = admin_removals(plan.changes, self.admin_roles)
        run.applied = await self.applier.apply(dataclasses.replace(plan, changes=tuple(rest)))
        if not removals or run.applied.fatal is not None or run.applied.stopped:
            return
        leaving = {c.okta_id for c in removals}
        admins_left = [
            k
            for k, r in (await self.store.users()).items()
            if r.active and r.scim_id and r.role in self.admin_roles and k not in leaving
        ]
        if not admins_left:
            names = ", ".join(c.user_name for c in removals)
            trip = Trip(
                "admin_lockout",
                f"no other admin is active downstream (a promotion failed): held the removal "
                f"of the admin role from {names}",
            )
            log_trips([trip])
            run.trips.append(trip)
            run.held += len(removals)
            return
        more = await self.applier.apply(dataclasses.replace(plan, changes=tuple(removals)))
        run.applied.counts.update(more.counts)
        run.applied.failed.extend(more.failed)
        run.applied.fatal = run.applied.fatal or more.fatal
        run.applied.stopped = run.applied.stopped or more.stopped

    async def _push_groups(self, run: _Run, snapshot: Snapshot) -> None:
        """Plan the groups against the people as they now are downstream, guard, and apply."""
        group_records = await self.store.groups()
        if not snapshot.directory.pushed and not group_records:
            return
        downstream = actual_downstream(await self.store.users())
        changes = plan_groups(
            snapshot.directory,
            snapshot.desired,
            downstream,
            group_records,
            self.settings.scim.on_group_unpushed,
        )
        kept, held, trips, skipped = guard_groups(
            changes, directory=snapshot.directory, records=group_records, settings=self.settings
        )
        log_trips(trips)
        run.trips.extend(trips)
        run.held += len(held)
        run.groups_skipped = len(skipped)
        run.pushed = await self._pusher(group_records).apply(kept, downstream)

    async def _find_drift(
        self, desired: DesiredState
    ) -> tuple[list[Finding], dict[str, Any], dict[str, Any]]:
        assert self.target is not None
        users, groups = await self.store.users(), await self.store.groups()
        findings = await detect_drift(
            self.target,
            users=users,
            groups=groups,
            desired=desired,
            role_attribute=self.settings.role_attribute,
            catalog=self.catalog,
        )
        log_findings(findings)
        return findings, users, groups

    async def _drift(self, run: _Run, snapshot: Snapshot) -> None:
        """Check downstream against the checkpoint; repair what syncd manages, if so asked."""
        try:
            findings, users, groups = await self._find_drift(snapshot.desired)
        except RemoteError as exc:  # the drift read failed: the SCIM server's fault, not a bug
            run.fatal = run.fatal or exc
            return
        run.drift_found = len(findings)
        if not findings or self.settings.sync.drift_action != "repair" or self._stopping:
            return
        user_fixes, group_fixes = repairs(
            findings,
            users,
            groups,
            desired=snapshot.desired,
            pushed=snapshot.directory.pushed,
            members=snapshot.directory.members,
            downstream=actual_downstream(users),
            role_attribute=self.settings.role_attribute,
            now=now_iso(),
            catalog=self.catalog,
        )
        # A group whose write failed in this cycle already counted its failure: one a cycle.
        group_fixes = [g for g in group_fixes if g.okta_id not in run.pushed.failed]
        self.applier = self._applier(users)
        if self._stopping:
            self.applier.stop()
        fixed = await self.applier.apply(Plan(tuple(user_fixes), 0))
        run.drift_repaired = fixed.counts["repaired"]
        run.fatal = run.fatal or fixed.fatal
        run.drift_failed = fixed.counts["failed"]
        if group_fixes and fixed.fatal is None and not self._stopping:
            pushed = await self._pusher(groups).apply(
                group_fixes, actual_downstream(await self.store.users())
            )
            run.drift_repaired += pushed.counts["repaired"]
            run.drift_failed += pushed.counts["groups_failed"]
            run.fatal = run.fatal or pushed.fatal

    async def _cycle(self, run: _Run) -> None:
        with anyio.CancelScope() as self._read_scope:
            run.snapshot = await self.compute_plan(predict_groups=False)
        self._read_scope = None
        if self._stopping or run.snapshot is None:
            raise CycleAborted(ExitCode.OK, "stopped before applying anything")
        snapshot = run.snapshot
        run.trips.extend(snapshot.plan.trips)
        run.held += len(snapshot.plan.held)
        await self._apply_people(run, snapshot.plan)
        run.fatal = run.applied.fatal
        if run.fatal is not None or run.applied.stopped or self._stopping:
            return
        await self._push_groups(run, snapshot)
        run.fatal = run.pushed.fatal
        if run.fatal is None and self.settings.sync.drift_check and not self._stopping:
            await self._drift(run, snapshot)

    async def _run(self, run_id: str, mode: str) -> CycleResult:
        assert self.target is not None, "run_cycle needs a SCIM target"
        run = _Run(started=time.monotonic())
        okta_before, scim_before = _requests(self.source), _requests(self.target)
        await self.store.start_run(run_id, mode)
        log.info("sync.started", mode=mode, app_id=self.settings.okta.app_id)
        try:
            await self._cycle(run)
        except CycleAborted as exc:
            run.error = str(exc) if exc.exit_code else None
            run.exit_code = exc.exit_code
        except anyio.get_cancelled_exc_class():
            # Cancelled (the shutdown timeout ran out): still record the run, as interrupted.
            self._stopping = True
            with anyio.CancelScope(shield=True):
                await self._finish(run_id, run, okta_before, scim_before)
            raise
        except Exception as exc:  # a bug: record the run as failed, then let it surface
            run.error = f"internal error: {type(exc).__name__}: {exc}"
            run.exit_code = ExitCode.INTERNAL
            with anyio.CancelScope(shield=True):
                await self._finish(run_id, run, okta_before, scim_before)
            raise
        return await self._finish(run_id, run, okta_before, scim_before)

    async def _finish(
        self, run_id: str, run: _Run, okta_before: int, scim_before: int
    ) -> CycleResult:
        """Decide the outcome and the exit code, record the run, log ``sync.finished``."""
        plan = run.snapshot.plan if run.snapshot else None
        exit_code, error = run.exit_code, run.error
        if run.fatal is not None:
            kind = "refused our credentials" if isinstance(run.fatal, AuthError) else "unreachable"
            error, exit_code = f"SCIM server {kind}: {run.fatal}", ExitCode.REMOTE
        elif exit_code == ExitCode.OK and run.trips:
            exit_code = ExitCode.GUARD
        elif exit_code == ExitCode.OK and (
            run.applied.counts["failed"]
            or run.pushed.counts["groups_failed"]
            or run.drift_failed
            or (plan and plan.skipped)
            or run.groups_skipped
            or (run.snapshot and run.snapshot.directory.record_errors)
        ):
            exit_code = ExitCode.PARTIAL
        outcome = {
            ExitCode.OK: "success",
            ExitCode.PARTIAL: "partial",
            ExitCode.GUARD: "guarded",
        }.get(exit_code, "failed")
        if self._stopping and run.fatal is None:
            outcome = "interrupted"
        applied, pushed = run.applied.counts, run.pushed.counts
        counts: dict[str, Any] = {
            "created": applied["created"],
            "updated": applied["updated"],
            "deactivated": applied["deactivated"],
            "reactivated": applied["reactivated"],
            "adopted": applied["adopted"],
            "unchanged": plan.unchanged if plan else 0,
            "failed": applied["failed"],
            "skipped": (len(plan.skipped) if plan else 0) + run.groups_skipped,
            "held": run.held,
            "quarantined": applied["quarantined"],
            **{name: pushed[name] for name in GROUP_COUNTS},
            "drift_found": run.drift_found,
            "drift_repaired": run.drift_repaired,
            "okta_requests": _requests(self.source) - okta_before,
            "scim_requests": _requests(self.target) - scim_before,
            "duration_s": round(time.monotonic() - run.started, 3),
        }
        if error:
            log.error("sync.failed", error=error, exit_code=int(exit_code))
        await self.store.finish_run(
            run_id, outcome=outcome, exit_code=int(exit_code), counts=counts, error=error
        )
        log.info("sync.finished", outcome=outcome, exit_code=int(exit_code), **counts)
        return CycleResult(run_id, outcome, exit_code, counts, error, plan)


@dataclass
class _Run:
    """What one run did so far (filled in as it goes, read by :meth:`Engine._finish`)."""

    started: float
    snapshot: Snapshot | None = None
    applied: ApplyResult = field(default_factory=ApplyResult)
    pushed: PushResult = field(default_factory=PushResult)
    trips: list[Trip] = field(default_factory=list)
    held: int = 0
    groups_skipped: int = 0
    drift_found: int = 0
    drift_repaired: int = 0
    drift_failed: int = 0
    fatal: RemoteError | None = None
    error: str | None = None
    exit_code: ExitCode = ExitCode.OK
