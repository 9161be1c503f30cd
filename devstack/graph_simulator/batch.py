"""JSON batching (POST /$batch), per microsoft-graph-docs-contrib concepts/json-batching.md.

* `url` is "the relative resource URL ... while the absolute URL is https://graph.microsoft.com/v1.0/users,
  this url is /users". An absolute URL makes the whole batch 400 "Invalid batch payload format." (docs-contrib
  issue #8576, msgraph-sdk-javascript #1451). A relative URL that still carries the version (`/v1.0/users`) is
  resolved as a path, so its request fails with "Resource not found for the segment 'v1.0'." (msgraph-sdk-javascript
  #1178, msgraph-sdk-python #1015).
* At most 20 requests; `id` unique (case-insensitive); `headers` with Content-Type whenever there is a `body`.
* dependsOn: "Batch should be either fully sequential or fully parallel" (the page's tip; a mix is a 400 with that
  message, docs-contrib issue #2339); a dependency must appear earlier in the array (msgraph-sdk-dotnet-core #891,
  msgraph-sdk-java-core #71). A request whose dependency failed gets 424.
* Each inner request runs through the same dispatcher as a top-level one (contract, permissions, faults, counters).
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .errors import GraphError, error_body
from .messages import Drop, SimRequest, SimResponse, parse_query

if TYPE_CHECKING:
    from .authz import AuthContext
    from .dispatcher import Dispatcher

MAX_REQUESTS = 20
MSG_INVALID_PAYLOAD = "Invalid batch payload format."
MSG_MIXED = "Batch should be either fully sequential or fully parallel."


def _batch_error(message: str) -> GraphError:
    return GraphError(400, "BadRequest", message)


def _depends_on(item: Mapping[str, Any]) -> list[str]:
    deps = item.get("dependsOn")
    if deps is None:
        return []
    if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
        raise _batch_error(MSG_INVALID_PAYLOAD)
    return list(deps)


def _validate(payload: Any) -> list[dict[str, Any]]:
    if not isinstance(payload, Mapping) or not isinstance(payload.get("requests"), list):
        raise _batch_error(MSG_INVALID_PAYLOAD)
    items = payload["requests"]
    if not items:
        raise _batch_error(MSG_INVALID_PAYLOAD)
    if len(items) > MAX_REQUESTS:
        raise _batch_error(f"The batch request contains {len(items)} requests; the maximum is {MAX_REQUESTS}.")
    seen: list[str] = []
    for item in items:
        if not isinstance(item, Mapping):
            raise _batch_error(MSG_INVALID_PAYLOAD)
        rid, method, url = item.get("id"), item.get("method"), item.get("url")
        if not all(isinstance(v, str) and v for v in (rid, method, url)):
            raise _batch_error(MSG_INVALID_PAYLOAD)
        assert isinstance(rid, str) and isinstance(url, str)
        parts = urlsplit(url)
        if parts.scheme or parts.netloc:
            raise _batch_error(MSG_INVALID_PAYLOAD)  # absolute URLs are refused, whole batch
        if rid.lower() in seen:  # ids are not case-sensitive and must be unique
            raise _batch_error(f"Batch request contains duplicate request id '{rid}'.")
        headers = item.get("headers") or {}
        if not isinstance(headers, Mapping):
            raise _batch_error(MSG_INVALID_PAYLOAD)
        has_type = any(str(k).lower() == "content-type" for k in headers)
        if item.get("body") is not None and not has_type:
            raise _batch_error(f"Write request id : {rid} does not contain Content-Type header or body.")
        for dep in _depends_on(item):
            if dep.lower() not in seen:  # unknown, or not earlier in the array
                raise _batch_error(f"Invalid dependency for request Id '{rid}': '{dep}' is not an earlier request.")
        seen.append(rid.lower())
    with_deps = [bool(_depends_on(i)) for i in items]
    if any(with_deps) and not all(with_deps[1:]):
        raise _batch_error(MSG_MIXED)
    return [dict(i) for i in items]


def _body_bytes(body: Any) -> bytes:
    if body is None:
        return b""
    if isinstance(body, str):
        # Non-JSON bodies travel base64-encoded inside the batch.
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            return body.encode()
    return json.dumps(body).encode()


def _inner_response(rid: str, response: SimResponse) -> dict[str, Any]:
    headers = {"Cache-Control": "no-cache"}
    for key, value in response.headers.items():
        if key.lower() not in ("request-id", "client-request-id"):
            headers[key] = value
    item: dict[str, Any] = {"id": rid, "status": response.status, "headers": headers}
    if response.body is not None:
        _, content_type = response.encoded()
        if content_type:
            headers["Content-Type"] = content_type
        item["body"] = response.body
    return item


def run_batch(dispatcher: Dispatcher, req: SimRequest, auth: AuthContext) -> SimResponse:
    items = _validate(req.json())
    outcomes: dict[str, dict[str, Any]] = {}
    for item in items:  # listed order is dependency order (validated above)
        rid = str(item["id"])
        headers = {str(k).lower(): str(v) for k, v in (item.get("headers") or {}).items()}
        failed = [d for d in _depends_on(item) if outcomes[d.lower()]["status"] >= 400]
        if failed:
            body = error_body(
                "FailedDependency",
                "The request could not be processed because a request it depends on failed.",
                str(uuid.uuid4()),
                headers.get("client-request-id", req.client_request_id),
            )
            outcomes[rid.lower()] = _inner_response(rid, SimResponse(424, body))
            continue
        parts = urlsplit(str(item["url"]))
        path = parts.path if parts.path.startswith("/") else "/" + parts.path
        inner = SimRequest(
            method=str(item["method"]).upper(),
            path=path,
            query=parse_query(parts.query),
            headers=headers,
            body=_body_bytes(item.get("body")),
            request_id=str(uuid.uuid4()),
            client_request_id=headers.get("client-request-id", req.client_request_id),
            base_url=req.base_url,
            inner=True,
        )
        result = dispatcher.dispatch(inner, auth)
        assert not isinstance(result, Drop)  # drop faults never match inner requests
        outcomes[rid.lower()] = _inner_response(rid, result)
    responses = [outcomes[str(i["id"]).lower()] for i in items]
    return SimResponse(200, {"responses": responses})
