"""The Graph permissions the product documents are exactly what its calls need: no more, no less.

The tenant consents to exactly the set in scripts/graph/permissions.json (which docs/permissions.md's "Minimal set to
consent to" table must equal) and assigns the app the Entra role it names. Then every kind of call the product makes
is exercised (onboarding, a new account with roles, a role-assignable group and a TAP, an existing account, each
expiration action, permanent delete, drift, the role and group lists, an email notification):
- **enough**: the simulator, which authorizes every call from Microsoft's permission map, refuses nothing;
- **nothing extra**: for every documented permission, some call the product made would be refused without it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

from devstack.graph_simulator.authz import authorize
from devstack.graph_simulator.contract import contract
from devstack.graph_simulator.served import Authorized
from tests.conftest import GROUP_HELPDESK, TENANT, Stack, body_of, valid_request

ROOT = Path(__file__).resolve().parents[2]
DEFINITION = json.loads((ROOT / "scripts" / "graph" / "permissions.json").read_text())
# Every group: the scenario uses each optional feature (PIM mode included).
SCENARIO_GROUPS = ("always", "permanentDelete", "emailNotifications", "pim")


def documented() -> set[str]:
    groups = DEFINITION["applicationPermissions"]
    return {p for name in SCENARIO_GROUPS for p in groups.get(name, [])}


class _Path(NamedTuple):
    permission_path: str


def authorized_with(call: Authorized, held: set[str]) -> bool:
    """Whether a token holding `held` would be allowed `call` (the map's rule and any handler's extra permission)."""
    from devstack.graph_simulator.errors import GraphError

    body = {name: None for name in call.properties}
    try:
        authorize(contract().permissions, call.method, _Path(call.permission_path), body, frozenset(held))  # type: ignore[arg-type]
    except GraphError:
        return False
    return set(call.granted[1:]) <= held  # what a handler required on top of the map's rule


def exercise_everything(stack: Stack) -> None:
    """One of each kind of call the product makes in an Entra tenant."""
    tenant = stack.tenant
    assert stack.call("GET", f"/api/jit/tenants/{TENANT}/roles").status_code == 200
    assert stack.call("GET", f"/api/jit/tenants/{TENANT}/groups?search=Help").status_code == 200
    channel = {"kind": "email", "addresses": ["helpdesk@msp.example"]}
    assert stack.call("PUT", "/api/jit/channels/helpdesk", channel).status_code in (200, 201)
    privileged = tenant.add_group("Tier 0 admins", is_assignable_to_role=True)
    new = body_of(
        stack.post_request(
            valid_request(
                groups=[GROUP_HELPDESK, privileged],
                temporaryAccessPass={"enabled": True},
                expirationActions=["DeleteUser"],
                notifications={"channels": ["helpdesk"], "events": ["Active"]},
            )
        )
    )
    stack.drain()
    approve_if_waiting(stack, new["id"])
    existing_id = tenant.add_user("pat@contoso.onmicrosoft.com", "Pat")
    existing = body_of(
        stack.post_request(
            valid_request(user={"type": "existing", "id": existing_id}, expirationActions=["RemoveRoles"], ticketId="4712")
        )
    )
    disabled = body_of(stack.post_request(valid_request(expirationActions=["DisableUser"], ticketId="4713")))
    stack.drain()
    for grant in (new, existing, disabled):
        assert body_of(stack.call("GET", f"/api/jit/requests/{grant['id']}"))["status"] == "Active", grant
        stack.call("POST", f"/api/jit/requests/{grant['id']}/revoke", {"reason": "done"})
    stack.drain()
    for grant in (new, existing, disabled):
        assert body_of(stack.call("GET", f"/api/jit/requests/{grant['id']}"))["status"] == "Revoked", grant
    in_pim = body_of(
        stack.post_request(valid_request(directory="entra-pim", groups=[GROUP_HELPDESK], ticketId="4714"))
    )
    stack.drain()
    assert body_of(stack.call("GET", f"/api/jit/requests/{in_pim['id']}"))["status"] == "Active", in_pim
    stack.clock.advance(minutes=10)  # PIM refuses to end an assignment in its first five minutes
    stack.graph.advance(600)
    stack.call("POST", f"/api/jit/requests/{in_pim['id']}/revoke", {"reason": "done"})
    stack.drain()
    assert body_of(stack.call("GET", f"/api/jit/requests/{in_pim['id']}"))["status"] == "Revoked"
    tenant.add_user("ghost@contoso.onmicrosoft.com", "Ghost", employee_type="JIT:01JD0000000000000000000777")
    stack.host.fire("drift_check")
    stack.drain()
    assert tenant.sent_messages, "the email notification went out"


def approve_if_waiting(stack: Stack, grant_id: str) -> None:
    from tests.conftest import principal

    grant = body_of(stack.call("GET", f"/api/jit/requests/{grant_id}"))
    if grant["status"] == "AwaitingApproval":
        approver = principal("ann@msp.com", "Jit.Approver")
        assert stack.call("POST", f"/api/jit/requests/{grant_id}/approve", {"comment": "ok"}, approver).status_code == 202
        stack.drain()


def test_the_documented_permissions_are_what_the_calls_need(make_stack: Any) -> None:
    consented = documented()
    stack: Stack = make_stack(
        onboard=(),
        JIT_PERMANENT_DELETE="true",
        JIT_NOTIFY_MAILBOX="jit-notify@contoso.onmicrosoft.com",
        JIT_NOTIFY_MAIL_TENANT=TENANT,
    )
    stack.tenant.add_user("jit-notify@contoso.onmicrosoft.com", "JIT notifications", has_mailbox=True)
    stack.tenant.consent(permissions=consented, directory_roles=[DEFINITION["directoryRole"]])
    stack.graph.served_log.reset()
    stack.onboard(TENANT, directories=("entra", "entra-pim"))
    exercise_everything(stack)

    assert not stack.graph.denied, f"refused with the documented set: {sorted(stack.graph.denied)}"
    calls = stack.graph.authorized
    needed_by = {p: sorted({f"{c.method} {c.permission_path}" for c in calls if not authorized_with(c, consented - {p})}) for p in consented}
    superfluous = sorted(p for p, needing in needed_by.items() if not needing)
    assert not superfluous, f"documented but no call needs them: {superfluous}"

