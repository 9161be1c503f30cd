"""The policy that applies to a tenant: its own, else the default one, else the built-in default. Policies are read
on every request and at every step of a grant, and change rarely: each process keeps them a short while (a save in
this process is seen at once; one made elsewhere within `ttl_seconds`)."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime
from typing import Any, Protocol

from jit.domain.policy import Policy
from jit.domain.policy_document import PolicyBody, to_policy

DEFAULT_SCOPE = "default"


class PolicyDocuments(Protocol):
    def current(self, scope: str) -> tuple[dict[str, Any], int] | None: ...

    def save(self, scope: str, document: dict[str, Any], *, by: str, at: datetime, expected_version: int | None) -> int: ...

    def history(self, scope: str) -> list[dict[str, Any]]: ...


class Policies:
    def __init__(self, documents: PolicyDocuments, ttl_seconds: float = 30.0) -> None:
        self._documents = documents
        self._ttl = ttl_seconds
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, Policy | None]] = {}

    def for_scope(self, scope: str) -> Policy | None:
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(scope)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        stored = self._documents.current(scope)
        policy = None
        if stored is not None:
            document, version = stored
            policy = to_policy(PolicyBody.model_validate_json(json.dumps(document)), version=version, scope=scope)
        with self._lock:
            self._cache[scope] = (now, policy)
        return policy

    def effective(self, tenant_id: str) -> Policy:
        return self.for_scope(tenant_id) or self.for_scope(DEFAULT_SCOPE) or Policy()

    def save(self, scope: str, body: PolicyBody, *, by: str, at: datetime, expected_version: int | None) -> Policy:
        document = body.model_dump(mode="json", exclude_none=True)
        version = self._documents.save(scope, document, by=by, at=at, expected_version=expected_version)
        with self._lock:
            self._cache.pop(scope, None)
        return to_policy(body, version=version, scope=scope)

    def history(self, scope: str) -> list[dict[str, Any]]:
        return self._documents.history(scope)
