"""Shared plumbing for the benchmarks: free ports, simulator subprocesses, child rusage."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve(*argv: str, ready_url: str, headers: dict[str, str] | None = None) -> Iterator[None]:
    """Run ``python -m syncd <argv>`` until the block ends; wait until ``ready_url`` answers."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "syncd", *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                httpx.get(ready_url, headers=headers, timeout=5)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    err = proc.stderr.read() if proc.stderr else ""
                    raise RuntimeError(f"{argv[:2]} did not start: {err[-2000:]}") from None
                time.sleep(0.1)
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=30)


# Peak RSS must be read inside the measured process: ru_maxrss survives exec(), so a child of a
# large benchmark process would report the parent's peak. VmHWM belongs to the new image.
PEAK_REPORTER = """
import atexit, sys
def _peak():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                sys.stderr.write("PEAK_RSS_KB " + line.split()[1] + "\\n")
atexit.register(_peak)
"""


def syncd_argv(*args: str) -> list[str]:
    """``python -m syncd <args>`` that reports its own peak RSS on exit."""
    code = PEAK_REPORTER + "from syncd.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    return [sys.executable, "-c", code, *args]


@dataclass
class Child:
    """A finished child process: its output, wall time, CPU time and peak RSS."""

    returncode: int
    stdout: str
    stderr: str
    wall_s: float
    cpu_s: float
    peak_rss_mb: float


def run_child(argv: list[str], env: dict[str, str] | None = None) -> Child:
    """Run a command to completion and read its own rusage (os.wait4: this child only)."""
    started = time.monotonic()
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    out_parts: list[str] = []
    err_parts: list[str] = []
    # Read the pipes while waiting, so a chatty child never blocks on a full pipe.
    import threading

    def pump(stream: Any, sink: list[str]) -> None:
        for line in stream:
            sink.append(line)

    threads = [
        threading.Thread(target=pump, args=(proc.stdout, out_parts)),
        threading.Thread(target=pump, args=(proc.stderr, err_parts)),
    ]
    for t in threads:
        t.start()
    _, status, usage = os.wait4(proc.pid, 0)
    for t in threads:
        t.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    stderr = "".join(err_parts)
    peaks = [int(line.split()[1]) for line in stderr.splitlines() if line.startswith("PEAK_RSS_KB")]
    if not peaks:
        raise RuntimeError("the child did not report its peak RSS (use syncd_argv)")
    return Child(
        returncode=proc.returncode,
        stdout="".join(out_parts),
        stderr=stderr,
        wall_s=time.monotonic() - started,
        cpu_s=usage.ru_utime + usage.ru_stime,
        peak_rss_mb=peaks[-1] / 1024,
    )
