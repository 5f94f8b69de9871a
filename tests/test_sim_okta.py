"""The Okta simulator: shapes, pagination, auth, rate limits, faults, mutations, fidelity."""

from __future__ import annotations

import asyncio
import email.utils
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import jwt
import okta.models
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from syncd.clock import FakeClock, SystemClock
from syncd.sim.okta import (
    FAULT_KINDS,
    MUTATIONS,
    Faults,
    OAuthClient,
    OktaOrg,
    OktaSimulator,
    RateLimits,
    UnknownIdError,
)
from syncd.sim.orgdata import DEFAULT_CATALOG, demo_org, generate_org, load_org, save_org
from syncd.sim.server import ServerThread

DATA = Path(__file__).parent / "data"
BASE = "https://acme.okta.com"
TOKEN = "test-token"
ADMIN, EDITOR, EMPLOYEE = DEFAULT_CATALOG.values()
APP = "0oatest0000000000001"


def gid(c: str) -> str:
    return "00g" + c * 17


def uid(n: int) -> str:
    return f"00u{n:017d}"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def client_for(
    sim: OktaSimulator, token: str | None = TOKEN, base: str = BASE
) -> httpx.AsyncClient:
    headers = {"Authorization": f"SSWS {token}"} if token else {}
    transport = httpx.ASGITransport(app=sim.asgi)
    return httpx.AsyncClient(transport=transport, base_url=base, headers=headers)


def simulator(org: OktaOrg, clock: FakeClock, **kwargs: Any) -> OktaSimulator:
    kwargs.setdefault("api_tokens", [TOKEN])
    kwargs.setdefault("limits", RateLimits(users=10**6, groups=10**6, apps=10**6, logs=10**6))
    return OktaSimulator(org, clock=clock, **kwargs)


@pytest.fixture
def demo(clock: FakeClock) -> OktaSimulator:
    return simulator(demo_org(), clock)


@pytest.fixture
async def client(demo: OktaSimulator) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(demo) as c:
        yield c


async def collect(
    client: httpx.AsyncClient, url: str, params: dict[str, Any] | None = None
) -> tuple[list[Any], list[httpx.Response]]:
    """Follow ``next`` links; return every item and every response."""
    items: list[Any] = []
    responses: list[httpx.Response] = []
    next_url: str | None = url
    while next_url:
        r = await client.get(next_url, params=params if not responses else None)
        assert r.status_code == 200, r.text
        responses.append(r)
        items += r.json()
        next_url = r.links.get("next", {}).get("url")
    return items, responses


def role_org(clock: FakeClock) -> OktaOrg:
    """Three role groups; B and C share priority 2 (B has the lower id, so it wins the tie)."""
    org = OktaOrg(app_id=APP, roles=DEFAULT_CATALOG, clock=clock, seed=1)
    org.add_group("Everyone", type="BUILT_IN", group_id=gid("E"))
    for g in ("A", "B", "C", "T"):
        org.add_group(f"Group-{g}", group_id=gid(g))
    org.assign_group(gid("A"), 1, {"vanta_roles": ADMIN})
    org.assign_group(gid("B"), 2, {"vanta_roles": EDITOR})
    org.assign_group(gid("C"), 2, {"vanta_roles": EMPLOYEE})
    return org


# --------------------------------------------------------------------------- pagination


async def test_default_max_and_clamped_page_sizes(clock: FakeClock) -> None:
    org = generate_org(people=1100, groups=3, seed=3)
    extra = [org.add_group(f"Extra-{i}") for i in range(25)]
    for i, g in enumerate(extra):
        org.assign_group(g, 10 + i)
    big = org.add_group("Big", members=list(org.users)[:1050])
    sim = simulator(org, clock)
    app = org.app.id
    async with client_for(sim) as c:
        cases = [  # url, limit asked, items on the page, limit in use
            ("/api/v1/users", None, 200, 200),
            ("/api/v1/users", 5000, 200, 200),
            ("/api/v1/users", 7, 7, 7),
            ("/api/v1/groups", None, len(org.groups), 10_000),
            ("/api/v1/groups", 50_000, len(org.groups), 10_000),
            (f"/api/v1/groups/{big}/users", None, 1000, 1000),
            (f"/api/v1/groups/{big}/users", 5000, 1000, 1000),
            (f"/api/v1/apps/{app}/users", None, 50, 50),
            (f"/api/v1/apps/{app}/users", 5000, 500, 500),
            (f"/api/v1/apps/{app}/groups", None, 20, 20),
            (f"/api/v1/apps/{app}/groups", 5000, 3 + 25, 200),
        ]
        for url, limit, count, in_use in cases:
            r = await c.get(url, params={"limit": limit} if limit else None)
            assert r.status_code == 200
            assert len(r.json()) == count, url
            assert r.links["self"]["url"].endswith(f"limit={in_use}"), (url, r.links)
            assert ("next" in r.links) == (count == in_use), url


async def test_1234_app_users_in_three_pages_over_loopback() -> None:
    org = OktaOrg(app_id=APP, seed=9)
    group = org.add_group("Vanta-Employees")
    org.assign_group(group, 1, {"vanta_roles": EMPLOYEE})
    members = [org.add_user(f"First{i}", f"Last{i}", groups=[group]) for i in range(1234)]
    for i in range(30):
        org.add_user(f"Outside{i}", "Person")  # not assigned
    sim = OktaSimulator(org, api_tokens=[TOKEN])
    with ServerThread(sim.asgi) as server:
        async with httpx.AsyncClient(headers={"Authorization": f"SSWS {TOKEN}"}) as c:
            url = f"{server.url}/api/v1/apps/{APP}/users"
            items, responses = await collect(c, url, {"limit": 500})
    assert [len(r.json()) for r in responses] == [500, 500, 234]
    ids = [item["id"] for item in items]
    assert sorted(ids) == ids and set(ids) == set(members) and len(ids) == 1234
    for r in responses[:-1]:
        next_url = r.links["next"]["url"]
        assert next_url.startswith(f"{server.url}/api/v1/apps/{APP}/users?after=")
        assert next_url.endswith("&limit=500")
    assert "next" not in responses[-1].links
    assert [r.headers.get_list("link")[0].endswith('rel="self"') for r in responses] == [True] * 3


async def test_cursor_resumes_strictly_after_last_id_despite_mutations(clock: FakeClock) -> None:
    org = OktaOrg(seed=4, clock=clock)
    for i in range(1, 31):
        org.add_user(f"U{i}", "X", user_id=uid(i * 10))
    async with client_for(simulator(org, clock)) as c:
        first = await c.get("/api/v1/users", params={"limit": 10})
        page1 = [u["id"] for u in first.json()]
        assert page1 == [uid(i * 10) for i in range(1, 11)]
        org.delete_user(uid(110))  # first id of the next page
        org.add_user("Early", "Bird", user_id=uid(5))  # sorts before the cursor: not seen
        org.add_user("Late", "Comer", user_id=uid(115))  # after the cursor: seen
        second = await c.get(first.links["next"]["url"])
        page2 = [u["id"] for u in second.json()]
    assert page2[0] == uid(115) and uid(110) not in page2 and uid(5) not in page2
    assert not set(page1) & set(page2)


@pytest.mark.parametrize("style", ["separate", "combined"])
async def test_link_styles(clock: FakeClock, style: str) -> None:
    org = generate_org(people=30, groups=2, seed=1)
    sim = simulator(org, clock, link_style=style)
    async with client_for(sim) as c:
        r = await c.get("/api/v1/users", params={"limit": 5})
    values = r.headers.get_list("link")
    if style == "separate":
        assert len(values) == 2
        assert values[0] == f'<{BASE}/api/v1/users?limit=5>; rel="self"'
        assert values[1].startswith(f"<{BASE}/api/v1/users?after=") and 'rel="next"' in values[1]
    else:
        assert len(values) == 1 and values[0].count("rel=") == 2
    assert set(r.links) == {"self", "next"}


async def test_next_links_keep_query_and_honour_base_url(clock: FakeClock) -> None:
    org = generate_org(people=30, groups=2, seed=1)
    sim = simulator(org, clock, base_url="https://proxy.example.com/")
    async with client_for(sim) as c:
        r = await c.get(f"/api/v1/apps/{org.app.id}/users", params={"expand": "user", "limit": 2})
    nxt = r.links["next"]["url"]
    assert nxt.startswith(f"https://proxy.example.com/api/v1/apps/{org.app.id}/users?expand=user")


# ------------------------------------------------------------------ derived app users


async def test_group_and_user_scope_priority_and_ties(clock: FakeClock) -> None:
    org = role_org(clock)
    a_and_c = org.add_user("Ada", "Admin", groups=[gid("A"), gid("C")], user_id=uid(1))
    b_and_c = org.add_user("Tie", "Break", groups=[gid("B"), gid("C")], user_id=uid(2))
    b_only = org.add_user("Bea", "Editor", groups=[gid("B")], user_id=uid(3))
    override = org.add_user("Ovi", "Ride", groups=[gid("A")], user_id=uid(4))
    org.assign_user(override, {"vanta_roles": EMPLOYEE})
    org.add_user("Team", "Only", groups=[gid("T")], user_id=uid(5))
    async with client_for(simulator(org, clock)) as c:
        items = (await c.get(f"/api/v1/apps/{APP}/users")).json()
        by_id = {i["id"]: i for i in items}
        assert list(by_id) == [a_and_c, b_and_c, b_only, override]  # uid(5): no access
        assert by_id[a_and_c]["profile"] == {"vanta_roles": ADMIN}
        assert by_id[a_and_c]["_links"]["group"]["href"].endswith(gid("A"))
        assert by_id[b_and_c]["profile"] == {"vanta_roles": EDITOR}  # tie: B < C by id
        assert by_id[b_and_c]["_links"]["group"]["name"] == "Group-B"
        assert by_id[b_only]["profile"] == {"vanta_roles": EDITOR}
        assert by_id[override]["scope"] == "USER"
        assert by_id[override]["profile"] == {"vanta_roles": EMPLOYEE}
        assert "group" not in by_id[override]["_links"]
        assert {by_id[u]["scope"] for u in (a_and_c, b_and_c, b_only)} == {"GROUP"}
        assert by_id[a_and_c]["credentials"] == {"userName": "ada.admin@example.com"}

        org.set_group_priority(gid("B"), 0)  # B now beats A and C
        org.set_group_priority(gid("A"), 5)
        items = (await c.get(f"/api/v1/apps/{APP}/users")).json()
        by_id = {i["id"]: i for i in items}
        assert by_id[b_and_c]["profile"] == {"vanta_roles": EDITOR}
        assert by_id[a_and_c]["profile"] == {"vanta_roles": EMPLOYEE}
        groups = (await c.get(f"/api/v1/apps/{APP}/groups")).json()
        assert [(g["id"], g["priority"]) for g in groups] == [
            (gid("B"), 0),
            (gid("C"), 2),
            (gid("A"), 5),
        ]

        org.set_role_attribute(scope="SELF")  # personal: never set through groups
        items = (await c.get(f"/api/v1/apps/{APP}/users")).json()
        by_id = {i["id"]: i for i in items}
        assert by_id[b_only]["profile"] == {"vanta_roles": None}
        assert by_id[override]["profile"] == {"vanta_roles": EMPLOYEE}

        org.unassign_group(gid("B"))
        ids = [i["id"] for i in (await c.get(f"/api/v1/apps/{APP}/users")).json()]
        assert ids == [a_and_c, b_and_c, override]


async def test_app_user_status_follows_user_and_deleted_users_vanish(clock: FakeClock) -> None:
    org = role_org(clock)
    users = [org.add_user(f"P{i}", "Q", groups=[gid("C")], user_id=uid(i)) for i in range(1, 6)]
    org.suspend(users[0])
    org.deactivate(users[1])
    org.delete_user(users[2])
    org.set_status(users[3], "LOCKED_OUT")
    staged = org.add_user("New", "Hire", status="STAGED", groups=[gid("C")], user_id=uid(6))
    async with client_for(simulator(org, clock)) as c:
        items = (await c.get(f"/api/v1/apps/{APP}/users", params={"expand": "user"})).json()
    status = {i["id"]: (i["status"], i["_embedded"]["user"]["status"]) for i in items}
    assert status == {
        users[0]: ("SUSPENDED", "SUSPENDED"),
        users[1]: ("INACTIVE", "DEPROVISIONED"),
        users[3]: ("ACTIVE", "LOCKED_OUT"),
        users[4]: ("ACTIVE", "ACTIVE"),
        staged: ("PENDING", "STAGED"),
    }


async def test_expand_user_and_expand_group(client: httpx.AsyncClient, demo: OktaSimulator) -> None:
    app = demo.org.app.id
    plain = (await client.get(f"/api/v1/apps/{app}/users", params={"limit": 5})).json()
    expanded = (
        await client.get(f"/api/v1/apps/{app}/users", params={"limit": 5, "expand": "user"})
    ).json()
    assert all("_embedded" not in i for i in plain)
    listing = (await client.get("/api/v1/users")).json()
    users = {u["id"]: u for u in listing}
    for item in expanded:
        assert item["_embedded"]["user"] == users[item["id"]]
        assert {k: v for k, v in item.items() if k != "_embedded"} in plain
    groups = (await client.get(f"/api/v1/apps/{app}/groups", params={"expand": "group"})).json()
    for g in groups:
        assert g["_embedded"]["group"] == (await client.get(f"/api/v1/groups/{g['id']}")).json()
        assert g["_links"]["self"]["href"] == f"{BASE}/api/v1/apps/{app}/groups/{g['id']}"
    single = await client.get(f"/api/v1/apps/{app}/users/{plain[0]['id']}")
    assert single.json() == plain[0]


# ------------------------------------------------------------------- users and groups


async def test_user_filters_search_and_lookup_by_login(clock: FakeClock) -> None:
    org = OktaOrg(seed=2, clock=clock)
    a = org.add_user("Alice", "Able", user_id=uid(1))
    clock.advance(3600)
    b = org.add_user("Bob", "Baker", user_id=uid(2))
    c_ = org.add_user("Carol", "Cole", user_id=uid(3))
    org.suspend(b)
    org.deactivate(c_)
    async with client_for(simulator(org, clock)) as c:

        async def ids(**params: str) -> list[str]:
            r = await c.get("/api/v1/users", params=params)
            assert r.status_code == 200, r.text
            return [u["id"] for u in r.json()]

        assert await ids() == [a, b]  # DEPROVISIONED hidden without a filter
        assert await ids(filter='status eq "DEPROVISIONED"') == [c_]
        assert await ids(filter=f'id eq "{b}"') == [b]
        assert await ids(filter='profile.login eq "ALICE.ABLE@example.com"') == [a]
        assert await ids(filter='lastUpdated gt "2026-05-28T20:30:00.000Z"') == [b, c_]
        assert await ids(filter='status eq "ACTIVE" or status eq "SUSPENDED"') == [a, b]
        assert await ids(filter='(status eq "SUSPENDED") and id eq "nope"') == []
        assert await ids(search='profile.lastName sw "B"') == [b]
        assert await ids(q="car") == []  # q omits DEPROVISIONED users
        assert await ids(q="ali") == [a]
        bad = await c.get("/api/v1/users", params={"filter": 'status eq "ACTIVE" and'})
        assert bad.status_code == 400 and bad.json()["errorCode"] == "E0000053"
        bad = await c.get("/api/v1/users", params={"filter": 'profile.nickName eq "x"'})
        assert bad.status_code == 400
        bad = await c.get("/api/v1/users", params={"search": "profile.x zz 1"})
        assert bad.json()["errorCode"] == "E0000031"
        by_login = await c.get("/api/v1/users/bob.baker@example.com")
        assert by_login.json()["id"] == b and by_login.json()["_links"]["unsuspend"]


async def test_group_listing_search_and_members(clock: FakeClock) -> None:
    org = role_org(clock)
    members = [org.add_user(f"M{i}", "X", groups=[gid("T")], user_id=uid(i)) for i in range(3)]
    org.deactivate(members[1])
    async with client_for(simulator(org, clock)) as c:

        async def names(**params: str) -> list[str]:
            r = await c.get("/api/v1/groups", params=params)
            assert r.status_code == 200, r.text
            return [g["profile"]["name"] for g in r.json()]

        assert await names() == ["Group-A", "Group-B", "Group-C", "Everyone", "Group-T"]
        assert await names(q="group-") == ["Group-A", "Group-B", "Group-C", "Group-T"]
        assert await names(search='profile.name eq "Group-T"') == ["Group-T"]
        assert await names(filter='type eq "BUILT_IN"') == ["Everyone"]
        assert await names(filter=f'id eq "{gid("B")}"') == ["Group-B"]
        everyone = (await c.get(f"/api/v1/groups/{gid('E')}", params={"expand": "stats"})).json()
        assert everyone["_embedded"]["stats"]["usersCount"] == 3
        team = (await c.get(f"/api/v1/groups/{gid('T')}/users")).json()
        assert [u["id"] for u in team] == members  # deprovisioned members are listed
        assert team[1]["status"] == "DEPROVISIONED"


async def test_app_and_schema_and_logs(client: httpx.AsyncClient, demo: OktaSimulator) -> None:
    app = demo.org.app.id
    r = await client.get(f"/api/v1/apps/{app}")
    assert r.json()["id"] == app and r.json()["label"] == "Vanta"
    schema = (await client.get(f"/api/v1/meta/schemas/apps/{app}/default")).json()
    attr = schema["definitions"]["custom"]["properties"]["vanta_roles"]
    assert attr["enum"] == [ADMIN, EDITOR, EMPLOYEE]
    assert attr["oneOf"][0] == {"const": ADMIN, "title": "Admin"}
    assert attr["scope"] == "NONE" and attr["type"] == "string"
    assert attr["externalNamespace"] == "urn:ietf:params:scim:schemas:core:2.0:User"
    assert schema["definitions"]["base"]["properties"]["userName"]["required"] is True
    logs = await client.get("/api/v1/logs")
    assert logs.json() == [] and "next" in logs.links


# ----------------------------------------------------------------------- errors, auth


async def test_401_invalid_token(demo: OktaSimulator) -> None:
    for token in (None, "wrong"):
        async with client_for(demo, token=token) as c:
            r = await c.get("/api/v1/users")
        assert r.status_code == 401
        body = r.json()
        assert body["errorCode"] == "E0000011" and body["errorSummary"] == "Invalid token provided"
        assert body["errorId"].startswith("oae") and body["errorCauses"] == []
        assert "x-rate-limit-remaining" not in r.headers
    async with client_for(demo, token=None) as c:
        r = await c.get("/api/v1/users", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401 and "invalid_token" in r.headers["www-authenticate"]


async def test_404_400_405(client: httpx.AsyncClient, demo: OktaSimulator) -> None:
    app = demo.org.app.id
    cases = [
        ("/api/v1/apps/0oanope/users", "Not found: Resource not found: 0oanope (AppInstance)"),
        ("/api/v1/apps/0oanope", "Not found: Resource not found: 0oanope (AppInstance)"),
        ("/api/v1/groups/00gnope", "Not found: Resource not found: 00gnope (UserGroup)"),
        ("/api/v1/groups/00gnope/users", "Not found: Resource not found: 00gnope (UserGroup)"),
        ("/api/v1/users/00unope", "Not found: Resource not found: 00unope (User)"),
    ]
    for url, summary in cases:
        r = await client.get(url)
        assert r.status_code == 404 and r.json()["errorCode"] == "E0000007"
        assert r.json()["errorSummary"] == summary
        assert "x-rate-limit-limit" in r.headers
    for params in ({"limit": "ten"}, {"limit": "-1"}, {"after": "!!!"}):
        r = await client.get(f"/api/v1/apps/{app}/users", params=params)
        assert r.status_code == 400 and r.json()["errorCode"] == "E0000001", params
    r = await client.post("/api/v1/users", json={})
    assert r.status_code == 405 and r.json()["errorCode"] == "E0000022"


# ------------------------------------------------------------------------ rate limits


async def test_rate_limit_headers_429_and_window_reset(clock: FakeClock) -> None:
    sim = simulator(demo_org(), clock, limits=RateLimits(apps=3, users=5))
    app = sim.org.app.id
    start = int(clock.time())
    async with client_for(sim) as c:
        seen = []
        for _ in range(3):
            r = await c.get(f"/api/v1/apps/{app}/users")
            assert r.status_code == 200
            seen.append(r.headers["x-rate-limit-remaining"])
            assert r.headers["x-rate-limit-limit"] == "3"
            assert r.headers["x-rate-limit-reset"] == str(start + 60)
            assert r.headers["date"] == email.utils.formatdate(clock.time(), usegmt=True)
            clock.advance(1)
        assert seen == ["2", "1", "0"]
        r = await c.get(f"/api/v1/meta/schemas/apps/{app}/default")  # same "apps" bucket
        assert r.status_code == 429
        assert r.json()["errorCode"] == "E0000047"
        assert r.json()["errorSummary"] == "API call exceeded rate limit due to too many requests."
        assert r.headers["x-rate-limit-remaining"] == "0"
        assert r.headers["x-rate-limit-reset"] == str(start + 60)
        users = await c.get("/api/v1/users")  # another family, another bucket
        assert users.status_code == 200 and users.headers["x-rate-limit-remaining"] == "4"
        clock.advance(56)  # 59 s after the window opened
        assert (await c.get(f"/api/v1/apps/{app}/groups")).status_code == 429
        clock.advance(1)  # 60 s: a new window opens with this request
        r = await c.get(f"/api/v1/apps/{app}/groups")
        assert r.status_code == 200 and r.headers["x-rate-limit-remaining"] == "2"
        assert r.headers["x-rate-limit-reset"] == str(start + 120)
        assert (await c.get("/api/v1/apps/0oanope")).headers["x-rate-limit-remaining"] == "1"
    assert sim.stats.rate_limited == 2


async def test_repeated_rate_limit_headers_take_the_minimum(clock: FakeClock) -> None:
    sim = simulator(demo_org(), clock, limits=RateLimits(users=10, repeat_headers=True))
    async with client_for(sim) as c:
        r = await c.get("/api/v1/users")
    remaining = [int(v) for v in r.headers.get_list("x-rate-limit-remaining")]
    limits = [int(v) for v in r.headers.get_list("x-rate-limit-limit")]
    assert len(remaining) == 2 and min(remaining) == 9 and remaining[0] > remaining[1]
    assert min(limits) == 10


async def test_concurrency_limit(clock: FakeClock) -> None:
    sim = simulator(demo_org(), clock, concurrency_limit=2, faults=Faults(latency=0.2))
    async with client_for(sim) as c:
        results = await asyncio.gather(*(c.get("/api/v1/users") for _ in range(3)))
    statuses = sorted(r.status_code for r in results)
    assert statuses == [200, 200, 429]
    limited = next(r for r in results if r.status_code == 429)
    assert limited.headers["x-rate-limit-limit"] == "0"
    assert limited.headers["x-rate-limit-remaining"] == "0"
    assert limited.headers["x-rate-limit-reset"] == str(int(clock.time()) + 1)
    assert sim.in_flight == 0


# ------------------------------------------------------------------------------- OAuth


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def assertion(
    key: Any, clock: FakeClock, client_id: str = "0oaclient", alg: str = "RS256", **claims: Any
) -> str:
    now = int(clock.time())
    payload = {
        "iss": client_id,
        "sub": client_id,
        "aud": f"{BASE}/oauth2/v1/token",
        "iat": now,
        "exp": now + 300,
        "jti": uuid.uuid4().hex,
        **claims,
    }
    return jwt.encode(payload, key, algorithm=alg)


def token_form(jwt_: str, scope: str = "okta.users.read okta.apps.read") -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "scope": scope,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": jwt_,
    }


async def test_oauth_client_credentials_flow(clock: FakeClock, rsa_key: rsa.RSAPrivateKey) -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    clients = {
        "0oaclient": OAuthClient(
            public_key_pem=public_pem(rsa_key),
            scopes=["okta.users.read", "okta.apps.read", "okta.groups.read"],
        ),
        "0oaecclient": OAuthClient(public_key_pem=public_pem(ec_key)),
    }
    sim = simulator(demo_org(), clock, oauth_clients=clients)
    async with client_for(sim, token=None) as c:
        signed = assertion(rsa_key, clock)
        r = await c.post("/oauth2/v1/token", data=token_form(signed))
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
        assert body["scope"] == "okta.users.read okta.apps.read"
        assert r.headers["x-rate-limit-limit"] == "600"
        bearer = {"Authorization": f"Bearer {body['access_token']}"}
        assert (await c.get("/api/v1/users", headers=bearer)).status_code == 200
        schema_url = f"/api/v1/meta/schemas/apps/{sim.org.app.id}/default"
        assert (await c.get(schema_url, headers=bearer)).status_code == 200
        denied = await c.get("/api/v1/groups", headers=bearer)  # okta.groups.read not granted
        assert denied.status_code == 403 and denied.json()["errorCode"] == "E0000006"
        assert "insufficient_scope" in denied.headers["www-authenticate"]

        async def token_error(form: dict[str, str]) -> tuple[int, str, str]:
            r = await c.post("/oauth2/v1/token", data=form)
            return r.status_code, r.json()["error"], r.json()["error_description"]

        replay = await token_error(token_form(signed))
        assert replay[:2] == (401, "invalid_client") and "already been used" in replay[2]
        other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        bad_sig = await token_error(token_form(assertion(other_key, clock)))
        assert bad_sig[:2] == (401, "invalid_client") and "signature" in bad_sig[2]
        far = assertion(rsa_key, clock, exp=int(clock.time()) + 3700)
        assert (await token_error(token_form(far)))[:2] == (401, "invalid_client")
        expired = assertion(rsa_key, clock, exp=int(clock.time()) - 1)
        assert "expired" in (await token_error(token_form(expired)))[2]
        wrong_aud = assertion(rsa_key, clock, aud="https://evil.example.com/oauth2/v1/token")
        assert "audience" in (await token_error(token_form(wrong_aud)))[2]
        wrong_sub = assertion(rsa_key, clock, sub="someone-else")
        assert (await token_error(token_form(wrong_sub)))[:2] == (401, "invalid_client")
        unknown = assertion(rsa_key, clock, client_id="0oaunknown")
        assert (await token_error(token_form(unknown)))[:2] == (401, "invalid_client")
        no_scope = await token_error(token_form(assertion(rsa_key, clock), scope=""))
        assert no_scope[:2] == (400, "invalid_scope")
        extra = token_form(assertion(rsa_key, clock), scope="okta.logs.read")
        assert (await token_error(extra))[:2] == (400, "invalid_scope")
        grant = {**token_form(assertion(rsa_key, clock)), "grant_type": "password"}
        assert (await token_error(grant))[:2] == (400, "unsupported_grant_type")
        missing = {k: v for k, v in token_form("x").items() if k != "client_assertion"}
        assert (await token_error(missing))[:2] == (400, "invalid_request")

        ec_form = token_form(assertion(ec_key, clock, "0oaecclient", "ES256"), "okta.logs.read")
        r = await c.post("/oauth2/v1/token", data=ec_form)
        assert r.status_code == 200
        logs = {"Authorization": f"Bearer {r.json()['access_token']}"}
        assert (await c.get("/api/v1/logs", headers=logs)).status_code == 200

        clock.advance(3600)  # access tokens live an hour
        expired_token = await c.get("/api/v1/users", headers=bearer)
        assert expired_token.status_code == 401
        assert expired_token.json()["errorCode"] == "E0000011"
    assert sim.stats.requests["oauth"] == 13


# ------------------------------------------------------------------------------ faults


async def _fault(sim: OktaSimulator, kind: str) -> httpx.Response:
    sim.fail_next("/api/v1/apps/", kind)
    async with client_for(sim) as c:
        return await c.get(f"/api/v1/apps/{sim.org.app.id}/users")


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [
        ("500", 500, "E0000009"),
        ("503", 503, "E0000010"),
        ("429", 429, "E0000047"),
        ("401", 401, "E0000011"),
    ],
)
async def test_scripted_error_faults(clock: FakeClock, kind: str, status: int, code: str) -> None:
    sim = simulator(demo_org(), clock)
    r = await _fault(sim, kind)
    assert r.status_code == status and r.json()["errorCode"] == code
    assert r.json()["errorId"].startswith("oae")
    if kind == "429":
        assert r.headers["x-rate-limit-remaining"] == "0"
    assert sim.stats.log[-1].fault == kind


async def test_scripted_malformed_truncated_and_502(clock: FakeClock) -> None:
    sim = simulator(demo_org(), clock)
    malformed = await _fault(sim, "malformed")
    assert malformed.status_code == 200 and malformed.text.startswith("<html>")
    with pytest.raises(json.JSONDecodeError):
        malformed.json()
    bad_gateway = await _fault(sim, "502")
    assert bad_gateway.status_code == 502
    assert bad_gateway.headers["content-type"] == "text/html"
    truncated = await _fault(sim, "truncated")
    assert truncated.status_code == 200
    assert int(truncated.headers["content-length"]) == len(truncated.content)
    with pytest.raises(json.JSONDecodeError):
        truncated.json()
    assert "link" in truncated.headers  # the rest of the response is intact


async def test_drop_fault_through_asgi_and_over_loopback(clock: FakeClock) -> None:
    sim = simulator(demo_org(), clock)
    with pytest.raises(httpx.RemoteProtocolError):
        await _fault(sim, "drop")
    sim.fail_next("/api/v1/users", "drop", count=2)
    with ServerThread(sim.asgi) as server:
        async with httpx.AsyncClient(headers={"Authorization": f"SSWS {TOKEN}"}) as c:
            for _ in range(2):
                with pytest.raises(httpx.RemoteProtocolError):
                    await c.get(f"{server.url}/api/v1/users")
            assert (await c.get(f"{server.url}/api/v1/users")).status_code == 200
    assert [rec.fault for rec in sim.stats.log] == ["drop", "drop", "drop", None]


async def test_scripted_faults_order_count_prefix_and_method(clock: FakeClock) -> None:
    sim = simulator(demo_org(), clock)
    sim.fail_next("/api/v1/groups", "503", count=2)
    sim.fail_next("/api/v1/", "500")
    sim.fail_next("/oauth2/", "500", method="POST")
    with pytest.raises(ValueError, match="unknown fault kind"):
        sim.fail_next(kind="teapot")
    async with client_for(sim) as c:
        statuses = [(await c.get(url)).status_code for url in ["/api/v1/users"] * 2]
        statuses += [(await c.get("/api/v1/groups")).status_code for _ in range(3)]
        assert (await c.get("/_sim/stats")).status_code == 200  # admin: never faulted
        assert (await c.post("/oauth2/v1/token", data={})).status_code == 500
    assert statuses == [500, 200, 503, 503, 200]
    assert sim.scripted_faults == []


async def test_random_faults_are_reproducible(clock: FakeClock) -> None:
    outcomes = []
    for _ in range(2):
        faults = Faults(error_rate=0.2, malformed_rate=0.1, truncated_rate=0.1, seed=42)
        sim = simulator(demo_org(), clock, faults=faults)
        async with client_for(sim) as c:
            for _ in range(60):
                await c.get("/api/v1/users")
        outcomes.append([(rec.status, rec.fault) for rec in sim.stats.log])
    assert outcomes[0] == outcomes[1]
    kinds = {fault for _, fault in outcomes[0]}
    assert {None, "truncated"} <= kinds and kinds & {"500", "503"} and kinds & {"malformed", "502"}
    assert kinds <= FAULT_KINDS | {None}


async def test_latency(clock: FakeClock) -> None:
    sim = simulator(demo_org(), clock, faults=Faults(latency=0.05))
    async with client_for(sim) as c:
        started = time.monotonic()
        await c.get("/api/v1/users")
    assert time.monotonic() - started >= 0.05


# ----------------------------------------------------------------------- admin, stats


async def test_admin_endpoints_and_stats(clock: FakeClock) -> None:
    sim = simulator(demo_org(), clock, limits=RateLimits(users=2))
    org = sim.org
    async with client_for(sim, token=None) as admin, client_for(sim) as c:
        r = await admin.post(
            "/_sim/mutate",
            json={"op": "add_user", "args": {"first_name": "Zed", "last_name": "Zulu"}},
        )
        assert r.status_code == 200
        new_id = r.json()["result"]
        assert org.user(new_id).login == "zed.zulu@example.com"
        r = await admin.post("/_sim/mutate", json={"op": "suspend", "args": {"user_id": "00ux"}})
        assert r.status_code == 404 and "00ux" in r.json()["error"]
        r = await admin.post("/_sim/mutate", json={"op": "__init__", "args": {}})
        assert r.status_code == 400
        r = await admin.post("/_sim/mutate", json={"op": "suspend", "args": {"user_id": new_id}})
        assert r.status_code == 200 and org.user(new_id).status == "SUSPENDED"

        assert (await c.get("/api/v1/users")).status_code == 200
        assert (await c.get("/api/v1/users")).status_code == 200
        assert (await c.get("/api/v1/users")).status_code == 429
        await c.get(f"/api/v1/groups/{org.group_by_name('Engineering').id}/users?limit=3")
        stats = (await admin.get("/_sim/stats")).json()
        assert stats["requests"] == {"users": 3, "groups": 1}
        assert stats["byRoute"]["GET /api/v1/users"] == 3
        assert stats["byRoute"]["GET /api/v1/groups/{groupId}/users"] == 1
        assert stats["rateLimited"] == 1 and stats["inFlight"] == 0
        assert stats["log"][-1]["path"].endswith("/users?limit=3")
        assert [e["status"] for e in stats["log"]] == [200, 200, 429, 200]
        assert sim.stats.by_route[("GET", "/api/v1/users")] == 3

        assert (await admin.post("/_sim/ratelimits/reset")).status_code == 200
        assert (await c.get("/api/v1/users")).status_code == 200
        assert (await admin.post("/_sim/stats/reset")).status_code == 200
        assert sim.stats.requests == {} and sim.stats.log == [] and sim.stats.rate_limited == 0

        faults = {"error_rate": 0.5, "seed": 3, "script": [{"path_prefix": "/api/", "kind": "401"}]}
        r = await admin.post("/_sim/faults", json=faults)
        assert r.json()["error_rate"] == 0.5 and r.json()["script"][0]["kind"] == "401"
        assert sim.faults.seed == 3 and len(sim.scripted_faults) == 1
        assert (await admin.post("/_sim/faults", json={"nope": 1})).status_code == 400
        assert (await admin.post("/_sim/faults", json={})).json()["script"] == []
        exported = (await admin.get("/_sim/org")).json()
        assert OktaOrg.from_dict(exported).to_dict() == exported
        assert (await admin.get("/_sim/nothing")).status_code == 404
    assert set(dir(OktaOrg)) >= MUTATIONS


# -------------------------------------------------------------------------- mutations


def test_user_mutations_bump_timestamps_and_enforce_lifecycle(clock: FakeClock) -> None:
    org = OktaOrg(seed=5, clock=clock)
    u = org.add_user("Ann", "Lee", mobilePhone="+1 555 0100", department="Ops")
    user = org.user(u)
    assert user.profile["mobilePhone"] == "+1 555 0100" and user.profile["department"] == "Ops"
    assert user.created == user.last_updated == user.activated == user.status_changed
    created = user.created
    clock.advance(60)
    org.update_profile(u, title="CTO", secondEmail="ann@home.example")
    assert org.user(u).profile["title"] == "CTO" and org.user(u).last_updated > created
    org.change_login(u, "ann@new.example.com", email="ann@new.example.com")
    assert org.user("ANN@new.example.com").id == u
    with pytest.raises(UnknownIdError):
        org.user("ann.lee@example.com")
    other = org.add_user("Ann", "Lee")
    assert org.user(other).login == "ann.lee@example.com"
    with pytest.raises(ValueError, match="already in use"):
        org.change_login(other, "ann@new.example.com")
    clock.advance(60)
    org.suspend(u)
    assert org.user(u).status == "SUSPENDED" and (org.user(u).status_changed or "") > created
    with pytest.raises(ValueError, match="cannot suspend"):
        org.suspend(u)
    org.unsuspend(u)
    org.deactivate(u)
    assert org.user(u).status == "DEPROVISIONED"
    with pytest.raises(ValueError):
        org.deactivate(u)
    org.reactivate(u)
    assert org.user(u).status == "ACTIVE"
    staged = org.add_user("Sam", "Stage", status="STAGED")
    assert org.user(staged).activated is None and org.user(staged).password_changed is None
    org.activate(staged)
    assert org.user(staged).activated is not None
    org.set_status(staged, "PASSWORD_EXPIRED")
    with pytest.raises(ValueError):
        org.set_status(staged, "NAPPING")
    org.delete_user(staged)
    assert staged not in org.users
    for call in (org.suspend, org.delete_user, org.unassign_user, org.assign_user):
        with pytest.raises(KeyError, match="00unope"):
            call("00unope")
    with pytest.raises(UnknownIdError, match="00unope"):
        org.update_profile("00unope", title="x")


def test_assignment_and_group_mutations(clock: FakeClock) -> None:
    org = role_org(clock)
    u = org.add_user("Gil", "Group", groups=[gid("C")], user_id=uid(1))
    view = org.app_user(u)
    assert view is not None and view.scope == "GROUP" and view.group_id == gid("C")
    before = view.last_updated
    clock.advance(30)
    org.add_member(gid("A"), u)
    view = org.app_user(u)
    assert view is not None and view.group_id == gid("A") and view.last_updated > before
    assert org.group(gid("A")).last_membership_updated == view.last_updated

    org.assign_user(u)  # converting keeps the group's values
    view = org.app_user(u)
    assert view is not None and view.scope == "USER" and view.profile["vanta_roles"] == ADMIN
    org.set_assignment_profile(u, {"vanta_roles": EDITOR})
    assert org.user_assignments[u].profile == {"vanta_roles": EDITOR}
    org.unassign_user(u)
    assert org.app_user(u).scope == "GROUP"  # type: ignore[union-attr]
    with pytest.raises(KeyError):
        org.unassign_user(u)

    lone = org.add_user("Lone", "Wolf", user_id=uid(2))
    assert org.app_user(lone) is None
    with pytest.raises(KeyError):
        org.set_assignment_profile(lone, {"vanta_roles": ADMIN})
    org.add_member(gid("B"), lone)
    org.set_assignment_profile(lone, {"vanta_roles": ADMIN})  # edit -> individual
    assert org.app_user(lone).scope == "USER"  # type: ignore[union-attr]

    org.remove_member(gid("A"), u)
    org.remove_member(gid("A"), u)  # no-op
    assert org.app_user(u).group_id == gid("C")  # type: ignore[union-attr]
    new = org.add_group("New-Group", "desc")
    org.assign_group(new)
    assert org.group_assignments[new].priority == 3  # one after the last
    org.set_group_profile(new, {"vanta_roles": EDITOR})
    org.set_group_priority(new, 0)
    org.add_member(new, u)
    assert org.app_user(u).profile == {"vanta_roles": EDITOR}  # type: ignore[union-attr]
    org.rename_group(new, "Renamed", "new desc")
    assert org.group(new).name == "Renamed" and org.group(new).description == "new desc"
    org.delete_group(new)
    assert new not in org.groups and new not in org.group_assignments
    assert new not in org.groups_of(u)
    org.unassign_group(gid("C"))
    assert org.app_user(u) is None
    with pytest.raises(KeyError, match=gid("C")):
        org.set_group_priority(gid("C"), 1)
    with pytest.raises(ValueError, match="BUILT_IN"):
        org.add_member(gid("E"), u)
    with pytest.raises(ValueError, match="BUILT_IN"):
        org.delete_group(gid("E"))
    with pytest.raises(KeyError, match="00gnope"):
        org.delete_group("00gnope")
    with pytest.raises(KeyError, match="00gnope"):
        org.rename_group("00gnope", "x")
    with pytest.raises(KeyError, match="00gnope"):
        org.assign_group("00gnope")
    assert org.group(gid("E")).members == set(org.users)  # Everyone is complete

    org.set_role_enum({"Owner": "r1", "Viewer": "r2"})
    assert org.role_attribute.enum == [("r1", "Owner"), ("r2", "Viewer")]
    with pytest.raises(ValueError):
        org.set_role_attribute(scope="GLOBAL")


async def test_mutations_show_through_the_api(clock: FakeClock) -> None:
    sim = simulator(role_org(clock), clock)
    org = sim.org
    u = org.add_user("Vic", "Visible", groups=[gid("B")], user_id=uid(1))
    async with client_for(sim) as c:
        org.set_role_enum({"Admin": ADMIN, "Auditor": "0000005ddeface0000000009"})
        schema = (await c.get(f"/api/v1/meta/schemas/apps/{APP}/default")).json()
        attr = schema["definitions"]["custom"]["properties"]["vanta_roles"]
        assert attr["enum"] == [ADMIN, "0000005ddeface0000000009"]
        org.rename_group(gid("B"), "Vanta-Editors")
        app_user = (await c.get(f"/api/v1/apps/{APP}/users/{u}")).json()
        assert app_user["_links"]["group"]["name"] == "Vanta-Editors"
        org.delete_user(u)
        assert (await c.get(f"/api/v1/apps/{APP}/users/{u}")).status_code == 404
        assert (await c.get(f"/api/v1/users/{u}")).status_code == 404
        assert (await c.get(f"/api/v1/groups/{gid('B')}/users")).json() == []


# ------------------------------------------------------------------ orgs and the generator


def test_generator_is_deterministic_and_realistic() -> None:
    a = generate_org(people=400, groups=12, seed=5)
    assert a.to_dict() == generate_org(people=400, groups=12, seed=5).to_dict()
    assert a.to_dict() != generate_org(people=400, groups=12, seed=6).to_dict()
    assert len(a.users) == 400 and len(a.groups) == 12 + 3 + 1
    logins = [u.login for u in a.users.values()]
    assert len(set(logins)) == 400 and all(login.endswith("@example.com") for login in logins)
    assert all(len(i) == 20 and i[:3] in ("00u", "00g") for i in [*a.users, *a.groups])
    roles = {a.groups[g].name: (ga.priority, ga.profile) for g, ga in a.group_assignments.items()}
    assert roles == {
        "Vanta-Admins": (1, {"vanta_roles": ADMIN}),
        "Vanta-Editors": (2, {"vanta_roles": EDITOR}),
        "Vanta-Employees": (3, {"vanta_roles": EMPLOYEE}),
    }
    employees = a.group_by_name("Vanta-Employees").members
    assert len(employees) > 0.9 * 400
    assert a.group_by_name("Vanta-Admins").members & employees
    statuses = {u.status for u in a.users.values()}
    assert {"ACTIVE", "SUSPENDED", "DEPROVISIONED", "STAGED"} <= statuses
    assert 0 < len(a.user_assignments) < 20
    team = {g.id for g in a.groups.values() if g.type == "OKTA_GROUP"} - set(a.group_assignments)
    assert len(team) == 12 and all(a.groups[t].members for t in team)
    assert sum(1 for u in a.users if a.app_user(u) is None) > 0
    custom = generate_org(people=20, groups=1, seed=1, catalog={"Owner": "x1"}, attribute="role")
    assert [custom.groups[g].name for g in custom.group_assignments] == ["Vanta-Owners"]
    assert custom.role_attribute.name == "role" and custom.role_attribute.enum == [("x1", "Owner")]


async def test_generate_and_serve_100k_people(clock: FakeClock) -> None:
    started = time.monotonic()
    org = generate_org(people=100_000, groups=300, seed=7)
    assert time.monotonic() - started < 30
    assert len(org.users) == 100_000
    sim = simulator(org, clock)
    async with client_for(sim) as c:
        started = time.monotonic()
        first = await c.get(
            f"/api/v1/apps/{org.app.id}/users", params={"limit": 500, "expand": "user"}
        )
        second = await c.get(first.links["next"]["url"])
        assert time.monotonic() - started < 5
    assert len(first.json()) == len(second.json()) == 500
    assert first.json()[-1]["id"] < second.json()[0]["id"]


def test_org_file_roundtrip(tmp_path: Path, clock: FakeClock) -> None:
    org = generate_org(people=200, groups=5, seed=11)
    path = tmp_path / "org.json"
    save_org(org, path)
    loaded = load_org(path)
    assert loaded.to_dict() == org.to_dict()
    assert [loaded.app_user(u) for u in loaded.app_user_ids()] == [
        org.app_user(u) for u in org.app_user_ids()
    ]
    minimal = OktaOrg.from_dict(
        {
            "app": {"id": APP},
            "users": [{"id": uid(1), "profile": {"login": "a@example.com"}}],
            "groups": [{"id": gid("A"), "profile": {"name": "A"}, "members": [uid(1)]}],
            "assignments": {"groups": [{"groupId": gid("A"), "priority": 0}]},
        },
        clock=clock,
    )
    assert minimal.app_user_ids() == [uid(1)]
    assert minimal.user(uid(1)).created == minimal.now()
    with pytest.raises(ValueError, match="unknown member"):
        OktaOrg.from_dict(
            {"groups": [{"id": gid("A"), "profile": {"name": "A"}, "members": ["x"]}]}
        )


def test_demo_org() -> None:
    org = demo_org()
    assert org.app.id == "0oademo0000000000001" and len(org.app.id) == 20
    assert 45 <= len(org.users) <= 55
    assert org.role_attribute.name == "vanta_roles"
    assert org.role_attribute.enum == [
        (ADMIN, "Admin"),
        (EDITOR, "Editor"),
        (EMPLOYEE, "Employee"),
    ]
    assigned = {
        org.groups[g].name: (ga.priority, ga.profile["vanta_roles"])
        for g, ga in org.group_assignments.items()
    }
    assert assigned == {
        "Vanta-Admins": (1, ADMIN),
        "Vanta-Editors": (2, EDITOR),
        "Vanta-Employees": (3, EMPLOYEE),
    }
    for team in ("Engineering", "Team-Payments"):
        assert org.group_by_name(team).id not in org.group_assignments
    views = [v for v in map(org.app_user, org.app_user_ids()) if v is not None]
    individual = sorted(v.profile["vanta_roles"] for v in views if v.scope == "USER")
    assert individual == [ADMIN, "Superuser"]  # one override, one role not in the enum
    assert len(views) == len(org.users) - 2  # two people have no access
    assert [u.status for u in org.users.values()].count("SUSPENDED") == 1
    several = [u for u in org.users if len(org.groups_of(u) & set(org.group_assignments)) > 1]
    assert len(several) >= 3


# ---------------------------------------------------------------------------- server


async def test_server_thread_start_stop_and_fixed_port(demo: OktaSimulator) -> None:
    server = ServerThread(demo.asgi)
    with pytest.raises(RuntimeError):
        _ = server.url
    started = time.monotonic()
    server.start()
    try:
        assert server.url.startswith("http://127.0.0.1:") and server.port > 0
        async with httpx.AsyncClient() as c:
            r = await c.get(
                f"{server.url}/api/v1/users", headers={"Authorization": f"SSWS {TOKEN}"}
            )
            assert r.status_code == 200 and r.links["self"]["url"].startswith(server.url)
        port = server.port
    finally:
        server.stop()
    server.stop()  # idempotent
    assert time.monotonic() - started < 5 and not server.running
    with ServerThread(demo.asgi, port=port) as again:
        assert again.port == port
        async with httpx.AsyncClient() as c:
            assert (await c.get(f"{again.url}/_sim/stats")).status_code == 200


# -------------------------------------------------------------------------- fidelity


def _schema(name: str) -> jsonschema.protocols.Validator:
    checker = jsonschema.FormatChecker()

    @checker.checks("date-time", raises=ValueError)
    def _date_time(value: object) -> bool:
        return not isinstance(value, str) or datetime.fromisoformat(value) is not None

    schema = json.loads((DATA / "okta-openapi" / f"{name}.json").read_text())
    return jsonschema.Draft202012Validator(schema, format_checker=checker)


def _validate(name: str, instance: Any) -> None:
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in _schema(name).iter_errors(instance)]
    assert not errors, (name, errors)


@pytest.fixture
async def served(client: httpx.AsyncClient, demo: OktaSimulator) -> dict[str, Any]:
    """One of every kind of body the simulator serves, from the demo org."""
    org = demo.org
    app = org.app.id
    grace = org.user("grace.chen@example.com").id
    eng = org.group_by_name("Engineering").id

    async def get(url: str, **params: str) -> Any:
        return (await client.get(url, params=params)).json()

    org.deactivate(org.user("noah.williams@example.com").id)
    limited = simulator(demo_org(), FakeClock(), limits=RateLimits(users=0))
    async with client_for(limited) as c:
        too_many = (await c.get("/api/v1/users")).json()
    async with client_for(demo, token="bad") as c:
        unauthorized = (await c.get("/api/v1/users")).json()
    return {
        "users": await get("/api/v1/users", filter='status eq "DEPROVISIONED"')
        + await get("/api/v1/users"),
        "user": await get(f"/api/v1/users/{grace}"),
        "groups": await get("/api/v1/groups", expand="stats") + await get("/api/v1/groups"),
        "group_users": await get(f"/api/v1/groups/{eng}/users"),
        "app_users": await get(f"/api/v1/apps/{app}/users", limit="200"),
        "app_users_expanded": await get(f"/api/v1/apps/{app}/users", expand="user", limit="200"),
        "app_user": await get(f"/api/v1/apps/{app}/users/{grace}"),
        "app_groups": await get(f"/api/v1/apps/{app}/groups"),
        "app_groups_expanded": await get(f"/api/v1/apps/{app}/groups", expand="group"),
        "schema": await get(f"/api/v1/meta/schemas/apps/{app}/default"),
        "errors": [
            await get("/api/v1/users/00unope"),
            await get(f"/api/v1/apps/{app}/users", limit="x"),
            await get("/api/v1/users", filter="nope"),
            too_many,
            unauthorized,
        ],
    }


async def test_fidelity_against_okta_openapi_schemas(served: dict[str, Any]) -> None:
    for user in [*served["users"], served["user"], *served["group_users"]]:
        _validate("User", user)
    for group in served["groups"]:
        _validate("Group", group)
    for item in [*served["app_users"], *served["app_users_expanded"], served["app_user"]]:
        _validate("AppUser", item)
        if "_embedded" in item:
            _validate("User", item["_embedded"]["user"])
    for item in [*served["app_groups"], *served["app_groups_expanded"]]:
        _validate("ApplicationGroupAssignment", item)
        if "_embedded" in item:
            _validate("Group", item["_embedded"]["group"])
    _validate("UserSchema", served["schema"])
    for error in served["errors"]:
        _validate("Error", error)
    assert {e["errorCode"] for e in served["errors"]} == {
        "E0000007",
        "E0000001",
        "E0000053",
        "E0000047",
        "E0000011",
    }
    assert {u["status"] for u in served["users"]} >= {"ACTIVE", "SUSPENDED", "DEPROVISIONED"}
    # The schemas do reject wrong shapes.
    with pytest.raises(AssertionError):
        _validate("AppUser", {**served["app_user"], "scope": "TEAM"})
    with pytest.raises(AssertionError):
        _validate("User", {**served["user"], "status": "RETIRED"})
    with pytest.raises(AssertionError):
        _validate("Group", {**served["groups"][0], "created": "yesterday"})


async def test_fidelity_with_okta_sdk_models(served: dict[str, Any]) -> None:
    for raw in [*served["users"], served["user"], *served["group_users"]]:
        user = okta.models.User.from_dict(raw)
        assert user is not None and user.id == raw["id"] and user.profile is not None
        assert user.status is not None and user.status.value == raw["status"]
        assert user.profile.login == raw["profile"]["login"]
        assert user.profile.first_name == raw["profile"]["firstName"]
        assert user.last_updated is not None and user.links is not None
    for raw in served["groups"]:
        group = okta.models.Group.from_dict(raw)
        assert group is not None and group.profile is not None
        assert group.profile.actual_instance.name == raw["profile"]["name"]
        assert group.type is not None and group.type.value == raw["type"]
    for raw in [*served["app_users_expanded"], served["app_user"]]:
        app_user = okta.models.AppUser.from_dict(raw)
        assert app_user is not None and app_user.id == raw["id"]
        assert app_user.scope == raw["scope"] and app_user.profile == raw["profile"]
        assert app_user.credentials is not None
        assert app_user.credentials.user_name == raw["credentials"]["userName"]
        assert app_user.status is not None and app_user.status.value == raw["status"]
        assert app_user.links is not None and app_user.links.user is not None
        if raw["scope"] == "GROUP":
            assert app_user.links.group is not None
        if "_embedded" in raw:
            assert app_user.embedded is not None
            embedded = okta.models.User.from_dict(app_user.embedded["user"])
            assert embedded is not None and embedded.id == raw["id"]
    for raw in served["app_groups_expanded"]:
        assignment = okta.models.ApplicationGroupAssignment.from_dict(raw)
        assert assignment is not None and assignment.priority == raw["priority"]
        assert assignment.profile == raw["profile"] and assignment.embedded is not None
        assert okta.models.Group.from_dict(assignment.embedded["group"]) is not None
    schema = okta.models.UserSchema.from_dict(served["schema"])
    assert schema is not None and schema.definitions is not None
    assert schema.definitions.custom is not None and schema.definitions.custom.properties
    attr = schema.definitions.custom.properties["vanta_roles"]
    assert attr.one_of is not None and [o.const for o in attr.one_of] == [ADMIN, EDITOR, EMPLOYEE]
    assert attr.scope is not None and attr.scope.value == "NONE"
    for raw in served["errors"]:
        error = okta.models.Error.from_dict(raw)
        assert error is not None and error.error_code == raw["errorCode"]


def _recordings() -> Iterator[tuple[str, dict[str, Any]]]:
    for path in sorted((DATA / "okta-recordings").glob("*.json")):
        yield path.stem, json.loads(path.read_text())


_RECORDED_SCHEMA = {
    "list-users-page": "User",
    "list-group-users": "User",
    "user": "User",
    "list-groups": "Group",
    "list-app-users": "AppUser",
    "list-app-groups": "ApplicationGroupAssignment",
    "error-404": "Error",
    "error-429": "Error",
}


@pytest.mark.parametrize(("name", "recording"), list(_recordings()))
def test_recorded_okta_responses_validate_against_the_same_schemas(
    name: str, recording: dict[str, Any]
) -> None:
    body = recording["body"]
    for item in body if isinstance(body, list) else [body]:
        _validate(_RECORDED_SCHEMA[name], item)


async def test_headers_match_the_recordings(client: httpx.AsyncClient, demo: OktaSimulator) -> None:
    recorded = dict(_recordings())
    app = demo.org.app.id
    ours = {
        "list-app-users": await client.get(f"/api/v1/apps/{app}/users"),
        "list-groups": await client.get("/api/v1/groups"),
        "error-404": await client.get("/api/v1/users/00usfgmn9xhwtA6f74x6"),
    }
    for name, response in ours.items():
        expected = set(recorded[name]["headers"])
        assert expected <= set(response.headers), (name, expected - set(response.headers))
        assert response.status_code == recorded[name]["status"]
    recorded_link = recorded["list-app-users"]["headers"]["link"]
    assert recorded_link == [
        '<https://test.okta.com/api/v1/apps/0oasf86d7hw9MMcnd4x6/users?limit=50>; rel="self"'
    ]
    assert ours["list-app-users"].headers.get_list("link") == [
        f'<{BASE}/api/v1/apps/{app}/users?limit=50>; rel="self"'
    ]
    assert ours["error-404"].json()["errorSummary"] == recorded["error-404"]["body"]["errorSummary"]


def test_system_clock_default() -> None:
    sim = OktaSimulator(OktaOrg(clock=SystemClock()))
    assert isinstance(sim.clock, SystemClock) and sim.api_tokens == {"sim-api-token"}
    with pytest.raises(ValueError):
        OktaSimulator(OktaOrg(), link_style="fancy")
