"""The role rules, on plain Directory values (the end-to-end tests repeat them through Okta)."""

from __future__ import annotations

from syncd.directory import Directory, GroupGrant, Person
from syncd.roles import RoleCatalog, resolve

from .helpers import ADMIN, CATALOG, EDITOR, EMPLOYEE

catalog = RoleCatalog(CATALOG)


def person(
    okta_id: str, *, scope: str = "GROUP", own: object = None, status: str = "ACTIVE"
) -> Person:
    return Person(
        okta_id=okta_id,
        login=f"{okta_id}@example.com",
        status=status,
        scope=scope,
        first_name="Ada",
        last_name="Lovelace",
        display_name=None,
        email=f"{okta_id}@example.com",
        own_role=own,
    )


def directory(
    people: list[Person], grants: list[GroupGrant], members: dict[str, set[str]]
) -> Directory:
    return Directory(
        people={p.okta_id: p for p in people},
        grants=grants,
        members={g: frozenset(m) for g, m in members.items()},
    )


GRANTS = [
    GroupGrant("00gadmins", "Vanta-Admins", 1, ADMIN),
    GroupGrant("00geditors", "Vanta-Editors", 2, "Editor"),  # a role *name* works too
    GroupGrant("00gemployees", "Vanta-Employees", 3, EMPLOYEE),
    GroupGrant("00gnorole", "Everyone-App", 0, None),  # assigned without the attribute
]


def test_highest_priority_group_wins_for_a_person_in_three_groups() -> None:
    d = directory(
        [person("00u1")],
        GRANTS,
        {"00gadmins": {"00u1"}, "00geditors": {"00u1"}, "00gemployees": {"00u1"}},
    )
    user = resolve(d, catalog).users["00u1"]
    assert user.role_id == ADMIN
    assert user.role_source == "group:00gadmins"
    assert user.active


def test_group_without_the_attribute_is_ignored_even_at_priority_zero() -> None:
    d = directory([person("00u1")], GRANTS, {"00gnorole": {"00u1"}, "00gemployees": {"00u1"}})
    assert resolve(d, catalog).users["00u1"].role_id == EMPLOYEE


def test_individual_assignment_overrides_groups() -> None:
    d = directory([person("00u1", scope="USER", own="Editor")], GRANTS, {"00gadmins": {"00u1"}})
    user = resolve(d, catalog).users["00u1"]
    assert user.role_id == EDITOR
    assert user.role_source == "user"


def test_individual_assignment_without_value_falls_back_to_groups() -> None:
    d = directory([person("00u1", scope="USER", own="")], GRANTS, {"00geditors": {"00u1"}})
    assert resolve(d, catalog).users["00u1"].role_id == EDITOR


def test_group_profile_on_app_user_is_not_trusted() -> None:
    # A GROUP-scope app user's own profile copy is ignored: groups decide.
    d = directory([person("00u1", scope="GROUP", own=ADMIN)], GRANTS, {"00gemployees": {"00u1"}})
    assert resolve(d, catalog).users["00u1"].role_id == EMPLOYEE


def test_tie_broken_by_lowest_group_id() -> None:
    grants = [GroupGrant("00gb", "B", 5, EDITOR), GroupGrant("00ga", "A", 5, EMPLOYEE)]
    d = directory([person("00u1")], grants, {"00ga": {"00u1"}, "00gb": {"00u1"}})
    assert resolve(d, catalog).users["00u1"].role_id == EMPLOYEE


def test_default_role_and_no_role() -> None:
    d = directory([person("00u1")], GRANTS, {})
    assert resolve(d, catalog).users["00u1"].role_id is None
    assert not resolve(d, catalog).users["00u1"].active
    user = resolve(d, catalog, default_role="Employee").users["00u1"]
    assert (user.role_id, user.role_source, user.active) == (EMPLOYEE, "default", True)


def test_invalid_value_is_untouchable() -> None:
    d = directory(
        [person("00u1", scope="USER", own="Superuser"), person("00u2")],
        GRANTS,
        {"00gadmins": {"00u2"}},
    )
    state = resolve(d, catalog)
    assert "00u1" not in state.users
    assert state.invalid["00u1"].value == "Superuser"
    assert state.untouchable == {"00u1"}
    assert state.users["00u2"].role_id == ADMIN


def test_invalid_group_value_marks_its_members() -> None:
    grants = [GroupGrant("00gbad", "Bad", 1, "Owner"), GroupGrant("00gok", "Ok", 2, EMPLOYEE)]
    d = directory([person("00u1")], grants, {"00gbad": {"00u1"}, "00gok": {"00u1"}})
    state = resolve(d, catalog)
    assert state.invalid["00u1"].source == "group:00gbad"


def test_statuses() -> None:
    statuses = {
        "ACTIVE": True,
        "PROVISIONED": True,
        "RECOVERY": True,
        "PASSWORD_EXPIRED": True,
        "LOCKED_OUT": True,
        "SUSPENDED": False,
        "DEPROVISIONED": False,
        "STAGED": False,
    }
    people = [person(f"00u{s}", status=s) for s in statuses]
    d = directory(people, GRANTS, {"00gemployees": {p.okta_id for p in people}})
    users = resolve(d, catalog).users
    assert {s: users[f"00u{s}"].active for s in statuses} == statuses
    assert users["00uSTAGED"].staged


def test_catalog_accepts_ids_names_and_single_element_lists() -> None:
    assert catalog.resolve(ADMIN) == ADMIN
    assert catalog.resolve("Admin") == ADMIN
    assert catalog.resolve([" Editor "]) == EDITOR
    assert catalog.resolve(["Admin", "Editor"]) is None
    assert catalog.resolve("admin") is None
    assert catalog.resolve(7) is None
