"""The Okta reader against the Okta simulator over loopback HTTP, with a controllable clock."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr

from syncd import log as syncd_log
from syncd.clock import FakeClock
from syncd.errors import (
    OktaAuthError,
    OktaNotFoundError,
    OktaRecordError,
    OktaRequestRejected,
    OktaTransientError,
)
from syncd.okta import AppUser, OktaHttp, OktaReader, PrivateKeyJWTAuth, SSWSAuth
from syncd.sim.okta import OAuthClient, OktaOrg, OktaSimulator, RateLimits
from syncd.sim.server import ServerThread

from .helpers import CATALOG, EMPLOYEE, OKTA_TOKEN

APP = "0oareader00000000001"


def org_with(people: int, *, seed: int = 3) -> OktaOrg:
    org = OktaOrg(app_id=APP, roles=CATALOG, seed=seed)
    group = org.add_group("Vanta-Employees")
    org.assign_group(group, 1, {"vanta_roles": EMPLOYEE})
    for i in range(people):
        org.add_user("Person", f"Number{i}", f"person{i}@example.com", groups=[group])
    return org


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    syncd_log.configure("json", "debug", stream=stream)
    yield stream
    structlog.reset_defaults()


class Okta:
    """A simulator on loopback plus a reader wired to it, sharing one FakeClock."""

    def __init__(self, org: OktaOrg, **sim_options: Any) -> None:
        self.clock = FakeClock()
        self.org = org
        org.clock = self.clock
        self.sim = OktaSimulator(org, clock=self.clock, api_tokens=[OKTA_TOKEN], **sim_options)
        self.server = ServerThread(self.sim.asgi)

    def __enter__(self) -> Okta:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()

    def http(self, token: str = OKTA_TOKEN, **options: Any) -> OktaHttp:
        auth = options.pop("auth", None) or SSWSAuth(SecretStr(token))
        return OktaHttp(self.server.url, auth, clock=self.clock, **options)


async def read_all(reader: OktaReader) -> list[AppUser]:
    out = []
    async for item in reader.app_users():
        assert not isinstance(item, OktaRecordError), item
        out.append(item)
    return out


@pytest.mark.parametrize("link_style", ["separate", "combined"])
async def test_paginates_1234_app_users_in_three_pages(link_style: str) -> None:
    with Okta(org_with(1234), link_style=link_style) as okta:
        async with okta.http() as http:
            users = await read_all(OktaReader(http, APP))
            assert len(users) == 1234
            assert len({u.id for u in users}) == 1234
            assert users[0].user.profile.login.endswith("@example.com")
            assert all(u.scope == "GROUP" for u in users)
            assert http.stats.by_family["apps"] == 3
        assert okta.sim.stats.requests["apps"] == 3


async def test_group_members_and_assignments() -> None:
    with Okta(org_with(1500)) as okta:
        async with okta.http() as http:
            reader = OktaReader(http, APP)
            grants = [g async for g in reader.group_assignments()]
            (grant,) = grants
            assert not isinstance(grant, OktaRecordError)
            assert grant.group_name == "Vanta-Employees" and grant.priority == 1
            members = [m async for m in reader.group_members(grant.id)]
            assert len(members) == 1500
            assert http.stats.by_family["groups"] == 2  # 1,000 a page


async def test_429_waits_for_the_reset_then_succeeds(logs: io.StringIO) -> None:
    with Okta(org_with(10)) as okta:
        okta.sim.fail_next(path_prefix="/api/v1/apps/", kind="429", count=1)
        async with okta.http() as http:
            users = await read_all(OktaReader(http, APP))
        assert len(users) == 10
        assert okta.sim.stats.rate_limited >= 1
        assert okta.clock.slept >= 1.0  # waited until the reset, on the server's clock
        assert '"event": "okta.rate_limited"' in logs.getvalue()


async def test_pacing_keeps_to_the_share_and_never_sees_a_429(logs: io.StringIO) -> None:
    # apps bucket of 4 a minute, share 0.5: two requests a window; six pages need three windows.
    with Okta(org_with(2600), limits=RateLimits(apps=4)) as okta:
        async with okta.http(rate_limit_share=0.5) as http:
            users = await read_all(OktaReader(http, APP))
        assert len(users) == 2600
        assert okta.sim.stats.rate_limited == 0
        assert okta.sim.stats.requests["apps"] == 6
        assert okta.clock.slept >= 120.0  # two waits for a reset
        assert '"event": "okta.pacing"' in logs.getvalue()


async def test_5xx_dropped_connections_and_bad_json_are_retried(logs: io.StringIO) -> None:
    with Okta(org_with(600)) as okta:
        okta.sim.fail_next(path_prefix="/api/v1/apps/", kind="503", count=1)
        okta.sim.fail_next(path_prefix="/api/v1/apps/", kind="drop", count=1)
        okta.sim.fail_next(path_prefix="/api/v1/apps/", kind="truncated", count=1)
        okta.sim.fail_next(path_prefix="/api/v1/apps/", kind="malformed", count=1)
        async with okta.http() as http:
            users = await read_all(OktaReader(http, APP))
            assert len(users) == 600
            assert http.stats.retries == 4
        assert logs.getvalue().count('"event": "okta.retry"') == 4


async def test_retries_run_out_with_a_typed_transient_error() -> None:
    with Okta(org_with(5)) as okta:
        okta.sim.fail_next(path_prefix="/api/v1/apps/", kind="500", count=50)
        async with okta.http(max_attempts=5) as http:
            with pytest.raises(OktaTransientError, match="gave up after 5 attempts"):
                await read_all(OktaReader(http, APP))
        assert okta.sim.stats.requests["apps"] == 5


async def test_a_page_failing_midway_raises_instead_of_returning_a_partial_list() -> None:
    with Okta(org_with(1200)) as okta:
        async with okta.http(max_attempts=2) as http:
            seen = 0
            with pytest.raises(OktaTransientError):
                async for _ in OktaReader(http, APP).app_users():
                    seen += 1
                    if seen == 500:  # the first page is in: break the second
                        okta.sim.fail_next(path_prefix="/api/v1/apps/", kind="500", count=10)
            assert seen == 500


async def test_timeouts_are_retried_then_typed() -> None:
    from syncd.sim.okta import Faults

    with Okta(org_with(3), faults=Faults(latency=1.0)) as okta:
        async with okta.http(timeout=0.2, max_attempts=2) as http:
            with pytest.raises(OktaTransientError, match=r"timed out .*gave up after 2 attempts"):
                await read_all(OktaReader(http, APP))


async def test_401_is_a_typed_auth_error_with_oktas_details_and_no_retry() -> None:
    with Okta(org_with(3)) as okta:
        async with okta.http(token="wrong-token-abcdef") as http:
            with pytest.raises(OktaAuthError) as info:
                await read_all(OktaReader(http, APP))
        error = info.value
        assert (error.status, error.error_code) == (401, "E0000011")
        assert error.error_summary == "Invalid token provided"
        assert error.error_id
        assert "Invalid token provided" in str(error)
        assert "wrong-token-abcdef" not in str(error) + repr(error)
        assert okta.sim.stats.requests["apps"] == 1


async def test_unknown_app_is_not_found() -> None:
    with Okta(org_with(1)) as okta:
        async with okta.http() as http:
            with pytest.raises(OktaNotFoundError) as info:
                await read_all(OktaReader(http, "0oanosuchapp00000000"))
        assert info.value.error_code == "E0000007"


async def test_next_link_off_the_org_is_refused() -> None:
    with Okta(org_with(700), base_url="http://evil.example.com") as okta:
        async with okta.http() as http:
            with pytest.raises(OktaRequestRejected, match="refusing to follow a link off the org"):
                await read_all(OktaReader(http, APP))


def _rsa_key() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


SCOPES = ["okta.users.read", "okta.groups.read", "okta.apps.read", "okta.logs.read"]


async def test_oauth_token_is_fetched_once_and_reused(logs: io.StringIO) -> None:
    private, public = _rsa_key()
    client = OAuthClient(public_key_pem=public, scopes=SCOPES)
    with Okta(org_with(1200), oauth_clients={"0oaservice0000000001": client}) as okta:
        auth = PrivateKeyJWTAuth(
            org_url=okta.server.url,
            client_id="0oaservice0000000001",
            private_key=SecretStr(private),
            scopes=SCOPES,
            clock=okta.clock,
        )
        async with okta.http(auth=auth) as http:
            reader = OktaReader(http, APP)
            assert len(await read_all(reader)) == 1200
            grants = [g async for g in reader.group_assignments()]
            assert len(grants) == 1
        assert auth.tokens_fetched == 1
        assert okta.sim.stats.requests["oauth"] == 1
        assert private.splitlines()[1] not in logs.getvalue() + repr(auth) + repr(http)


async def test_oauth_with_a_key_okta_does_not_know_is_an_auth_error() -> None:
    private, _ = _rsa_key()
    _, other_public = _rsa_key()
    client = OAuthClient(public_key_pem=other_public, scopes=SCOPES)
    with Okta(org_with(1), oauth_clients={"0oaservice0000000001": client}) as okta:
        auth = PrivateKeyJWTAuth(
            org_url=okta.server.url,
            client_id="0oaservice0000000001",
            private_key=SecretStr(private),
            scopes=SCOPES,
            clock=okta.clock,
        )
        async with okta.http(auth=auth) as http:
            with pytest.raises(OktaAuthError, match="invalid_client") as info:
                await read_all(OktaReader(http, APP))
        assert private.splitlines()[1] not in str(info.value)


async def test_no_secret_in_logs_or_errors(logs: io.StringIO) -> None:
    syncd_log.register_secret(OKTA_TOKEN)
    with Okta(org_with(3)) as okta:
        okta.sim.fail_next(path_prefix="/api/v1/apps/", kind="500", count=50)
        async with okta.http(max_attempts=3) as http:
            with pytest.raises(OktaTransientError) as info:
                await read_all(OktaReader(http, APP))
            texts = [
                str(info.value),
                repr(info.value),
                repr(http),
                repr(http.auth),
                logs.getvalue(),
            ]
    for text in texts:
        assert OKTA_TOKEN not in text


async def test_a_malformed_record_is_named_by_id_and_the_others_still_arrive() -> None:
    with Okta(org_with(3)) as okta:
        first = okta.org.app_user_ids()[0]
        okta.sim.fail_next(path_prefix="/api/v1/apps/", kind="corrupt:_embedded.user.profile.login")
        async with okta.http() as http:
            items = [i async for i in OktaReader(http, APP).app_users()]
    errors = [i for i in items if isinstance(i, OktaRecordError)]
    assert len(items) == 3 and len(errors) == 1
    assert errors[0].record_id == first
    assert str(errors[0]) == (
        f"app user {first}: missing required field: _embedded.user.profile.login"
    )


async def test_oauth_token_is_renewed_once_on_401() -> None:
    private, public = _rsa_key()
    client = OAuthClient(public_key_pem=public, scopes=SCOPES)
    with Okta(org_with(3), oauth_clients={"0oaservice0000000001": client}) as okta:
        auth = PrivateKeyJWTAuth(
            org_url=okta.server.url,
            client_id="0oaservice0000000001",
            private_key=SecretStr(private),
            scopes=SCOPES,
            clock=okta.clock,
        )
        async with okta.http(auth=auth) as http:
            reader = OktaReader(http, APP)
            assert len(await read_all(reader)) == 3
            okta.sim.fail_next(path_prefix="/api/v1/apps/", kind="401", count=1)
            assert len(await read_all(reader)) == 3  # renewed, then retried once
            assert auth.tokens_fetched == 2
            okta.sim.fail_next(path_prefix="/api/v1/apps/", kind="401", count=2)
            with pytest.raises(OktaAuthError):  # still 401 after renewing: no loop
                await read_all(reader)
            assert auth.tokens_fetched == 3


async def test_requests_in_flight_are_capped_by_concurrency() -> None:
    from syncd.directory import read_directory

    org = org_with(5)
    groups = [org.add_group(f"Team-{i}") for i in range(12)]
    for i, group in enumerate(groups):
        org.assign_group(group, 10 + i, {"vanta_roles": EMPLOYEE})
    # The simulator answers 429 past 2 requests in flight; syncd capped at 2 never sees one.
    from syncd.sim.okta import Faults

    with Okta(org, concurrency_limit=2, faults=Faults(latency=0.05)) as okta:
        async with okta.http(concurrency=2) as http:
            directory = await read_directory(OktaReader(http, APP), "vanta_roles", concurrency=8)
        assert len(directory.members) == 13
        assert okta.sim.stats.rate_limited == 0


async def test_app_user_schema_gives_the_role_enum() -> None:
    with Okta(org_with(1)) as okta:
        async with okta.http() as http:
            schema = await OktaReader(http, APP).app_user_schema()
    attribute = schema.custom["vanta_roles"]
    assert attribute.roles() == {v: k for k, v in CATALOG.items()}
    assert attribute.scope == "NONE"
    assert attribute.external_namespace == "urn:ietf:params:scim:schemas:core:2.0:User"


async def test_groups_by_name_and_id() -> None:
    org = org_with(2)
    team = org.add_group("Team-Payments")
    org.add_group("Team-Payments-Ops")
    with Okta(org) as okta:
        async with okta.http() as http:
            reader = OktaReader(http, APP)
            (found,) = await reader.groups_named("Team-Payments")
            assert found.id == team
            assert (await reader.group(team)).profile.name == "Team-Payments"
            with pytest.raises(OktaNotFoundError):
                await reader.group("00gnosuchgroup000000")


async def test_pacing_takes_the_minimum_of_repeated_headers() -> None:
    # Every response repeats Limit and Remaining with larger decoys first (9 for a bucket of 4):
    # believing them, a 0.9 share would allow 8 requests a window and meet 429s.
    with Okta(org_with(2600), limits=RateLimits(apps=4, repeat_headers=True)) as okta:
        async with okta.http(rate_limit_share=0.9) as http:
            users = await read_all(OktaReader(http, APP))
        assert len(users) == 2600
        assert okta.sim.stats.rate_limited == 0


@pytest.mark.parametrize(("curve", "algorithm"), [("SECP256R1", "ES256"), ("SECP384R1", "ES384")])
def test_ec_keys_sign_with_the_matching_algorithm(curve: str, algorithm: str) -> None:
    import jwt
    from cryptography.hazmat.primitives.asymmetric import ec

    from syncd.clock import SystemClock

    key = ec.generate_private_key(getattr(ec, curve)())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    auth = PrivateKeyJWTAuth(
        org_url="https://acme.okta.com",
        client_id="0oaservice",
        private_key=SecretStr(pem),
        scopes=SCOPES,
        clock=SystemClock(),
    )
    assertion = auth._assertion()
    assert jwt.get_unverified_header(assertion)["alg"] == algorithm
    claims = jwt.decode(
        assertion,
        key.public_key(),
        algorithms=[algorithm],
        audience="https://acme.okta.com/oauth2/v1/token",
    )
    assert claims["iss"] == claims["sub"] == "0oaservice"


def test_an_unreadable_private_key_is_a_config_error_without_the_key() -> None:
    from syncd.clock import SystemClock
    from syncd.errors import ConfigError

    secret = "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5IGF0IGFsbA==\n-----END PRIVATE KEY-----"
    with pytest.raises(ConfigError) as info:
        PrivateKeyJWTAuth(
            org_url="https://acme.okta.com",
            client_id="0oaservice",
            private_key=SecretStr(secret),
            scopes=SCOPES,
            clock=SystemClock(),
        )
    assert "okta.private_key_file: is not a readable private key" in str(info.value)
    assert "bm90IGEga2V5" not in str(info.value) and info.value.__cause__ is None


async def test_oauth_scope_refused_by_the_token_endpoint_is_an_auth_error() -> None:
    private, public = _rsa_key()
    client = OAuthClient(public_key_pem=public, scopes=["okta.users.read", "okta.apps.read"])
    with Okta(org_with(1), oauth_clients={"0oaservice0000000001": client}) as okta:
        auth = PrivateKeyJWTAuth(
            org_url=okta.server.url,
            client_id="0oaservice0000000001",
            private_key=SecretStr(private),
            scopes=["okta.users.read", "okta.groups.read", "okta.apps.read"],
            clock=okta.clock,
        )
        async with okta.http(auth=auth) as http:
            with pytest.raises(OktaAuthError) as info:
                await read_all(OktaReader(http, APP))
    assert info.value.error_code == "invalid_scope" and info.value.status == 400
