"""A SCIM 2.0 client with the manners downstream servers expect from Okta.

* Bearer auth, ``application/scim+json`` both ways, any 2xx accepted.
* 429 and 503 honour ``Retry-After``; other 5xx, timeouts and dropped connections back off
  exponentially with jitter; at most ``max_attempts`` tries. A ``POST`` is never sent again
  blindly after an answer that may hide a create (a timeout, a dropped connection, a 500): the
  resource is looked up first, and adopted if it is there (``scim.create_recovered``).
* Errors are typed (:mod:`syncd.errors`) and parsed defensively: ``status`` as a string or an
  integer, ``scimType``, ``detail``, or a plain-text body.
* Deactivation is ``PATCH replace {"active": false}`` with no ``path``; a server that answers 400
  gets the ``"path": "active"`` form once, and the client remembers which form it takes
  (:attr:`ScimClient.patch_form`, persisted by the caller).
* At most ``concurrency`` requests in flight; every request counted by method.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, Literal
from urllib.parse import quote

import anyio
import httpx
from pydantic import SecretStr

from syncd.clock import Clock, SystemClock
from syncd.errors import (
    ScimAuthError,
    ScimConflictError,
    ScimError,
    ScimNotFoundError,
    ScimRequestRejected,
    ScimTransientError,
    ScimUnreachableError,
)
from syncd.log import get_logger, redact, register_secret
from syncd.okta.http import backoff
from syncd.scim.resources import filter_eq, patch

log = get_logger(__name__)

SCIM_JSON = "application/scim+json"
PatchForm = Literal["no_path", "path"]
MAX_RETRY_AFTER = 300.0


@dataclass
class ScimStats:
    """Requests sent to the SCIM server, by HTTP method."""

    by_method: Counter[str] = field(default_factory=Counter)
    retries: int = 0

    @property
    def total(self) -> int:
        return sum(self.by_method.values())


class ScimClient:
    """Typed SCIM operations against one SCIM base URL."""

    def __init__(
        self,
        base_url: str,
        token: SecretStr,
        *,
        concurrency: int = 4,
        max_attempts: int = 5,
        timeout: float = 30.0,
        clock: Clock | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        rng: random.Random | None = None,
        patch_form: PatchForm | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        register_secret(token.get_secret_value())  # a server may echo it in an error
        self.max_attempts = max_attempts
        self.clock = clock or SystemClock()
        self.rng = rng or random.Random()
        self.stats = ScimStats()
        self.patch_form: PatchForm | None = patch_form
        self._slots = anyio.CapacityLimiter(concurrency)
        self._client = httpx.AsyncClient(
            base_url=self.base_url + "/",
            transport=transport,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            headers={"Accept": SCIM_JSON, "User-Agent": "syncd/0.1"},
            follow_redirects=False,
        )

    def __repr__(self) -> str:
        return f"ScimClient(base_url={self.base_url!r}, token=**********)"

    @property
    def requests(self) -> int:
        """Requests sent to the SCIM server so far."""
        return self.stats.total

    async def __aenter__(self) -> ScimClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    # --- users ----------------------------------------------------------------------------

    async def create_user(self, resource: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /Users``. Raises ScimConflictError on 409 (the caller adopts)."""
        user_name = str(resource["userName"])
        # Sending again is safe: a server refuses a second userName (409), and syncd adopts.
        return await self._create(
            "Users", resource, lambda: self.find_user(user_name), send_again=True
        )

    async def _create(
        self,
        endpoint: str,
        resource: Mapping[str, Any],
        find: Callable[[], Awaitable[dict[str, Any] | None]],
        *,
        send_again: bool,
    ) -> dict[str, Any]:
        """POST a resource. After an answer that may hide a create (a timeout, a dropped
        connection, a 500), wait, then look it up: found, it is adopted. Not found, it is sent
        again only when a duplicate would be refused (``send_again``: users, unique by
        userName); otherwise the error stands, and the next cycle's lookup finds it."""
        attempts = 0
        while True:
            attempts += 1
            try:
                body = await self._request("POST", endpoint, json_body=resource)
            except ScimTransientError as exc:
                if not exc.maybe_applied:
                    raise
                wait = backoff(attempts, self.rng)  # give a slow server time to finish
                await self.clock.sleep(wait)
                found = await find()
                if found is not None:
                    log.info(
                        "scim.create_recovered",
                        request=f"POST {endpoint}",
                        error=str(exc),
                        scim_id=found.get("id"),
                    )
                    return found
                if not send_again or attempts >= self.max_attempts:
                    raise
                self.stats.retries += 1
                log.warning(  # the wait came before the lookup
                    "scim.retry",
                    request=f"POST {endpoint}",
                    attempt=attempts,
                    error=str(exc),
                    wait_s=round(wait, 3),
                )
                continue
            if isinstance(body, dict) and body.get("id"):
                return body
            # A 2xx without the created resource: find what was created.
            found = await find()
            if found is None:
                raise ScimRequestRejected(
                    f"POST {endpoint}: the server answered 2xx but returned no id"
                )
            return found

    async def replace_user(self, scim_id: str, resource: Mapping[str, Any]) -> dict[str, Any]:
        """``PUT /Users/{id}`` with the full resource. Raises ScimNotFoundError on 404."""
        body = await self._request("PUT", f"Users/{quote(scim_id, safe='')}", json_body=resource)
        return body if isinstance(body, dict) else {}

    async def find_user(self, user_name: str) -> dict[str, Any] | None:
        """The user whose userName is ``user_name`` (case-insensitively), or None."""
        for resource in await self._search("Users", filter_eq("userName", user_name)):
            if str(resource.get("userName", "")).lower() == user_name.lower():
                return resource
        return None

    async def set_active(self, scim_id: str, active: bool) -> None:
        """Deactivate or reactivate with ``PATCH replace active``, learning the server's form."""
        path = f"Users/{quote(scim_id, safe='')}"
        forms: list[PatchForm] = [self.patch_form] if self.patch_form else ["no_path", "path"]
        for i, form in enumerate(forms):
            operation: dict[str, Any]
            if form == "no_path":
                operation = {"op": "replace", "value": {"active": active}}
            else:
                operation = {"op": "replace", "path": "active", "value": active}
            try:
                await self._request("PATCH", path, json_body=patch(operation))
            except ScimRequestRejected as exc:
                if exc.status == 400 and i + 1 < len(forms):
                    log.info("scim.patch_form", form=forms[i + 1], reason=str(exc))
                    continue
                raise
            self.patch_form = form
            return

    async def list_users(self, page_size: int = 100) -> AsyncIterator[dict[str, Any]]:
        """Every user on the server, paged by ``startIndex``/``count`` until ``totalResults``."""
        async for resource in self._list("Users", page_size):
            yield resource

    # --- groups ---------------------------------------------------------------------------

    async def find_group(self, display_name: str) -> dict[str, Any] | None:
        for resource in await self._search("Groups", filter_eq("displayName", display_name)):
            if resource.get("displayName") == display_name:
                return resource
        return None

    async def create_group(self, resource: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /Groups``. Raises ScimConflictError on 409 (the caller adopts)."""
        name, external_id = str(resource["displayName"]), resource.get("externalId")

        async def find_ours() -> dict[str, Any] | None:
            # Only a group carrying what was sent as its externalId is the one the POST made;
            # another of the same name (made by hand meanwhile) is not.
            found = await self.find_group(name)
            return found if found is not None and found.get("externalId") == external_id else None

        # Never sent again blindly: display names need not be unique, a second POST could
        # make a second group.
        return await self._create("Groups", resource, find_ours, send_again=False)

    async def patch_group(self, scim_id: str, operations: list[dict[str, Any]]) -> None:
        await self._request(
            "PATCH", f"Groups/{quote(scim_id, safe='')}", json_body=patch(*operations)
        )

    async def delete_group(self, scim_id: str) -> None:
        await self._request("DELETE", f"Groups/{quote(scim_id, safe='')}")

    async def list_groups(self, page_size: int = 100) -> AsyncIterator[dict[str, Any]]:
        async for resource in self._list("Groups", page_size):
            yield resource

    # --- discovery ------------------------------------------------------------------------

    async def service_provider_config(self) -> dict[str, Any]:
        body = await self._request("GET", "ServiceProviderConfig")
        return body if isinstance(body, dict) else {}

    async def probe_users(self) -> dict[str, Any]:
        """``GET /Users?startIndex=1&count=1``: the cheap call of a connection test."""
        body = await self._request("GET", "Users", params={"startIndex": 1, "count": 1})
        return body if isinstance(body, dict) else {}

    # --- plumbing -------------------------------------------------------------------------

    async def _search(self, endpoint: str, scim_filter: str) -> list[dict[str, Any]]:
        body = await self._request(
            "GET", endpoint, params={"filter": scim_filter, "startIndex": 1, "count": 100}
        )
        resources = body.get("Resources") if isinstance(body, dict) else None
        return [r for r in resources or [] if isinstance(r, dict)]

    async def _list(self, endpoint: str, page_size: int) -> AsyncIterator[dict[str, Any]]:
        start = 1
        while True:
            body = await self._request(
                "GET", endpoint, params={"startIndex": start, "count": page_size}
            )
            if not isinstance(body, dict):
                raise ScimRequestRejected(f"GET {endpoint}: expected a SCIM ListResponse")
            resources = [r for r in body.get("Resources") or [] if isinstance(r, dict)]
            for resource in resources:
                yield resource
            total = _int(body.get("totalResults"))
            start += len(resources)
            if not resources or total is None or start > total:
                return

    async def _request(
        self,
        method: str,
        path: str,
        *,
        json_body: Mapping[str, Any] | None = None,
        params: Mapping[str, str | int] | None = None,
    ) -> Any:
        headers = {"Authorization": f"Bearer {self._token.get_secret_value()}"}
        content: bytes | None = None
        if json_body is not None:
            content = json.dumps(json_body, separators=(",", ":")).encode()
            headers["Content-Type"] = f"{SCIM_JSON}; charset=utf-8"
        shown = f"{method} {path}"
        attempts = 0
        while True:
            attempts += 1
            error: ScimError
            try:
                async with self._slots:
                    self.stats.by_method[method] += 1
                    response = await self._client.request(
                        method, path, content=content, headers=headers, params=params
                    )
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                error = ScimUnreachableError(
                    f"{shown}: cannot connect to {self.base_url} ({type(exc).__name__})",
                    method=method,
                    url=path,
                )
                wait = backoff(attempts, self.rng)
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                error = ScimTransientError(
                    f"{shown}: {type(exc).__name__}", method=method, url=path
                )
                # Sent, maybe carried out (PoolTimeout: never sent).
                error.maybe_applied = not isinstance(exc, httpx.PoolTimeout)
                wait = backoff(attempts, self.rng)
            else:
                status = response.status_code
                if 200 <= status < 300:
                    return _json_or_none(response)
                error = _scim_error(response, shown)
                if not isinstance(error, ScimTransientError):
                    raise error
                # 429 and 503 refuse the request; another 5xx may hide work done.
                error.maybe_applied = status not in (429, 503)
                retry_after = _retry_after(response, self.clock.time())
                wait = retry_after if retry_after is not None else backoff(attempts, self.rng)
            if method == "POST" and error.maybe_applied:
                raise error  # the caller looks the resource up before sending it again
            if attempts >= self.max_attempts:
                error.args = (f"{error} (gave up after {attempts} attempts)",)
                raise error
            self.stats.retries += 1
            log.warning(
                "scim.retry",
                request=shown,
                attempt=attempts,
                error=str(error),
                wait_s=round(wait, 3),
            )
            await self.clock.sleep(wait)


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _json_or_none(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def _scim_error(response: httpx.Response, shown: str) -> ScimError:
    """A typed error from a SCIM error response, whatever shape its body has."""
    status = response.status_code
    scim_type: str | None = None
    detail: str | None = None
    body = _json_or_none(response)
    if isinstance(body, dict):
        body_status = _int(body.get("status"))
        if body_status and 400 <= body_status < 600 and body_status != status:
            detail_prefix = f"(body says {body_status}) "
        else:
            detail_prefix = ""
        scim_type = body.get("scimType") if isinstance(body.get("scimType"), str) else None
        raw_detail = body.get("detail") or body.get("message") or body.get("error")
        detail = detail_prefix + str(raw_detail) if raw_detail else (detail_prefix or None)
    elif response.content:
        # Redacted before it is cut: a token must not survive as a prefix.
        text = redact(response.text.strip().replace("\n", " "))
        detail = text[:200] if text else None
    detail = redact(detail) if detail else detail  # servers echo headers and tokens back
    message = f"{shown}: HTTP {status}"
    if scim_type:
        message += f" {scim_type}"
    if detail:
        message += f": {detail}"
    cls: type[ScimError]
    if status in (401, 403):
        cls = ScimAuthError
    elif status == 404:
        cls = ScimNotFoundError
    elif status == 409:
        cls = ScimConflictError
    elif status == 429 or status >= 500:
        cls = ScimTransientError
    else:
        cls = ScimRequestRejected
    return cls(
        message, status=status, method=shown.split(" ")[0], scim_type=scim_type, detail=detail
    )


def _retry_after(response: httpx.Response, now: float) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value).timestamp()
        except (TypeError, ValueError):
            return None
        date = response.headers.get("date")
        try:
            server_now = parsedate_to_datetime(date).timestamp() if date else now
        except (TypeError, ValueError):
            server_now = now
        seconds = when - server_now
    return min(MAX_RETRY_AFTER, max(0.0, seconds))
