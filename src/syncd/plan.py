"""Step 3, plan: the difference between what Okta wants and what syncd last applied.

:func:`make_plan` compares each person's desired SCIM resource with the checkpoint's record of
what syncd itself last applied (never with what a server echoes back) and returns a
:class:`Plan`: a plain, immutable value. ``syncd plan`` prints it; ``syncd run`` applies it.
A person whose desired resource equals the last applied one is not in the plan at all, and
costs no request.

Pushed groups are planned the same way (:func:`plan_groups`): their membership is diffed
against the members syncd itself added (one checkpoint row per member), never against a
server's ``GET``, which some servers cap or leave empty.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from syncd.directory import Directory
from syncd.roles import DesiredState, DesiredUser, RoleCatalog
from syncd.scim.resources import user_resource
from syncd.store import GroupRecord, UserRecord

Action = Literal["create", "update", "deactivate", "reactivate"]
ACTIONS: tuple[Action, ...] = ("create", "update", "reactivate", "deactivate")


@dataclass(frozen=True, slots=True)
class UserChange:
    """One write to make downstream for one person."""

    action: Action
    okta_id: str
    user_name: str
    scim_id: str | None
    role: str | None  # role id after the change
    previous_role: str | None  # role id syncd last applied
    changed_fields: tuple[str, ...]
    resource: dict[str, Any] | None = None  # the resource as it will be after the change
    lookup_first: bool = False  # a create may already have happened: look it up first
    repair: bool = False  # puts back a resource that drifted downstream
    previous_active: bool | None = None  # a repair: the active flag found downstream


@dataclass(frozen=True, slots=True)
class Skipped:
    """A person left exactly as they are, and why."""

    okta_id: str
    user_name: str
    reason: str  # "invalid_role" or "unreadable_record"
    detail: str


@dataclass(frozen=True, slots=True)
class GroupChange:
    """What to do to one pushed (or no longer pushed) group."""

    okta_id: str
    name: str  # the Okta group's name: the displayName to have downstream
    scim_id: str | None
    create: bool = False
    previous_name: str | None = None  # set for a rename
    add: tuple[str, ...] = ()  # Okta user ids to add
    remove: tuple[tuple[str, str], ...] = ()  # (Okta user id, the SCIM id syncd added) to remove
    members: tuple[str, ...] = ()  # every Okta user id that should be a member (for a re-create)
    retire: Literal["delete", "unmanage"] | None = None
    reason: str | None = None  # for retire: "unpushed" or "deleted_in_okta"
    repair: bool = False  # puts back a group that drifted downstream
    origin: str = "created"  # "adopted": it existed downstream before syncd (never deleted)


@dataclass(frozen=True, slots=True)
class Trip:
    """A safety guard that held changes back in this cycle."""

    guard: str  # "empty_read", "deactivation_limit" or "admin_lockout"
    detail: str


@dataclass(frozen=True, slots=True)
class Held:
    """A change a safety guard held back."""

    change: UserChange | GroupChange
    guard: str


@dataclass(frozen=True)
class Plan:
    """Everything a cycle would write, and what it leaves alone."""

    changes: tuple[UserChange, ...]
    unchanged: int
    skipped: tuple[Skipped, ...] = ()
    no_role: tuple[str, ...] = ()  # userNames of assigned people with no role (not provisioned)
    counts: Mapping[str, int] = field(default_factory=dict)
    groups: tuple[GroupChange, ...] = ()
    held: tuple[Held, ...] = ()
    trips: tuple[Trip, ...] = ()

    def to_dict(self, catalog: RoleCatalog | None = None) -> dict[str, Any]:
        """A JSON-ready view (role names alongside ids when a catalog is given)."""

        def name(role: str | None) -> str | None:
            return catalog.name(role) if catalog else role

        return {
            "changes": [
                {
                    "action": c.action,
                    "okta_id": c.okta_id,
                    "user_name": c.user_name,
                    "scim_id": c.scim_id,
                    "role": name(c.role),
                    "previous_role": name(c.previous_role),
                    "role_id": c.role,
                    "previous_role_id": c.previous_role,
                    "changed_fields": list(c.changed_fields),
                }
                for c in self.changes
            ],
            "skipped": [
                {
                    "okta_id": s.okta_id,
                    "user_name": s.user_name,
                    "reason": s.reason,
                    "detail": s.detail,
                }
                for s in self.skipped
            ],
            "no_role": list(self.no_role),
            "groups": [
                {
                    "okta_id": g.okta_id,
                    "name": g.name,
                    "scim_id": g.scim_id,
                    "create": g.create,
                    "previous_name": g.previous_name,
                    "add": list(g.add),
                    "remove": [user for user, _ in g.remove],
                    "retire": g.retire,
                    "reason": g.reason,
                }
                for g in self.groups
            ],
            "held": [
                {
                    "guard": h.guard,
                    "action": h.change.action
                    if isinstance(h.change, UserChange)
                    else f"group {h.change.retire}",
                    "okta_id": h.change.okta_id,
                    "name": h.change.user_name
                    if isinstance(h.change, UserChange)
                    else h.change.name,
                }
                for h in self.held
            ],
            "guards": [{"guard": t.guard, "detail": t.detail} for t in self.trips],
            "totals": {**self.counts, **group_totals(self.groups), "held": len(self.held)},
        }


def desired_resource(user: DesiredUser, role_attribute: str) -> dict[str, Any]:
    """The SCIM User for a desired person, as it should be while they are active."""
    return user_resource(
        okta_id=user.okta_id,
        user_name=user.user_name,
        given_name=user.given_name,
        family_name=user.family_name,
        display_name=user.display_name,
        email=user.email,
        active=True,
        role_attribute=role_attribute,
        role_id=user.role_id,
    )


def comparable(resource: Mapping[str, Any] | None, role_attribute: str) -> dict[str, Any]:
    """The fields syncd manages, flattened, for comparing two versions of a resource."""
    if not resource:
        return {}
    raw_name = resource.get("name")
    name: dict[str, Any] = raw_name if isinstance(raw_name, dict) else {}
    raw_emails = resource.get("emails")
    emails: list[Any] = raw_emails if isinstance(raw_emails, list) else []
    primary: dict[str, Any] = next(
        (e for e in emails if isinstance(e, dict) and e.get("primary")),
        emails[0] if emails and isinstance(emails[0], dict) else {},
    )
    user_name = resource.get("userName")
    return {
        "userName": user_name,
        "name.givenName": name.get("givenName"),
        "name.familyName": name.get("familyName"),
        "displayName": resource.get("displayName"),
        "email": primary.get("value"),
        "active": resource.get("active"),
        "role": resource.get(role_attribute),
    }


def changed_fields(
    before: Mapping[str, Any] | None, after: Mapping[str, Any], role_attribute: str
) -> tuple[str, ...]:
    """The managed fields that differ between two versions of a resource."""
    old = comparable(before, role_attribute)
    new = comparable(after, role_attribute)
    return tuple(key for key, value in new.items() if old.get(key) != value)


def make_plan(
    desired: DesiredState, records: Mapping[str, UserRecord], role_attribute: str
) -> Plan:
    """Diff the desired state against the checkpoint. Pure: no I/O."""
    changes: list[UserChange] = []
    skipped: list[Skipped] = []
    no_role: list[str] = []
    unchanged = 0

    for okta_id in sorted(desired.untouchable):
        invalid = desired.invalid.get(okta_id)
        record = records.get(okta_id)
        if invalid is not None:
            skipped.append(
                Skipped(
                    okta_id,
                    invalid.user_name,
                    "invalid_role",
                    f"{invalid.value!r} ({invalid.source})",
                )
            )
        else:
            user = desired.users.get(okta_id)
            user_name = user.user_name if user else record.user_name if record else okta_id
            why = desired.unreadable.get(okta_id, "malformed Okta record")
            skipped.append(Skipped(okta_id, user_name, "unreadable_record", why))

    for okta_id in sorted(set(desired.users) | set(records)):
        if okta_id in desired.untouchable:
            continue
        user = desired.users.get(okta_id)
        record = records.get(okta_id)
        if user is not None and user.active:
            resource = desired_resource(user, role_attribute)
            if record is None or record.scim_id is None:
                changes.append(
                    UserChange(
                        "create",
                        okta_id,
                        user.user_name,
                        None,
                        user.role_id,
                        record.role if record else None,
                        changed_fields(None, resource, role_attribute),
                        resource,
                        lookup_first=record is not None and record.intent == "create",
                    )
                )
            elif not record.active:
                changes.append(
                    UserChange(
                        "reactivate",
                        okta_id,
                        user.user_name,
                        record.scim_id,
                        user.role_id,
                        record.role,
                        changed_fields(record.applied, resource, role_attribute),
                        resource,
                    )
                )
            elif comparable(record.applied, role_attribute) != comparable(resource, role_attribute):
                changes.append(
                    UserChange(
                        "update",
                        okta_id,
                        user.user_name,
                        record.scim_id,
                        user.role_id,
                        record.role,
                        changed_fields(record.applied, resource, role_attribute),
                        resource,
                    )
                )
            else:
                unchanged += 1
            continue
        # Not wanted active: unassigned, deleted, suspended, deprovisioned, staged or no role.
        if user is not None and user.role_id is None and not user.staged:
            no_role.append(user.user_name)
        if record is not None and record.scim_id is not None and record.active:
            changes.append(
                UserChange(
                    "deactivate",
                    okta_id,
                    user.user_name if user else record.user_name,
                    record.scim_id,
                    record.role,
                    record.role,
                    ("active",),
                    {**(record.applied or {}), "active": False},
                    # A re-create was interrupted: the account may be another one. Look it up.
                    lookup_first=record.intent == "create",
                )
            )
        elif record is not None and record.intent == "create":
            # A create or re-create was interrupted (a crash after the POST?) and the person left
            # meanwhile: find what may have been created, and deactivate it. (A re-create keeps
            # the old, gone, id recorded: it is tried first, then the userName is looked up.)
            changes.append(
                UserChange(
                    "deactivate",
                    okta_id,
                    record.user_name,
                    record.scim_id,
                    record.role,
                    record.role,
                    ("active",),
                    None,  # what was created is not known: nothing is recorded as applied
                    lookup_first=True,
                )
            )
        else:
            unchanged += 1

    counts = Counter(c.action for c in changes)
    totals: dict[str, int] = {action: counts.get(action, 0) for action in ACTIONS}
    totals["unchanged"] = unchanged
    totals["skipped"] = len(skipped)
    return Plan(tuple(changes), unchanged, tuple(skipped), tuple(no_role), totals)


def group_totals(changes: tuple[GroupChange, ...]) -> dict[str, int]:
    return {
        "groups_create": sum(1 for g in changes if g.create),
        "groups_rename": sum(1 for g in changes if g.previous_name is not None),
        "members_add": sum(len(g.add) for g in changes),
        "members_remove": sum(len(g.remove) for g in changes),
        "groups_delete": sum(1 for g in changes if g.retire == "delete"),
        "groups_unmanage": sum(1 for g in changes if g.retire == "unmanage"),
    }


def predicted_downstream(
    desired: DesiredState, records: Mapping[str, UserRecord]
) -> dict[str, str]:
    """Who will be active downstream once the people of a plan are applied: okta id -> SCIM id.

    People about to be created map to "" (their SCIM id is not known yet).
    """
    out: dict[str, str] = {}
    for okta_id, user in desired.users.items():
        if user.active and okta_id not in desired.untouchable:
            record = records.get(okta_id)
            out[okta_id] = (record.scim_id if record else None) or ""
    for okta_id in desired.untouchable:
        record = records.get(okta_id)
        if record is not None and record.active and record.scim_id:
            out[okta_id] = record.scim_id
    return out


def actual_downstream(records: Mapping[str, UserRecord]) -> dict[str, str]:
    """Who is active downstream according to the checkpoint: okta id -> SCIM id."""
    return {okta_id: r.scim_id for okta_id, r in records.items() if r.active and r.scim_id}


def plan_groups(
    directory: Directory,
    desired: DesiredState,
    downstream: Mapping[str, str],
    records: Mapping[str, GroupRecord],
    on_unpushed: Literal["keep", "delete"],
) -> tuple[GroupChange, ...]:
    """Diff the pushed groups against what syncd last applied to them.

    ``downstream`` maps each person who is (or, for a plan, will be) active downstream to their
    SCIM id ("" when it is not known yet). A pushed group's members are its Okta members found
    in ``downstream``; people left untouched (invalid role) keep their recorded membership.
    """
    changes: list[GroupChange] = []
    for okta_id, name in sorted(directory.pushed.items(), key=lambda item: item[1]):
        record = records.get(okta_id)
        # A create (or re-create) cut short: create it again, looking it up first, with
        # every member; what was recorded for the old group no longer holds.
        create = record is None or record.scim_id is None or record.intent == "create"
        recorded = record.members if record is not None and not create else {}
        wanted = {
            user: downstream[user]
            for user in directory.members.get(okta_id, frozenset())
            if user in downstream and user not in desired.untouchable
        }
        wanted.update({u: s for u, s in recorded.items() if u in desired.untouchable})
        stale = [u for u, s in recorded.items() if u in wanted and wanted[u] and wanted[u] != s]
        add = sorted(set(wanted) - set(recorded) | set(stale))
        remove = sorted((u, s) for u, s in recorded.items() if u not in wanted or u in stale)
        previous = (
            record.display_name if record and not create and record.display_name != name else None
        )
        if create or previous is not None or add or remove:
            changes.append(
                GroupChange(
                    okta_id=okta_id,
                    name=name,
                    scim_id=None if create or record is None else record.scim_id,
                    create=create,
                    previous_name=previous,
                    add=tuple(add),
                    remove=tuple(remove),
                    members=tuple(sorted(wanted)),
                )
            )
    for okta_id, record in sorted(records.items()):
        if okta_id in directory.pushed or okta_id in directory.unreadable_groups:
            continue  # still pushed, or its Okta record was unreadable: not a retirement
        gone = directory.group_ids is not None and okta_id not in directory.group_ids
        changes.append(
            GroupChange(
                okta_id=okta_id,
                name=record.display_name,
                scim_id=record.scim_id,
                retire="delete"
                if on_unpushed == "delete" and record.origin == "created"
                else "unmanage",
                reason="deleted_in_okta" if gone else "unpushed",
                origin=record.origin,
            )
        )
    return tuple(changes)


def format_plan(plan: Plan, catalog: RoleCatalog) -> str:
    """A readable table of the changes, then the totals."""
    rows = [("ACTION", "PERSON", "ROLE", "FIELDS")]
    for c in plan.changes:
        before, after = catalog.name(c.previous_role) or "-", catalog.name(c.role) or "-"
        role = after if c.action == "create" or before == after else f"{before} -> {after}"
        rows.append((c.action, c.user_name, role, ", ".join(c.changed_fields)))
    for s in plan.skipped:
        rows.append(("skip", s.user_name, "-", f"{s.reason}: {s.detail}"))
    for h in plan.held:
        if isinstance(h.change, UserChange):
            c = h.change
            role = catalog.name(c.previous_role) or "-"
            if c.action == "update":
                role = f"{role} -> {catalog.name(c.role) or '-'}"
            rows.append((f"held {c.action}", c.user_name, role, f"guard {h.guard}"))
        else:
            rows.append((f"held group {h.change.retire}", h.change.name, "-", f"guard {h.guard}"))
    for g in plan.groups:
        if g.retire:
            verb = "delete" if g.retire == "delete" else "stop managing"
            rows.append((f"group {g.retire}", g.name, "-", f"{verb} ({g.reason})"))
            continue
        if g.create:
            rows.append(("group create", g.name, "-", f"{len(g.add)} members"))
        elif g.previous_name is not None:
            rows.append(
                ("group rename", g.name, "-", f"displayName: {g.previous_name} -> {g.name}")
            )
        if not g.create and (g.add or g.remove):
            rows.append(("group members", g.name, "-", f"+{len(g.add)} -{len(g.remove)}"))
    lines: list[str] = []
    if len(rows) > 1:
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        for r in rows:
            lines.append("  ".join(r[i].ljust(widths[i]) for i in range(3)) + "  " + r[3])
    else:
        lines.append("No changes: downstream already matches Okta.")
    t = plan.counts
    lines.append("")
    lines.append(
        "Plan: "
        + ", ".join(f"{t.get(a, 0)} to {a}" for a in ACTIONS)
        + f"; {t.get('unchanged', 0)} unchanged, {t.get('skipped', 0)} skipped"
        + (f"; {len(plan.no_role)} assigned with no role" if plan.no_role else "")
        + "."
    )
    for trip in plan.trips:
        lines.append(f"Guard {trip.guard}: {trip.detail}")
    if plan.groups:
        gt = group_totals(plan.groups)
        lines.append(
            f"Groups: {gt['groups_create']} to create, {gt['groups_rename']} to rename, "
            f"{gt['members_add']} members to add, {gt['members_remove']} to remove, "
            f"{gt['groups_delete']} to delete, {gt['groups_unmanage']} to stop managing."
        )
    return "\n".join(lines)
