"""Schema-driven fuzzing of the local stack with schemathesis, using the description the app itself serves.

The runner (`python -m devstack.run --port 0`: Azurite in memory, the Graph simulator, the functions behind a real
port) is started as tests/e2e/test_local_runner.py does and the schema is loaded from `{base}/api/jit/openapi.json`.
First one grant is followed through its life (request, poll, TAP, revoke, poll) so that real grants are checked
against the schema; then every operation gets its documented examples plus a bounded, derandomized set of
generated requests, valid ones (POSITIVE) and invalid ones (NEGATIVE). Every answer must

  * not be a server error: no 5xx, except where a 5xx is the documented answer to an upstream condition
    (Graph refusing the app or unavailable, on GET /api/jit/tenants/{tenantId}/roles: 502/503 problem details of
    the Graph kinds; storage down, on GET /api/health) — and never a 500;
  * conform to the schema the description documents for its status code (response_schema_conformance).

Nothing is skipped as destructive: the runner's storage lives in memory and dies with it, so writes (grants,
policies, templates, revocations) harm nothing. The writers whose effects change what other operations see (a
fuzzed default policy, deleted templates) run last.

Runs in the normal pytest run (no marker): about 20 operations, each with its examples + 12 valid + 6 invalid
requests, some 400 requests: 25-35 s on two cores including the runner's start.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.specs.openapi.checks import response_schema_conformance

from jit.api.openapi import ROUTES, openapi_document

ROOT = Path(__file__).resolve().parents[2]
# Bounded for the normal run; JIT_FUZZ_EXAMPLES=200 pytest tests/e2e/test_fuzz_api.py digs deeper.
POSITIVE_EXAMPLES = int(os.environ.get("JIT_FUZZ_EXAMPLES", "12"))
NEGATIVE_EXAMPLES = max(POSITIVE_EXAMPLES // 2, 1)
# Writers whose effects change what other operations see go last (a fuzzed default policy denies later requests).
LAST = ("put_policy", "put_template", "delete_template")
# 5xx answers that are documented upstream conditions, not server errors: operation -> the problem types allowed.
UPSTREAM_PROBLEMS = {
    "list_tenant_roles": {"urn:jit:problem:graph-denied", "urn:jit:problem:graph-unavailable", "urn:jit:problem:graph-error"},
}
ROUTE_BY_ID = {r.operation_id: r for r in ROUTES}


@dataclass
class Fuzz:
    """Calls operations of the served schema, checks every answer, and collects what failed."""

    base: str
    schema: Any
    failures: list[str] = field(default_factory=list)
    seen: dict[str, Counter[int]] = field(default_factory=dict)

    def operation(self, operation_id: str) -> Any:
        route = ROUTE_BY_ID[operation_id]
        found = self.schema.find_operation_by_label(f"{route.method} {route.path}")
        assert found is not None, f"{route.method} {route.path} is not in the served description"
        return found

    def run(self, operation_id: str, case: Any) -> Any:
        response = case.call(base_url=self.base, timeout=15)
        self.seen.setdefault(operation_id, Counter())[response.status_code] += 1
        checks = [_no_server_error(operation_id), response_schema_conformance]
        try:
            case.validate_response(response, checks=checks)
        except FailureGroup as found:
            self.failures += [_describe(operation_id, f, case) for f in found.exceptions]
        except Failure as failure:
            self.failures.append(_describe(operation_id, failure, case))
        return response

    def call(self, operation_id: str, **parts: Any) -> Any:
        return self.run(operation_id, self.operation(operation_id).Case(**parts))

    def explore(self, operation_id: str) -> None:
        operation = self.operation(operation_id)
        for strategy in operation.get_strategies_from_examples():
            self._generate(operation_id, strategy, 1)
        self._generate(operation_id, operation.as_strategy(generation_mode=GenerationMode.POSITIVE), POSITIVE_EXAMPLES)
        self._generate(operation_id, operation.as_strategy(generation_mode=GenerationMode.NEGATIVE), NEGATIVE_EXAMPLES)

    def _generate(self, operation_id: str, strategy: st.SearchStrategy[Any], count: int) -> None:
        @settings(
            max_examples=count,
            derandomize=True,
            database=None,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=strategy)
        def generated(case: Any) -> None:
            self.run(operation_id, case)

        # Unsatisfiable: nothing to generate, e.g. no invalid request exists for an operation without parameters or body.
        with contextlib.suppress(Unsatisfiable):
            generated()


def _no_server_error(operation_id: str) -> Callable[..., None]:
    """not_a_server_error, except for the 5xx problem kinds an operation documents as upstream conditions."""
    allowed = UPSTREAM_PROBLEMS.get(operation_id, set())

    def no_server_error(ctx: Any, response: Any, case: Any) -> None:
        if operation_id == "health" and response.status_code == 503:
            return  # storage does not answer: what this operation exists to say (its body is still checked)
        if response.status_code == 500 or _problem_type(response) not in allowed:
            not_a_server_error(ctx, response, case)

    return no_server_error


def _problem_type(response: Any) -> str | None:
    try:
        return str(json.loads(response.content)["type"])
    except (ValueError, KeyError, TypeError):
        return None


def _describe(operation_id: str, failure: Failure, case: Any) -> str:
    return f"{operation_id}: {failure.title}\n{failure.message}\n{case.as_curl_command()}"[:3000]


def follow_a_grant(fuzz: Fuzz) -> None:
    """One grant through its life, every answer checked: requested (202), polled to Active, its TAP taken once,
    revoked (Expiring, 202), polled to Revoked — so real grants, not only 404s and 400s, meet the schema."""
    example = ROUTE_BY_ID["create_request"].body_example
    created = fuzz.call("create_request", body=example, media_type="application/json")
    assert created.status_code == 202, created.text
    grant_id = created.json()["id"]

    def settled() -> dict[str, Any]:
        deadline = time.monotonic() + 30
        answer = fuzz.call("get_request", path_parameters={"id": grant_id})
        while answer.status_code == 202 and time.monotonic() < deadline:
            time.sleep(0.2)
            answer = fuzz.call("get_request", path_parameters={"id": grant_id})
        assert answer.status_code == 200, answer.text
        grant: dict[str, Any] = answer.json()
        return grant

    assert settled()["status"] == "Active"
    assert fuzz.call("get_credentials", path_parameters={"id": grant_id}).status_code == 200
    assert fuzz.call("get_credentials", path_parameters={"id": grant_id}).status_code == 410
    fuzz.call("list_requests", query={"tenantId": example["tenantId"]})
    fuzz.call("list_tenant_roles", path_parameters={"tenantId": example["tenantId"]})
    fuzz.call("get_policy", path_parameters={"scope": example["tenantId"]})
    revoked = fuzz.call(
        "revoke_request", path_parameters={"id": grant_id}, body={"reason": "work done"}, media_type="application/json"
    )
    assert revoked.status_code == 202, revoked.text
    assert settled()["status"] == "Revoked"
    fuzz.call("monthly_report", query={"tenantId": example["tenantId"], "month": time.strftime("%Y-%m", time.gmtime())})


def test_fuzzing_finds_no_server_error_and_every_answer_matches_its_schema(runner: str) -> None:
    started = time.monotonic()
    schema = schemathesis.openapi.from_url(f"{runner}/api/jit/openapi.json")
    schema.config.update(base_url=runner)
    fuzz = Fuzz(runner, schema)
    follow_a_grant(fuzz)
    for route in sorted(ROUTES, key=lambda r: LAST.index(r.operation_id) + 1 if r.operation_id in LAST else 0):
        fuzz.explore(route.operation_id)
    calls = sum(sum(c.values()) for c in fuzz.seen.values())
    print(f"\nfuzzed {len(fuzz.seen)} operations with {calls} requests in {time.monotonic() - started:.1f}s")
    for operation_id, statuses in fuzz.seen.items():
        print(f"  {operation_id}: " + ", ".join(f"{status} x{n}" for status, n in sorted(statuses.items())))
    assert set(fuzz.seen) == set(ROUTE_BY_ID), "every operation was called"
    assert not fuzz.failures, f"{len(fuzz.failures)} failures:\n\n" + "\n\n".join(fuzz.failures[:20])


def test_the_served_description_is_the_built_one(runner: str) -> None:
    served = httpx.get(f"{runner}/api/jit/openapi.json", timeout=10)
    assert served.status_code == 200
    assert served.headers["content-type"].startswith("application/json")
    assert served.json() == openapi_document(runner)
