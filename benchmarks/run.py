"""Run every benchmark and print a summary (``make bench``). Results go to results/latest.json."""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import okta_listing
import sync_10k


def main() -> int:
    results = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": platform.python_version(),
        "machine": f"{platform.system()} {platform.machine()}",
        "sync": sync_10k.main(),
        "okta_listing": okta_listing.main(),
    }
    out = Path(__file__).parent / "results" / "latest.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")

    sync, listing = results["sync"], results["okta_listing"]
    print(f"sync: {sync['people']} people, {sync['groups']} groups ({sync['app_users']} app users)")
    for run in sync["runs"]:
        print(
            f"  {run['run']:11} run: {run['wall_s']:6.2f} s wall, {run['cpu_s']:6.2f} s CPU, "
            f"peak RSS {run['peak_rss_mb']:.1f} MB; Okta {run['okta_requests']} requests "
            f"(floor {run['okta_floor']}, x{run['okta_ratio_to_floor']}), "
            f"SCIM {run['scim_requests']} requests"
            + (f" (drift found: {run['drift_found']})" if run["run"] == "drift check" else "")
        )
    print(
        f"okta listing: {listing['records']} app users in {listing['requests']} requests "
        f"(floor {listing['floor']}, x{listing['ratio_to_floor']}), peak RSS "
        f"{listing['peak_rss_mb']} MB (Python heap peak {listing['python_heap_peak_mb']} MB)"
    )
    ok = (
        all(r["okta_ratio_to_floor"] <= 1.05 for r in sync["runs"])
        and sync["runs"][1]["scim_requests"] == 0
        and all(r["peak_rss_mb"] <= 200 for r in sync["runs"])
    )
    print(
        "targets (Okta <= 1.05 x floor, second run 0 SCIM requests, RSS <= 200 MB):",
        "met" if ok else "MISSED",
    )
    print(f"written to {out}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
