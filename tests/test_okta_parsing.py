"""Header parsing of the Okta layer: Link headers, rate-limit headers, families."""

from __future__ import annotations

import random

import httpx
import pytest

from syncd.okta.http import backoff, next_link
from syncd.okta.ratelimit import _header_min, family_of, seconds_until_reset

REQ = httpx.Request("GET", "https://acme.okta.com/api/v1/apps/0oa1/users?limit=500")


def response(headers: list[tuple[str, str]]) -> httpx.Response:
    return httpx.Response(200, headers=headers, request=REQ)


@pytest.mark.parametrize(
    "headers",
    [
        [
            ("link", '<https://acme.okta.com/api/v1/apps/0oa1/users?limit=500>; rel="self"'),
            (
                "link",
                '<https://acme.okta.com/api/v1/apps/0oa1/users?after=abc&limit=500>; rel="next"',
            ),
        ],
        [
            (
                "Link",
                '<https://acme.okta.com/api/v1/apps/0oa1/users?limit=500>; rel="self", '
                '<https://acme.okta.com/api/v1/apps/0oa1/users?after=abc&limit=500>; rel="next"',
            )
        ],
        [("LINK", "<https://acme.okta.com/api/v1/apps/0oa1/users?after=abc&limit=500>;rel=next")],
        [("link", '</api/v1/apps/0oa1/users?after=abc&limit=500>; rel="next"')],
        [
            (
                "link",
                '<https://acme.okta.com/api/v1/apps/0oa1/users?after=abc&limit=500>; title="a, b"; rel="prefetch next"',
            )
        ],
    ],
)
def test_next_link_variants(headers: list[tuple[str, str]]) -> None:
    assert (
        next_link(response(headers))
        == "https://acme.okta.com/api/v1/apps/0oa1/users?after=abc&limit=500"
    )


def test_no_next_link_is_the_last_page() -> None:
    assert next_link(response([("link", '<https://acme.okta.com/x>; rel="self"')])) is None
    assert next_link(response([])) is None


def test_repeated_rate_limit_headers_take_the_minimum() -> None:
    headers = httpx.Headers(
        [
            ("x-rate-limit-remaining", "40"),
            ("X-Rate-Limit-Remaining", "12"),
            ("x-rate-limit-limit", "100, 600"),
        ]
    )
    assert _header_min(headers, "x-rate-limit-remaining") == 12
    assert _header_min(headers, "x-rate-limit-limit") == 100
    assert _header_min(headers, "x-rate-limit-reset") is None


def test_reset_is_read_against_the_date_header_not_the_local_clock() -> None:
    # The recorded real 429: Date 16:21:50 GMT, reset 1757607758 (16:22:38): 48 s to wait.
    headers = httpx.Headers(
        {"date": "Thu, 11 Sep 2025 16:21:50 GMT", "x-rate-limit-reset": "1757607758"}
    )
    assert seconds_until_reset(headers) == 48.0
    assert seconds_until_reset(httpx.Headers({"x-rate-limit-reset": "1757607758"})) is None


@pytest.mark.parametrize(
    ("path", "family"),
    [
        ("/api/v1/users", "users"),
        ("/api/v1/users/00u1", "users"),
        ("/api/v1/groups/00g1/users", "groups"),
        ("/api/v1/apps/0oa1/users", "apps"),
        ("/api/v1/meta/schemas/apps/0oa1/default", "apps"),
        ("/api/v1/logs", "logs"),
        ("/oauth2/v1/token", "oauth"),
        ("/api/v1/usersx", "other"),
    ],
)
def test_families(path: str, family: str) -> None:
    assert family_of(path) == family


def test_backoff_grows_and_is_capped_with_jitter() -> None:
    rng = random.Random(1)
    waits = [backoff(n, rng) for n in range(1, 12)]
    assert 0.25 <= waits[0] <= 0.5
    assert 2.0 <= waits[3] <= 4.0
    assert all(w <= 30.0 for w in waits)
    assert waits[-1] >= 15.0
