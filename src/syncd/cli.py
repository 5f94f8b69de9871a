"""The ``syncd`` command line.

Every command takes ``--config PATH`` (else ``$SYNCD_CONFIG``, else ``/etc/syncd/syncd.toml``),
``--log-format json|console`` and ``--log-level``. Exit codes are :class:`~syncd.engine.ExitCode`.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import traceback
from collections.abc import Callable, Sequence

import anyio

from syncd import __version__, app
from syncd.config import load_settings
from syncd.engine import CycleAborted, ExitCode
from syncd.errors import ConfigError, LockHeldError
from syncd.log import configure, get_logger, redact
from syncd.plan import format_plan
from syncd.roles import RoleCatalog

log = get_logger(__name__)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="PATH",
        help="the TOML config file (default: $SYNCD_CONFIG, else /etc/syncd/syncd.toml)",
    )
    parser.add_argument(
        "--log-format",
        choices=("json", "console"),
        default=None,
        help="log lines as JSON (the default when not on a terminal) or for people",
    )
    parser.add_argument(
        "--log-level", default="info", choices=("debug", "info", "warning", "error")
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="syncd",
        description="Keep a compliance platform's users and roles in step with Okta over SCIM.",
    )
    parser.add_argument("--version", action="version", version=f"syncd {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="sync: once (--once, for cron) or as a scheduled service")
    _common(run)
    run.add_argument("--once", action="store_true", help="run one cycle and exit")
    run.add_argument(
        "--allow-deactivations",
        type=int,
        metavar="N",
        help="with --once: release the deactivations the empty_read or deactivation_limit "
        "guard held back, if there are at most N (after a person has looked at `syncd plan`)",
    )
    run.set_defaults(func=cmd_run)

    plan = sub.add_parser("plan", help="show what a cycle would change, writing nothing")
    _common(plan)
    plan.add_argument("--json", action="store_true", help="print the plan as JSON")
    plan.set_defaults(func=cmd_plan)

    check = sub.add_parser("check", help="test the connection and credentials at both ends")
    _common(check)
    check.set_defaults(func=cmd_check)

    status = sub.add_parser("status", help="the last runs and failing people, from the checkpoint")
    _common(status)
    status.add_argument("--json", action="store_true", help="print the status as JSON")
    status.set_defaults(func=cmd_status)

    drift = sub.add_parser(
        "drift", help="compare downstream with what syncd applied; exit 1 if anything drifted"
    )
    _common(drift)
    drift.add_argument("--json", action="store_true", help="print the findings as JSON")
    drift.set_defaults(func=cmd_drift)

    history = sub.add_parser("history", help="the audit trail: every write syncd made")
    _common(history)
    history.add_argument("--user", metavar="NAME", help="only this userName (or group name)")
    history.add_argument(
        "--since", metavar="DATE", help="only writes at or after this date or time (ISO 8601)"
    )
    history.add_argument("--json", action="store_true", help="print the writes as JSON")
    history.set_defaults(func=cmd_history)

    demo = sub.add_parser(
        "demo", help="run a cycle against a bundled Okta simulator and SCIM server"
    )
    demo.add_argument("--log-format", choices=("json", "console"), default=None)
    demo.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    demo.set_defaults(func=cmd_demo)

    sim = sub.add_parser("sim", help="run a simulator (for tests and demos)")
    sim_sub = sim.add_subparsers(dest="sim_command", required=True, metavar="SIMULATOR")
    okta = sim_sub.add_parser("okta", help="serve the Okta API simulator on 127.0.0.1")
    okta.add_argument("--port", type=int, default=8089)
    okta.add_argument("--data", metavar="ORG.json", help="the org to serve (default: the demo org)")
    okta.add_argument(
        "--generate", type=int, metavar="N", help="serve a generated org of N people instead"
    )
    okta.add_argument("--groups", type=int, default=30, help="groups in a generated org")
    okta.add_argument("--seed", type=int, default=1, help="seed of a generated org")
    okta.add_argument(
        "--token",
        action="append",
        metavar="TOKEN",
        help="an accepted SSWS API token (repeatable; default: $SYNCD_SIM_TOKEN or 'sim-token')",
    )
    okta.add_argument(
        "--rate-limit",
        action="append",
        metavar="FAMILY=N",
        help="per-minute limit of a bucket (users, groups, apps, logs, oauth); repeatable",
    )
    okta.add_argument("--log-format", choices=("json", "console"), default=None)
    okta.add_argument("--log-level", default="warning")
    okta.set_defaults(func=cmd_sim_okta)

    scim = sim_sub.add_parser(
        "scim", help="serve scim2-server with the role attribute on 127.0.0.1"
    )
    scim.add_argument("--port", type=int, default=8090)
    scim.add_argument("--role-attribute", default="vanta_roles")
    scim.add_argument(
        "--token",
        action="append",
        metavar="TOKEN",
        help="an accepted bearer token (repeatable; default: $SYNCD_SIM_TOKEN or 'sim-token')",
    )
    scim.add_argument("--log-format", choices=("json", "console"), default=None)
    scim.add_argument("--log-level", default="warning")
    scim.set_defaults(func=cmd_sim_scim)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # Commands that print a report on stdout send their log lines to stderr.
    stream = (
        sys.stderr
        if args.command in ("plan", "check", "status", "drift", "history")
        else sys.stdout
    )
    configure(args.log_format, args.log_level, stream=stream)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except ConfigError as exc:
        _error(f"configuration error: {exc}")
        return ExitCode.CONFIG
    except LockHeldError as exc:
        _error(str(exc))
        return ExitCode.LOCKED
    except KeyboardInterrupt:
        return 130
    except sqlite3.OperationalError as exc:  # locked, disk full, I/O: the file itself is fine
        _error(
            f"checkpoint database unavailable: {exc} (sync.state_db: check that no other "
            "program holds it open for writing, that its disk has space and that syncd may "
            "write it and its directory; nothing was lost: run again)"
        )
        return ExitCode.CONFIG
    except sqlite3.DatabaseError as exc:
        _error(
            f"checkpoint database error: {exc} (sync.state_db: restore it from a backup, or "
            "move it away to start afresh; syncd then adopts what exists downstream)"
        )
        return ExitCode.CONFIG
    except Exception as exc:  # a bug: say so plainly, with what a report needs
        print(redact(traceback.format_exc()), file=sys.stderr, end="")
        _error(f"internal error: {type(exc).__name__}: {exc} (a bug in syncd: please report it)")
        return ExitCode.INTERNAL


def _error(message: str) -> None:
    print(f"syncd: {redact(message)}", file=sys.stderr)


def cmd_run(args: argparse.Namespace) -> int:
    if args.allow_deactivations is not None and (not args.once or args.allow_deactivations < 0):
        _error("--allow-deactivations N goes with --once, and N is 0 or more")
        return ExitCode.CONFIG
    if not args.once:
        from syncd.scheduler import Daemon

        daemon = Daemon(args.config)
        return anyio.run(daemon.run)
    from syncd.scheduler import run_once

    settings = load_settings(args.config)
    report, signum = anyio.run(
        lambda: run_once(settings, allow_deactivations=args.allow_deactivations)
    )
    if report.error:
        _error(report.error)
    if signum is not None:
        _error(f"stopped by signal {signum}, after recording the write in flight")
        return 128 + signum
    return int(report.exit_code)


def cmd_plan(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    try:
        plan = anyio.run(lambda: app.compute_plan(settings)).plan
    except CycleAborted as exc:
        _error(str(exc))
        return int(exc.exit_code)
    catalog = RoleCatalog(settings.roles.catalog)
    if args.json:
        print(json.dumps(plan.to_dict(catalog), indent=2))
    else:
        print(format_plan(plan, catalog))
    return ExitCode.OK


def cmd_check(args: argparse.Namespace) -> int:
    from syncd.check import run_checks

    settings = load_settings(args.config)
    checks = anyio.run(lambda: run_checks(settings))
    for check in checks:
        print(redact(str(check)))
    failed = sum(1 for c in checks if c.status == "FAIL")
    warned = sum(1 for c in checks if c.status == "WARN")
    print(f"\n{len(checks) - failed - warned} passed, {warned} warnings, {failed} failed.")
    return ExitCode.REMOTE if failed else ExitCode.OK


def cmd_status(args: argparse.Namespace) -> int:
    from syncd.status import format_status, gather

    settings = load_settings(args.config)
    status = anyio.run(lambda: gather(settings))
    print(json.dumps(status, indent=2) if args.json else format_status(status))
    return ExitCode.OK


def cmd_drift(args: argparse.Namespace) -> int:
    from syncd.drift import KINDS

    settings = load_settings(args.config)
    try:
        findings = anyio.run(lambda: app.check_drift(settings))
    except CycleAborted as exc:
        _error(str(exc))
        return int(exc.exit_code)
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "kind": f.kind,
                        "resource_type": f.resource_type,
                        "name": f.name,
                        "okta_id": f.okta_id,
                        "scim_id": f.scim_id,
                        "field": f.field,
                        "expected": f.expected,
                        "actual": f.actual,
                        **f.detail,
                    }
                    for f in findings
                ],
                indent=2,
            )
        )
    else:
        for f in findings:
            where = f"{f.resource_type} {f.name}" + (f" ({f.field})" if f.field else "")
            print(f"{f.kind:20} {where}: expected {f.expected!r}, found {f.actual!r}")
        counts = {k: sum(1 for f in findings if f.kind == k) for k in KINDS}
        summary = ", ".join(f"{v} {k}" for k, v in counts.items() if v) or "none"
        print(
            f"Drift: {summary}." if findings else "No drift: downstream matches what syncd applied."
        )
    return 1 if findings else ExitCode.OK


def cmd_history(args: argparse.Namespace) -> int:
    from syncd.history import format_history, history

    settings = load_settings(args.config)
    try:
        records = anyio.run(lambda: history(settings, user=args.user, since=args.since))
    except ValueError as exc:
        _error(str(exc))
        return ExitCode.CONFIG
    catalog = RoleCatalog(settings.roles.catalog)
    if args.json:
        print(json.dumps([r.to_dict(catalog) for r in records], indent=2))
    else:
        print(format_history(records, catalog))
    return ExitCode.OK


def cmd_demo(args: argparse.Namespace) -> int:
    from syncd.demo import run_demo

    return run_demo()


def cmd_sim_okta(args: argparse.Namespace) -> int:
    from syncd.sim.cli import serve_okta

    return serve_okta(args)


def cmd_sim_scim(args: argparse.Namespace) -> int:
    from syncd.sim.cli import serve_scim

    return serve_scim(args)
