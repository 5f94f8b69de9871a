"""Drift: the downstream system no longer matching what syncd applied, or what Okta says.

:func:`detect_drift` reads every downstream user and group (paged, following the server's own
page size) and compares each managed resource with what syncd last applied (the checkpoint), and
every other active user with Okta's assignments. The kinds of finding:

* ``role_mismatch``, ``active_mismatch``: the role attribute, or ``active``, differs;
* ``attribute_mismatch``: ``userName``, a name, ``displayName`` or the email differs (a group:
  its ``displayName``);
* ``missing``: a managed, active person, or a managed group, was deleted downstream (an inactive
  person deleted downstream is not drift: WorkOS deletes inactive users by default);
* ``unmanaged_active``: an active downstream user that syncd does not manage and Okta does not
  assign: someone added by hand or by another tool;
* ``membership_mismatch``: a managed group's members differ from the members syncd added (only
  where the server returns members at all).

Each finding is logged ``drift.detected``; each check ends with ``drift.summary``.
:func:`repairs` turns findings on managed resources into ordinary plan changes that put them
back (``sync.drift_action = "repair"``); unmanaged users are only ever reported.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from syncd.directory import Directory
from syncd.interfaces import DriftSource
from syncd.log import get_logger
from syncd.plan import GroupChange, UserChange, comparable
from syncd.roles import RoleCatalog
from syncd.store import GroupRecord, UserRecord

log = get_logger(__name__)

KINDS = (
    "role_mismatch",
    "active_mismatch",
    "attribute_mismatch",
    "missing",
    "unmanaged_active",
    "membership_mismatch",
)
PAGE = 1000  # asked for; a server that caps lower is followed page by page
CASELESS = {"userName", "email"}
FIELD_NAMES = {"email": "emails"}


@dataclass(frozen=True, slots=True)
class Finding:
    """One difference between downstream and what it should be."""

    kind: str
    resource_type: str  # "user" or "group"
    name: str  # the userName, or the group's displayName
    okta_id: str | None
    scim_id: str | None
    field: str | None
    expected: Any
    actual: Any
    detail: dict[str, Any] = dataclasses.field(default_factory=dict)


def _same(key: str, a: Any, b: Any) -> bool:
    if key in CASELESS and isinstance(a, str) and isinstance(b, str):
        return a.lower() == b.lower()
    return bool(a == b)


async def detect_drift(
    source: DriftSource,
    *,
    users: Mapping[str, UserRecord],
    groups: Mapping[str, GroupRecord],
    directory: Directory | None,
    role_attribute: str,
    catalog: RoleCatalog,
) -> list[Finding]:
    """Compare downstream with the checkpoint (and, for unmanaged users, with Okta)."""
    findings: list[Finding] = []
    downstream = {str(u.get("id")): u async for u in source.list_users(page_size=PAGE)}
    managed_ids = {r.scim_id for r in users.values() if r.scim_id}
    for record in sorted(users.values(), key=lambda r: r.user_name):
        if not record.scim_id or record.applied is None:
            continue
        actual = downstream.get(record.scim_id)
        if actual is None:
            if record.active:
                findings.append(
                    Finding(
                        "missing",
                        "user",
                        record.user_name,
                        record.okta_id,
                        record.scim_id,
                        None,
                        "present",
                        "absent",
                    )
                )
            continue
        want = comparable(record.applied, role_attribute)
        have = comparable(actual, role_attribute)
        for key, expected in want.items():
            if _same(key, expected, have.get(key)):
                continue
            if key == "role":
                kind, name = "role_mismatch", role_attribute
                shown = (catalog.name(expected), catalog.name(have.get(key)))
            elif key == "active":
                kind, name, shown = "active_mismatch", "active", (expected, have.get(key))
            else:
                kind, name = "attribute_mismatch", FIELD_NAMES.get(key, key)
                shown = (expected, have.get(key))
            findings.append(
                Finding(
                    kind, "user", record.user_name, record.okta_id, record.scim_id, name, *shown
                )
            )

    if directory is not None:
        logins = {p.login.lower() for p in directory.people.values()}
        for scim_id, resource in sorted(
            downstream.items(), key=lambda i: str(i[1].get("userName"))
        ):
            if scim_id in managed_ids or resource.get("active") is not True:
                continue
            user_name = str(resource.get("userName", ""))
            if user_name.lower() in logins or resource.get("externalId") in directory.people:
                continue  # assigned in Okta: the next cycle adopts it
            findings.append(
                Finding(
                    "unmanaged_active",
                    "user",
                    user_name,
                    None,
                    scim_id,
                    "active",
                    "not provisioned (not assigned in Okta)",
                    True,
                )
            )

    if groups:
        findings.extend(await _group_drift(source, groups))
    return findings


async def _group_drift(source: DriftSource, groups: Mapping[str, GroupRecord]) -> list[Finding]:
    findings: list[Finding] = []
    downstream = {str(g.get("id")): g async for g in source.list_groups(page_size=PAGE)}
    for record in sorted(groups.values(), key=lambda g: g.display_name):
        if not record.scim_id:
            continue
        actual = downstream.get(record.scim_id)
        name = record.display_name
        if actual is None:
            findings.append(
                Finding(
                    "missing",
                    "group",
                    name,
                    record.okta_id,
                    record.scim_id,
                    None,
                    "present",
                    "absent",
                )
            )
            continue
        if actual.get("displayName") != name:
            findings.append(
                Finding(
                    "attribute_mismatch",
                    "group",
                    name,
                    record.okta_id,
                    record.scim_id,
                    "displayName",
                    name,
                    actual.get("displayName"),
                )
            )
        if "members" not in actual:
            continue  # this server does not return members: nothing to compare
        have = {str(m.get("value")) for m in actual.get("members") or [] if isinstance(m, dict)}
        want = set(record.members.values())
        if have != want:
            findings.append(
                Finding(
                    "membership_mismatch",
                    "group",
                    name,
                    record.okta_id,
                    record.scim_id,
                    "members",
                    len(want),
                    len(have),
                    {
                        "missing_members": sorted(want - have)[:20],
                        "extra_members": sorted(have - want)[:20],
                    },
                )
            )
    return findings


def log_findings(findings: list[Finding]) -> Counter[str]:
    """Log each finding (``drift.detected``) and the summary (``drift.summary``)."""
    for f in findings:
        name_key = "user_name" if f.resource_type == "user" else "group"
        log.warning(
            "drift.detected",
            kind=f.kind,
            resource_type=f.resource_type,
            **{name_key: f.name},
            okta_id=f.okta_id,
            scim_id=f.scim_id,
            field=f.field,
            expected=f.expected,
            actual=f.actual,
            **f.detail,
        )
    counts = Counter(f.kind for f in findings)
    log.info("drift.summary", total=len(findings), **{k: counts.get(k, 0) for k in KINDS})
    return counts


def repairs(
    findings: list[Finding],
    users: Mapping[str, UserRecord],
    groups: Mapping[str, GroupRecord],
    *,
    leave_alone: frozenset[str] = frozenset(),
) -> tuple[list[UserChange], list[GroupChange]]:
    """The changes that put managed resources back as syncd applied them."""
    user_fields: dict[str, list[str]] = {}
    missing_users: set[str] = set()
    group_findings: dict[str, list[Finding]] = {}
    for f in findings:
        if f.okta_id is None or f.okta_id in leave_alone:
            continue  # unmanaged, or a person to leave exactly as they are
        if f.resource_type == "user":
            if f.kind == "missing":
                missing_users.add(f.okta_id)
            else:
                user_fields.setdefault(f.okta_id, []).append(f.field or f.kind)
        else:
            group_findings.setdefault(f.okta_id, []).append(f)

    user_changes: list[UserChange] = []
    for okta_id in sorted(missing_users | set(user_fields)):
        record = users[okta_id]
        missing = okta_id in missing_users
        user_changes.append(
            UserChange(
                "create" if missing else "update",
                okta_id,
                record.user_name,
                None if missing else record.scim_id,
                record.role,
                record.role,
                ("missing",) if missing else tuple(user_fields[okta_id]),
                record.applied,
                lookup_first=missing,
                repair=True,
            )
        )

    group_changes: list[GroupChange] = []
    for okta_id, found in sorted(group_findings.items()):
        group = groups[okta_id]
        kinds = {f.kind: f for f in found}
        if "missing" in kinds:
            members = tuple(sorted(group.members))
            group_changes.append(
                GroupChange(
                    okta_id,
                    group.display_name,
                    None,
                    create=True,
                    add=members,
                    members=members,
                    repair=True,
                )
            )
            continue
        renamed = kinds.get("attribute_mismatch")
        mismatch = kinds.get("membership_mismatch")
        missing_ids = set(mismatch.detail.get("missing_members", [])) if mismatch else set()
        if mismatch and len(missing_ids) == 20:  # the detail is capped: recompute in full
            missing_ids = set(group.members.values())
        add = tuple(sorted(u for u, s in group.members.items() if s in missing_ids))
        group_changes.append(
            GroupChange(
                okta_id,
                group.display_name,
                group.scim_id,
                previous_name=str(renamed.actual) if renamed else None,
                add=add,
                repair=True,
            )
        )
    return user_changes, group_changes
