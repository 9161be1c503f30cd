"""JSON batching (POST /$batch), per concepts/json-batching.md.

Each inner request runs through the same dispatcher as a top-level request
(routing, counters, faults, handlers) with the batch's tenant. Requests run in
a dependency-respecting order; a request whose dependency failed gets 424.
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
from .state import Tenant

if TYPE_CHECKING:
    from .dispatcher import Dispatcher

MAX_REQUESTS = 20


def _batch_error(message: str) -> GraphError:
    return GraphError(400, "BadRequest", message)


def _validate(payload: Any) -> list[dict[str, Any]]:
    if not isinstance(payload, Mapping) or not isinstance(payload.get("requests"), list):
        raise _batch_error("Invalid batch payload format.")
    items = payload["requests"]
    if not items:
        raise _batch_error("Invalid batch payload format.")
    if len(items) > MAX_REQUESTS:
        raise _batch_error(f"The batch request contains {len(items)} requests; the maximum is {MAX_REQUESTS}.")
    seen: set[str] = set()
    for item in items:
        if not isinstance(item, Mapping):
            raise _batch_error("Invalid batch payload format.")
        rid, method, url = item.get("id"), item.get("method"), item.get("url")
        if not all(isinstance(v, str) and v for v in (rid, method, url)):
            raise _batch_error("Invalid batch payload format.")
        assert isinstance(rid, str)
        if rid.lower() in seen:  # ids are not case-sensitive and must be unique
            raise _batch_error(f"Batch request contains duplicate request id '{rid}'.")
        seen.add(rid.lower())
        headers = item.get("headers") or {}
        if not isinstance(headers, Mapping):
            raise _batch_error("Invalid batch payload format.")
        has_type = any(k.lower() == "content-type" for k in headers)
        if item.get("body") is not None and not has_type:
            raise _batch_error(f"Write request id : {rid} does not contain Content-Type header or body.")
    for item in items:
        for dep in _depends_on(item):
            if dep.lower() not in seen:
                raise _batch_error(f"Request with id '{dep}' referenced in dependsOn is not present in the batch.")
    return [dict(i) for i in items]


def _depends_on(item: Mapping[str, Any]) -> list[str]:
    deps = item.get("dependsOn") or []
    if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
        raise _batch_error("Invalid batch payload format.")
    return list(deps)


def _execution_order(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Stable topological order (requests run in listed order when possible)."""
    pending = list(items)
    done: set[str] = set()
    order: list[dict[str, Any]] = []
    while pending:
        for item in pending:
            if all(d.lower() in done for d in _depends_on(item)):
                order.append(item)
                done.add(str(item["id"]).lower())
                pending.remove(item)
                break
        else:
            raise _batch_error("Batch request contains a circular dependsOn chain.")
    return order


def _relative(url: str) -> tuple[str, str]:
    """'/users/x?$select=id', 'users/x' or an absolute Graph URL -> (path, query)."""
    parts = urlsplit(url)
    path = parts.path
    if parts.scheme and parts.netloc:
        segments = path.split("/")
        # Drop the API version segment of absolute URLs (e.g. /v1.0/users -> /users).
        if len(segments) > 1 and segments[1].lower() in ("v1.0", "beta"):
            path = "/" + "/".join(segments[2:])
    if not path.startswith("/"):
        path = "/" + path
    return path, parts.query


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


def run_batch(dispatcher: Dispatcher, req: SimRequest, tenant: Tenant) -> SimResponse:
    items = _validate(req.json())
    order = _execution_order(items)
    outcomes: dict[str, dict[str, Any]] = {}
    for item in order:
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
        path, query = _relative(str(item["url"]))
        inner = SimRequest(
            method=str(item["method"]).upper(),
            path=path,
            query=parse_query(query),
            headers=headers,
            body=_body_bytes(item.get("body")),
            request_id=str(uuid.uuid4()),
            client_request_id=headers.get("client-request-id", req.client_request_id),
            base_url=req.base_url,
            inner=True,
        )
        result = dispatcher.dispatch(inner, tenant)
        assert not isinstance(result, Drop)  # drop faults never match inner requests
        outcomes[rid.lower()] = _inner_response(rid, result)
    responses = [outcomes[str(i["id"]).lower()] for i in items]
    return SimResponse(200, {"responses": responses})
