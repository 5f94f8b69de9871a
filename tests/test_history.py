"""The audit trail: every write in the checkpoint database, shown by `syncd history`."""

from __future__ import annotations

import json

from .conftest import Env
from .helpers import ADMIN
from .test_push_groups import add_teams


def test_history_lists_every_write_with_before_and_after(env: Env) -> None:
    add_teams(env)
    config = env.config(scim={"push_groups": ["Team-Payments"]})
    assert env.run("run", "--once", config=config).code == 0
    env.org.set_group_profile(env.ids["editors"], {"vanta_roles": ADMIN})  # bob: Editor -> Admin
    env.org.suspend(env.ids["carol"])
    env.scim.fail_next("PUT", "/Users", 500, times=10)
    result = env.run("run", "--once", config=config)
    assert result.code == 1  # bob's update failed
    env.scim.faults.clear()
    assert env.run("run", "--once", config=config).code == 0

    entries = json.loads(env.run("history", "--json").stdout)
    actions = [(e["action"], e["name"], e["outcome"]) for e in reversed(entries)]
    creates = [a for a in actions if a[0] == "create"]
    assert len(creates) == 5 and all(o == "ok" for _, _, o in creates)
    assert ("group_create", "Team-Payments", "ok") in actions
    assert ("members_add", "Team-Payments", "ok") in actions
    assert ("deactivate", "carol@example.com", "ok") in actions
    assert actions.count(("update", "bob@example.com", "failed")) == 1
    assert actions.count(("update", "bob@example.com", "ok")) == 1
    bob = [e for e in entries if e["name"] == "bob@example.com"]
    latest, failed = bob[0], bob[1]
    assert (latest["before_role"], latest["after_role"]) == ("Editor", "Admin")
    assert (failed["before_role"], failed["after_role"], failed["outcome"]) == (
        "Editor",
        "Editor",
        "failed",
    )
    assert "HTTP 500" in failed["detail"]["error"]
    carol = next(e for e in entries if e["action"] == "deactivate")
    assert (carol["before_active"], carol["after_active"]) == (True, False)
    assert all(e["run_id"] for e in entries)

    only_bob = json.loads(env.run("history", "--user", "BOB@example.com", "--json").stdout)
    assert {e["name"] for e in only_bob} == {"bob@example.com"} and len(only_bob) == 3
    assert json.loads(env.run("history", "--since", "2999-01-01", "--json").stdout) == []
    assert len(
        json.loads(env.run("history", "--since", "2000-01-01T00:00:00Z", "--json").stdout)
    ) == len(entries)

    text = env.run("history", "--user", "bob@example.com").stdout
    lines = text.splitlines()
    assert lines[0].split() == ["TIME", "ACTION", "RESOURCE", "ROLE", "ACTIVE", "OUTCOME"]
    assert "Editor -> Admin" in lines[1] and lines[1].rstrip().endswith("ok")
    assert "failed: PUT Users/" in lines[2]


def test_history_with_a_bad_date_and_with_no_database(env: Env) -> None:
    assert env.run("history").stdout.strip() == "No writes recorded."
    result = env.run("history", "--since", "last tuesday")
    assert result.code == 2
    assert "--since 'last tuesday': expected an ISO 8601 date" in result.stderr
