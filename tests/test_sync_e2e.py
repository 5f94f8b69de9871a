"""`syncd run --once` end to end: the Okta simulator and scim2-server over loopback HTTP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

from syncd.sim.scim import Seen

from .conftest import Env
from .helpers import ADMIN, EDITOR

EXPECTED_FIRST = {
    "alice@example.com": ("Admin", True),
    "bob@example.com": ("Editor", True),
    "carol@example.com": ("Employee", True),
    "dave@example.com": ("Employee", True),  # individual override beats Vanta-Admins
    "erin@example.com": ("Admin", True),  # three groups: the highest priority wins
}


def test_first_sync_creates_everyone_with_their_role(env: Env) -> None:
    result = env.run("run", "--once")
    assert result.code == 0, result.stderr
    assert env.roles() == EXPECTED_FIRST
    finished = result.one("sync.finished")
    assert finished["outcome"] == "success"
    assert (finished["created"], finished["updated"], finished["failed"]) == (5, 0, 0)
    assert finished["scim_requests"] == 5
    assert finished["okta_requests"] == 5  # app users, group assignments, 3 role groups
    created = {e["user_name"]: e for e in result.named("user.created")}
    assert created["dave@example.com"]["role"] == "Employee"
    assert all(e["run_id"] == finished["run_id"] for e in result.events if "run_id" in e)
    user = env.downstream()["alice@example.com"]
    assert user["externalId"] == env.ids["alice"]
    assert user["name"] == {"givenName": "Alice", "familyName": "Admin"}
    assert user["displayName"] == "Alice Admin"
    assert user["emails"] == [{"value": "alice@example.com", "type": "work", "primary": True}]


def test_second_run_makes_zero_scim_requests(env: Env) -> None:
    assert env.run("run", "--once").code == 0
    env.scim.reset_counts()
    result = env.run("run", "--once")
    assert result.code == 0
    assert env.scim.count() == 0
    finished = result.one("sync.finished")
    assert (finished["unchanged"], finished["scim_requests"]) == (5, 0)


# Tests of the role rules that demote every admin run without admin-lockout protection
# (roles.admin = []); the guard itself is tested in test_guards.py.
NO_ADMIN_GUARD = {"roles": {"admin": []}}


def test_priority_change_moves_the_role(env: Env) -> None:
    env.run("run", "--once")
    env.org.set_group_priority(env.ids["employees"], 0)  # Employees now outrank the rest
    env.scim.reset_counts()
    result = env.run("run", "--once", config=env.config(**NO_ADMIN_GUARD))
    assert result.code == 0
    roles = env.roles()
    assert roles["bob@example.com"] == ("Employee", True)
    assert roles["alice@example.com"] == ("Employee", True)
    assert roles["dave@example.com"] == ("Employee", True)  # unchanged: his own assignment
    updated = {e["user_name"]: e for e in result.named("user.updated")}
    assert set(updated) == {"alice@example.com", "bob@example.com", "erin@example.com"}
    assert updated["bob@example.com"]["previous_role"] == "Editor"
    assert updated["bob@example.com"]["changed_fields"] == ["role"]
    assert env.scim.count("PUT") == 3 and env.scim.count() == 3


def test_tie_is_broken_by_the_lowest_group_id(env: Env) -> None:
    env.org.set_group_priority(env.ids["editors"], 1)  # same priority as Vanta-Admins
    env.org.add_member(env.ids["editors"], env.ids["alice"])
    assert env.run("run", "--once").code == 0
    # 00gadmins... < 00geditors...: Admin wins for alice.
    assert env.roles()["alice@example.com"] == ("Admin", True)
    env.org.set_group_priority(env.ids["admins"], 1)
    env.org.set_group_priority(env.ids["editors"], 0)
    assert env.run("run", "--once", config=env.config(**NO_ADMIN_GUARD)).code == 0
    assert env.roles()["alice@example.com"] == ("Editor", True)


def test_role_change_on_the_group_assignment_is_an_update(env: Env) -> None:
    env.run("run", "--once")
    env.org.set_group_profile(env.ids["editors"], {"vanta_roles": ADMIN})
    result = env.run("run", "--once")
    assert env.roles()["bob@example.com"] == ("Admin", True)
    assert result.named("user.updated")[0]["user_name"] == "bob@example.com"


def test_unassign_suspend_delete_and_no_role_deactivate_then_reassign_reactivates(env: Env) -> None:
    env.run("run", "--once")
    env.org.remove_member(env.ids["employees"], env.ids["carol"])  # carol: no group left
    env.org.suspend(env.ids["bob"])
    env.org.delete_user(env.ids["erin"])
    env.org.unassign_user(env.ids["dave"])
    env.org.remove_member(env.ids["admins"], env.ids["dave"])
    env.org.remove_member(env.ids["employees"], env.ids["dave"])
    env.org.assign_user(env.ids["alice"], {})  # individual assignment, no role value ...
    env.org.remove_member(env.ids["admins"], env.ids["alice"])
    env.org.remove_member(env.ids["employees"], env.ids["alice"])  # ... and no role group
    result = env.run("run", "--once", config=env.config(**NO_ADMIN_GUARD))
    assert result.code == 0, result.stderr
    roles = env.roles()
    assert all(not active for _, active in roles.values()), roles
    assert result.one("sync.finished")["deactivated"] == 5
    assert {e["user_name"] for e in result.named("user.no_role")} == {"alice@example.com"}
    assert all(
        r.body["Operations"][0]["value"] == {"active": False}
        for r in env.scim.requests
        if r.method == "PATCH"
    )

    env.org.unsuspend(env.ids["bob"])
    env.org.add_member(env.ids["employees"], env.ids["carol"])
    result = env.run("run", "--once")
    assert result.code == 0
    assert env.roles()["bob@example.com"] == ("Editor", True)
    assert env.roles()["carol@example.com"] == ("Employee", True)
    assert {e["user_name"] for e in result.named("user.reactivated")} == {
        "bob@example.com",
        "carol@example.com",
    }


def test_login_change_updates_user_name(env: Env) -> None:
    env.run("run", "--once")
    env.org.change_login(
        env.ids["carol"], "carol.clerk@example.com", email="carol.clerk@example.com"
    )
    result = env.run("run", "--once")
    assert result.code == 0
    users = env.downstream()
    assert "carol@example.com" not in users
    assert users["carol.clerk@example.com"]["externalId"] == env.ids["carol"]
    assert set(result.one("user.updated")["changed_fields"]) == {"userName", "email"}
    assert len(users) == 5


def test_existing_downstream_user_is_adopted_on_409(env: Env) -> None:
    import httpx

    from .helpers import SCIM_TOKEN

    pre = httpx.post(
        env.scim_url + "/Users",
        json={
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "Bob@Example.com",
            "active": True,
        },
        headers={"Authorization": f"Bearer {SCIM_TOKEN}"},
    )
    assert pre.status_code == 201
    result = env.run("run", "--once")
    assert result.code == 0, result.stderr
    adopted = result.one("user.adopted")
    assert adopted["scim_id"] == pre.json()["id"]
    users = [u for u in env.scim.users() if u["userName"].lower() == "bob@example.com"]
    assert len(users) == 1
    assert users[0]["vanta_roles"] == EDITOR and users[0]["externalId"] == env.ids["bob"]
    env.scim.reset_counts()
    assert env.run("run", "--once").code == 0
    assert env.scim.count() == 0


def test_user_deleted_downstream_is_recreated_on_404(env: Env) -> None:
    import httpx

    from .helpers import SCIM_TOKEN

    env.run("run", "--once")
    carol = env.downstream()["carol@example.com"]
    httpx.delete(
        f"{env.scim_url}/Users/{carol['id']}", headers={"Authorization": f"Bearer {SCIM_TOKEN}"}
    ).raise_for_status()
    env.org.assign_user(env.ids["carol"], {"vanta_roles": "Editor"})
    result = env.run("run", "--once")
    assert result.code == 0, result.stderr
    event = result.one("user.updated")
    assert event["recreated"] is True and event["scim_id"] != carol["id"]
    assert env.roles()["carol@example.com"] == ("Editor", True)
    env.scim.reset_counts()
    assert env.run("run", "--once").code == 0 and env.scim.count() == 0


def test_invalid_role_skips_only_that_person(env: Env) -> None:
    env.run("run", "--once")
    env.org.assign_user(env.ids["carol"], {"vanta_roles": "Superuser"})
    env.org.assign_group(env.ids["editors"], 2, {"vanta_roles": ADMIN})  # bob changes too
    env.org.suspend(env.ids["alice"])
    result = env.run("run", "--once")
    assert result.code == 1
    invalid = result.one("user.invalid_role")
    assert (invalid["user_name"], invalid["value"]) == ("carol@example.com", "Superuser")
    roles = env.roles()
    assert roles["carol@example.com"] == ("Employee", True)  # exactly as she was
    assert roles["bob@example.com"] == ("Admin", True)
    assert roles["alice@example.com"] == ("Admin", False)
    assert result.one("sync.finished")["skipped"] == 1
    assert result.one("sync.finished")["outcome"] == "partial"


def test_okta_401_exits_4_with_oktas_message(env: Env) -> None:
    bad = env.tmp_path / "wrong-token"
    bad.write_text("not-the-right-token-123\n")
    result = env.run("run", "--once", config=env.config(okta={"token_file": str(bad)}))
    assert result.code == 4
    assert "E0000011" in result.stderr and "Invalid token provided" in result.stderr
    assert "not-the-right-token-123" not in result.stdout + result.stderr
    assert result.one("sync.finished")["outcome"] == "failed"
    assert result.named("guard.tripped") == []  # refused credentials are not a suspect read
    assert env.scim.count() == 0


def test_scim_401_exits_4(env: Env) -> None:
    bad = env.tmp_path / "wrong-scim"
    bad.write_text("wrong-scim-token-456\n")
    result = env.run("run", "--once", config=env.config(scim={"token_file": str(bad)}))
    assert result.code == 4
    assert "SCIM server refused our credentials" in result.stderr
    assert "wrong-scim-token-456" not in result.stdout + result.stderr


def test_concurrent_run_exits_5(env: Env) -> None:
    config = env.config()
    db = env.tmp_path / "state.db"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path; from syncd.store import RunLock\n"
            f"lock = RunLock(Path({str(db)!r})); lock.acquire(); print('held', flush=True)\n"
            "sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        result = env.run("run", "--once", config=config)
        assert result.code == 5
        assert "another syncd run" in result.stderr and str(holder.pid) in result.stderr
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=10)
    assert env.scim.count() == 0


def test_crash_after_post_before_record_leaves_no_duplicate(env: Env) -> None:
    config = env.config(scim={"concurrency": 1})
    proc_box: list[subprocess.Popen[str]] = []
    ready = threading.Event()
    killed: list[str] = []

    def kill_after_first_create(seen: Seen) -> None:
        if seen.method == "POST" and seen.path == "/Users" and seen.status == 201 and not killed:
            ready.wait(10)
            killed.append(seen.body["userName"])
            os.kill(proc_box[0].pid, signal.SIGKILL)

    env.scim.hooks.append(kill_after_first_create)
    proc = env.popen("run", "--once", config=config)
    proc_box.append(proc)
    ready.set()
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert len(killed) == 1 and len(env.scim.users()) == 1  # the POST happened, unrecorded
    env.scim.hooks.clear()

    result = env.run("run", "--once", config=config)
    assert result.code == 0, result.stderr
    users = env.scim.users()
    assert sorted(u["userName"] for u in users) == sorted(EXPECTED_FIRST)  # no duplicate
    assert result.one("user.adopted")["user_name"] == killed[0]
    env.scim.reset_counts()
    assert env.run("run", "--once", config=config).code == 0
    assert env.scim.count() == 0


def test_one_person_failing_does_not_stop_the_others(env: Env) -> None:
    env.scim.fail_next("POST", "/Users", 400, body="emails: invalid value")
    result = env.run("run", "--once", config=env.config(scim={"concurrency": 1}))
    assert result.code == 1
    failed = result.one("user.failed")
    assert "HTTP 400" in failed["error"] and "emails: invalid value" in failed["error"]
    assert failed["consecutive_failures"] == 1
    assert len(env.scim.users()) == 4
    finished = result.one("sync.finished")
    assert (finished["created"], finished["failed"], finished["outcome"]) == (4, 1, "partial")
    result = env.run("run", "--once")
    assert result.code == 0
    assert result.one("user.created")["user_name"] == failed["user_name"]
    assert env.roles() == EXPECTED_FIRST


def test_crash_after_post_then_the_person_leaves_is_found_and_deactivated(env: Env) -> None:
    config = env.config(scim={"concurrency": 1})
    box: list[subprocess.Popen[str]] = []
    ready = threading.Event()

    def kill_after_first_create(seen: Seen) -> None:
        if seen.method == "POST" and seen.status == 201 and ready.wait(10):
            ready.clear()
            os.kill(box[0].pid, signal.SIGKILL)

    env.scim.hooks.append(kill_after_first_create)
    proc = env.popen("run", "--once", config=config)
    box.append(proc)
    ready.set()
    proc.communicate(timeout=60)
    env.scim.hooks.clear()
    (orphan,) = env.scim.users()  # created downstream, never recorded
    okta_id = orphan["externalId"]
    env.org.delete_user(okta_id)  # and meanwhile the person left
    result = env.run("run", "--once", config=config)
    assert result.code == 0, result.stderr
    deactivated = result.one("user.deactivated")
    assert (deactivated["okta_id"], deactivated["scim_id"]) == (okta_id, orphan["id"])
    assert env.downstream()[orphan["userName"]]["active"] is False
    # What the cut-short create made is not known: nothing to compare, nothing to "repair".
    drifting = env.config(scim={"concurrency": 1}, sync={"drift_check": True})
    for _ in range(2):
        again = env.run("run", "--once", config=drifting)
        assert again.code == 0, again.stderr
        assert again.one("sync.finished")["drift_found"] == 0


def test_a_token_echoed_by_the_server_never_reaches_the_logs_the_database_or_status(
    env: Env,
) -> None:
    from .helpers import SCIM_TOKEN

    env.scim.fail_next(
        "POST",
        "/Users",
        400,
        body=f"invalid request with headers Authorization: Bearer {SCIM_TOKEN}",
    )
    result = env.run("run", "--once", config=env.config(scim={"concurrency": 1}))  # asserts logs
    assert result.code == 1
    assert "[REDACTED]" in result.one("user.failed")["error"]
    raw = b"".join(p.read_bytes() for p in env.tmp_path.glob("state.db*"))
    assert SCIM_TOKEN.encode() not in raw
    for argv in (["status"], ["status", "--json"], ["history"], ["history", "--json"]):
        output = env.run(*argv)  # env.run asserts that no token is in the output
        assert "[REDACTED]" in output.stdout


def test_a_reactivation_recreate_cut_short_then_the_person_leaves_is_deactivated(
    env: Env,
) -> None:
    import httpx

    from .helpers import SCIM_TOKEN

    env.run("run", "--once")
    env.org.suspend(env.ids["bob"])
    assert env.run("run", "--once").code == 0
    gone = env.downstream()["bob@example.com"]
    assert gone["active"] is False
    httpx.delete(
        f"{env.scim_url}/Users/{gone['id']}", headers={"Authorization": f"Bearer {SCIM_TOKEN}"}
    ).raise_for_status()
    env.org.unsuspend(env.ids["bob"])
    # The reactivation meets a 404, so bob is created anew: killed after that POST.
    env.run_killed_after(lambda seen: seen.method == "POST" and seen.status == 201)
    again = env.downstream()["bob@example.com"]
    assert again["active"] is True and again["id"] != gone["id"]
    env.org.suspend(env.ids["bob"])  # and bob leaves before the next run
    result = env.run("run", "--once")
    assert result.code == 0, result.stderr
    deactivated = result.one("user.deactivated")
    assert (deactivated["user_name"], deactivated["scim_id"]) == ("bob@example.com", again["id"])
    assert env.downstream()["bob@example.com"]["active"] is False
    assert len(env.scim.users()) == len(EXPECTED_FIRST)
    env.scim.reset_counts()
    assert env.run("run", "--once").code == 0 and env.scim.count() == 0
