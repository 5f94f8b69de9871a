"""Okta authentication: an SSWS API token, or OAuth 2.0 for a service app.

OAuth uses the client-credentials grant with ``private_key_jwt``: syncd signs a short-lived JWT
with the app's private key (PEM or JWK, RSA or EC) and trades it at ``/oauth2/v1/token`` for an
access token. The access token is cached until five minutes before it expires, and renewed once
if Okta answers 401 anyway.

Neither class ever shows its secret: not in ``repr``, not in an exception message.
"""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any, Protocol

import anyio
import jwt
from pydantic import SecretStr

from syncd.clock import Clock
from syncd.errors import ConfigError, OktaAuthError, OktaRequestRejected
from syncd.log import register_secret

if TYPE_CHECKING:
    from syncd.okta.http import OktaHttp

TOKEN_PATH = "/oauth2/v1/token"  # noqa: S105 (a path, not a secret)
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
RENEW_BEFORE_EXPIRY = 300.0


class OktaAuth(Protocol):
    """Produces the ``Authorization`` header for Okta API requests."""

    async def authorization(self, http: OktaHttp) -> str: ...

    def invalidate(self) -> bool:
        """Forget a cached credential after a 401. True if a retry may now succeed."""
        ...


class SSWSAuth:
    """``Authorization: SSWS <API token>``."""

    def __init__(self, token: SecretStr) -> None:
        self._token = token
        register_secret(token.get_secret_value())

    async def authorization(self, http: OktaHttp) -> str:
        return f"SSWS {self._token.get_secret_value()}"

    def invalidate(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "SSWSAuth(token=**********)"


class PrivateKeyJWTAuth:
    """OAuth 2.0 client credentials with a ``private_key_jwt`` client assertion."""

    def __init__(
        self,
        *,
        org_url: str,
        client_id: str,
        private_key: SecretStr,
        scopes: list[str],
        clock: Clock,
        key_id: str | None = None,
    ) -> None:
        self._org_url = org_url.rstrip("/")
        self.client_id = client_id
        self._scopes = scopes
        self._clock = clock
        register_secret(private_key.get_secret_value())
        self._key, self._algorithm, jwk_kid = _load_private_key(private_key)
        self._key_id = key_id or jwk_kid
        self._access_token: str | None = None
        self._expires_at = 0.0
        self._lock = anyio.Lock()
        self.tokens_fetched = 0

    def __repr__(self) -> str:
        return f"PrivateKeyJWTAuth(client_id={self.client_id!r}, private_key=**********)"

    def _assertion(self) -> str:
        now = int(self._clock.time())
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": f"{self._org_url}{TOKEN_PATH}",
            "iat": now,
            "exp": now + 300,
            "jti": uuid.uuid4().hex,
        }
        headers = {"kid": self._key_id} if self._key_id else None
        return jwt.encode(claims, self._key, algorithm=self._algorithm, headers=headers)

    async def authorization(self, http: OktaHttp) -> str:
        async with self._lock:
            if self._access_token is None or self._clock.time() >= self._expires_at:
                await self._fetch(http)
            assert self._access_token is not None
            return f"Bearer {self._access_token}"

    async def _fetch(self, http: OktaHttp) -> None:
        form = {
            "grant_type": "client_credentials",
            "scope": " ".join(self._scopes),
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": self._assertion(),
        }
        try:
            data = await http.post_form(TOKEN_PATH, form)
        except OktaRequestRejected as exc:
            # The token endpoint refuses with 400 (invalid_scope, invalid_client, DPoP ...):
            # for syncd that is a refusal of its credentials.
            hint = ""
            if exc.error_code == "use_dpop_nonce" or "dpop" in str(exc).lower():
                hint = (
                    "; this service app requires DPoP, which syncd does not support: turn off "
                    "'Require Demonstrating Proof of Possession' for it in Okta"
                )
            raise OktaAuthError(
                f"{exc}{hint}",
                status=exc.status,
                method=exc.method,
                url=exc.url,
                error_code=exc.error_code,
                error_summary=exc.error_summary,
                error_id=exc.error_id,
            ) from None
        token = data.get("access_token") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token:
            raise OktaAuthError(
                "Okta's token endpoint answered without an access_token", url=TOKEN_PATH
            )
        try:
            lifetime = float(data.get("expires_in", 3600))
        except (TypeError, ValueError):
            lifetime = 3600.0
        register_secret(token)
        self._access_token = token
        self._expires_at = self._clock.time() + max(0.0, lifetime - RENEW_BEFORE_EXPIRY)
        self.tokens_fetched += 1

    def invalidate(self) -> bool:
        self._access_token = None
        return True


def _load_private_key(secret: SecretStr) -> tuple[Any, str, str | None]:
    """Load a PEM or JWK private key. Returns (key, JWT algorithm, the JWK's kid)."""
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    text = secret.get_secret_value().strip()
    kid: str | None = None
    try:
        if text.startswith("{"):
            jwk = json.loads(text)
            kid = jwk.get("kid")
            if jwk.get("kty") == "EC":
                key: Any = jwt.algorithms.ECAlgorithm.from_jwk(jwk)
            else:
                key = jwt.algorithms.RSAAlgorithm.from_jwk(jwk)
        else:
            key = load_pem_private_key(text.encode(), password=None)
    except Exception:
        # Never chain the original exception: its text may quote the key material.
        raise ConfigError(
            "is not a readable private key (PEM or JWK, RSA or EC, unencrypted)",
            key="okta.private_key_file",
        ) from None
    if isinstance(key, rsa.RSAPrivateKey):
        return key, "RS256", kid
    if isinstance(key, ec.EllipticCurvePrivateKey):
        algorithm = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}.get(
            key.curve.name
        )
        if algorithm is None:
            raise ConfigError(
                f"EC keys must use P-256, P-384 or P-521, not {key.curve.name}",
                key="okta.private_key_file",
            )
        return key, algorithm, kid
    raise ConfigError("must be an RSA or EC private key", key="okta.private_key_file")
