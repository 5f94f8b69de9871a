"""Structured logging: one JSON object per line on stdout, or a console view for people.

Every line has ``timestamp`` (ISO 8601, UTC), ``level`` and ``event``; lines logged inside a run
also carry ``run_id`` (bound with :func:`bind_run`). The event names are a stable interface that
operators alert on; the README lists each one with its fields.

Secrets are registered with :func:`register_secret` when the configuration is loaded, and a
processor replaces any occurrence of them in any field with ``"[REDACTED]"``. This is the second
line of defence: syncd never puts a credential in an event in the first place.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any, Literal, TextIO

import structlog

LogFormat = Literal["json", "console"]

_secrets: set[str] = set()
_secrets_lock = threading.Lock()
REDACTED = "[REDACTED]"


def register_secret(value: str | None) -> None:
    """Never let ``value`` reach a log line (values shorter than 6 characters are not tracked)."""
    if value and len(value) >= 6:
        with _secrets_lock:
            _secrets.add(value)


def redact(text: str) -> str:
    """Return ``text`` with every registered secret replaced by ``[REDACTED]``."""
    with _secrets_lock:
        secrets = tuple(_secrets)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    if isinstance(value, BaseException):
        return redact(f"{type(value).__name__}: {value}")
    return value


def _redact_processor(
    _logger: Any, _name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    return {key: _scrub(value) for key, value in event_dict.items()}


def configure(
    fmt: LogFormat | None = None, level: str = "info", stream: TextIO | None = None
) -> None:
    """Set up structlog (and the standard library's logging, for libraries) once per process.

    ``fmt=None`` picks ``console`` on a terminal and ``json`` otherwise.
    """
    stream = stream or sys.stdout
    if fmt is None:
        fmt = "console" if stream.isatty() else "json"
    renderer: Any
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer(sort_keys=False)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=stream.isatty())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
            _reorder,
            structlog.processors.format_exc_info,
            _redact_processor,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_level_number(level)),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
    # Libraries (httpx, uvicorn, aiosqlite) log through the standard library: keep them quiet
    # unless they warn, and never let httpx log request lines at INFO.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, force=True)
    for name in ("httpx", "httpcore", "uvicorn", "uvicorn.access", "aiosqlite", "apscheduler"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _reorder(
    _logger: Any, _name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Put ``timestamp``, ``level``, ``event`` and ``run_id`` first, for people reading JSON."""
    head = {
        k: event_dict.pop(k) for k in ("timestamp", "level", "event", "run_id") if k in event_dict
    }
    return {**head, **event_dict}


def _level_number(level: str) -> int:
    value = logging.getLevelName(level.upper())
    return value if isinstance(value, int) else logging.INFO


def get_logger(name: str | None = None) -> Any:
    """Return a structlog logger (``name`` is not rendered; it only documents the caller)."""
    return structlog.get_logger(name)


@contextmanager
def bind_run(run_id: str) -> Iterator[None]:
    """Add ``run_id`` to every line logged inside the block (task-local, via contextvars)."""
    tokens = structlog.contextvars.bind_contextvars(run_id=run_id)
    try:
        yield
    finally:
        structlog.contextvars.reset_contextvars(**tokens)
