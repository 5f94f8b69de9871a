"""The SCIM client against scim2-server over loopback, with known server quirks switched on."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest
from pydantic import SecretStr

from syncd.clock import FakeClock
from syncd.errors import (
    ScimAuthError,
    ScimConflictError,
    ScimNotFoundError,
    ScimRequestRejected,
    ScimTransientError,
    ScimUnreachableError,
)
from syncd.scim import ScimClient, user_resource
from syncd.scim.client import _scim_error
from syncd.sim.scim import ScimServer
from syncd.sim.server import ServerThread

from .helpers import SCIM_TOKEN


@pytest.fixture
def server() -> Iterator[tuple[ScimServer, str]]:
    scim = ScimServer(bearer_tokens=(SCIM_TOKEN,))
    with ServerThread(scim) as thread:
        yield scim, thread.url + "/v2"


def client(url: str, **options: object) -> ScimClient:
    return ScimClient(url, SecretStr(SCIM_TOKEN), clock=FakeClock(), **options)  # type: ignore[arg-type]


def person(n: int = 1, role: str = "r1") -> dict[str, object]:
    return user_resource(
        okta_id=f"00u{n}",
        user_name=f"user{n}@example.com",
        given_name="Ada",
        family_name="Lovelace",
        display_name="Ada Lovelace",
        email=f"user{n}@example.com",
        active=True,
        role_attribute="vanta_roles",
        role_id=role,
    )


async def test_create_update_deactivate_with_scim_headers(server: tuple[ScimServer, str]) -> None:
    scim, url = server
    async with client(url) as c:
        created = await c.create_user(person())
        assert created["id"] and created["vanta_roles"] == "r1"
        await c.replace_user(created["id"], person(role="r2"))
        await c.set_active(created["id"], False)
        assert c.patch_form == "no_path"
        with pytest.raises(ScimConflictError) as conflict:
            await c.create_user(person())
        assert conflict.value.scim_type == "uniqueness"
        found = await c.find_user("USER1@EXAMPLE.COM")
        assert found is not None and found["id"] == created["id"]
        assert await c.find_user("nobody@example.com") is None
        with pytest.raises(ScimNotFoundError):
            await c.replace_user("no-such-id", person())
    (stored,) = scim.users()
    assert (stored["vanta_roles"], stored["active"]) == ("r2", False)
    assert c.stats.by_method == {"POST": 2, "PUT": 2, "PATCH": 1, "GET": 2}


async def test_patch_without_path_refused_falls_back_once_and_remembers() -> None:
    scim = ScimServer(bearer_tokens=(SCIM_TOKEN,), require_patch_path=True)
    with ServerThread(scim) as thread:
        async with client(thread.url + "/v2") as c:
            a = await c.create_user(person(1))
            b = await c.create_user(person(2))
            await c.set_active(a["id"], False)
            assert c.patch_form == "path"
            await c.set_active(b["id"], False)
    patches = [r for r in scim.requests if r.method == "PATCH"]
    assert [r.status for r in patches] == [400, 204, 204]
    assert patches[1].body["Operations"] == [{"op": "replace", "path": "active", "value": False}]
    assert all(not u["active"] for u in scim.users())


async def test_429_and_503_honour_retry_after(server: tuple[ScimServer, str]) -> None:
    scim, url = server
    scim.fail_next("POST", "/Users", 429, retry_after="7")
    scim.fail_next("POST", "/Users", 503, retry_after="3")
    async with client(url) as c:
        await c.create_user(person())
        assert c.clock.sleeps == [7.0, 3.0]  # type: ignore[attr-defined]
        assert c.stats.retries == 2


async def test_5xx_retries_run_out_with_a_transient_error(server: tuple[ScimServer, str]) -> None:
    scim, url = server
    scim.fail_next("PUT", "/Users", 500, times=10)
    async with client(url, max_attempts=3) as c:
        with pytest.raises(ScimTransientError, match="gave up after 3 attempts"):
            await c.replace_user("x", person())
    assert scim.count("PUT") == 3


async def test_bad_token_is_an_auth_error_without_the_token(server: tuple[ScimServer, str]) -> None:
    _, url = server
    async with ScimClient(url, SecretStr("wrong-scim-token-000"), clock=FakeClock()) as c:
        with pytest.raises(ScimAuthError) as info:
            await c.probe_users()
    assert info.value.status == 401
    assert "wrong-scim-token-000" not in str(info.value) + repr(c)


async def test_unreachable_server() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with client(f"http://127.0.0.1:{port}/v2", max_attempts=2) as c:
        with pytest.raises(ScimUnreachableError, match="cannot connect"):
            await c.probe_users()


async def test_list_users_pages_past_the_server_cap(server: tuple[ScimServer, str]) -> None:
    _, url = server
    async with client(url, concurrency=8) as c:
        for n in range(250):
            await c.create_user(person(n))
        names = [u["userName"] async for u in c.list_users(page_size=100)]
    assert len(names) == 250 and len(set(names)) == 250


async def test_list_users_and_groups_follow_a_server_that_caps_its_pages() -> None:
    from syncd.scim import group_resource

    scim = ScimServer(bearer_tokens=(SCIM_TOKEN,), page_cap=40)
    with ServerThread(scim) as thread:
        async with client(thread.url + "/v2", concurrency=8) as c:
            for n in range(130):
                await c.create_user(person(n))
            for n in range(45):
                await c.create_group(group_resource(okta_id=f"00g{n}", display_name=f"G{n}"))
            scim.reset_counts()
            names = [u["userName"] async for u in c.list_users(page_size=1000)]
            groups = [g["displayName"] async for g in c.list_groups(page_size=1000)]
    assert len(names) == len(set(names)) == 130
    assert len(groups) == len(set(groups)) == 45
    assert scim.count("GET", "/Users") == 4 and scim.count("GET", "/Groups") == 2  # 40 a page


def _response(
    status: int, body: bytes, content_type: str = "application/scim+json"
) -> httpx.Response:
    return httpx.Response(
        status,
        content=body,
        headers={"content-type": content_type},
        request=httpx.Request("POST", "http://x/Users"),
    )


@pytest.mark.parametrize(
    ("status", "body", "kind", "text"),
    [
        (
            409,
            b'{"status": "409", "scimType": "uniqueness", "detail": "taken"}',
            ScimConflictError,
            "HTTP 409 uniqueness: taken",
        ),
        (409, b'{"status": 409, "detail": "taken"}', ScimConflictError, "HTTP 409: taken"),
        (400, b"userName is required", ScimRequestRejected, "HTTP 400: userName is required"),
        (
            502,
            b"<html>Bad gateway</html>",
            ScimTransientError,
            "HTTP 502: <html>Bad gateway</html>",
        ),
        (413, b"", ScimRequestRejected, "HTTP 413"),
        (403, b'{"detail": "forbidden"}', ScimAuthError, "HTTP 403: forbidden"),
    ],
)
def test_error_bodies_are_parsed_defensively(
    status: int, body: bytes, kind: type[Exception], text: str
) -> None:
    error = _scim_error(_response(status, body), "POST Users")
    assert isinstance(error, kind)
    assert text in str(error)


async def test_a_post_answered_too_late_is_looked_up_not_sent_again(
    server: tuple[ScimServer, str],
) -> None:
    import time

    from syncd.scim import group_resource

    scim, url = server
    slow = [True]

    def answer_late(seen: object) -> None:
        if getattr(seen, "method", "") == "POST" and slow[0]:
            slow[0] = False
            time.sleep(0.6)  # the group is created; the answer comes after the client gave up

    scim.hooks.append(answer_late)
    async with client(url, timeout=0.3) as c:
        created = await c.create_group(group_resource(okta_id="00g1", display_name="Team-Slow"))
    groups = scim.groups()
    assert [g["displayName"] for g in groups] == ["Team-Slow"]  # one, not two
    assert created["id"] == groups[0]["id"]
    assert scim.count("POST") == 1 and scim.count("GET", "/Groups") >= 1


async def test_a_post_refused_with_503_is_sent_again(server: tuple[ScimServer, str]) -> None:
    scim, url = server
    scim.fail_next("POST", "/Users", 503)
    async with client(url) as c:
        await c.create_user(person())
    assert scim.count("POST") == 2 and scim.count("GET") == 0


def test_a_token_across_the_cut_of_an_error_body_is_redacted_first() -> None:
    from syncd.log import register_secret

    token = "scim-token-that-crosses-the-200-char-cut-0123456789"
    register_secret(token)
    body = ("x" * 180 + f" Bearer {token} trailing").encode()
    error = _scim_error(_response(400, body, "text/plain"), "POST Users")
    assert "Bearer scim" not in str(error)  # not even a prefix of the token
    assert "Bearer [RED" in str(error)
