"""Helpers shared by the endpoint handlers: user lookup, $select, paging, $count."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote, urlencode

from ..contract import contract
from ..errors import GraphError, bad_request, not_found, unsupported_query
from ..messages import SimRequest
from ..odata import parse_select, project
from ..state import Tenant, UserRecord

# Properties Graph v1.0 returns for a user when no $select is given.
USER_DEFAULT_FIELDS = (
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
)



def declared_properties(type_name: str) -> tuple[str, ...]:
    """Structural properties of a type (with inherited ones), from the CSDL extract."""
    schema = contract().schema
    names: list[str] = []
    for t in schema.ancestry(type_name):
        names.extend(p for p in t.props if p not in names)
    return tuple(names)


# v1.0 user properties: what a full user view carries (untracked ones read back as null).
USER_PROPERTIES = declared_properties("microsoft.graph.user")

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 999


def find_user(tenant: Tenant, key: str) -> UserRecord:
    """Resolve /users/{id | userPrincipalName}; 404 if unknown or not yet replicated."""
    record = tenant.find_user(key)
    if record is None:
        raise not_found(key)
    return record


def checked_select(req: SimRequest, known: Sequence[str] | None, type_name: str) -> list[str] | None:
    """Parse $select into declared spellings (the contract check already refused unknown names)."""
    select = parse_select(req.query.get("$select"))
    if select is None or known is None:
        return select
    canonical = {name.lower(): name for name in known}
    return [canonical.get(name.lower(), name) for name in select]


def full_user_view(props: Mapping[str, Any]) -> dict[str, Any]:
    """Every known user property (untracked ones read back as null)."""
    view = {name: props.get(name) for name in USER_PROPERTIES}
    view["passwordProfile"] = None  # write-only
    return view


def user_view(props: Mapping[str, Any], select: Sequence[str] | None) -> dict[str, Any]:
    return project(full_user_view(props), select, USER_DEFAULT_FIELDS)


def page_size(req: SimRequest, default: int = DEFAULT_PAGE_SIZE) -> int:
    raw = req.query.get("$top")
    if raw is None:
        return default
    try:
        top = int(raw)
    except ValueError as exc:
        raise bad_request(f"Invalid value '{raw}' for $top query option.", code="BadRequest") from exc
    if not 1 <= top <= MAX_PAGE_SIZE:
        raise unsupported_query(f"Invalid page size specified: '{top}'. Must be between 1 and {MAX_PAGE_SIZE} inclusive.")
    return top


def _decode_skiptoken(token: str) -> int:
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        if not text.startswith("o:"):
            raise ValueError(text)
        return max(0, int(text[2:]))
    except (ValueError, UnicodeDecodeError) as exc:
        raise GraphError(400, "Request_BadRequest", "Invalid paging token.") from exc


def _encode_skiptoken(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode().rstrip("=")


def wants_count(req: SimRequest) -> bool:
    """$count=true only takes effect with ConsistencyLevel: eventual (silently ignored otherwise)."""
    return req.query.get("$count", "").lower() == "true" and req.eventual


def advanced_query(req: SimRequest) -> bool:
    return wants_count(req)


def collection(
    req: SimRequest,
    context: str,
    items: Sequence[dict[str, Any]],
    *,
    default_page: int = DEFAULT_PAGE_SIZE,
) -> dict[str, Any]:
    """Page `items` like Graph: $top is the page size, @odata.nextLink carries a $skiptoken."""
    size = page_size(req, default_page)
    token = req.query.get("$skiptoken")
    offset = _decode_skiptoken(token) if token else 0
    page = list(items[offset : offset + size])
    body: dict[str, Any] = {"@odata.context": context}
    if wants_count(req) and offset == 0:
        # "the @odata.count property will be present only in the first page" (concepts/paging.md)
        body["@odata.count"] = len(items)
    if offset + size < len(items):
        query = dict(req.query)
        query["$skiptoken"] = _encode_skiptoken(offset + size)
        body["@odata.nextLink"] = f"{req.base_url}{req.path}?{urlencode(query, quote_via=quote, safe='$,()')}"
    body["value"] = page
    return body


def entity_context(entity_set: str, select: Sequence[str] | None) -> str:
    sel = f"({','.join(select)})" if select else ""
    return f"https://graph.microsoft.com/v1.0/$metadata#{entity_set}{sel}/$entity"


def list_context(entity_set: str, select: Sequence[str] | None) -> str:
    sel = f"({','.join(select)})" if select else ""
    return f"https://graph.microsoft.com/v1.0/$metadata#{entity_set}{sel}"
