"""Safety guards: what a cycle must not do without a person looking first.

A compliance sync is trusted only if it cannot silently do damage. After the plan is made and
before anything is applied, :func:`guard_users` and :func:`guard_groups` take out the changes
that look like a bad read or a mistake, and say why (``guard.tripped``; ``run --once`` exits 3):

* ``empty_read``: Okta listed nobody assigned to the app (or no pushed group at all) while syncd
  manages active people (or groups). That is far more likely a broken read than "everyone
  left": no deactivation (no group retirement) is made.
* ``deactivation_limit``: more deactivations than ``sync.max_deactivations`` (a number, or a
  share of the managed active people). Creates and updates go ahead; every deactivation is
  held until ``syncd run --once --allow-deactivations N`` releases them once.
* ``admin_lockout``: the plan would leave no active person with an admin role downstream; the
  demotions and deactivations that cause it are refused (the Okta setup guide's warning).

Quarantine is applied here too: a person or group that failed ``sync.quarantine_after`` cycles
in a row is not retried before its ``retry_after`` time (1 h, 2 h, 4 h ... up to 24 h).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence

from syncd.config import Settings
from syncd.directory import Directory
from syncd.plan import GroupChange, Held, Plan, Skipped, Trip, UserChange
from syncd.roles import RoleCatalog
from syncd.store import GroupRecord, UserRecord, now_iso, quarantined


def guard_users(
    plan: Plan,
    *,
    directory: Directory,
    records: Mapping[str, UserRecord],
    settings: Settings,
    allow_deactivations: int | None = None,
    now: str | None = None,
) -> tuple[Plan, list[str]]:
    """Take out the people's changes the guards hold. Returns the plan and what was released."""
    now = now or now_iso()
    changes: list[UserChange] = []
    skipped = list(plan.skipped)
    for change in plan.changes:
        record = records.get(change.okta_id)
        if record is not None and quarantined(record.retry_after, now):
            skipped.append(
                Skipped(
                    change.okta_id,
                    change.user_name,
                    "quarantined",
                    f"{record.failures} failures in a row; next try after {record.retry_after}",
                )
            )
        else:
            changes.append(change)

    held: list[Held] = list(plan.held)
    trips: list[Trip] = list(plan.trips)
    released: list[str] = []
    deactivations = [c for c in changes if c.action == "deactivate"]
    managed_active = sum(1 for r in records.values() if r.active and r.scim_id)
    limit = settings.sync.deactivation_limit(managed_active)
    trip: Trip | None = None
    if deactivations and not directory.people and managed_active:
        trip = Trip(
            "empty_read",
            f"Okta listed nobody assigned to the app while {managed_active} people are active "
            "downstream: treated as a failed read, not as everyone leaving",
        )
    elif len(deactivations) > limit:
        missing = sum(
            1
            for okta_id, r in records.items()
            if r.active and r.scim_id and okta_id not in directory.people
        )
        trip = Trip(
            "deactivation_limit",
            f"{len(deactivations)} deactivations planned ({missing} of {managed_active} active "
            f"people missing from Okta's app assignments), more than sync.max_deactivations "
            f"({settings.sync.max_deactivations}, {limit} now)",
        )
    if trip is not None:
        if allow_deactivations is not None and len(deactivations) <= allow_deactivations:
            released.append(f"{trip.guard}: {len(deactivations)} deactivations released")
        else:
            if allow_deactivations is not None:
                trip = dataclasses.replace(
                    trip,
                    detail=trip.detail + f"; --allow-deactivations {allow_deactivations} is fewer",
                )
            trips.append(
                dataclasses.replace(
                    trip,
                    detail=trip.detail
                    + f"; held until `syncd run --once --allow-deactivations {len(deactivations)}`",
                )
            )
            held.extend(Held(c, trip.guard) for c in deactivations)
            changes = [c for c in changes if c.action != "deactivate"]

    changes, lockout = _admin_lockout(changes, records, settings)
    if lockout:
        names = ", ".join(
            f"{'deactivation' if c.action == 'deactivate' else 'demotion'} of {c.user_name}"
            for c in lockout
        )
        trips.append(
            Trip("admin_lockout", f"the plan would leave no active admin downstream: held {names}")
        )
        held.extend(Held(c, "admin_lockout") for c in lockout)

    counts = dict(plan.counts)
    for action in ("create", "update", "reactivate", "deactivate"):
        counts[action] = sum(1 for c in changes if c.action == action)
    counts["skipped"] = len(skipped)
    guarded = dataclasses.replace(
        plan,
        changes=tuple(changes),
        skipped=tuple(skipped),
        held=tuple(held),
        trips=tuple(trips),
        counts=counts,
    )
    return guarded, released


def _admin_lockout(
    changes: list[UserChange], records: Mapping[str, UserRecord], settings: Settings
) -> tuple[list[UserChange], list[UserChange]]:
    admins = RoleCatalog(settings.roles.catalog).ids(settings.roles.admin)
    if not admins:
        return changes, []
    current = {
        okta_id for okta_id, r in records.items() if r.active and r.scim_id and r.role in admins
    }
    if not current:
        return changes, []
    after = set(current)
    removing: list[UserChange] = []
    for change in changes:
        if change.action == "deactivate":
            if change.okta_id in after:
                after.discard(change.okta_id)
                removing.append(change)
        elif change.role in admins:
            after.add(change.okta_id)
        elif change.okta_id in after:
            after.discard(change.okta_id)
            removing.append(change)
    if after:
        return changes, []
    refused = {id(c) for c in removing}
    return [c for c in changes if id(c) not in refused], removing


def guard_groups(
    changes: Sequence[GroupChange],
    *,
    directory: Directory,
    records: Mapping[str, GroupRecord],
    settings: Settings,
    now: str | None = None,
) -> tuple[list[GroupChange], list[Held], list[Trip], list[Skipped]]:
    """The same for pushed groups: quarantine, and no retirement after an empty group read."""
    now = now or now_iso()
    kept: list[GroupChange] = []
    skipped: list[Skipped] = []
    for change in changes:
        record = records.get(change.okta_id)
        if record is not None and quarantined(record.retry_after, now):
            skipped.append(
                Skipped(
                    change.okta_id,
                    change.name,
                    "quarantined",
                    f"group: {record.failures} failures in a row; next try after "
                    f"{record.retry_after}",
                )
            )
        else:
            kept.append(change)
    retiring = [c for c in kept if c.retire is not None]
    if (
        retiring
        and settings.scim.push_groups
        and not directory.pushed
        and any(r.scim_id for r in records.values())
    ):
        trip = Trip(
            "empty_read",
            "no Okta group matched scim.push_groups while syncd manages pushed groups: treated "
            "as a failed read; no group is unmanaged or deleted",
        )
        return [c for c in kept if c.retire is None], _held(retiring, trip.guard), [trip], skipped
    return kept, [], [], skipped


def _held(changes: Iterable[GroupChange], guard: str) -> list[Held]:
    return [Held(c, guard) for c in changes]


def admin_removals(
    changes: Sequence[UserChange], admin_roles: frozenset[str]
) -> tuple[list[UserChange], list[UserChange]]:
    """Split off the changes that take an admin role away (demotions, deactivations of admins).

    The engine applies them last, and only if an admin is still left once the rest succeeded:
    a promotion that fails must not let the last admins go.
    """
    removing = [
        c
        for c in changes
        if c.previous_role in admin_roles
        and (c.action == "deactivate" or (c.action == "update" and c.role not in admin_roles))
    ]
    ids = {id(c) for c in removing}
    return [c for c in changes if id(c) not in ids], removing
