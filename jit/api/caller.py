"""Who is calling.

Behind App Service Authentication (Easy Auth) the platform authenticates the caller and passes its claims in
`X-MS-CLIENT-PRINCIPAL`, removing any such header a client sent; only then (`JIT_TRUST_CLIENT_PRINCIPAL=true`) is it
used. A call with only a function key is the configured service identity (`JIT_SERVICE_IDENTITY`, with
`JIT_SERVICE_ROLES`); the person a flow says it acts for (`X-JIT-Requested-For`) is recorded as asserted.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

import azure.functions as func

from jit import bootstrap
from jit.domain.caller import AppRole, Caller
from jit.domain.errors import Unauthenticated

OBJECT_ID_CLAIMS = ("http://schemas.microsoft.com/identity/claims/objectidentifier", "oid")
NAME_CLAIMS = ("preferred_username", "upn", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn", "name")
ROLE_CLAIMS = ("roles", "http://schemas.microsoft.com/ws/2008/06/identity/claims/role")


def caller(req: func.HttpRequest) -> Caller:
    settings = bootstrap.services().settings
    principal = req.headers.get("X-MS-CLIENT-PRINCIPAL")
    if principal and settings.trust_client_principal:
        return _from_principal(principal)
    asserted = (req.headers.get("X-JIT-Requested-For") or "").strip()[:256] or None
    roles = frozenset(AppRole(r) for r in settings.service_roles)
    return Caller(id=f"service:{settings.service_identity}", name=settings.service_identity, roles=roles, asserted_for=asserted)


def _from_principal(header: str) -> Caller:
    try:
        decoded: dict[str, Any] = json.loads(base64.b64decode(header, validate=False))
        claims = [(str(c["typ"]), str(c["val"])) for c in decoded.get("claims", [])]
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise Unauthenticated("X-MS-CLIENT-PRINCIPAL is not a valid client principal") from None
    role_type = str(decoded.get("role_typ") or "roles")
    name_type = str(decoded.get("name_typ") or "")

    def first(types: tuple[str, ...]) -> str:
        return next((value for kind, value in claims if kind in types), "")

    object_id = first(OBJECT_ID_CLAIMS)
    if not object_id:
        raise Unauthenticated("the client principal has no object id claim")
    name = first((name_type, *NAME_CLAIMS)) if name_type else first(NAME_CLAIMS)
    known = {r.value: r for r in AppRole}
    roles = frozenset(known[value] for kind, value in claims if kind in (role_type, *ROLE_CLAIMS) and value in known)
    return Caller(id=object_id, name=name or object_id, roles=roles)
