"""Step 4 and 5, apply and record: make each planned write over SCIM, record it at once.

Every change is recorded in the checkpoint the moment it succeeds (and a create's intent before
it is sent), so a crash never loses or repeats a write. One person's failure is recorded
against that person and the others carry on; only a refusal of our credentials or an
unreachable server stops the run, since every other write would fail the same way.

How each kind of write behaves (what downstream servers expect of Okta):

* create: ``POST /Users``; on 409, or when a previous create may have happened, look the
  userName up and adopt that resource (``user.adopted``), then ``PUT`` it if it differs;
* update: full ``PUT /Users/{id}``; on 404, create again and re-link;
* deactivate / reactivate: ``PATCH`` of ``active`` (a reactivation whose other fields changed
  is one ``PUT``); a 404 on deactivation means it is already gone.

Every write, and every failed attempt, is kept in the checkpoint's audit trail (``writes``) in
the same transaction as its record. A role change is logged ``role.changed`` (at warning level
when the new role is an admin role). A person failing ``quarantine_after`` cycles in a row is
quarantined (``resource.quarantined``); one success releases them (``resource.released``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio

from syncd.errors import (
    AuthError,
    RemoteError,
    ScimConflictError,
    ScimNotFoundError,
    ScimUnreachableError,
)
from syncd.interfaces import ScimTarget
from syncd.log import get_logger
from syncd.plan import Plan, UserChange, changed_fields, comparable
from syncd.roles import RoleCatalog
from syncd.store import Failure, Store, Write

log = get_logger(__name__)

DONE = {
    "create": "created",
    "update": "updated",
    "deactivate": "deactivated",
    "reactivate": "reactivated",
}


@dataclass
class ApplyResult:
    """What the applier did: counts by outcome, the people who failed, a fatal error if any."""

    counts: Counter[str] = field(default_factory=Counter)
    failed: list[tuple[str, str, str]] = field(default_factory=list)  # okta id, userName, error
    fatal: RemoteError | None = None
    stopped: bool = False


T = TypeVar("T")


async def each_concurrently(
    items: Sequence[T],
    concurrency: int,
    work: Callable[[T], Awaitable[None]],
    *,
    stop: Callable[[], bool],
) -> bool:
    """Run ``work`` on each item in order, at most ``concurrency`` at a time.

    No new item starts once ``stop()`` is true. Each item's work is shielded from cancellation:
    a write in flight is finished and recorded even if the run is cancelled. Returns True when
    it stopped before the end.
    """
    pending: Iterator[T] = iter(items)
    stopped = False

    async def worker() -> None:
        nonlocal stopped
        for item in pending:
            if stop():
                stopped = True
                return
            with anyio.CancelScope(shield=True):
                await work(item)

    async with anyio.create_task_group() as tg:
        for _ in range(max(1, min(concurrency, len(items)))):
            tg.start_soon(worker)
    return stopped


def log_quarantined(
    resource_type: str, okta_id: str, name: str, failure: Failure, error: str
) -> None:
    """``resource.quarantined``: a person or group failed ``quarantine_after`` cycles in a row."""
    log.warning(
        "resource.quarantined",
        resource_type=resource_type,
        okta_id=okta_id,
        **{"user_name" if resource_type == "user" else "group": name},
        failures=failure.failures,
        retry_after=failure.retry_after,
        last_error=error,
    )


class Applier:
    """Applies a :class:`~syncd.plan.Plan` through a :class:`~syncd.interfaces.ScimTarget`."""

    def __init__(
        self,
        target: ScimTarget,
        store: Store,
        *,
        catalog: RoleCatalog,
        role_attribute: str,
        concurrency: int = 4,
        admin_roles: frozenset[str] = frozenset(),
        quarantine_after: int | None = None,
        quarantined: frozenset[str] = frozenset(),
    ) -> None:
        self.target = target
        self.store = store
        self.catalog = catalog
        self.role_attribute = role_attribute
        self.concurrency = concurrency
        self.admin_roles = admin_roles
        self.quarantine_after = quarantine_after
        self.quarantined = quarantined  # okta ids quarantined before this run
        self._stop = False

    def stop(self) -> None:
        """Take no new change; the writes in flight finish and are recorded."""
        self._stop = True

    async def apply(self, plan: Plan) -> ApplyResult:
        result = ApplyResult()
        result.stopped = await each_concurrently(
            plan.changes,
            self.concurrency,
            lambda change: self._apply_one(change, result),
            stop=lambda: self._stop or result.fatal is not None,
        )
        return result

    async def _apply_one(self, change: UserChange, result: ApplyResult) -> None:
        try:
            outcome, scim_id, extra = await self._write(change)
        except (AuthError, ScimUnreachableError) as exc:
            if result.fatal is None:
                result.fatal = exc
            return
        except RemoteError as exc:
            failure = await self.store.record_failure(
                change.okta_id,
                change.user_name,
                str(exc),
                quarantine_after=self.quarantine_after,
                write=self._audit(change, change.action, change.scim_id, str(exc)),
            )
            result.counts["failed"] += 1
            result.failed.append((change.okta_id, change.user_name, str(exc)))
            log.error(
                "user.failed",
                okta_id=change.okta_id,
                user_name=change.user_name,
                action=change.action,
                error=str(exc),
                consecutive_failures=failure.failures,
            )
            if failure.retry_after is not None:
                result.counts["quarantined"] += 1
                log_quarantined("user", change.okta_id, change.user_name, failure, str(exc))
            return
        result.counts[outcome] += 1
        if extra.get("adopted"):
            result.counts["adopted"] += 1
        if change.repair:
            extra["repair"] = True
            result.counts["repaired"] += 1
        log.info(
            f"user.{outcome}",
            okta_id=change.okta_id,
            user_name=change.user_name,
            scim_id=scim_id,
            role=self.catalog.name(change.role),
            previous_role=self.catalog.name(change.previous_role),
            role_id=change.role,
            changed_fields=list(change.changed_fields),
            **extra,
        )
        if change.action != "deactivate" and change.role != change.previous_role:
            escalation = change.role in self.admin_roles
            if change.previous_role is not None or escalation:
                (log.warning if escalation else log.info)(
                    "role.changed",
                    okta_id=change.okta_id,
                    user_name=change.user_name,
                    scim_id=scim_id,
                    **{"from": self.catalog.name(change.previous_role)},
                    to=self.catalog.name(change.role),
                    escalation=escalation,
                )
        if change.okta_id in self.quarantined:
            log.info(
                "resource.released",
                resource_type="user",
                okta_id=change.okta_id,
                user_name=change.user_name,
            )

    async def _write(self, change: UserChange) -> tuple[str, str | None, dict[str, Any]]:
        """Make one change and record it. Returns (outcome, scim id, extra log fields)."""
        if change.action == "create":
            created_id, extra = await self._create(change)
            return "created", created_id, extra
        if change.action == "deactivate":
            return await self._deactivate(change)
        assert change.resource is not None and change.scim_id is not None
        try:
            if change.action == "reactivate" and set(change.changed_fields) <= {"active"}:
                await self.target.set_active(change.scim_id, True)
            else:
                await self.target.replace_user(change.scim_id, change.resource)
        except ScimNotFoundError:
            if change.resource.get("active") is False:  # never create someone inactive
                await self._record(change, None, active=False, detail={"already_gone": True})
                return DONE[change.action], None, {"already_gone": True}
            scim_id, extra = await self._create(change, lookup_first=True, recreated=True)
            return DONE[change.action], scim_id, {**extra, "recreated": True}
        # A drift repair may put back an inactive person: record what was sent.
        await self._record(
            change, change.scim_id, active=change.resource.get("active") is not False
        )
        return DONE[change.action], change.scim_id, {}

    async def _deactivate(self, change: UserChange) -> tuple[str, str | None, dict[str, Any]]:
        """``PATCH active false``. With ``lookup_first`` (a create or re-create was cut short),
        the account is looked up by userName when the recorded id does not lead to it."""
        candidates = [change.scim_id] if change.scim_id else []
        for attempt in range(2):
            for scim_id in candidates:
                try:
                    await self.target.set_active(scim_id, False)
                except ScimNotFoundError:
                    continue
                await self._record(change, scim_id, active=False)
                return "deactivated", scim_id, {}
            if attempt or not change.lookup_first:
                break
            found = await self.target.find_user(change.user_name)
            found_id = str(found.get("id") or "") if found else ""
            candidates = [found_id] if found_id and found_id not in candidates else []
        # Gone downstream: nothing to deactivate; a return will create it anew.
        await self._record(change, None, active=False, detail={"already_gone": True})
        return "deactivated", None, {"already_gone": True}

    async def _create(
        self, change: UserChange, *, lookup_first: bool | None = None, recreated: bool = False
    ) -> tuple[str, dict[str, Any]]:
        assert change.resource is not None
        existing: dict[str, Any] | None = None
        if change.lookup_first if lookup_first is None else lookup_first:
            existing = await self.target.find_user(change.user_name)
        if existing is None:
            await self.store.record_intent(change.okta_id, change.user_name)
            try:
                created = await self.target.create_user(change.resource)
            except ScimConflictError:
                existing = await self.target.find_user(change.user_name)
                if existing is None:
                    raise
            else:
                scim_id = str(created["id"])
                await self._record(
                    change, scim_id, active=True, action="create", detail={"recreated": recreated}
                )
                return scim_id, {}
        return await self._adopt(change, existing)

    async def _adopt(
        self, change: UserChange, existing: dict[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        assert change.resource is not None
        scim_id = str(existing.get("id") or "")
        if not scim_id:
            raise ScimConflictError(f"{change.user_name}: the existing resource has no id")
        holder = await self.store.holder_of(scim_id, other_than=change.okta_id)
        if holder is not None and holder.active:
            # Still another person's account (a leaver whose deactivation is pending or held,
            # or a userName that moved): adopting it would let that person's deactivation, or
            # update, take this person's account. Wait until it is let go.
            raise ScimConflictError(
                f"{change.user_name}: the existing account {scim_id} is still managed for "
                f"{holder.user_name} (Okta {holder.okta_id}), who is active downstream"
            )
        # An inactive holder (a leaver) lets the account go when this adoption is recorded.
        taken_over = {"taken_over_from": holder.okta_id} if holder is not None else {}
        differs = changed_fields(existing, change.resource, self.role_attribute)
        log.info(
            "user.adopted",
            okta_id=change.okta_id,
            user_name=change.user_name,
            scim_id=scim_id,
            changed_fields=list(differs),
            **taken_over,
        )
        if comparable(existing, self.role_attribute) != comparable(
            change.resource, self.role_attribute
        ):
            await self.target.replace_user(scim_id, change.resource)
        await self._record(
            change,
            scim_id,
            active=True,
            action="adopt",
            detail={"changed_fields": list(differs), **taken_over},
        )
        return scim_id, {"adopted": True}

    def _audit(
        self,
        change: UserChange,
        action: str,
        scim_id: str | None,
        error: str | None = None,
        *,
        active: bool | None = None,
        detail: dict[str, Any] | None = None,
    ) -> Write:
        before_active = (
            change.previous_active
            if change.previous_active is not None
            else {"create": None, "reactivate": False}.get(change.action, True)
        )
        info = {
            k: v
            for k, v in {
                "changed_fields": list(change.changed_fields),
                "repair": change.repair or None,
                "error": error,
                **(detail or {}),
            }.items()
            if v
        }
        return Write(
            action=action,
            resource_type="user",
            okta_id=change.okta_id,
            scim_id=scim_id,
            name=change.user_name,
            before_role=change.previous_role,
            after_role=change.previous_role if error else change.role,
            before_active=before_active,
            after_active=before_active if error else active,
            outcome="failed" if error else "ok",
            detail=info or None,
        )

    async def _record(
        self,
        change: UserChange,
        scim_id: str | None,
        *,
        active: bool,
        action: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        await self.store.record_applied(
            change.okta_id,
            scim_id=scim_id,
            user_name=change.user_name,
            role=change.role,
            active=active,
            applied=change.resource,
            write=self._audit(
                change, action or change.action, scim_id, active=active, detail=detail
            ),
        )
