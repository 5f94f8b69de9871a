"""Safety guards end to end: empty and failed reads, the deactivation limit, admin lockout,
quarantine. Okta simulator and scim2-server over loopback."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from syncd.sim.okta import OktaOrg

from .conftest import APP_ID, Env, make_env
from .helpers import ADMIN, CATALOG, EDITOR, EMPLOYEE


def active_count(env: Env) -> int:
    return sum(1 for _, active in env.roles().values() if active)


def test_an_empty_app_user_list_deactivates_nobody(env: Env) -> None:
    assert env.run("run", "--once").code == 0
    for group in ("admins", "editors", "employees"):
        env.org.unassign_group(env.ids[group])
    env.org.unassign_user(env.ids["dave"])
    env.scim.reset_counts()
    result = env.run("run", "--once")
    assert result.code == 3
    tripped = result.one("guard.tripped")
    assert tripped["guard"] == "empty_read"
    assert "treated as a failed read" in tripped["detail"]
    assert env.scim.count() == 0
    assert active_count(env) == 5
    assert result.one("sync.finished")["outcome"] == "guarded"


def test_a_page_failing_after_retries_deactivates_nobody(tmp_path: Path) -> None:
    org = OktaOrg(app_id=APP_ID, roles=CATALOG, seed=3)
    group = org.add_group("Vanta-Employees")
    org.assign_group(group, 1, {"vanta_roles": EMPLOYEE})
    ids = [org.add_user("P", f"N{i}", f"p{i:04d}@example.com", groups=[group]) for i in range(700)]
    with make_env(tmp_path, org=(org, {})) as env:
        config = env.config(okta={"max_attempts": 2}, scim={"concurrency": 8})
        assert env.run_process("run", "--once", config=config).code == 0
        org.remove_member(group, ids[0])  # a real change, on the first page
        env.okta.fail_next(path_prefix="/api/v1/apps/", kind="500", count=1)  # page 1: retried
        env.okta.fail_next(path_prefix="/api/v1/apps/", kind="503", count=2)  # page 2: gives up
        env.scim.reset_counts()
        result = env.run("run", "--once", config=config)
        assert result.code == 4
        assert "gave up after 2 attempts" in result.stderr
        tripped = result.one("guard.tripped")
        assert tripped["guard"] == "failed_read" and "gave up after 2 attempts" in tripped["detail"]
        assert env.scim.count() == 0  # not even the one real deactivation
        assert sum(1 for u in env.scim.users() if u["active"]) == 700


def hundred_people(tmp_path: Path) -> tuple[OktaOrg, dict[str, str]]:
    org = OktaOrg(app_id=APP_ID, roles=CATALOG, seed=4)
    ids = {
        "employees": org.add_group("Vanta-Employees"),
        "admins": org.add_group("Vanta-Admins"),
    }
    org.assign_group(ids["admins"], 1, {"vanta_roles": ADMIN})
    org.assign_group(ids["employees"], 2, {"vanta_roles": EMPLOYEE})
    for i in range(100):
        ids[f"p{i}"] = org.add_user(
            "P", f"N{i}", f"p{i:03d}@example.com", groups=[ids["employees"]]
        )
    org.add_member(ids["admins"], ids["p0"])
    return org, ids


def test_deactivation_limit_holds_deactivations_until_released(tmp_path: Path) -> None:
    org, ids = hundred_people(tmp_path)
    with make_env(tmp_path, org=(org, ids)) as env:
        config = env.config(sync={"max_deactivations": "10%"}, scim={"concurrency": 8})
        assert env.run("run", "--once", config=config).code == 0
        for i in range(70, 100):
            org.remove_member(ids["employees"], ids[f"p{i}"])  # 30 of 100 unassigned
        org.set_group_profile(ids["admins"], {"vanta_roles": ADMIN})
        org.add_member(ids["admins"], ids["p1"])  # an update: Employee -> Admin
        org.add_user("New", "Person", "new@example.com", groups=[ids["employees"]])  # a create

        plan = env.run("plan", config=config)
        assert "Guard deactivation_limit: 30 deactivations planned" in plan.stdout
        assert (
            sum(1 for line in plan.stdout.splitlines() if line.startswith("held deactivate")) == 30
        )

        result = env.run("run", "--once", config=config)
        assert result.code == 3
        tripped = result.one("guard.tripped")
        assert tripped["guard"] == "deactivation_limit"
        assert "30 deactivations planned (30 of 100 active people missing" in tripped["detail"]
        assert "--allow-deactivations 30" in tripped["detail"]
        finished = result.one("sync.finished")
        assert (finished["created"], finished["updated"], finished["deactivated"]) == (1, 1, 0)
        assert finished["held"] == 30
        assert env.roles()["p001@example.com"] == ("Admin", True)
        assert active_count(env) == 101

        # Fewer than planned is not enough: still held.
        assert env.run("run", "--once", "--allow-deactivations", "29", config=config).code == 3
        assert active_count(env) == 101
        result = env.run("run", "--once", "--allow-deactivations", "30", config=config)
        assert result.code == 0, result.stderr
        assert result.one("guard.released")["allowed"] == 30
        assert result.one("sync.finished")["deactivated"] == 30
        assert active_count(env) == 71
        # Released once: the next cycle is guarded again.
        for i in range(40, 70):
            org.remove_member(ids["employees"], ids[f"p{i}"])
        assert env.run("run", "--once", config=config).code == 3


def test_the_last_admin_is_not_demoted_and_other_changes_apply(env: Env) -> None:
    assert env.run("run", "--once").code == 0
    # erin and alice are the only admins; demote both in one cycle, and change carol too.
    env.org.remove_member(env.ids["admins"], env.ids["erin"])
    env.org.remove_member(env.ids["admins"], env.ids["alice"])
    env.org.assign_user(env.ids["carol"], {"vanta_roles": EDITOR})
    result = env.run("run", "--once")
    assert result.code == 3
    tripped = result.one("guard.tripped")
    assert tripped["guard"] == "admin_lockout"
    assert "demotion of alice@example.com" in tripped["detail"]
    assert "demotion of erin@example.com" in tripped["detail"]
    roles = env.roles()
    assert roles["alice@example.com"] == ("Admin", True)
    assert roles["erin@example.com"] == ("Admin", True)
    assert roles["carol@example.com"] == ("Editor", True)
    # Once someone else is an admin, the demotions go through.
    env.org.add_member(env.ids["admins"], env.ids["bob"])
    result = env.run("run", "--once")
    assert result.code == 0
    roles = env.roles()
    assert (roles["alice@example.com"][0], roles["bob@example.com"][0]) == ("Employee", "Admin")
    escalation = [e for e in result.named("role.changed") if e["escalation"]]
    assert [(e["user_name"], e["from"], e["to"], e["level"]) for e in escalation] == [
        ("bob@example.com", "Editor", "Admin", "warning")
    ]


def test_deactivating_the_last_admins_is_refused(env: Env) -> None:
    assert env.run("run", "--once").code == 0
    env.org.suspend(env.ids["alice"])
    env.org.delete_user(env.ids["erin"])
    result = env.run("run", "--once")
    assert result.code == 3
    assert "deactivation of alice@example.com" in result.one("guard.tripped")["detail"]
    assert env.roles()["alice@example.com"] == ("Admin", True)


def test_a_person_failing_five_cycles_is_quarantined_then_released(env: Env) -> None:
    env.scim.intercepts.append(
        lambda seen: (
            seen.method == "POST" and (seen.body or {}).get("userName") == "carol@example.com"
        )
    )  # the server refuses carol's create (503) every time
    config = env.config(scim={"max_attempts": 1})
    for cycle in range(1, 6):
        result = env.run("run", "--once", config=config)
        assert result.code == 1
        assert result.one("user.failed")["consecutive_failures"] == cycle
    quarantined = result.one("resource.quarantined")
    assert (quarantined["user_name"], quarantined["failures"]) == ("carol@example.com", 5)
    env.scim.reset_counts()
    result = env.run("run", "--once", config=config)  # quarantined: not retried
    assert result.code == 1
    assert env.scim.count() == 0
    assert not result.named("user.failed")
    status = env.run("status").stdout
    assert "carol@example.com" in status and "quarantined until" in status

    env.scim.intercepts.clear()
    # An hour passes (the retry time is moved back, as the clock would move forward).
    with sqlite3.connect(env.tmp_path / "state.db") as db:
        db.execute("UPDATE users SET retry_after = '2000-01-01T00:00:00.000Z'")
    result = env.run("run", "--once", config=config)
    assert result.code == 0
    assert result.one("resource.released")["user_name"] == "carol@example.com"
    assert env.roles()["carol@example.com"] == ("Employee", True)
    assert "quarantined" not in env.run("status").stdout


def test_a_malformed_group_assignment_leaves_its_members_untouched(env: Env) -> None:
    assert env.run("run", "--once").code == 0
    # Vanta-Admins (priority 1) is listed first; its record loses its embedded group's name.
    env.okta.fail_next(
        path_prefix=f"/api/v1/apps/{env.org.app.id}/groups",
        kind="corrupt:_embedded.group.profile.name",
    )
    env.scim.reset_counts()
    result = env.run("run", "--once")
    assert result.code == 1
    assert result.one("okta.invalid_record")["okta_id"] == env.ids["admins"]
    skipped = {s["user_name"] for s in json.loads(env.run("plan", "--json").stdout)["skipped"]}
    assert skipped == set()  # the next read is whole again
    assert env.scim.count() == 0  # alice and erin were not demoted from Admin to a lower role
    assert env.roles()["alice@example.com"] == ("Admin", True)
    assert env.roles()["erin@example.com"] == ("Admin", True)
    finished = result.one("sync.finished")
    assert finished["skipped"] == 3  # alice, dave (also in Vanta-Admins) and erin


def test_a_malformed_record_without_an_id_applies_nothing(env: Env) -> None:
    assert env.run("run", "--once").code == 0
    env.org.suspend(env.ids["carol"])  # a real change, held with everything else
    env.okta.fail_next(path_prefix=f"/api/v1/apps/{env.org.app.id}/users", kind="corrupt:id")
    env.scim.reset_counts()
    result = env.run("run", "--once")
    assert result.code == 4
    assert "incomplete read, nothing applied" in result.stderr
    assert result.one("guard.tripped")["guard"] == "failed_read"
    assert env.scim.count() == 0


def test_a_malformed_group_in_the_listing_is_never_retired(env: Env) -> None:
    config = env.config(scim={"push_groups": ["Vanta-*"], "on_group_unpushed": "delete"})
    assert env.run("run", "--once", config=config).code == 0
    assert len(env.scim.groups()) == 3
    env.okta.fail_next(path_prefix="/api/v1/groups", kind="corrupt:profile.name")
    result = env.run("run", "--once", config=config)
    assert result.code == 1
    assert not result.named("group.deleted") and not result.named("group.unmanaged")
    assert len(env.scim.groups()) == 3


def test_a_failed_promotion_does_not_let_the_last_admins_go(env: Env) -> None:
    assert env.run("run", "--once").code == 0
    env.org.remove_member(env.ids["admins"], env.ids["erin"])
    env.org.remove_member(env.ids["admins"], env.ids["alice"])
    env.org.add_member(env.ids["admins"], env.ids["bob"])  # the new admin ...
    bob = env.downstream()["bob@example.com"]["id"]
    env.scim.intercepts.append(lambda seen: seen.method == "PUT" and seen.path == f"/Users/{bob}")
    result = env.run("run", "--once", config=env.config(scim={"max_attempts": 1}))
    assert result.code == 3  # ... whose promotion fails: the demotions are held
    assert result.one("user.failed")["user_name"] == "bob@example.com"
    assert "a promotion failed" in result.one("guard.tripped")["detail"]
    roles = env.roles()
    assert roles["alice@example.com"] == ("Admin", True)
    assert roles["erin@example.com"] == ("Admin", True)


def test_a_held_leaver_s_account_goes_to_a_new_hire_with_the_login_only_once_let_go(
    env: Env,
) -> None:
    config = env.config(sync={"max_deactivations": 0})  # every deactivation is held
    assert env.run("run", "--once", config=config).code == 0
    account = env.downstream()["carol@example.com"]["id"]
    env.org.delete_user(env.ids["carol"])  # carol leaves: her deactivation is held ...
    new = env.org.add_user("Carol", "Newhire", "carol@example.com", groups=[env.ids["employees"]])
    # ... and a new person gets her login: the account is still the leaver's, not adopted.
    result = env.run("run", "--once", config=config)
    assert result.code == 3
    assert "still managed for carol@example.com" in result.one("user.failed")["error"]
    assert env.downstream()["carol@example.com"]["name"]["familyName"] == "Clerk"
    # The operator releases the leaver's deactivation: it deactivates the leaver's account.
    result = env.run("run", "--once", "--allow-deactivations", "1", config=config)
    assert result.one("user.deactivated")["okta_id"] == env.ids["carol"]
    # Now the account is let go: the new hire takes it over (409 -> adopt), once.
    result = env.run("run", "--once", config=config)
    assert result.code == 0, result.stderr
    adopted = result.one("user.adopted")
    assert (adopted["okta_id"], adopted["scim_id"], adopted["taken_over_from"]) == (
        new,
        account,
        env.ids["carol"],
    )
    carol = env.downstream()["carol@example.com"]
    assert (carol["active"], carol["name"]["familyName"]) == (True, "Newhire")
    # One account, one person: the leaver's record no longer claims it, so no drift check
    # "repairs" it back and forth between the two.
    drifting = env.config(sync={"drift_check": True})
    for _ in range(2):
        result = env.run("run", "--once", config=drifting)
        assert result.code == 0, result.stderr
        assert result.one("sync.finished")["drift_found"] == 0
    assert env.run("drift", config=drifting).code == 0
    assert env.downstream()["carol@example.com"]["active"] is True
