"""Drift: the downstream system no longer matching what syncd applied, or what Okta says.

:func:`detect_drift` reads every downstream user and group (paged, following the server's own
page size) and compares each managed resource with what syncd last applied (the checkpoint), and
every other active user with Okta's wishes. The kinds of finding:

* ``role_mismatch``, ``active_mismatch``: the role attribute, or ``active``, differs;
* ``attribute_mismatch``: ``userName``, a name, ``displayName`` or the email differs (a group:
  its ``displayName``);
* ``missing``: a managed, active person, or a managed group, was deleted downstream (an inactive
  person deleted downstream is not drift: WorkOS deletes inactive users by default);
* ``unmanaged_active``: an active downstream user that syncd does not manage and Okta does not
  want active (not assigned, or assigned but suspended or without a role): someone added by
  hand or by another tool;
* ``membership_mismatch``: a member syncd added to a managed group is gone, or (in a group
  syncd created) someone else's member was added (only where the server returns members).

Each finding is logged ``drift.detected``; each check ends with ``drift.summary``.
:func:`repairs` turns findings on managed resources into ordinary plan changes that put them
back (``sync.drift_action = "repair"``), but only for resources whose checkpoint is in step with
Okta: a person whose change is held by a guard, failed, or is pending is left alone, so a
repair never undoes what Okta wants. Unmanaged users and extra members are only reported.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from syncd.interfaces import DriftSource
from syncd.log import get_logger
from syncd.plan import GroupChange, UserChange, comparable, desired_resource
from syncd.roles import DesiredState, RoleCatalog
from syncd.store import GroupRecord, UserRecord, quarantined

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
    detail: dict[str, Any] = dataclasses.field(default_factory=dict)  # logged
    gone_members: tuple[str, ...] = ()  # SCIM ids syncd added that are gone (not logged)


def _same(key: str, a: Any, b: Any) -> bool:
    if key in CASELESS and isinstance(a, str) and isinstance(b, str):
        return a.lower() == b.lower()
    return bool(a == b)


async def detect_drift(
    source: DriftSource,
    *,
    users: Mapping[str, UserRecord],
    groups: Mapping[str, GroupRecord],
    desired: DesiredState | None,
    role_attribute: str,
    catalog: RoleCatalog,
) -> list[Finding]:
    """Compare downstream with the checkpoint (and, for unmanaged users, with Okta)."""
    findings: list[Finding] = []
    downstream = {str(u.get("id")): u async for u in source.list_users(page_size=PAGE)}
    for record in sorted(users.values(), key=lambda r: r.user_name):
        if record.scim_id and record.applied is not None:
            findings.extend(
                _user_drift(record, downstream.get(record.scim_id), role_attribute, catalog)
            )
    if desired is not None:
        managed = {r.scim_id for r in users.values() if r.scim_id}
        findings.extend(_unmanaged(downstream, managed, desired))
    if groups:
        findings.extend(await _group_drift(source, groups))
    return findings


def _user_drift(
    record: UserRecord, actual: dict[str, Any] | None, role_attribute: str, catalog: RoleCatalog
) -> list[Finding]:
    def finding(kind: str, field: str | None, expected: Any, found: Any) -> Finding:
        return Finding(
            kind, "user", record.user_name, record.okta_id, record.scim_id, field, expected, found
        )

    if actual is None:
        return [finding("missing", None, "present", "absent")] if record.active else []
    want = comparable(record.applied, role_attribute)
    have = comparable(actual, role_attribute)
    out: list[Finding] = []
    for key, expected in want.items():
        if _same(key, expected, have.get(key)):
            continue
        if key == "role":
            out.append(
                finding(
                    "role_mismatch",
                    role_attribute,
                    catalog.name(expected),
                    catalog.name(have.get(key)),
                )
            )
        elif key == "active":
            out.append(finding("active_mismatch", "active", expected, have.get(key)))
        else:
            out.append(
                finding("attribute_mismatch", FIELD_NAMES.get(key, key), expected, have.get(key))
            )
    return out


def _unmanaged(
    downstream: Mapping[str, dict[str, Any]], managed: set[str], desired: DesiredState
) -> list[Finding]:
    """Active downstream users syncd does not manage, whom Okta does not want active."""
    # Wanted active (a create will adopt them), or to be left exactly as they are.
    keep = {k for k, u in desired.users.items() if u.active} | desired.untouchable
    keep_logins = {desired.users[k].user_name.lower() for k in keep if k in desired.users}
    # People with an invalid role are not in desired.users, only in desired.invalid.
    keep_logins |= {i.user_name.lower() for i in desired.invalid.values()}
    assigned = {u.user_name.lower(): u for u in desired.users.values()}
    out: list[Finding] = []
    for scim_id, resource in sorted(downstream.items(), key=lambda i: str(i[1].get("userName"))):
        if scim_id in managed or resource.get("active") is not True:
            continue
        user_name = str(resource.get("userName", ""))
        if user_name.lower() in keep_logins or resource.get("externalId") in keep:
            continue
        person = assigned.get(user_name.lower())
        if person is None:
            expected = "not provisioned (not assigned in Okta)"
        else:
            expected = f"not active (Okta: {person.status if person.role_id else 'no role'})"
        out.append(
            Finding("unmanaged_active", "user", user_name, None, scim_id, "active", expected, True)
        )
    return out


async def _group_drift(source: DriftSource, groups: Mapping[str, GroupRecord]) -> list[Finding]:
    findings: list[Finding] = []
    downstream = {str(g.get("id")): g async for g in source.list_groups(page_size=PAGE)}
    for record in sorted(groups.values(), key=lambda g: g.display_name):
        if not record.scim_id:
            continue
        name = record.display_name
        actual = downstream.get(record.scim_id)
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
        gone = sorted(want - have)
        # Members others put in a group syncd adopted were there first: not drift.
        extra = sorted(have - want) if record.origin == "created" else []
        if gone or extra:
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
                    {"missing_members": gone[:20], "extra_members": extra[:20]},
                    tuple(gone),
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


def in_step(record: UserRecord, desired: DesiredState, role_attribute: str) -> bool:
    """True when the checkpoint says what Okta wants: nothing is held, failed or pending."""
    if record.okta_id in desired.untouchable:
        return False
    user = desired.users.get(record.okta_id)
    if record.applied is None or not record.applied.get("userName"):
        return False  # syncd does not know what it applied: nothing to put back
    if user is not None and user.active:
        wanted = comparable(desired_resource(user, role_attribute), role_attribute)
        return record.active and comparable(record.applied, role_attribute) == wanted
    return not record.active


def repairs(
    findings: list[Finding],
    users: Mapping[str, UserRecord],
    groups: Mapping[str, GroupRecord],
    *,
    desired: DesiredState,
    pushed: Mapping[str, str],
    members: Mapping[str, frozenset[str]],
    downstream: Mapping[str, str],
    role_attribute: str,
    now: str,
    catalog: RoleCatalog | None = None,
) -> tuple[list[UserChange], list[GroupChange]]:
    """The changes that put managed resources back as syncd applied them.

    Only people whose checkpoint is in step with Okta, and groups still pushed under the same
    name, are repaired; a quarantined resource waits for its next try; a group gets back only
    members Okta still puts in it who are active downstream. Anything else is a change the next
    plan makes (or a guard holds).
    """
    user_fields: dict[str, list[str]] = {}
    found_active: dict[str, bool] = {}
    found_role: dict[str, str | None] = {}
    missing_users: set[str] = set()
    group_findings: dict[str, list[Finding]] = {}
    for f in findings:
        if f.okta_id is None:
            continue  # unmanaged: only ever reported
        if f.resource_type == "user":
            record = users.get(f.okta_id)
            if record is None or quarantined(record.retry_after, now):
                continue
            if not in_step(record, desired, role_attribute):
                continue
            if f.kind == "missing":
                missing_users.add(f.okta_id)
            else:
                user_fields.setdefault(f.okta_id, []).append(f.field or f.kind)
                if f.kind == "active_mismatch":
                    found_active[f.okta_id] = f.actual is True
                elif f.kind == "role_mismatch" and catalog is not None:
                    # The role found downstream (an id; kept as found when not in the catalog)
                    # is the "before" of the repair, in role.changed and in the audit trail.
                    raw = None if f.actual is None else str(f.actual)
                    found_role[f.okta_id] = catalog.resolve(raw) or raw
        elif (
            f.okta_id in groups
            and pushed.get(f.okta_id) == groups[f.okta_id].display_name
            and not quarantined(groups[f.okta_id].retry_after, now)
        ):
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
                found_role.get(okta_id, record.role),
                ("missing",) if missing else tuple(user_fields[okta_id]),
                record.applied,
                lookup_first=missing,
                repair=True,
                previous_active=None if missing else found_active.get(okta_id, record.active),
            )
        )

    group_changes: list[GroupChange] = []
    for okta_id, found in sorted(group_findings.items()):
        group = groups[okta_id]
        kinds = {f.kind: f for f in found}
        wanted = {u for u in group.members if u in members.get(okta_id, ()) and u in downstream}
        if "missing" in kinds:
            again = tuple(sorted(wanted))
            group_changes.append(
                GroupChange(
                    okta_id,
                    group.display_name,
                    None,
                    create=True,
                    add=again,
                    members=again,
                    repair=True,
                    origin=group.origin,
                )
            )
            continue
        renamed = kinds.get("attribute_mismatch")
        mismatch = kinds.get("membership_mismatch")
        gone = set(mismatch.gone_members) if mismatch else set()
        add = tuple(sorted(u for u, s in group.members.items() if s in gone and u in wanted))
        if renamed or add:
            group_changes.append(
                GroupChange(
                    okta_id,
                    group.display_name,
                    group.scim_id,
                    previous_name=str(renamed.actual) if renamed else None,
                    add=add,
                    repair=True,
                    origin=group.origin,
                )
            )
    return user_changes, group_changes
