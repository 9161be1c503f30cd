"""Graph's errors, folded into the service's `DirectoryError` family."""

from __future__ import annotations

from typing import Any

from jit.services.access_backend import (
    AlreadyExists,
    Denied,
    DirectoryError,
    NotFoundInDirectory,
    ReferenceNotFound,
    Rejected,
    Throttled,
    Unavailable,
)

# Graph says "already there" in several ways, none with a dedicated code; these phrases are Graph's own.
_ALREADY_EXISTS = (
    "already exist",
    "conflicting object",
    "a conflicting object with one or more of the specified property values is present",
)
# How Graph words a 400 for a write that names an object it does not know (yet): right after a create this is
# replication lag, like the 404 a read gets (devstack/graph_simulator/BEHAVIOUR.md has the sources).
_REFERENCE_MISSING = (
    "invalid object identifier",
    "does not exist or one of its queried reference-property objects are not present",
    "invalid value specified for property 'principalid'",  # a role assignment naming a principal not yet replicated
    "the subject is not found",  # PIM's SubjectNotFound for a principal its replica has not seen yet
)


def classify(status: int, code: str, message: str, request_id: str = "", retry_after: str | None = None) -> DirectoryError:
    details: dict[str, Any] = {"code": code, "status": status, "request_id": request_id}
    lowered = message.lower()
    if status == 429:
        return Throttled(message or "throttled", retry_after=_seconds(retry_after), **details)
    if status >= 500 or status == 408:
        return Unavailable(message or f"Graph answered {status}", **details)
    if status in (401, 403):
        return Denied(message or "access denied", **details)
    if status == 404:
        return NotFoundInDirectory(message or "not found", **details)
    if status in (400, 409) and any(phrase in lowered for phrase in _ALREADY_EXISTS):
        return AlreadyExists(message, **details)
    if status == 400 and any(phrase in lowered for phrase in _REFERENCE_MISSING):
        return ReferenceNotFound(message, **details)
    return Rejected(message or f"Graph answered {status}", **details)


def from_transport_error(error: BaseException) -> DirectoryError:
    """What a failure to get an answer at all means: the connection failed (try later), or Entra refused the app a
    token for the tenant (no consent, app not in the tenant, wrong credential: as permanent for the grant as a 401)."""
    import httpx
    from azure.core.exceptions import ClientAuthenticationError

    if isinstance(error, DirectoryError):
        return error
    if isinstance(error, httpx.TransportError):
        return Unavailable(f"connection to Graph failed: {type(error).__name__}")
    if isinstance(error, ClientAuthenticationError):
        # The message carries Entra's AADSTS code.
        return Denied(f"no token for the tenant: {str(error).splitlines()[0][:300]}", code="TokenRequestFailed")
    raise error


def _seconds(value: str | None) -> float:
    try:
        return max(float(value), 0.0) if value else 0.0
    except ValueError:
        return 0.0
