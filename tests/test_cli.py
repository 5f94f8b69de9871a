"""The other commands end to end: plan, demo, sim okta."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import httpx

from .conftest import Env
from .helpers import ADMIN


def test_plan_prints_the_changes_and_writes_nothing(env: Env) -> None:
    result = env.run("plan")
    assert result.code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["ACTION", "PERSON", "ROLE", "FIELDS"]
    creates = [line for line in lines if line.startswith("create")]
    assert len(creates) == 5
    assert any("dave@example.com" in line and "Employee" in line for line in creates)
    assert "Plan: 5 to create, 0 to update, 0 to reactivate, 0 to deactivate" in result.stdout
    assert not (env.tmp_path / "state.db").exists()
    assert env.scim.count() == 0


def test_plan_after_a_change_and_as_json(env: Env) -> None:
    assert env.run("run", "--once").code == 0
    env.org.set_group_profile(env.ids["editors"], {"vanta_roles": ADMIN})
    env.org.suspend(env.ids["carol"])
    text = env.run("plan")
    assert any(
        line.split()[:5] == ["update", "bob@example.com", "Editor", "->", "Admin"]
        for line in text.stdout.splitlines()
    ), text.stdout
    result = env.run("plan", "--json")
    assert result.code == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["totals"] == {
        "create": 0,
        "update": 1,
        "reactivate": 0,
        "deactivate": 1,
        "unchanged": 3,
        "skipped": 0,
        "groups_create": 0,
        "groups_rename": 0,
        "members_add": 0,
        "members_remove": 0,
        "groups_delete": 0,
        "groups_unmanage": 0,
        "held": 0,
    }
    changes = {c["user_name"]: c for c in plan["changes"]}
    assert changes["bob@example.com"]["previous_role"] == "Editor"
    assert changes["bob@example.com"]["role"] == "Admin"
    assert changes["carol@example.com"]["action"] == "deactivate"
    before = env.scim.count()
    env.run("plan")
    assert env.scim.count() == before


def test_plan_with_okta_down_exits_4(env: Env) -> None:
    bad = env.tmp_path / "bad-token"
    bad.write_text("nope-nope-nope\n")
    result = env.run("plan", config=env.config(okta={"token_file": str(bad)}))
    assert result.code == 4
    assert "Invalid token provided" in result.stderr


def test_demo_runs_with_no_network() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "syncd", "demo"], capture_output=True, text=True, timeout=180
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "== Downstream now:" in proc.stdout
    assert "Cycle 2 made 0 SCIM writes: nothing left to do." in proc.stdout
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    finished = [e for e in events if e["event"] == "sync.finished"]
    assert len(finished) == 2
    assert finished[0]["created"] >= 40
    assert finished[1]["drift_found"] == 0 and finished[1]["scim_requests"] == 2  # Users, Groups
    assert any(e["event"] == "user.invalid_role" for e in events)


def test_sim_okta_command_serves_an_org() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "syncd",
            "sim",
            "okta",
            "--port",
            str(port),
            "--generate",
            "60",
            "--token",
            "cli-sim-token",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()
        assert banner.startswith(f"Okta simulator: http://127.0.0.1:{port} app 0oa")
        app_id = banner.split(" app ")[1].split()[0]
        for _ in range(200):  # the banner comes just before uvicorn binds
            try:
                response = httpx.get(
                    f"http://127.0.0.1:{port}/api/v1/apps/{app_id}/users?limit=500",
                    headers={"Authorization": "SSWS cli-sim-token"},
                )
                break
            except httpx.ConnectError:
                import time

                time.sleep(0.05)
        else:
            raise AssertionError("the simulator never accepted a connection")
        assert response.status_code == 200
        assert len(response.json()) > 40
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_sim_okta_bad_inputs_are_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    cases = {
        "missing": ([str(tmp_path / "nope.json")], "No such file or directory"),
        "json": (["{"], "not valid JSON"),
        "keys": (['{"people": []}'], "unknown keys people"),
    }
    for name, (content, expected) in cases.items():
        path = content[0] if name == "missing" else str(bad)
        if name != "missing":
            bad.write_text(content[0])
        proc = subprocess.run(
            [sys.executable, "-m", "syncd", "sim", "okta", "--data", path],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 2, (name, proc.stderr)
        assert proc.stderr.startswith(f"syncd: org file {path}: ") and expected in proc.stderr
    proc = subprocess.run(
        [sys.executable, "-m", "syncd", "sim", "okta", "--rate-limit", "apps=lots"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "--rate-limit 'apps=lots': expected FAMILY=N" in proc.stderr


def test_allow_deactivations_goes_with_once(env: Env) -> None:
    for argv in (
        ["run", "--allow-deactivations", "3"],
        ["run", "--once", "--allow-deactivations", "-1"],
    ):
        result = env.run(*argv)
        assert result.code == 2
        assert "--allow-deactivations N goes with --once, and N is 0 or more" in result.stderr


def test_a_corrupt_checkpoint_exits_2_with_one_line(env: Env) -> None:
    (env.tmp_path / "state.db").write_bytes(b"garbage" * 500)
    for argv in (["run", "--once"], ["status"], ["plan"]):
        result = env.run(*argv)
        assert result.code == 2, (argv, result.stderr)
        assert "is not a usable syncd checkpoint database" in result.stderr
        assert "Traceback" not in result.stderr


def test_a_checkpoint_held_by_another_program_is_not_called_damaged(env: Env) -> None:
    import sqlite3

    assert env.run("run", "--once").code == 0
    holder = sqlite3.connect(env.tmp_path / "state.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # an operator's sqlite3 shell, mid-write
    try:
        result = env.run("run", "--once")  # waits out the busy timeout (5 s), then stops
    finally:
        holder.rollback()
        holder.close()
    assert result.code == 2, result.stderr
    assert "checkpoint database unavailable: database is locked" in result.stderr
    assert "move it away" not in result.stderr and "Traceback" not in result.stderr
    assert env.run("run", "--once").code == 0  # nothing was lost: it simply runs again


def test_a_checkpoint_corrupt_past_its_header_exits_2(env: Env) -> None:
    assert env.run("run", "--once").code == 0
    db = env.tmp_path / "state.db"
    import sqlite3

    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(db.read_bytes())
    page = 4096
    data[page : page * 3] = b"\xde\xad\xbe\xef" * (page // 2)  # the pages after the header
    db.write_bytes(bytes(data))
    for argv in (["run", "--once"], ["status"]):  # (a query that misses the bad pages works)
        result = env.run(*argv)
        assert result.code == 2, (argv, result.stderr)
        assert "checkpoint database" in result.stderr and "Traceback" not in result.stderr
