"""Every HTTP route, declared once: its name, method, path, who may call it, and the handler that serves it.

The blueprint (jit/api/http_api.py) registers the functions from this table, and the API description
(jit/api/openapi/) derives its paths from it. Handlers are named as "module:function" and imported on their first
call, so a cold start imports only what the invoked function needs.

Who may call:
- PEOPLE: a bearer token from Entra ID (people, and applications with their own Entra ID token). The Functions host
  lets the request through (anonymous level); the app validates the token itself, so identity holds on every hosting
  plan, with or without App Service Authentication.
- MACHINES: a function key, checked by the Functions host. Such routes are served under `api/svc/...` as well; a key
  is one configured service identity, which never approves and never receives a credential.
- PUBLIC: nobody needs to say who they are (health, the API description, the portal's files, its sign-in settings).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Flag, auto


class Audience(Flag):
    PEOPLE = auto()
    MACHINES = auto()
    PUBLIC = auto()
    ANYONE_SIGNED_IN = PEOPLE | MACHINES


API = "api/"
MACHINE_PREFIX = "api/svc/"


@dataclass(frozen=True)
class Route:
    name: str
    method: str
    path: str  # without the leading "api/" of API routes (see `full_path`)
    handler: str  # "module:function" under jit.api
    audience: Audience = Audience.PEOPLE
    api: bool = True  # under "api/"; False for the portal's own paths
    # It may ask for work at once (provision, end, onboard): the function gets the work queue's output binding.
    enqueues: bool = False

    @property
    def full_path(self) -> str:
        return f"{API}{self.path}" if self.api else self.path

    @property
    def machine_path(self) -> str:
        return f"{MACHINE_PREFIX}{self.path}"


_P, _M, _PUB = Audience.PEOPLE, Audience.ANYONE_SIGNED_IN, Audience.PUBLIC

ROUTES: tuple[Route, ...] = (
    # Requests and grants
    Route("create_request", "POST", "jit/requests", "requests_api:create", _M, enqueues=True),
    Route("assess_request", "POST", "jit/requests/assess", "requests_api:assess", _M),
    Route("list_requests", "GET", "jit/requests", "requests_api:list_grants", _M),
    Route("get_request", "GET", "jit/requests/{id}", "requests_api:get", _M),
    Route("revoke_request", "POST", "jit/requests/{id}/revoke", "requests_api:revoke", _M, enqueues=True),
    Route("extend_request", "POST", "jit/requests/{id}/extend", "requests_api:extend", _M, enqueues=True),
    Route("approve_request", "POST", "jit/requests/{id}/approve", "requests_api:approve", _P, enqueues=True),
    Route("deny_request", "POST", "jit/requests/{id}/deny", "requests_api:deny", _P),
    Route("get_credentials", "GET", "jit/requests/{id}/credentials", "requests_api:credentials", _P),
    Route("list_approvals", "GET", "jit/approvals", "requests_api:approvals", _P),
    Route("whoami", "GET", "jit/me", "requests_api:whoami", _M),
    # Tenants and what they offer
    Route("list_tenants", "GET", "jit/tenants", "tenants_api:list_tenants", _M),
    Route("onboard_tenant", "POST", "jit/tenants", "tenants_api:onboard", _M, enqueues=True),
    Route("get_tenant", "GET", "jit/tenants/{tenantId}", "tenants_api:get", _M),
    Route("configure_tenant", "PATCH", "jit/tenants/{tenantId}", "tenants_api:configure", _M, enqueues=True),
    Route("check_tenant", "POST", "jit/tenants/{tenantId}/check", "tenants_api:check", _M, enqueues=True),
    Route("list_tenant_roles", "GET", "jit/tenants/{tenantId}/roles", "tenants_api:roles", _M),
    Route("list_tenant_groups", "GET", "jit/tenants/{tenantId}/groups", "tenants_api:groups", _M),
    # Administration
    Route("get_policy", "GET", "jit/policies/{scope}", "admin_api:get_policy", _M),
    Route("put_policy", "PUT", "jit/policies/{scope}", "admin_api:put_policy", _M),
    Route("policy_history", "GET", "jit/policies/{scope}/history", "admin_api:policy_history", _M),
    Route("list_templates", "GET", "jit/templates", "admin_api:list_templates", _M),
    Route("get_template", "GET", "jit/templates/{name}", "admin_api:get_template", _M),
    Route("put_template", "PUT", "jit/templates/{name}", "admin_api:put_template", _M),
    Route("delete_template", "DELETE", "jit/templates/{name}", "admin_api:delete_template", _M),
    Route("list_channels", "GET", "jit/channels", "admin_api:list_channels", _M),
    Route("put_channel", "PUT", "jit/channels/{name}", "admin_api:put_channel", _M),
    Route("delete_channel", "DELETE", "jit/channels/{name}", "admin_api:delete_channel", _M),
    Route("list_drift", "GET", "jit/drift", "admin_api:drift", _M),
    # Audit
    Route("read_audit", "GET", "jit/audit", "audit_api:read", _M),
    Route("monthly_report", "GET", "jit/reports/monthly", "audit_api:monthly", _M),
    # Service
    Route("health", "GET", "health", "service_api:health", _PUB),
    Route("get_openapi", "GET", "jit/openapi.json", "service_api:openapi", _PUB),
    Route("portal_settings", "GET", "jit/portal/settings", "service_api:portal_settings", _PUB),
    Route("portal_index", "GET", "portal", "portal_api:index", _PUB, api=False),
    Route("portal_files", "GET", "portal/{*path}", "portal_api:files", _PUB, api=False),
)
