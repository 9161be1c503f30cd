"""The API description follows the code: its routes are the route table's (and so the functions function_app.py
registers), each registered path has the security its audience means, the request schemas are the pydantic models'
own, the response models take what the views answer, and the connector files are current and sign people in.
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
from jit.api.openapi import models
from jit.api.routes import ROUTES, Audience
from jit.api.tenants_api import registration_json
from jit.api.views import grant_json
from jit.domain.errors import FieldError
from jit.domain.grant import Extension, ExtensionState, Grant, Status
from jit.domain.policy import Policy
from jit.domain.policy_document import PolicyBody, policy_json
from jit.domain.progress import (
    AccountRecord,
    CredentialKind,
    CredentialRecord,
    ExpirationRecord,
    GroupRecord,
    ItemState,
    LeaseRecord,
    Progress,
    RoleRecord,
)
from jit.domain.request import ExpirationAction, GrantRequest, TapSettings, UserKind, UserSpec
from jit.domain.tenant import OnboardingState, TenantRegistration
from jit.identity.settings import IdentitySettings

ROOT = Path(__file__).resolve().parents[2]
METHODS = ("get", "put", "post", "delete", "patch")
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
# Machines (a function key) never approve, deny, read the inbox or receive a credential.
PEOPLE_ONLY = {"approve_request", "deny_request", "get_credentials", "list_approvals"}
PUBLIC = {"health", "get_openapi", "portal_settings"}


def http_functions() -> dict[tuple[str, str], str]:
    """(path, method) -> function name, for every HTTP function the app registers under api/ (not the portal's)."""
    found: dict[tuple[str, str], str] = {}
    for function in indexed_functions(function_app.app):
        trigger = function.get_trigger()
        if trigger.type == "httpTrigger" and trigger.route.startswith("api/"):
            for method in trigger.methods:
                found[("/" + trigger.route, str(getattr(method, "value", method)).lower())] = function.get_function_name()
    return found


def operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(path, method): op for path, item in document["paths"].items() for method, op in item.items() if method in METHODS}


def by_id(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {op["operationId"]: op for op in operations(document).values()}


def test_every_api_route_has_its_description_and_every_description_its_route() -> None:
    routes = {r.name for r in ROUTES if r.api}
    described = set(openapi.DOCS)
    assert not routes - described, f"routes without a description in operations.DOCS: {sorted(routes - described)}"
    assert not described - routes, f"descriptions of routes the route table lacks: {sorted(described - routes)}"
    assert not {r.name for r in ROUTES if not r.api} & described, "the portal's files are not API operations"


def test_the_document_describes_exactly_the_http_functions_of_the_app() -> None:
    declared = http_functions()
    described = {key: op["operationId"] for key, op in operations(openapi.openapi_document()).items()}
    missing = sorted(f"{m.upper()} {p} ({declared[(p, m)]})" for p, m in set(declared) - set(described))
    extra = sorted(f"{m.upper()} {p} ({described[(p, m)]})" for p, m in set(described) - set(declared))
    assert not missing, f"functions the description lacks: {missing}"
    assert not extra, f"described operations no function serves: {extra}"
    assert described == declared, "each operationId is the name of the function that serves it"


def test_each_path_has_the_security_of_its_audience() -> None:
    document = openapi.openapi_document()
    schemes = document["components"]["securitySchemes"]
    assert schemes["entraId"]["type"] == "oauth2"
    assert set(schemes["entraId"]["flows"]) == {"authorizationCode", "clientCredentials"}
    assert schemes["functionKey"] == {**schemes["functionKey"], "type": "apiKey", "in": "header", "name": "x-functions-key"}
    ops = by_id(document)
    for route in (r for r in ROUTES if r.api):
        if route.audience is Audience.PUBLIC:
            op = ops[route.name]
            assert op["security"] == [] and "401" not in op["responses"], route.name
            assert f"{route.name}_by_key" not in ops
            continue
        people = ops[route.name]
        assert people is operations(document)[("/" + route.full_path, route.method.lower())]
        assert {k for requirement in people["security"] for k in requirement} == {"entraId"}, route.name
        assert "WWW-Authenticate" in people["responses"]["401"]["headers"], route.name
        assert not any(p["name"] == "X-JIT-Requested-For" for p in people.get("parameters", [])), route.name
        if route.audience & Audience.MACHINES:
            machine = ops[f"{route.name}_by_key"]
            assert machine is operations(document)[("/" + route.machine_path, route.method.lower())]
            assert machine["security"] == [{"functionKey": []}, {"functionKeyQuery": []}], route.name
            assert "content" not in machine["responses"]["401"], "the Functions host refuses a wrong key with no body"
        else:
            assert f"{route.name}_by_key" not in ops, route.name
    for name in PEOPLE_ONLY:
        assert f"{name}_by_key" not in ops
    user_scope = "api://API-CLIENT-ID/access_as_user"
    assert ops["approve_request"]["security"] == [{"entraId": [user_scope]}], "only people decide"
    assert {"entraId": ["api://API-CLIENT-ID/.default"]} in ops["create_request"]["security"], "applications may request"
    assert any(p["name"] == "X-JIT-Requested-For" for p in ops["create_request_by_key"]["parameters"])
    assert {t for op in ops.values() for t in op["tags"]} <= {t["name"] for t in document["tags"]}


def test_the_served_sign_in_comes_from_the_identity_settings() -> None:
    identity = IdentitySettings(
        client_id="6c1d2e3f-4a5b-4c6d-8e7f-a0b1c2d3e4f5",
        audiences=("6c1d2e3f-4a5b-4c6d-8e7f-a0b1c2d3e4f5", "api://jit-admin"),
        tenant_ids=("11111111-2222-4333-8444-555555555555",),
        authority="https://login.microsoftonline.us",
    )
    sign_in = openapi.SignIn.from_identity(identity)
    flows = openapi.openapi_document("https://jit.example", sign_in)["components"]["securitySchemes"]["entraId"]["flows"]
    code = flows["authorizationCode"]
    tenant = "https://login.microsoftonline.us/11111111-2222-4333-8444-555555555555"
    assert code["authorizationUrl"] == f"{tenant}/oauth2/v2.0/authorize"
    assert code["tokenUrl"] == flows["clientCredentials"]["tokenUrl"] == f"{tenant}/oauth2/v2.0/token"
    assert set(code["scopes"]) == {"api://jit-admin/access_as_user"}
    assert set(flows["clientCredentials"]["scopes"]) == {"api://jit-admin/.default"}
    without_uri = replace(identity, audiences=(identity.client_id,))
    assert openapi.SignIn.from_identity(without_uri).user_scope == f"{identity.client_id}/access_as_user"


def test_request_schemas_are_the_models_own() -> None:
    document = openapi.openapi_document()
    components = document["components"]["schemas"]
    for registration in openapi.registrations():
        op = by_id(document)[registration.operation_id]
        doc = registration.doc
        if doc.body is None:
            assert "requestBody" not in op, registration.operation_id
            continue
        body = op["requestBody"]
        assert body["required"] is doc.body_required
        ref = body["content"]["application/json"]["schema"]["$ref"]
        expected = doc.body.model_json_schema(ref_template=openapi.SCHEMA_REF)
        nested = expected.pop("$defs", {})
        assert components[ref.rsplit("/", 1)[1]] == expected, registration.operation_id
        for name, schema in nested.items():
            assert components[name] == schema, f"{registration.operation_id}: {name}"


def test_every_operation_has_a_summary_a_description_and_its_problem_answers() -> None:
    for (path, method), op in operations(openapi.openapi_document()).items():
        label = f"{method.upper()} {path}"
        assert op["summary"] and op["description"], label
        if op["operationId"] == "health":
            # Public, never a problem: 503 carries the health body itself.
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
    ops = by_id(openapi.openapi_document())
    for operation_id in ("create_request", "create_request_by_key", "get_request", "revoke_request", "approve_request"):
        assert set(ops[operation_id]["responses"]["202"]["headers"]) == {"Location", "Retry-After"}, operation_id
    connector = openapi.connector_definition()
    assert set(connector["paths"]["/jit/requests"]["post"]["responses"]["202"]["headers"]) == {"Location", "Retry-After"}


def test_the_audit_trail_and_the_csv_report_are_described() -> None:
    ops = by_id(openapi.openapi_document())
    audit = ops["read_audit"]["responses"]["200"]["content"]["application/x-ndjson"]
    assert audit["x-item-schema"] == {"$ref": "#/components/schemas/AuditLine"}
    report = ops["monthly_report"]["responses"]["200"]["content"]
    assert set(report) == {"application/json", "text/csv"}
    assert {"json", "csv"} == set(next(p for p in ops["monthly_report"]["parameters"] if p["name"] == "format")["schema"]["enum"])


def test_both_documents_are_valid() -> None:
    schemathesis.openapi.from_dict(openapi.openapi_document()).validate()
    schemathesis.openapi.from_dict(openapi.connector_definition()).validate()


def test_the_committed_connector_files_are_what_the_builder_makes_now() -> None:
    for name, text in openapi.connector_files().items():
        committed = ROOT / "connector" / name
        assert committed.exists(), f"connector/{name} is missing: run scripts/generate-connector"
        assert json.loads(committed.read_text()) == json.loads(text), f"connector/{name} is stale: run scripts/generate-connector"


def test_the_connector_signs_people_in_with_entra_id_and_uses_their_paths_only() -> None:
    connector = openapi.connector_definition()
    assert connector["swagger"] == "2.0" and connector["basePath"] == "/api"
    (scheme,) = connector["securityDefinitions"].values()
    assert scheme["type"] == "oauth2" and scheme["flow"] == "accessCode"
    token = openapi.connector_properties()["properties"]["connectionParameters"]["token"]
    assert token["type"] == "oauthSetting"
    settings = token["oAuthSettings"]
    assert settings["identityProvider"] == "aad" and settings["redirectMode"] == "GlobalPerConnector"
    assert settings["properties"]["AzureActiveDirectoryResourceId"] == settings["customParameters"]["resourceUri"]["value"]
    text = json.dumps(connector) + json.dumps(openapi.connector_properties())
    assert "x-functions-key" not in text and "/svc/" not in text and "api_key" not in text
    ops = {op["operationId"]: op for item in connector["paths"].values() for op in item.values()}
    people = {r.operation_id for r in openapi.registrations() if not r.by_key and not r.public and r.doc.in_connector}
    assert set(ops) == people
    assert set(ops) >= PEOPLE_ONLY, "flows run as people: approvals and credentials are theirs"
    assert not any(op.endswith("_by_key") for op in ops)
    assert connector["x-ms-capabilities"]["testConnection"]["operationId"] in ops
    for op in ops.values():
        assert op["x-ms-visibility"] in ("important", "advanced", "internal")
        assert op["summary"] and len(op["summary"]) <= 80 and op["description"].endswith(".")
        assert all(p.get("x-ms-summary") for p in op["parameters"])
        assert "security" not in op
        assert not any(p["name"] == "X-JIT-Requested-For" for p in op["parameters"]), "no asserted identity: it is the user"
    assert all(
        ops[i].get("x-ms-no-generic-test") for i in ("create_request", "revoke_request", "get_credentials", "approve_request")
    )
    roles = connector["definitions"]["GrantRequestBody"]["properties"]["roles"]["items"]
    assert roles["x-ms-dynamic-values"]["operationId"] == "list_tenant_roles"
    assert "anyOf" not in text and "oneOf" not in text and '"null"' not in text and "#/components/" not in text


def test_the_connector_files_take_the_operators_sign_in() -> None:
    sign_in = openapi.ConnectorSignIn(
        "0b2c3d4e-0000-4000-8000-000000000001",
        "11111111-2222-4333-8444-555555555555",
        "api://jit-admin",
        redirect_url="https://global.consent.azure-apim.net/redirect/cr123-5fjit-20admin-20access",
    )
    files = openapi.connector_files("jit-prod.azurewebsites.net", sign_in)
    definition = json.loads(files["apiDefinition.swagger.json"])
    settings = json.loads(files["apiProperties.json"])["properties"]["connectionParameters"]["token"]["oAuthSettings"]
    assert definition["host"] == "jit-prod.azurewebsites.net"
    assert "11111111-2222-4333-8444-555555555555" in definition["securityDefinitions"]["oauth2_auth"]["authorizationUrl"]
    assert settings["clientId"] == "0b2c3d4e-0000-4000-8000-000000000001"
    assert settings["customParameters"]["tenantId"] == {"value": "11111111-2222-4333-8444-555555555555"}
    assert settings["customParameters"]["resourceUri"] == {"value": "api://jit-admin"}
    assert settings["redirectUrl"].startswith("https://global.consent.azure-apim.net/redirect/")


# The response models take what the views answer -----------------------------------------------------------------
def a_grant(*, tap: bool = True) -> Grant:
    request = GrantRequest(
        tenant_id="11111111-2222-4333-8444-555555555555",
        user=UserSpec(UserKind.NEW, display_name="Ada"),
        start=NOW,
        end=NOW + timedelta(hours=1),
        roles=("Exchange Administrator",),
        groups=("aaaaaaaa-0000-4000-8000-000000000001",),
        reason="mailbox migration, ticket 4711",
        expiration_actions=(ExpirationAction.DELETE_USER,),
        tap=TapSettings(enabled=tap),
        notifications={"channels": ["helpdesk"], "webhookUrls": ["https://hooks.example/x?sig=secret"]},
        directory="entra",
    )
    return Grant.open(
        "01JD0000000000000000000000", request, now=NOW, actor="alice", needs_approval=False, requester_id="oid-alice"
    )


def progress_at(stage: Status, at: datetime) -> Progress:
    """What the sagas have recorded by the time a grant reaches `stage`, as real records."""
    if stage is Status.SCHEDULED:
        return Progress()
    account = AccountRecord(
        created=True, state=ItemState.DONE, id="u-1", principal_name="jit-ada@contoso.onmicrosoft.com", attempt=1
    )
    if stage is Status.PROVISIONING:
        return Progress(
            account=replace(account, state=ItemState.PENDING, id=None, principal_name=None),
            roles=(RoleRecord("r-1", "Exchange Administrator", ItemState.PENDING),),
            lease=LeaseRecord("worker-1", at + timedelta(minutes=5)),
        )
    held = Progress(
        account=account,
        roles=(
            RoleRecord("r-1", "Exchange Administrator", ItemState.DONE, template_id="29232cdf-9323-42fd-ade2-1d097af3e4de"),
            RoleRecord("r-2", "Global Reader", ItemState.SHARED),
        ),
        groups=(
            GroupRecord("aaaaaaaa-0000-4000-8000-000000000001", ItemState.PREEXISTING, name="Helpdesk"),
            GroupRecord("aaaaaaaa-0000-4000-8000-000000000002", ItemState.DONE),
        ),
        credential=CredentialRecord(
            CredentialKind.TEMPORARY_ACCESS_PASS, ItemState.DONE, 60, True, "t-1", expires_at=at + timedelta(hours=1)
        ),
        conferred_roles=("62e90394-69f5-4237-9190-012177145e10",),
    )
    if stage is Status.ACTIVE:
        return held
    taken = replace(held.credential, retrieved_at=at, retrieved_by="alice") if held.credential else None  # type: ignore[arg-type]
    if stage is Status.EXPIRING:
        return replace(
            held,
            credential=taken,
            expiration=ExpirationRecord(attempts=2, remaining=("role r-1",), last_attempt_at=at, alerted_at=at, flag="late"),
        )
    return replace(
        held,
        roles=tuple(replace(r, state=ItemState.REMOVED if r.state is ItemState.DONE else ItemState.KEPT) for r in held.roles),
        credential=taken,
        expiration=ExpirationRecord(
            verified_at=at, actions=("DeleteUser",), attempts=1, account_deleted_at=at, account_purged=True
        ),
    )


def test_the_grant_model_takes_what_the_view_answers_at_every_stage() -> None:
    grant = a_grant()
    at = NOW
    stages = (Status.SCHEDULED, Status.PROVISIONING, Status.ACTIVE, Status.EXPIRING, Status.REVOKED)
    for stage in stages:
        if grant.status is not stage:
            at += timedelta(minutes=1)
            grant = grant.move_to(stage, at=at, actor="system", reason=stage.value)
        grant = grant.with_progress(progress_at(stage, at))
        if stage is Status.ACTIVE:
            grant = replace(
                grant,
                extension=Extension(
                    end=NOW + timedelta(hours=2),
                    requested_at=at,
                    requested_by="alice",
                    requester_id="oid-alice",
                    reason="more mailboxes",
                    state=ExtensionState.AWAITING_APPROVAL,
                    previous_end=NOW + timedelta(hours=1),
                ),
            )
        if stage is Status.REVOKED:
            grant = replace(grant, revoke_requested_at=at, revoked_at=at)
        answered = grant_json(grant)
        parsed = models.Grant.model_validate(answered)
        assert parsed.model_dump(mode="json", by_alias=True, exclude_unset=True) == answered, stage
    assert answered["access"]["expiration"] == {
        "verifiedAt": at.isoformat().replace("+00:00", "Z"),
        "actions": ["DeleteUser"],
        "attempts": 1,
    }
    assert answered["notifications"]["webhookUrls"] == ["https://hooks.example/x?…"]


def test_the_grant_model_takes_a_failed_grant_and_one_without_a_pass() -> None:
    failed = a_grant(tap=False).move_to(Status.PROVISIONING, at=NOW, actor="system")
    failed = failed.move_to(Status.FAILED, at=NOW, actor="system", reason="the directory refused")
    failed = replace(
        failed,
        error={"step": "user", "message": "taken", "code": "Request_BadRequest", "graphRequestId": "r-1"},
        progress=Progress(account=AccountRecord(created=False, state=ItemState.PREEXISTING, id="u-9")),
    )
    answered = grant_json(failed)
    assert models.Grant.model_validate(answered).model_dump(mode="json", by_alias=True, exclude_unset=True) == answered
    assert answered["access"]["temporaryAccessPass"] is None


def test_the_grant_model_refuses_what_the_view_never_answers() -> None:
    answered = grant_json(a_grant())
    with pytest.raises(ValueError, match="extra"):
        models.Grant.model_validate({**answered, "lease": {"owner": "worker-1"}})
    with pytest.raises(ValueError, match=r"access\.roles"):
        models.Grant.model_validate({**answered, "access": {**answered["access"], "roles": [{"roleDefinitionId": "r"}]}})


def test_the_approval_model_takes_a_grant_with_its_approval_facts() -> None:
    grant = a_grant()
    for kind, may in (("request", True), ("extension", False)):
        item = {
            **grant_json(grant),
            "approvalKind": kind,
            "approvalReasons": ["Global Administrator needs approval"],
            "canDecide": may,
        }
        if not may:
            item["cannotDecideReason"] = "you asked for it"
        models.ApprovalList.model_validate({"value": [item]})


@pytest.mark.parametrize(
    "problem",
    [
        problems.invalid([FieldError("duration", "too long"), FieldError("user.id", "not a GUID")]),
        problems.problem(403, "policy", "The request is outside the policy", "no", errors=[FieldError("maxDuration", "PT1H")]),
        problems.problem(404, "not-found", "Not found", "grant x not found"),
        problems.from_error(problems.TooLarge("the body must not exceed 10 bytes")),
    ],
)
def test_the_problem_model_takes_what_problems_answer(problem: Any) -> None:
    assert problem.mimetype == openapi.PROBLEM_MEDIA_TYPE
    models.Problem.model_validate(json.loads(problem.get_body()))


def test_the_policy_models_take_what_the_policy_views_answer() -> None:
    models.Policy.model_validate(policy_json(Policy()))
    saved = Policy(allowed_roles=("Exchange Administrator",), max_duration=timedelta(hours=4), version=3, scope="default")
    models.Policy.model_validate(policy_json(saved))
    models.Policy.model_validate({**policy_json(Policy()), "inheritedFrom": "built-in"})
    body = PolicyBody.model_validate_json('{"maxDuration": "PT4H", "maxDurationPerRole": {"Global Administrator": "PT1H"}}')
    document = body.model_dump(mode="json", exclude_none=True)  # as the store keeps it (jit/services/policies.py)
    revision = {"version": 1, "updatedBy": "Ada", "updatedDateTime": "2026-11-23T12:00:00Z", "document": document}
    models.PolicyHistory.model_validate_json(json.dumps({"value": [revision]}))


def test_the_tenant_model_takes_what_the_registration_view_answers() -> None:
    fresh = TenantRegistration(
        "11111111-2222-4333-8444-555555555555",
        "Contoso",
        "contoso.onmicrosoft.com",
        ("contoso.onmicrosoft.com",),
        OnboardingState.PENDING,
    )
    checked = replace(fresh, state=OnboardingState.READY, pim_licensed=True, onboarded_by="Ada", onboarded_at=NOW, checked_at=NOW)
    for registration in (fresh, checked):
        models.Tenant.model_validate(registration_json(registration))
