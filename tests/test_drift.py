"""Drift detection and repair end to end: changes made by hand in scim2-server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from .conftest import Env, make_env
from .helpers import ADMIN, SCIM_TOKEN
from .test_push_groups import add_teams, groups_downstream

HEADERS = {"Authorization": f"Bearer {SCIM_TOKEN}"}
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def drift_config(env: Env, **sync: Any) -> Path:
    return env.config(sync={"drift_check": True, **sync}, scim={"push_groups": ["Team-Payments"]})


def by_name(env: Env) -> dict[str, dict[str, Any]]:
    return {u["userName"]: u for u in env.scim.users()}


def add_user_by_hand(env: Env, user_name: str) -> None:
    """An active user created directly in scim2-server, as an admin or another tool would."""
    httpx.post(
        f"{env.scim_url}/Users",
        json={
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": user_name,
            "active": True,
        },
        headers=HEADERS,
    ).raise_for_status()


def tamper(env: Env) -> None:
    """What an admin (or another tool) does by hand downstream."""
    users = by_name(env)
    url = env.scim_url

    def patch(path: str, *operations: dict[str, Any]) -> None:
        body = {"schemas": [PATCH], "Operations": list(operations)}
        httpx.patch(f"{url}/{path}", json=body, headers=HEADERS).raise_for_status()

    patch(
        f"Users/{users['bob@example.com']['id']}",
        {"op": "replace", "path": "vanta_roles", "value": ADMIN},
    )
    patch(
        f"Users/{users['carol@example.com']['id']}",
        {"op": "replace", "path": "active", "value": False},
    )
    patch(
        f"Users/{users['alice@example.com']['id']}",
        {"op": "replace", "path": "displayName", "value": "Alicia"},
    )
    httpx.delete(
        f"{url}/Users/{users['dave@example.com']['id']}", headers=HEADERS
    ).raise_for_status()
    add_user_by_hand(env, "intruder@example.com")
    group = groups_downstream(env)["Team-Payments"]
    patch(
        f"Groups/{group['id']}",
        {"op": "replace", "path": "displayName", "value": "Payments (renamed by hand)"},
        {"op": "remove", "path": f'members[value eq "{users["carol@example.com"]["id"]}"]'},
    )


def kinds(findings: list[dict[str, Any]]) -> set[tuple[str, str, str | None]]:
    return {(f["kind"], f["name"], f["field"]) for f in findings}


def test_drift_is_reported_then_repaired(env: Env) -> None:
    add_teams(env)
    config = drift_config(env)
    first = env.run("run", "--once", config=config)
    assert first.code == 0
    assert first.one("drift.summary")["total"] == 0
    assert env.run("drift", config=config).code == 0
    tamper(env)

    result = env.run("drift", "--json", config=config)
    assert result.code == 1
    findings = json.loads(result.stdout)
    assert kinds(findings) == {
        ("role_mismatch", "bob@example.com", "vanta_roles"),
        ("active_mismatch", "carol@example.com", "active"),
        ("attribute_mismatch", "alice@example.com", "displayName"),
        ("missing", "dave@example.com", None),
        ("unmanaged_active", "intruder@example.com", "active"),
        ("attribute_mismatch", "Team-Payments", "displayName"),
        ("membership_mismatch", "Team-Payments", "members"),
    }
    role = next(f for f in findings if f["kind"] == "role_mismatch")
    assert (role["expected"], role["actual"]) == ("Editor", "Admin")
    # The log lines of `syncd drift` go to stderr.
    detected = [json.loads(line) for line in result.stderr.splitlines() if line.startswith('{"')]
    assert sum(1 for e in detected if e["event"] == "drift.detected") == 7
    assert all(e["level"] == "warning" for e in detected if e["event"] == "drift.detected")
    summary = next(e for e in detected if e["event"] == "drift.summary")
    assert (summary["total"], summary["unmanaged_active"], summary["attribute_mismatch"]) == (
        7,
        1,
        2,
    )
    text = env.run("drift", config=config).stdout
    assert "Drift: 1 role_mismatch, 1 active_mismatch, 2 attribute_mismatch, 1 missing" in text

    # A cycle puts the managed ones back, and only reports the unmanaged one.
    result = env.run("run", "--once", config=config)
    assert result.code == 0, result.stderr
    finished = result.one("sync.finished")
    assert (finished["drift_found"], finished["drift_repaired"]) == (7, 5)
    users = by_name(env)
    assert users["bob@example.com"]["vanta_roles"] != ADMIN
    assert users["carol@example.com"]["active"] is True
    assert users["alice@example.com"]["displayName"] == "Alice Admin"
    assert users["dave@example.com"]["active"] is True  # re-created
    assert users["intruder@example.com"]["active"] is True  # never touched
    group = groups_downstream(env)["Team-Payments"]
    assert group["member_names"] == {"alice@example.com", "carol@example.com"}
    assert all(e.get("repair") for e in result.named("user.updated"))

    result = env.run("drift", "--json", config=config)
    assert result.code == 1
    assert kinds(json.loads(result.stdout)) == {
        ("unmanaged_active", "intruder@example.com", "active")
    }
    intruder = by_name(env)["intruder@example.com"]["id"]
    httpx.delete(f"{env.scim_url}/Users/{intruder}", headers=HEADERS).raise_for_status()
    assert env.run("drift", config=config).code == 0


def test_report_only_changes_nothing(env: Env) -> None:
    add_teams(env)
    config = drift_config(env, drift_action="report")
    env.run("run", "--once", config=config)
    tamper(env)
    before = env.scim.users()
    env.scim.reset_counts()
    result = env.run("run", "--once", config=config)
    assert result.code == 0
    assert result.one("sync.finished")["drift_found"] == 7
    assert env.scim.count("GET") == env.scim.count()  # only reads
    assert env.scim.users() == before


def test_membership_is_not_compared_when_the_server_hides_members(tmp_path: Path) -> None:
    with make_env(tmp_path, hide_group_members=True) as env:
        add_teams(env)
        config = drift_config(env)
        env.run("run", "--once", config=config)
        group = groups_downstream(env)["Team-Payments"]
        body = {"schemas": [PATCH], "Operations": [{"op": "remove", "path": "members"}]}
        httpx.patch(f"{env.scim_url}/Groups/{group['id']}", json=body, headers=HEADERS)
        result = env.run("drift", "--json", config=config)
        assert result.code == 0
        assert json.loads(result.stdout) == []


def test_repair_never_undoes_what_okta_wants(env: Env) -> None:
    config = env.config(sync={"drift_check": True, "max_deactivations": 1})
    assert env.run("run", "--once", config=config).code == 0
    env.org.unassign_user(env.ids["dave"])
    env.org.remove_member(env.ids["admins"], env.ids["dave"])
    env.org.remove_member(env.ids["employees"], env.ids["dave"])
    env.org.remove_member(env.ids["employees"], env.ids["carol"])
    users = by_name(env)
    body = {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "active", "value": False}]}
    httpx.patch(
        f"{env.scim_url}/Users/{users['carol@example.com']['id']}", json=body, headers=HEADERS
    )
    result = env.run("run", "--once", config=config)
    assert result.code == 3  # two deactivations, more than 1: held
    finished = result.one("sync.finished")
    assert (finished["drift_found"], finished["drift_repaired"]) == (1, 0)
    assert by_name(env)["carol@example.com"]["active"] is False  # not "repaired" back on


def test_repairing_an_inactive_person_keeps_them_inactive(env: Env) -> None:
    config = env.config(sync={"drift_check": True})
    env.run("run", "--once", config=config)
    env.org.suspend(env.ids["carol"])
    env.run("run", "--once", config=config)
    carol = by_name(env)["carol@example.com"]
    body = {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "active", "value": True}]}
    httpx.patch(f"{env.scim_url}/Users/{carol['id']}", json=body, headers=HEADERS)
    result = env.run("run", "--once", config=config)
    assert result.one("sync.finished")["drift_repaired"] == 1
    assert by_name(env)["carol@example.com"]["active"] is False
    entry = json.loads(env.run("history", "--user", "carol@example.com", "--json").stdout)[0]
    assert (entry["action"], entry["after_active"], entry["detail"]["repair"]) == (
        "update",
        False,
        True,
    )
    env.scim.reset_counts()
    result = env.run("run", "--once", config=config)
    assert env.scim.count() == env.scim.count("GET")  # nothing left to write
    assert result.one("sync.finished")["drift_found"] == 0


def test_an_active_account_of_someone_okta_does_not_want_active_is_reported(env: Env) -> None:
    config = env.config(sync={"drift_check": True})
    env.org.suspend(env.ids["carol"])  # assigned, but suspended: never provisioned
    env.run("run", "--once", config=config)
    httpx.post(
        f"{env.scim_url}/Users",
        json={
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "carol@example.com",
            "active": True,
        },
        headers=HEADERS,
    ).raise_for_status()
    result = env.run("drift", "--json", config=config)
    assert result.code == 1
    (finding,) = json.loads(result.stdout)
    assert (finding["kind"], finding["name"]) == ("unmanaged_active", "carol@example.com")
    assert finding["expected"] == "not active (Okta: SUSPENDED)"


def test_members_others_added_are_not_drift_in_an_adopted_group(env: Env) -> None:
    add_teams(env)
    stranger = httpx.post(
        f"{env.scim_url}/Users",
        json={
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "x@corp.example",
        },
        headers=HEADERS,
    ).json()
    httpx.post(
        f"{env.scim_url}/Groups",
        json={
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": "Team-Payments",
            "members": [{"value": stranger["id"]}],
        },
        headers=HEADERS,
    ).raise_for_status()
    config = env.config(sync={"drift_check": True}, scim={"push_groups": ["Team-*"]})
    assert env.run("run", "--once", config=config).one("group.adopted")["group"] == "Team-Payments"
    for _ in range(2):  # no drift, cycle after cycle: the stranger was there first
        finished = env.run("run", "--once", config=config).one("sync.finished")
        assert (finished["drift_found"], finished["drift_repaired"]) == (0, 0)
    # In a group syncd created, a member added by hand is drift: reported, never removed.
    risk = groups_downstream(env)["Team-Risk"]
    body = {
        "schemas": [PATCH],
        "Operations": [{"op": "add", "path": "members", "value": [{"value": stranger["id"]}]}],
    }
    httpx.patch(
        f"{env.scim_url}/Groups/{risk['id']}", json=body, headers=HEADERS
    ).raise_for_status()
    result = env.run("run", "--once", config=config)
    detected = result.one("drift.detected")
    assert (detected["kind"], detected["group"], detected["extra_members"]) == (
        "membership_mismatch",
        "Team-Risk",
        [stranger["id"]],
    )
    assert result.one("sync.finished")["drift_repaired"] == 0
    assert "x@corp.example" in groups_downstream(env)["Team-Risk"]["member_names"]


def test_a_failing_drift_read_is_a_remote_error_not_a_bug(env: Env) -> None:
    config = env.config(sync={"drift_check": True}, scim={"max_attempts": 1})
    assert env.run("run", "--once", config=config).code == 0
    env.org.assign_user(env.ids["carol"], {"vanta_roles": "Editor"})
    # The people's writes are PUTs; the drift check's GET /Users fails.
    env.scim.fail_next("GET", "/Users", 503, times=5)
    result = env.run("run", "--once", config=config)
    assert result.code == 4, (result.code, result.stderr[-2000:])
    assert "internal error" not in result.stderr


def test_an_assigned_person_with_an_invalid_role_is_not_reported_as_unassigned(env: Env) -> None:
    config = env.config(sync={"drift_check": True})
    env.org.assign_user(env.ids["carol"], {"vanta_roles": "Superuser"})  # not in the catalog
    add_user_by_hand(env, "Carol@Example.com")
    assert env.run("run", "--once", config=config).code == 1  # carol skipped: invalid role
    result = env.run("drift", "--json", config=config)
    findings = json.loads(result.stdout)
    # syncd leaves carol exactly as she is (invalid role): her account is not drift, and
    # certainly not "not assigned in Okta".
    assert [f for f in findings if f["name"].lower() == "carol@example.com"] == []
    assert result.code == 0


def _patch_user(env: Env, user_name: str, path: str, value: Any) -> None:
    user = env.downstream()[user_name]
    body = {"schemas": [PATCH], "Operations": [{"op": "replace", "path": path, "value": value}]}
    httpx.patch(f"{env.scim_url}/Users/{user['id']}", json=body, headers=HEADERS).raise_for_status()


def _last_write(env: Env, user_name: str, config: Path) -> dict[str, Any]:
    result = env.run("history", "--user", user_name, "--json", config=config)
    return json.loads(result.stdout)[0]


def test_the_audit_trail_of_a_repair_says_what_the_account_was_before(env: Env) -> None:
    config = env.config(sync={"drift_check": True})
    assert env.run("run", "--once", config=config).code == 0
    # Deactivated by hand downstream: the repair turns the account back on.
    _patch_user(env, "carol@example.com", "active", False)
    assert env.run("run", "--once", config=config).one("sync.finished")["drift_repaired"] == 1
    entry = _last_write(env, "carol@example.com", config)
    assert entry["detail"]["repair"] is True
    assert (entry["before_active"], entry["after_active"]) == (False, True)

    # Someone syncd deactivated gets a new displayName by hand: the repair changes no active flag.
    env.org.suspend(env.ids["bob"])
    assert env.run("run", "--once", config=config).code == 0
    _patch_user(env, "bob@example.com", "displayName", "Robert")
    assert env.run("run", "--once", config=config).one("sync.finished")["drift_repaired"] == 1
    entry = _last_write(env, "bob@example.com", config)
    assert entry["detail"]["repair"] is True
    assert (entry["before_active"], entry["after_active"]) == (False, False)

    # Made an admin by hand: the repair takes it back, and says from what.
    _patch_user(env, "carol@example.com", "vanta_roles", ADMIN)
    result = env.run("run", "--once", config=config)
    changed = result.one("role.changed")
    assert (changed["from"], changed["to"], changed["escalation"]) == ("Admin", "Employee", False)
    entry = _last_write(env, "carol@example.com", config)
    assert (entry["before_role"], entry["after_role"]) == ("Admin", "Employee")


def test_a_failing_group_counts_one_failure_per_cycle(env: Env) -> None:
    add_teams(env)
    config = env.config(
        sync={"drift_check": True, "quarantine_after": 2},
        scim={"push_groups": ["Team-Payments"], "max_attempts": 1},
    )
    assert env.run("run", "--once", config=config).code == 0
    group = groups_downstream(env)["Team-Payments"]
    carol = env.downstream()["carol@example.com"]["id"]
    body = {
        "schemas": [PATCH],
        "Operations": [{"op": "remove", "path": f'members[value eq "{carol}"]'}],
    }
    httpx.patch(
        f"{env.scim_url}/Groups/{group['id']}", json=body, headers=HEADERS
    ).raise_for_status()  # drift: a member syncd added is gone
    env.org.add_member(env.ids["payments"], env.ids["bob"])  # and Okta adds someone
    env.scim.fail_next("PATCH", f"/Groups/{group['id']}", 500, times=10)
    result = env.run("run", "--once", config=config)
    assert result.code == 1
    # One cycle failed for this group: one failure in a row, not quarantined yet
    # (sync.quarantine_after counts cycles).
    failed = result.named("group.failed")
    assert [e["consecutive_failures"] for e in failed] == [1], failed
    assert result.named("resource.quarantined") == []


def test_names_email_and_user_name_changed_by_hand_are_drift_but_case_is_not(env: Env) -> None:
    config = env.config(sync={"drift_check": True})
    assert env.run("run", "--once", config=config).code == 0
    erin = env.downstream()["erin@example.com"]
    emails = [{"value": "someone.else@example.com", "primary": True, "type": "work"}]
    for path, value in (
        ("userName", "erin.renamed@example.com"),
        ("name.givenName", "Eri"),
        ("name.familyName", "Other"),
        ("emails", emails),
    ):
        _patch_user(
            env,
            "erin.renamed@example.com" if path != "userName" else "erin@example.com",
            path,
            value,
        )
    # Only the case differs: the same userName and email to SCIM (caseExact false).
    alice = env.downstream()["alice@example.com"]
    upper = [{**m, "value": m["value"].upper()} for m in alice["emails"]]
    _patch_user(env, "alice@example.com", "emails", upper)
    _patch_user(env, "alice@example.com", "userName", "ALICE@EXAMPLE.COM")

    result = env.run("drift", "--json", config=config)
    assert result.code == 1
    found = {(f["kind"], f["name"], f["field"]) for f in json.loads(result.stdout)}
    assert found == {
        ("attribute_mismatch", "erin@example.com", "userName"),
        ("attribute_mismatch", "erin@example.com", "name.givenName"),
        ("attribute_mismatch", "erin@example.com", "name.familyName"),
        ("attribute_mismatch", "erin@example.com", "emails"),
    }
    repaired = env.run("run", "--once", config=config)
    assert repaired.one("sync.finished")["drift_repaired"] == 1
    back = env.downstream()["erin@example.com"]
    assert back["id"] == erin["id"]
    assert (back["name"], back["emails"]) == (erin["name"], erin["emails"])
    assert env.run("drift", config=config).code == 0
