"""Graph-shaped error bodies and the exception handlers raise to produce them.

Every message string used by more than one handler lives here so that
BEHAVIOUR.md can point at one place for "what does the simulator say".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

# Messages observed from real Graph (sources in BEHAVIOUR.md).
# (ruff S105: these are error messages, not credentials.)
MSG_TOKEN_EMPTY = "Access token is empty."  # noqa: S105
MSG_TOKEN_MALFORMED = "CompactToken parsing failed with error code: 80049217"  # noqa: S105
MSG_TOKEN_EXPIRED = "Lifetime validation failed, the token is expired."  # noqa: S105
MSG_TOKEN_INVALID = "Access token validation failure."  # noqa: S105
MSG_EMPTY_PAYLOAD = "Empty Payload. JSON content expected."
MSG_MEMBER_EXISTS = "One or more added object references already exist for the following modified properties: 'members'."
MSG_MEMBER_NOT_PRESENT = "One or more removed object references do not exist for the following modified properties: 'members'."
MSG_CONFLICTING_OBJECT = "A conflicting object with one or more of the specified property values is present in the directory."
MSG_PASSWORD_COMPLEXITY = (
    "The specified password does not comply with password complexity "  # noqa: S105
    "requirements. Please provide a different password."
)
MSG_UPN_DOMAIN = (
    "The domain portion of the userPrincipalName property is invalid. You must "
    "use one of the verified domain names in your organization."
)
MSG_UPN_INVALID = "Property userPrincipalName is invalid."
MSG_DUPLICATE_UPN = "Another object with the same value for property userPrincipalName already exists."
MSG_METHOD_NOT_ALLOWED = "Specified HTTP method is not allowed for the request target."
MSG_TAP_POLICY = (
    "Converged UserCredentialPolicy does not allow creating or updating this "
    "authentication method. AuthMethodType [TemporaryAccessPass]."
)
MSG_COUNT_UNSUPPORTED = "$count is not currently supported."
MSG_SEARCH_NEEDS_EVENTUAL = (
    "Request with $search query parameter only works through MSGraph with a special request header: 'ConsistencyLevel: eventual'"
)


def not_found_message(resource_id: str) -> str:
    return f"Resource '{resource_id}' does not exist or one of its queried reference-property objects are not present."


def required_property_message(prop: str, resource: str = "User") -> str:
    return f"A value is required for property '{prop}' of resource '{resource}'."


def invalid_property_message(prop: str, resource: str = "User") -> str:
    return f"Invalid value specified for property '{prop}' of resource '{resource}'."


def unsupported_filter_message(prop: str, resource: str = "User") -> str:
    return f"Unsupported or invalid query filter clause specified for property '{prop}' of resource '{resource}'."


def advanced_operator_message(operator: str) -> str:
    return (
        f"Operator '{operator}' is not supported because the required parameters "
        "might be missing. Try adding $count=true query parameter and "
        "ConsistencyLevel:eventual header. Refer to "
        "https://aka.ms/graph-docs/advanced-queries for more information"
    )


@dataclass
class GraphError(Exception):
    """Raised by handlers; the dispatcher turns it into a Graph error response."""

    status: int
    code: str
    message: str
    details: list[dict[str, Any]] | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.message}"


def graph_date(moment: datetime | None = None) -> str:
    """innerError.date format: second precision, no offset (as Graph sends it)."""
    return (moment or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S")


def error_body(
    code: str,
    message: str,
    request_id: str,
    client_request_id: str,
    details: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = details
    error["innerError"] = {
        "date": graph_date(),
        "request-id": request_id,
        "client-request-id": client_request_id,
    }
    return {"error": error}


# Small constructors so handlers read like the Graph behaviour they model.


def not_found(resource_id: str) -> GraphError:
    return GraphError(404, "Request_ResourceNotFound", not_found_message(resource_id))


def bad_request(message: str, code: str = "Request_BadRequest", **kw: Any) -> GraphError:
    return GraphError(400, code, message, **kw)


def unsupported_query(message: str) -> GraphError:
    return GraphError(400, "Request_UnsupportedQuery", message)


def unauthorized(message: str) -> GraphError:
    # Graph also sends a WWW-Authenticate challenge on 401s.
    challenge = (
        'Bearer realm="", authorization_uri="https://login.microsoftonline.com/'
        'common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"'
    )
    return GraphError(401, "InvalidAuthenticationToken", message, headers={"WWW-Authenticate": challenge})
