"""``syncd check``: "Test API Credentials" for both ends, one line per check.

Okta: reachable, credentials accepted, the app found, the role attribute present in the app
user schema with an enumerated list that matches ``roles.catalog`` (differences are warnings),
and an admin role mapped (the Okta guide's warning: without one, admins can lock themselves
out). SCIM: reachable, ``/ServiceProviderConfig`` read, token accepted by
``GET /Users?startIndex=1&count=1``. Every line is PASS, WARN or FAIL with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from syncd.app import open_okta, open_scim
from syncd.config import Settings, load_credentials, okta_auth_method
from syncd.errors import (
    AuthError,
    NotFoundError,
    OktaError,
    RemoteError,
    ScimUnreachableError,
)
from syncd.okta.reader import OktaReader
from syncd.roles import RoleCatalog
from syncd.scim.client import ScimClient
from syncd.scim.resources import USER_SCHEMA

Status = Literal["PASS", "WARN", "FAIL"]


@dataclass(frozen=True)
class Check:
    status: Status
    end: str  # "okta", "roles" or "scim"
    message: str

    def __str__(self) -> str:
        return f"{self.status}  {self.end:5}  {self.message}"


def _unreachable(error: RemoteError) -> bool:
    """True when the request never got an HTTP answer (connection, DNS, TLS, timeout)."""
    return error.status is None


async def check_okta(settings: Settings) -> list[Check]:
    checks: list[Check] = []
    okta = settings.okta
    credentials = load_credentials(settings)
    quick = settings.model_copy(update={"okta": okta.model_copy(update={"max_attempts": 2})})
    method = (
        f"OAuth client {okta.client_id}" if okta_auth_method(settings) == "oauth" else "API token"
    )
    async with open_okta(quick, credentials) as reader:
        try:
            app = await reader.app()
        except RemoteError as exc:
            if _unreachable(exc):
                return [Check("FAIL", "okta", f"cannot reach {okta.org_url}: {exc}")]
            checks.append(Check("PASS", "okta", f"reachable: {okta.org_url}"))
            if isinstance(exc, AuthError):
                return [
                    *checks,
                    Check("FAIL", "okta", f"credentials refused ({method}): {_okta(exc)}"),
                ]
            checks.append(Check("PASS", "okta", f"credentials accepted ({method})"))
            if isinstance(exc, NotFoundError):
                return [
                    *checks,
                    Check("FAIL", "okta", f"app {okta.app_id} not found (check okta.app_id)"),
                ]
            return [*checks, Check("FAIL", "okta", f"app {okta.app_id}: {exc}")]
        checks.append(Check("PASS", "okta", f"reachable: {okta.org_url}"))
        checks.append(Check("PASS", "okta", f"credentials accepted ({method})"))
        label = app.get("label") or app.get("name") or okta.app_id
        status = app.get("status", "ACTIVE")
        checks.append(
            Check(
                "PASS" if status == "ACTIVE" else "WARN",
                "okta",
                f"app {okta.app_id} found: {label!r} ({status})",
            )
        )
        checks.extend(await _check_schema(settings, reader))
    return checks


def _okta(error: RemoteError) -> str:
    if isinstance(error, OktaError) and error.error_summary:
        return f"{error.error_code} {error.error_summary}"
    return str(error)


async def _check_schema(settings: Settings, reader: OktaReader) -> list[Check]:
    attribute = settings.roles.attribute
    catalog = RoleCatalog(settings.roles.catalog)
    try:
        schema = await reader.app_user_schema()
    except RemoteError as exc:
        return [
            Check(
                "WARN",
                "okta",
                f"cannot read the app user schema ({_okta(exc)}); with OAuth, grant the "
                "app okta.schemas.read and add it to okta.scopes to check the role attribute",
            )
        ]
    found = schema.custom.get(attribute)
    if found is None:
        names = ", ".join(sorted(schema.custom)) or "none"
        return [
            Check(
                "FAIL",
                "okta",
                f"role attribute {attribute!r} is not in the app user schema "
                f"(its attributes: {names}); check roles.attribute",
            )
        ]
    okta_roles = found.roles()
    scope = "per person only" if found.scope == "SELF" else "group-settable"
    checks = [
        Check(
            "PASS",
            "okta",
            f"role attribute {attribute!r} in the app user schema ({scope}), "
            f"{len(okta_roles)} roles in its enumerated list",
        )
    ]
    if found.external_namespace and found.external_namespace != USER_SCHEMA:
        checks.append(
            Check(
                "WARN",
                "okta",
                f"the attribute's external namespace is {found.external_namespace!r}; "
                f"Vanta/WorkOS expect {USER_SCHEMA!r}",
            )
        )
    only_okta = {rid: t for rid, t in okta_roles.items() if rid not in catalog.by_id}
    only_catalog = {rid: n for rid, n in catalog.by_id.items() if rid not in okta_roles}
    renamed = {
        rid: (catalog.by_id[rid], title)
        for rid, title in okta_roles.items()
        if rid in catalog.by_id and title != catalog.by_id[rid]
    }
    if only_okta:
        listed = ", ".join(f"{t} ({rid})" for rid, t in only_okta.items())
        checks.append(
            Check("WARN", "roles", f"in Okta's enumerated list but not in roles.catalog: {listed}")
        )
    if only_catalog:
        listed = ", ".join(f"{n} ({rid})" for rid, n in only_catalog.items())
        checks.append(
            Check("WARN", "roles", f"in roles.catalog but not in Okta's enumerated list: {listed}")
        )
    for rid, (name, title) in renamed.items():
        checks.append(
            Check("WARN", "roles", f"role {rid} is {name!r} in roles.catalog but {title!r} in Okta")
        )
    if not (only_okta or only_catalog or renamed):
        checks.append(Check("PASS", "roles", "roles.catalog matches Okta's enumerated list"))
    admin_ids = catalog.ids(settings.roles.admin)
    if not admin_ids:
        checks.append(
            Check(
                "WARN",
                "roles",
                "no admin role mapped (roles.admin is empty): map at least the Admin role, "
                "or admins can lock themselves out",
            )
        )
    elif not admin_ids & set(okta_roles):
        checks.append(
            Check(
                "WARN",
                "roles",
                "no role of roles.admin is in Okta's enumerated list: nobody can be granted "
                "an admin role, and admins can lock themselves out",
            )
        )
    else:
        names = ", ".join(sorted(catalog.name(r) or r for r in admin_ids))
        checks.append(Check("PASS", "roles", f"admin role mapped: {names}"))
    return checks


async def check_scim(settings: Settings) -> list[Check]:
    checks: list[Check] = []
    url = settings.scim.base_url
    credentials = load_credentials(settings)
    quick = settings.model_copy(
        update={"scim": settings.scim.model_copy(update={"max_attempts": 2})}
    )
    async with open_scim(quick, credentials) as scim:
        try:
            config = await scim.service_provider_config()
        except ScimUnreachableError as exc:
            return [Check("FAIL", "scim", f"cannot reach {url}: {exc}")]
        except RemoteError as exc:
            if _unreachable(exc):
                return [Check("FAIL", "scim", f"cannot reach {url}: {exc}")]
            checks.append(Check("PASS", "scim", f"reachable: {url}"))
            checks.append(Check("FAIL", "scim", f"/ServiceProviderConfig not readable: {exc}"))
        else:
            checks.append(Check("PASS", "scim", f"reachable: {url}"))
            checks.append(
                Check("PASS", "scim", f"/ServiceProviderConfig read ({_features(config)})")
            )
            if not (config.get("patch") or {}).get("supported", True):
                checks.append(
                    Check(
                        "WARN",
                        "scim",
                        "the server says PATCH is not supported: "
                        "deactivations and group members need it",
                    )
                )
        checks.append(await _probe_users(scim))
    return checks


def _features(config: dict[str, object]) -> str:
    names = []
    for feature in ("patch", "filter", "bulk", "etag", "sort"):
        value = config.get(feature)
        if isinstance(value, dict):
            names.append(f"{feature} {'yes' if value.get('supported') else 'no'}")
    return ", ".join(names) or "no features listed"


async def _probe_users(scim: ScimClient) -> Check:
    try:
        body = await scim.probe_users()
    except AuthError as exc:
        return Check("FAIL", "scim", f"token refused: {exc}")
    except RemoteError as exc:
        return Check("FAIL", "scim", f"GET /Users?startIndex=1&count=1 failed: {exc}")
    total = body.get("totalResults", "?")
    return Check(
        "PASS", "scim", f"token accepted: GET /Users?startIndex=1&count=1 works ({total} users)"
    )


async def run_checks(settings: Settings) -> list[Check]:
    return [*await check_okta(settings), *await check_scim(settings)]
