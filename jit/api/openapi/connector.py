"""The Power Platform custom connector: Swagger 2.0 with x-ms-* extensions (apiDefinition.swagger.json) and its
connection (apiProperties.json), from the same tables as the OpenAPI document.

The connection signs its user in with Entra ID (OAuth 2.0, identity provider `aad`), so every flow calls the API as
the person who made the connection: their app roles apply, their grants are theirs, they may approve and retrieve
their own credentials. The connector therefore describes the people's paths (`/api/jit/...`) only and never uses a
function key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from jit.api.openapi.document import Registration, component_name, component_schemas, registrations
from jit.api.openapi.operations import HEADERS, JSON, NDJSON, PROBLEM_MEDIA_TYPE, Answer, Param, Visibility

CONNECTOR_TITLE = "JIT Admin Access"
# The connector's host until the operator sets the real one (scripts/generate-connector --host, or on import).
CONNECTOR_HOST = "your-function-app.azurewebsites.net"
BASE_PATH = "/api"
# Until the operator says (scripts/generate-connector --client-id/--tenant/--resource): placeholders that fail at
# sign-in rather than sign anybody in to the wrong place (and keep the URLs valid URIs, as Swagger requires).
CONNECTOR_CLIENT_ID = "CONNECTOR-CLIENT-ID"
MSP_TENANT = "TENANT-ID"
API_RESOURCE = "api://jit-admin"
SECURITY_NAME = "oauth2_auth"


@dataclass(frozen=True)
class ConnectorSignIn:
    """The connection's sign-in: the connector's own app registration (a confidential client: its secret is given to
    `paconn create --secret` or typed in the maker portal, never stored here) asking Entra ID in the MSP's tenant for
    a token for the JIT API (`resource`, its Application ID URI), with its delegated scope `access_as_user`."""

    client_id: str = CONNECTOR_CLIENT_ID
    tenant: str = MSP_TENANT
    resource: str = API_RESOURCE
    login: str = "https://login.microsoftonline.com"
    redirect_url: str | None = None


# Display names (x-ms-summary) and visibility of request fields in the flow designer.
FIELD_UI: dict[str, tuple[str, Visibility | None]] = {
    "tenantId": ("Tenant", "important"),
    "user": ("User", "important"),
    "type": ("Type", "important"),
    "displayName": ("Display Name", "important"),
    "userPrincipalName": ("User Principal Name", None),
    "id": ("ID", None),
    "directory": ("Directory", "advanced"),
    "duration": ("Duration (ISO 8601, e.g. PT4H)", "important"),
    "roles": ("Roles", "important"),
    "groups": ("Group IDs", "advanced"),
    "reason": ("Reason", "important"),
    "ticketId": ("Ticket ID", "important"),
    "templateName": ("Template", "advanced"),
    "startDateTime": ("Start", "advanced"),
    "endDateTime": ("End", "advanced"),
    "temporaryAccessPass": ("Temporary Access Pass", "advanced"),
    "expirationActions": ("Expiration Actions", "advanced"),
    "notifications": ("Notifications", "advanced"),
}


def connector_registrations() -> list[Registration]:
    """The operations in the connector: the people's paths (never `/api/svc/`) of the routes it includes."""
    return [r for r in registrations() if not r.by_key and not r.public and r.doc.in_connector]


def connector_definition(host: str = CONNECTOR_HOST, sign_in: ConnectorSignIn | None = None) -> dict[str, Any]:
    """The Swagger 2.0 definition Power Platform imports as a custom connector (apiDefinition.swagger.json).

    The asynchronous pattern needs no extension: an action that answers 202 with Location (and Retry-After) is
    polled by the Logic Apps / Power Automate runtime until the Location answers something else, as long as the
    action's "Asynchronous pattern" setting is on (it is by default). The definition declares those 202 answers and
    their headers so the designer shows the grant's fields for both."""
    sign_in = sign_in or ConnectorSignIn()
    definitions = {name: _swagger_schema(schema) for name, schema in component_schemas().items()}
    _decorate_request_fields(definitions)
    paths: dict[str, dict[str, Any]] = {}
    for registration in connector_registrations():
        route = registration.route
        paths.setdefault("/" + route.path, {})[route.method.lower()] = _connector_operation(registration)
    definitions = {name: definitions[name] for name in sorted(_referenced(paths, definitions))}
    authority = f"{sign_in.login}/{sign_in.tenant}/oauth2"
    return {
        "swagger": "2.0",
        "info": {
            "title": CONNECTOR_TITLE,
            "description": "Request just-in-time admin access to Microsoft Entra ID tenants as yourself, follow the grant "
            "until it is active, retrieve its Temporary Access Pass once, approve others' requests, and end access early.",
            "version": "1.0.0",
        },
        "host": host,
        "basePath": BASE_PATH,
        "schemes": ["https"],
        "consumes": [JSON],
        "produces": [JSON, PROBLEM_MEDIA_TYPE],
        "paths": paths,
        "definitions": definitions,
        "parameters": {},
        "responses": {},
        # The shape Power Platform writes for an Azure AD (aad) connection: OAuth 2.0 access code against Entra ID's
        # v1 endpoints; the token itself comes from the settings in apiProperties.json (connector_properties).
        "securityDefinitions": {
            SECURITY_NAME: {
                "type": "oauth2",
                "flow": "accessCode",
                "authorizationUrl": f"{authority}/authorize",
                "tokenUrl": f"{authority}/token",
                "scopes": {},
            }
        },
        "security": [{SECURITY_NAME: []}],
        "tags": [],
        # Creating a connection calls this, so a wrong sign-in fails there and then rather than in the first flow run.
        "x-ms-capabilities": {"testConnection": {"operationId": "whoami", "parameters": {}}},
    }


def connector_properties(sign_in: ConnectorSignIn | None = None) -> dict[str, Any]:
    """apiProperties.json: the connection is an Entra ID (`aad`) OAuth connection for the JIT API.

    The shape follows Microsoft's certified connectors in microsoft/PowerPlatformConnectors (commit 8bff86ea,
    e.g. certified-connectors/CM Informatik AG/apiProperties.json: `aad` for an `api://` resource with the relative
    scope `access_as_user` and redirectMode GlobalPerConnector; Microsoft 365 Lighthouse/apiProperties.json and
    Luware Nimbus/apiProperties.json: GlobalPerConnector with its redirectUrl
    `https://global.consent.azure-apim.net/redirect/<connector>`). The per-connector redirect URL exists once the
    connector does: pass it with --redirect-url for later updates and add it to the connector app registration's
    Web redirect URIs."""
    sign_in = sign_in or ConnectorSignIn()
    settings: dict[str, Any] = {
        "identityProvider": "aad",
        "clientId": sign_in.client_id,
        "scopes": ["access_as_user"],
        "redirectMode": "GlobalPerConnector",
    }
    if sign_in.redirect_url:
        settings["redirectUrl"] = sign_in.redirect_url
    settings["properties"] = {"IsFirstParty": "False", "AzureActiveDirectoryResourceId": sign_in.resource}
    settings["customParameters"] = {
        "loginUri": {"value": sign_in.login},
        "tenantId": {"value": sign_in.tenant},
        "resourceUri": {"value": sign_in.resource},
    }
    return {
        "properties": {
            "connectionParameters": {
                "token": {
                    "type": "oauthSetting",
                    "oAuthSettings": settings,
                    "uiDefinition": {
                        "displayName": "Sign in with Microsoft Entra ID",
                        "description": "Flows act as the person who signs in: their JIT app roles and grants apply",
                        "tooltip": "The account must hold a JIT app role (Jit.Requester, Jit.Approver or Jit.Admin)",
                        "constraints": {"required": "true"},
                    },
                }
            },
            "iconBrandColor": "#0f6cbd",
            "capabilities": [],
            "publisher": "JIT admin access",
            "stackOwner": "JIT admin access",
            "policyTemplateInstances": [],
        }
    }


def _connector_operation(registration: Registration) -> dict[str, Any]:
    doc = registration.doc
    parameters = [_swagger_parameter(p) for p in registration.parameters()]
    if doc.body is not None:
        parameters.append(
            {
                "name": "body",
                "in": "body",
                "required": doc.body_required,
                "schema": {"$ref": f"#/definitions/{component_name(doc.body)}"},
                "x-ms-summary": "Body",
            }
        )
    operation: dict[str, Any] = {
        "operationId": registration.operation_id,
        "summary": doc.summary,
        "description": doc.description,
        "tags": [doc.tag],
        "parameters": parameters,
        "responses": {a.status: _swagger_response(a) for a in doc.answers},
        "x-ms-visibility": doc.visibility,
    }
    if doc.side_effects:
        operation["x-ms-no-generic-test"] = True
    return operation


def _swagger_parameter(param: Param) -> dict[str, Any]:
    described: dict[str, Any] = {"name": param.name, "in": param.where, "required": param.required}
    described.update(_swagger_schema(_resolve(param.schema)))
    described["description"] = param.description
    described["x-ms-summary"] = param.summary or _title(param.name)
    if param.visibility:
        described["x-ms-visibility"] = param.visibility
    return described


def _swagger_response(answer: Answer) -> dict[str, Any]:
    described: dict[str, Any] = {"description": answer.description}
    if answer.schema is not None and answer.media_type != NDJSON:
        described["schema"] = {"$ref": f"#/definitions/{answer.schema}"}
    elif answer.schema is not None:
        described["schema"] = {"type": "string"}
    if answer.headers:
        described["headers"] = {
            name: {"description": HEADERS[name]["description"], **_swagger_schema(HEADERS[name]["schema"])}
            for name in answer.headers
        }
    return described


def _swagger_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A JSON Schema (2020-12, as pydantic writes it) in the Swagger 2.0 subset Power Platform reads: no null type
    (x-nullable instead), no oneOf/anyOf (a union of objects becomes one object), no const, refs to #/definitions."""
    schema = dict(schema)
    for alternatives in ("anyOf", "oneOf"):
        if alternatives in schema:
            options = schema.pop(alternatives)
            schema.pop("discriminator", None)
            schema = {**_merge_alternatives(options), **schema}
    if schema.get("type") == "null":
        return {}
    if isinstance(schema.get("type"), list):
        kinds = [t for t in schema["type"] if t != "null"]
        schema["x-nullable"] = len(kinds) < len(schema["type"])
        schema["type"] = kinds[0] if len(kinds) == 1 else "string"
    if "const" in schema:
        schema["enum"] = [schema.pop("const")]
    if "examples" in schema:
        schema["example"] = schema.pop("examples")[0]
    if schema.get("default", "absent") is None:
        schema.pop("default")
    schema.pop("title", None)
    if "$ref" in schema:
        return {"$ref": "#/definitions/" + schema["$ref"].rsplit("/", 1)[1]}
    schema = {k: v for k, v in schema.items() if k in _SWAGGER_KEYWORDS or k.startswith("x-")}
    if "items" in schema:
        schema["items"] = _swagger_schema(schema["items"])
    if "properties" in schema:
        schema["properties"] = {k: _swagger_schema(v) for k, v in schema["properties"].items()}
    if isinstance(schema.get("additionalProperties"), dict):
        schema["additionalProperties"] = _swagger_schema(schema["additionalProperties"])
    return schema


# What a Swagger 2.0 Schema Object may hold (besides x-* extensions); the rest of JSON Schema is dropped.
_SWAGGER_KEYWORDS = frozenset(
    {
        "format", "title", "description", "default", "multipleOf", "maximum", "exclusiveMaximum", "minimum",
        "exclusiveMinimum", "maxLength", "minLength", "pattern", "maxItems", "minItems", "uniqueItems", "maxProperties",
        "minProperties", "required", "enum", "type", "items", "allOf", "properties", "additionalProperties", "readOnly",
        "example",
    }
)  # fmt: skip


def _merge_alternatives(options: list[dict[str, Any]]) -> dict[str, Any]:
    nullable = any(o.get("type") == "null" for o in options)
    rest = [o for o in options if o.get("type") != "null"]
    merged: dict[str, Any]
    if len(rest) == 1:
        merged = dict(rest[0])
    else:
        # A union of objects (the user body: new or existing): one object with every property, `type` telling which.
        resolved = [_resolve(o) for o in rest]
        properties: dict[str, Any] = {}
        for option in resolved:
            for name, prop in option.get("properties", {}).items():
                if name in properties and "const" in prop and "enum" in properties[name]:
                    properties[name]["enum"].append(prop["const"])
                elif name not in properties:
                    properties[name] = {**prop, "enum": [prop["const"]]} if "const" in prop else dict(prop)
                    properties[name].pop("const", None)
        required = set.intersection(*(set(o.get("required", [])) for o in resolved)) if resolved else set()
        merged = {"type": "object", "properties": properties}
        if required:
            merged["required"] = sorted(required)
    if nullable:
        merged["x-nullable"] = True
    return merged


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in schema:
        return component_schemas()[schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _decorate_request_fields(definitions: dict[str, dict[str, Any]]) -> None:
    """Display names everywhere; visibility for the request's fields; roles from the tenant's live definitions."""
    for definition in definitions.values():
        for name, prop in definition.get("properties", {}).items():
            summary, visibility = FIELD_UI.get(name, (_title(name), None))
            prop.setdefault("x-ms-summary", summary)
            if visibility and definition is definitions.get("GrantRequestBody"):
                prop["x-ms-visibility"] = visibility
    roles = definitions["GrantRequestBody"]["properties"]["roles"]
    roles["description"] = "Entra role display names or template ids; chosen from the tenant's live role definitions."
    roles["items"]["x-ms-dynamic-values"] = {
        "operationId": "list_tenant_roles",
        "parameters": {"tenantId": {"parameter": "tenantId"}},
        "value-collection": "value",
        "value-path": "displayName",
        "value-title": "displayName",
    }
    roles["items"]["x-ms-dynamic-list"] = {
        "operationId": "list_tenant_roles",
        "itemsPath": "value",
        "itemValuePath": "displayName",
        "itemTitlePath": "displayName",
        "parameters": {"tenantId": {"parameterReference": "body/tenantId"}},
    }


def _referenced(node: Any, definitions: dict[str, dict[str, Any]], found: set[str] | None = None) -> set[str]:
    """The definitions the operations refer to, directly or through other definitions."""
    found = set() if found is None else found
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/definitions/"):
            name = ref.rsplit("/", 1)[1]
            if name not in found:
                found.add(name)
                _referenced(definitions[name], definitions, found)
        for value in node.values():
            _referenced(value, definitions, found)
    elif isinstance(node, list):
        for value in node:
            _referenced(value, definitions, found)
    return found


def _title(name: str) -> str:
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name.replace("-", " ").replace("_", " ")).split()
    return " ".join("ID" if w.lower() == "id" else w[:1].upper() + w[1:] for w in words)
