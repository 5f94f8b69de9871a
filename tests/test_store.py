"""The checkpoint database: private file, WAL, migrations, records, the run lock."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from syncd.errors import ConfigError, LockHeldError
from syncd.store import SCHEMA_VERSION, RunLock, Store


async def test_created_private_in_wal_mode_and_migrated(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "state.db"
    async with await Store.open(path) as store:
        await store.record_applied(
            "00u1", scim_id="s1", user_name="a@x", role="r", active=True, applied={"a": 1}
        )
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


async def test_records_intent_result_and_failures(tmp_path: Path) -> None:
    async with await Store.open(tmp_path / "s.db") as store:
        await store.record_intent("00u1", "a@x")
        rec = (await store.users())["00u1"]
        assert rec.intent == "create" and rec.scim_id is None
        assert (await store.record_failure("00u1", "a@x", "boom")).failures == 1
        assert (await store.record_failure("00u1", "a@x", "boom again")).failures == 2
        await store.record_applied(
            "00u1", scim_id="s1", user_name="a@x", role="r", active=True, applied={"k": "v"}
        )
        rec = (await store.users())["00u1"]
        assert (rec.scim_id, rec.intent, rec.failures, rec.last_error, rec.applied) == (
            "s1",
            None,
            0,
            None,
            {"k": "v"},
        )


async def test_runs_and_meta(tmp_path: Path) -> None:
    async with await Store.open(tmp_path / "s.db") as store:
        await store.start_run("r1", "once")
        await store.finish_run("r1", outcome="success", exit_code=0, counts={"created": 2})
        (run,) = await store.runs()
        assert (run.outcome, run.counts, run.finished_at is not None) == (
            "success",
            {"created": 2},
            True,
        )
        await store.set_meta("k", "v1")
        await store.set_meta("k", "v2")
        assert await store.get_meta("k") == "v2"


async def test_readonly_missing_database_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "absent.db"
    async with await Store.open(path, readonly=True) as store:
        assert await store.users() == {}
    assert not path.exists()


async def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(ConfigError, match="newer than this syncd"):
        await Store.open(path)


def test_run_lock_is_exclusive_across_processes(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from syncd.store import RunLock\n"
            f"l = RunLock(Path({str(db)!r})); l.acquire(); print('held', flush=True); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(LockHeldError, match=rf"pid {holder.pid}"):
            RunLock(db).acquire()
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=10)
    with RunLock(db) as lock:  # released when the holder exited
        assert lock.held
    assert stat.S_IMODE(os.stat(f"{db}.lock").st_mode) == 0o600


async def test_a_corrupt_database_is_named_as_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    path.write_bytes(b"this is not sqlite at all" * 100)
    for readonly in (False, True):
        with pytest.raises(
            ConfigError, match=r"sync\.state_db: .*state\.db is not a usable syncd checkpoint"
        ):
            await Store.open(path, readonly=readonly)


async def test_migration_5_tells_adopted_groups_from_the_audit_trail(tmp_path: Path) -> None:
    from syncd.store import MIGRATIONS

    path = tmp_path / "v3.db"
    with sqlite3.connect(path) as db:
        for number, script in enumerate(MIGRATIONS[:4], start=1):
            db.executescript(script + f"\nPRAGMA user_version = {number};")
        for okta_id, action in (("00gmade", "group_create"), ("00gfound", "group_adopt")):
            db.execute(
                "INSERT INTO groups (okta_id, scim_id, display_name, updated_at) VALUES (?, ?, ?, 'x')",
                (okta_id, f"s-{okta_id}", okta_id),
            )
            db.execute(
                "INSERT INTO writes (at, action, resource_type, okta_id, outcome) VALUES ('x', ?, 'group', ?, 'ok')",
                (action, okta_id),
            )
    async with await Store.open(path) as store:
        groups = await store.groups()
    assert (groups["00gmade"].origin, groups["00gfound"].origin) == ("created", "adopted")


async def test_an_older_schema_is_refused_read_only_and_migrated_by_a_run(tmp_path: Path) -> None:
    from syncd.store import MIGRATIONS

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        db.executescript(MIGRATIONS[0] + "\nPRAGMA user_version = 1;")
    before = path.read_bytes()
    with pytest.raises(ConfigError, match=r"schema version 1; run `syncd run --once`"):
        await Store.open(path, readonly=True)
    assert path.read_bytes() == before  # a read-only command leaves the file untouched
    async with await Store.open(path) as store:
        assert await store.groups() == {}
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    for readonly in (False, True):
        with pytest.raises(ConfigError, match=r"newer than this syncd"):
            await Store.open(path, readonly=readonly)


def test_quarantine_retries_after_1h_then_doubles_up_to_24h() -> None:
    import datetime as dt

    from syncd.store import quarantine_delay

    hours = [quarantine_delay(n, 5) / dt.timedelta(hours=1) for n in range(5, 13)]
    assert hours == [1, 2, 4, 8, 16, 24, 24, 24]
    assert quarantine_delay(3, 3) == dt.timedelta(hours=1)  # counted from quarantine_after
    assert quarantine_delay(10_000, 5) == dt.timedelta(hours=24)
