"""The API description follows the code: the routes are the functions function_app.py declares, the request schemas
are the pydantic models' own, the response models take what the views answer, and the connector files are current.
(The live answers are checked against the description by tests/e2e/test_fuzz_api.py.)"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import schemathesis

import function_app
from devstack.function_host import indexed_functions
from jit.api import openapi, problems
from jit.api.views import grant_json
from jit.domain.errors import FieldError
from jit.domain.grant import Grant, Status
from jit.domain.policy import Policy
from jit.domain.policy_document import policy_json
from jit.domain.request import ExpirationAction, GrantRequest, TapSettings, UserKind, UserSpec

ROOT = Path(__file__).resolve().parents[2]
METHODS = ("get", "put", "post", "delete", "patch")
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def http_functions() -> dict[tuple[str, str], str]:
    """(path, method) -> function name, for every HTTP function the app declares."""
    found: dict[tuple[str, str], str] = {}
    for function in indexed_functions(function_app.app):
        trigger = function.get_trigger()
        if trigger.type == "httpTrigger":
            for method in trigger.methods:
                found[(openapi.ROUTE_PREFIX + trigger.route, str(getattr(method, "value", method)).lower())] = (
                    function.get_function_name()
                )
    return found


def operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(path, method): op for path, item in document["paths"].items() for method, op in item.items() if method in METHODS}


def test_the_document_describes_exactly_the_http_functions_of_the_app() -> None:
    declared = http_functions()
    described = {key: op["operationId"] for key, op in operations(openapi.openapi_document()).items()}
    missing = sorted(f"{m.upper()} {p} ({declared[(p, m)]})" for p, m in set(declared) - set(described))
    extra = sorted(f"{m.upper()} {p} ({described[(p, m)]})" for p, m in set(described) - set(declared))
    assert not missing, f"functions the description lacks: {missing}"
    assert not extra, f"described operations no function serves: {extra}"
    assert described == declared, "each operationId is the name of the function that serves it"


def test_request_schemas_are_the_models_own() -> None:
    document = openapi.openapi_document()
    components = document["components"]["schemas"]
    by_id = {op["operationId"]: op for op in operations(document).values()}
    for route in openapi.ROUTES:
        if route.body is None:
            assert "requestBody" not in by_id[route.operation_id], route.operation_id
            continue
        body = by_id[route.operation_id]["requestBody"]
        assert body["required"] is route.body_required
        ref = body["content"]["application/json"]["schema"]["$ref"]
        expected = route.body.model_json_schema(ref_template=openapi.SCHEMA_REF)
        nested = expected.pop("$defs", {})
        assert components[ref.rsplit("/", 1)[1]] == expected, route.operation_id
        for name, schema in nested.items():
            assert components[name] == schema, f"{route.operation_id}: {name}"


def test_every_operation_has_a_summary_a_description_and_its_problem_answers() -> None:
    for (path, method), op in operations(openapi.openapi_document()).items():
        label = f"{method.upper()} {path}"
        assert op["summary"] and op["description"], label
        if op["operationId"] == "health":
            # Anonymous, never a problem: 503 carries the health body itself.
            assert op["security"] == [] and set(op["responses"]) == {"200", "503"}
            continue
        problem_answers = [
            status
            for status, answer in op["responses"].items()
            if answer.get("content", {}).get(openapi.PROBLEM_MEDIA_TYPE, {}).get("schema")
            == {"$ref": "#/components/schemas/Problem"}
        ]
        assert "default" in problem_answers, label
        assert all(status == "default" or int(status) >= 400 for status in problem_answers), label


def test_the_asynchronous_answers_carry_location_and_retry_after() -> None:
    document = openapi.openapi_document()
    for operation_id in ("create_request", "get_request", "revoke_request"):
        op = next(o for o in operations(document).values() if o["operationId"] == operation_id)
        assert set(op["responses"]["202"]["headers"]) == {"Location", "Retry-After"}, operation_id
    connector = openapi.connector_definition()
    assert set(connector["paths"]["/jit/requests"]["post"]["responses"]["202"]["headers"]) == {"Location", "Retry-After"}


def test_both_documents_are_valid() -> None:
    schemathesis.openapi.from_dict(openapi.openapi_document()).validate()
    schemathesis.openapi.from_dict(openapi.connector_definition()).validate()


def test_the_committed_connector_files_are_what_the_builder_makes_now() -> None:
    for name, text in openapi.connector_files().items():
        committed = ROOT / "connector" / name
        assert committed.exists(), f"connector/{name} is missing: run scripts/generate-connector"
        assert json.loads(committed.read_text()) == json.loads(text), f"connector/{name} is stale: run scripts/generate-connector"


def test_the_connector_is_made_for_power_platform() -> None:
    connector = openapi.connector_definition()
    assert connector["swagger"] == "2.0"
    assert connector["securityDefinitions"] == {"api_key": {"type": "apiKey", "in": "header", "name": "x-functions-key"}}
    assert "api_key" in openapi.connector_properties()["properties"]["connectionParameters"]
    ops = {op["operationId"]: op for item in connector["paths"].values() for op in item.values()}
    assert set(ops) == {r.operation_id for r in openapi.ROUTES if r.in_connector}
    for op in ops.values():
        assert op["x-ms-visibility"] in ("important", "advanced", "internal")
        assert op["summary"] and len(op["summary"]) <= 80 and op["description"].endswith(".")
        assert all(p.get("x-ms-summary") for p in op["parameters"])
    assert all(ops[i].get("x-ms-no-generic-test") for i in ("create_request", "revoke_request", "get_credentials"))
    roles = connector["definitions"]["GrantRequestBody"]["properties"]["roles"]["items"]
    assert roles["x-ms-dynamic-values"]["operationId"] == "list_tenant_roles"
    text = json.dumps(connector)
    assert "anyOf" not in text and "oneOf" not in text and '"null"' not in text and "#/components/" not in text


def a_grant() -> Grant:
    request = GrantRequest(
        tenant_id="contoso.onmicrosoft.com",
        user=UserSpec(UserKind.NEW, display_name="Ada"),
        start=NOW,
        end=NOW + timedelta(hours=1),
        roles=("Exchange Administrator",),
        groups=("aaaaaaaa-0000-4000-8000-000000000001",),
        reason="mailbox migration, ticket 4711",
        expiration_actions=(ExpirationAction.DELETE_USER,),
        tap=TapSettings(enabled=True),
    )
    return Grant.open("01JD0000000000000000000000", request, now=NOW, actor="alice", needs_approval=False)


def test_the_grant_model_takes_what_the_view_answers_at_every_stage() -> None:
    grant = a_grant()
    at = NOW
    for target in (Status.PROVISIONING, Status.ACTIVE, Status.EXPIRING, Status.REVOKED):
        at += timedelta(minutes=1)
        grant = grant.move_to(target, at=at, actor="system", reason=target.value)
        openapi.Grant.model_validate(grant_json(grant))
    progressed = replace(
        grant,
        revoke_requested_at=at,
        revoked_at=at,
        error={"step": "user", "message": "taken", "code": "Request_BadRequest", "graphRequestId": "r-1"},
        progress={
            "user": {"id": "u-1", "userPrincipalName": "jit-ada@contoso.onmicrosoft.com", "created": True, "state": "done"},
            "roles": {"r-1": {"name": "Exchange Administrator", "state": "done", "assignmentId": "a-1"}},
            "groups": {"aaaaaaaa-0000-4000-8000-000000000001": {"state": "preexisting"}},
            "tap": {"state": "done", "id": "t-1", "expiresAt": None, "retrievedAt": at.isoformat()},
            "expiration": {"verifiedAt": at.isoformat(), "actions": ["DeleteUser"], "remaining": []},
        },
    )
    answered = grant_json(progressed)
    assert openapi.Grant.model_validate(answered).model_dump(mode="json", by_alias=True, exclude_unset=True) == answered


@pytest.mark.parametrize(
    "problem",
    [
        problems.invalid([FieldError("duration", "too long"), FieldError("user.id", "not a GUID")]),
        problems.problem(403, "policy", "The request is outside the policy", "no", errors=[FieldError("maxDuration", "PT1H")]),
        problems.problem(404, "not-found", "Not found", "grant x not found"),
    ],
)
def test_the_problem_model_takes_what_problems_answer(problem: Any) -> None:
    assert problem.mimetype == openapi.PROBLEM_MEDIA_TYPE
    openapi.Problem.model_validate(json.loads(problem.get_body()))


def test_the_policy_model_takes_what_the_policy_view_answers() -> None:
    openapi.Policy.model_validate(policy_json(Policy()))
    openapi.Policy.model_validate(
        policy_json(
            Policy(allowed_roles=("Exchange Administrator",), max_duration=timedelta(hours=4), version=3, scope="default")
        )
    )
