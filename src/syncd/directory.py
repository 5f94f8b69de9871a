"""Step 1, read Okta: everything one sync cycle needs from Okta, as a compact snapshot.

:func:`read_directory` streams the app's assigned people and its group assignments, then the
members of the groups that matter (those whose assignment sets the role attribute, and any extra
groups asked for), concurrently and at the largest page sizes. Records are reduced to the few
fields syncd uses as they arrive, so memory stays small for large orgs.

With ``push_patterns`` (``scim.push_groups``: names, ids or globs), it also lists the org's
groups once, picks the pushed ones and reads their members.

A malformed record is kept aside (:attr:`Directory.record_errors`) and what depends on it is left
untouched: the person of a malformed app user (:attr:`Directory.unreadable`), every member of a
group whose assignment is malformed (:attr:`Directory.suspect_groups`), a pushed group whose
record is malformed (:attr:`Directory.unreadable_groups`). A malformed record that names no id
cannot be attributed: the read is then :attr:`Directory.incomplete` and nothing is applied. Any
failed request fails the whole read: a snapshot is complete or it does not exist.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio

from syncd.errors import OktaRecordError
from syncd.interfaces import OktaSource
from syncd.log import get_logger

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Person:
    """One assigned person: the Okta fields syncd sends, and their own role value."""

    okta_id: str
    login: str
    status: str
    scope: str  # "USER" (individual assignment) or "GROUP"
    first_name: str | None
    last_name: str | None
    display_name: str | None
    email: str | None
    own_role: Any  # the role attribute on their individual assignment (scope USER), or None


@dataclass(frozen=True, slots=True)
class GroupGrant:
    """One app group assignment: the group, its priority and the role value it sets."""

    group_id: str
    name: str | None
    priority: int | None
    role_value: Any  # None when the assignment does not set the role attribute


@dataclass
class Directory:
    """What Okta says, for one app."""

    people: dict[str, Person]
    grants: list[GroupGrant]
    members: dict[str, frozenset[str]]  # group id -> member user ids (groups that matter only)
    record_errors: list[OktaRecordError] = field(default_factory=list)
    unreadable: set[str] = field(default_factory=set)  # people whose record was malformed
    pushed: dict[str, str] = field(default_factory=dict)  # pushed group id -> its name
    unmatched: list[str] = field(default_factory=list)  # push patterns that matched no group
    group_ids: frozenset[str] | None = None  # every group of the org, when they were listed
    suspect_groups: set[str] = field(default_factory=set)  # malformed group assignments
    unreadable_groups: set[str] = field(default_factory=set)  # malformed records in the listing
    incomplete: str | None = None  # a malformed record without an id: why the read is unusable


def is_glob(pattern: str) -> bool:
    return any(c in pattern for c in "*?[")


def match_push_groups(
    groups: Iterable[tuple[str, str]], patterns: Sequence[str]
) -> tuple[dict[str, str], list[str]]:
    """Pick the pushed groups among ``(id, name)`` pairs.

    An entry is a group id, an exact (case-sensitive) group name, or a glob on names
    (``Team-*``). Returns ``{id: name}`` and the entries that matched nothing.
    """
    pushed: dict[str, str] = {}
    hits = dict.fromkeys(patterns, False)
    for group_id, name in groups:
        for pattern in patterns:
            matched = (
                fnmatch.fnmatchcase(name, pattern)
                if is_glob(pattern)
                else pattern in (group_id, name)
            )
            if matched:
                pushed[group_id] = name
                hits[pattern] = True
    return pushed, [p for p, hit in hits.items() if not hit]


def has_value(value: Any) -> bool:
    """True when an attribute value is set (not null, not blank, not an empty list)."""
    if value is None:
        return False
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, list):
        return any(has_value(v) for v in value)
    return True


async def read_directory(
    source: OktaSource,
    role_attribute: str,
    *,
    push_patterns: Sequence[str] = (),
    concurrency: int = 8,
) -> Directory:
    """Read the app's people, group assignments and the members of the groups that matter."""
    people: dict[str, Person] = {}
    grants: list[GroupGrant] = []
    members: dict[str, frozenset[str]] = {}
    errors: list[OktaRecordError] = []
    unreadable: set[str] = set()
    pushed: dict[str, str] = {}
    unmatched: list[str] = []
    all_groups: set[str] = set()
    suspect_groups: set[str] = set()
    unreadable_groups: set[str] = set()
    unattributed: list[str] = []

    def bad(error: OktaRecordError) -> None:
        errors.append(error)
        log.warning(
            "okta.invalid_record", error=str(error), kind=error.kind, okta_id=error.record_id
        )

    async def read_people() -> None:
        async for item in source.app_users():
            if isinstance(item, OktaRecordError):
                bad(item)
                if item.record_id:
                    unreadable.add(item.record_id)
                else:
                    unattributed.append(str(item))
                continue
            user = item.user
            profile = user.profile
            people[item.id] = Person(
                okta_id=item.id,
                login=profile.login,
                status=user.status,
                scope=item.scope.upper(),
                first_name=profile.firstName,
                last_name=profile.lastName,
                display_name=profile.displayName,
                email=profile.email,
                own_role=item.profile.get(role_attribute) if item.scope.upper() == "USER" else None,
            )

    async def read_members(group_id: str, limiter: anyio.CapacityLimiter) -> None:
        ids: set[str] = set()
        async with limiter:
            async for item in source.group_members(group_id):
                if isinstance(item, OktaRecordError):
                    if item.record_id:
                        ids.add(item.record_id)  # the membership itself is known
                    else:
                        bad(item)
                        unattributed.append(str(item))
                    continue
                ids.add(item.id)
        members[group_id] = frozenset(ids)

    async def read_pushed() -> None:
        listed: list[tuple[str, str]] = []
        async for item in source.groups():
            if isinstance(item, OktaRecordError):
                bad(item)
                if item.record_id:
                    all_groups.add(item.record_id)
                    unreadable_groups.add(item.record_id)
                else:
                    unattributed.append(str(item))
                continue
            listed.append((item.id, item.profile.name))
            all_groups.add(item.id)
        found, missing = match_push_groups(listed, push_patterns)
        pushed.update(found)
        unmatched.extend(missing)

    async def read_groups() -> None:
        if push_patterns:
            async with anyio.create_task_group() as tg:
                tg.start_soon(read_pushed)
                tg.start_soon(read_grants)
        else:
            await read_grants()
        wanted = [g.group_id for g in grants if has_value(g.role_value)]
        wanted += [g for g in [*suspect_groups, *pushed] if g not in wanted]
        limiter = anyio.CapacityLimiter(concurrency)
        async with anyio.create_task_group() as tg:
            for group_id in wanted:
                tg.start_soon(read_members, group_id, limiter)

    async def read_grants() -> None:
        async for item in source.group_assignments():
            if isinstance(item, OktaRecordError):
                bad(item)
                if item.record_id:  # its members' roles cannot be known: read who they are
                    suspect_groups.add(item.record_id)
                else:
                    unattributed.append(str(item))
                continue
            grants.append(
                GroupGrant(
                    group_id=item.id,
                    name=item.group_name,
                    priority=item.priority,
                    role_value=item.profile.get(role_attribute),
                )
            )

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(read_people)
            tg.start_soon(read_groups)
    except BaseExceptionGroup as group:
        # The first failure is the story; the others were cancelled or failed the same way.
        raise first_error(group) from None
    return Directory(
        people,
        grants,
        members,
        errors,
        unreadable,
        pushed,
        unmatched,
        frozenset(all_groups) if push_patterns else None,
        suspect_groups,
        unreadable_groups,
        "; ".join(unattributed) or None,
    )


def first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first leaf of a (nested) exception group."""
    error: BaseException = group
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error
