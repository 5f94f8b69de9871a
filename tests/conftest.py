"""End-to-end fixtures: the Okta simulator and scim2-server, each served over loopback HTTP.

``env`` gives a test a small realistic org in the simulator, an empty scim2-server with the
role attribute, a config file pointing syncd at both, and ``env.run(...)`` to run the real
``syncd`` command line in-process (or ``env.run_process`` in a subprocess), returning its exit
code and parsed JSON log lines. Every run checks that no token appears in its output.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from syncd import cli
from syncd.sim.okta import OktaOrg, OktaSimulator
from syncd.sim.scim import ScimServer, Seen
from syncd.sim.server import ServerThread

from .helpers import CATALOG, OKTA_TOKEN, SCIM_TOKEN, write_config

APP_ID = "0oatestapp0000000001"


@dataclass
class Result:
    """What one syncd invocation did."""

    code: int
    stdout: str
    stderr: str
    events: list[dict[str, Any]] = field(default_factory=list)

    def named(self, event: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("event") == event]

    def one(self, event: str) -> dict[str, Any]:
        found = self.named(event)
        assert len(found) == 1, (event, found)
        return found[0]


def parse_events(text: str) -> list[dict[str, Any]]:
    events = []
    for line in text.splitlines():
        if line.startswith('{"') and line.endswith("}"):
            events.append(json.loads(line))
    return events


def assert_no_secrets(*texts: str) -> None:
    for text in texts:
        assert OKTA_TOKEN not in text
        assert SCIM_TOKEN not in text


class Daemon:
    """A running ``syncd run`` subprocess whose JSON log lines are read as they come."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.events: list[dict[str, Any]] = []
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._stderr: list[str] = []
        self._terminated = False
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            line = line.strip()
            if line.startswith('{"') and line.endswith("}"):
                self._queue.put(json.loads(line))
        self._queue.put(None)

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        self._stderr.extend(self.proc.stderr)

    def wait_for(self, event: str, timeout: float = 60, **fields: Any) -> dict[str, Any]:
        """The next log line of ``event`` whose fields match (reads lines as they come)."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"no {event} {fields} within {timeout}s; stderr: {self.stderr}"
                )
            try:
                item = self._queue.get(timeout=remaining)
            except queue.Empty:
                continue
            if item is None:
                raise AssertionError(f"the daemon exited before {event}; stderr: {self.stderr}")
            self.events.append(item)
            assert_no_secrets(json.dumps(item))
            if item.get("event") == event and all(item.get(k) == v for k, v in fields.items()):
                return item

    @property
    def stderr(self) -> str:
        return "".join(self._stderr)[-3000:]

    def signal(self, signum: int) -> None:
        if signum == signal.SIGTERM:
            self._terminated = True
        os.kill(self.proc.pid, signum)

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM (unless it is already stopping), then the exit code; reads the log to the end."""
        stopping = self._terminated or any(e.get("event") == "daemon.stopping" for e in self.events)
        if self.proc.poll() is None and not stopping:
            self.signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout)
        while (item := self._queue.get(timeout=10)) is not None:
            self.events.append(item)
        assert_no_secrets(self.stderr, *(json.dumps(e) for e in self.events))
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


@dataclass
class Env:
    tmp_path: Path
    org: OktaOrg
    okta: OktaSimulator
    okta_url: str
    scim: ScimServer
    scim_url: str
    ids: dict[str, str]

    def config(self, **sections: Any) -> Path:
        """A config file for this env; ``okta_url``, ``scim_url``, ``app_id`` may be overridden."""
        defaults = {"okta_url": self.okta_url, "scim_url": self.scim_url, "app_id": self.org.app.id}
        return write_config(self.tmp_path, **{**defaults, **sections})

    def run(self, *argv: str, config: Path | None = None) -> Result:
        """Run the real CLI in this process, capturing its output."""
        path = config or self.config()
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main([*argv, "--config", str(path), "--log-format", "json"])
        assert_no_secrets(out.getvalue(), err.getvalue())
        return Result(int(code), out.getvalue(), err.getvalue(), parse_events(out.getvalue()))

    def popen(
        self, *argv: str, config: Path | None = None, env: dict[str, str] | None = None
    ) -> subprocess.Popen[str]:
        path = config or self.config()
        return subprocess.Popen(
            [sys.executable, "-m", "syncd", *argv, "--config", str(path), "--log-format", "json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )

    def daemon(self, config: Path | None = None, env: dict[str, str] | None = None) -> Daemon:
        """Start ``syncd run`` (the scheduled service) in a subprocess."""
        return Daemon(self.popen("run", config=config, env=env))

    def run_process(self, *argv: str, config: Path | None = None, timeout: float = 120) -> Result:
        proc = self.popen(*argv, config=config)
        stdout, stderr = proc.communicate(timeout=timeout)
        assert_no_secrets(stdout, stderr)
        return Result(proc.returncode, stdout, stderr, parse_events(stdout))

    def run_killed_after(
        self, crash_point: Callable[[Seen], bool], *argv: str, config: Path | None = None
    ) -> Seen:
        """Run ``syncd run --once`` in a subprocess and SIGKILL it the moment the SCIM server
        has handled the first request ``crash_point`` matches, before the answer leaves: the
        write is made downstream, never recorded. Returns that request."""
        box: list[subprocess.Popen[str]] = []
        seen: list[Seen] = []
        ready = threading.Event()

        def kill(request: Seen) -> None:
            if not seen and crash_point(request) and ready.wait(10):
                seen.append(request)
                os.kill(box[0].pid, signal.SIGKILL)

        self.scim.hooks.append(kill)
        try:
            box.append(self.popen("run", "--once", *argv, config=config))
            ready.set()
            box[0].communicate(timeout=60)
        finally:
            self.scim.hooks.remove(kill)
        assert box[0].returncode == -signal.SIGKILL, "the crash point was never reached"
        return seen[0]

    def downstream(self) -> dict[str, dict[str, Any]]:
        """The SCIM server's own users, by userName."""
        return {u["userName"]: u for u in self.scim.users()}

    def roles(self) -> dict[str, tuple[str | None, bool]]:
        """userName -> (role name, active), from the SCIM server's own store."""
        names = {v: k for k, v in CATALOG.items()}
        return {
            name: (names.get(u.get("vanta_roles")), bool(u.get("active")))
            for name, u in self.downstream().items()
        }


def build_org() -> tuple[OktaOrg, dict[str, str]]:
    """A small org: three role groups with priorities, an override, a person in three groups."""
    org = OktaOrg(app_id=APP_ID, roles=CATALOG, seed=11)
    ids: dict[str, str] = {}
    ids["admins"] = org.add_group("Vanta-Admins", group_id="00gadmins00000000001")
    ids["editors"] = org.add_group("Vanta-Editors", group_id="00geditors0000000002")
    ids["employees"] = org.add_group("Vanta-Employees", group_id="00gemployees00000003")
    ids["engineering"] = org.add_group("Engineering", group_id="00gengineering000004")
    org.assign_group(ids["admins"], 1, {"vanta_roles": CATALOG["Admin"]})
    org.assign_group(ids["editors"], 2, {"vanta_roles": CATALOG["Editor"]})
    org.assign_group(ids["employees"], 3, {"vanta_roles": CATALOG["Employee"]})
    people = {
        "alice": ("Alice", "Admin", ["admins", "employees"]),
        "bob": ("Bob", "Builder", ["editors", "employees", "engineering"]),
        "carol": ("Carol", "Clerk", ["employees"]),
        "dave": ("Dave", "Override", ["admins", "employees"]),
        "erin": ("Erin", "Everywhere", ["employees", "editors", "admins"]),
    }
    for key, (first, last, groups) in people.items():
        ids[key] = org.add_user(first, last, f"{key}@example.com", groups=[ids[g] for g in groups])
    org.assign_user(ids["dave"], {"vanta_roles": "Employee"})  # individual override, by name
    return org, ids


@contextlib.contextmanager
def make_env(
    tmp_path: Path, org: tuple[OktaOrg, dict[str, str]] | None = None, **scim_options: Any
) -> Iterator[Env]:
    """The simulator (``build_org()`` unless given) and a scim2-server, both on loopback."""
    okta_org, ids = org or build_org()
    okta = OktaSimulator(okta_org, api_tokens=[OKTA_TOKEN])
    scim = ScimServer(role_attribute="vanta_roles", bearer_tokens=(SCIM_TOKEN,), **scim_options)
    with ServerThread(okta.asgi) as okta_srv, ServerThread(scim) as scim_srv:
        yield Env(tmp_path, okta_org, okta, okta_srv.url, scim, scim_srv.url + "/v2", ids)


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    with make_env(tmp_path) as e:
        yield e
