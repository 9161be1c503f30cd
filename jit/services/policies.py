"""The policy that applies to a tenant: its own, else the default one, else the built-in default."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Protocol

from jit.domain.errors import PolicyDenied
from jit.domain.policy import Policy, PolicyViolation
from jit.domain.policy_document import PolicyBody, to_policy
from jit.domain.request import GrantRequest

DEFAULT_SCOPE = "default"


class PolicyDocuments(Protocol):
    def current(self, scope: str) -> tuple[dict[str, Any], int] | None: ...

    def save(self, scope: str, document: dict[str, Any], *, by: str, at: datetime, expected_version: int | None) -> int: ...


class Policies:
    def __init__(self, documents: PolicyDocuments) -> None:
        self._documents = documents

    def for_scope(self, scope: str) -> Policy | None:
        stored = self._documents.current(scope)
        if stored is None:
            return None
        document, version = stored
        return to_policy(PolicyBody.model_validate_json(json.dumps(document)), version=version, scope=scope)

    def effective(self, tenant_id: str) -> Policy:
        return self.for_scope(tenant_id) or self.for_scope(DEFAULT_SCOPE) or Policy()

    def save(self, scope: str, body: PolicyBody, *, by: str, at: datetime, expected_version: int | None) -> Policy:
        document = body.model_dump(mode="json", exclude_none=True)
        version = self._documents.save(scope, document, by=by, at=at, expected_version=expected_version)
        return to_policy(body, version=version, scope=scope)


def enforce(policy: Policy, request: GrantRequest, *, open_grants_of_requester: int = 0) -> None:
    violations = policy.violations(request, open_grants_of_requester=open_grants_of_requester)
    if violations:
        raise PolicyDenied([(v.rule, v.message) for v in violations])


__all__ = ["DEFAULT_SCOPE", "Policies", "PolicyViolation", "enforce"]
