"""Check every request against Microsoft's published description before a handler sees it.

Path (entity sets, keys, navigation, casts, bound operations, $ref, $count), method, query options ($select,
$filter, $orderby, $expand property names) and JSON body (declared properties of the target type, or of the
derived type its @odata.type names; action parameters; $ref bodies) - all from the CSDL extract.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from .contract import ContractError, GraphContract, NotModelled, Resolved, Schema, SegmentNotFound, contract
from .errors import GraphError
from .messages import SimRequest
from .odata import parse_filter, usages

_EXTENSION_PROPERTY = re.compile(r"^extension_[0-9a-fA-F]{32}_\w+$")
MSG_METHOD_NOT_ALLOWED = "Specified HTTP method is not allowed for the request target."


def property_missing(name: str) -> str:
    return f"Property '{name}' does not exist as a declared property or extension property."


def not_modelled(detail: str) -> GraphError:
    # 501 is Graph's status for operation targets it doesn't support (docs-contrib issue #5637); here it means
    # the simulator's contract extract or handlers don't reach this far - never that Graph would refuse it.
    return GraphError(501, "NotImplemented", f"The Graph simulator does not model this request: {detail}")


def check_request(req: SimRequest, graph: GraphContract | None = None) -> Resolved:
    """Resolve and validate `req`; raise the GraphError Graph would answer. Returns what the path addresses."""
    graph = graph or contract()
    try:
        resolved = graph.resolve(req.path)
    except SegmentNotFound as err:
        raise GraphError(400, "BadRequest", str(err)) from err
    except NotModelled as err:
        raise not_modelled(err.path) from err
    except ContractError as err:  # pragma: no cover - every ContractError is one of the above
        raise GraphError(400, "BadRequest", str(err)) from err
    if req.method.upper() not in resolved.methods():
        raise GraphError(405, "Request_BadRequest", MSG_METHOD_NOT_ALLOWED)
    _check_query(graph.schema, resolved, req)
    _check_body(graph.schema, resolved, req)
    return resolved


# ---------------------------------------------------------------- query options


def _query_type(resolved: Resolved) -> str | None:
    if resolved.kind in ("collection", "entity", "count", "ref") and resolved.type is not None:
        return resolved.type.name
    return None


def _known_member(schema: Schema, type_name: str, path: str) -> bool:
    """`name` or `complexProp/name` on the type or a type derived from it (directoryObject lists are polymorphic)."""
    first, _, rest = path.partition("/")
    for candidate in [type_name, *schema.derived(type_name)]:
        if _EXTENSION_PROPERTY.match(first) and schema.is_open(candidate):
            return True
        prop = schema.property(candidate, first)
        if prop is not None:
            if not rest:
                return True
            nested = schema.type(prop[1].name)
            return nested is not None and _known_member(schema, nested.name, rest)
        nav = schema.navigation(candidate, first)
        if nav is not None:
            if not rest:
                return True
            target = schema.type(nav.type.name)
            return target is None or _known_member(schema, target.name, rest)
    return False


def _select_names(raw: str) -> Iterator[str]:
    for name in raw.split(","):
        name = name.strip()
        if name and name != "*":
            yield name


def _split_top_level(raw: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for ch in raw:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return [p.strip() for p in parts if p.strip()]


def _check_query(schema: Schema, resolved: Resolved, req: SimRequest) -> None:
    type_name = _query_type(resolved)
    if type_name is None:
        return
    short = type_name
    select = req.query.get("$select")
    if select is not None:
        for name in _select_names(select):
            if not _known_member(schema, type_name, name):
                raise GraphError(400, "Request_UnsupportedQuery", property_missing(name))
    orderby = req.query.get("$orderby")
    if orderby:
        for clause in orderby.split(","):
            name = clause.strip().split(" ", 1)[0]
            if name and not _known_member(schema, type_name, name):
                raise GraphError(400, "Request_UnsupportedQuery", property_missing(name))
    expression = req.query.get("$filter")
    if expression is not None:
        for name, _ in usages(parse_filter(expression)):
            if not _known_member(schema, type_name, name):
                raise GraphError(400, "Request_UnsupportedQuery", property_missing(name))
    expand = req.query.get("$expand")
    if expand:
        for item in _split_top_level(expand):
            name = item.split("(", 1)[0].strip()
            if name == "*":
                continue
            if not any(schema.navigation(t, name) for t in [type_name, *schema.derived(type_name)]):
                raise GraphError(400, "BadRequest", f"Could not find a property named '{name}' on type '{short}'.")


# ---------------------------------------------------------------- bodies


def _json_object(req: SimRequest) -> Mapping[str, Any] | None:
    if not req.body.strip():
        return None
    try:
        data = json.loads(req.body)
    except (ValueError, UnicodeDecodeError):
        return None  # the handler answers unreadable payloads
    return data if isinstance(data, Mapping) else None


def _check_body(schema: Schema, resolved: Resolved, req: SimRequest) -> None:
    method = req.method.upper()
    if method not in ("POST", "PATCH", "PUT"):
        return
    body = _json_object(req)
    if body is None:
        return
    if resolved.kind == "ref":
        for key in body:
            if key != "@odata.id":
                raise GraphError(400, "Request_BadRequest", property_missing(key))
        return
    if resolved.kind == "action" and resolved.operation is not None:
        params = {p.lower(): (p, t) for p, t in resolved.operation.params.items()}
        for key, value in body.items():
            if key.startswith("@"):
                continue
            found = params.get(key.lower())
            if found is None:
                raise GraphError(
                    400,
                    "BadRequest",
                    f"The parameter '{key}' in the request payload is not a valid parameter for the operation "
                    f"'{resolved.operation.name}'.",
                )
            _check_value(schema, found[1].name, value)
        return
    if resolved.kind in ("collection", "entity") and resolved.type is not None:
        check_object(schema, resolved.type.name, body)


def _check_value(schema: Schema, type_name: str, value: Any) -> None:
    if schema.type(type_name) is None:
        return  # primitive or enum
    if isinstance(value, Mapping):
        check_object(schema, type_name, value)
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, Mapping):
                check_object(schema, type_name, item)


def check_object(schema: Schema, type_name: str, body: Mapping[str, Any]) -> None:
    """Every key is a declared property/navigation of the type (or the derived type @odata.type names)."""
    declared = body.get("@odata.type")
    if isinstance(declared, str):
        named = schema.type_by_cast(declared.lstrip("#"))
        if named is None or not schema.is_subtype(named.name, type_name):
            message = f"Invalid value '{declared}' for the '@odata.type' annotation of type '{type_name}'."
            raise GraphError(400, "BadRequest", message)
        type_name = named.name
    for key, value in body.items():
        if key.startswith("@"):
            continue  # instance annotations (@odata.type, @odata.id, ...)
        base = key.split("@", 1)[0] if "@" in key else key  # members@odata.bind: the navigation must exist
        if _EXTENSION_PROPERTY.match(base) and schema.is_open(type_name):
            continue
        prop = schema.property(type_name, base)
        if prop is not None:
            if "@" not in key:
                _check_value(schema, prop[1].name, value)
            continue
        if schema.navigation(type_name, base) is not None:
            continue
        raise GraphError(400, "Request_BadRequest", property_missing(key))
