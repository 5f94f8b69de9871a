"""``syncd sim okta``: serve the Okta API simulator on 127.0.0.1 until interrupted."""

from __future__ import annotations

import argparse
import os
import sys

from syncd.sim.okta import run_simulator
from syncd.sim.orgdata import demo_org, generate_org, load_org


def serve_okta(args: argparse.Namespace) -> int:
    if args.data and args.generate:
        print("syncd: give --data or --generate, not both", file=sys.stderr)
        return 2
    if args.data:
        org = load_org(args.data)
    elif args.generate:
        org = generate_org(people=args.generate, groups=args.groups, seed=args.seed)
    else:
        org = demo_org()
    tokens = args.token or [os.environ.get("SYNCD_SIM_TOKEN", "sim-token")]
    print(
        f"Okta simulator: http://127.0.0.1:{args.port} app {org.app.id} "
        f"({len(org.users)} users, {len(org.groups)} groups); Ctrl-C to stop",
        flush=True,
    )
    run_simulator(org, host="127.0.0.1", port=args.port, api_tokens=tokens)
    return 0
