"""Benchmark: list 100,000 app users with expand=user, as syncd's reader streams them.

The simulator (own process) serves an org where all 100,000 people have the app through one
group. A child process streams the listing with :class:`syncd.okta.OktaReader` and reports its
requests and its own peak memory. The floor is ceil(100,000 / 500) = 200 requests.

Okta's default apps bucket is 100 a minute: at ``rate_limit_share = 0.5`` syncd paces itself to
50 requests a minute, so the listing takes four windows of real time. The benchmark measures
requests and memory, not waiting, so it runs the simulator with an apps bucket of 1,000 a minute
(``--paced`` keeps Okta's default and shows the pacing instead).
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
from pathlib import Path
from typing import Any

from common import PEAK_REPORTER, free_port, run_child, serve
from syncd.sim.okta import OktaOrg
from syncd.sim.orgdata import save_org

TOKEN = "bench-okta-token-0123456789"

CHILD = r"""
import json, sys, time, tracemalloc
import anyio
from pydantic import SecretStr
from syncd.okta import OktaHttp, OktaReader, SSWSAuth

url, app_id, token, share = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])

def vm_hwm_mb():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024

base_rss = vm_hwm_mb()

async def main():
    tracemalloc.start()
    started = time.monotonic()
    count = errors = 0
    async with OktaHttp(url, SSWSAuth(SecretStr(token)), rate_limit_share=share) as http:
        async for item in OktaReader(http, app_id).app_users():
            if isinstance(item, Exception):
                errors += 1
            else:
                count += 1
        _, peak = tracemalloc.get_traced_memory()
        print(json.dumps({
            "records": count, "errors": errors, "requests": http.stats.total,
            "rate_limited": http.stats.rate_limited,
            "seconds": round(time.monotonic() - started, 2),
            "python_heap_peak_mb": round(peak / 2**20, 1),
            "rss_before_listing_mb": round(base_rss, 1),
        }))

anyio.run(main)
"""


def build_org(people: int, path: Path) -> str:
    org = OktaOrg(roles={"Employee": "0000005ddeface0000000003"}, seed=5)
    group = org.add_group("Everyone-Vanta")
    org.assign_group(group, 1, {"vanta_roles": "0000005ddeface0000000003"})
    for i in range(people):
        org.add_user("Person", f"N{i:06d}", f"person{i:06d}@example.com", groups=[group])
    save_org(org, path)
    return org.app.id


def main(people: int = 100_000, paced: bool = False) -> dict[str, Any]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="syncd-bench-") as tmp:
        data = Path(tmp) / "org.json"
        app_id = build_org(people, data)
        limit = [] if paced else ["--rate-limit", "apps=1000"]
        with serve(
            "sim",
            "okta",
            "--port",
            str(port),
            "--data",
            str(data),
            "--token",
            TOKEN,
            *limit,
            ready_url=f"{url}/_sim/stats",
        ):
            child = run_child(
                [sys.executable, "-c", PEAK_REPORTER + CHILD, url, app_id, TOKEN, "0.5"]
            )
    if child.returncode != 0:
        raise RuntimeError(child.stderr[-3000:])
    result = json.loads(child.stdout.strip().splitlines()[-1])
    floor = math.ceil(people / 500)
    return {
        "benchmark": "okta_listing",
        "app_users": people,
        "apps_bucket_per_minute": 100 if paced else 1000,
        **result,
        "floor": floor,
        "ratio_to_floor": round(result["requests"] / floor, 3),
        "peak_rss_mb": round(child.peak_rss_mb, 1),
        "cpu_s": round(child.cpu_s, 2),
    }


if __name__ == "__main__":
    print(json.dumps(main(paced="--paced" in sys.argv), indent=2))
