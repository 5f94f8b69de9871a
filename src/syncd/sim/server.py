"""Run an ASGI app under uvicorn in a background thread, for tests, demos and benchmarks.

Usage::

    with ServerThread(app) as server:
        httpx.get(f"{server.url}/health")
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any

import uvicorn

#: An ASGI 3 application, ``async def app(scope, receive, send)`` (loosely typed: any will do).
ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]


class ServerThread:
    """Serve ``app`` on ``host:port`` (port 0: any free port) from a daemon thread.

    The socket is bound before the thread starts, so :attr:`url` is known at once and the port
    cannot be taken by someone else meanwhile. :meth:`start` returns once uvicorn accepts
    connections; :meth:`stop` shuts it down (in well under a second when idle). uvicorn logs at
    ``log_level`` through the standard ``logging`` tree; it adds no ``date`` or ``server`` header
    unless asked (the Okta simulator sends its own ``Date``, from its clock). Extra keyword
    arguments go to ``uvicorn.Config``.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        log_level: str = "warning",
        date_header: bool = False,
        server_header: bool = False,
        startup_timeout: float = 10.0,
        **uvicorn_options: Any,
    ) -> None:
        self.app = app
        self.host = host
        self.startup_timeout = startup_timeout
        self._config_options: dict[str, Any] = {
            "log_level": log_level,
            "log_config": None,
            "access_log": False,
            "date_header": date_header,
            "server_header": server_header,
            "lifespan": "auto",
            "timeout_graceful_shutdown": 1,
            **uvicorn_options,
        }
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._requested_port = port
        self.port = port

    @property
    def url(self) -> str:
        """``http://host:port``, without a trailing slash."""
        if self._socket is None:
            raise RuntimeError("the server is not started")
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> ServerThread:
        """Bind, start serving and wait until the server is ready."""
        if self._thread is not None:
            raise RuntimeError("the server is already started")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted connections inherit this: without it, Nagle's algorithm meets the client's
        # delayed ACK and every response waits 40 ms.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            sock.bind((self.host, self._requested_port))
        except OSError:
            sock.close()
            raise
        self._socket = sock
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, host=self.host, port=self.port, **self._config_options)
        self._server = uvicorn.Server(config)
        self._error = None
        self._thread = threading.Thread(
            target=self._run, name=f"uvicorn-{self.host}:{self.port}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + self.startup_timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the server on {self.url} did not start") from self._error
            time.sleep(0.005)
        return self

    def _run(self) -> None:
        assert self._server is not None and self._socket is not None
        try:
            self._server.run(sockets=[self._socket])
        except BaseException as exc:  # reported by start()
            self._error = exc

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving and wait for the thread (idempotent)."""
        server, thread, sock = self._server, self._thread, self._socket
        if server is not None and thread is not None:
            server.should_exit = True
            thread.join(timeout)
            if thread.is_alive():
                server.force_exit = True
                thread.join(timeout)
        if sock is not None:
            sock.close()
        self._server = self._thread = None

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<ServerThread {self.host}:{self.port} {state}>"
