"""RFC 9457 problem details: the one place where the service's errors become HTTP answers."""

from __future__ import annotations

import json
import logging
from typing import Any

import azure.functions as func

from jit.domain.errors import (
    ConcurrencyConflict,
    Conflict,
    FieldError,
    Forbidden,
    JitError,
    NotFound,
    PolicyDenied,
    Unauthenticated,
    ValidationFailed,
)
from jit.services.access_backend import Denied, DirectoryError, NotFoundInDirectory, Throttled

log = logging.getLogger(__name__)


class TooLarge(JitError):
    """The body is larger than this API takes: nothing was read into it, nothing written."""


# Problem types are URNs: stable names that need no web page to exist (RFC 9457 allows any URI).
PROBLEM_BASE = "urn:jit:problem:"
_MEDIA_TYPE = "application/problem+json"


def problem(
    status: int,
    kind: str,
    title: str,
    detail: str,
    *,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
) -> func.HttpResponse:
    body: dict[str, Any] = {"type": PROBLEM_BASE + kind, "title": title, "status": status, "detail": detail}
    if errors and kind == "policy":
        body["errors"] = [{"rule": e.field, "detail": e.message} for e in errors]
    elif errors:
        body["errors"] = [{"field": e.field, "pointer": "#/" + e.field.replace(".", "/"), "detail": e.message} for e in errors]
    return func.HttpResponse(json.dumps(body), status_code=status, mimetype=_MEDIA_TYPE, headers=headers)


def invalid(errors: list[FieldError]) -> func.HttpResponse:
    detail = "; ".join(f"{e.field}: {e.message}" for e in errors)
    return problem(400, "validation", "The request is invalid", detail, errors=errors)


def from_error(error: Exception) -> func.HttpResponse:
    """The answer for an error a handler let through. Unexpected errors say nothing about internals."""
    if isinstance(error, ValidationFailed):
        return invalid(error.errors)
    if isinstance(error, PolicyDenied):
        body_errors = [FieldError(rule, message) for rule, message in error.violations]
        return problem(403, "policy", "The request is outside the policy", str(error), errors=body_errors)
    if isinstance(error, Forbidden):
        return problem(403, "forbidden", "Forbidden", str(error))
    if isinstance(error, Unauthenticated):
        challenge = 'Bearer error="invalid_token"' if "refused" in str(error) else "Bearer"
        return problem(401, "unauthenticated", "Unauthenticated", str(error), headers={"WWW-Authenticate": challenge})
    if isinstance(error, TooLarge):
        return problem(413, "too-large", "Too large", str(error))
    if isinstance(error, NotFound):
        return problem(404, "not-found", "Not found", str(error))
    if isinstance(error, Conflict):
        return problem(409, "conflict", "Conflict", str(error))
    if isinstance(error, DirectoryError):
        return _directory_problem(error)
    if isinstance(error, ConcurrencyConflict):
        return problem(503, "busy", "Try again", str(error), headers={"Retry-After": "1"})
    answered = _product_problem(error)
    if answered is not None:
        return answered
    if isinstance(error, JitError):
        log.error("unhandled product error: %s", type(error).__name__)
        return problem(500, "internal", "Internal error", type(error).__name__)
    log.exception("unexpected error")
    return problem(500, "internal", "Internal error", "an unexpected error occurred; it has been logged")


def _product_problem(error: Exception) -> func.HttpResponse | None:
    """Errors of particular services, each with the answer it means."""
    from jit.api.identity import SignInUnavailable
    from jit.services.credentials import CredentialGone, CredentialNotReady, CredentialUnreadable

    if isinstance(error, CredentialGone):
        return problem(410, "gone", "Gone", str(error))
    if isinstance(error, CredentialNotReady):
        headers = {"Retry-After": "5"} if error.moving else None
        return problem(409, "not-issued", "Not issued", str(error), headers=headers)
    if isinstance(error, CredentialUnreadable):
        log.error("ALERT %s", error)
        return problem(503, "credential-unreadable", "The credential is kept but can not be opened", str(error))
    if isinstance(error, SignInUnavailable):
        return problem(503, "sign-in-unavailable", "Sign-in is unavailable", str(error), headers={"Retry-After": "5"})
    return None


def _directory_problem(error: DirectoryError) -> func.HttpResponse:
    """Graph's refusal, passed on with Graph's code and request id (what Microsoft support asks for)."""
    detail = f"Microsoft Graph: {error.message}" + (f" (code {error.code}, request-id {error.request_id})" if error.code else "")
    if isinstance(error, Denied):
        return problem(502, "graph-denied", "Graph refused the app in this tenant (consent or permission missing)", detail)
    if isinstance(error, NotFoundInDirectory):
        return problem(404, "not-found", "Not found in the tenant", detail)
    if error.transient:
        wait = int(error.retry_after) if isinstance(error, Throttled) and error.retry_after else 30
        return problem(
            503, "graph-unavailable", "Graph is unavailable, try again", detail, headers={"Retry-After": str(max(wait, 1))}
        )
    return problem(502, "graph-error", "Graph refused the request", detail)
