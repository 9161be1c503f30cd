"""Who is calling: a person or an application with an Entra ID bearer token (validated here, on any hosting plan),
or, on a function-key route, the one configured service identity (the Functions host checked the key)."""

from __future__ import annotations

import azure.functions as func

from jit.domain.caller import AppRole, Caller, CallerKind
from jit.domain.errors import JitError, Unauthenticated
from jit.settings import Settings


class SignInUnavailable(JitError):
    """Entra ID's signing keys could not be fetched: nobody can be authenticated right now (a 503, not a 401)."""


def caller_of(req: func.HttpRequest, *, by_key: bool, settings: Settings) -> Caller:
    if by_key:
        asserted = (req.headers.get("X-JIT-Requested-For") or "").strip()[:256] or None
        roles = frozenset(AppRole(r) for r in settings.service_roles)
        return Caller(
            id=f"service:{settings.service_identity}",
            name=settings.service_identity,
            roles=roles,
            kind=CallerKind.SERVICE_KEY,
            asserted_for=asserted,
        )
    from jit.identity import Reason, TokenRejected, bearer_token, shared_validator

    token = bearer_token(req.headers.get("Authorization"))
    if token is None:
        raise Unauthenticated("sign in with Entra ID: send an access token for this API as 'Authorization: Bearer <token>'")
    if not settings.identity.enabled:
        raise Unauthenticated(
            "this service accepts no bearer tokens: JIT_AUTH_CLIENT_ID is not set (machines use /api/svc/ with a key)"
        )
    try:
        principal = shared_validator(settings.identity).validate(token)
    except TokenRejected as rejected:
        if rejected.reason == Reason.KEYS_UNAVAILABLE:
            raise SignInUnavailable("Entra ID's signing keys could not be fetched; try again shortly") from None
        raise Unauthenticated(f"the access token was refused: {rejected.reason}") from None
    known = {r.value: r for r in AppRole}
    roles = frozenset(known[r] for r in principal.roles if r in known)
    kind = CallerKind.PERSON if principal.is_person else CallerKind.APPLICATION
    return Caller(id=principal.object_id, name=principal.display, roles=roles, kind=kind)
