"""Schema-driven fuzzing of the local stack with schemathesis, using the description the app itself serves.

The runner (`python -m devstack.run --port 0`: Azurite in memory, the Graph simulator, a local OpenID issuer, the
functions behind a real port) is started as tests/e2e/conftest.py does and the schema is loaded from
`{base}/api/jit/openapi.json`. Every call authenticates as the description says its path wants: people's paths
(`/api/jit/...`) with a bearer token the local issuer gave a demo person, `/api/svc/...` with the runner's function
key, public paths with nothing.

First grants are followed through their lives (a request, its pass, an extension, a revocation; a request that needs
approval, approved, then an extension that needs it too, denied; a machine's request) so that real grants, inboxes,
reports and audit lines, not only 404s and 400s, meet the schema. Then every operation gets its documented examples
plus a bounded, derandomized set of generated requests, valid ones (POSITIVE) and invalid ones (NEGATIVE); the
function-key twin of an operation (the same handler) gets fewer. Every answer must

  * not be a server error: no 5xx, except where a 5xx is the documented answer to an upstream condition
    (the directory refusing the app or unavailable, on the tenant's roles and groups: 502/503 problem details of
    the Graph kinds; storage down, on GET /api/health) — and never a 500;
  * have a documented status code and media type, and conform to the schema documented for them
    (status_code_conformance, content_type_conformance, response_schema_conformance); each line of the audit
    trail (newline-delimited JSON) conforms to the item schema the description names.

Nothing is skipped as destructive: the runner's storage lives in memory and dies with it, so writes (grants,
policies, templates, channels, tenants) harm nothing. The writers whose effects change what other operations see (a
fuzzed policy, deleted templates, a reconfigured tenant) run last.

Runs in the normal pytest run (no marker): about 60 operations, some 1,000 requests, a minute or two on two cores
including the runner's start.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from jsonschema_rs import Draft202012Validator
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance, status_code_conformance

from jit.api.openapi import DOCS, SignIn, openapi_document, registrations
from tests.e2e.conftest import Stack

# Bounded for the normal run; JIT_FUZZ_EXAMPLES=200 pytest tests/e2e/test_fuzz_api.py digs deeper.
POSITIVE_EXAMPLES = int(os.environ.get("JIT_FUZZ_EXAMPLES", "12"))
NEGATIVE_EXAMPLES = max(POSITIVE_EXAMPLES // 2, 1)
# The function-key twin runs the same handler: fewer generated requests.
MACHINE_EXAMPLES = max(POSITIVE_EXAMPLES // 4, 1)
# Writers whose effects change what other operations see go last (a fuzzed policy denies later requests).
LAST = ("put_policy", "put_template", "delete_template", "put_channel", "delete_channel", "configure_tenant")
# 5xx answers that are documented upstream conditions, not server errors: route -> the problem types allowed.
_GRAPH = {"urn:jit:problem:graph-denied", "urn:jit:problem:graph-unavailable", "urn:jit:problem:graph-error"}
UPSTREAM_PROBLEMS = {"list_tenant_roles": _GRAPH, "list_tenant_groups": _GRAPH}
PATHS = {r.operation_id: r for r in registrations()}
# Who calls the people's paths while exploring: the admin reaches every operation; the flows use each role.
TESS, AVERY, ADA = "Tess Technician", "Avery Approver", "Ada Admin"


@dataclass
class Fuzz:
    """Calls operations of the served schema as the description says to authenticate, checks every answer, and
    collects what failed."""

    stack: Stack
    schema: Any
    failures: list[str] = field(default_factory=list)
    seen: dict[str, Counter[int]] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)

    def token(self, person: str) -> str:
        if person not in self.tokens:
            self.tokens[person] = self.stack.person(person).token
        return self.tokens[person]

    def credentials(self, operation_id: str, person: str) -> dict[str, str]:
        registration = PATHS[operation_id]
        if registration.public:
            return {}
        if registration.by_key:
            return {"x-functions-key": self.stack.machine_key}
        return {"Authorization": f"Bearer {self.token(person)}"}

    def operation(self, operation_id: str) -> Any:
        registration = PATHS[operation_id]
        found = self.schema.find_operation_by_label(f"{registration.route.method} {registration.path}")
        assert found is not None, f"{registration.route.method} {registration.path} is not in the served description"
        return found

    def run(self, operation_id: str, case: Any, person: str = ADA, headers: dict[str, str] | None = None) -> Any:
        response = case.call(
            base_url=self.stack.base, timeout=15, headers={**self.credentials(operation_id, person), **(headers or {})}
        )
        self.seen.setdefault(operation_id, Counter())[response.status_code] += 1
        checks = [
            _no_server_error(operation_id),
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
            self._ndjson_items_conform(operation_id),
        ]
        try:
            case.validate_response(response, checks=checks)
        except FailureGroup as found:
            self.failures += [_describe(operation_id, f, case) for f in found.exceptions]
        except Failure as failure:
            self.failures.append(_describe(operation_id, failure, case))
        return response

    def call(self, operation_id: str, person: str = ADA, headers: dict[str, str] | None = None, **parts: Any) -> Any:
        if "body" in parts:
            parts.setdefault("media_type", "application/json")
        return self.run(operation_id, self.operation(operation_id).Case(**parts), person, headers)

    def explore(self, operation_id: str) -> None:
        operation = self.operation(operation_id)
        by_key = PATHS[operation_id].by_key
        for strategy in operation.get_strategies_from_examples():
            self._generate(operation_id, strategy, 1)
        positive, negative = (MACHINE_EXAMPLES, 1) if by_key else (POSITIVE_EXAMPLES, NEGATIVE_EXAMPLES)
        self._generate(operation_id, operation.as_strategy(generation_mode=GenerationMode.POSITIVE), positive)
        self._generate(operation_id, operation.as_strategy(generation_mode=GenerationMode.NEGATIVE), negative)

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

    @cached_property
    def _line_validators(self) -> dict[str, Draft202012Validator]:
        """Per operation id: the item schema its newline-delimited JSON answer names (`x-item-schema`)."""
        raw = self.schema.raw_schema
        found: dict[str, Draft202012Validator] = {}
        for item in raw["paths"].values():
            for op in item.values():
                for media in op.get("responses", {}).get("200", {}).get("content", {}).values():
                    if "x-item-schema" in media:
                        root = {**media["x-item-schema"], "components": raw["components"]}
                        found[op["operationId"]] = Draft202012Validator(root)
        return found

    def _ndjson_items_conform(self, operation_id: str) -> Callable[..., None]:
        """Each line of a newline-delimited JSON answer conforms to the item schema the description names."""
        validator = self._line_validators.get(operation_id)

        def ndjson_items_conform(ctx: Any, response: Any, case: Any) -> None:
            if validator is None or response.status_code != 200:
                return
            for number, line in enumerate(response.content.decode().splitlines(), 1):
                errors = [e.message for e in validator.iter_errors(json.loads(line))]
                if errors:
                    raise Failure(
                        operation=operation_id,
                        title="A line does not match its item schema",
                        message=f"line {number}: {errors[:3]}",
                    )

        return ndjson_items_conform


def _no_server_error(operation_id: str) -> Callable[..., None]:
    """not_a_server_error, except for the 5xx problem kinds an operation documents as upstream conditions."""
    allowed = UPSTREAM_PROBLEMS.get(PATHS[operation_id].route.name, set())

    def no_server_error(ctx: Any, response: Any, case: Any) -> None:
        if PATHS[operation_id].route.name == "health" and response.status_code == 503:
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


def _settled(fuzz: Fuzz, grant_id: str, person: str, operation_id: str = "get_request") -> dict[str, Any]:
    deadline = time.monotonic() + 30
    answer = fuzz.call(operation_id, person, path_parameters={"id": grant_id})
    while answer.status_code == 202 and time.monotonic() < deadline:
        time.sleep(0.2)
        answer = fuzz.call(operation_id, person, path_parameters={"id": grant_id})
    assert answer.status_code == 200, answer.text
    grant: dict[str, Any] = answer.json()
    return grant


def _later(grant: dict[str, Any], minutes: int) -> str:
    end = datetime.fromisoformat(grant["endDateTime"].replace("Z", "+00:00"))
    return (end + timedelta(minutes=minutes)).isoformat()


def follow_grants(fuzz: Fuzz) -> None:
    """Grants through their lives, every answer checked."""
    example = DOCS["create_request"].body_example
    assert example is not None
    tenant = example["tenantId"]
    assessed = fuzz.call("assess_request", TESS, body=example)
    assert assessed.status_code == 200 and assessed.json()["allowed"], assessed.text

    # A request policy lets through: Active, its pass once, a later end applied at once, revoked.
    created = fuzz.call("create_request", TESS, body=example)
    assert created.status_code == 202, created.text
    grant_id = created.json()["id"]
    grant = _settled(fuzz, grant_id, TESS)
    assert grant["status"] == "Active", grant
    assert fuzz.call("get_credentials", TESS, path_parameters={"id": grant_id}).status_code == 200
    assert fuzz.call("get_credentials", TESS, path_parameters={"id": grant_id}).status_code == 410
    extended = fuzz.call(
        "extend_request",
        TESS,
        path_parameters={"id": grant_id},
        body={"endDateTime": _later(grant, 30), "reason": "more mailboxes"},
    )
    assert extended.status_code == 200 and extended.json()["extension"]["status"] == "Approved", extended.text
    fuzz.call("list_requests", TESS, query={"tenantId": tenant})
    for operation_id in ("whoami", "list_tenants", "list_channels", "list_templates", "list_approvals"):
        fuzz.call(operation_id, TESS)  # a requester's view (no pending tenants, no channel addresses; no inbox)
    fuzz.call("get_tenant", TESS, path_parameters={"tenantId": tenant})
    fuzz.call("list_tenant_roles", TESS, path_parameters={"tenantId": tenant})
    fuzz.call("list_tenant_groups", TESS, path_parameters={"tenantId": tenant}, query={"search": "He"})
    fuzz.call("get_policy", TESS, path_parameters={"scope": tenant})
    revoked = fuzz.call("revoke_request", TESS, path_parameters={"id": grant_id}, body={"reason": "work done"})
    assert revoked.status_code == 202, revoked.text
    assert _settled(fuzz, grant_id, TESS)["status"] == "Revoked"

    # A request the policy gates: in the approver's inbox, approved, Active; a later end waits for approval, denied.
    gated = {**example, "roles": ["Global Administrator"], "reason": "Tenant-wide settings, ticket 4712", "ticketId": "4712"}
    created = fuzz.call("create_request", TESS, body=gated)
    assert created.status_code == 202 and created.json()["status"] == "AwaitingApproval", created.text
    grant_id = created.json()["id"]
    inbox = fuzz.call("list_approvals", AVERY).json()["value"]
    assert [g["approvalKind"] for g in inbox if g["id"] == grant_id] == ["request"], inbox
    approved = fuzz.call("approve_request", AVERY, path_parameters={"id": grant_id}, body={"comment": "go ahead"})
    assert approved.status_code == 202, approved.text
    grant = _settled(fuzz, grant_id, TESS)
    assert grant["status"] == "Active", grant
    extended = fuzz.call("extend_request", TESS, path_parameters={"id": grant_id}, body={"endDateTime": _later(grant, 30)})
    assert extended.status_code == 200 and extended.json()["extension"]["status"] == "AwaitingApproval", extended.text
    inbox = fuzz.call("list_approvals", ADA).json()["value"]
    assert [g["approvalKind"] for g in inbox if g["id"] == grant_id] == ["extension"], inbox
    denied = fuzz.call("deny_request", AVERY, path_parameters={"id": grant_id}, body={"comment": "not needed"})
    assert denied.status_code == 200 and denied.json()["extension"]["status"] == "Denied", denied.text
    fuzz.call("revoke_request", TESS, path_parameters={"id": grant_id}, body={"reason": "work done"})

    # A machine's request, with the key, for someone it names.
    created = fuzz.call("create_request_by_key", body=example, headers={"X-JIT-Requested-For": "tess.technician@msp.example.com"})
    assert created.status_code == 202, created.text
    assert "asserted" in created.json()["requestedBy"]
    assert _settled(fuzz, created.json()["id"], ADA, "get_request_by_key")["status"] == "Active"

    month = time.strftime("%Y-%m", time.gmtime())
    for person, operation_id in ((ADA, "monthly_report"), (ADA, "monthly_report_by_key")):
        fuzz.call(operation_id, person, query={"tenantId": tenant, "month": month})
        fuzz.call(operation_id, person, query={"tenantId": tenant, "month": month, "format": "csv"})
    for scope in (tenant, "global"):
        audit = fuzz.call("read_audit", ADA, query={"tenantId": scope})
        assert audit.status_code == 200 and audit.text.count("\n") >= 1, audit.text


def test_fuzzing_finds_no_server_error_and_every_answer_matches_its_schema(stack: Stack) -> None:
    started = time.monotonic()
    schema = schemathesis.openapi.from_url(f"{stack.base}/api/jit/openapi.json")
    schema.config.update(base_url=stack.base)
    fuzz = Fuzz(stack, schema)
    follow_grants(fuzz)

    def order(operation_id: str) -> int:
        name = PATHS[operation_id].route.name
        return LAST.index(name) + 1 if name in LAST else 0

    for operation_id in sorted(PATHS, key=order):
        fuzz.explore(operation_id)
    # What only has something to show once the writers ran.
    fuzz.call("policy_history", path_parameters={"scope": "default"})
    calls = sum(sum(c.values()) for c in fuzz.seen.values())
    print(f"\nfuzzed {len(fuzz.seen)} operations with {calls} requests in {time.monotonic() - started:.1f}s")
    for operation_id, statuses in sorted(fuzz.seen.items()):
        print(f"  {operation_id}: " + ", ".join(f"{status} x{n}" for status, n in sorted(statuses.items())))
    assert set(fuzz.seen) == set(PATHS), "every operation was called"
    refused = sorted(op for op, statuses in fuzz.seen.items() if statuses[401])
    assert not refused, f"every call signs in as its path wants, yet these were refused (401): {refused}"
    assert not fuzz.failures, f"{len(fuzz.failures)} failures:\n\n" + "\n\n".join(fuzz.failures[:20])


def test_the_served_description_is_the_built_one(stack: Stack) -> None:
    served = httpx.get(f"{stack.base}/api/jit/openapi.json", timeout=10)
    assert served.status_code == 200
    assert served.headers["content-type"].startswith("application/json")
    portal = httpx.get(f"{stack.base}/api/jit/portal/settings", timeout=10).json()
    # The local issuer's sign-in, as the portal's settings name it: the same authority, tenant and scope.
    authority, tenant = portal["authority"].removesuffix("/v2.0").rsplit("/", 1)
    sign_in = SignIn(authority, tenant, portal["scope"].removesuffix("/access_as_user"))
    assert served.json() == openapi_document(stack.base, sign_in)
    flows = served.json()["components"]["securitySchemes"]["entraId"]["flows"]
    discovery = httpx.get(f"{portal['authority']}/.well-known/openid-configuration", timeout=10).json()
    assert flows["authorizationCode"]["authorizationUrl"] == discovery["authorization_endpoint"]
    assert flows["authorizationCode"]["tokenUrl"] == discovery["token_endpoint"]
