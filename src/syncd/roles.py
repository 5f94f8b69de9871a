"""Step 2, resolve roles: who should exist downstream, active or not, and with which role.

The rules (the README's "Who gets what"):

1. In scope: every person with an assignment to the app.
2. An individual assignment (``scope: USER``) that sets the role attribute: that value
   (Okta's "overrides group").
3. Otherwise, among the app's group assignments that set the attribute, for the groups the
   person belongs to, the lowest ``priority`` wins; ties go to the lowest group id. This is
   computed from the group assignments and memberships, never from the app user's copy.
4. Otherwise ``roles.default``; when that is empty the person has no role and gets no access.
5. A value that is neither a role id nor a role name of ``roles.catalog`` is invalid: that
   person is left exactly as they are downstream.

A person is active when Okta's status is ACTIVE, PROVISIONED, RECOVERY, PASSWORD_EXPIRED or
LOCKED_OUT and they have a role. STAGED people are not created yet.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from syncd.directory import Directory, GroupGrant, has_value

ACTIVE_STATUSES = frozenset({"ACTIVE", "PROVISIONED", "RECOVERY", "PASSWORD_EXPIRED", "LOCKED_OUT"})
NO_PRIORITY = 1 << 31


class RoleCatalog:
    """The enumerated roles: display name <-> role id."""

    def __init__(self, catalog: Mapping[str, str]) -> None:
        self.by_name = {name: role_id for name, role_id in catalog.items()}
        self.by_id = {role_id: name for name, role_id in catalog.items()}

    def resolve(self, value: Any) -> str | None:
        """The role id for a role id or a role name; None if it is neither."""
        if isinstance(value, list):
            values = [v for v in value if has_value(v)]
            if len(values) != 1:
                return None
            value = values[0]
        if not isinstance(value, str):
            return None
        text: str = value.strip()
        if text in self.by_id:
            return text
        return self.by_name.get(text)

    def name(self, role_id: str | None) -> str | None:
        """The display name of a role id (the id itself if unknown; None for no role)."""
        if role_id is None:
            return None
        return self.by_id.get(role_id, role_id)

    def ids(self, roles: Iterable[str]) -> frozenset[str]:
        """Role ids for a list of names or ids (unknown entries are dropped)."""
        return frozenset(r for r in (self.resolve(x) for x in roles) if r is not None)


@dataclass(frozen=True, slots=True)
class DesiredUser:
    """What one person should look like downstream."""

    okta_id: str
    user_name: str
    given_name: str | None
    family_name: str | None
    display_name: str | None
    email: str | None
    status: str
    role_id: str | None
    role_source: str  # "user", "group:<id>", "default" or "none"

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_STATUSES and self.role_id is not None

    @property
    def staged(self) -> bool:
        return self.status == "STAGED"


@dataclass(frozen=True, slots=True)
class InvalidRole:
    """A person whose role value is not in the catalog: left untouched."""

    okta_id: str
    user_name: str
    value: str
    source: str


@dataclass
class DesiredState:
    """The outcome of the role rules for every assigned person."""

    users: dict[str, DesiredUser]
    invalid: dict[str, InvalidRole]
    untouchable: set[str]  # okta ids to leave as they are (invalid role, unreadable record)
    unreadable: dict[str, str] = field(default_factory=dict)  # okta id -> why (not a role issue)


def _display(value: Any) -> str:
    return value if isinstance(value, str) else repr(value)


def resolve(directory: Directory, catalog: RoleCatalog, default_role: str = "") -> DesiredState:
    """Apply the role rules to a :class:`~syncd.directory.Directory`."""
    default_id = catalog.resolve(default_role) if default_role else None

    # Rule 3: walk the role-setting grants from the winning end; the first grant that holds a
    # person decides for them. O(total memberships).
    ordered: list[GroupGrant] = sorted(
        (g for g in directory.grants if has_value(g.role_value)),
        key=lambda g: (g.priority if g.priority is not None else NO_PRIORITY, g.group_id),
    )
    group_role: dict[str, GroupGrant] = {}
    for grant in ordered:
        for member in directory.members.get(grant.group_id, ()):
            group_role.setdefault(member, grant)

    users: dict[str, DesiredUser] = {}
    invalid: dict[str, InvalidRole] = {}
    for person in directory.people.values():
        raw: Any = None
        source = "none"
        if person.scope == "USER" and has_value(person.own_role):
            raw, source = person.own_role, "user"
        elif person.okta_id in group_role:
            grant = group_role[person.okta_id]
            raw, source = grant.role_value, f"group:{grant.group_id}"
        role_id: str | None = None
        if raw is not None:
            role_id = catalog.resolve(raw)
            if role_id is None:
                invalid[person.okta_id] = InvalidRole(
                    person.okta_id, person.login, _display(raw), source
                )
                continue
        elif default_id is not None:
            role_id, source = default_id, "default"
        display = person.display_name or " ".join(
            part for part in (person.first_name, person.last_name) if part
        )
        users[person.okta_id] = DesiredUser(
            okta_id=person.okta_id,
            user_name=person.login,
            given_name=person.first_name,
            family_name=person.last_name,
            display_name=display or None,
            email=person.email,
            status=person.status.upper(),
            role_id=role_id,
            role_source=source,
        )
    unreadable = {okta_id: "malformed Okta record" for okta_id in directory.unreadable}
    for group_id in sorted(directory.suspect_groups):
        for member in directory.members.get(group_id, ()):
            if member in directory.people and member not in invalid:
                unreadable.setdefault(member, f"malformed assignment of group {group_id}")
    untouchable = set(invalid) | set(unreadable)
    return DesiredState(
        users=users, invalid=invalid, untouchable=untouchable, unreadable=unreadable
    )
