"""The plan: desired state diffed against the checkpoint's record of what syncd applied."""

from __future__ import annotations

from syncd.plan import desired_resource, format_plan, make_plan
from syncd.roles import DesiredState, DesiredUser, InvalidRole, RoleCatalog
from syncd.store import UserRecord

from .helpers import ADMIN, CATALOG, EMPLOYEE

ATTR = "vanta_roles"


def want(
    okta_id: str, role: str | None = EMPLOYEE, status: str = "ACTIVE", login: str | None = None
) -> DesiredUser:
    return DesiredUser(
        okta_id=okta_id,
        user_name=login or f"{okta_id}@example.com",
        given_name="Grace",
        family_name="Hopper",
        display_name="Grace Hopper",
        email=f"{okta_id}@example.com",
        status=status,
        role_id=role,
        role_source="group:00g1",
    )


def record(
    user: DesiredUser, *, active: bool = True, scim_id: str | None = "s1", intent: str | None = None
) -> UserRecord:
    applied = desired_resource(user, ATTR)
    applied["active"] = active
    return UserRecord(
        user.okta_id, scim_id, user.user_name, user.role_id, active, applied, intent, 0, None
    )


def state(*users: DesiredUser, invalid: dict[str, InvalidRole] | None = None) -> DesiredState:
    invalid = invalid or {}
    return DesiredState({u.okta_id: u for u in users}, invalid, set(invalid))


def test_new_person_is_created_and_unchanged_person_costs_nothing() -> None:
    a, b = want("00ua"), want("00ub")
    plan = make_plan(state(a, b), {"00ub": record(b)}, ATTR)
    assert [(c.action, c.okta_id) for c in plan.changes] == [("create", "00ua")]
    assert plan.unchanged == 1
    assert plan.changes[0].resource == desired_resource(a, ATTR)


def test_role_change_is_an_update_with_changed_fields() -> None:
    before = want("00ua", role=EMPLOYEE)
    after = want("00ua", role=ADMIN)
    plan = make_plan(state(after), {"00ua": record(before)}, ATTR)
    (change,) = plan.changes
    assert (change.action, change.previous_role, change.role) == ("update", EMPLOYEE, ADMIN)
    assert change.changed_fields == ("role",)


def test_login_change_updates_user_name() -> None:
    before = want("00ua")
    after = want("00ua", login="new.login@example.com")
    (change,) = make_plan(state(after), {"00ua": record(before)}, ATTR).changes
    assert change.action == "update" and change.changed_fields == ("userName",)


def test_unassigned_suspended_and_no_role_are_deactivated() -> None:
    gone, suspended, norole = want("00ua"), want("00ub"), want("00uc")
    records = {u.okta_id: record(u) for u in (gone, suspended, norole)}
    plan = make_plan(
        state(want("00ub", status="SUSPENDED"), want("00uc", role=None)), records, ATTR
    )
    assert [(c.action, c.okta_id) for c in plan.changes] == [
        ("deactivate", "00ua"),
        ("deactivate", "00ub"),
        ("deactivate", "00uc"),
    ]
    assert all(c.resource and c.resource["active"] is False for c in plan.changes)
    assert plan.no_role == ("00uc@example.com",)


def test_never_provisioned_inactive_person_is_not_created() -> None:
    plan = make_plan(
        state(want("00ua", status="SUSPENDED"), want("00ub", status="STAGED")), {}, ATTR
    )
    assert plan.changes == ()


def test_reassigned_person_is_reactivated() -> None:
    user = want("00ua")
    (change,) = make_plan(state(user), {"00ua": record(user, active=False)}, ATTR).changes
    assert change.action == "reactivate" and change.changed_fields == ("active",)


def test_pending_create_intent_looks_up_first() -> None:
    user = want("00ua")
    pending = UserRecord("00ua", None, user.user_name, None, False, None, "create", 0, None)
    (change,) = make_plan(state(user), {"00ua": pending}, ATTR).changes
    assert change.action == "create" and change.lookup_first


def test_a_re_create_cut_short_then_the_person_left_is_looked_up_and_deactivated() -> None:
    # Deactivated as s1; s1 deleted downstream; reactivated, so re-created: cut short after
    # the POST. The record still holds the gone s1, inactive, with the create intent.
    user = want("00ua")
    cut_short = record(user, active=False, scim_id="s1", intent="create")
    (change,) = make_plan(
        state(want("00ua", status="SUSPENDED")), {"00ua": cut_short}, ATTR
    ).changes
    assert (change.action, change.scim_id, change.lookup_first) == ("deactivate", "s1", True)
    # Settled (no intent), an inactive person who stays away costs nothing.
    settled = record(user, active=False, scim_id="s1")
    assert make_plan(state(), {"00ua": settled}, ATTR).changes == ()


def test_invalid_role_is_skipped_and_not_deactivated() -> None:
    user = want("00ua")
    bad = InvalidRole("00ua", user.user_name, "Superuser", "user")
    plan = make_plan(state(invalid={"00ua": bad}), {"00ua": record(user)}, ATTR)
    assert plan.changes == ()
    assert plan.skipped[0].reason == "invalid_role"
    assert plan.counts["skipped"] == 1


def test_format_plan_table() -> None:
    before, after = want("00ua", role=EMPLOYEE), want("00ua", role=ADMIN)
    plan = make_plan(state(after, want("00ub")), {"00ua": record(before)}, ATTR)
    text = format_plan(plan, RoleCatalog(CATALOG))
    assert "update" in text and "Employee -> Admin" in text
    assert "create" in text and "00ub@example.com" in text
    assert "Plan: 1 to create, 1 to update, 0 to reactivate, 0 to deactivate" in text
    empty = make_plan(state(), {}, ATTR)
    assert "No changes" in format_plan(empty, RoleCatalog(CATALOG))
