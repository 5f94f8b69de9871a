"""The composition root: real parts built from the configuration, wired into the engine.

Commands call these functions; tests and benchmarks may pass their own ``clock`` or HTTP
transports, but never replace syncd's own logic.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import cast

import httpx

from syncd.clock import Clock, SystemClock
from syncd.config import Credentials, Settings, load_credentials
from syncd.drift import Finding
from syncd.engine import CycleResult, Engine, ExitCode, Snapshot
from syncd.log import get_logger
from syncd.okta import OktaHttp, OktaReader, PrivateKeyJWTAuth, SSWSAuth
from syncd.okta.auth import OktaAuth
from syncd.scim import ScimClient
from syncd.scim.client import PatchForm
from syncd.store import RunLock, Store

log = get_logger(__name__)

PATCH_FORM_KEY = "scim.patch_form"


def okta_auth(settings: Settings, credentials: Credentials, clock: Clock) -> OktaAuth:
    okta = settings.okta
    if okta.client_id and credentials.okta_private_key is not None:
        return PrivateKeyJWTAuth(
            org_url=okta.org_url,
            client_id=okta.client_id,
            private_key=credentials.okta_private_key,
            scopes=okta.scopes,
            clock=clock,
            key_id=okta.key_id,
        )
    assert credentials.okta_token is not None
    return SSWSAuth(credentials.okta_token)


@asynccontextmanager
async def open_okta(
    settings: Settings,
    credentials: Credentials,
    *,
    clock: Clock | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> AsyncIterator[OktaReader]:
    clock = clock or SystemClock()
    http = OktaHttp(
        settings.okta.org_url,
        okta_auth(settings, credentials, clock),
        rate_limit_share=settings.okta.rate_limit_share,
        concurrency=settings.okta.concurrency,
        max_attempts=settings.okta.max_attempts,
        timeout=settings.okta.timeout,
        clock=clock,
        transport=transport,
    )
    async with http:
        yield OktaReader(http, settings.okta.app_id)


@asynccontextmanager
async def open_scim(
    settings: Settings,
    credentials: Credentials,
    *,
    clock: Clock | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    patch_form: str | None = None,
) -> AsyncIterator[ScimClient]:
    client = ScimClient(
        settings.scim.base_url,
        credentials.scim_token,
        concurrency=settings.scim.concurrency,
        max_attempts=settings.scim.max_attempts,
        timeout=settings.scim.timeout,
        clock=clock,
        transport=transport,
        patch_form=cast(PatchForm, patch_form) if patch_form in ("no_path", "path") else None,
    )
    async with client:
        yield client


@dataclass
class RunReport:
    """One run, for the command line, the scheduler and the metrics."""

    exit_code: ExitCode
    error: str | None
    result: CycleResult | None = None
    okta_requests: dict[str, int] = field(default_factory=dict)  # by endpoint family
    scim_requests: dict[str, int] = field(default_factory=dict)  # by HTTP method
    rate_limit_remaining: dict[str, int] = field(default_factory=dict)  # by bucket
    managed: dict[str, int] = field(default_factory=dict)  # users, active_users, groups


async def run_cycle(
    settings: Settings,
    *,
    mode: str = "once",
    clock: Clock | None = None,
    okta_transport: httpx.AsyncBaseTransport | None = None,
    scim_transport: httpx.AsyncBaseTransport | None = None,
    on_engine: Callable[[Engine | None], None] | None = None,
    allow_deactivations: int | None = None,
) -> RunReport:
    """One cycle under the run lock.

    Raises :class:`~syncd.errors.LockHeldError` when another run holds the lock and
    :class:`~syncd.errors.ConfigError` for configuration problems. ``on_engine`` is told the
    engine while the cycle runs (and None after), so a scheduler can stop it.
    """
    credentials = load_credentials(settings)
    with RunLock(settings.sync.state_db):
        async with await Store.open(settings.sync.state_db) as store:
            patch_form = await store.get_meta(PATCH_FORM_KEY)
            async with (
                open_okta(settings, credentials, clock=clock, transport=okta_transport) as reader,
                open_scim(
                    settings,
                    credentials,
                    clock=clock,
                    transport=scim_transport,
                    patch_form=patch_form,
                ) as scim,
            ):
                engine = Engine(
                    settings,
                    source=reader,
                    target=scim,
                    store=store,
                    allow_deactivations=allow_deactivations,
                )
                if on_engine is not None:
                    on_engine(engine)
                try:
                    result = await engine.run_cycle(mode)
                finally:
                    if on_engine is not None:
                        on_engine(None)
                if scim.patch_form and scim.patch_form != patch_form:
                    await store.set_meta(PATCH_FORM_KEY, scim.patch_form)
                return RunReport(
                    exit_code=result.exit_code,
                    error=result.error,
                    result=result,
                    okta_requests=dict(reader.http.stats.by_family),
                    scim_requests=dict(scim.stats.by_method),
                    rate_limit_remaining={
                        k: v for k, v in reader.http.limiter.snapshot().items() if v is not None
                    },
                    managed=await store.managed_counts(),
                )


async def compute_plan(
    settings: Settings,
    *,
    clock: Clock | None = None,
    okta_transport: httpx.AsyncBaseTransport | None = None,
) -> Snapshot:
    """The plan of a cycle, writing nothing anywhere (the database is opened read-only)."""
    credentials = load_credentials(settings)
    async with (
        await Store.open(settings.sync.state_db, readonly=True) as store,
        open_okta(settings, credentials, clock=clock, transport=okta_transport) as reader,
    ):
        engine = Engine(settings, source=reader, target=None, store=store)
        return await engine.compute_plan()


async def check_drift(settings: Settings, *, clock: Clock | None = None) -> list[Finding]:
    """``syncd drift``: read Okta and the SCIM server, compare, log; write nothing."""
    credentials = load_credentials(settings)
    async with (
        await Store.open(settings.sync.state_db, readonly=True) as store,
        open_okta(settings, credentials, clock=clock) as reader,
        open_scim(settings, credentials, clock=clock) as scim,
    ):
        engine = Engine(settings, source=reader, target=scim, store=store)
        return await engine.check_drift()
