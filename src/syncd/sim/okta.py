"""A faithful simulator of the Okta Management API endpoints syncd reads.

It serves an :class:`OktaOrg` as a plain ASGI app (:attr:`OktaSimulator.asgi`), with Okta's
response shapes, cursor pagination and ``link`` headers, error objects, API-token and OAuth 2.0
(``private_key_jwt``) auth, per-family rate limits and a concurrency limit with the real
``x-rate-limit-*`` headers, and deterministic fault injection. Every time it reads comes from a
:class:`~syncd.clock.Clock`, so tests can drive rate-limit windows with a ``FakeClock``.

Usage::

    sim = OktaSimulator(generate_org(people=500, seed=1), api_tokens=["tok"])
    with ServerThread(sim.asgi) as server:
        httpx.get(f"{server.url}/api/v1/users", headers={"Authorization": "SSWS tok"})
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import json
import logging
import math
import random
import re
import secrets
import threading
import urllib.parse
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import anyio
import httpx
import jwt

from syncd.clock import Clock
from syncd.sim.okta_state import (
    AppUserView,
    Group,
    JSONDict,
    OktaOrg,
    UnknownIdError,
    User,
    iso,
    page_after,
    parse_iso,
)

__all__ = [
    "DEFAULT_API_TOKEN",
    "FAULT_KINDS",
    "MUTATIONS",
    "ConnectionDropped",
    "Faults",
    "OAuthClient",
    "OktaOrg",
    "OktaSimulator",
    "RateLimits",
    "RequestRecord",
    "ScriptedFault",
    "Stats",
    "UnknownIdError",
    "run_simulator",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

DEFAULT_API_TOKEN = "sim-api-token"  # noqa: S105 - the simulator's default test token
FAULT_KINDS = frozenset({"500", "502", "503", "429", "401", "malformed", "truncated", "drop"})
READ_SCOPES = (
    "okta.users.read",
    "okta.groups.read",
    "okta.apps.read",
    "okta.schemas.read",
    "okta.logs.read",
)
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
TOKEN_TTL = 3600
#: The :class:`OktaOrg` methods ``POST /_sim/mutate`` may call.
MUTATIONS = frozenset(
    {
        "add_user",
        "update_profile",
        "change_login",
        "suspend",
        "unsuspend",
        "deactivate",
        "activate",
        "reactivate",
        "set_status",
        "delete_user",
        "assign_user",
        "set_assignment_profile",
        "unassign_user",
        "add_group",
        "rename_group",
        "delete_group",
        "assign_group",
        "set_group_priority",
        "set_group_profile",
        "unassign_group",
        "add_member",
        "remove_member",
        "set_role_enum",
        "set_role_attribute",
    }
)
_FAMILY_SCOPES = {
    "users": ("okta.users.read", "okta.users.manage"),
    "groups": ("okta.groups.read", "okta.groups.manage"),
    "apps": ("okta.apps.read", "okta.apps.manage"),
    "logs": ("okta.logs.read",),
}
_SCHEMA_SCOPES = ("okta.apps.read", "okta.apps.manage", "okta.schemas.read", "okta.schemas.manage")
_HTML_ERROR = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n"
    b"</html>\r\n"
)


# --------------------------------------------------------------------------- configuration


@dataclass
class RateLimits:
    """Requests per window for each endpoint family (Okta's per-minute buckets).

    ``repeat_headers`` makes every response carry a second, larger ``x-rate-limit-limit`` and
    ``x-rate-limit-remaining`` before the real ones (clients must take the minimum).
    """

    users: int = 600
    groups: int = 500
    apps: int = 100
    logs: int = 120
    oauth: int = 600
    window: float = 60.0
    repeat_headers: bool = False

    def limit(self, family: str) -> int:
        value = getattr(self, family)
        assert isinstance(value, int)
        return value


@dataclass
class Faults:
    """Random faults, off by default; the draws are reproducible for a ``seed``.

    Rates are fractions of API requests: ``error_rate`` answers 500 or 503 with an Okta error,
    ``malformed_rate`` an HTML page (status 200 or 502), ``truncated_rate`` half a JSON body,
    ``drop_rate`` drops the connection mid-body. ``latency`` (real seconds) delays every answer.
    """

    latency: float = 0.0
    error_rate: float = 0.0
    malformed_rate: float = 0.0
    truncated_rate: float = 0.0
    drop_rate: float = 0.0
    seed: int = 0


@dataclass
class ScriptedFault:
    """A fault for the next ``remaining`` requests whose path starts with ``path_prefix``."""

    path_prefix: str
    kind: str
    remaining: int = 1
    method: str | None = None


@dataclass
class OAuthClient:
    """A service app allowed to get tokens with a ``private_key_jwt`` client assertion."""

    public_key_pem: str | bytes
    scopes: Sequence[str] = READ_SCOPES
    algorithms: Sequence[str] = ("RS256", "ES256")


@dataclass(frozen=True)
class RequestRecord:
    """One API request as the simulator answered it."""

    method: str
    path: str  # path and query string
    status: int
    family: str | None
    route: str  # the route template, e.g. "/api/v1/apps/{appId}/users"
    fault: str | None = None


class Stats:
    """Counts of the API requests served (admin ``/_sim`` requests are not counted)."""

    def __init__(self, log_limit: int = 10_000) -> None:
        self._lock = threading.Lock()
        self.log_limit = log_limit
        self.requests: Counter[str] = Counter()
        self.by_route: Counter[tuple[str, str]] = Counter()
        self.log: list[RequestRecord] = []
        self.rate_limited = 0

    def record(self, rec: RequestRecord) -> None:
        with self._lock:
            self.requests[rec.family or "other"] += 1
            self.by_route[(rec.method, rec.route)] += 1
            self.log.append(rec)
            if len(self.log) > 2 * self.log_limit:
                del self.log[: -self.log_limit]
            if rec.status == 429:
                self.rate_limited += 1

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.by_route.clear()
            self.log.clear()
            self.rate_limited = 0

    def snapshot(self, log: int = 100) -> JSONDict:
        """The counts as JSON, with the last ``log`` requests."""
        with self._lock:
            recent = self.log[-log:] if log > 0 else []
            return {
                "requests": dict(self.requests),
                "byRoute": {f"{m} {r}": n for (m, r), n in sorted(self.by_route.items())},
                "rateLimited": self.rate_limited,
                "log": [asdict(rec) for rec in recent],
            }


class ConnectionDropped(httpx.RemoteProtocolError):
    """Raised by the ASGI app to drop a connection mid-response (the ``drop`` fault).

    Over a socket the server closes the connection; through ``httpx.ASGITransport`` the client
    sees this exception, an ``httpx.RemoteProtocolError`` like the real thing.
    """

    def __init__(self) -> None:
        super().__init__("peer closed connection without sending complete message body")


class _QuietDrops(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, ConnectionDropped)


_uvicorn_error_log = logging.getLogger("uvicorn.error")
if not any(isinstance(f, _QuietDrops) for f in _uvicorn_error_log.filters):
    _uvicorn_error_log.addFilter(_QuietDrops())


# ----------------------------------------------------------------------- request plumbing


@dataclass
class _Request:
    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    base: str
    body: bytes = b""

    def param(self, name: str) -> str | None:
        for key, value in self.query:
            if key == name:
                return value
        return None

    @property
    def target(self) -> str:
        if not self.query:
            return self.path
        return f"{self.path}?{urllib.parse.urlencode(self.query, quote_via=urllib.parse.quote)}"


@dataclass
class _Response:
    status: int
    body: bytes
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str = "application/json"
    links: list[tuple[str, str]] = field(default_factory=list)  # (url, rel)


class _HttpError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        summary: str,
        causes: Sequence[str] = (),
        headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        super().__init__(summary)
        self.status = status
        self.code = code
        self.summary = summary
        self.causes = list(causes)
        self.headers = list(headers)


class _OAuthError(Exception):
    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description


@dataclass(frozen=True)
class _Principal:
    scopes: frozenset[str] | None  # None: an API token, which may read everything


@dataclass
class _Token:
    client_id: str
    scopes: frozenset[str]
    expires: float


@dataclass
class _Window:
    start: float
    count: int = 0


@dataclass(frozen=True)
class _Route:
    method: str
    pattern: re.Pattern[str]
    template: str
    family: str
    scopes: tuple[str, ...]
    handler: str


def _corrupt(body: bytes, field: str) -> bytes:
    """Remove a dotted ``field`` from the first record of a JSON body (a list or an object)."""
    data = json.loads(body)
    record = data[0] if isinstance(data, list) and data else data
    *parents, last = field.split(".")
    for key in parents:
        record = record.get(key) if isinstance(record, dict) else None
    if isinstance(record, dict):
        record.pop(last, None)
    return json.dumps(data, separators=(",", ":")).encode()


def _json(data: Any, status: int = 200) -> _Response:
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
    return _Response(status, body)


def _not_found(ident: str, kind: str) -> _HttpError:
    return _HttpError(404, "E0000007", f"Not found: Resource not found: {ident} ({kind})")


def _encode_cursor(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).rstrip(b"=").decode()


def _decode_cursor(req: _Request) -> str | None:
    raw = req.param("after")
    if raw is None or raw == "":
        return None
    try:
        key = base64.b64decode(raw + "=" * (-len(raw) % 4), altchars=b"-_", validate=True)
        if key:
            return key.decode()
    except (binascii.Error, UnicodeDecodeError):
        pass
    raise _HttpError(400, "E0000001", "Api validation failed: after", ["after: Invalid cursor."])


def _limit(req: _Request, default: int, maximum: int) -> int:
    raw = req.param("limit")
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise _HttpError(
            400, "E0000001", "Api validation failed: limit", ["limit: must be a positive integer"]
        )
    return min(value, maximum)


# -------------------------------------------------------------------------------- filters


class _FilterError(ValueError):
    pass


_TOKEN = re.compile(
    r'\s*(?:(?P<lp>\()|(?P<rp>\))|"(?P<str>(?:[^"\\]|\\.)*)"|(?P<word>[A-Za-z_$][\w.$]*)'
    r"|(?P<num>-?\d+(?:\.\d+)?))"
)
_DATE_ATTRS = frozenset(
    {"created", "activated", "statusChanged", "lastUpdated", "passwordChanged", "lastLogin"}
    | {"lastMembershipUpdated"}
)
_FILTER_OPS = frozenset({"eq", "gt", "ge", "lt", "le"})
_SEARCH_OPS = _FILTER_OPS | {"ne", "sw", "co", "pr"}
_USER_FIELDS: dict[str, Callable[[User], Any]] = {
    "id": lambda u: u.id,
    "status": lambda u: u.status,
    "created": lambda u: u.created,
    "activated": lambda u: u.activated,
    "statusChanged": lambda u: u.status_changed,
    "lastUpdated": lambda u: u.last_updated,
    "passwordChanged": lambda u: u.password_changed,
    "lastLogin": lambda u: u.last_login,
}
_USER_FILTER_ATTRS = frozenset(_USER_FIELDS) | {
    "profile.login",
    "profile.email",
    "profile.firstName",
    "profile.lastName",
}
_GROUP_FIELDS: dict[str, Callable[[Group], Any]] = {
    "id": lambda g: g.id,
    "type": lambda g: g.type,
    "created": lambda g: g.created,
    "lastUpdated": lambda g: g.last_updated,
    "lastMembershipUpdated": lambda g: g.last_membership_updated,
    "profile.name": lambda g: g.name,
    "profile.description": lambda g: g.description,
}


def _compile_filter(
    expr: str,
    fields: Mapping[str, Callable[[Any], Any]],
    allowed: frozenset[str] | None,
    ops: frozenset[str],
) -> Callable[[Any], bool]:
    """Compile an Okta filter/search expression (``attr op "value"``, ``and``, ``or``, parens).

    ``allowed`` limits the attributes (``None``: any, including any ``profile.*``).
    """
    tokens: list[tuple[str, Any]] = []
    pos = 0
    expr = expr.strip()
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if not m or m.end() == pos:
            raise _FilterError(f"unexpected input at {pos}")
        pos = m.end()
        kind = m.lastgroup or ""
        value: Any = m.group(kind)
        if kind == "str":
            value = re.sub(r"\\(.)", r"\1", value)
        tokens.append((kind, value))
    i = 0

    def peek_word() -> str | None:
        if i < len(tokens) and tokens[i][0] == "word":
            return str(tokens[i][1]).lower()
        return None

    def take() -> tuple[str, Any]:
        nonlocal i
        if i >= len(tokens):
            raise _FilterError("unexpected end of expression")
        i += 1
        return tokens[i - 1]

    def parse_or() -> Callable[[Any], bool]:
        nonlocal i
        parts = [parse_and()]
        while peek_word() == "or":
            i += 1
            parts.append(parse_and())
        return parts[0] if len(parts) == 1 else (lambda o: any(p(o) for p in parts))

    def parse_and() -> Callable[[Any], bool]:
        nonlocal i
        parts = [parse_primary()]
        while peek_word() == "and":
            i += 1
            parts.append(parse_primary())
        return parts[0] if len(parts) == 1 else (lambda o: all(p(o) for p in parts))

    def parse_primary() -> Callable[[Any], bool]:
        kind, value = take()
        if kind == "lp":
            inner = parse_or()
            if take()[0] != "rp":
                raise _FilterError("missing )")
            return inner
        if kind != "word":
            raise _FilterError(f"expected an attribute, got {value!r}")
        attr = str(value)
        if allowed is not None and attr not in allowed:
            raise _FilterError(f"unsupported attribute {attr!r}")
        if attr.startswith("profile."):
            key = attr[len("profile.") :]
            getter = fields.get(attr) or (lambda o: o.profile.get(key))
        elif attr in fields:
            getter = fields[attr]
        else:
            raise _FilterError(f"unknown attribute {attr!r}")
        op_kind, op = take()
        op = str(op).lower()
        if op_kind != "word" or op not in ops:
            raise _FilterError(f"unsupported operator {op!r}")
        if op == "pr":
            return lambda o: getter(o) not in (None, "")
        vkind, raw = take()
        if vkind == "str":
            target: Any = raw
        elif vkind == "num":
            target = float(raw)
        elif vkind == "word" and str(raw).lower() in ("true", "false", "null"):
            target = {"true": True, "false": False, "null": None}[str(raw).lower()]
        else:
            raise _FilterError(f"expected a value, got {raw!r}")
        return _comparison(getter, op, target, date=attr in _DATE_ATTRS, ci=attr[:8] == "profile.")

    result = parse_or()
    if i != len(tokens):
        raise _FilterError("trailing input")
    return result


def _comparison(
    getter: Callable[[Any], Any], op: str, target: Any, *, date: bool, ci: bool
) -> Callable[[Any], bool]:
    if target is None:
        return (lambda o: getter(o) is None) if op == "eq" else (lambda o: getter(o) is not None)
    convert: Callable[[Any], Any] = lambda v: v  # noqa: E731
    if date:
        try:
            target = parse_iso(str(target))
        except ValueError:
            raise _FilterError(f"not a timestamp: {target!r}") from None
        convert = parse_iso
    elif ci and isinstance(target, str):
        target = target.lower()
        convert = lambda v: v.lower() if isinstance(v, str) else v  # noqa: E731
    compare: Callable[[Any, Any], bool] = {
        "eq": lambda a, b: a == b,
        "ne": lambda a, b: a != b,
        "gt": lambda a, b: a > b,
        "ge": lambda a, b: a >= b,
        "lt": lambda a, b: a < b,
        "le": lambda a, b: a <= b,
        "sw": lambda a, b: str(a).startswith(str(b)),
        "co": lambda a, b: str(b) in str(a),
    }[op]

    def test(obj: Any) -> bool:
        actual = getter(obj)
        if actual is None:
            return op == "ne"
        try:
            return compare(convert(actual), target)
        except (TypeError, ValueError):
            return False

    return test


# ------------------------------------------------------------------------------ simulator


class OktaSimulator:
    """Serve an :class:`OktaOrg` over Okta's Management API, as an ASGI app (:attr:`asgi`).

    ``clock`` (default: the org's) dates responses and drives rate-limit windows and token
    expiry; the simulator binds the org to it so mutations carry the same time. ``api_tokens``
    are accepted as ``SSWS`` tokens, ``oauth_clients`` may get ``Bearer`` tokens from
    ``/oauth2/v1/token``. ``base_url`` fixes the origin of ``link`` URLs (default: the request's
    own). ``link_style`` is ``"separate"`` (one ``link`` header per relation, like Okta) or
    ``"combined"`` (one comma-separated ``Link`` header).
    """

    def __init__(
        self,
        org: OktaOrg,
        *,
        clock: Clock | None = None,
        limits: RateLimits | None = None,
        faults: Faults | None = None,
        api_tokens: Iterable[str] = (DEFAULT_API_TOKEN,),
        oauth_clients: Mapping[str, OAuthClient] | None = None,
        base_url: str | None = None,
        link_style: str = "separate",
        concurrency_limit: int = 75,
        seed: int = 0,
    ) -> None:
        if link_style not in ("separate", "combined"):
            raise ValueError(f"link_style must be 'separate' or 'combined', not {link_style!r}")
        self.org = org
        if clock is not None:
            org.clock = clock
        self.clock: Clock = org.clock
        self.limits = limits or RateLimits()
        self.api_tokens = set(api_tokens)
        self.oauth_clients: dict[str, OAuthClient] = dict(oauth_clients or {})
        self.base_url = base_url.rstrip("/") if base_url else None
        self.link_style = link_style
        self.concurrency_limit = concurrency_limit
        self.stats = Stats()
        self.scripted_faults: list[ScriptedFault] = []
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._faults = faults or Faults()
        self._fault_rng = random.Random(self._faults.seed)
        self._windows: dict[str, _Window] = {}
        self._tokens: dict[str, _Token] = {}
        self._seen_jti: dict[tuple[str, str], float] = {}
        self._in_flight = 0

    # ------------------------------------------------------------------ public API

    @property
    def asgi(self) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
        """The ASGI (3.0) application: the simulator itself."""
        return self

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._app(scope, receive, send)

    @property
    def faults(self) -> Faults:
        """The random fault configuration (setting it restarts the seeded draws)."""
        return self._faults

    @faults.setter
    def faults(self, value: Faults) -> None:
        with self._lock:
            self._faults = value
            self._fault_rng = random.Random(value.seed)

    @property
    def in_flight(self) -> int:
        """API requests being served right now."""
        return self._in_flight

    def fail_next(
        self,
        path_prefix: str = "/api/",
        kind: str = "500",
        count: int = 1,
        *,
        method: str | None = None,
    ) -> None:
        """Answer the next ``count`` requests under ``path_prefix`` with a fault.

        ``kind`` is one of :data:`FAULT_KINDS`: ``"500"``, ``"502"`` (HTML page), ``"503"``,
        ``"429"``, ``"401"``, ``"malformed"`` (HTML with status 200), ``"truncated"`` or
        ``"drop"``; or ``"corrupt:<dotted.field>"``, which serves the real response with that
        field removed from its first record (``corrupt:_embedded.user.profile.login``).
        Scripted faults are used up in the order they were added.
        """
        if kind not in FAULT_KINDS and not (kind.startswith("corrupt:") and len(kind) > 8):
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {sorted(FAULT_KINDS)}")
        if count < 1:
            raise ValueError("count must be at least 1")
        with self._lock:
            self.scripted_faults.append(ScriptedFault(path_prefix, kind, count, method))

    def clear_faults(self) -> None:
        """Turn random faults off and forget scripted ones."""
        self.faults = Faults()
        with self._lock:
            self.scripted_faults.clear()

    def reset_rate_limits(self) -> None:
        """Forget every rate-limit window (the next request starts a fresh one)."""
        with self._lock:
            self._windows.clear()

    def issue_token(
        self, scopes: Iterable[str] = READ_SCOPES, *, client_id: str = "sim", ttl: float = TOKEN_TTL
    ) -> str:
        """Mint a ``Bearer`` access token directly (skipping ``/oauth2/v1/token``)."""
        token = secrets.token_urlsafe(48)
        with self._lock:
            self._tokens[token] = _Token(client_id, frozenset(scopes), self.clock.time() + ttl)
        return token

    # ---------------------------------------------------------------------- ASGI

    async def _app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        req = await self._read(scope, receive)
        if req.path.startswith("/_sim/"):
            await self._send(send, self._admin(req))
        elif req.path.startswith(("/api/", "/oauth2/")):
            await self._api(req, send)
        else:
            await self._send(send, self._error(_not_found(req.path, "Page")))

    async def _read(self, scope: Scope, receive: Receive) -> _Request:
        headers: dict[str, str] = {}
        for raw_name, raw_value in scope.get("headers", []):
            name = raw_name.decode("latin-1").lower()
            value = raw_value.decode("latin-1")
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        query = urllib.parse.parse_qsl(
            scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True
        )
        if self.base_url:
            base = self.base_url
        else:
            host = headers.get("host")
            if not host:
                server = scope.get("server") or ("127.0.0.1", 80)
                host = f"{server[0]}:{server[1]}"
            base = f"{scope.get('scheme', 'http')}://{host}"
        body = b""
        if scope["method"] not in ("GET", "HEAD"):
            more = True
            while more:
                message = await receive()
                body += message.get("body", b"")
                more = message.get("more_body", False)
        return _Request(scope["method"], scope["path"], query, headers, base, body)

    async def _api(self, req: _Request, send: Send) -> None:
        route, params, allowed = self._match(req)
        family = route.family if route else _family(req.path)
        with self._lock:
            self._in_flight += 1
            in_flight = self._in_flight
        status, fault = 500, None
        try:
            resp, fault = self._respond(req, route, params, allowed, family, in_flight)
            status = resp.status
            if self._faults.latency > 0:
                await anyio.sleep(self._faults.latency)
            await self._send(send, resp, drop=fault == "drop")
        finally:
            with self._lock:
                self._in_flight -= 1
            template = route.template if route else "(unknown)"
            self.stats.record(
                RequestRecord(req.method, req.target, status, family, template, fault)
            )

    @staticmethod
    def _match(req: _Request) -> tuple[_Route | None, dict[str, str], list[str]]:
        """The route for a request and its path parameters, or the methods the path allows."""
        allowed: list[str] = []
        for route in _ROUTES:
            m = route.pattern.match(req.path)
            if m:
                if route.method == req.method:
                    return route, m.groupdict(), []
                allowed.append(route.method)
        return None, {}, allowed

    def _respond(
        self,
        req: _Request,
        route: _Route | None,
        params: dict[str, str],
        allowed_methods: list[str],
        family: str | None,
        in_flight: int,
    ) -> tuple[_Response, str | None]:
        now = self.clock.time()
        rate_headers: list[tuple[str, str]] = []
        try:
            principal = None if family == "oauth" else self._authenticate(req)
            if in_flight > self.concurrency_limit:
                rate_headers = self._rate_headers(0, 0, int(now) + 1)
                raise _HttpError(
                    429, "E0000047", "API call exceeded rate limit due to too many requests."
                )
            if family is not None:
                allowed, rate_headers = self._take(family, now)
                if not allowed:
                    raise _HttpError(
                        429, "E0000047", "API call exceeded rate limit due to too many requests."
                    )
            if principal is not None and principal.scopes is not None:
                needed = route.scopes if route else _FAMILY_SCOPES.get(family or "", ())
                if needed and not principal.scopes & set(needed):
                    raise _HttpError(
                        403,
                        "E0000006",
                        "You do not have permission to perform the requested action",
                        headers=[
                            ("www-authenticate", _bearer_challenge(req, "insufficient_scope"))
                        ],
                    )
            fault = self._pick_fault(req)
            if (
                fault is not None
                and fault not in ("truncated", "drop")
                and not fault.startswith("corrupt:")
            ):
                resp = self._fault_response(fault, family, now)
                if fault not in ("401", "429"):
                    resp.headers[:0] = rate_headers
                return self._finish(resp, req, now), fault
            if route is None:
                if allowed_methods:
                    raise _HttpError(
                        405,
                        "E0000022",
                        "The endpoint does not support the provided HTTP method",
                        headers=[("allow", ", ".join(allowed_methods))],
                    )
                raise _not_found(req.path, "Page")
            resp = getattr(self, route.handler)(req, params)
        except _HttpError as exc:
            resp = self._error(exc)
            fault = None
        except _OAuthError as exc:
            resp = _json({"error": exc.error, "error_description": exc.description}, exc.status)
            fault = None
        resp.headers[:0] = rate_headers
        if fault == "truncated":
            resp.body = resp.body[: len(resp.body) // 2]
        elif fault is not None and fault.startswith("corrupt:") and resp.status == 200:
            resp.body = _corrupt(resp.body, fault.removeprefix("corrupt:"))
        return self._finish(resp, req, now), fault

    def _finish(self, resp: _Response, req: _Request, now: float) -> _Response:
        headers = [
            ("date", email.utils.formatdate(now, usegmt=True)),
            ("x-okta-request-id", f"{self._rng.getrandbits(128):032x}"),
        ]
        if resp.links:
            values = [f'<{url}>; rel="{rel}"' for url, rel in resp.links]
            if self.link_style == "combined":
                headers.append(("Link", ", ".join(values)))
            else:
                headers.extend(("link", v) for v in values)
        headers.extend(resp.headers)
        headers += [("cache-control", "no-cache, no-store"), ("pragma", "no-cache")]
        headers.append(("expires", "0"))
        resp.headers = headers
        return resp

    async def _send(self, send: Send, resp: _Response, *, drop: bool = False) -> None:
        headers = [(b"content-type", resp.content_type.encode())]
        headers.append((b"content-length", str(len(resp.body)).encode()))
        headers += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in resp.headers]
        await send({"type": "http.response.start", "status": resp.status, "headers": headers})
        if drop:
            half = resp.body[: len(resp.body) // 2]
            await send({"type": "http.response.body", "body": half, "more_body": True})
            raise ConnectionDropped()
        await send({"type": "http.response.body", "body": resp.body})

    def _error(self, exc: _HttpError) -> _Response:
        resp = _json(
            {
                "errorCode": exc.code,
                "errorSummary": exc.summary,
                "errorLink": exc.code,
                "errorId": self._error_id(),
                "errorCauses": [{"errorSummary": c} for c in exc.causes],
            },
            exc.status,
        )
        resp.headers = list(exc.headers)
        return resp

    def _error_id(self) -> str:
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        return "oae" + "".join(self._rng.choices(alphabet, k=22))

    # ------------------------------------------------------ auth, limits, faults

    def _authenticate(self, req: _Request) -> _Principal:
        scheme, _, token = req.headers.get("authorization", "").partition(" ")
        token = token.strip()
        if scheme == "SSWS" and token in self.api_tokens:
            return _Principal(None)
        if scheme == "Bearer":
            with self._lock:
                issued = self._tokens.get(token)
            if issued is not None and self.clock.time() < issued.expires:
                return _Principal(issued.scopes)
            raise _HttpError(
                401,
                "E0000011",
                "Invalid token provided",
                headers=[("www-authenticate", _bearer_challenge(req, "invalid_token"))],
            )
        raise _HttpError(401, "E0000011", "Invalid token provided")

    def _take(self, family: str, now: float) -> tuple[bool, list[tuple[str, str]]]:
        limit = self.limits.limit(family)
        with self._lock:
            window = self._windows.get(family)
            if window is None or now >= window.start + self.limits.window:
                window = self._windows[family] = _Window(now)
            allowed = window.count < limit
            if allowed:
                window.count += 1
            remaining = max(0, limit - window.count)
            reset = math.ceil(window.start + self.limits.window)
        return allowed, self._rate_headers(limit, remaining, reset)

    def _rate_headers(self, limit: int, remaining: int, reset: int) -> list[tuple[str, str]]:
        headers = []
        if self.limits.repeat_headers:
            headers += [
                ("x-rate-limit-limit", str(2 * limit + 1)),
                ("x-rate-limit-remaining", str(remaining + limit + 1)),
            ]
        headers += [
            ("x-rate-limit-limit", str(limit)),
            ("x-rate-limit-remaining", str(remaining)),
            ("x-rate-limit-reset", str(reset)),
        ]
        return headers

    def _pick_fault(self, req: _Request) -> str | None:
        with self._lock:
            for i, scripted in enumerate(self.scripted_faults):
                if req.path.startswith(scripted.path_prefix) and scripted.method in (
                    None,
                    req.method,
                ):
                    scripted.remaining -= 1
                    if scripted.remaining <= 0:
                        del self.scripted_faults[i]
                    return scripted.kind
            f, rng = self._faults, self._fault_rng
            if f.error_rate + f.malformed_rate + f.truncated_rate + f.drop_rate <= 0:
                return None
            u = rng.random()
            for rate, kinds in (
                (f.error_rate, ("500", "503")),
                (f.malformed_rate, ("malformed", "502")),
                (f.truncated_rate, ("truncated",)),
                (f.drop_rate, ("drop",)),
            ):
                if u < rate:
                    return kinds[0] if len(kinds) == 1 or rng.random() < 0.5 else kinds[1]
                u -= rate
            return None

    def _fault_response(self, kind: str, family: str | None, now: float) -> _Response:
        if kind == "500":
            return self._error(_HttpError(500, "E0000009", "Internal Server Error"))
        if kind == "503":
            exc = _HttpError(503, "E0000010", "Service is temporarily unavailable")
            return self._error(exc)
        if kind == "401":
            return self._error(_HttpError(401, "E0000011", "Invalid token provided"))
        if kind == "429":
            resp = self._error(
                _HttpError(
                    429, "E0000047", "API call exceeded rate limit due to too many requests."
                )
            )
            if family is not None:
                with self._lock:
                    window = self._windows.get(family)
                    reset = math.ceil((window.start if window else now) + self.limits.window)
                resp.headers = self._rate_headers(self.limits.limit(family), 0, reset)
            return resp
        if kind == "502":
            return _Response(502, _HTML_ERROR, content_type="text/html")
        return _Response(200, _HTML_ERROR)  # "malformed": HTML sent as JSON

    # -------------------------------------------------------------------- listing

    def _page(
        self,
        req: _Request,
        items: list[JSONDict],
        limit: int,
        next_key: str | None,
    ) -> _Response:
        resp = _json(items)
        keep = [(k, v) for k, v in req.query if k not in ("after", "limit")]
        after = req.param("after")
        self_query = keep + ([("after", after)] if after else []) + [("limit", str(limit))]
        resp.links.append((self._url(req, self_query), "self"))
        if next_key is not None:
            next_query = [*keep, ("after", _encode_cursor(next_key)), ("limit", str(limit))]
            resp.links.append((self._url(req, next_query), "next"))
        return resp

    @staticmethod
    def _url(req: _Request, query: list[tuple[str, str]]) -> str:
        qs = urllib.parse.urlencode(query, quote_via=urllib.parse.quote)
        return f"{req.base}{req.path}?{qs}"

    def _check_app(self, app_id: str) -> None:
        if app_id != self.org.app.id:
            raise _not_found(app_id, "AppInstance")

    # ------------------------------------------------------------------- handlers

    def _list_users(self, req: _Request, params: dict[str, str]) -> _Response:
        limit = _limit(req, 200, 200)
        after = _decode_cursor(req)
        accept: Callable[[User], bool]
        search, flt, q = req.param("search"), req.param("filter"), req.param("q")
        try:
            if search:
                accept = _compile_filter(search, _USER_FIELDS, None, _SEARCH_OPS)
            elif flt:
                accept = _compile_filter(flt, _USER_FIELDS, _USER_FILTER_ATTRS, _FILTER_OPS)
            elif q:
                accept = _user_query(q)
            else:
                accept = _not_deprovisioned
        except _FilterError as exc:
            code, summary = (
                ("E0000031", "Invalid search criteria.")
                if search
                else ("E0000053", "Invalid filter parameter.")
            )
            raise _HttpError(400, code, summary, [str(exc)]) from None
        org = self.org
        with org.lock:
            users, more = page_after(org.sorted_user_ids(), after, limit, org.users.get, accept)
            items = [org.user_json(u, req.base) for u in users]
        return self._page(req, items, limit, users[-1].id if more else None)

    def _get_user(self, req: _Request, params: dict[str, str]) -> _Response:
        with self.org.lock:
            try:
                user = self.org.user(params["userId"])
            except UnknownIdError:
                raise _not_found(params["userId"], "User") from None
            return _json(self.org.user_json(user, req.base, detail=True))

    def _list_groups(self, req: _Request, params: dict[str, str]) -> _Response:
        limit = _limit(req, 10_000, 10_000)
        after = _decode_cursor(req)
        expr = req.param("search") or req.param("filter")
        q = req.param("q")
        accept: Callable[[Group], bool] | None = None
        try:
            if expr:
                accept = _compile_filter(expr, _GROUP_FIELDS, None, _SEARCH_OPS)
            elif q:
                prefix = q.lower()
                accept = lambda g: g.name.lower().startswith(prefix)  # noqa: E731
        except _FilterError as exc:
            code = "E0000031" if req.param("search") else "E0000053"
            raise _HttpError(400, code, "Invalid search criteria.", [str(exc)]) from None
        stats = "stats" in (req.param("expand") or "").split(",")
        org = self.org
        with org.lock:
            groups, more = page_after(org.sorted_group_ids(), after, limit, org.groups.get, accept)
            items = [org.group_json(g, req.base, stats=stats) for g in groups]
        return self._page(req, items, limit, groups[-1].id if more else None)

    def _get_group(self, req: _Request, params: dict[str, str]) -> _Response:
        with self.org.lock:
            group = self.org.groups.get(params["groupId"])
            if group is None:
                raise _not_found(params["groupId"], "UserGroup")
            stats = "stats" in (req.param("expand") or "").split(",")
            return _json(self.org.group_json(group, req.base, stats=stats))

    def _group_users(self, req: _Request, params: dict[str, str]) -> _Response:
        limit = _limit(req, 1000, 1000)
        after = _decode_cursor(req)
        org = self.org
        with org.lock:
            if params["groupId"] not in org.groups:
                raise _not_found(params["groupId"], "UserGroup")
            ids = org.sorted_member_ids(params["groupId"])
            users, more = page_after(ids, after, limit, org.users.__getitem__)
            items = [org.user_json(u, req.base) for u in users]
        return self._page(req, items, limit, users[-1].id if more else None)

    def _get_app(self, req: _Request, params: dict[str, str]) -> _Response:
        self._check_app(params["appId"])
        with self.org.lock:
            return _json(self.org.app_json(req.base))

    def _app_users(self, req: _Request, params: dict[str, str]) -> _Response:
        self._check_app(params["appId"])
        limit = _limit(req, 50, 500)
        after = _decode_cursor(req)
        expand = req.param("expand") == "user"
        org = self.org
        with org.lock:
            views: list[AppUserView]
            views, more = page_after(org.app_user_ids(), after, limit, org.app_user)
            items = [org.app_user_json(v, req.base, expand_user=expand) for v in views]
        return self._page(req, items, limit, views[-1].user.id if more else None)

    def _app_user(self, req: _Request, params: dict[str, str]) -> _Response:
        self._check_app(params["appId"])
        with self.org.lock:
            uid = params["userId"]
            view = self.org.app_user(uid) if uid in self.org.users else None
            if view is None:
                raise _not_found(uid, "AppUser")
            expand = req.param("expand") == "user"
            return _json(self.org.app_user_json(view, req.base, expand_user=expand))

    def _app_groups(self, req: _Request, params: dict[str, str]) -> _Response:
        self._check_app(params["appId"])
        limit = _limit(req, 20, 200)
        cursor = _decode_cursor(req)
        after: tuple[int, str] | None = None
        if cursor is not None:
            priority, _, gid = cursor.partition(":")
            try:
                after = (int(priority), gid)
            except ValueError:
                raise _HttpError(400, "E0000001", "Api validation failed: after") from None
        expand = req.param("expand") == "group"
        org = self.org
        with org.lock:
            keys = sorted((ga.priority, gid) for gid, ga in org.group_assignments.items())
            page, more = page_after(keys, after, limit, lambda key: key)
            items = [org.app_group_json(gid, req.base, expand_group=expand) for _, gid in page]
        next_key = f"{page[-1][0]}:{page[-1][1]}" if more else None
        return self._page(req, items, limit, next_key)

    def _app_group(self, req: _Request, params: dict[str, str]) -> _Response:
        self._check_app(params["appId"])
        with self.org.lock:
            gid = params["groupId"]
            if gid not in self.org.group_assignments:
                raise _not_found(gid, "ApplicationGroupAssignment")
            expand = req.param("expand") == "group"
            return _json(self.org.app_group_json(gid, req.base, expand_group=expand))

    def _app_schema(self, req: _Request, params: dict[str, str]) -> _Response:
        self._check_app(params["appId"])
        with self.org.lock:
            return _json(self.org.app_user_schema_json(req.base))

    def _logs(self, req: _Request, params: dict[str, str]) -> _Response:
        limit = _limit(req, 100, 1000)
        since = req.param("since") or iso(self.clock.time())
        return self._page(req, [], limit, f"log:{since}")

    def _token(self, req: _Request, params: dict[str, str]) -> _Response:
        form = dict(urllib.parse.parse_qsl(req.body.decode("utf-8", "replace")))
        if form.get("grant_type") != "client_credentials":
            raise _OAuthError(
                400,
                "unsupported_grant_type",
                "The authorization grant type is not supported by the authorization server. "
                "Configured grant types: [client_credentials].",
            )
        assertion = form.get("client_assertion")
        if form.get("client_assertion_type") != ASSERTION_TYPE or not assertion:
            raise _OAuthError(
                400,
                "invalid_request",
                "The 'client_assertion' and 'client_assertion_type' parameters are required.",
            )
        scopes = form.get("scope", "").split()
        if not scopes:
            raise _OAuthError(
                400,
                "invalid_scope",
                "The authorization server resource does not have any configured default scopes, "
                "'scope' must be provided.",
            )
        client_id, client = self._check_assertion(assertion, form.get("client_id"), req)
        if not set(scopes) <= set(client.scopes):
            raise _OAuthError(
                400,
                "invalid_scope",
                "One or more scopes are not configured for the authorization server resource.",
            )
        token = self.issue_token(scopes, client_id=client_id)
        resp = _json(
            {
                "token_type": "Bearer",
                "expires_in": TOKEN_TTL,
                "access_token": token,
                "scope": " ".join(scopes),
            }
        )
        resp.headers.append(("cache-control", "no-store"))
        return resp

    def _check_assertion(
        self, assertion: str, form_client_id: str | None, req: _Request
    ) -> tuple[str, OAuthClient]:
        def fail(description: str) -> _OAuthError:
            return _OAuthError(401, "invalid_client", description)

        try:
            unverified = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise fail("The client_assertion token is malformed.") from None
        client_id = form_client_id or str(unverified.get("iss", ""))
        client = self.oauth_clients.get(client_id)
        if client is None:
            raise fail("Invalid value for 'client_id' parameter.")
        audience = f"{req.base}/oauth2/v1/token"
        try:
            claims = jwt.decode(
                assertion,
                client.public_key_pem,
                algorithms=list(client.algorithms),
                audience=audience,
                options={
                    "verify_exp": False,  # checked below against the simulator's clock
                    "verify_iat": False,
                    "verify_nbf": False,
                    "require": ["iss", "sub", "aud", "exp", "jti"],
                },
            )
        except jwt.InvalidAudienceError:
            raise fail(
                f"The audience claim for client_assertion must be the endpoint invoked for the "
                f"request: {audience}."
            ) from None
        except jwt.MissingRequiredClaimError as exc:
            raise fail(f"The client_assertion token must contain a '{exc.claim}' claim.") from None
        except jwt.InvalidSignatureError:
            raise fail("The client_assertion signature is invalid.") from None
        except jwt.PyJWTError as exc:
            raise fail(f"The client_assertion token is invalid: {exc}") from None
        if claims["iss"] != client_id or claims["sub"] != client_id:
            raise fail("The 'iss' and 'sub' claims of the client_assertion must be the client_id.")
        now = self.clock.time()
        try:
            exp = float(claims["exp"])
        except (TypeError, ValueError):
            raise fail("The client_assertion 'exp' claim is invalid.") from None
        if exp <= now:
            raise fail("The client_assertion token is expired.")
        if exp > now + TOKEN_TTL:
            raise fail("The client_assertion token has an expiration too far into the future.")
        key = (client_id, str(claims["jti"]))
        with self._lock:
            self._seen_jti = {k: e for k, e in self._seen_jti.items() if e > now}
            if key in self._seen_jti:
                raise fail("The client_assertion token has already been used.")
            self._seen_jti[key] = exp
        return client_id, client

    # ---------------------------------------------------------------------- admin

    def _admin(self, req: _Request) -> _Response:
        route = (req.method, req.path.rstrip("/"))
        try:
            if route == ("GET", "/_sim/stats"):
                data = self.stats.snapshot(int(req.param("log") or 100))
                data["inFlight"] = self._in_flight
                return _json(data)
            if route == ("POST", "/_sim/stats/reset"):
                self.stats.reset()
                return _json({"ok": True})
            if route == ("POST", "/_sim/ratelimits/reset"):
                self.reset_rate_limits()
                return _json({"ok": True})
            if route == ("GET", "/_sim/org"):
                return _json(self.org.to_dict())
            if route == ("POST", "/_sim/mutate"):
                return self._admin_mutate(req)
            if route == ("POST", "/_sim/faults"):
                return self._admin_faults(json.loads(req.body or b"{}"))
            if route == ("GET", "/_sim/faults"):
                return _json(self._faults_json())
        except UnknownIdError as exc:
            return _json({"error": str(exc)}, 404)
        except (ValueError, TypeError, KeyError) as exc:
            return _json({"error": f"{type(exc).__name__}: {exc}"}, 400)
        return _json({"error": f"no admin endpoint {req.method} {req.path}"}, 404)

    def _admin_mutate(self, req: _Request) -> _Response:
        payload = json.loads(req.body or b"{}")
        op = payload.get("op")
        if op not in MUTATIONS:
            raise ValueError(f"op must be one of {sorted(MUTATIONS)}, not {op!r}")
        args = payload.get("args") or {}
        if not isinstance(args, dict):
            raise TypeError("args must be an object")
        return _json({"result": getattr(self.org, op)(**args)})

    def _admin_faults(self, payload: Mapping[str, Any]) -> _Response:
        names = {f.name for f in fields(Faults)}
        unknown = set(payload) - names - {"script"}
        if unknown:
            raise ValueError(f"unknown fault settings: {sorted(unknown)}")
        script = payload.get("script", [])
        self.clear_faults()
        self.faults = Faults(**{k: v for k, v in payload.items() if k in names})
        for entry in script:
            self.fail_next(
                entry.get("path_prefix", "/api/"),
                entry.get("kind", "500"),
                int(entry.get("count", 1)),
                method=entry.get("method"),
            )
        return _json(self._faults_json())

    def _faults_json(self) -> JSONDict:
        with self._lock:
            return {**asdict(self._faults), "script": [asdict(s) for s in self.scripted_faults]}


def _family(path: str) -> str | None:
    for prefix, family in (
        ("/api/v1/users", "users"),
        ("/api/v1/groups", "groups"),
        ("/api/v1/apps", "apps"),
        ("/api/v1/meta/schemas/apps", "apps"),
        ("/api/v1/logs", "logs"),
        ("/oauth2/", "oauth"),
    ):
        if path == prefix or path.startswith(prefix + ("" if prefix.endswith("/") else "/")):
            return family
    return None


def _not_deprovisioned(user: User) -> bool:
    return user.status != "DEPROVISIONED"


def _user_query(q: str) -> Callable[[User], bool]:
    prefix = q.lower()

    def accept(user: User) -> bool:
        if user.status == "DEPROVISIONED":
            return False
        p = user.profile
        return any(
            isinstance(p.get(k), str) and p[k].lower().startswith(prefix)
            for k in ("firstName", "lastName", "email", "login")
        )

    return accept


def _bearer_challenge(req: _Request, error: str) -> str:
    description = {
        "invalid_token": "The access token is invalid.",
        "insufficient_scope": "The access token provided does not contain the required scopes.",
    }[error]
    return (
        f'Bearer authorization_uri="{req.base}/oauth2/v1/authorize", realm="{req.base}", '
        f'scope="okta.users.read", error="{error}", error_description="{description}", '
        f'resource="{req.path}"'
    )


def _route(
    method: str, template: str, family: str, handler: str, scopes: tuple[str, ...]
) -> _Route:
    pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)
    return _Route(method, re.compile(f"^{pattern}$"), template, family, scopes, handler)


_USERS, _GROUPS, _APPS = _FAMILY_SCOPES["users"], _FAMILY_SCOPES["groups"], _FAMILY_SCOPES["apps"]
_ROUTES = [
    _route("GET", "/api/v1/users", "users", "_list_users", _USERS),
    _route("GET", "/api/v1/users/{userId}", "users", "_get_user", _USERS),
    _route("GET", "/api/v1/groups", "groups", "_list_groups", _GROUPS),
    _route("GET", "/api/v1/groups/{groupId}", "groups", "_get_group", _GROUPS),
    _route("GET", "/api/v1/groups/{groupId}/users", "groups", "_group_users", _GROUPS),
    _route("GET", "/api/v1/apps/{appId}", "apps", "_get_app", _APPS),
    _route("GET", "/api/v1/apps/{appId}/users", "apps", "_app_users", _APPS),
    _route("GET", "/api/v1/apps/{appId}/users/{userId}", "apps", "_app_user", _APPS),
    _route("GET", "/api/v1/apps/{appId}/groups", "apps", "_app_groups", _APPS),
    _route("GET", "/api/v1/apps/{appId}/groups/{groupId}", "apps", "_app_group", _APPS),
    _route(
        "GET", "/api/v1/meta/schemas/apps/{appId}/default", "apps", "_app_schema", _SCHEMA_SCOPES
    ),
    _route("GET", "/api/v1/logs", "logs", "_logs", _FAMILY_SCOPES["logs"]),
    _route("POST", "/oauth2/v1/token", "oauth", "_token", ()),
]


def run_simulator(
    org: OktaOrg,
    *,
    host: str = "127.0.0.1",
    port: int = 8089,
    api_tokens: Iterable[str] = (DEFAULT_API_TOKEN,),
    limits: RateLimits | None = None,
    faults: Faults | None = None,
    oauth_clients: Mapping[str, OAuthClient] | None = None,
    base_url: str | None = None,
    link_style: str = "separate",
    concurrency_limit: int = 75,
    clock: Clock | None = None,
    log_level: str = "info",
    access_log: bool = False,
) -> None:
    """Serve ``org`` with uvicorn until interrupted (``syncd sim okta``)."""
    import uvicorn

    sim = OktaSimulator(
        org,
        clock=clock,
        limits=limits,
        faults=faults,
        api_tokens=api_tokens,
        oauth_clients=oauth_clients,
        base_url=base_url,
        link_style=link_style,
        concurrency_limit=concurrency_limit,
    )
    config = uvicorn.Config(
        sim.asgi,
        host=host,
        port=port,
        log_level=log_level,
        access_log=access_log,
        date_header=False,  # the simulator sends its own, from its clock
        server_header=False,
        lifespan="on",
    )
    uvicorn.Server(config).run()
