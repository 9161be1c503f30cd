"""The OpenAPI 3.1 document: every API route of `routes.ROUTES` at each path it is registered at, described by
`operations.DOCS`, with the request models' own schemas and the response models of `models.py`.

Who may call decides the security of each path, as jit/api/http_api.py registers it:
- a route for people, at `/api/<path>`: an Entra ID bearer token (`entraId`, OAuth 2.0), validated by the app;
- a route machines may call, a second time at `/api/svc/<path>` as `<name>_by_key`: a function key (`functionKey`
  header x-functions-key, or `functionKeyQuery` ?code=), checked by the Functions host;
- a public route: nothing (`security: []`).
The portal's own files (`portal`, `portal/{*path}`) are not API routes and are not described.
"""

from __future__ import annotations

import copy
import functools
import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from jit.api.openapi import models
from jit.api.openapi.operations import DOCS, HEADERS, JSON, PATH_PARAMS, PROBLEM_MEDIA_TYPE, SCHEMA_REF, Answer, Doc, Param
from jit.api.routes import ROUTES, Audience, Route

API_TITLE = "JIT admin access for Microsoft Entra ID"
API_VERSION = "1.0.0"
BY_KEY = "_by_key"
# The delegated scope the API exposes (docs/identity.md: Expose an API → `access_as_user`).
USER_SCOPE = "access_as_user"
DEFAULT_AUTHORITY = "https://login.microsoftonline.com"


@dataclass(frozen=True)
class SignIn:
    """Where callers get an Entra ID token for this API. Until the service's settings are known (the served document
    fills them in from JIT_AUTH_*), TENANT-ID and API-CLIENT-ID stand for the MSP's tenant and the API's client id:
    placeholders that keep the URLs valid URIs, as OpenAPI requires."""

    authority: str = DEFAULT_AUTHORITY
    tenant: str = "TENANT-ID"
    resource: str = "api://API-CLIENT-ID"  # the API's Application ID URI (or its client id)

    @classmethod
    def from_identity(cls, identity: Any) -> SignIn:
        """From `jit.identity.settings.IdentitySettings`, as the portal's settings derive its scope."""
        if not identity.enabled:
            return cls(authority=identity.authority)
        tenant = identity.tenant_ids[0] if identity.tenant_ids else cls.tenant
        resource = next((a for a in identity.audiences if a.startswith("api://")), identity.client_id)
        return cls(identity.authority.rstrip("/"), tenant, resource)

    @property
    def user_scope(self) -> str:
        return f"{self.resource}/{USER_SCOPE}"

    @property
    def app_scope(self) -> str:
        return f"{self.resource}/.default"

    def endpoint(self, name: str) -> str:
        return f"{self.authority}/{self.tenant}/oauth2/v2.0/{name}"


@dataclass(frozen=True)
class Registration:
    """One path a route is registered at: the people's (or public) one, or the function-key one."""

    route: Route
    doc: Doc
    by_key: bool

    @property
    def operation_id(self) -> str:
        return self.route.name + (BY_KEY if self.by_key else "")

    @property
    def path(self) -> str:
        return "/" + (self.route.machine_path if self.by_key else self.route.full_path)

    @property
    def public(self) -> bool:
        return self.route.audience is Audience.PUBLIC

    @property
    def path_names(self) -> list[str]:
        return re.findall(r"\{\*?([^}:?]+)", self.route.path)

    def parameters(self) -> list[Param]:
        own = {p.name: p for p in self.doc.params if p.where == "path"}
        path = [own.get(name) or PATH_PARAMS[name] for name in self.path_names]
        rest = [p for p in self.doc.params if p.where != "path" and (self.by_key or not p.machines_only)]
        return [*path, *rest]


def api_routes() -> list[Route]:
    """The routes of the API (not the portal's files)."""
    return [r for r in ROUTES if r.api]


def registrations() -> list[Registration]:
    """Every path of every API route, as http_api.py registers them. KeyError names a route without a Doc."""
    found: list[Registration] = []
    for route in api_routes():
        doc = DOCS[route.name]
        if route.audience & (Audience.PEOPLE | Audience.PUBLIC):
            found.append(Registration(route, doc, by_key=False))
        if route.audience & Audience.MACHINES:
            found.append(Registration(route, doc, by_key=True))
    return found


# Schemas -------------------------------------------------------------------------------------------------------
def request_models() -> tuple[type[BaseModel], ...]:
    return tuple(dict.fromkeys(d.body for d in DOCS.values() if d.body is not None))


def component_schemas() -> dict[str, dict[str, Any]]:
    """Every schema the document refers to: the request models as validated, the response models as answered."""
    return copy.deepcopy(_component_schemas())


@functools.cache
def _component_schemas() -> dict[str, dict[str, Any]]:
    schemas: dict[str, dict[str, Any]] = {}
    modes: tuple[tuple[tuple[type[BaseModel], ...], JsonSchemaMode], ...] = (
        (request_models(), "validation"),
        (models.RESPONSE_MODELS, "serialization"),
    )
    for group, mode in modes:
        for name, schema in _models_schemas(group, mode).items():
            if name in schemas and schemas[name] != schema:
                raise ValueError(f"two different schemas are called {name}")
            schemas[name] = schema
    schemas.update(copy.deepcopy(models.EXTRA_SCHEMAS))
    return dict(sorted(schemas.items()))


def _models_schemas(group: tuple[type[BaseModel], ...], mode: JsonSchemaMode) -> dict[str, dict[str, Any]]:
    _, top = models_json_schema([(m, mode) for m in group], ref_template=SCHEMA_REF)
    defs: dict[str, dict[str, Any]] = top.get("$defs", {})
    if mode == "serialization":
        # Defaults mean nothing in an answer (a key is there or it is not); request models keep theirs.
        for name, schema in defs.items():
            if getattr(getattr(models, name, None), "__module__", "") == models.__name__:
                for prop in schema.get("properties", {}).values():
                    prop.pop("default", None)
    return defs


def component_name(model: type[BaseModel]) -> str:
    return model.__name__


# The document --------------------------------------------------------------------------------------------------
def openapi_document(server_url: str | None = None, sign_in: SignIn | None = None) -> dict[str, Any]:
    sign_in = sign_in or SignIn()
    paths: dict[str, dict[str, Any]] = {}
    for registration in registrations():
        paths.setdefault(registration.path, {})[registration.route.method.lower()] = _operation(registration, sign_in)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": API_TITLE,
            "version": API_VERSION,
            "description": "Just-in-time admin access for Microsoft Entra ID: a request becomes a grant that is "
            "provisioned in the tenant's directory when it starts and taken away again when it ends.\n\n"
            "People (and applications with a token of their own) call `/api/jit/...` with an Entra ID access token "
            "for this API (`Authorization: Bearer`, security scheme `entraId`); the app validates it and takes the "
            "caller's app roles (Jit.Requester, Jit.Approver, Jit.Admin) from it. Machines with a function key call "
            "the same operations under `/api/svc/jit/...` (operation ids ending in `_by_key`, security scheme "
            "`functionKey`) as the one configured service identity; approving, denying, the approver's inbox and "
            "credentials are for people only and have no such path. `/api/health`, this document and the portal's "
            "sign-in settings need nothing. Errors are RFC 9457 problem details (application/problem+json).",
        },
        "servers": [{"url": server_url or "/"}],
        "tags": [{"name": tag} for tag in dict.fromkeys(d.tag for d in DOCS.values())],
        "paths": paths,
        "components": {"schemas": component_schemas(), "securitySchemes": security_schemes(sign_in)},
    }


def security_schemes(sign_in: SignIn) -> dict[str, dict[str, Any]]:
    return {
        "entraId": {
            "type": "oauth2",
            "description": "An Entra ID access token for this API, sent as `Authorization: Bearer <token>`. People "
            f"sign in with the authorization code flow (with PKCE) and the delegated scope `{sign_in.user_scope}`; "
            f"applications use the client credentials flow and `{sign_in.app_scope}` (they hold the app roles granted "
            f"to them). The authority is `{sign_in.authority}/{sign_in.tenant}/v2.0` (its OpenID configuration at "
            "`.../v2.0/.well-known/openid-configuration`); v1 tokens for the Application ID URI are accepted too.",
            "flows": {
                "authorizationCode": {
                    "authorizationUrl": sign_in.endpoint("authorize"),
                    "tokenUrl": sign_in.endpoint("token"),
                    "scopes": {sign_in.user_scope: "Access the JIT admin API as the signed-in user"},
                },
                "clientCredentials": {
                    "tokenUrl": sign_in.endpoint("token"),
                    "scopes": {sign_in.app_scope: "The app roles of this API granted to the application"},
                },
            },
        },
        "functionKey": {
            "type": "apiKey",
            "in": "header",
            "name": "x-functions-key",
            "description": "A function key of the function app (a host key opens every /api/svc/ route); the Functions "
            "host checks it. The caller is the service identity JIT_SERVICE_IDENTITY with the roles JIT_SERVICE_ROLES.",
        },
        "functionKeyQuery": {"type": "apiKey", "in": "query", "name": "code", "description": "The function key, as ?code=."},
    }


def _security(registration: Registration, sign_in: SignIn) -> list[dict[str, list[str]]]:
    if registration.public:
        return []
    if registration.by_key:
        return [{"functionKey": []}, {"functionKeyQuery": []}]
    if registration.doc.persons_only:
        return [{"entraId": [sign_in.user_scope]}]
    return [{"entraId": [sign_in.user_scope]}, {"entraId": [sign_in.app_scope]}]


def _sign_in_answers(registration: Registration) -> tuple[Answer, ...]:
    """What the gate in front of the handler may answer: the app's 401 for a missing or refused bearer token, or the
    Functions host's bare 401 for a missing or wrong key."""
    if registration.public:
        return ()
    if registration.by_key:
        return (Answer("401", "No valid function key: the Functions host refused the call (no body).", None),)
    return (
        Answer(
            "401",
            "No bearer token, or one the app refused (the reason is in `detail`, never the token).",
            "Problem",
            PROBLEM_MEDIA_TYPE,
            ("WWW-Authenticate",),
        ),
    )


def operation_summary(registration: Registration) -> str:
    return registration.doc.summary + (" (function key)" if registration.by_key else "")


def _operation(registration: Registration, sign_in: SignIn) -> dict[str, Any]:
    doc = registration.doc
    operation: dict[str, Any] = {
        "operationId": registration.operation_id,
        "summary": operation_summary(registration),
        "description": doc.description,
        "tags": [doc.tag],
    }
    parameters = [_parameter(p) for p in registration.parameters()]
    if parameters:
        operation["parameters"] = parameters
    if doc.body is not None:
        media: dict[str, Any] = {"schema": {"$ref": SCHEMA_REF.format(model=component_name(doc.body))}}
        if doc.body_example is not None:
            media["example"] = doc.body_example
        operation["requestBody"] = {"required": doc.body_required, "content": {JSON: media}}
    answers = sorted((*doc.answers, *_sign_in_answers(registration)), key=lambda a: (a.status == "default", a.status))
    operation["responses"] = {a.status: _response(a) for a in answers}
    operation["security"] = _security(registration, sign_in)
    return operation


def _parameter(param: Param) -> dict[str, Any]:
    described: dict[str, Any] = {"name": param.name, "in": param.where, "description": param.description}
    if param.required:
        described["required"] = True
    described["schema"] = copy.deepcopy(param.schema)
    if param.example is not None:
        described["example"] = param.example
    return described


def _response(answer: Answer) -> dict[str, Any]:
    described: dict[str, Any] = {"description": answer.description}
    if answer.headers:
        described["headers"] = {name: copy.deepcopy(HEADERS[name]) for name in answer.headers}
    if answer.schema is not None:
        media: dict[str, Any] = {"schema": {"$ref": SCHEMA_REF.format(model=answer.schema)}}
        if answer.item_schema is not None:
            # OpenAPI 3.2's `itemSchema` (each line of a sequential media type), as an extension in 3.1.
            media["x-item-schema"] = {"$ref": SCHEMA_REF.format(model=answer.item_schema)}
        content = {answer.media_type: media}
        for media_type, schema in answer.also:
            content[media_type] = {"schema": {"$ref": SCHEMA_REF.format(model=schema)}}
        described["content"] = content
    return described
