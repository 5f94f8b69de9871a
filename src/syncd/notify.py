"""The systemd notify protocol (``sd_notify``), without libsystemd.

When systemd starts ``syncd run`` as ``Type=notify`` it sets ``NOTIFY_SOCKET``; syncd sends
``READY=1`` once its configuration and database are ready, ``STATUS=...`` after each cycle,
``WATCHDOG=1`` every half ``WATCHDOG_USEC`` from the event loop (a hung loop stops pinging and
systemd restarts the service), and ``STOPPING=1`` on shutdown. Without ``NOTIFY_SOCKET`` every
call does nothing.
"""

from __future__ import annotations

import os
import socket

from syncd.log import get_logger

log = get_logger(__name__)


class Notifier:
    """Sends datagrams to systemd's notify socket, if there is one."""

    def __init__(self, address: str | None) -> None:
        self.address = address
        self._socket: socket.socket | None = None
        if address:
            self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)

    @classmethod
    def from_env(cls) -> Notifier:
        return cls(os.environ.get("NOTIFY_SOCKET") or None)

    @property
    def enabled(self) -> bool:
        return self._socket is not None

    def send(self, *assignments: str) -> None:
        """Send ``KEY=value`` lines in one datagram; a failure is logged, never raised."""
        if self._socket is None or self.address is None:
            return
        target = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        try:
            self._socket.sendto("\n".join(assignments).encode(), target)
        except OSError as exc:
            log.warning("systemd.notify_failed", error=f"{type(exc).__name__}: {exc}")

    def ready(self, status: str) -> None:
        self.send("READY=1", f"STATUS={status}")

    def status(self, status: str) -> None:
        self.send(f"STATUS={status}")

    def watchdog(self) -> None:
        self.send("WATCHDOG=1")

    def stopping(self) -> None:
        self.send("STOPPING=1", "STATUS=stopping")

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def watchdog_interval() -> float | None:
    """Half of ``WATCHDOG_USEC`` in seconds, if systemd asked this process for pings."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return max(0.01, int(usec) / 2_000_000)
    except ValueError:
        return None
