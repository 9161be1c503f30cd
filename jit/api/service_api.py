"""The service itself: health, its API description, and the settings the portal signs people in with."""

from __future__ import annotations

import json
import logging

import azure.functions as func

from jit.api.http import Call, answer

log = logging.getLogger(__name__)


def health(call: Call) -> func.HttpResponse:
    try:
        call.services.storage.tables.get_service_properties()
    except Exception as error:  # noqa: BLE001 - health reports, it does not raise
        log.warning("health check failed: %s", type(error).__name__)
        return answer({"status": "unhealthy", "reason": type(error).__name__}, 503)
    return answer({"status": "healthy"})


def openapi(call: Call) -> func.HttpResponse:
    """The API description, with this service's sign-in (authority, tenant, the API's scope) filled in."""
    from jit.api.openapi import SignIn, openapi_document

    server = call.absolute("")
    sign_in = SignIn.from_identity(call.services.settings.identity)
    return func.HttpResponse(json.dumps(openapi_document(server or None, sign_in)), status_code=200, mimetype="application/json")


def portal_settings(call: Call) -> func.HttpResponse:
    """What the portal needs to sign people in (nothing secret): the authority, the portal's client id, the API's
    scope. From JIT_PORTAL_CLIENT_ID and the JIT_AUTH_* settings."""
    settings = call.services.settings
    identity = settings.identity
    tenant = identity.tenant_ids[0] if identity.tenant_ids else None
    audience = next((a for a in identity.audiences if a.startswith("api://")), identity.client_id)
    body = {
        "signIn": identity.enabled and bool(settings.portal_client_id),
        "authority": f"{identity.authority}/{tenant}/v2.0" if tenant else None,
        "clientId": settings.portal_client_id,
        "scope": f"{audience}/access_as_user" if audience else None,
    }
    return answer(body, headers={"Cache-Control": "no-store"})
