"""Push Groups end to end: the Okta simulator and scim2-server over loopback HTTP."""

from __future__ import annotations

import math
import os
import signal
import threading
from pathlib import Path
from typing import Any

import httpx

from syncd.sim.okta import OktaOrg
from syncd.sim.scim import Seen

from .conftest import APP_ID, Env, build_org, make_env
from .helpers import CATALOG, EMPLOYEE, SCIM_TOKEN


def add_teams(env: Env) -> None:
    ids, org = env.ids, env.org
    ids["payments"] = org.add_group("Team-Payments", group_id="00gteampayments00001")
    ids["risk"] = org.add_group("Team-Risk", group_id="00gteamrisk000000002")
    ids["other"] = org.add_group("Other", group_id="00gother000000000003")
    for group, people in (
        ("payments", ["alice", "carol"]),
        ("risk", ["bob"]),
        ("other", ["dave"]),
    ):
        for person in people:
            org.add_member(ids[group], ids[person])
    # Someone in a pushed group without the app: never provisioned, never a member downstream.
    ids["zed"] = org.add_user("Zed", "Outsider", "zed@example.com", groups=[ids["engineering"]])


def groups_downstream(env: Env) -> dict[str, dict[str, Any]]:
    """The server's own groups, by displayName, members as a set of userNames."""
    by_id = {u["id"]: u["userName"] for u in env.scim.users()}
    out = {}
    for group in env.scim.groups():
        members = {by_id.get(m["value"], m["value"]) for m in group.get("members") or []}
        out[group["displayName"]] = {**group, "member_names": members}
    return out


def push_config(env: Env, groups: list[str], **scim: Any) -> Path:
    return env.config(scim={"push_groups": groups, **scim})


def test_push_by_name_id_and_glob(env: Env) -> None:
    add_teams(env)
    config = push_config(env, ["Engineering", env.ids["admins"], "Team-*", "Nope-*"])
    result = env.run("run", "--once", config=config)
    assert result.code == 0, result.stderr
    groups = groups_downstream(env)
    assert set(groups) == {"Engineering", "Vanta-Admins", "Team-Payments", "Team-Risk"}
    assert groups["Engineering"]["member_names"] == {"bob@example.com"}  # not zed
    assert groups["Vanta-Admins"]["member_names"] == {
        "alice@example.com",
        "dave@example.com",
        "erin@example.com",
    }
    assert groups["Team-Payments"]["member_names"] == {"alice@example.com", "carol@example.com"}
    assert groups["Team-Payments"]["externalId"] == env.ids["payments"]
    assert result.one("group.not_found")["pattern"] == "Nope-*"
    finished = result.one("sync.finished")
    assert (finished["groups_created"], finished["members_added"]) == (4, 7)
    assert len(result.named("group.created")) == 4
    # A second run makes no group request at all (and no request at all).
    env.scim.reset_counts()
    again = env.run("run", "--once", config=config)
    assert again.code == 0 and env.scim.count() == 0


def test_5000_member_group_takes_exactly_50_member_patches(tmp_path: Path) -> None:
    org = OktaOrg(app_id=APP_ID, roles=CATALOG, seed=5)
    group = org.add_group("Everyone-Vanta")
    org.assign_group(group, 1, {"vanta_roles": EMPLOYEE})
    for i in range(5000):
        org.add_user("Person", f"N{i:04d}", f"person{i:04d}@example.com", groups=[group])
    with make_env(tmp_path, org=(org, {})) as env:
        config = push_config(env, ["Everyone-Vanta"], concurrency=8)
        result = env.run_process("run", "--once", config=config)  # its own core
        assert result.code == 0, result.stderr
        patches = [
            r for r in env.scim.requests if r.method == "PATCH" and r.path.startswith("/Groups")
        ]
        assert len(patches) == math.ceil(5000 / 100) == 50
        assert all(len(p.body["Operations"][0]["value"]) == 100 for p in patches)
        assert env.scim.count("POST", "/Groups") == 1
        assert env.scim.count("GET", "/Groups") == 1  # the displayName lookup before creating
        assert env.scim.count(prefix="/Groups") == 52
        (stored,) = env.scim.groups()
        assert len(stored["members"]) == 5000
        assert result.one("group.members_added")["count"] == 5000
        env.scim.reset_counts()
        assert env.run("run", "--once", config=config).code == 0
        assert env.scim.count() == 0


def test_member_moves_between_two_pushed_groups(env: Env) -> None:
    add_teams(env)
    config = push_config(env, ["Team-*"])
    env.run("run", "--once", config=config)
    env.org.remove_member(env.ids["payments"], env.ids["carol"])
    env.org.add_member(env.ids["risk"], env.ids["carol"])
    env.scim.reset_counts()
    result = env.run("run", "--once", config=config)
    assert result.code == 0
    groups = groups_downstream(env)
    assert groups["Team-Payments"]["member_names"] == {"alice@example.com"}
    assert groups["Team-Risk"]["member_names"] == {"bob@example.com", "carol@example.com"}
    assert env.scim.count("PATCH") == 2 and env.scim.count() == 2
    removed = result.one("group.members_removed")
    assert (removed["group"], removed["count"]) == ("Team-Payments", 1)


def test_rename_in_okta_renames_downstream(env: Env) -> None:
    add_teams(env)
    config = push_config(env, [env.ids["payments"]])
    env.run("run", "--once", config=config)
    env.org.rename_group(env.ids["payments"], "Team-Payments-EU")
    env.scim.reset_counts()
    result = env.run("run", "--once", config=config)
    assert result.code == 0
    renamed = result.one("group.renamed")
    assert (renamed["previous_name"], renamed["group"]) == ("Team-Payments", "Team-Payments-EU")
    (patch,) = env.scim.requests
    assert patch.body["Operations"] == [
        {"op": "replace", "path": "displayName", "value": "Team-Payments-EU"}
    ]
    assert set(groups_downstream(env)) == {"Team-Payments-EU"}


def test_unpush_keep_then_delete_and_deleted_in_okta(env: Env) -> None:
    add_teams(env)
    env.run("run", "--once", config=push_config(env, ["Team-*", "Engineering"]))
    # Team-Risk leaves push_groups with "keep": forgotten, left downstream as it is.
    result = env.run("run", "--once", config=push_config(env, ["Team-Payments", "Engineering"]))
    unmanaged = result.one("group.unmanaged")
    assert (unmanaged["group"], unmanaged["reason"]) == ("Team-Risk", "unpushed")
    assert "Team-Risk" in groups_downstream(env)
    # Later changes to Team-Risk in Okta are not pushed any more.
    env.org.add_member(env.ids["risk"], env.ids["alice"])
    env.run("run", "--once", config=push_config(env, ["Team-Payments", "Engineering"]))
    assert groups_downstream(env)["Team-Risk"]["member_names"] == {"bob@example.com"}
    # Team-Payments unpushed with "delete": DELETE /Groups/{id}.
    env.scim.reset_counts()
    result = env.run(
        "run", "--once", config=push_config(env, ["Engineering"], on_group_unpushed="delete")
    )
    deleted = result.one("group.deleted")
    assert (deleted["group"], deleted["reason"]) == ("Team-Payments", "unpushed")
    assert env.scim.count("DELETE", "/Groups") == 1
    assert set(groups_downstream(env)) == {"Engineering", "Team-Risk"}
    # Engineering deleted in Okta (while another group is still pushed: had nothing matched at
    # all, the empty_read guard would hold the deletion as a suspect read).
    env.org.delete_group(env.ids["engineering"])
    result = env.run(
        "run",
        "--once",
        config=push_config(env, ["Engineering", "Vanta-Admins"], on_group_unpushed="delete"),
    )
    assert result.one("group.deleted")["reason"] == "deleted_in_okta"
    assert result.one("group.not_found")["pattern"] == "Engineering"
    assert set(groups_downstream(env)) == {"Team-Risk", "Vanta-Admins"}


def scim_post(env: Env, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(
        env.scim_url + path, json=body, headers={"Authorization": f"Bearer {SCIM_TOKEN}"}
    )
    response.raise_for_status()
    return dict(response.json())


def test_hand_made_groups_adopted_by_name_and_others_never_touched(env: Env) -> None:
    add_teams(env)
    user = scim_post(
        env,
        "/Users",
        {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "hand@example.com"},
    )
    group_schema = ["urn:ietf:params:scim:schemas:core:2.0:Group"]
    same_name = scim_post(env, "/Groups", {"schemas": group_schema, "displayName": "Team-Payments"})
    hand = scim_post(
        env,
        "/Groups",
        {"schemas": group_schema, "displayName": "Hand-Made", "members": [{"value": user["id"]}]},
    )
    result = env.run(
        "run", "--once", config=push_config(env, ["Team-*"], on_group_unpushed="delete")
    )
    assert result.code == 0
    adopted = result.one("group.adopted")
    assert (adopted["group"], adopted["scim_id"]) == ("Team-Payments", same_name["id"])
    groups = groups_downstream(env)
    assert [g["displayName"] for g in env.scim.groups()].count("Team-Payments") == 1
    assert groups["Team-Payments"]["member_names"] == {"alice@example.com", "carol@example.com"}
    # Unpush everything with "delete": the group syncd created goes; the one it adopted existed
    # before syncd and is only let go (unmanaged); the hand-made one is never touched.
    result = env.run("run", "--once", config=push_config(env, [], on_group_unpushed="delete"))
    assert result.one("group.deleted")["group"] == "Team-Risk"
    unmanaged = result.one("group.unmanaged")
    assert (unmanaged["group"], unmanaged["adopted"]) == ("Team-Payments", True)
    groups = groups_downstream(env)
    assert set(groups) == {"Hand-Made", "Team-Payments"}
    assert groups["Hand-Made"]["meta"]["version"] == hand["meta"]["version"]
    assert groups["Hand-Made"]["member_names"] == {"hand@example.com"}
    assert not [r for r in env.scim.requests if hand["id"] in r.path]


def test_deactivated_person_leaves_groups_and_rejoins_when_reactivated(env: Env) -> None:
    add_teams(env)
    config = push_config(env, ["Team-Payments", "Vanta-Admins"])
    env.run("run", "--once", config=config)
    env.org.suspend(env.ids["alice"])
    result = env.run("run", "--once", config=config)
    assert result.code == 0
    groups = groups_downstream(env)
    assert "alice@example.com" not in groups["Team-Payments"]["member_names"]
    assert "alice@example.com" not in groups["Vanta-Admins"]["member_names"]
    assert result.one("user.deactivated")["user_name"] == "alice@example.com"
    env.org.unsuspend(env.ids["alice"])
    env.run("run", "--once", config=config)
    groups = groups_downstream(env)
    assert "alice@example.com" in groups["Team-Payments"]["member_names"]
    assert "alice@example.com" in groups["Vanta-Admins"]["member_names"]


def test_group_used_for_assignment_and_push(env: Env) -> None:
    config = push_config(env, ["Vanta-Employees", "Vanta-Editors"])
    env.run("run", "--once", config=config)
    env.org.remove_member(env.ids["employees"], env.ids["carol"])  # carol loses the app
    env.org.remove_member(env.ids["editors"], env.ids["bob"])  # bob stays an Employee
    result = env.run("run", "--once", config=config)
    assert result.code == 0
    groups = groups_downstream(env)
    assert "carol@example.com" not in groups["Vanta-Employees"]["member_names"]
    assert "bob@example.com" not in groups["Vanta-Editors"]["member_names"]
    assert "bob@example.com" in groups["Vanta-Employees"]["member_names"]
    assert env.roles()["carol@example.com"] == ("Employee", False)
    assert env.roles()["bob@example.com"] == ("Employee", True)


def test_crash_between_member_batches_resumes_without_loss_or_repeat(tmp_path: Path) -> None:
    org, ids = build_org()
    team = org.add_group("Team-Big")
    for i in range(245):
        org.add_member(team, org.add_user("Big", f"P{i:03d}", f"big{i:03d}@example.com"))
        org.assign_user(org.user(f"big{i:03d}@example.com").id, {"vanta_roles": "Employee"})
    with make_env(tmp_path, org=(org, ids)) as env:
        config = push_config(env, ["Team-Big"], concurrency=8)
        patches: list[Seen] = []
        box: list[Any] = []
        ready = threading.Event()

        def kill_on_second_batch(seen: Seen) -> bool:
            if seen.method == "PATCH" and seen.path.startswith("/Groups"):
                patches.append(seen)
                if len(patches) == 2:
                    ready.wait(10)
                    os.kill(box[0].pid, signal.SIGKILL)
                    return True  # never processed: the crash came between batch 1 and 2
            return False

        env.scim.intercepts.append(kill_on_second_batch)
        proc = env.popen("run", "--once", config=config)
        box.append(proc)
        ready.set()
        proc.communicate(timeout=120)
        assert proc.returncode == -signal.SIGKILL
        env.scim.intercepts.clear()
        (group,) = env.scim.groups()
        assert len(group["members"]) == 100  # batch 1 applied (and recorded)

        env.scim.reset_counts()
        result = env.run("run", "--once", config=config)
        assert result.code == 0, result.stderr
        resumed = [r for r in env.scim.requests if r.method == "PATCH"]
        assert len(resumed) == 2  # batches 2 and 3 only
        sent = [
            m["value"] for p in [patches[0], *resumed] for m in p.body["Operations"][0]["value"]
        ]
        assert len(sent) == len(set(sent)) == 245  # nothing lost, nothing repeated
        (group,) = env.scim.groups()
        assert len(group["members"]) == 245


def test_server_that_hides_members_on_get_still_gets_them_right(tmp_path: Path) -> None:
    with make_env(tmp_path, hide_group_members=True) as env:
        add_teams(env)
        config = push_config(env, ["Team-*"])
        env.run("run", "--once", config=config)
        env.org.remove_member(env.ids["payments"], env.ids["carol"])
        env.org.add_member(env.ids["risk"], env.ids["carol"])
        assert env.run("run", "--once", config=config).code == 0
        listed = httpx.get(
            env.scim_url + "/Groups", headers={"Authorization": f"Bearer {SCIM_TOKEN}"}
        ).json()
        assert all("members" not in g for g in listed["Resources"])  # the quirk is on
        groups = groups_downstream(env)  # the server's own store
        assert groups["Team-Payments"]["member_names"] == {"alice@example.com"}
        assert groups["Team-Risk"]["member_names"] == {"bob@example.com", "carol@example.com"}


def test_group_deleted_downstream_is_recreated_with_its_members(env: Env) -> None:
    add_teams(env)
    config = push_config(env, ["Team-Payments"])
    env.run("run", "--once", config=config)
    (group,) = env.scim.groups()
    httpx.delete(
        f"{env.scim_url}/Groups/{group['id']}", headers={"Authorization": f"Bearer {SCIM_TOKEN}"}
    ).raise_for_status()
    env.org.add_member(env.ids["payments"], env.ids["bob"])
    result = env.run("run", "--once", config=config)
    assert result.code == 0, result.stderr
    created = result.one("group.created")
    assert created["recreated"] is True and created["scim_id"] != group["id"]
    assert groups_downstream(env)["Team-Payments"]["member_names"] == {
        "alice@example.com",
        "bob@example.com",
        "carol@example.com",
    }


def test_plan_shows_group_changes(env: Env) -> None:
    add_teams(env)
    text = env.run("plan", config=push_config(env, ["Team-*"])).stdout
    assert any(
        line.split()[:3] == ["group", "create", "Team-Payments"] for line in text.splitlines()
    )
    assert "Groups: 2 to create, 0 to rename, 3 members to add" in text
    env.run("run", "--once", config=push_config(env, ["Team-*"]))
    env.org.rename_group(env.ids["risk"], "Team-Risk-2")
    env.org.remove_member(env.ids["payments"], env.ids["carol"])
    text = env.run(
        "plan", config=push_config(env, ["Team-Risk*"], on_group_unpushed="delete")
    ).stdout
    lines = [line.split() for line in text.splitlines()]
    assert ["group", "rename", "Team-Risk-2"] in [line[:3] for line in lines]
    assert ["group", "delete", "Team-Payments"] in [line[:3] for line in lines]
    assert "1 to rename" in text and "1 to delete" in text


def test_one_group_failing_does_not_stop_the_others(env: Env) -> None:
    add_teams(env)
    env.scim.fail_next("POST", "/Groups", 400, body="displayName: invalid")
    result = env.run("run", "--once", config=push_config(env, ["Team-*"], concurrency=1))
    assert result.code == 1
    failed = result.one("group.failed")
    assert "displayName: invalid" in failed["error"]
    assert len(env.scim.groups()) == 1
    assert result.one("sync.finished")["groups_failed"] == 1
    assert env.run("run", "--once", config=push_config(env, ["Team-*"])).code == 0
    assert len(env.scim.groups()) == 2


def test_crash_after_a_batch_was_applied_but_not_recorded_resends_only_that_batch(
    tmp_path: Path,
) -> None:
    org, ids = build_org()
    team = org.add_group("Team-Big")
    for i in range(245):
        org.add_member(team, org.add_user("Big", f"P{i:03d}", f"big{i:03d}@example.com"))
        org.assign_user(org.user(f"big{i:03d}@example.com").id, {"vanta_roles": "Employee"})
    with make_env(tmp_path, org=(org, ids)) as env:
        config = push_config(env, ["Team-Big"], concurrency=8)
        box: list[Any] = []
        patches: list[Seen] = []
        ready = threading.Event()

        def kill_after_second_batch(seen: Seen) -> None:
            if seen.method == "PATCH" and seen.path.startswith("/Groups"):
                patches.append(seen)
                if len(patches) == 2 and ready.wait(10):
                    os.kill(box[0].pid, signal.SIGKILL)  # applied downstream, never recorded

        env.scim.hooks.append(kill_after_second_batch)
        box.append(env.popen("run", "--once", config=config))
        ready.set()
        box[0].communicate(timeout=120)
        env.scim.hooks.clear()
        (group,) = env.scim.groups()
        assert len(group["members"]) == 200
        env.scim.reset_counts()
        assert env.run("run", "--once", config=config).code == 0
        resent = [r for r in env.scim.requests if r.method == "PATCH"]
        assert len(resent) == 2  # batch 2 again (it was never recorded), then batch 3
        assert resent[0].body == patches[1].body
        (group,) = env.scim.groups()
        values = [m["value"] for m in group["members"]]
        assert len(values) == len(set(values)) == 245  # an add is idempotent: no member twice


def test_a_group_post_whose_answer_was_lost_makes_one_group_that_stays_syncds(
    env: Env,
) -> None:
    add_teams(env)
    # The server makes the group but its answer is lost (a 502), and the lookup that follows
    # fails too: the first cycle cannot know; the second finds it by name and externalId.
    env.scim.fail_next("POST", "/Groups", 502, served=True)

    def lookups_fail_after_the_post(seen: Seen) -> None:
        if seen.method == "POST" and seen.path == "/Groups":
            env.scim.fail_next("GET", "/Groups", 503, times=2)

    env.scim.hooks.append(lookups_fail_after_the_post)
    config = push_config(env, ["Team-Payments"], max_attempts=2)
    first = env.run("run", "--once", config=config)
    env.scim.hooks.clear()
    assert first.code == 1 and first.one("group.failed")["group"] == "Team-Payments"
    (made,) = env.scim.groups()
    second = env.run("run", "--once", config=config)
    assert second.code == 0, second.stderr
    created = second.one("group.created")
    assert (created["scim_id"], created["recovered"]) == (made["id"], True)
    assert env.scim.count("POST", "/Groups") == 1
    assert groups_downstream(env)["Team-Payments"]["member_names"] == {
        "alice@example.com",
        "carol@example.com",
    }
    # It carries this group's Okta id: syncd made it, so "delete" may delete it.
    result = env.run("run", "--once", config=push_config(env, [], on_group_unpushed="delete"))
    assert result.one("group.deleted")["group"] == "Team-Payments"
    assert env.scim.groups() == []


def test_a_same_named_group_found_after_a_lost_post_is_not_taken_for_syncds(env: Env) -> None:
    add_teams(env)
    env.scim.fail_next("POST", "/Groups", 502)  # not made; the answer says nothing

    def someone_makes_one_by_hand(seen: Seen) -> None:
        if seen.method == "POST" and seen.path == "/Groups" and seen.status == 502:
            env.scim.hooks.clear()
            env.scim.add_group_directly("Team-Payments", externalId="made-by-hand")

    env.scim.hooks.append(someone_makes_one_by_hand)
    config = push_config(env, ["Team-Payments"], max_attempts=2)
    first = env.run("run", "--once", config=config)
    assert first.code == 1 and first.named("scim.create_recovered") == []
    second = env.run("run", "--once", config=config)
    assert second.code == 0, second.stderr
    assert second.one("group.adopted")["group"] == "Team-Payments"  # not "created"
    result = env.run("run", "--once", config=push_config(env, [], on_group_unpushed="delete"))
    assert result.one("group.unmanaged")["adopted"] is True
    assert [g["displayName"] for g in env.scim.groups()] == ["Team-Payments"]


def recreate_cut_short(env: Env, config: Path) -> dict[str, Any]:
    """Team-Payments deleted downstream, then its re-create killed right after the POST."""
    add_teams(env)
    assert env.run("run", "--once", config=config).code == 0
    (old,) = env.scim.groups()
    httpx.delete(
        f"{env.scim_url}/Groups/{old['id']}", headers={"Authorization": f"Bearer {SCIM_TOKEN}"}
    ).raise_for_status()
    env.org.add_member(env.ids["payments"], env.ids["bob"])  # a member PATCH meets the 404
    env.run_killed_after(
        lambda seen: seen.method == "POST" and seen.path == "/Groups" and seen.status == 201,
        config=config,
    )
    (new,) = env.scim.groups()
    assert new["id"] != old["id"] and not new.get("members")
    return new


def test_a_group_re_create_cut_short_is_finished_without_a_second_group(env: Env) -> None:
    config = push_config(env, ["Team-Payments"])
    made = recreate_cut_short(env, config)
    env.scim.reset_counts()
    result = env.run("run", "--once", config=config)
    assert result.code == 0, result.stderr
    created = result.one("group.created")
    assert (created["scim_id"], created["recovered"]) == (made["id"], True)
    assert env.scim.count("POST", "/Groups") == 0
    (group,) = groups_downstream(env).values()
    assert group["member_names"] == {"alice@example.com", "bob@example.com", "carol@example.com"}
    env.scim.reset_counts()
    assert env.run("run", "--once", config=config).code == 0 and env.scim.count() == 0


def test_deleting_a_group_whose_re_create_was_cut_short_deletes_the_new_one(env: Env) -> None:
    made = recreate_cut_short(env, push_config(env, ["Team-Payments"]))
    result = env.run("run", "--once", config=push_config(env, [], on_group_unpushed="delete"))
    assert result.code == 0, result.stderr
    deleted = result.one("group.deleted")
    assert (deleted["scim_id"], deleted.get("already_gone")) == (made["id"], None)
    assert env.scim.groups() == []
