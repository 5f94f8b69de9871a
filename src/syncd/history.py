"""``syncd history``: the audit trail, every write syncd made, from the checkpoint database.

The evidence an auditor asks for: when, in which run, what action on which resource, the role
and active flag before and after, and whether it worked.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from syncd.config import Settings
from syncd.roles import RoleCatalog
from syncd.store import Store, WriteRecord


@dataclass(frozen=True)
class Entry:
    record: WriteRecord

    def to_dict(self, catalog: RoleCatalog) -> dict[str, Any]:
        w = self.record.write
        return {
            "at": self.record.at,
            "run_id": self.record.run_id,
            "action": w.action,
            "resource_type": w.resource_type,
            "name": w.name,
            "okta_id": w.okta_id,
            "scim_id": w.scim_id,
            "before_role": catalog.name(w.before_role),
            "after_role": catalog.name(w.after_role),
            "before_active": w.before_active,
            "after_active": w.after_active,
            "outcome": w.outcome,
            "detail": w.detail or {},
        }


def parse_since(value: str) -> str:
    """An ISO 8601 date or time, as the UTC timestamp text the audit trail stores."""
    try:
        when = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"--since {value!r}: expected an ISO 8601 date or time, like 2026-11-01 "
            "or 2026-11-01T09:30:00Z"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def history(
    settings: Settings, *, user: str | None = None, since: str | None = None
) -> list[Entry]:
    """The writes, newest first."""
    since_at = parse_since(since) if since else None
    path = settings.sync.state_db
    if not path.exists():
        return []
    async with await Store.open(path, readonly=True) as store:
        return [Entry(r) for r in await store.history(name=user, since=since_at, limit=100_000)]


def _flag(value: bool | None) -> str:
    return "-" if value is None else ("active" if value else "inactive")


def format_history(entries: list[Entry], catalog: RoleCatalog) -> str:
    if not entries:
        return "No writes recorded."
    rows = [("TIME", "ACTION", "RESOURCE", "ROLE", "ACTIVE", "OUTCOME")]
    for entry in entries:
        d = entry.to_dict(catalog)
        role = d["after_role"] or "-"
        if d["before_role"] != d["after_role"]:
            role = f"{d['before_role'] or '-'} -> {role}"
        active = _flag(d["after_active"])
        if d["before_active"] != d["after_active"]:
            active = f"{_flag(d['before_active'])} -> {active}"
        detail = d["detail"]
        outcome = d["outcome"] if d["outcome"] == "ok" else f"failed: {detail.get('error', '')}"
        if "count" in detail:
            outcome += f" ({detail['count']} members)"
        if detail.get("repair"):
            outcome += " (drift repair)"
        rows.append(
            (d["at"], d["action"], f"{d['resource_type']} {d['name']}", role, active, outcome)
        )
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    return "\n".join("  ".join(r[i].ljust(widths[i]) for i in range(5)) + "  " + r[5] for r in rows)
