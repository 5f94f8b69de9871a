"""``syncd status``: what the checkpoint database says, without asking Okta or the server.

The last run (start, duration, outcome, counts, error), the last completed run, the people and
groups syncd manages, and the people and groups whose writes keep failing, with their last
error; those quarantined say until when.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from syncd.config import Settings
from syncd.store import RunRecord, Store


def _duration(run: RunRecord) -> float | None:
    if run.counts.get("duration_s") is not None:
        return float(run.counts["duration_s"])
    if run.finished_at:
        start = dt.datetime.fromisoformat(run.started_at.replace("Z", "+00:00"))
        end = dt.datetime.fromisoformat(run.finished_at.replace("Z", "+00:00"))
        return round((end - start).total_seconds(), 3)
    return None


def _run(run: RunRecord | None) -> dict[str, Any] | None:
    if run is None:
        return None
    return {
        "run_id": run.run_id,
        "mode": run.mode,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "duration_s": _duration(run),
        "outcome": run.outcome or "unfinished (the process stopped during the run)",
        "exit_code": run.exit_code,
        "counts": {k: v for k, v in run.counts.items() if k != "duration_s"},
        "error": run.error,
    }


async def gather(settings: Settings) -> dict[str, Any]:
    path = settings.sync.state_db
    if not path.exists():
        return {"state_db": str(path), "exists": False}
    async with await Store.open(path, readonly=True) as store:
        runs = await store.runs(1)
        return {
            "state_db": str(path),
            "exists": True,
            "last_run": _run(runs[0] if runs else None),
            "last_success": _run(await store.last_success()),
            "managed": await store.managed_counts(),
            "failing_people": [
                {
                    "user_name": u.user_name,
                    "okta_id": u.okta_id,
                    "failures": u.failures,
                    "last_error": u.last_error,
                    "quarantined_until": u.retry_after,
                }
                for u in await store.failing_users()
            ],
            "failing_groups": [
                {
                    "group": g.display_name,
                    "okta_id": g.okta_id,
                    "failures": g.failures,
                    "last_error": g.last_error,
                    "quarantined_until": g.retry_after,
                }
                for g in await store.failing_groups()
            ],
        }


def _run_line(run: dict[str, Any]) -> str:
    duration = f"{run['duration_s']:.2f}s" if run["duration_s"] is not None else "?"
    counts = ", ".join(
        f"{v} {k}" for k, v in run["counts"].items() if v and not k.endswith("requests")
    )
    line = (
        f"{run['outcome']} (exit {run['exit_code']}), started {run['started_at']}, took {duration}"
    )
    return line + (f": {counts}" if counts else "")


def format_status(status: dict[str, Any]) -> str:
    if not status["exists"]:
        return f"No checkpoint database at {status['state_db']}: syncd has not run yet."
    lines = [f"Checkpoint:    {status['state_db']}"]
    last = status["last_run"]
    lines.append(f"Last run:      {_run_line(last) if last else 'none yet'}")
    if last and last["error"]:
        lines.append(f"               error: {last['error']}")
    success = status["last_success"]
    if success:
        when = success["finished_at"] or success["started_at"]
        lines.append(f"Last success:  {when} (run {success['run_id']})")
    else:
        lines.append("Last success:  never")
    m = status["managed"]
    lines.append(
        f"Managed:       {m['users']} people ({m['active_users']} active), {m['groups']} groups"
    )
    failing = status["failing_people"]
    quarantined = sum(1 for r in failing + status["failing_groups"] if r["quarantined_until"])
    lines.append(
        f"Failing:       {len(failing)} people, {len(status['failing_groups'])} groups"
        + (f" ({quarantined} quarantined)" if quarantined else "")
    )
    for row in [*failing, *status["failing_groups"]]:
        name = row.get("user_name") or f"group {row['group']}"
        until = (
            f", quarantined until {row['quarantined_until']}" if row["quarantined_until"] else ""
        )
        lines.append(
            f"  {name} ({row['okta_id']}): {row['failures']} in a row{until}: {row['last_error']}"
        )
    return "\n".join(lines)
