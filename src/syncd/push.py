"""Push Groups: pushed Okta groups and their members, kept in step downstream.

Applies the :class:`~syncd.plan.GroupChange` values of a plan, after the people are applied, so
a group only ever lists people syncd has provisioned and who are active. Like Okta:

* create: look up ``displayName eq "..."`` first and adopt a match (``group.adopted``),
  otherwise ``POST /Groups`` (a 409 adopts too);
* rename: ``PATCH replace displayName``;
* members: ``PATCH add`` / ``remove`` in batches of at most ``max_members_per_patch`` member
  changes, each batch recorded in the checkpoint as soon as it succeeds, so a crash resumes at
  the next batch; ``replace members`` is never sent;
* a 404 on a managed group re-creates it and re-adds its members;
* a group no longer pushed (or deleted in Okta) is forgotten (``group.unmanaged``) or deleted
  (``group.deleted``), as ``scim.on_group_unpushed`` says.

Only groups syncd created or adopted are ever touched. Every write is kept in the audit trail;
a group failing ``quarantine_after`` cycles in a row is quarantined like a person.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from syncd.apply import each_concurrently, log_quarantined
from syncd.errors import (
    AuthError,
    RemoteError,
    ScimConflictError,
    ScimNotFoundError,
    ScimUnreachableError,
)
from syncd.interfaces import GroupTarget
from syncd.log import get_logger
from syncd.plan import GroupChange
from syncd.scim.resources import filter_eq, group_resource
from syncd.store import Store, Write

log = get_logger(__name__)


@dataclass
class PushResult:
    counts: Counter[str] = field(default_factory=Counter)
    fatal: RemoteError | None = None
    failed: set[str] = field(default_factory=set)  # okta ids of the groups that failed


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class GroupPusher:
    """Applies group changes through a :class:`~syncd.interfaces.GroupTarget`."""

    def __init__(
        self,
        target: GroupTarget,
        store: Store,
        *,
        max_members_per_patch: int = 100,
        concurrency: int = 4,
        quarantine_after: int | None = None,
        quarantined: frozenset[str] = frozenset(),
    ) -> None:
        self.target = target
        self.store = store
        self.batch = max_members_per_patch
        self.concurrency = concurrency
        self.quarantine_after = quarantine_after
        self.quarantined = quarantined  # group okta ids quarantined before this run
        self._stop = False

    def stop(self) -> None:
        """Take no new group and no new member batch; the one in flight finishes and is
        recorded."""
        self._stop = True

    async def apply(
        self, changes: Sequence[GroupChange], scim_ids: Mapping[str, str]
    ) -> PushResult:
        """Apply ``changes``; ``scim_ids`` maps each active, provisioned person to their SCIM id."""
        result = PushResult()
        await each_concurrently(
            changes,
            self.concurrency,
            lambda change: self._apply_one(change, scim_ids, result),
            stop=lambda: self._stop or result.fatal is not None,
        )
        return result

    async def _apply_one(
        self, change: GroupChange, scim_ids: Mapping[str, str], result: PushResult
    ) -> None:
        # A drift repair's lines say so (task-local: the other workers' lines do not).
        with structlog.contextvars.bound_contextvars(**({"repair": True} if change.repair else {})):
            await self._apply_logged(change, scim_ids, result)

    async def _apply_logged(
        self, change: GroupChange, scim_ids: Mapping[str, str], result: PushResult
    ) -> None:
        try:
            if change.retire is not None:
                await self._retire(change, result)
                writes = 1
            else:
                writes = await self._push(change, scim_ids, result)
        except (AuthError, ScimUnreachableError) as exc:
            if result.fatal is None:
                result.fatal = exc
        except RemoteError as exc:
            failure = await self.store.record_group_failure(
                change.okta_id,
                change.name,
                str(exc),
                quarantine_after=self.quarantine_after,
                write=self._audit(change, "group_push", change.scim_id, error=str(exc)),
            )
            result.counts["groups_failed"] += 1
            result.failed.add(change.okta_id)
            log.error(
                "group.failed",
                group=change.name,
                okta_id=change.okta_id,
                error=str(exc),
                consecutive_failures=failure.failures,
            )
            if failure.retry_after is not None:
                log_quarantined("group", change.okta_id, change.name, failure, str(exc))
        else:
            if change.repair and writes:
                result.counts["repaired"] += 1
            if change.okta_id in self.quarantined:
                log.info(
                    "resource.released",
                    resource_type="group",
                    okta_id=change.okta_id,
                    group=change.name,
                )

    def _audit(
        self,
        change: GroupChange,
        action: str,
        scim_id: str | None,
        *,
        error: str | None = None,
        **detail: Any,
    ) -> Write:
        info = {
            k: v
            for k, v in {**detail, "repair": change.repair or None, "error": error}.items()
            if v
        }
        return Write(
            action=action,
            resource_type="group",
            okta_id=change.okta_id,
            scim_id=scim_id,
            name=change.name,
            outcome="failed" if error else "ok",
            detail=info or None,
        )

    # --- one group ------------------------------------------------------------------------

    async def _push(
        self, change: GroupChange, scim_ids: Mapping[str, str], result: PushResult
    ) -> int:
        """Create or rename the group, then its member batches. Returns the writes made."""
        scim_id = change.scim_id
        writes = 0
        if change.create or scim_id is None:
            scim_id, created = await self._adopt_or_create(change, result)
            writes += created
        elif change.previous_name is not None:
            operation = {"op": "replace", "path": "displayName", "value": change.name}
            try:
                await self.target.patch_group(scim_id, [operation])
            except ScimNotFoundError:
                return await self._recreate(change, scim_ids, result)
            await self.store.record_group(
                change.okta_id,
                scim_id=scim_id,
                display_name=change.name,
                write=self._audit(
                    change, "group_rename", scim_id, previous_name=change.previous_name
                ),
            )
            writes += 1
            result.counts["groups_renamed"] += 1
            log.info(
                "group.renamed",
                group=change.name,
                previous_name=change.previous_name,
                okta_id=change.okta_id,
                scim_id=scim_id,
            )
        try:
            return writes + await self._members(
                change, scim_id, change.remove, change.add, scim_ids, result
            )
        except ScimNotFoundError:
            return writes + await self._recreate(change, scim_ids, result)

    async def _adopt_or_create(
        self, change: GroupChange, result: PushResult, *, recreating: bool = False
    ) -> tuple[str, bool]:
        """Adopt the downstream group named like the Okta group (looked up first, as Okta
        does), or create it; a 409 adopts too.

        A group carrying this Okta group's id as its ``externalId`` is syncd's own, made by a
        create whose answer was lost or whose record a crash cut short: it is recovered as
        created, never created twice. When re-creating a managed group that vanished, only such
        a group is taken up; another of the same name is left to the POST (and its 409).

        Returns its SCIM id, and whether syncd created it.
        """
        await self.store.record_group_intent(change.okta_id, change.name)
        existing = await self.target.find_group(change.name)
        if recreating and existing is not None and existing.get("externalId") != change.okta_id:
            existing = None
        if existing is None:
            try:
                created = await self.target.create_group(
                    group_resource(okta_id=change.okta_id, display_name=change.name)
                )
            except ScimConflictError:
                existing = await self.target.find_group(change.name)
                if existing is None:
                    raise
            else:
                scim_id = str(created.get("id") or "")
                if not scim_id:
                    raise ScimConflictError(f"group {change.name!r}: created without an id")
                await self.store.record_group(
                    change.okta_id,
                    scim_id=scim_id,
                    display_name=change.name,
                    reset_members=True,
                    origin="created",
                    write=self._audit(change, "group_create", scim_id, recreated=recreating),
                )
                result.counts["groups_created"] += 1
                log.info(
                    "group.created",
                    group=change.name,
                    okta_id=change.okta_id,
                    scim_id=scim_id,
                    **({"recreated": True} if recreating else {}),
                )
                return scim_id, True
        scim_id = str(existing.get("id") or "")
        if not scim_id:
            raise ScimConflictError(f"group {change.name!r}: the existing group has no id")
        if existing.get("externalId") == change.okta_id:
            # syncd made it (a create cut short by a crash or a lost answer): it stays syncd's.
            await self.store.record_group(
                change.okta_id,
                scim_id=scim_id,
                display_name=change.name,
                reset_members=True,
                origin="created",
                write=self._audit(change, "group_create", scim_id, recovered=True),
            )
            result.counts["groups_created"] += 1
            log.info(
                "group.created",
                group=change.name,
                okta_id=change.okta_id,
                scim_id=scim_id,
                recovered=True,
            )
            return scim_id, True
        await self.store.record_group(
            change.okta_id,
            scim_id=scim_id,
            display_name=change.name,
            reset_members=True,
            origin="adopted",
            write=self._audit(change, "group_adopt", scim_id),
        )
        result.counts["groups_adopted"] += 1
        log.info("group.adopted", group=change.name, okta_id=change.okta_id, scim_id=scim_id)
        return scim_id, False

    async def _recreate(
        self, change: GroupChange, scim_ids: Mapping[str, str], result: PushResult
    ) -> int:
        """The managed group is gone downstream: create it again with all its members."""
        scim_id, _ = await self._adopt_or_create(change, result, recreating=True)
        return 1 + await self._members(change, scim_id, (), change.members, scim_ids, result)

    async def _members(
        self,
        change: GroupChange,
        scim_id: str,
        remove: Sequence[tuple[str, str]],
        add: Sequence[str],
        scim_ids: Mapping[str, str],
        result: PushResult,
    ) -> int:
        """Send the member changes in batches, recording each batch once it succeeds.

        Returns the PATCH requests made.
        """
        patches = 0
        removed = 0
        for batch in _chunks(list(remove), self.batch):
            if self._stop:  # each batch is recorded: the next cycle resumes here
                break
            removals: list[dict[str, Any]] = [
                {"op": "remove", "path": f"members[{filter_eq('value', scim)}]"}
                for _, scim in batch
            ]
            await self.target.patch_group(scim_id, removals)
            await self.store.record_members(
                change.okta_id,
                removed=[u for u, _ in batch],
                write=self._audit(
                    change,
                    "members_remove",
                    scim_id,
                    count=len(batch),
                    members=[u for u, _ in batch],
                ),
            )
            removed += len(batch)
            patches += 1
        additions = [(user, scim_ids[user]) for user in add if scim_ids.get(user)]
        added = 0
        for batch in _chunks(additions, self.batch):
            if self._stop:
                break
            additions_op: list[dict[str, Any]] = [
                {"op": "add", "path": "members", "value": [{"value": s} for _, s in batch]}
            ]
            await self.target.patch_group(scim_id, additions_op)
            await self.store.record_members(
                change.okta_id,
                added=list(batch),
                write=self._audit(
                    change,
                    "members_add",
                    scim_id,
                    count=len(batch),
                    members=[u for u, _ in batch],
                ),
            )
            added += len(batch)
            patches += 1
        if removed:
            result.counts["members_removed"] += removed
            log.info(
                "group.members_removed", group=change.name, okta_id=change.okta_id, count=removed
            )
        if added:
            result.counts["members_added"] += added
            log.info("group.members_added", group=change.name, okta_id=change.okta_id, count=added)
        return patches

    async def _delete(self, change: GroupChange) -> str | None:
        """Delete the group syncd created: by its recorded id, or, when that is gone or was
        never recorded (a create or re-create cut short), the group named like it that carries
        this group's Okta id as its ``externalId``. Returns the id deleted, if any."""
        if change.scim_id:
            try:
                await self.target.delete_group(change.scim_id)
            except ScimNotFoundError:
                pass
            else:
                return change.scim_id
        found = await self.target.find_group(change.name)
        if found and found.get("id") and found.get("externalId") == change.okta_id:
            with contextlib.suppress(ScimNotFoundError):  # deleted meanwhile: fine
                await self.target.delete_group(str(found["id"]))
            return str(found["id"])
        return None

    async def _retire(self, change: GroupChange, result: PushResult) -> None:
        """No longer pushed: delete it if syncd created it and was asked to; else forget it.

        A group syncd adopted existed before syncd: it is never deleted, only unmanaged.
        """
        if change.retire == "delete" and change.origin == "created":
            deleted = await self._delete(change)
            gone: dict[str, Any] = {"already_gone": True} if deleted is None else {}
            scim_id = deleted or change.scim_id
            await self.store.forget_group(
                change.okta_id,
                write=self._audit(
                    change,
                    "group_delete",
                    scim_id,
                    reason=change.reason,
                    **gone,
                ),
            )
            result.counts["groups_deleted"] += 1
            log.info(
                "group.deleted",
                group=change.name,
                okta_id=change.okta_id,
                scim_id=scim_id,
                reason=change.reason,
                **gone,
            )
            return
        await self.store.forget_group(
            change.okta_id,
            write=self._audit(change, "group_unmanage", change.scim_id, reason=change.reason),
        )
        result.counts["groups_unmanaged"] += 1
        log.info(
            "group.unmanaged",
            group=change.name,
            okta_id=change.okta_id,
            scim_id=change.scim_id,
            reason=change.reason,
            **({"adopted": True} if change.origin == "adopted" else {}),
        )
