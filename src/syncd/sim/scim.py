"""A real SCIM 2.0 server for tests, ``syncd demo`` and benchmarks: scim2-server, wrapped.

:class:`ScimServer` serves scim2-server's ASGI application (in-memory storage) with the custom
role attribute added to the core User schema, the way Vanta/WorkOS take it, and bearer-token
auth. Around it, a thin ASGI layer that changes nothing the server does, except where a test
asks for a known server quirk:

* every request is counted and logged (:attr:`ScimServer.requests`);
* ``hooks`` run after the server has handled a request and before the response leaves, so a
  test can kill the client at that exact point; ``intercepts`` run before the server sees a
  request, and one that returns True has it answered 503, unprocessed;
* ``page_cap=N`` makes the server return at most N resources a page, whatever is asked;
* ``hide_group_members=True`` drops ``members`` from GET responses on groups, like servers that
  omit or cap them;
* ``require_patch_path=True`` answers 400 to a PATCH operation without ``path``, like servers
  that reject Okta's no-path form;
* :meth:`ScimServer.fail_next` answers the next matching requests with an error status (and
  ``Retry-After``), without passing them to the server; with ``served=True`` the server handles
  them first, and only the answer is lost (a 500 or a proxy's 502 after the write was made).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from scim2_models import Group, ResourceType, Schema, ScimProvider, UnauthorizedException
from scim2_server.applications.asgi import ASGIApplication
from scim2_server.memory import AsyncInMemoryStorage, InMemoryStorage
from scim2_server.requests import ScimRequest
from scim2_server.service import ScimService
from scim2_server.utils import (
    load_default_resource_types,
    load_default_service_provider_config,
    load_json_resource,
)

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"

Scope = dict[str, Any]
Message = dict[str, Any]


@dataclass
class Fault:
    """Answer the next ``times`` requests matching ``method`` and ``prefix`` with ``status``."""

    method: str
    prefix: str
    status: int
    times: int = 1
    retry_after: str | None = None
    body: str | None = None
    served: bool = False  # the server handles the request; only its answer is replaced


@dataclass(frozen=True)
class Seen:
    """One request the server received, and its status."""

    method: str
    path: str
    query: str
    status: int
    body: Any


def schemas_with_role(role_attribute: str) -> list[dict[str, Any]]:
    """scim2-server's default schemas with a top-level string attribute on the core User."""
    schemas = copy.deepcopy(load_json_resource("default-schemas.json"))
    for schema in schemas:
        if schema["id"] == USER_SCHEMA:
            schema["attributes"].append(
                {
                    "name": role_attribute,
                    "type": "string",
                    "multiValued": False,
                    "description": "The role id, from the Okta app's custom role attribute.",
                    "required": False,
                    "caseExact": False,
                    "mutability": "readWrite",
                    "returned": "default",
                    "uniqueness": "none",
                }
            )
    return list(schemas)


class _BearerASGI(ASGIApplication):
    def __init__(self, *args: Any, tokens: set[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tokens = tokens

    def check_auth(self, request: ScimRequest) -> None:
        scheme, _, token = (request.header("Authorization") or "").partition(" ")
        if self.tokens and (scheme.lower() != "bearer" or token not in self.tokens):
            raise UnauthorizedException


class ScimServer:
    """scim2-server with a role attribute, bearer auth, request counting and test hooks."""

    def __init__(
        self,
        *,
        role_attribute: str = "vanta_roles",
        bearer_tokens: tuple[str, ...] = ("scim-secret",),
        hide_group_members: bool = False,
        require_patch_path: bool = False,
        page_cap: int | None = None,
    ) -> None:
        schemas = [Schema.model_validate(s) for s in schemas_with_role(role_attribute)]
        self._resource_types = load_default_resource_types()
        resource_types: list[ResourceType] = list(self._resource_types.values())
        config = load_default_service_provider_config()
        if page_cap is not None and config.filter is not None:
            config.filter.max_results = page_cap  # a server that returns fewer than asked
        provider = ScimProvider.from_discovery(schemas, resource_types, config=config)
        self.storage = InMemoryStorage()
        self._app = _BearerASGI(
            AsyncInMemoryStorage(self.storage),
            provider,
            ScimService(provider, secret="syncd-test-cursor-secret"),  # noqa: S106
            tokens=set(bearer_tokens),
        )
        self.hide_group_members = hide_group_members
        self.require_patch_path = require_patch_path
        self.faults: list[Fault] = []
        self.requests: list[Seen] = []
        self.hooks: list[Callable[[Seen], None]] = []
        self.intercepts: list[Callable[[Seen], bool]] = []
        self._lock = threading.Lock()

    # --- inspection -----------------------------------------------------------------------

    def resources(self, resource_type: str) -> list[dict[str, Any]]:
        """The server's own stored resources of a type ("User" or "Group"), as JSON."""
        out: list[dict[str, Any]] = []
        for resource in self.storage.resources:
            data = resource.model_dump(mode="json")
            if (data.get("meta") or {}).get("resourceType") == resource_type:
                out.append(data)
        return out

    def users(self) -> list[dict[str, Any]]:
        return self.resources("User")

    def groups(self) -> list[dict[str, Any]]:
        return self.resources("Group")

    def add_group_directly(self, display_name: str, **attributes: Any) -> dict[str, Any]:
        """Store a group as another client would make it, without HTTP: a hook may call it
        (an HTTP request from inside the server's own request handling would wait forever)."""
        group = Group.model_validate({"displayName": display_name, **attributes})
        stored = self.storage.create(self._resource_types["Group"], group)
        return dict(stored.model_dump(mode="json"))

    def count(self, method: str | None = None, prefix: str = "") -> int:
        """Requests received, optionally of one method and under a path prefix (``/Users``)."""
        with self._lock:
            return sum(
                1
                for r in self.requests
                if (method is None or r.method == method) and r.path.startswith(prefix)
            )

    def reset_counts(self) -> None:
        with self._lock:
            self.requests.clear()

    def fail_next(
        self,
        method: str,
        prefix: str,
        status: int,
        *,
        times: int = 1,
        retry_after: str | None = None,
        body: str | None = None,
        served: bool = False,
    ) -> None:
        """Answer the next ``times`` matching requests with ``status``: the server sees none of
        them, or, with ``served``, handles each and its answer is replaced."""
        with self._lock:
            self.faults.append(Fault(method, prefix, status, times, retry_after, body, served))

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.method == method and path.startswith(fault.prefix) and fault.times > 0:
                    fault.times -= 1
                    return fault
        return None

    # --- ASGI -----------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        if scope["path"] == "/_sim/stats":
            await self._send_stats(send)
            return
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        path = str(scope["path"]).removeprefix(scope.get("root_path", "")).removeprefix("/v2")
        request = Seen(scope["method"], path, scope["query_string"].decode(), 0, _parse(raw))
        fault = self._take_fault(request.method, path) or self._refusal(request)
        if fault is None or fault.served:
            held = await self._serve(scope, raw)
        if fault is not None:  # served or not, the client gets the fault
            held = _error_response(fault)
        status = next((m["status"] for m in held if m["type"] == "http.response.start"), 0)
        seen = dataclasses.replace(request, status=status)
        with self._lock:
            self.requests.append(seen)
        for hook in list(self.hooks):
            hook(seen)
        if self.hide_group_members and request.method == "GET" and path.startswith("/Groups"):
            held = _strip_members(held)
        for message in held:
            await send(message)

    def _refusal(self, request: Seen) -> Fault | None:
        """An intercept that asked to drop the request, or a quirk that refuses it."""
        if any(intercept(request) for intercept in list(self.intercepts)):
            return Fault(request.method, request.path, 503, body="intercepted")
        if self.require_patch_path and request.method == "PATCH":
            operations = (request.body or {}).get("Operations", [])
            if any(isinstance(op, dict) and not op.get("path") for op in operations):
                return Fault("PATCH", request.path, 400, body="path is required")
        return None

    async def _serve(self, scope: Scope, raw: bytes) -> list[Message]:
        """Let scim2-server handle the request; return its response messages."""
        pending = [{"type": "http.request", "body": raw, "more_body": False}]
        held: list[Message] = []

        async def replay() -> Message:
            return pending.pop() if pending else {"type": "http.disconnect"}

        async def hold(message: Message) -> None:
            held.append(message)

        await self._app(scope, replay, hold)
        return held

    async def _send_stats(self, send: Any) -> None:
        with self._lock:
            by_method: dict[str, int] = {}
            for seen in self.requests:
                by_method[seen.method] = by_method.get(seen.method, 0) + 1
        body = json.dumps({"requests": len(self.requests), "by_method": by_method}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _parse(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def _error_response(fault: Fault) -> list[Message]:
    detail = fault.body or f"injected {fault.status}"
    body = json.dumps(
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
            "status": str(fault.status),
            "detail": detail,
        }
    ).encode()
    headers = [(b"content-type", b"application/scim+json")]
    if fault.retry_after is not None:
        headers.append((b"retry-after", fault.retry_after.encode()))
    return [
        {"type": "http.response.start", "status": fault.status, "headers": headers},
        {"type": "http.response.body", "body": body},
    ]


def _strip_members(messages: list[Message]) -> list[Message]:
    out: list[Message] = []
    for message in messages:
        if message["type"] == "http.response.body" and message.get("body"):
            data = json.loads(message["body"])
            for resource in data.get("Resources", [data]):
                if isinstance(resource, dict):
                    resource.pop("members", None)
            body = json.dumps(data).encode()
            message = {**message, "body": body}
        elif message["type"] == "http.response.start":
            headers = [(k, v) for k, v in message["headers"] if k.lower() != b"content-length"]
            message = {**message, "headers": headers}
        out.append(message)
    return out
