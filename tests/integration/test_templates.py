"""Templates: a request names one, its own fields override, policy still applies, missing roles fail clearly."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.conftest import GROUP_HELPDESK, TENANT, Stack, body_of, principal

ADMIN = principal("adam@msp.com", "Jit.Admin")
ALICE = principal("alice@msp.com", "Jit.Requester")

EXCHANGE_TEMPLATE = {
    "description": "Exchange migrations",
    "roles": ["Exchange Administrator"],
    "groups": [GROUP_HELPDESK],
    "duration": "PT2H",
    "expirationActions": ["DeleteUser"],
    "reasonPrefix": "[Exchange]",
}


def put(stack: Stack, name: str, template: dict[str, Any], tenant: str | None = None) -> Any:
    query = f"?tenantId={tenant}" if tenant else ""
    return stack.call("PUT", f"/api/jit/templates/{name}{query}", template, ADMIN)


def minimal(**extra: Any) -> dict[str, Any]:
    return {
        "tenantId": TENANT,
        "user": {"type": "new", "displayName": "Temp Admin"},
        "templateName": "exchange",
        "reason": "mailbox move for ticket 42",
        **extra,
    }


def test_a_request_filled_by_a_template(stack: Stack) -> None:
    assert put(stack, "exchange", EXCHANGE_TEMPLATE).status_code == 201
    response = stack.post_request(minimal(), headers=ALICE)
    assert response.status_code == 202, response.get_body()
    grant = body_of(response)
    assert grant["roles"] == ["Exchange Administrator"] and grant["groups"] == [GROUP_HELPDESK]
    assert grant["reason"] == "[Exchange] mailbox move for ticket 42"
    assert grant["templateName"] == "exchange"
    stack.drain()
    assert body_of(stack.call("GET", f"/api/jit/requests/{grant['id']}", headers=ALICE))["status"] == "Active"


def test_the_request_overrides_the_template_and_a_tenant_template_wins(stack: Stack) -> None:
    put(stack, "exchange", EXCHANGE_TEMPLATE)
    put(stack, "exchange", {**EXCHANGE_TEMPLATE, "roles": ["Helpdesk Administrator"], "reasonPrefix": "[Contoso]"}, TENANT)
    grant = body_of(stack.post_request(minimal(roles=["Global Reader"], duration="PT1H"), headers=ALICE))
    assert grant["roles"] == ["Global Reader"]
    assert grant["reason"].startswith("[Contoso]")
    end = (stack.clock.now() + timedelta(minutes=45)).replace(microsecond=0)
    by_end = stack.post_request(minimal(endDateTime=end.isoformat()), headers=ALICE)
    assert by_end.status_code == 202  # the request's own end replaces the template's duration (no "both given")
    assert body_of(by_end)["endDateTime"] == end.isoformat().replace("+00:00", "Z")
    other = body_of(stack.post_request({**minimal(), "tenantId": "fabrikam.onmicrosoft.com"}, headers=ALICE))
    assert other["reason"].startswith("[Exchange]")  # Fabrikam has no template of its own: the global one


def test_policy_still_applies_to_a_templated_request(stack: Stack) -> None:
    put(stack, "exchange", {**EXCHANGE_TEMPLATE, "duration": "PT6H"})
    stack.call("PUT", f"/api/jit/policies/{TENANT}", {"maxDuration": "PT4H"}, ADMIN)
    response = stack.post_request(minimal(), headers=ALICE)
    assert response.status_code == 403
    assert body_of(response)["errors"][0]["rule"] == "maxDuration"


def test_an_unknown_template_is_a_400_naming_it(stack: Stack) -> None:
    response = stack.post_request(minimal(templateName="nope"), headers=ALICE)
    assert response.status_code == 400
    assert body_of(response)["errors"][0]["field"] == "templateName"


def test_a_template_with_a_role_the_tenant_lacks_fails_clearly(stack: Stack) -> None:
    put(stack, "exchange", {**EXCHANGE_TEMPLATE, "roles": ["Exchange Wizard"]})
    grant = body_of(stack.post_request(minimal(), headers=ALICE))
    stack.drain()
    failed = body_of(stack.call("GET", f"/api/jit/requests/{grant['id']}", headers=ALICE))
    assert failed["status"] == "Failed"
    assert "Exchange Wizard" in failed["error"]["message"] and "template exchange" in failed["error"]["message"]


def test_template_api(stack: Stack) -> None:
    assert put(stack, "exchange", EXCHANGE_TEMPLATE).status_code == 201
    assert put(stack, "exchange", EXCHANGE_TEMPLATE).status_code == 200
    put(stack, "helpdesk", {"roles": ["Helpdesk Administrator"]}, TENANT)
    assert stack.call("PUT", "/api/jit/templates/x", {"roles": ["A"]}, ALICE).status_code == 403
    assert stack.call("PUT", "/api/jit/templates/x", {"user": {"type": "new"}}, ADMIN).status_code == 400
    assert stack.call("PUT", "/api/jit/templates/x", {"duration": "3 hours"}, ADMIN).status_code == 400
    assert stack.call("PUT", "/api/jit/templates/bad$name", {}, ADMIN).status_code == 400
    names = sorted(t["name"] for t in body_of(stack.call("GET", f"/api/jit/templates?tenantId={TENANT}", headers=ALICE))["value"])
    assert names == ["exchange", "helpdesk"]
    assert [t["name"] for t in body_of(stack.call("GET", "/api/jit/templates", headers=ALICE))["value"]] == ["exchange"]
    assert body_of(stack.call("GET", "/api/jit/templates/Exchange", headers=ALICE))["roles"] == ["Exchange Administrator"]
    assert stack.call("DELETE", "/api/jit/templates/exchange", headers=ADMIN).status_code == 204
    assert stack.call("GET", "/api/jit/templates/exchange", headers=ALICE).status_code == 404
    assert stack.call("DELETE", "/api/jit/templates/exchange", headers=ADMIN).status_code == 404
