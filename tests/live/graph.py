"""The suite's own view of the directory: plain HTTPS calls to Microsoft Graph (or to the simulator's Graph API),
independent of the product's Graph adapter, so the product's work is checked by a second pair of eyes.

Only the base URL and where the token comes from differ between modes: a certificate credential against Entra ID,
or the simulator's stand-in for Entra's token endpoint.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import httpx
from azure.identity import CertificateCredential

from jit.adapters.graph.credentials import DEVELOPMENT_APP_ID, DEVELOPMENT_CLIENT_CREDENTIAL, GRAPH_DEFAULT_SCOPE

from .config import LiveTenant

GRAPH_BASE_URL = "https://graph.microsoft.com/v1.0"
_RETRIED = frozenset({429, 500, 502, 503, 504})
_USER_FIELDS = (
    "id,displayName,userPrincipalName,accountEnabled,employeeType,lastPasswordChangeDateTime,signInSessionsValidFromDateTime"
)
T = TypeVar("T")


class TokenSource(Protocol):
    def token(self) -> str: ...


class CertificateTokens:
    """App-only Graph tokens from Entra ID, for the app registration holding the certificate."""

    def __init__(self, tenant: LiveTenant) -> None:
        self._credential = CertificateCredential(tenant.tenant, tenant.client_id, certificate_path=str(tenant.certificate_path))

    def token(self) -> str:
        return self._credential.get_token(GRAPH_DEFAULT_SCOPE).token  # azure-identity caches and refreshes


class SimulatorTokens:
    """App-only tokens from the simulator's token endpoint (client credentials, as Entra's v2 endpoint takes them)."""

    def __init__(self, origin: str, tenant: str, app_id: str = DEVELOPMENT_APP_ID) -> None:
        self._url = f"{origin.rstrip('/')}/{tenant}/oauth2/v2.0/token"
        self._app_id = app_id
        self._cached: tuple[str, float] | None = None

    def token(self) -> str:
        if self._cached is not None and self._cached[1] - 300 > time.time():
            return self._cached[0]
        form = {
            "grant_type": "client_credentials",
            "client_id": self._app_id,
            "client_secret": DEVELOPMENT_CLIENT_CREDENTIAL,
            "scope": GRAPH_DEFAULT_SCOPE,
        }
        answer = httpx.post(self._url, data=form, timeout=10)
        answer.raise_for_status()
        body = answer.json()
        self._cached = (str(body["access_token"]), time.time() + int(body["expires_in"]))
        return self._cached[0]


class GraphError(Exception):
    def __init__(self, response: httpx.Response) -> None:
        self.status = response.status_code
        try:
            error = response.json().get("error", {})
        except ValueError:
            error = {}
        self.code = str(error.get("code", ""))
        super().__init__(f"{response.request.method} {response.request.url.path}: {self.status} {self.code} {error.get('message', '')}")


class GraphClient:
    """Graph over HTTPS with a bearer token; retries throttling and transient failures as Graph asks (Retry-After)."""

    def __init__(self, base_url: str, tokens: TokenSource, *, attempts: int = 6) -> None:
        self.base_url = base_url.rstrip("/")
        self._tokens = tokens
        self._attempts = attempts
        self._http = httpx.Client(timeout=httpx.Timeout(30.0))

    def close(self) -> None:
        self._http.close()

    def request(
        self, method: str, path: str, *, json: Any = None, params: dict[str, str] | None = None, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        url = path if path.startswith("http") else f"{self.base_url}{path}"
        for attempt in range(self._attempts):
            response = self._http.request(
                method, url, json=json, params=params, headers={"Authorization": f"Bearer {self._tokens.token()}", **(headers or {})}
            )
            if response.status_code not in _RETRIED or attempt == self._attempts - 1:
                return response
            time.sleep(min(float(response.headers.get("Retry-After", 2 ** attempt)), 30.0))
        raise AssertionError("unreachable")

    def ok(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise GraphError(response)
        return response

    def values(self, path: str, params: dict[str, str] | None = None, headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
        """Every item of a collection, following @odata.nextLink (which carries the query; headers must be resent)."""
        found: list[dict[str, Any]] = []
        page: dict[str, Any] = self.ok("GET", path, params=params, headers=headers).json()
        found += page.get("value", [])
        while page.get("@odata.nextLink"):
            page = self.ok("GET", str(page["@odata.nextLink"]), headers=headers).json()
            found += page.get("value", [])
        return found


class DirectoryApi:
    """What the suite reads and writes in the directory, in Graph's terms."""

    def __init__(self, graph: GraphClient) -> None:
        self.graph = graph

    # Reads -------------------------------------------------------------------------------------------------------

    def user(self, user_id: str) -> dict[str, Any] | None:
        response = self.graph.request("GET", f"/users/{user_id}", params={"$select": _USER_FIELDS})
        if response.status_code == 404:
            return None
        if response.status_code >= 400:
            raise GraphError(response)
        body: dict[str, Any] = response.json()
        return body

    def deleted_user(self, user_id: str) -> dict[str, Any] | None:
        response = self.graph.request("GET", f"/directory/deletedItems/{user_id}")
        if response.status_code == 404:
            return None
        if response.status_code >= 400:
            raise GraphError(response)
        body: dict[str, Any] = response.json()
        return body

    def role_assignments(self, principal_id: str) -> list[dict[str, Any]]:
        return self.graph.values("/roleManagement/directory/roleAssignments", {"$filter": f"principalId eq '{principal_id}'"})

    def roles_of(self, principal_id: str) -> set[str]:
        """Role definition ids assigned to the principal directly (lower case)."""
        return {str(a["roleDefinitionId"]).lower() for a in self.role_assignments(principal_id)}

    def members_of(self, group_id: str) -> set[str]:
        return {str(m["id"]).lower() for m in self.graph.values(f"/groups/{group_id}/members", {"$select": "id"})}

    def taps(self, user_id: str) -> list[dict[str, Any]]:
        return self.graph.values(f"/users/{user_id}/authentication/temporaryAccessPassMethods")

    def role_template(self, display_name: str) -> str:
        """The template id of a built-in role (what the product assigns, and the id Graph reports back)."""
        for definition in self.graph.values("/roleManagement/directory/roleDefinitions"):
            if str(definition.get("displayName", "")).lower() == display_name.lower():
                return str(definition.get("templateId") or definition["id"]).lower()
        raise LookupError(f"no role named {display_name!r} in the tenant")

    def initial_domain(self) -> str:
        [organization] = self.graph.values("/organization", {"$select": "id,verifiedDomains"})
        return next(str(d["name"]) for d in organization["verifiedDomains"] if d.get("isInitial"))

    def users_named(self, prefix: str) -> list[dict[str, Any]]:
        return self.graph.values("/users", {"$filter": f"startswith(displayName,'{_literal(prefix)}')", "$select": "id,displayName"})

    def deleted_users_named(self, prefix: str) -> list[dict[str, Any]]:
        return self.graph.values(
            "/directory/deletedItems/microsoft.graph.user",
            {"$filter": f"startswith(displayName,'{_literal(prefix)}')", "$select": "id,displayName"},
        )

    def groups_named(self, prefix: str) -> list[dict[str, Any]]:
        return self.graph.values("/groups", {"$filter": f"startswith(displayName,'{_literal(prefix)}')", "$select": "id,displayName"})

    # Writes (the suite's own fixtures, and out-of-band changes a scenario makes) ------------------------------------

    def create_user(self, display_name: str, upn: str, password: str) -> str:
        body = {
            "accountEnabled": True,
            "displayName": display_name,
            "mailNickname": upn.split("@", 1)[0].replace(".", ""),
            "userPrincipalName": upn,
            "passwordProfile": {"forceChangePasswordNextSignIn": True, "password": password},
        }
        return str(self.graph.ok("POST", "/users", json=body).json()["id"])

    def create_security_group(self, display_name: str, nickname: str) -> str:
        body = {"displayName": display_name, "mailEnabled": False, "mailNickname": nickname, "securityEnabled": True}
        return str(self.graph.ok("POST", "/groups", json=body).json()["id"])

    def add_member(self, group_id: str, object_id: str) -> None:
        ref = {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{object_id}"}
        self.graph.ok("POST", f"/groups/{group_id}/members/$ref", json=ref)

    def assign_role(self, principal_id: str, role_id: str) -> str:
        body = {"principalId": principal_id, "roleDefinitionId": role_id, "directoryScopeId": "/"}
        return str(self.graph.ok("POST", "/roleManagement/directory/roleAssignments", json=body).json()["id"])

    def remove(self, path: str) -> bool:
        """DELETE that treats "already gone" as done; True when something was deleted now."""
        response = self.graph.request("DELETE", path)
        if response.status_code == 404:
            return False
        if response.status_code >= 400:
            raise GraphError(response)
        return True


def eventually(check: Callable[[], T], accept: Callable[[T], bool], timeout_s: float, interval_s: float = 3.0) -> T:
    """Read until `accept` holds or time runs out; the last reading either way (the caller asserts on it).

    Entra ID is eventually consistent: a change another replica made may be invisible for seconds. The simulator
    answers at once, so there this is a single read."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if accept(value) or time.monotonic() >= deadline:
            return value
        time.sleep(interval_s)


def _literal(text: str) -> str:
    return text.replace("'", "''")
