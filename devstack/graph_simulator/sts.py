"""The simulator's stand-in for Entra's v2 token endpoint: POST /{tenant}/oauth2/v2.0/token (client credentials).

Request and success response: MicrosoftDocs/entra-docs docs/identity-platform/v2-oauth2-client-creds-grant-flow.md
("Get a token"): form fields grant_type=client_credentials, client_id, scope={resource}/.default, and a client
secret or assertion; `{tenant}` is "in GUID or domain-name format"; the answer is
{"token_type": "Bearer", "expires_in": ..., "access_token": ...}. Errors are 400 with
{error, error_description, error_codes, timestamp, trace_id, correlation_id, error_uri} (same page, "Error
response"), codes as Entra sends them (see BEHAVIOUR.md for each source).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from .messages import SimResponse
from .state import Tenant, is_guid
from .tokens import GRAPH_APP_ID, GRAPH_AUDIENCE

if TYPE_CHECKING:
    from .simulator import GraphSimulator

TOKEN_LIFETIME_S = 3599
GRAPH_SCOPES = {f"{GRAPH_AUDIENCE}/.default", f"{GRAPH_APP_ID}/.default"}


def sts_error(status: int, error: str, code: int, message: str) -> SimResponse:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
    body = {
        "error": error,
        "error_description": f"AADSTS{code}: {message}\r\nTrace ID: {trace}\r\nCorrelation ID: {correlation}\r\nTimestamp: {now}",
        "error_codes": [code],
        "timestamp": now,
        "trace_id": trace,
        "correlation_id": correlation,
        "error_uri": f"https://login.microsoftonline.com/error?code={code}",
    }
    return SimResponse(status, body)


def resolve_tenant(sim: GraphSimulator, reference: str) -> Tenant | None:
    """A tenant by GUID or by one of its verified domains, as Entra resolves the authority."""
    with sim.lock:
        if is_guid(reference):
            return sim.tenants.get(reference.lower())
        return next((t for t in sim.tenants.values() if t.verified_domain(reference)), None)


def handle_token(sim: GraphSimulator, method: str, tenant_ref: str, raw_body: bytes) -> SimResponse:
    if method.upper() != "POST":
        return sts_error(400, "invalid_request", 900561, "The endpoint only accepts POST requests. Received a GET request.")
    form: Mapping[str, str] = dict(parse_qsl(raw_body.decode("utf-8", "replace"), keep_blank_values=True))
    tenant = resolve_tenant(sim, tenant_ref)
    if tenant is None:
        return sts_error(
            400,
            "invalid_tenant",
            90002,
            f"Tenant '{tenant_ref}' not found. Check to make sure you have the correct tenant ID and are signing into "
            "the correct cloud. Check with your subscription administrator, this may happen if there are no active "
            "subscriptions for the tenant.",
        )
    grant_type = form.get("grant_type", "")
    if grant_type != "client_credentials":
        return sts_error(400, "unsupported_grant_type", 70003, f"The app requested an unsupported grant type '{grant_type}'.")
    client_id = (form.get("client_id") or "").lower()
    if not client_id:
        return sts_error(400, "invalid_request", 900144, "The request body must contain the following parameter: 'client_id'.")
    scope = form.get("scope", "")
    if scope not in GRAPH_SCOPES:
        return sts_error(
            400,
            "invalid_scope",
            70011,
            f"The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid.",
        )
    if not (form.get("client_secret") or form.get("client_assertion")):
        return sts_error(
            401,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        )
    if client_id not in sim.apps:
        return sts_error(
            400,
            "unauthorized_client",
            700016,
            f"Application with identifier '{client_id}' was not found in the directory '{tenant.display_name}'. This can "
            "happen if the application has not been installed by the administrator of the tenant or consented to by "
            "any user in the tenant. You may have sent your authentication request to the wrong tenant.",
        )
    with sim.lock:
        sp = tenant.service_principals.get(client_id)
        if sp is None:
            return sts_error(
                400,
                "invalid_client",
                7000229,
                f"The client application {client_id} is missing service principal in the tenant {tenant.id}. "
                "See instructions here: https://go.microsoft.com/fwlink/?linkid=2225119",
            )
        directory_roles = tenant.roles_of(sp.id, include_groups=False)
        permissions = set(sp.permissions)
    token = sim.issuer.issue(
        tenant.id,
        client_id,
        sp.id,
        permissions,
        lifetime_s=TOKEN_LIFETIME_S,
        app_display_name=sp.display_name,
        directory_roles=directory_roles,
    )
    body: dict[str, Any] = {
        "token_type": "Bearer",
        "expires_in": TOKEN_LIFETIME_S,
        "ext_expires_in": TOKEN_LIFETIME_S,
        "access_token": token,
    }
    return SimResponse(200, body, {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"})
