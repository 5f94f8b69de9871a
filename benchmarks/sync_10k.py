"""Benchmark: a first sync of 10,000 people and 300 groups, then a second run with no change.

Okta simulator and scim2-server each run in their own process on loopback; `syncd run --once`
runs in a third, whose own CPU time and peak RSS are measured. Okta requests are compared with
the floor: the pages needed at Okta's largest page sizes. The first two runs have the drift
check off (it reads every downstream resource); a third, unchanged run turns it on, to show
its cost.
"""

from __future__ import annotations

import json
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from common import free_port, run_child, serve, syncd_argv
from syncd.sim.orgdata import generate_org

OKTA_TOKEN = "bench-okta-token-0123456789"
SCIM_TOKEN = "bench-scim-token-0123456789"
CATALOG = {
    "Admin": "0000005ddeface0000000001",
    "Editor": "0000005ddeface0000000002",
    "Employee": "0000005ddeface0000000003",
}


@dataclass
class Floor:
    """Pages needed at Okta's largest page sizes.

    App users 500 a page, group assignments 200, group members 1,000 (one page at least each).
    """

    app_users: int
    group_assignments: int
    group_members: int
    app_user_count: int
    app_id: str

    @property
    def total(self) -> int:
        return self.app_users + self.group_assignments + self.group_members


def floor_requests(people: int, groups: int, seed: int) -> Floor:
    org = generate_org(people=people, groups=groups, seed=seed)
    app_users = len(org.app_user_ids())
    grants = org.group_assignments
    role_groups = [g for g, a in grants.items() if a.profile.get("vanta_roles")]
    return Floor(
        app_users=max(1, math.ceil(app_users / 500)),
        group_assignments=max(1, math.ceil(len(grants) / 200)),
        group_members=sum(
            max(1, math.ceil(len(org.groups[g].members) / 1000)) for g in role_groups
        ),
        app_user_count=app_users,
        app_id=org.app.id,
    )


def finished(stdout: str) -> dict[str, Any]:
    for line in stdout.splitlines():
        if line.startswith('{"') and '"sync.finished"' in line:
            return dict(json.loads(line))
    raise RuntimeError("no sync.finished line:\n" + stdout[-3000:])


def main(people: int = 10_000, groups: int = 300, seed: int = 7) -> dict[str, Any]:
    floor = floor_requests(people, groups, seed)
    okta_port, scim_port = free_port(), free_port()
    okta_url, scim_url = f"http://127.0.0.1:{okta_port}", f"http://127.0.0.1:{scim_port}"
    with (
        tempfile.TemporaryDirectory(prefix="syncd-bench-") as tmp,
        serve(
            "sim",
            "okta",
            "--port",
            str(okta_port),
            "--generate",
            str(people),
            "--groups",
            str(groups),
            "--seed",
            str(seed),
            "--token",
            OKTA_TOKEN,
            ready_url=f"{okta_url}/_sim/stats",
        ),
        serve(
            "sim",
            "scim",
            "--port",
            str(scim_port),
            "--token",
            SCIM_TOKEN,
            ready_url=f"{scim_url}/_sim/stats",
        ),
    ):
        Path(tmp, "okta-token").write_text(OKTA_TOKEN)
        Path(tmp, "scim-token").write_text(SCIM_TOKEN)
        config = Path(tmp, "syncd.toml")
        catalog = "\n".join(f'{k} = "{v}"' for k, v in CATALOG.items())
        config.write_text(
            f'[okta]\norg_url = "{okta_url}"\napp_id = "{floor.app_id}"\n'
            f'token_file = "{tmp}/okta-token"\n'
            f'[roles]\nattribute = "vanta_roles"\nadmin = ["Admin"]\n[roles.catalog]\n{catalog}\n'
            f'[scim]\nbase_url = "{scim_url}/v2"\ntoken_file = "{tmp}/scim-token"\n'
            f'[sync]\nstate_db = "{tmp}/state.db"\ndrift_check = false\n'
        )
        runs = []
        for label, drift in (("first", "false"), ("second", "false"), ("drift check", "true")):
            httpx.post(f"{okta_url}/_sim/stats/reset")
            scim_before = httpx.get(f"{scim_url}/_sim/stats").json()["requests"]
            child = run_child(
                syncd_argv("run", "--once", "--config", str(config), "--log-format", "json"),
                env={"SYNCD_SYNC__DRIFT_CHECK": drift},
            )
            if child.returncode not in (0, 1):
                raise RuntimeError(f"{label} run exited {child.returncode}: {child.stderr[-2000:]}")
            event = finished(child.stdout)
            okta_stats = httpx.get(f"{okta_url}/_sim/stats").json()
            okta_server = sum(okta_stats["requests"].values())
            scim_server = httpx.get(f"{scim_url}/_sim/stats").json()["requests"] - scim_before
            runs.append(
                {
                    "run": label,
                    "exit_code": child.returncode,
                    "wall_s": round(child.wall_s, 2),
                    "cpu_s": round(child.cpu_s, 2),
                    "peak_rss_mb": round(child.peak_rss_mb, 1),
                    "okta_requests": event["okta_requests"],
                    "okta_requests_server": okta_server,
                    "okta_floor": floor.total,
                    "okta_ratio_to_floor": round(event["okta_requests"] / floor.total, 3),
                    "okta_429s": okta_stats.get("rateLimited", 0),
                    "scim_requests": event["scim_requests"],
                    "scim_requests_server": scim_server,
                    "created": event["created"],
                    "unchanged": event["unchanged"],
                    "skipped": event["skipped"],
                    "drift_found": event["drift_found"],
                }
            )
    return {
        "benchmark": "sync",
        "people": people,
        "groups": groups,
        "app_users": floor.app_user_count,
        "floor_parts": {
            "app_users": floor.app_users,
            "group_assignments": floor.group_assignments,
            "group_members": floor.group_members,
        },
        "runs": runs,
    }


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
