"""The composition root: real parts built from the configuration, wired into the engine.

Commands call these functions; tests and benchmarks may pass their own ``clock`` or HTTP
transports, but never replace syncd's own logic.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import cast

import httpx

from syncd.clock import Clock, SystemClock
from syncd.config import Credentials, Settings, load_credentials
from syncd.engine import Engine, ExitCode, Snapshot
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


async def run_cycle(
    settings: Settings,
    *,
    mode: str = "once",
    clock: Clock | None = None,
    okta_transport: httpx.AsyncBaseTransport | None = None,
    scim_transport: httpx.AsyncBaseTransport | None = None,
    lock: RunLock | None = None,
) -> tuple[ExitCode, str | None]:
    """One cycle under the run lock. Returns the exit code and the error, if any.

    Raises :class:`~syncd.errors.LockHeldError` when another run holds the lock and
    :class:`~syncd.errors.ConfigError` for configuration problems.
    """
    credentials = load_credentials(settings)
    own_lock = lock is None
    lock = lock or RunLock(settings.sync.state_db)
    if own_lock:
        lock.acquire()
    try:
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
                engine = Engine(settings, source=reader, target=scim, store=store)
                result = await engine.run_cycle(mode)
                if scim.patch_form and scim.patch_form != patch_form:
                    await store.set_meta(PATCH_FORM_KEY, scim.patch_form)
                return result.exit_code, result.error
    finally:
        if own_lock:
            lock.release()


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
