"""The contract: the vendored CSDL and permission extracts, and the checks every request goes through."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from devstack.graph_simulator import GraphSimulator, Tenant, least_privileged
from devstack.graph_simulator.contract import contract
from devstack.graph_simulator.contract.schema import HERE as CONTRACT_DIR
from devstack.graph_simulator.handlers import register_all
from devstack.graph_simulator.routing import Router

from .helpers import assert_graph_error, create_user

REPO_ROOT = Path(__file__).resolve().parents[2]
METADATA_MIRROR = Path("/work/.mirror/microsoftgraph+msgraph-metadata/repo")
PERMISSIONS_MIRROR = Path("/work/.mirror/microsoftgraph+microsoft-graph-devx-content/repo")
PROPERTY_MISSING = "Property '{}' does not exist as a declared property or extension property."


def test_extracts_are_compact_and_record_their_source() -> None:
    for name, repo, path in (
        ("csdl.json", "microsoftgraph/msgraph-metadata", "clean_v10_metadata/cleanMetadata.xml"),
        ("permissions.json", "microsoftgraph/microsoft-graph-devx-content", "permissions/new/permissions.json"),
    ):
        file = CONTRACT_DIR / name
        assert file.stat().st_size < 1_000_000
        source = json.loads(file.read_text())["source"]
        assert (source["repository"], source["path"]) == (repo, path)
        assert len(source["commit"]) == 40
    schema = contract().schema
    for root in ("users", "groups", "directoryObjects", "directory", "roleManagement", "policies", "organization",
                 "identityGovernance", "subscribedSkus", "servicePrincipals"):  # fmt: skip
        assert root.lower() in schema.container


@pytest.mark.skipif(not (METADATA_MIRROR.exists() and PERMISSIONS_MIRROR.exists()), reason="source mirrors not on this machine")
def test_regenerating_from_the_sources_reproduces_the_extracts(tmp_path: Path) -> None:
    script = REPO_ROOT / "scripts" / "graph-contract"
    subprocess.run(
        [str(script), "--metadata", str(METADATA_MIRROR), "--permissions", str(PERMISSIONS_MIRROR), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
        env={"PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin"},
    )
    for name in ("csdl.json", "permissions.json"):
        assert (tmp_path / name).read_text() == (CONTRACT_DIR / name).read_text(), name


@pytest.mark.parametrize(
    ("path", "kind", "type_name", "permission_path"),
    [
        ("/users", "collection", "microsoft.graph.user", "/users"),
        ("/users/a%40b.com", "entity", "microsoft.graph.user", "/users/{id}"),
        ("/users/x/memberOf/microsoft.graph.group", "collection", "microsoft.graph.group", "/users/{id}/memberof/microsoft.graph.group"),
        ("/users/$count", "count", "microsoft.graph.user", "/users/$count"),
        ("/groups/g/members/$ref", "ref", "microsoft.graph.directoryObject", "/groups/{id}/members/$ref"),
        ("/groups/g/members/u/$ref", "ref", "microsoft.graph.directoryObject", "/groups/{id}/members/{id}/$ref"),
        ("/users/x/revokeSignInSessions", "action", None, "/users/{id}/revokesigninsessions"),
        ("/directory/deletedItems/microsoft.graph.user", "collection", "microsoft.graph.user", "/directory/deleteditems/microsoft.graph.user"),
        (
            "/roleManagement/directory/roleAssignmentScheduleInstances/filterByCurrentUser(on='principal')",
            "function",
            None,
            "/rolemanagement/directory/roleassignmentscheduleinstances/filterbycurrentuser(on={id})",
        ),
    ],
)
def test_paths_resolve_as_odata_does(path: str, kind: str, type_name: str | None, permission_path: str) -> None:
    resolved = contract().resolve(path)
    assert resolved.kind == kind
    assert (resolved.type.name if resolved.type else None) == type_name
    assert resolved.permission_path == permission_path


def test_least_privileged_from_the_map_and_the_pages_it_omits() -> None:
    assert least_privileged("GET", "/users/{id}/memberOf") == ("Directory.Read.All",)
    assert least_privileged("POST", "/users/{id}/revokeSignInSessions") == ("User.RevokeSessions.All",)
    assert least_privileged("POST", "/users/{id}/authentication/temporaryAccessPassMethods") == ("UserAuthMethod-TAP.ReadWrite.All",)
    assert least_privileged("POST", "/roleManagement/directory/roleAssignments") == ("RoleManagement.ReadWrite.Directory",)
    assert least_privileged("GET", "/subscribedSkus") == ("LicenseAssignment.Read.All",)
    # Pages the map omits (permissions-docs.json): $ref membership, deleted items.
    assert least_privileged("POST", "/groups/{id}/members/$ref") == ("GroupMember.ReadWrite.All",)
    assert least_privileged("DELETE", "/groups/{id}/members/{id}/$ref") == ("GroupMember.ReadWrite.All",)
    assert least_privileged("DELETE", "/directory/deletedItems/{id}") == ("User.DeleteRestore.All",)
    assert least_privileged("POST", "/users") == ("User.ReadWrite.All",)  # user-post-users.md and the map agree
    # Property-scoped PATCH.
    scoped = least_privileged("PATCH", "/users/{id}", ["accountEnabled", "passwordProfile"])
    assert scoped == ("User.EnableDisableAccount.All", "User-PasswordProfile.ReadWrite.All")
    assert least_privileged("PATCH", "/users/{id}", ["displayName"]) == ("User.ReadWrite.All",)


def test_every_route_the_simulator_serves_is_described_and_mapped() -> None:
    """No handler may exist for a call Microsoft does not describe, or whose permission nobody could check."""
    graph = contract()
    router = Router()
    register_all(router)
    for route in router.routes:
        path = route.template.replace("{memberId}", "{id}").replace("{methodId}", "{id}")
        resolved = graph.resolve(path)
        assert route.method in resolved.methods(), route
        assert graph.permissions.rule(route.method, resolved.permission_path) is not None, route


@pytest.mark.parametrize(
    ("method", "path", "status", "code", "message"),
    [
        ("GET", "/nonsense/thing", 400, "BadRequest", "Resource not found for the segment 'nonsense'."),
        ("GET", "/users/x/shoes", 400, "BadRequest", "Resource not found for the segment 'shoes'."),
        ("GET", "/users/x/microsoft.graph.group", 400, "BadRequest", "Resource not found for the segment 'microsoft.graph.group'."),
        ("GET", "/users/x/revokeSignInSessions", 405, "Request_BadRequest", "Specified HTTP method is not allowed for the request target."),
        ("PUT", "/users", 405, "Request_BadRequest", "Specified HTTP method is not allowed for the request target."),
        ("POST", "/groups/g/members", 405, "Request_BadRequest", "Specified HTTP method is not allowed for the request target."),
        ("GET", "/users/x/messages/m/attachments", 501, "NotImplemented", None),
    ],
)
def test_paths_and_methods_outside_the_description(client: httpx.Client, method: str, path: str, status: int, code: str, message: str | None) -> None:
    assert_graph_error(client.request(method, path), status, code, message)


def test_a_described_call_the_simulator_does_not_implement_is_501(client: httpx.Client) -> None:
    """Graph knows GET /users/{id}/licenseDetails; the simulator says it doesn't model it rather than lying."""
    error = assert_graph_error(client.get("/users/x/licenseDetails"), 501, "NotImplemented")
    assert "does not model" in error["message"]


def test_query_option_property_names(client: httpx.Client, tenant: Tenant) -> None:
    user = create_user(client, tenant, "q")
    ok = client.get(f"/users/{user}", params={"$select": "id,employeeType,onPremisesExtensionAttributes"})
    assert ok.status_code == 200
    for params, name in (
        ({"$select": "id,hairColour"}, "hairColour"),
        ({"$filter": "hairColour eq 'x'"}, "hairColour"),
        ({"$filter": "onPremisesExtensionAttributes/extensionAttribute99 eq 'x'"}, "onPremisesExtensionAttributes/extensionAttribute99"),
        ({"$orderby": "hairColour desc"}, "hairColour"),
    ):
        response = client.get("/users", params=params)
        assert_graph_error(response, 400, "Request_UnsupportedQuery", PROPERTY_MISSING.format(name))
    assert_graph_error(client.get("/users", params={"$expand": "bogus"}), 400, "BadRequest")
    # directoryObject collections are polymorphic: properties of derived types may be selected.
    assert client.get(f"/users/{user}/memberOf", params={"$select": "id,displayName,roleTemplateId"}).status_code == 200


def test_body_properties_must_be_declared(client: httpx.Client, tenant: Tenant) -> None:
    user = create_user(client, tenant, "b")
    bad: list[tuple[str, str, dict[str, Any], str]] = [
        ("PATCH", f"/users/{user}", {"displayName": "x", "shoeSize": 44}, "shoeSize"),
        ("PATCH", f"/users/{user}", {"passwordProfile": {"password": "Xw9!kLm#2qRt", "colour": "red"}}, "colour"),
        ("POST", f"/users/{user}/authentication/temporaryAccessPassMethods", {"lifetimeInMinutes": 60, "pin": "1"}, "pin"),
        ("POST", "/roleManagement/directory/roleAssignments", {"principalId": user, "role": "x"}, "role"),
        ("POST", "/groups/00000000-0000-0000-0000-000000000001/members/$ref", {"@odata.id": "x", "extra": 1}, "extra"),
    ]
    for method, path, body, name in bad:
        response = client.request(method, path, json=body)
        assert_graph_error(response, 400, "Request_BadRequest", PROPERTY_MISSING.format(name))
    # Annotations, and members of the derived type @odata.type names, are fine.
    assert client.patch(f"/users/{user}", json={"@odata.type": "#microsoft.graph.user", "jobTitle": "x"}).status_code == 204
    wrong_type = client.patch(f"/users/{user}", json={"@odata.type": "#microsoft.graph.group", "jobTitle": "x"})
    assert_graph_error(wrong_type, 400, "BadRequest")
    # Action parameters.
    unknown_param = client.post(f"/users/{user}/sendMail", json={"message": {"subject": "x"}, "importance": "high"})
    error = assert_graph_error(unknown_param, 400, "BadRequest")
    assert "'importance'" in error["message"] and "'sendMail'" in error["message"]
    nested = client.post(f"/users/{user}/sendMail", json={"message": {"subject": "x", "smell": "nice"}})
    assert_graph_error(nested, 400, "Request_BadRequest", PROPERTY_MISSING.format("smell"))


def test_checks_apply_inside_batch(client: httpx.Client, tenant: Tenant) -> None:
    requests = [
        {"id": "1", "method": "GET", "url": "/users?$select=id,hairColour"},
        {"id": "2", "method": "GET", "url": "/nonsense"},
        {"id": "3", "method": "PATCH", "url": "/users/x", "headers": {"Content-Type": "application/json"}, "body": {"k": 1}},
    ]
    responses = {r["id"]: r for r in client.post("/$batch", json={"requests": requests}).json()["responses"]}
    assert responses["1"]["status"] == 400 and responses["1"]["body"]["error"]["code"] == "Request_UnsupportedQuery"
    assert responses["2"]["body"]["error"]["message"] == "Resource not found for the segment 'nonsense'."
    assert responses["3"]["body"]["error"]["message"] == PROPERTY_MISSING.format("k")


def test_contract_errors_come_after_authentication(sim: GraphSimulator) -> None:
    response = httpx.get(f"{sim.base_url}/nonsense")
    assert response.status_code == 401
