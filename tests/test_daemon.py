"""`syncd run` as a service: schedule, lock, signals, the notify protocol, metrics."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from syncd.errors import LockHeldError
from syncd.metrics import Metrics
from syncd.sim.scim import Seen
from syncd.store import RunLock

from .conftest import Env, build_org, make_env
from .helpers import ADMIN


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def daemon_config(env: Env, **sync: object) -> Path:
    return env.config(sync={"interval": "1s", **sync})


def test_daemon_runs_cycles_and_picks_up_an_okta_change(env: Env) -> None:
    daemon = env.daemon(daemon_config(env))
    try:
        started = daemon.wait_for("daemon.started")
        assert started["schedule"] == "every 1s"
        first = daemon.wait_for("sync.finished")
        assert (first["created"], first["outcome"]) == (5, "success")
        assert daemon.wait_for("sync.finished")["unchanged"] == 5
        env.org.set_group_profile(env.ids["editors"], {"vanta_roles": ADMIN})
        updated = daemon.wait_for("user.updated", user_name="bob@example.com")
        assert updated["role"] == "Admin"
        assert {e["mode"] for e in daemon.events if e["event"] == "sync.started"} == {"daemon"}
    finally:
        code = daemon.stop()
    assert code == 0
    assert daemon.events[-1]["event"] == "daemon.stopped"
    assert env.roles()["bob@example.com"] == ("Admin", True)


def test_sigterm_mid_cycle_finishes_the_write_in_flight_and_exits_0(tmp_path: Path) -> None:
    org, ids = build_org()
    for i in range(150):
        user = org.add_user("Many", f"P{i:03d}", f"many{i:03d}@example.com")
        org.assign_user(user, {"vanta_roles": "Employee"})
    with make_env(tmp_path, org=(org, ids)) as env:
        box: list[int] = []

        def term_on_the_30th_create(seen: Seen) -> bool:
            if seen.method == "POST" and seen.path == "/Users":
                box.append(1)
                if len(box) == 30:
                    os.kill(daemon.pid, signal.SIGTERM)
            return False  # processed as usual: it is the write in flight

        env.scim.intercepts.append(term_on_the_30th_create)
        daemon = env.daemon(daemon_config(env, shutdown_timeout="20s"))
        daemon.wait_for("daemon.stopping", signal="SIGTERM")
        daemon.wait_for("daemon.stopped")
        code = daemon.stop()
        env.scim.intercepts.clear()
        assert code == 0, daemon.stderr
        finished = [e for e in daemon.events if e["event"] == "sync.finished"]
        assert finished[-1]["outcome"] == "interrupted"
        created = len(env.scim.users())
        assert 30 <= created < 155
        with sqlite3.connect(tmp_path / "state.db") as db:
            recorded = db.execute(
                "SELECT COUNT(*) FROM users WHERE scim_id IS NOT NULL"
            ).fetchone()[0]
            pending = db.execute("SELECT COUNT(*) FROM users WHERE intent IS NOT NULL").fetchone()[
                0
            ]
        assert (recorded, pending) == (created, 0)  # every write made was recorded

        result = env.run("run", "--once")
        assert result.code == 0
        posts = Counter(r.body["userName"] for r in env.scim.requests if r.method == "POST")
        assert len(posts) == 155 and set(posts.values()) == {1}  # none lost, none repeated
        assert len(env.scim.users()) == 155


def test_once_during_a_daemon_cycle_exits_5_and_the_daemon_skips_a_held_lock(env: Env) -> None:
    in_cycle, release = threading.Event(), threading.Event()

    def hold_first_create(seen: Seen) -> bool:
        if seen.method == "POST" and not in_cycle.is_set():
            in_cycle.set()
            release.wait(30)  # the daemon's cycle stays in flight meanwhile
        return False

    env.scim.intercepts.append(hold_first_create)
    daemon = env.daemon(daemon_config(env))
    try:
        assert in_cycle.wait(30)
        result = env.run("run", "--once")
        assert result.code == 5
        assert f"(pid {daemon.pid})" in result.stderr
        release.set()
        daemon.wait_for("sync.finished", outcome="success")
        # Now a --once holds the lock (taken between two daemon cycles): the daemon's next
        # cycle is skipped, not queued.
        lock = RunLock(env.tmp_path / "state.db")
        for _ in range(1000):
            try:
                lock.acquire()
                break
            except LockHeldError:  # the daemon is in a cycle: wait for it to end
                time.sleep(0.01)
        else:
            raise AssertionError("the daemon never released the lock between two cycles")
        try:
            skipped = daemon.wait_for("sync.skipped", reason="lock")
            assert "another syncd run" in skipped["detail"]
        finally:
            lock.release()
        daemon.wait_for("sync.finished")
    finally:
        release.set()
        assert daemon.stop() == 0


def test_notify_protocol_messages_arrive_in_order(env: Env, tmp_path: Path) -> None:
    address = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.settimeout(30)
    daemon = env.daemon(
        daemon_config(env), env={"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "200000"}
    )
    messages: list[str] = []
    try:
        while not (
            any("STATUS=last cycle success" in m for m in messages)
            and sum("WATCHDOG=1" in m for m in messages) >= 3
        ):
            messages.append(sock.recv(4096).decode())
        daemon.signal(signal.SIGTERM)
        while "STOPPING=1" not in messages[-1]:
            messages.append(sock.recv(4096).decode())
    finally:
        code = daemon.stop()
        sock.close()
    assert code == 0
    assert messages[0].startswith("READY=1\nSTATUS=")
    status = next(m for m in messages if m.startswith("STATUS=last cycle"))
    assert "5 created" in status
    assert messages.index(status) > 0
    assert messages[-1].startswith("STOPPING=1")


def test_sighup_with_a_broken_file_keeps_the_old_config(env: Env) -> None:
    config = daemon_config(env)
    good = config.read_text()
    daemon = env.daemon(config)
    try:
        daemon.wait_for("sync.finished")
        config.write_text(good + "\n[okta\nbroken = \n")
        daemon.signal(signal.SIGHUP)
        failed = daemon.wait_for("config.reload_failed")
        assert "invalid TOML" in failed["error"]
        daemon.wait_for("sync.finished", outcome="success")  # still syncing, with the old one
        config.write_text(good.replace("[scim]", '[scim]\npush_groups = ["Engineering"]'))
        daemon.signal(signal.SIGHUP)
        daemon.wait_for("config.reloaded")
        created = daemon.wait_for("group.created")
        assert created["group"] == "Engineering"
    finally:
        assert daemon.stop() == 0


def test_metrics_and_healthz_over_http(env: Env) -> None:
    port = free_port()
    config = env.config(sync={"interval": "1s"}, metrics={"listen": f"127.0.0.1:{port}"})
    daemon = env.daemon(config)
    try:
        daemon.wait_for("metrics.listening")
        daemon.wait_for("sync.finished", outcome="success")
        daemon.wait_for("sync.finished")  # and a second, unchanged cycle
        text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        health = httpx.get(f"http://127.0.0.1:{port}/healthz")
    finally:
        assert daemon.stop() == 0
    samples = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }
    assert samples['syncd_runs_total{outcome="success"}'] >= 2
    assert samples['syncd_changes_total{action="created"}'] == 5
    assert samples['syncd_scim_requests_total{method="POST"}'] == 5
    assert samples['syncd_okta_requests_total{endpoint="apps"}'] >= 4
    assert samples['syncd_okta_requests_total{endpoint="groups"}'] >= 6
    assert 'syncd_okta_rate_limit_remaining{bucket="apps"}' in samples
    assert samples["syncd_managed_users"] == 5
    assert samples["syncd_managed_groups"] == 0
    assert samples["syncd_last_success_timestamp_seconds"] > 1_700_000_000
    assert not any(name.endswith("_created") for name in samples)
    assert health.status_code == 200 and health.text.startswith("ok:")


def test_healthz_is_503_without_a_completed_cycle(env: Env) -> None:
    port = free_port()
    bad = env.tmp_path / "bad-token"
    bad.write_text("not-the-okta-token\n")
    config = env.config(
        okta={"token_file": str(bad)},
        sync={"interval": "1s"},
        metrics={"listen": f"127.0.0.1:{port}"},
    )
    daemon = env.daemon(config)
    try:
        failed = daemon.wait_for("sync.failed")
        assert "Invalid token provided" in failed["error"]
        health = httpx.get(f"http://127.0.0.1:{port}/healthz")
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    finally:
        assert daemon.stop() == 0
    assert health.status_code == 503
    assert "no completed sync cycle yet" in health.text
    assert 'syncd_runs_total{outcome="failed"}' in metrics


def test_health_goes_stale_after_three_intervals() -> None:
    now = [1_800_000_000.0]
    metrics = Metrics(expected_interval=60, clock=lambda: now[0])
    metrics.mark_success(now[0])
    now[0] += 179
    assert metrics.healthy()[0]
    now[0] += 2
    ok, detail = metrics.healthy()
    assert not ok and "more than 3 intervals" in detail


@pytest.mark.parametrize(
    ("sync", "expected"),
    [
        ({"interval": "15m", "cron": "*/5 * * * *"}, "sync: give interval or cron, not both"),
        ({"cron": "every five minutes"}, "sync.cron: 'every five minutes' is not a crontab"),
        ({"interval": "15"}, "sync.interval: '15': give a unit"),
        ({"interval": "0s"}, "sync.interval: must be at least 1s"),
        ({"jitter": "soon"}, "sync.jitter: 'soon' is not a duration"),
    ],
)
def test_schedule_config_errors(env: Env, sync: dict[str, object], expected: str) -> None:
    result = env.run("run", config=env.config(sync=sync))
    assert result.code == 2
    assert expected in result.stderr


def test_cron_schedule_is_accepted(env: Env) -> None:
    from syncd.config import load_settings
    from syncd.scheduler import expected_interval, make_trigger

    settings = load_settings(env.config(sync={"cron": "*/5 * * * *", "jitter": "30s"}))
    assert expected_interval(settings) == 300
    assert make_trigger(settings).jitter == 30  # jitter applies to a cron schedule too


def test_sigterm_stops_run_once_after_recording_the_write_in_flight(tmp_path: Path) -> None:
    org, ids = build_org()
    for i in range(100):
        org.assign_user(
            org.add_user("Many", f"P{i:03d}", f"many{i:03d}@example.com"),
            {"vanta_roles": "Employee"},
        )
    with make_env(tmp_path, org=(org, ids)) as env:
        creates: list[str] = []
        box: list[subprocess.Popen[str]] = []

        def term_on_the_20th_create(seen: Seen) -> bool:
            if seen.method == "POST" and seen.path == "/Users":
                creates.append(seen.body["userName"])
                if len(creates) == 20:
                    os.kill(box[0].pid, signal.SIGTERM)
            return False

        env.scim.intercepts.append(term_on_the_20th_create)
        box.append(env.popen("run", "--once"))
        proc = box[0]
        stdout, stderr = proc.communicate(timeout=120)
        env.scim.intercepts.clear()
        assert proc.returncode == 128 + signal.SIGTERM, stderr
        assert "stopped by signal 15, after recording the write in flight" in stderr
        events = [json.loads(line) for line in stdout.splitlines() if line.startswith('{"')]
        assert [e["outcome"] for e in events if e["event"] == "sync.finished"] == ["interrupted"]
        with sqlite3.connect(tmp_path / "state.db") as db:
            recorded = db.execute(
                "SELECT COUNT(*) FROM users WHERE scim_id IS NOT NULL"
            ).fetchone()[0]
            pending = db.execute("SELECT COUNT(*) FROM users WHERE intent IS NOT NULL").fetchone()[
                0
            ]
        assert (recorded, pending) == (len(env.scim.users()), 0)
        assert env.run("run", "--once").code == 0
        posts = Counter(r.body["userName"] for r in env.scim.requests if r.method == "POST")
        assert len(posts) == 105 and set(posts.values()) == {1}
