"""The Okta HTTP layer: authenticated, paced, retried requests, and Link-header pagination.

:class:`OktaHttp` is the only place syncd talks HTTP to Okta. For every request it:

1. waits for the family's rate-limit allowance (:class:`~syncd.okta.ratelimit.RateLimiter`) and
   for a slot among ``concurrency`` requests in flight;
2. sends it with the ``Authorization`` header of its :class:`~syncd.okta.auth.OktaAuth`;
3. on 429 waits for the bucket's reset plus jitter and tries again; on 5xx, a timeout, a dropped
   connection or an unreadable body, backs off exponentially with jitter, up to
   ``max_attempts`` tries, then raises :class:`~syncd.errors.OktaTransientError`;
4. raises a typed error for 401/403 (:class:`~syncd.errors.OktaAuthError`, never retried
   blindly: an OAuth token is renewed once), 404 and other 4xx, with Okta's ``errorCode``,
   ``errorSummary`` and ``errorId``;
5. counts the request under its endpoint family (:attr:`OktaHttp.stats`).

:meth:`OktaHttp.pages` follows ``Link: <...>; rel="next"`` headers (any case, repeated or
comma-joined, absolute or relative) page by page, and only ever to the org's own origin.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import anyio
import httpx

from syncd.clock import Clock, SystemClock
from syncd.errors import (
    OktaAuthError,
    OktaError,
    OktaNotFoundError,
    OktaRequestRejected,
    OktaTransientError,
)
from syncd.log import get_logger, redact
from syncd.okta.auth import OktaAuth
from syncd.okta.ratelimit import Bucket, RateLimiter, family_of

log = get_logger(__name__)

USER_AGENT = "syncd/0.1 (+https://github.com/syncd/syncd)"
MAX_RATE_LIMITED = 10  # 429s in a row before a request gives up


@dataclass
class RequestStats:
    """Requests sent to Okta, by endpoint family (for logs, metrics and benchmarks)."""

    by_family: Counter[str] = field(default_factory=Counter)
    rate_limited: int = 0
    retries: int = 0

    @property
    def total(self) -> int:
        return sum(self.by_family.values())


def backoff(attempt: int, rng: random.Random, base: float = 0.5, cap: float = 30.0) -> float:
    """Exponential backoff with jitter: about base * 2^(attempt-1), between half and all of it."""
    ceiling: float = min(cap, base * 2.0 ** max(0, attempt - 1))
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


def next_link(response: httpx.Response) -> str | None:
    """The absolute URL of the ``rel="next"`` link of a response, if any."""
    for header in response.headers.get_list("link"):
        for target, params in _parse_link_header(header):
            rels = params.get("rel", "").lower().split()
            if "next" in rels:
                return urljoin(str(response.request.url), target)
    return None


def _parse_link_header(value: str) -> list[tuple[str, dict[str, str]]]:
    """Parse an RFC 8288 Link header: ``<url>; rel="next", <url>; rel="self"``."""
    links: list[tuple[str, dict[str, str]]] = []
    i, n = 0, len(value)
    while i < n:
        start = value.find("<", i)
        if start < 0:
            break
        end = value.find(">", start)
        if end < 0:
            break
        target = value[start + 1 : end].strip()
        j = end + 1
        params: dict[str, str] = {}
        # Parameters run until the next comma outside quotes.
        while j < n:
            while j < n and value[j] in " \t":
                j += 1
            if j >= n or value[j] == ",":
                j += 1
                break
            if value[j] != ";":
                j += 1
                continue
            j += 1
            eq = value.find("=", j)
            stop = min(x for x in (value.find(";", j), value.find(",", j), n) if x >= 0)
            if eq < 0 or eq > stop:
                j = stop
                continue
            name = value[j:eq].strip().lower()
            k = eq + 1
            while k < n and value[k] in " \t":
                k += 1
            if k < n and value[k] == '"':
                close = value.find('"', k + 1)
                close = n if close < 0 else close
                params[name] = value[k + 1 : close]
                j = close + 1
            else:
                stop = min(x for x in (value.find(";", k), value.find(",", k), n) if x >= 0)
                params[name] = value[k:stop].strip()
                j = stop
        links.append((target, params))
        i = j
    return links


def _okta_error(response: httpx.Response, cls: type[OktaError], message_prefix: str) -> OktaError:
    code = summary = error_id = None
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    if isinstance(body, dict):
        code = body.get("errorCode") or body.get("error")
        summary = body.get("errorSummary") or body.get("error_description")
        summary = redact(str(summary)) if summary else summary
        error_id = body.get("errorId")
    request = response.request
    parts = [f"{message_prefix}: HTTP {response.status_code}"]
    if code:
        parts.append(str(code))
    if summary:
        parts.append(str(summary))
    message = " ".join(parts[:1]) + (": " + " ".join(parts[1:]) if len(parts) > 1 else "")
    if error_id:
        message += f" (errorId {error_id})"
    return cls(
        message,
        status=response.status_code,
        method=request.method,
        url=_safe_url(request.url),
        error_code=str(code) if code else None,
        error_summary=str(summary) if summary else None,
        error_id=str(error_id) if error_id else None,
    )


def _safe_url(url: httpx.URL) -> str:
    return str(url.copy_with(query=None)) if url.query else str(url)


class OktaHttp:
    """Paced, retried, authenticated requests to one Okta org."""

    def __init__(
        self,
        org_url: str,
        auth: OktaAuth,
        *,
        rate_limit_share: float = 0.5,
        concurrency: int = 8,
        max_attempts: int = 5,
        timeout: float = 30.0,
        clock: Clock | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.org_url = org_url.rstrip("/")
        self._origin = _origin(self.org_url)
        self.auth = auth
        self.clock = clock or SystemClock()
        self.max_attempts = max_attempts
        self.rng = rng or random.Random()
        self.stats = RequestStats()
        self.limiter = RateLimiter(
            share=rate_limit_share, clock=self.clock, rng=self.rng, on_wait=self._log_pacing
        )
        self._slots = anyio.CapacityLimiter(concurrency)
        self._client = httpx.AsyncClient(
            base_url=self.org_url,
            transport=transport,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            headers={"Accept": "application/json", "User-Agent": USER_AGENT},
            follow_redirects=False,
        )

    def __repr__(self) -> str:
        return f"OktaHttp(org_url={self.org_url!r}, auth={self.auth!r})"

    async def __aenter__(self) -> OktaHttp:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    def _log_pacing(self, family: str, wait: float, bucket: Bucket) -> None:
        log.info(
            "okta.pacing",
            bucket=family,
            wait_s=round(wait, 3),
            limit=bucket.limit,
            used=bucket.used,
        )

    # --- requests -------------------------------------------------------------------------

    async def get_json(
        self, url: str, params: Mapping[str, str | int] | None = None
    ) -> tuple[Any, httpx.Response]:
        """GET a JSON document. ``url`` is a path on the org or an absolute URL on its origin."""
        return await self._request("GET", url, params=params)

    async def post_form(self, path: str, form: Mapping[str, str]) -> Any:
        """POST a form without the API ``Authorization`` header (the OAuth token endpoint)."""
        data, _ = await self._request("POST", path, form=form, authenticate=False)
        return data

    async def pages(
        self, path: str, params: Mapping[str, str | int] | None = None
    ) -> AsyncIterator[list[Any]]:
        """Yield each page (a JSON array) of a paginated listing, following ``rel="next"``.

        A failure on any page raises: a listing is either complete or an error, never a
        silently shorter list.
        """
        url: str | None = path
        seen: set[str] = set()
        while url is not None:
            data, response = await self.get_json(url, params)
            if not isinstance(data, list):
                raise OktaRequestRejected(
                    f"GET {_safe_url(response.request.url)}: expected a JSON array, "
                    f"got {type(data).__name__}",
                    status=response.status_code,
                    method="GET",
                    url=_safe_url(response.request.url),
                )
            yield data
            url = next_link(response)
            params = None
            if url is not None:
                if url in seen:
                    raise OktaRequestRejected(
                        "pagination loop: Okta sent the same next link twice "
                        f"({_safe_url(httpx.URL(url))})"
                    )
                seen.add(url)

    async def _request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str | int] | None = None,
        form: Mapping[str, str] | None = None,
        authenticate: bool = True,
    ) -> tuple[Any, httpx.Response]:
        target = httpx.URL(
            urljoin(self.org_url + "/", url.lstrip("/")) if "://" not in url else url
        )
        if _origin(str(target)) != self._origin:
            raise OktaRequestRejected(
                f"refusing to follow a link off the org ({target.scheme}://{target.host}); "
                "the Okta token is only ever sent to okta.org_url",
            )
        family = family_of(target.path)
        attempts = 0
        rate_limited = 0
        renewed = False
        shown = f"{method} {_safe_url(target)}"
        while True:
            headers = {}
            if authenticate:
                # Before taking a slot: fetching an OAuth token is itself a request.
                headers["Authorization"] = await self.auth.authorization(self)
            await self.limiter.acquire(family)
            response: httpx.Response | None = None
            error: Exception | None = None
            try:
                async with self._slots:
                    self.stats.by_family[family] += 1
                    response = await self._client.request(
                        method,
                        target,
                        params=dict(params) if params else None,
                        data=dict(form) if form else None,
                        headers=headers,
                    )
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                error = exc
            finally:
                self.limiter.release(family, response, self.clock.time())

            if response is not None:
                status = response.status_code
                if status == 429:
                    rate_limited += 1
                    self.stats.rate_limited += 1
                    if rate_limited > MAX_RATE_LIMITED:
                        raise _okta_error(
                            response, OktaTransientError, f"{shown}: still rate limited"
                        )
                    wait = self.limiter.wait_after_429(response)
                    log.warning(
                        "okta.rate_limited", bucket=family, wait_s=round(wait, 3), url=shown
                    )
                    await self.clock.sleep(wait)
                    continue
                if status in (401, 403):
                    if status == 401 and authenticate and not renewed and self.auth.invalidate():
                        renewed = True
                        continue
                    raise _okta_error(response, OktaAuthError, shown)
                if status == 404:
                    raise _okta_error(response, OktaNotFoundError, shown)
                if 400 <= status < 500:
                    raise _okta_error(response, OktaRequestRejected, shown)
                if status >= 500:
                    error = _okta_error(response, OktaTransientError, shown)
                else:
                    try:
                        return response.json(), response
                    except (json.JSONDecodeError, UnicodeDecodeError):
                        error = OktaTransientError(
                            f"{shown}: HTTP {status} with a body that is not valid JSON",
                            status=status,
                            method=method,
                            url=_safe_url(target),
                        )

            attempts += 1
            reason = _describe(error)
            if attempts >= self.max_attempts:
                if isinstance(error, OktaTransientError):
                    raise OktaTransientError(
                        f"{error} (gave up after {attempts} attempts)",
                        status=error.status,
                        method=method,
                        url=_safe_url(target),
                        error_code=error.error_code,
                        error_summary=error.error_summary,
                        error_id=error.error_id,
                    ) from None
                raise OktaTransientError(
                    f"{shown}: {reason} (gave up after {attempts} attempts)",
                    method=method,
                    url=_safe_url(target),
                ) from None
            wait = backoff(attempts, self.rng)
            self.stats.retries += 1
            log.warning(
                "okta.retry", url=shown, attempt=attempts, error=reason, wait_s=round(wait, 3)
            )
            await self.clock.sleep(wait)


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return (parts.scheme, (parts.hostname or "").lower(), parts.port)


def _describe(error: Exception | None) -> str:
    if error is None:
        return "unknown error"
    if isinstance(error, OktaError):
        return str(error)
    if isinstance(error, httpx.TimeoutException):
        return f"timed out ({type(error).__name__})"
    return f"connection failed ({type(error).__name__})"
