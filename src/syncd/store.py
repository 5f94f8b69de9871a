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
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite
import anyio

from syncd.errors import ConfigError, LockHeldError
from syncd.log import redact

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
    # 3: quarantine (when a resource that keeps failing may be retried) and the audit trail.
    """
    ALTER TABLE users ADD COLUMN retry_after TEXT;
    ALTER TABLE groups ADD COLUMN retry_after TEXT;
    CREATE TABLE writes (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        at            TEXT NOT NULL,
        run_id        TEXT,
        action        TEXT NOT NULL,
        resource_type TEXT NOT NULL,
        okta_id       TEXT,
        scim_id       TEXT,
        name          TEXT,
        before_role   TEXT,
        after_role    TEXT,
        before_active INTEGER,
        after_active  INTEGER,
        outcome       TEXT NOT NULL,
        detail        TEXT
    );
    CREATE INDEX writes_at ON writes (at);
    CREATE INDEX writes_name ON writes (name COLLATE NOCASE);
    """,
    # 4: whether syncd created a pushed group or adopted one that already existed downstream.
    """
    ALTER TABLE groups ADD COLUMN origin TEXT NOT NULL DEFAULT 'created';
    """,
    # 5: for groups recorded before 4, the audit trail's last create or adopt says which.
    """
    UPDATE groups SET origin = 'adopted' WHERE okta_id IN (
        SELECT w.okta_id FROM writes AS w
        WHERE w.resource_type = 'group' AND w.action = 'group_adopt' AND w.outcome = 'ok'
          AND w.id = (
              SELECT MAX(w2.id) FROM writes AS w2
              WHERE w2.okta_id = w.okta_id AND w2.resource_type = 'group' AND w2.outcome = 'ok'
                AND w2.action IN ('group_create', 'group_adopt')
          )
    );
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)


def now_iso(at: dt.datetime | None = None) -> str:
    at = at or dt.datetime.now(dt.UTC)
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


QUARANTINE_FIRST = dt.timedelta(hours=1)
QUARANTINE_MAX = dt.timedelta(hours=24)


def quarantine_delay(failures: int, quarantine_after: int) -> dt.timedelta:
    """1 h at the ``quarantine_after``-th failure in a row, then 2 h, 4 h ... up to 24 h."""
    steps = max(0, failures - quarantine_after)
    delay: dt.timedelta = QUARANTINE_FIRST * (2 ** min(steps, 16))
    return min(QUARANTINE_MAX, delay)


def quarantined(retry_after: str | None, now: str) -> bool:
    """Quarantined and not yet due for its next try (``now`` as :func:`now_iso` writes it)."""
    return retry_after is not None and retry_after > now


@dataclass(frozen=True, slots=True)
class Write:
    """One write syncd made (or tried): a row of the audit trail."""

    action: str  # create, adopt, update, deactivate, reactivate, group_create, ...
    resource_type: str  # "user" or "group"
    okta_id: str | None
    scim_id: str | None
    name: str | None  # the userName or the group's displayName
    before_role: str | None = None
    after_role: str | None = None
    before_active: bool | None = None
    after_active: bool | None = None
    outcome: str = "ok"  # "ok" or "failed"
    detail: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class WriteRecord:
    """A row of the audit trail, as read back."""

    id: int
    at: str
    run_id: str | None
    write: Write


@dataclass(frozen=True, slots=True)
class Failure:
    failures: int  # consecutive failures, this one included
    retry_after: str | None  # set once the resource is quarantined


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
    retry_after: str | None = None


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
    retry_after: str | None = None
    origin: str = "created"  # "created" by syncd, or "adopted" (it existed downstream)


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
        retry_after=row["retry_after"],
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
        self.run_id: str | None = None  # the run writes are attributed to
        # One connection serves every worker of a run: each record is one transaction, and
        # transactions never interleave (another task's commit would commit half of this one).
        self._lock = anyio.Lock()

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[None]:
        async with self._lock:
            try:
                yield
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await self._db.rollback()
                raise
            with anyio.CancelScope(shield=True):
                await self._db.commit()

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
        except sqlite3.OperationalError:  # locked, disk full, I/O: not a broken file
            await store.close()
            raise
        except sqlite3.DatabaseError as exc:
            await store.close()
            raise ConfigError(
                f"{store.path} is not a usable syncd checkpoint database ({exc}); restore it "
                "from a backup, or move it away to start afresh (syncd then adopts what exists)",
                key="sync.state_db",
            ) from None
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

    async def holder_of(self, scim_id: str, *, other_than: str) -> UserRecord | None:
        """The record of another person that holds the SCIM account ``scim_id``, if any."""
        async with self._db.execute(
            "SELECT * FROM users WHERE scim_id = ? AND okta_id != ? ORDER BY active DESC LIMIT 1",
            (scim_id, other_than),
        ) as cur:
            row = await cur.fetchone()
        return _user(row) if row is not None else None

    async def record_intent(self, okta_id: str, user_name: str, intent: str = "create") -> None:
        """Before a create: remember that a resource may exist downstream after this point."""
        async with self._transaction():
            await self._db.execute(
                """INSERT INTO users (okta_id, user_name, intent, updated_at) VALUES (?, ?, ?, ?)
                   ON CONFLICT (okta_id) DO UPDATE SET intent = excluded.intent,
                       updated_at = excluded.updated_at""",
                (okta_id, user_name, intent, now_iso()),
            )

    async def record_applied(
        self,
        okta_id: str,
        *,
        scim_id: str | None,
        user_name: str,
        role: str | None,
        active: bool,
        applied: dict[str, Any] | None,
        write: Write | None = None,
    ) -> None:
        """After a successful write: what the downstream resource now is, and the audit row.

        Clears the failures (and a quarantine). One SCIM account belongs to one person: an
        account taken over (a userName that passed from a leaver to a new hire) is let go by
        the record that held it, which would otherwise keep "repairing" it back.
        """
        async with self._transaction():
            await self._write(write)
            if scim_id is not None:
                await self._db.execute(
                    """UPDATE users SET scim_id = NULL, updated_at = ?
                       WHERE scim_id = ? AND okta_id != ?""",
                    (now_iso(), scim_id, okta_id),
                )
            await self._db.execute(
                """INSERT INTO users (okta_id, scim_id, user_name, role, active, applied, intent,
                                      failures, last_error, retry_after, updated_at)
                   VALUES (?, ?, ?, ?, ?, ?, NULL, 0, NULL, NULL, ?)
                   ON CONFLICT (okta_id) DO UPDATE SET scim_id = excluded.scim_id,
                       user_name = excluded.user_name, role = excluded.role,
                       active = excluded.active, applied = excluded.applied, intent = NULL,
                       failures = 0, last_error = NULL, retry_after = NULL,
                       updated_at = excluded.updated_at""",
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

    async def record_failure(
        self,
        okta_id: str,
        user_name: str,
        error: str,
        *,
        quarantine_after: int | None = None,
        write: Write | None = None,
    ) -> Failure:
        """After a failed write: count it; from ``quarantine_after`` failures in a row on,
        quarantine the person (no retry before ``retry_after``)."""
        async with self._transaction():
            await self._write(write)
            await self._db.execute(
                """INSERT INTO users (okta_id, user_name, failures, last_error, updated_at)
                   VALUES (?, ?, 1, ?, ?)
                   ON CONFLICT (okta_id) DO UPDATE SET failures = failures + 1,
                       last_error = excluded.last_error, updated_at = excluded.updated_at""",
                (okta_id, user_name, redact(error), now_iso()),
            )
            async with self._db.execute(
                "SELECT failures FROM users WHERE okta_id = ?", (okta_id,)
            ) as cur:
                row = await cur.fetchone()
            failures = int(row[0]) if row else 1
            retry_after = self._retry_after(failures, quarantine_after)
            await self._db.execute(
                "UPDATE users SET retry_after = ? WHERE okta_id = ?", (retry_after, okta_id)
            )
            return Failure(failures, retry_after)

    @staticmethod
    def _retry_after(failures: int, quarantine_after: int | None) -> str | None:
        if quarantine_after is None or failures < quarantine_after:
            return None
        return now_iso(dt.datetime.now(dt.UTC) + quarantine_delay(failures, quarantine_after))

    async def _write(self, write: Write | None) -> None:
        """Add an audit row (in the caller's transaction)."""
        if write is None:
            return
        await self._db.execute(
            """INSERT INTO writes (at, run_id, action, resource_type, okta_id, scim_id, name,
                                   before_role, after_role, before_active, after_active,
                                   outcome, detail)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (
                now_iso(),
                self.run_id,
                write.action,
                write.resource_type,
                write.okta_id,
                write.scim_id,
                write.name,
                write.before_role,
                write.after_role,
                None if write.before_active is None else int(write.before_active),
                None if write.after_active is None else int(write.after_active),
                write.outcome,
                redact(json.dumps(write.detail, sort_keys=True)) if write.detail else None,
            ),
        )

    async def history(
        self, *, name: str | None = None, since: str | None = None, limit: int = 1000
    ) -> list[WriteRecord]:
        """The audit trail, newest first, optionally for one userName/group and since a time."""
        query = "SELECT * FROM writes WHERE 1 = 1"
        args: list[Any] = []
        if name is not None:
            query += " AND name = ? COLLATE NOCASE"
            args.append(name)
        if since is not None:
            query += " AND at >= ?"
            args.append(since)
        query += " ORDER BY id DESC LIMIT ?"
        args.append(limit)
        async with self._db.execute(query, args) as cur:
            return [
                WriteRecord(
                    id=row["id"],
                    at=row["at"],
                    run_id=row["run_id"],
                    write=Write(
                        action=row["action"],
                        resource_type=row["resource_type"],
                        okta_id=row["okta_id"],
                        scim_id=row["scim_id"],
                        name=row["name"],
                        before_role=row["before_role"],
                        after_role=row["after_role"],
                        before_active=None
                        if row["before_active"] is None
                        else bool(row["before_active"]),
                        after_active=None
                        if row["after_active"] is None
                        else bool(row["after_active"]),
                        outcome=row["outcome"],
                        detail=json.loads(row["detail"]) if row["detail"] else None,
                    ),
                )
                async for row in cur
            ]

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
                    retry_after=row["retry_after"],
                    origin=row["origin"],
                )
                async for row in cur
            }

    async def record_group_intent(self, okta_id: str, display_name: str) -> None:
        """Before a group create: it may exist downstream after this point."""
        async with self._transaction():
            await self._db.execute(
                """INSERT INTO groups (okta_id, display_name, intent, updated_at)
                   VALUES (?, ?, 'create', ?)
                   ON CONFLICT (okta_id) DO UPDATE SET intent = 'create',
                       display_name = excluded.display_name, updated_at = excluded.updated_at""",
                (okta_id, display_name, now_iso()),
            )

    async def record_group(
        self,
        okta_id: str,
        *,
        scim_id: str,
        display_name: str,
        reset_members: bool = False,
        origin: str | None = None,
        write: Write | None = None,
    ) -> None:
        """After a group create, adoption or rename. ``reset_members`` forgets its members;
        ``origin`` ("created" or "adopted") is set on a create or an adoption."""
        async with self._transaction():
            await self._write(write)
            await self._db.execute(
                """INSERT INTO groups (okta_id, scim_id, display_name, intent, failures, last_error,
                                       retry_after, updated_at)
                   VALUES (?, ?, ?, NULL, 0, NULL, NULL, ?)
                   ON CONFLICT (okta_id) DO UPDATE SET scim_id = excluded.scim_id,
                       display_name = excluded.display_name, intent = NULL, failures = 0,
                       last_error = NULL, retry_after = NULL, updated_at = excluded.updated_at""",
                (okta_id, scim_id, display_name, now_iso()),
            )
            if origin is not None:
                await self._db.execute(
                    "UPDATE groups SET origin = ? WHERE okta_id = ?", (origin, okta_id)
                )
            if reset_members:
                await self._db.execute(
                    "DELETE FROM group_members WHERE group_okta_id = ?", (okta_id,)
                )

    async def record_members(
        self,
        group_okta_id: str,
        *,
        added: Sequence[tuple[str, str]] = (),
        removed: Sequence[str] = (),
        write: Write | None = None,
    ) -> None:
        """After one membership PATCH succeeded: its adds and removes, in one transaction."""
        async with self._transaction():
            await self._write(write)
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
                """UPDATE groups SET failures = 0, last_error = NULL, retry_after = NULL,
                       updated_at = ? WHERE okta_id = ?""",
                (now_iso(), group_okta_id),
            )

    async def record_group_failure(
        self,
        okta_id: str,
        display_name: str,
        error: str,
        *,
        quarantine_after: int | None = None,
        write: Write | None = None,
    ) -> Failure:
        async with self._transaction():
            await self._write(write)
            await self._db.execute(
                """INSERT INTO groups (okta_id, display_name, failures, last_error, updated_at)
                   VALUES (?, ?, 1, ?, ?)
                   ON CONFLICT (okta_id) DO UPDATE SET failures = failures + 1,
                       last_error = excluded.last_error, updated_at = excluded.updated_at""",
                (okta_id, display_name, redact(error), now_iso()),
            )
            async with self._db.execute(
                "SELECT failures FROM groups WHERE okta_id = ?", (okta_id,)
            ) as cur:
                row = await cur.fetchone()
            failures = int(row[0]) if row else 1
            retry_after = self._retry_after(failures, quarantine_after)
            await self._db.execute(
                "UPDATE groups SET retry_after = ? WHERE okta_id = ?", (retry_after, okta_id)
            )
            return Failure(failures, retry_after)

    async def forget_group(self, okta_id: str, write: Write | None = None) -> None:
        """Stop managing a group (its member rows go with it)."""
        async with self._transaction():
            await self._write(write)
            await self._db.execute("DELETE FROM groups WHERE okta_id = ?", (okta_id,))

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
        """The last run that completed: ``success``, ``partial`` or ``guarded``."""
        async with self._db.execute(
            "SELECT * FROM runs WHERE outcome IN ('success', 'partial', 'guarded') "
            "ORDER BY started_at DESC LIMIT 1"
        ) as cur:
            row = await cur.fetchone()
        return _run(row) if row else None

    # --- runs -----------------------------------------------------------------------------

    async def start_run(self, run_id: str, mode: str) -> None:
        async with self._transaction():
            self.run_id = run_id
            await self._db.execute(
                "INSERT INTO runs (run_id, mode, started_at) VALUES (?, ?, ?)",
                (run_id, mode, now_iso()),
            )

    async def finish_run(
        self,
        run_id: str,
        *,
        outcome: str,
        exit_code: int,
        counts: dict[str, Any],
        error: str | None = None,
    ) -> None:
        async with self._transaction():
            await self._db.execute(
                """UPDATE runs SET finished_at = ?, outcome = ?, exit_code = ?, counts = ?,
                       error = ?
                   WHERE run_id = ?""",
                (
                    now_iso(),
                    outcome,
                    exit_code,
                    json.dumps(counts),
                    redact(error) if error else None,
                    run_id,
                ),
            )

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
        async with self._transaction():
            await self._db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )


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
