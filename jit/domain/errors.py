"""The service's own error family. Adapters translate SDK errors into these; the HTTP layer maps them to answers."""

from __future__ import annotations

from dataclasses import dataclass


class JitError(Exception):
    """Base of every error the product raises on purpose."""


@dataclass(frozen=True)
class FieldError:
    """One problem with one field of a request, named by its path in the request body (camelCase, dotted)."""

    field: str
    message: str


class ValidationFailed(JitError):
    """The request is invalid; nothing was written."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = errors


class NotFound(JitError):
    """The thing does not exist, or the caller may not see it (both answer alike)."""


class Conflict(JitError):
    """The request conflicts with what is stored (e.g. an Idempotency-Key reused with another body)."""


class IllegalTransition(Conflict):
    """A grant was asked to move to a state its current state does not lead to."""


class ConcurrencyConflict(JitError):
    """Someone else kept changing the record; the update gave up after several re-reads."""


class Unauthenticated(JitError):
    """The caller could not be identified (a malformed principal)."""


class Forbidden(JitError):
    """The caller is known but its app roles do not allow this."""


class PolicyDenied(JitError):
    """The request is outside the tenant's policy; `violations` name the rules."""

    def __init__(self, violations: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{rule}: {message}" for rule, message in violations))
        self.violations = violations
