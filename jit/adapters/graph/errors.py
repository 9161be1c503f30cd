"""Graph's errors, folded into the service's `DirectoryError` family."""

from __future__ import annotations

from typing import Any

import httpx
from azure.core.exceptions import ClientAuthenticationError
from kiota_abstractions.api_error import APIError

from jit.services.directory import (
    AlreadyExists,
    Denied,
    DirectoryError,
    NotFoundInDirectory,
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
    return Rejected(message or f"Graph answered {status}", **details)


def from_exception(error: BaseException) -> DirectoryError:
    """The DirectoryError an SDK call raised, as one of ours."""
    if isinstance(error, DirectoryError):
        return error
    if isinstance(error, APIError):
        status = int(getattr(error, "response_status_code", 0) or 0)
        main = getattr(error, "error", None)
        code = str(getattr(main, "code", "") or "")
        message = str(getattr(main, "message", "") or getattr(error, "message", "") or "")
        inner = getattr(main, "inner_error", None)
        request_id = str(getattr(inner, "request_id", "") or "")
        headers = getattr(error, "response_headers", None) or {}
        retry_after = _header(headers, "Retry-After")
        return classify(status, code, message, request_id, retry_after)
    if isinstance(error, httpx.TransportError):
        return Unavailable(f"connection to Graph failed: {type(error).__name__}")
    if isinstance(error, ClientAuthenticationError):
        # Entra refused the app a token for the tenant (no consent, app not in the tenant, wrong credential):
        # as permanent for this grant as a 401 from Graph itself. The message carries Entra's AADSTS code.
        return Denied(f"no token for the tenant: {str(error).splitlines()[0][:300]}", code="TokenRequestFailed")
    raise error


def from_batch_item(status: int, headers: dict[str, str] | None, body: Any) -> DirectoryError:
    error = body.get("error", {}) if isinstance(body, dict) else {}
    inner = error.get("innerError") or error.get("innererror") or {}
    return classify(
        status,
        str(error.get("code", "")),
        str(error.get("message", "")),
        str(inner.get("request-id", "")),
        _header(headers or {}, "Retry-After"),
    )


def _header(headers: Any, name: str) -> str | None:
    try:
        items = headers.items()
    except AttributeError:
        return None
    for key, value in items:
        if key.lower() == name.lower():
            return ",".join(value) if isinstance(value, (list, set, tuple)) else str(value)
    return None


def _seconds(value: str | None) -> float:
    try:
        return max(float(value), 0.0) if value else 0.0
    except ValueError:
        return 0.0
