"""``syncd sim okta`` and ``syncd sim scim``: serve a simulator on 127.0.0.1 until interrupted."""

from __future__ import annotations

import argparse
import os
import sys

from syncd.sim.okta import RateLimits, run_simulator
from syncd.sim.orgdata import demo_org, generate_org, load_org

FAMILIES = ("users", "groups", "apps", "logs", "oauth")


def _tokens(args: argparse.Namespace) -> list[str]:
    return list(args.token or [os.environ.get("SYNCD_SIM_TOKEN", "sim-token")])


def _limits(specs: list[str] | None) -> RateLimits:
    limits = RateLimits()
    for spec in specs or []:
        family, _, value = spec.partition("=")
        if family not in FAMILIES or not value.isdigit() or int(value) < 1:
            raise ValueError(
                f"--rate-limit {spec!r}: expected FAMILY=N with FAMILY one of {', '.join(FAMILIES)}"
            )
        setattr(limits, family, int(value))
    return limits


def serve_okta(args: argparse.Namespace) -> int:
    if args.data and args.generate:
        print("syncd: give --data or --generate, not both", file=sys.stderr)
        return 2
    try:
        limits = _limits(args.rate_limit)
    except ValueError as exc:
        print(f"syncd: {exc}", file=sys.stderr)
        return 2
    if args.data:
        try:
            org = load_org(args.data)
        except ValueError as exc:
            print(f"syncd: {exc}", file=sys.stderr)
            return 2
    elif args.generate:
        org = generate_org(people=args.generate, groups=args.groups, seed=args.seed)
    else:
        org = demo_org()
    print(
        f"Okta simulator: http://127.0.0.1:{args.port} app {org.app.id} "
        f"({len(org.users)} users, {len(org.groups)} groups); Ctrl-C to stop",
        flush=True,
    )
    run_simulator(
        org,
        host="127.0.0.1",
        port=args.port,
        api_tokens=_tokens(args),
        limits=limits,
        log_level="warning",
    )
    return 0


def serve_scim(args: argparse.Namespace) -> int:
    import uvicorn

    from syncd.sim.scim import ScimServer

    server = ScimServer(role_attribute=args.role_attribute, bearer_tokens=tuple(_tokens(args)))
    print(
        f"SCIM server (scim2-server): http://127.0.0.1:{args.port}/v2, role attribute "
        f"{args.role_attribute!r}; request counts at /_sim/stats; Ctrl-C to stop",
        flush=True,
    )
    uvicorn.run(server, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)
    return 0
