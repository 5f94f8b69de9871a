"""The state of a simulated Okta org: users, groups, one app and its assignments.

:class:`OktaOrg` holds the data, applies mutations the way Okta does (timestamps, lifecycle
rules, the implicit "Everyone" group), derives the app's users from individual and group
assignments, and renders Okta's JSON shapes. It is thread-safe: one re-entrant lock guards every
read and write, so a test thread can mutate the org while a server thread serves it.
"""

from __future__ import annotations

import bisect
import contextlib
import random
import string
import threading
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from syncd.clock import Clock, SystemClock

JSONDict = dict[str, Any]

ALNUM = string.ascii_letters + string.digits
USER_STATUSES = frozenset(
    {
        "STAGED",
        "PROVISIONED",
        "ACTIVE",
        "RECOVERY",
        "LOCKED_OUT",
        "PASSWORD_EXPIRED",
        "SUSPENDED",
        "DEPROVISIONED",
    }
)
GROUP_TYPES = frozenset({"OKTA_GROUP", "APP_GROUP", "BUILT_IN"})
ROLE_SCOPES = frozenset({"NONE", "SELF"})
#: How a user's status shows as the app user's ``status`` (values of the spec's ``AppUserStatus``).
APP_USER_STATUS = {
    "ACTIVE": "ACTIVE",
    "RECOVERY": "ACTIVE",
    "LOCKED_OUT": "ACTIVE",
    "PASSWORD_EXPIRED": "ACTIVE",
    "STAGED": "PENDING",
    "PROVISIONED": "PENDING",
    "SUSPENDED": "SUSPENDED",
    "DEPROVISIONED": "INACTIVE",
}
BASE_PROFILE_KEYS = ("firstName", "lastName", "mobilePhone", "secondEmail", "login", "email")
SCIM_CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
EVERYONE = "Everyone"
_LOGO = "https://ok11static.oktacdn.com/assets/img/logos/groups/okta-{}.png"


class UnknownIdError(KeyError):
    """An id (or login) that names nothing in the org."""

    def __init__(self, kind: str, ident: str) -> None:
        super().__init__(f"unknown {kind}: {ident!r}")
        self.kind = kind
        self.ident = ident

    def __str__(self) -> str:
        return str(self.args[0])


def iso(t: float) -> str:
    """Okta's timestamp format: ``2020-08-27T18:19:47.000Z`` (UTC, milliseconds)."""
    ms = round(t * 1000)
    sec, ms = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)) + f".{ms:03d}Z"


def parse_iso(value: str) -> float:
    """Epoch seconds of an ISO 8601 timestamp (``ValueError`` if it is not one)."""
    dt = datetime.fromisoformat(value)
    if dt.tzinfo is None:
        raise ValueError(f"timestamp without a timezone: {value!r}")
    return dt.timestamp()


def login_slug(name: str) -> str:
    """``"José O'Brien"`` -> ``"joseobrien"``: a name's ASCII letters and digits, lowercased."""
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return "".join(c for c in folded.lower() if c.isalnum())


@dataclass(slots=True)
class User:
    """An Okta user."""

    id: str
    status: str
    created: str
    activated: str | None
    status_changed: str | None
    last_login: str | None
    last_updated: str
    password_changed: str | None
    profile: JSONDict

    @property
    def login(self) -> str:
        return str(self.profile["login"])


@dataclass(slots=True)
class Group:
    """An Okta group and its members."""

    id: str
    name: str
    description: str | None
    type: str
    created: str
    last_updated: str
    last_membership_updated: str
    members: set[str] = field(default_factory=set)

    @property
    def is_everyone(self) -> bool:
        return self.type == "BUILT_IN" and self.name == EVERYONE


@dataclass(slots=True)
class App:
    """The one app whose assignments the simulator serves."""

    id: str
    name: str
    label: str
    created: str
    last_updated: str


@dataclass(slots=True)
class UserAssignment:
    """An individual (``scope: USER``) assignment of a user to the app."""

    profile: JSONDict
    created: str
    last_updated: str


@dataclass(slots=True)
class GroupAssignment:
    """A group assigned to the app, with its priority and app profile."""

    priority: int
    profile: JSONDict
    created: str
    last_updated: str


@dataclass(slots=True)
class RoleAttribute:
    """The role attribute of the app user profile (an enum of role ids with titles)."""

    name: str
    title: str
    scope: str  # "NONE": group-settable; "SELF": personal (set per assignment only)
    enum: list[tuple[str, str]]  # (const = role id, title = role name), in order


@dataclass(slots=True, frozen=True)
class AppUserView:
    """One derived app user: who, through what, and with which profile."""

    user: User
    scope: str  # "USER" or "GROUP"
    profile: JSONDict
    group_id: str | None  # the group whose profile applies (scope GROUP)
    created: str
    last_updated: str


class OktaOrg:
    """Users, groups and one app of a simulated Okta org.

    Mutations behave like Okta's: they bump ``lastUpdated``, ``statusChanged`` and
    ``lastMembershipUpdated``, enforce lifecycle rules and keep the built-in "Everyone" group
    (if the org has one) complete. Unknown ids raise :class:`UnknownIdError` (a ``KeyError``);
    invalid operations raise ``ValueError``. New ids are deterministic for a given ``seed``.
    """

    def __init__(
        self,
        *,
        app_id: str | None = None,
        app_name: str = "vanta",
        app_label: str = "Vanta",
        attribute: str = "vanta_roles",
        attribute_title: str = "Vanta roles",
        attribute_scope: str = "NONE",
        roles: Mapping[str, str] | None = None,
        seed: int = 0,
        clock: Clock | None = None,
        user_type_id: str | None = None,
    ) -> None:
        self.lock = threading.RLock()
        self.clock: Clock = clock or SystemClock()
        self.seed = seed
        self._rng = random.Random(seed)
        self.users: dict[str, User] = {}
        self.groups: dict[str, Group] = {}
        self.user_assignments: dict[str, UserAssignment] = {}
        self.group_assignments: dict[str, GroupAssignment] = {}
        self._logins: dict[str, str] = {}  # login.lower() -> user id
        self._user_groups: dict[str, set[str]] = {}
        self._everyone: str | None = None
        self._app_touched: dict[str, str] = {}  # user id -> last change of their app user
        self._app_since: dict[str, str] = {}  # user id -> when they became an app user
        self._sorted_users: list[str] | None = None
        self._sorted_groups: list[str] | None = None
        self._sorted_members: dict[str, list[str]] = {}
        self._app_user_ids: list[str] | None = None
        now = self.now()
        self.user_type_id = user_type_id or self.new_id("oty")
        self.app = App(app_id or self.new_id("0oa"), app_name, app_label, now, now)
        if attribute_scope not in ROLE_SCOPES:
            raise ValueError(f"attribute scope must be NONE or SELF, not {attribute_scope!r}")
        self.role_attribute = RoleAttribute(
            attribute, attribute_title, attribute_scope, list(_role_pairs(roles or {}))
        )

    # ----------------------------------------------------------------- helpers

    def now(self) -> str:
        """The clock's time in Okta's format."""
        return iso(self.clock.time())

    def new_id(self, prefix: str) -> str:
        """A fresh Okta-style id: ``prefix`` + 17 letters and digits (deterministic per seed)."""
        with self.lock:
            while True:
                ident = prefix + "".join(self._rng.choices(ALNUM, k=17))
                if ident not in self.users and ident not in self.groups:
                    return ident

    def user(self, user_id_or_login: str) -> User:
        """A user by id, or by login (case-insensitive)."""
        with self.lock:
            found = self.users.get(user_id_or_login)
            if found is None:
                uid = self._logins.get(user_id_or_login.lower())
                if uid is None:
                    raise UnknownIdError("user", user_id_or_login)
                found = self.users[uid]
            return found

    def group(self, group_id: str) -> Group:
        """A group by id."""
        with self.lock:
            try:
                return self.groups[group_id]
            except KeyError:
                raise UnknownIdError("group", group_id) from None

    def group_by_name(self, name: str) -> Group:
        """The first group (by id) with this exact name."""
        with self.lock:
            for gid in self.sorted_group_ids():
                if self.groups[gid].name == name:
                    return self.groups[gid]
        raise UnknownIdError("group name", name)

    def groups_of(self, user_id: str) -> set[str]:
        """Ids of the groups a user belongs to."""
        with self.lock:
            self._user(user_id)
            return set(self._user_groups.get(user_id, ()))

    def _user(self, user_id: str) -> User:
        try:
            return self.users[user_id]
        except KeyError:
            raise UnknownIdError("user", user_id) from None

    def _invalidate(self, *, users: bool = False, groups: bool = False) -> None:
        if users:
            self._sorted_users = None
        if groups:
            self._sorted_groups = None
        self._app_user_ids = None

    def sorted_user_ids(self) -> list[str]:
        """All user ids, sorted (cached; do not modify)."""
        with self.lock:
            if self._sorted_users is None:
                self._sorted_users = sorted(self.users)
            return self._sorted_users

    def sorted_group_ids(self) -> list[str]:
        """All group ids, sorted (cached; do not modify)."""
        with self.lock:
            if self._sorted_groups is None:
                self._sorted_groups = sorted(self.groups)
            return self._sorted_groups

    def sorted_member_ids(self, group_id: str) -> list[str]:
        """A group's member ids, sorted (cached; do not modify)."""
        with self.lock:
            cached = self._sorted_members.get(group_id)
            if cached is None:
                cached = self._sorted_members[group_id] = sorted(self.group(group_id).members)
            return cached

    # ------------------------------------------------------ derived app users

    def _is_app_user(self, user_id: str) -> bool:
        if user_id in self.user_assignments:
            return True
        return any(g in self.group_assignments for g in self._user_groups.get(user_id, ()))

    def app_user_ids(self) -> list[str]:
        """Ids of every user the app is assigned to (individually or by group), sorted."""
        with self.lock:
            if self._app_user_ids is None:
                ids = set(self.user_assignments)
                for gid in self.group_assignments:
                    ids |= self.groups[gid].members
                self._app_user_ids = sorted(ids)
            return self._app_user_ids

    def winning_group(self, user_id: str) -> str | None:
        """The assigned group whose profile applies to a user: lowest priority, then lowest id."""
        with self.lock:
            best: tuple[int, str] | None = None
            for gid in self._user_groups.get(user_id, ()):
                ga = self.group_assignments.get(gid)
                if ga is not None and (best is None or (ga.priority, gid) < best):
                    best = (ga.priority, gid)
            return best[1] if best else None

    def app_user(self, user_id: str) -> AppUserView | None:
        """The app user for ``user_id``, or ``None`` if the app is not assigned to them."""
        with self.lock:
            user = self._user(user_id)
            attr = self.role_attribute.name
            touched = self._app_touched.get(user_id, "")
            ua = self.user_assignments.get(user_id)
            if ua is not None:
                profile: JSONDict = {attr: None, **ua.profile}
                updated = max(user.last_updated, ua.last_updated, touched)
                return AppUserView(user, "USER", profile, None, ua.created, updated)
            gid = self.winning_group(user_id)
            if gid is None:
                return None
            ga = self.group_assignments[gid]
            profile = {attr: None, **ga.profile}
            if self.role_attribute.scope == "SELF":
                profile[attr] = None  # a personal attribute is never set through a group
            created = self._app_since.get(user_id) or max(user.created, ga.created)
            updated = max(user.last_updated, ga.last_updated, touched, created)
            return AppUserView(user, "GROUP", profile, gid, created, updated)

    @contextlib.contextmanager
    def _app_change(self, user_ids: Iterable[str]) -> Iterator[None]:
        """Wrap a mutation that may change these users' app users: keep their timestamps."""
        ids = list(user_ids)
        before = {uid: self._is_app_user(uid) for uid in ids}
        yield
        now = self.now()
        for uid in ids:
            if uid not in self.users:
                self._app_touched.pop(uid, None)
                self._app_since.pop(uid, None)
                continue
            after = self._is_app_user(uid)
            if after and not before[uid]:
                self._app_since[uid] = now
            elif not after:
                self._app_since.pop(uid, None)
            self._app_touched[uid] = now
        self._app_user_ids = None

    # ------------------------------------------------------------ bulk loading

    def _put_user(self, user: User) -> None:
        key = user.login.lower()
        if key in self._logins:
            raise ValueError(f"login already in use: {user.login!r}")
        if user.id in self.users or user.id in self.groups:
            raise ValueError(f"id already in use: {user.id!r}")
        if user.status not in USER_STATUSES:
            raise ValueError(f"unknown user status: {user.status!r}")
        self.users[user.id] = user
        self._logins[key] = user.id
        self._user_groups[user.id] = set()
        if self._everyone is not None:
            self._link(self._everyone, user.id)
        self._invalidate(users=True)

    def _put_group(self, group: Group) -> None:
        if group.id in self.groups or group.id in self.users:
            raise ValueError(f"id already in use: {group.id!r}")
        if group.type not in GROUP_TYPES:
            raise ValueError(f"unknown group type: {group.type!r}")
        self.groups[group.id] = group
        if group.is_everyone:
            if self._everyone is not None:
                raise ValueError("the org already has an Everyone group")
            self._everyone = group.id
            for uid in self.users:
                self._link(group.id, uid)
        self._invalidate(groups=True)

    def _link(self, group_id: str, user_id: str) -> None:
        self.groups[group_id].members.add(user_id)
        self._user_groups[user_id].add(group_id)
        self._sorted_members.pop(group_id, None)

    def _unlink(self, group_id: str, user_id: str) -> None:
        self.groups[group_id].members.discard(user_id)
        self._user_groups[user_id].discard(group_id)
        self._sorted_members.pop(group_id, None)

    # --------------------------------------------------------------- users

    def add_user(
        self,
        first_name: str,
        last_name: str,
        login: str | None = None,
        *,
        email: str | None = None,
        status: str = "ACTIVE",
        user_id: str | None = None,
        groups: Iterable[str] = (),
        **profile: Any,
    ) -> str:
        """Create a user (``ACTIVE`` unless told otherwise) and return its id.

        ``login`` defaults to ``first.last@example.com`` (made unique), ``email`` to the login;
        extra keyword arguments are extra profile attributes; ``groups`` are group ids to join.
        """
        with self.lock:
            if login is None:
                login = self.unique_login(first_name, last_name)
            now = self.now()
            started = status not in ("STAGED", "PROVISIONED")
            fields: JSONDict = {
                "firstName": first_name,
                "lastName": last_name,
                "login": login,
                "email": email or login,
                **profile,
            }
            user = User(
                id=user_id or self.new_id("00u"),
                status=status,
                created=now,
                activated=now if started else None,
                status_changed=now if started else None,
                last_login=None,
                last_updated=now,
                password_changed=now if started else None,
                profile=normalize_profile(fields),
            )
            group_list = list(groups)
            for gid in group_list:
                self.group(gid)
            with self._app_change([user.id]):
                self._put_user(user)
                for gid in group_list:
                    self._add_member(gid, user.id, now)
            return user.id

    def unique_login(self, first_name: str, last_name: str, domain: str = "example.com") -> str:
        """``first.last@domain``, with a number added if that login is taken."""
        with self.lock:
            stem = f"{login_slug(first_name) or 'user'}.{login_slug(last_name) or 'user'}"
            login, n = f"{stem}@{domain}", 1
            while login.lower() in self._logins:
                n += 1
                login = f"{stem}{n}@{domain}"
            return login

    def update_profile(self, user_id: str, **fields: Any) -> None:
        """Set profile attributes (``None`` clears one); a ``login`` must stay unique."""
        with self.lock:
            user = self._user(user_id)
            login = fields.get("login")
            if login is not None and login != user.login:
                other = self._logins.get(str(login).lower())
                if other is not None and other != user_id:
                    raise ValueError(f"login already in use: {login!r}")
                del self._logins[user.login.lower()]
                self._logins[str(login).lower()] = user_id
            elif "login" in fields and login is None:
                raise ValueError("login cannot be null")
            user.profile.update(fields)
            user.last_updated = self.now()

    def change_login(self, user_id: str, login: str, *, email: str | None = None) -> None:
        """Rename a user's login (and optionally their email)."""
        fields: JSONDict = {"login": login}
        if email is not None:
            fields["email"] = email
        self.update_profile(user_id, **fields)

    def _set_status(self, user: User, status: str) -> None:
        now = self.now()
        user.status = status
        user.status_changed = now
        user.last_updated = now
        if status == "ACTIVE":
            user.activated = now
            if user.password_changed is None:
                user.password_changed = now

    def _transition(self, user_id: str, allowed: Iterable[str], status: str, verb: str) -> None:
        with self.lock:
            user = self._user(user_id)
            if user.status not in allowed:
                raise ValueError(f"cannot {verb} user {user_id} with status {user.status}")
            self._set_status(user, status)

    def suspend(self, user_id: str) -> None:
        """ACTIVE -> SUSPENDED."""
        self._transition(user_id, ("ACTIVE",), "SUSPENDED", "suspend")

    def unsuspend(self, user_id: str) -> None:
        """SUSPENDED -> ACTIVE."""
        self._transition(user_id, ("SUSPENDED",), "ACTIVE", "unsuspend")

    def deactivate(self, user_id: str) -> None:
        """Any status but DEPROVISIONED -> DEPROVISIONED (memberships and assignments stay)."""
        self._transition(user_id, USER_STATUSES - {"DEPROVISIONED"}, "DEPROVISIONED", "deactivate")

    def activate(self, user_id: str) -> None:
        """STAGED, PROVISIONED or DEPROVISIONED -> ACTIVE."""
        allowed = ("STAGED", "PROVISIONED", "DEPROVISIONED")
        self._transition(user_id, allowed, "ACTIVE", "activate")

    def reactivate(self, user_id: str) -> None:
        """Same as :meth:`activate`."""
        self.activate(user_id)

    def set_status(self, user_id: str, status: str) -> None:
        """Force any status (e.g. LOCKED_OUT, PASSWORD_EXPIRED, RECOVERY), bumping timestamps."""
        if status not in USER_STATUSES:
            raise ValueError(f"unknown user status: {status!r}")
        with self.lock:
            self._set_status(self._user(user_id), status)

    def delete_user(self, user_id: str) -> None:
        """Delete a user outright: gone from groups, assignments and every listing."""
        with self.lock:
            user = self._user(user_id)
            now = self.now()
            with self._app_change([user_id]):
                for gid in list(self._user_groups[user_id]):
                    self._unlink(gid, user_id)
                    self.groups[gid].last_membership_updated = now
                del self._user_groups[user_id]
                self.user_assignments.pop(user_id, None)
                del self._logins[user.login.lower()]
                del self.users[user_id]
                self._invalidate(users=True)

    # ------------------------------------------------------------ assignments

    def assign_user(self, user_id: str, profile: Mapping[str, Any] | None = None) -> None:
        """Assign the app to a user individually (``scope: USER``).

        With no ``profile``, a user who had the app through a group keeps that profile (as Okta
        does when converting a group assignment to an individual one).
        """
        with self.lock:
            self._user(user_id)
            if profile is None:
                current = self.app_user(user_id)
                profile = dict(current.profile) if current else {}
            now = self.now()
            with self._app_change([user_id]):
                old = self.user_assignments.get(user_id)
                created = old.created if old else now
                self.user_assignments[user_id] = UserAssignment(dict(profile), created, now)

    def set_assignment_profile(self, user_id: str, profile: Mapping[str, Any]) -> None:
        """Update an app user's profile (partial update; ``None`` clears a value).

        Like Okta, editing a group-assigned app user's profile makes the assignment individual.
        """
        with self.lock:
            if user_id not in self.user_assignments:
                if self.app_user(user_id) is None:
                    raise UnknownIdError("app user", user_id)
                self.assign_user(user_id)
            with self._app_change([user_id]):
                ua = self.user_assignments[user_id]
                ua.profile.update(profile)
                ua.last_updated = self.now()

    def unassign_user(self, user_id: str) -> None:
        """Remove a user's individual assignment (group assignments still apply)."""
        with self.lock:
            self._user(user_id)
            if user_id not in self.user_assignments:
                raise UnknownIdError("individual assignment", user_id)
            with self._app_change([user_id]):
                del self.user_assignments[user_id]

    # ----------------------------------------------------------------- groups

    def add_group(
        self,
        name: str,
        description: str | None = None,
        *,
        group_id: str | None = None,
        type: str = "OKTA_GROUP",
        members: Iterable[str] = (),
    ) -> str:
        """Create a group and return its id (a BUILT_IN "Everyone" group holds every user)."""
        with self.lock:
            now = self.now()
            group = Group(group_id or self.new_id("00g"), name, description, type, now, now, now)
            member_list = list(members)
            for uid in member_list:
                self._user(uid)
            self._put_group(group)
            for uid in member_list:
                self._link(group.id, uid)
            return group.id

    def rename_group(self, group_id: str, name: str, description: str | None = None) -> None:
        """Change a group's name (and description, if given)."""
        with self.lock:
            group = self._mutable_group(group_id)
            group.name = name
            if description is not None:
                group.description = description
            group.last_updated = self.now()

    def _mutable_group(self, group_id: str) -> Group:
        group = self.group(group_id)
        if group.type == "BUILT_IN":
            raise ValueError(f"group {group_id} is BUILT_IN and cannot be modified")
        return group

    def delete_group(self, group_id: str) -> None:
        """Delete a group, its memberships and its app assignment."""
        with self.lock:
            group = self._mutable_group(group_id)
            with self._app_change(group.members if group_id in self.group_assignments else ()):
                for uid in list(group.members):
                    self._unlink(group_id, uid)
                self.group_assignments.pop(group_id, None)
                del self.groups[group_id]
                self._sorted_members.pop(group_id, None)
                self._invalidate(groups=True)

    def _add_member(self, group_id: str, user_id: str, now: str) -> None:
        if user_id not in self.groups[group_id].members:
            self._link(group_id, user_id)
            self.groups[group_id].last_membership_updated = now

    def add_member(self, group_id: str, user_id: str) -> None:
        """Add a user to a group (no-op if already a member)."""
        with self.lock:
            self._mutable_group(group_id)
            self._user(user_id)
            with self._app_change([user_id]):
                self._add_member(group_id, user_id, self.now())

    def remove_member(self, group_id: str, user_id: str) -> None:
        """Remove a user from a group (no-op if not a member)."""
        with self.lock:
            group = self._mutable_group(group_id)
            self._user(user_id)
            if user_id in group.members:
                with self._app_change([user_id]):
                    self._unlink(group_id, user_id)
                    group.last_membership_updated = self.now()

    def assign_group(
        self, group_id: str, priority: int | None = None, profile: Mapping[str, Any] | None = None
    ) -> None:
        """Assign the app to a group; ``priority`` defaults to one after the current last."""
        with self.lock:
            group = self.group(group_id)
            if priority is None:
                old = self.group_assignments.get(group_id)
                if old is not None:
                    priority = old.priority
                else:
                    priority = max(
                        (g.priority for g in self.group_assignments.values()), default=-1
                    )
                    priority += 1
            now = self.now()
            with self._app_change(group.members):
                old = self.group_assignments.get(group_id)
                self.group_assignments[group_id] = GroupAssignment(
                    int(priority), dict(profile or {}), old.created if old else now, now
                )

    def _group_assignment(self, group_id: str) -> GroupAssignment:
        self.group(group_id)
        try:
            return self.group_assignments[group_id]
        except KeyError:
            raise UnknownIdError("group assignment", group_id) from None

    def set_group_priority(self, group_id: str, priority: int) -> None:
        """Change an assigned group's priority (lower number wins; ties go to the lower id)."""
        with self.lock:
            ga = self._group_assignment(group_id)
            with self._app_change(self.groups[group_id].members):
                ga.priority = int(priority)
                ga.last_updated = self.now()

    def set_group_profile(self, group_id: str, profile: Mapping[str, Any]) -> None:
        """Replace an assigned group's app profile."""
        with self.lock:
            ga = self._group_assignment(group_id)
            with self._app_change(self.groups[group_id].members):
                ga.profile = dict(profile)
                ga.last_updated = self.now()

    def unassign_group(self, group_id: str) -> None:
        """Remove a group's app assignment."""
        with self.lock:
            self._group_assignment(group_id)
            with self._app_change(self.groups[group_id].members):
                del self.group_assignments[group_id]

    # ------------------------------------------------------------- app schema

    def set_role_enum(self, roles: Mapping[str, str]) -> None:
        """Replace the role attribute's enum: ``{role name: role id}``, in order."""
        with self.lock:
            self.role_attribute.enum = list(_role_pairs(roles))
            self.app.last_updated = self.now()

    def set_role_attribute(self, title: str | None = None, scope: str | None = None) -> None:
        """Change the role attribute's title or scope (NONE: group-settable, SELF: personal)."""
        with self.lock:
            if scope is not None and scope not in ROLE_SCOPES:
                raise ValueError(f"attribute scope must be NONE or SELF, not {scope!r}")
            with self._app_change(self.app_user_ids()):
                ra = self.role_attribute
                ra.title = title or ra.title
                ra.scope = scope or ra.scope
                self.app.last_updated = self.now()

    # ------------------------------------------------------------ rendering

    def user_json(self, user: User, base: str, *, detail: bool = False) -> JSONDict:
        """A User object; ``detail`` adds the lifecycle links Okta sends for a single user."""
        href = f"{base}/api/v1/users/{user.id}"
        links: JSONDict = {"self": {"href": href}}
        if detail:
            links["schema"] = {
                "href": f"{base}/api/v1/meta/schemas/user/osc{self.user_type_id[3:]}"
            }
            links["type"] = {"href": f"{base}/api/v1/meta/types/user/{self.user_type_id}"}
            for rel in _LIFECYCLE_LINKS.get(user.status, ()):
                action = rel.lower() if rel != "resetPassword" else "reset_password"
                links[rel] = {"href": f"{href}/lifecycle/{action}", "method": "POST"}
        credentials: JSONDict = {}
        if user.password_changed is not None:
            credentials["password"] = {}
        email = user.profile.get("email")
        if email:
            credentials["emails"] = [{"value": email, "status": "VERIFIED", "type": "PRIMARY"}]
        credentials["provider"] = {"type": "OKTA", "name": "OKTA"}
        return {
            "id": user.id,
            "status": user.status,
            "created": user.created,
            "activated": user.activated,
            "statusChanged": user.status_changed,
            "lastLogin": user.last_login,
            "lastUpdated": user.last_updated,
            "passwordChanged": user.password_changed,
            "type": {"id": self.user_type_id},
            "profile": dict(user.profile),
            "credentials": credentials,
            "_links": links,
        }

    def group_json(self, group: Group, base: str, *, stats: bool = False) -> JSONDict:
        """A Group object; ``stats`` embeds ``_embedded.stats`` (``expand=stats``)."""
        href = f"{base}/api/v1/groups/{group.id}"
        out: JSONDict = {
            "id": group.id,
            "created": group.created,
            "lastUpdated": group.last_updated,
            "lastMembershipUpdated": group.last_membership_updated,
            "objectClass": ["okta:user_group"],
            "type": group.type,
            "profile": {"name": group.name, "description": group.description},
        }
        if stats:
            out["_embedded"] = {
                "stats": {
                    "usersCount": len(group.members),
                    "appsCount": int(group.id in self.group_assignments),
                    "groupPushMappingsCount": 0,
                }
            }
        out["_links"] = {
            "logo": [
                {"name": size, "href": _LOGO.format(size), "type": "image/png"}
                for size in ("medium", "large")
            ],
            "users": {"href": f"{href}/users"},
            "apps": {"href": f"{href}/apps"},
        }
        return out

    def app_user_json(self, view: AppUserView, base: str, *, expand_user: bool = False) -> JSONDict:
        """An AppUser object; ``expand_user`` embeds the User under ``_embedded.user``."""
        user = view.user
        out: JSONDict = {
            "id": user.id,
            "externalId": None,
            "created": view.created,
            "lastUpdated": view.last_updated,
            "scope": view.scope,
            "status": APP_USER_STATUS[user.status],
            "statusChanged": user.status_changed or user.created,
            "passwordChanged": None,
            "syncState": "DISABLED",
            "credentials": {"userName": user.login},
            "profile": dict(view.profile),
        }
        if expand_user:
            out["_embedded"] = {"user": self.user_json(user, base)}
        links: JSONDict = {
            "app": {"href": f"{base}/api/v1/apps/{self.app.id}"},
            "user": {"href": f"{base}/api/v1/users/{user.id}"},
        }
        if view.group_id is not None:
            links["group"] = {
                "name": self.groups[view.group_id].name,
                "href": f"{base}/api/v1/groups/{view.group_id}",
            }
        out["_links"] = links
        return out

    def app_group_json(self, group_id: str, base: str, *, expand_group: bool = False) -> JSONDict:
        """An ApplicationGroupAssignment; ``expand_group`` embeds the Group."""
        ga = self.group_assignments[group_id]
        app_href = f"{base}/api/v1/apps/{self.app.id}"
        out: JSONDict = {
            "id": group_id,
            "lastUpdated": ga.last_updated,
            "priority": ga.priority,
            "profile": dict(ga.profile),
        }
        if expand_group:
            out["_embedded"] = {"group": self.group_json(self.groups[group_id], base)}
        out["_links"] = {
            "app": {"href": app_href},
            "self": {"href": f"{app_href}/groups/{group_id}"},
            "group": {"href": f"{base}/api/v1/groups/{group_id}"},
        }
        return out

    def app_json(self, base: str) -> JSONDict:
        """The Application object (a custom SAML app)."""
        app = self.app
        href = f"{base}/api/v1/apps/{app.id}"
        return {
            "id": app.id,
            "name": app.name,
            "label": app.label,
            "status": "ACTIVE",
            "lastUpdated": app.last_updated,
            "created": app.created,
            "accessibility": {"selfService": False, "errorRedirectUrl": None},
            "visibility": {
                "autoSubmitToolbar": False,
                "hide": {"iOS": False, "web": False},
                "appLinks": {f"{app.name}_link": True},
            },
            "features": [],
            "signOnMode": "SAML_2_0",
            "credentials": {
                "userNameTemplate": {"template": "${source.login}", "type": "BUILT_IN"},
                "signing": {},
            },
            "settings": {"app": {}, "notifications": {}},
            "_links": {
                "users": {"href": f"{href}/users"},
                "groups": {"href": f"{href}/groups"},
                "self": {"href": href},
                "deactivate": {"href": f"{href}/lifecycle/deactivate"},
            },
        }

    def app_user_schema_json(self, base: str) -> JSONDict:
        """The app user schema (``/api/v1/meta/schemas/apps/{appId}/default``)."""
        ra = self.role_attribute
        attr: JSONDict = {
            "title": ra.title,
            "description": f"{self.app.label} role",
            "type": "string",
            "required": False,
            "mutability": "READ_WRITE",
            "scope": ra.scope,
        }
        if ra.enum:
            attr["enum"] = [const for const, _ in ra.enum]
            attr["oneOf"] = [{"const": const, "title": title} for const, title in ra.enum]
        attr.update(
            {
                "master": {"type": "PROFILE_MASTER"},
                "externalName": ra.name,
                "externalNamespace": SCIM_CORE_USER,
                "union": "DISABLE",
            }
        )
        return {
            "id": f"{base}/meta/schemas/apps/{self.app.id}/default",
            "$schema": "http://json-schema.org/draft-04/schema#",
            "name": self.app.name,
            "title": f"{self.app.label} User",
            "lastUpdated": self.app.last_updated,
            "created": self.app.created,
            "definitions": {
                "base": {
                    "id": "#base",
                    "type": "object",
                    "properties": {
                        "userName": {
                            "title": "Username",
                            "type": "string",
                            "required": True,
                            "scope": "NONE",
                            "maxLength": 100,
                            "master": {"type": "PROFILE_MASTER"},
                        }
                    },
                    "required": ["userName"],
                },
                "custom": {
                    "id": "#custom",
                    "type": "object",
                    "properties": {ra.name: attr},
                    "required": [],
                },
            },
            "type": "object",
            "properties": {
                "profile": {
                    "allOf": [{"$ref": "#/definitions/base"}, {"$ref": "#/definitions/custom"}]
                }
            },
        }

    # ------------------------------------------------------- (de)serialising

    def to_dict(self) -> JSONDict:
        """The org as a JSON-able dict (the org file format; see docs/okta-simulator.md)."""
        with self.lock:
            ra = self.role_attribute
            return {
                "format": "syncd-okta-org/1",
                "seed": self.seed,
                "userTypeId": self.user_type_id,
                "app": {
                    "id": self.app.id,
                    "name": self.app.name,
                    "label": self.app.label,
                    "created": self.app.created,
                    "lastUpdated": self.app.last_updated,
                },
                "roleAttribute": {
                    "name": ra.name,
                    "title": ra.title,
                    "scope": ra.scope,
                    "enum": [{"const": c, "title": t} for c, t in ra.enum],
                },
                "users": [_user_dict(self.users[uid]) for uid in self.sorted_user_ids()],
                "groups": [_group_dict(self.groups[gid]) for gid in self.sorted_group_ids()],
                "assignments": {
                    "users": [
                        {
                            "userId": uid,
                            "profile": dict(ua.profile),
                            "created": ua.created,
                            "lastUpdated": ua.last_updated,
                        }
                        for uid, ua in sorted(self.user_assignments.items())
                    ],
                    "groups": [
                        {
                            "groupId": gid,
                            "priority": ga.priority,
                            "profile": dict(ga.profile),
                            "created": ga.created,
                            "lastUpdated": ga.last_updated,
                        }
                        for gid, ga in sorted(
                            self.group_assignments.items(), key=lambda kv: (kv[1].priority, kv[0])
                        )
                    ],
                },
            }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, clock: Clock | None = None) -> OktaOrg:
        """Build an org from :meth:`to_dict`'s format. Missing timestamps default to now."""
        app = data.get("app", {})
        ra = data.get("roleAttribute", {})
        org = cls(
            app_id=app.get("id"),
            app_name=app.get("name", "vanta"),
            app_label=app.get("label", "Vanta"),
            attribute=ra.get("name", "vanta_roles"),
            attribute_title=ra.get("title", "Vanta roles"),
            attribute_scope=ra.get("scope", "NONE"),
            seed=int(data.get("seed", 0)),
            clock=clock,
            user_type_id=data.get("userTypeId"),
        )
        now = org.now()
        org.app.created = app.get("created", now)
        org.app.last_updated = app.get("lastUpdated", org.app.created)
        org.role_attribute.enum = [(str(e["const"]), str(e["title"])) for e in ra.get("enum", [])]
        with org.lock:
            for g in data.get("groups", []):
                created = g.get("created", now)
                org._put_group(
                    Group(
                        id=g.get("id") or org.new_id("00g"),
                        name=g["profile"]["name"],
                        description=g["profile"].get("description"),
                        type=g.get("type", "OKTA_GROUP"),
                        created=created,
                        last_updated=g.get("lastUpdated", created),
                        last_membership_updated=g.get("lastMembershipUpdated", created),
                    )
                )
            for u in data.get("users", []):
                created = u.get("created", now)
                status = u.get("status", "ACTIVE")
                started = status not in ("STAGED", "PROVISIONED")
                org._put_user(
                    User(
                        id=u.get("id") or org.new_id("00u"),
                        status=status,
                        created=created,
                        activated=u.get("activated", created if started else None),
                        status_changed=u.get("statusChanged", created if started else None),
                        last_login=u.get("lastLogin"),
                        last_updated=u.get("lastUpdated", created),
                        password_changed=u.get("passwordChanged", created if started else None),
                        profile=normalize_profile(u["profile"]),
                    )
                )
            for g in data.get("groups", []):
                gid = g.get("id")
                for uid in g.get("members", []):
                    if gid is None or uid not in org.users:
                        raise ValueError(f"group {gid!r}: unknown member {uid!r}")
                    if not org.groups[gid].is_everyone:
                        org._link(gid, uid)
            assignments = data.get("assignments", {})
            for a in assignments.get("users", []):
                org._user(a["userId"])
                created = a.get("created", now)
                org.user_assignments[a["userId"]] = UserAssignment(
                    dict(a.get("profile", {})), created, a.get("lastUpdated", created)
                )
            for a in assignments.get("groups", []):
                org.group(a["groupId"])
                created = a.get("created", now)
                org.group_assignments[a["groupId"]] = GroupAssignment(
                    int(a["priority"]),
                    dict(a.get("profile", {})),
                    created,
                    a.get("lastUpdated", created),
                )
            org._invalidate(users=True, groups=True)
        return org


_LIFECYCLE_LINKS: dict[str, tuple[str, ...]] = {
    "STAGED": ("activate", "deactivate"),
    "PROVISIONED": ("activate", "deactivate"),
    "ACTIVE": ("suspend", "resetPassword", "deactivate"),
    "RECOVERY": ("suspend", "resetPassword", "deactivate"),
    "LOCKED_OUT": ("unlock", "resetPassword", "deactivate"),
    "PASSWORD_EXPIRED": ("suspend", "resetPassword", "deactivate"),
    "SUSPENDED": ("unsuspend", "deactivate"),
    "DEPROVISIONED": ("activate",),
}


def normalize_profile(profile: Mapping[str, Any]) -> JSONDict:
    """A user profile with Okta's base attributes first (missing ones null), then the rest."""
    if not profile.get("login"):
        raise ValueError("a user profile needs a login")
    out: JSONDict = {key: profile.get(key) for key in BASE_PROFILE_KEYS}
    out.update(profile)
    return out


def _role_pairs(roles: Mapping[str, str]) -> Iterator[tuple[str, str]]:
    for title, const in roles.items():
        yield str(const), str(title)


def _user_dict(u: User) -> JSONDict:
    return {
        "id": u.id,
        "status": u.status,
        "created": u.created,
        "activated": u.activated,
        "statusChanged": u.status_changed,
        "lastLogin": u.last_login,
        "lastUpdated": u.last_updated,
        "passwordChanged": u.password_changed,
        "profile": dict(u.profile),
    }


def _group_dict(g: Group) -> JSONDict:
    out: JSONDict = {
        "id": g.id,
        "type": g.type,
        "created": g.created,
        "lastUpdated": g.last_updated,
        "lastMembershipUpdated": g.last_membership_updated,
        "profile": {"name": g.name, "description": g.description},
    }
    if not g.is_everyone:  # Everyone's membership is implicit: every user
        out["members"] = sorted(g.members)
    return out


def page_after(
    keys: list[Any],
    after: Any,
    limit: int,
    fetch: Callable[[Any], Any],
    accept: Callable[[Any], bool] | None = None,
) -> tuple[list[Any], bool]:
    """Up to ``limit`` fetched items whose sorted key is strictly after ``after``.

    Returns the items and whether more accepted items follow. Costs O(log n + page) when most
    items are accepted (a selective ``accept`` scans further).
    """
    i = bisect.bisect_right(keys, after) if after is not None else 0
    out: list[Any] = []
    for j in range(i, len(keys)):
        item = fetch(keys[j])
        if accept is None or accept(item):
            if len(out) == limit:
                return out, True
            out.append(item)
    return out, False
