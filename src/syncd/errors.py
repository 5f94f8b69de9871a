"""The errors syncd raises, typed by what the caller should do about them.

Every error that talks to a remote system falls in one of a few kinds, whichever end it comes
from (after authentik's outgoing sync):

* :class:`TransientError`: try again later (5xx, timeouts, dropped connections, 429 after the
  retries ran out);
* :class:`AuthError`: the credentials were refused (401/403); retrying will not help;
* :class:`NotFoundError`: the resource is gone (404);
* :class:`ObjectExistsError`: a create collided with an existing resource (409);
* :class:`RequestRejected`: any other refusal of a well-formed request (400, 413, 422, ...).

Okta errors (:class:`OktaError`) and SCIM errors (:class:`ScimError`) subclass both their side
and their kind, so ``except NotFoundError`` works for either end.

No error message ever contains a token or a key: messages are built from status codes, error
codes and summaries, resource ids and URLs only (syncd never puts a credential in a URL).
"""

from __future__ import annotations


class SyncdError(Exception):
    """Base of every error syncd raises on purpose."""


class ConfigError(SyncdError):
    """The configuration is invalid. The message names the key and the problem."""

    def __init__(self, message: str, *, key: str | None = None, source: str | None = None) -> None:
        self.key = key
        self.source = source
        parts = []
        if key:
            parts.append(key)
        parts.append(message)
        text = ": ".join(parts)
        if source:
            text += f" (in {source})"
        super().__init__(text)


class LockHeldError(SyncdError):
    """Another run holds the lock on the checkpoint database."""


class RemoteError(SyncdError):
    """An error reported by, or while talking to, Okta or the SCIM server."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        method: str | None = None,
        url: str | None = None,
    ) -> None:
        self.status = status
        self.method = method
        self.url = url
        super().__init__(message)


class TransientError(RemoteError):
    """Worth retrying later: the remote end was down, slow, overloaded or cut the connection."""


class AuthError(RemoteError):
    """The remote end refused our credentials (401) or our rights (403)."""


class NotFoundError(RemoteError):
    """The resource does not exist (404)."""


class ObjectExistsError(RemoteError):
    """A create collided with an existing resource (409)."""


class RequestRejected(RemoteError):
    """The remote end refused a request for a reason other than the above (400, 413, ...)."""


# --- Okta -----------------------------------------------------------------------------------


class OktaError(RemoteError):
    """An error from the Okta API, with Okta's ``errorCode``, ``errorSummary``, ``errorId``."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        method: str | None = None,
        url: str | None = None,
        error_code: str | None = None,
        error_summary: str | None = None,
        error_id: str | None = None,
    ) -> None:
        self.error_code = error_code
        self.error_summary = error_summary
        self.error_id = error_id
        super().__init__(message, status=status, method=method, url=url)


class OktaTransientError(OktaError, TransientError):
    """Okta was unreachable, failing or rate-limiting us, and the retries ran out."""


class OktaAuthError(OktaError, AuthError):
    """Okta refused the API token or the OAuth client (401), or its rights (403)."""


class OktaNotFoundError(OktaError, NotFoundError):
    """The Okta resource (app, group, user) does not exist."""


class OktaRequestRejected(OktaError, RequestRejected):
    """Okta refused the request (400 and other 4xx)."""


class OktaRecordError(OktaError):
    """One record in an Okta response is malformed: the message names the record and the field."""

    def __init__(self, message: str, *, kind: str, record_id: str | None) -> None:
        self.kind = kind
        self.record_id = record_id
        super().__init__(message)


# --- SCIM -----------------------------------------------------------------------------------


class ScimError(RemoteError):
    """An error from the SCIM server. Carries the SCIM ``scimType`` and ``detail`` when sent."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        method: str | None = None,
        url: str | None = None,
        scim_type: str | None = None,
        detail: str | None = None,
    ) -> None:
        self.scim_type = scim_type
        self.detail = detail
        super().__init__(message, status=status, method=method, url=url)


class ScimTransientError(ScimError, TransientError):
    """The SCIM server was unreachable, failing or rate-limiting us, and the retries ran out.

    ``maybe_applied``: the request reached the server and may have been carried out (a timeout
    waiting for the answer, a dropped connection, a 500): a create must look before it retries.
    """

    maybe_applied: bool = False


class ScimUnreachableError(ScimTransientError):
    """The SCIM server could not be reached at all (connection refused, DNS, TLS)."""


class ScimAuthError(ScimError, AuthError):
    """The SCIM server refused our bearer token (401) or our rights (403)."""


class ScimNotFoundError(ScimError, NotFoundError):
    """The SCIM resource does not exist (any more)."""


class ScimConflictError(ScimError, ObjectExistsError):
    """The SCIM server already holds a resource with that userName or displayName."""


class ScimRequestRejected(ScimError, RequestRejected):
    """The SCIM server refused the request (400, 413, 422, ...)."""
