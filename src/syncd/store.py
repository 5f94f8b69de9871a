"""The checkpoint database: one row per synced person, each write recorded as it happens.

SQLite through aiosqlite, in WAL mode, file mode 0600, with versioned migrations
(``PRAGMA user_version``). What it keeps:

* ``users``: per Okta person, the SCIM id, the userName, role and active flag last applied, the
  resource last applied (so that an unchanged person costs zero requests and the diff is against
  what syncd itself wrote, never against what a server echoes), an ``intent`` recorded before a
  create (so that a crash between the POST and its record is healed by a lookup, with no
  duplicate), and the consecutive failures with the last error;
* ``runs``: each run's start, end, outcome and counts;
* ``meta``: small learned facts (the PATCH form the SCIM server accepts).

:class:`RunLock` keeps one run at a time per database: an exclusive ``flock`` on
``<state_db>.lock``, released by the kernel if the process dies.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite

from syncd.errors import ConfigError, LockHeldError

MIGRATIONS: list[str] = [
    # 1: people, runs, meta.
    """
    CREATE TABLE users (
        okta_id    TEXT PRIMARY KEY,
        scim_id    TEXT,
        user_name  TEXT NOT NULL,
        role       TEXT,
        active     INTEGER NOT NULL DEFAULT 0,
        applied    TEXT,
        intent     TEXT,
        failures   INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX users_scim_id ON users (scim_id);
    CREATE TABLE runs (
        run_id      TEXT PRIMARY KEY,
        mode        TEXT NOT NULL,
        started_at  TEXT NOT NULL,
        finished_at TEXT,
        outcome     TEXT,
        exit_code   INTEGER,
        counts      TEXT,
        error       TEXT
    );
    CREATE INDEX runs_started ON runs (started_at);
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
    # 2: pushed groups, and one row per member syncd added.
    """
    CREATE TABLE groups (
        okta_id      TEXT PRIMARY KEY,
        scim_id      TEXT,
        display_name TEXT NOT NULL,
        intent       TEXT,
        failures     INTEGER NOT NULL DEFAULT 0,
        last_error   TEXT,
        updated_at   TEXT NOT NULL
    );
    CREATE TABLE group_members (
        group_okta_id TEXT NOT NULL REFERENCES groups (okta_id) ON DELETE CASCADE,
        user_okta_id  TEXT NOT NULL,
        scim_user_id  TEXT NOT NULL,
        PRIMARY KEY (group_okta_id, user_okta_id)
    );
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class UserRecord:
    """What syncd last did for one person."""

    okta_id: str
    scim_id: str | None
    user_name: str
    role: str | None
    active: bool
    applied: dict[str, Any] | None
    intent: str | None
    failures: int
    last_error: str | None

    @property
    def provisioned(self) -> bool:
        return self.scim_id is not None


@dataclass(frozen=True, slots=True)
class GroupRecord:
    """What syncd last did for one pushed group, and the members it added."""

    okta_id: str
    scim_id: str | None
    display_name: str
    intent: str | None
    failures: int
    last_error: str | None
    members: dict[str, str]  # user okta id -> the SCIM user id syncd added


@dataclass(frozen=True, slots=True)
class RunRecord:
    run_id: str
    mode: str
    started_at: str
    finished_at: str | None
    outcome: str | None
    exit_code: int | None
    counts: dict[str, Any]
    error: str | None


def _user(row: aiosqlite.Row) -> UserRecord:
    return UserRecord(
        okta_id=row["okta_id"],
        scim_id=row["scim_id"],
        user_name=row["user_name"],
        role=row["role"],
        active=bool(row["active"]),
        applied=json.loads(row["applied"]) if row["applied"] else None,
        intent=row["intent"],
        failures=row["failures"],
        last_error=row["last_error"],
    )


def _run(row: aiosqlite.Row) -> RunRecord:
    return RunRecord(
        run_id=row["run_id"],
        mode=row["mode"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        outcome=row["outcome"],
        exit_code=row["exit_code"],
        counts=json.loads(row["counts"]) if row["counts"] else {},
        error=row["error"],
    )


class Store:
    """The checkpoint database. Open with :meth:`open`; every ``record_*`` commits at once."""

    def __init__(self, db: aiosqlite.Connection, path: Path | None, readonly: bool) -> None:
        self._db = db
        self.path = path
        self.readonly = readonly

    def __repr__(self) -> str:
        return f"Store(path={str(self.path)!r}, readonly={self.readonly})"

    @classmethod
    async def open(cls, path: Path, *, readonly: bool = False) -> Store:
        """Open (creating and migrating if needed) the database at ``path``.

        ``readonly=True`` never writes anything: a missing database reads as empty.
        """
        if readonly:
            if not path.exists():
                db = await aiosqlite.connect(":memory:")
                store = cls(db, None, True)
                await store._setup(migrate=True)
                return store
            db = await aiosqlite.connect(f"file:{path}?mode=ro", uri=True)
            return await cls._ready(cls(db, path, True), migrate=False)
        _create_private(path)
        db = await aiosqlite.connect(path)
        return await cls._ready(cls(db, path, False), migrate=True)

    @classmethod
    async def _ready(cls, store: Store, *, migrate: bool) -> Store:
        try:
            await store._setup(migrate=migrate)
        except BaseException:
            await store.close()
            raise
        return store

    async def _setup(self, *, migrate: bool) -> None:
        self._db.row_factory = aiosqlite.Row
        await self._db.execute("PRAGMA busy_timeout = 5000")
        if self.path is not None and not self.readonly:
            await self._db.execute("PRAGMA journal_mode = WAL")
            # NORMAL in WAL mode: a commit survives a crash of syncd; after a power cut the last
            # commits may be lost, and the next run heals them by lookup (409 -> adopt).
            await self._db.execute("PRAGMA synchronous = NORMAL")
        await self._db.execute("PRAGMA foreign_keys = ON")
        async with self._db.execute("PRAGMA user_version") as cur:
            row = await cur.fetchone()
        version = int(row[0]) if row else 0
        if version > SCHEMA_VERSION:
            raise ConfigError(
                f"{self.path} has schema version {version}, newer than this syncd "
                f"({SCHEMA_VERSION}); upgrade syncd",
                key="sync.state_db",
            )
        if version < SCHEMA_VERSION:
            if not migrate:
                raise ConfigError(
                    f"{self.path} has schema version {version}; run `syncd run --once` "
                    "to upgrade it first",
                    key="sync.state_db",
                )
            for number in range(version, SCHEMA_VERSION):
                await self._db.executescript(
                    "BEGIN;\n"
                    + MIGRATIONS[number]
                    + f"\nPRAGMA user_version = {number + 1};\nCOMMIT;"
                )
        if self.path is not None and not self.readonly:
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.chmod(f"{self.path}{suffix}", 0o600)

    async def close(self) -> None:
        await self._db.close()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- users ----------------------------------------------------------------------------

    async def users(self) -> dict[str, UserRecord]:
        async with self._db.execute("SELECT * FROM users") as cur:
            return {row["okta_id"]: _user(row) async for row in cur}

    async def user(self, okta_id: str) -> UserRecord | None:
        async with self._db.execute("SELECT * FROM users WHERE okta_id = ?", (okta_id,)) as cur:
            row = await cur.fetchone()
        return _user(row) if row else None

    async def record_intent(self, okta_id: str, user_name: str, intent: str = "create") -> None:
        """Before a create: remember that a resource may exist downstream after this point."""
        await self._db.execute(
            """INSERT INTO users (okta_id, user_name, intent, updated_at) VALUES (?, ?, ?, ?)
               ON CONFLICT (okta_id) DO UPDATE SET intent = excluded.intent,
                   updated_at = excluded.updated_at""",
            (okta_id, user_name, intent, now_iso()),
        )
        await self._db.commit()

    async def record_applied(
        self,
        okta_id: str,
        *,
        scim_id: str | None,
        user_name: str,
        role: str | None,
        active: bool,
        applied: dict[str, Any] | None,
    ) -> None:
        """After a successful write: what the downstream resource now is. Clears failures."""
        await self._db.execute(
            """INSERT INTO users (okta_id, scim_id, user_name, role, active, applied, intent,
                                  failures, last_error, updated_at)
               VALUES (?, ?, ?, ?, ?, ?, NULL, 0, NULL, ?)
               ON CONFLICT (okta_id) DO UPDATE SET scim_id = excluded.scim_id,
                   user_name = excluded.user_name, role = excluded.role,
                   active = excluded.active, applied = excluded.applied, intent = NULL,
                   failures = 0, last_error = NULL, updated_at = excluded.updated_at""",
            (
                okta_id,
                scim_id,
                user_name,
                role,
                int(active),
                json.dumps(applied, sort_keys=True) if applied is not None else None,
                now_iso(),
            ),
        )
        await self._db.commit()

    async def record_failure(self, okta_id: str, user_name: str, error: str) -> int:
        """After a failed write: count it. Returns the consecutive failures so far."""
        await self._db.execute(
            """INSERT INTO users (okta_id, user_name, failures, last_error, updated_at)
               VALUES (?, ?, 1, ?, ?)
               ON CONFLICT (okta_id) DO UPDATE SET failures = failures + 1,
                   last_error = excluded.last_error, updated_at = excluded.updated_at""",
            (okta_id, user_name, error, now_iso()),
        )
        await self._db.commit()
        record = await self.user(okta_id)
        return record.failures if record else 1

    # --- groups ---------------------------------------------------------------------------

    async def groups(self) -> dict[str, GroupRecord]:
        members: dict[str, dict[str, str]] = {}
        async with self._db.execute("SELECT * FROM group_members") as cur:
            async for row in cur:
                members.setdefault(row["group_okta_id"], {})[row["user_okta_id"]] = row[
                    "scim_user_id"
                ]
        async with self._db.execute("SELECT * FROM groups") as cur:
            return {
                row["okta_id"]: GroupRecord(
                    okta_id=row["okta_id"],
                    scim_id=row["scim_id"],
                    display_name=row["display_name"],
                    intent=row["intent"],
                    failures=row["failures"],
                    last_error=row["last_error"],
                    members=members.get(row["okta_id"], {}),
                )
                async for row in cur
            }

    async def record_group_intent(self, okta_id: str, display_name: str) -> None:
        """Before a group create: it may exist downstream after this point."""
        await self._db.execute(
            """INSERT INTO groups (okta_id, display_name, intent, updated_at)
               VALUES (?, ?, 'create', ?)
               ON CONFLICT (okta_id) DO UPDATE SET intent = 'create',
                   updated_at = excluded.updated_at""",
            (okta_id, display_name, now_iso()),
        )
        await self._db.commit()

    async def record_group(
        self, okta_id: str, *, scim_id: str, display_name: str, reset_members: bool = False
    ) -> None:
        """After a group create, adoption or rename. ``reset_members`` forgets its members."""
        await self._db.execute(
            """INSERT INTO groups (okta_id, scim_id, display_name, intent, failures, last_error,
                                   updated_at)
               VALUES (?, ?, ?, NULL, 0, NULL, ?)
               ON CONFLICT (okta_id) DO UPDATE SET scim_id = excluded.scim_id,
                   display_name = excluded.display_name, intent = NULL, failures = 0,
                   last_error = NULL, updated_at = excluded.updated_at""",
            (okta_id, scim_id, display_name, now_iso()),
        )
        if reset_members:
            await self._db.execute("DELETE FROM group_members WHERE group_okta_id = ?", (okta_id,))
        await self._db.commit()

    async def record_members(
        self,
        group_okta_id: str,
        *,
        added: Sequence[tuple[str, str]] = (),
        removed: Sequence[str] = (),
    ) -> None:
        """After one membership PATCH succeeded: its adds and removes, in one transaction."""
        await self._db.executemany(
            "DELETE FROM group_members WHERE group_okta_id = ? AND user_okta_id = ?",
            [(group_okta_id, user) for user in removed],
        )
        await self._db.executemany(
            """INSERT INTO group_members (group_okta_id, user_okta_id, scim_user_id)
               VALUES (?, ?, ?)
               ON CONFLICT (group_okta_id, user_okta_id)
               DO UPDATE SET scim_user_id = excluded.scim_user_id""",
            [(group_okta_id, user, scim) for user, scim in added],
        )
        await self._db.execute(
            "UPDATE groups SET failures = 0, last_error = NULL, updated_at = ? WHERE okta_id = ?",
            (now_iso(), group_okta_id),
        )
        await self._db.commit()

    async def record_group_failure(self, okta_id: str, display_name: str, error: str) -> int:
        await self._db.execute(
            """INSERT INTO groups (okta_id, display_name, failures, last_error, updated_at)
               VALUES (?, ?, 1, ?, ?)
               ON CONFLICT (okta_id) DO UPDATE SET failures = failures + 1,
                   last_error = excluded.last_error, updated_at = excluded.updated_at""",
            (okta_id, display_name, error, now_iso()),
        )
        await self._db.commit()
        async with self._db.execute(
            "SELECT failures FROM groups WHERE okta_id = ?", (okta_id,)
        ) as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 1

    async def forget_group(self, okta_id: str) -> None:
        """Stop managing a group (its member rows go with it)."""
        await self._db.execute("DELETE FROM groups WHERE okta_id = ?", (okta_id,))
        await self._db.commit()

    async def managed_counts(self) -> dict[str, int]:
        """People and groups syncd manages downstream (rows with a SCIM id)."""
        async with self._db.execute(
            """SELECT
                 (SELECT COUNT(*) FROM users WHERE scim_id IS NOT NULL),
                 (SELECT COUNT(*) FROM users WHERE scim_id IS NOT NULL AND active = 1),
                 (SELECT COUNT(*) FROM groups WHERE scim_id IS NOT NULL)"""
        ) as cur:
            row = await cur.fetchone()
        users, active, groups = (int(v) for v in row) if row else (0, 0, 0)
        return {"users": users, "active_users": active, "groups": groups}

    async def failing_users(self) -> list[UserRecord]:
        async with self._db.execute(
            "SELECT * FROM users WHERE failures > 0 ORDER BY failures DESC, user_name"
        ) as cur:
            return [_user(row) async for row in cur]

    async def failing_groups(self) -> list[GroupRecord]:
        return sorted(
            (g for g in (await self.groups()).values() if g.failures > 0),
            key=lambda g: (-g.failures, g.display_name),
        )

    async def last_success(self) -> RunRecord | None:
        """The last run that completed (``success``, or ``partial``: some people failed)."""
        async with self._db.execute(
            "SELECT * FROM runs WHERE outcome IN ('success', 'partial') "
            "ORDER BY started_at DESC LIMIT 1"
        ) as cur:
            row = await cur.fetchone()
        return _run(row) if row else None

    # --- runs -----------------------------------------------------------------------------

    async def start_run(self, run_id: str, mode: str) -> None:
        await self._db.execute(
            "INSERT INTO runs (run_id, mode, started_at) VALUES (?, ?, ?)",
            (run_id, mode, now_iso()),
        )
        await self._db.commit()

    async def finish_run(
        self,
        run_id: str,
        *,
        outcome: str,
        exit_code: int,
        counts: dict[str, Any],
        error: str | None = None,
    ) -> None:
        await self._db.execute(
            """UPDATE runs SET finished_at = ?, outcome = ?, exit_code = ?, counts = ?, error = ?
               WHERE run_id = ?""",
            (now_iso(), outcome, exit_code, json.dumps(counts), error, run_id),
        )
        await self._db.commit()

    async def runs(self, limit: int = 20) -> list[RunRecord]:
        async with self._db.execute(
            "SELECT * FROM runs ORDER BY started_at DESC, rowid DESC LIMIT ?", (limit,)
        ) as cur:
            return [_run(row) async for row in cur]

    # --- meta -----------------------------------------------------------------------------

    async def get_meta(self, key: str) -> str | None:
        async with self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)) as cur:
            row = await cur.fetchone()
        return str(row[0]) if row else None

    async def set_meta(self, key: str, value: str) -> None:
        await self._db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )
        await self._db.commit()


def _create_private(path: Path) -> None:
    """Create the database file (and its directory) readable by its owner only."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
        os.close(fd)
        os.chmod(path, 0o600)
    except OSError as exc:
        raise ConfigError(f"cannot create {path}: {exc.strerror}", key="sync.state_db") from None


class RunLock:
    """An exclusive, non-blocking lock: one run at a time per checkpoint database."""

    def __init__(self, db_path: Path) -> None:
        self.path = Path(f"{db_path}.lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, or raise :class:`LockHeldError` naming the holder's pid."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600)
        except OSError as exc:
            raise ConfigError(
                f"cannot create the lock file {self.path}: {exc.strerror}", key="sync.state_db"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise LockHeldError(
                f"another syncd run (pid {holder}) holds the lock {self.path}; "
                "one run at a time per database"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
