"""Transport-neutral request/response objects.

Both real HTTP requests and the requests inside a JSON batch are turned into a
SimRequest, so every Graph endpoint is implemented once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from .errors import MSG_EMPTY_PAYLOAD, GraphError

# Graph v1.0 accepts system query options with or without the "$" prefix.
_ODATA_OPTIONS = {
    "filter",
    "select",
    "top",
    "count",
    "search",
    "orderby",
    "expand",
    "skiptoken",
    "skip",
}

JSON_CONTENT_TYPE = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"


def parse_query(raw: str) -> dict[str, str]:
    query: dict[str, str] = {}
    for key, value in parse_qsl(raw, keep_blank_values=True):
        name = key.strip().lower()
        if name in _ODATA_OPTIONS:
            name = "$" + name
        query[name] = value
    return query


@dataclass
class SimRequest:
    method: str
    path: str  # below /v1.0, still percent-encoded, e.g. "/users/a%40b.com"
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes
    request_id: str
    client_request_id: str
    base_url: str  # e.g. http://127.0.0.1:5000/v1.0, for @odata.nextLink
    inner: bool = False
    # Set by the dispatcher: who is calling (authz.AuthContext) and what the path addresses (contract.Resolved).
    auth: Any = None
    resolved: Any = None

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    @property
    def eventual(self) -> bool:
        return (self.header("consistencylevel") or "").strip().lower() == "eventual"

    def json(self, *, allow_empty: bool = False) -> Any:
        """Parse the JSON body; Graph's 400s for empty or unparseable payloads."""
        if not self.body.strip():
            if allow_empty:
                return None
            raise GraphError(400, "BadRequest", MSG_EMPTY_PAYLOAD)
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise GraphError(
                400,
                "BadRequest",
                "Unable to read JSON request payload. Please ensure Content-Type header "
                "is set and payload is of valid JSON format.",
            ) from exc

    def json_object(self) -> dict[str, Any]:
        data = self.json()
        if not isinstance(data, dict):
            raise GraphError(400, "BadRequest", MSG_EMPTY_PAYLOAD)
        return data


@dataclass
class SimResponse:
    status: int
    body: Any = None  # dict/list -> JSON, str -> text/plain, None -> no body
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> tuple[bytes, str | None]:
        if self.body is None:
            return b"", None
        if isinstance(self.body, str):
            return self.body.encode(), "text/plain;charset=utf-8"
        content_type = "application/json" if self.status >= 400 else JSON_CONTENT_TYPE
        return json.dumps(self.body).encode(), content_type


class Drop:
    """Sentinel: close the connection without answering (fault injection)."""


DROP = Drop()
