"""Every validation rule of POST /api/jit/requests names the field that broke it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from jit.api.schemas import parse_grant_request
from jit.domain.errors import ValidationFailed
from jit.domain.request import ExpirationAction, RequestLimits, UserKind
from tests.conftest import valid_request

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
LIMITS = RequestLimits(max_duration=timedelta(hours=8))


def parse(body: Any) -> Any:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return parse_grant_request(raw, now=NOW, limits=LIMITS)


def fields_of(body: Any) -> set[str]:
    with pytest.raises(ValidationFailed) as raised:
        parse(body)
    return {e.field for e in raised.value.errors}


def iso(moment: datetime) -> str:
    return moment.isoformat()


def test_a_valid_request_with_defaults() -> None:
    request = parse(valid_request())
    assert request.tenant_id == "contoso.onmicrosoft.com"
    assert request.user.kind is UserKind.NEW
    assert request.start == NOW
    assert request.end == NOW + timedelta(hours=2)
    assert request.tap.enabled is True  # a new account can only be reached with a TAP
    assert request.expiration_actions == (ExpirationAction.DELETE_USER,)


def test_an_existing_user_by_upn_with_an_explicit_window() -> None:
    request = parse(
        valid_request(
            user={"type": "existing", "userPrincipalName": "o'brien@contoso.com"},
            startDateTime="2026-11-23T14:00:00+01:00",
            endDateTime="2026-11-23T15:30:00+01:00",
            duration=None,
            roles=["Company Administrator", "company administrator", "62e90394-69f5-4237-9190-012177145e10"],
            groups=["6A1B1F2C-0000-4000-8000-000000000001"],
        )
        | {"duration": None}
    )
    assert request.user.user_principal_name == "o'brien@contoso.com"
    assert request.duration == timedelta(hours=1, minutes=30)
    assert request.roles == ("Company Administrator", "62e90394-69f5-4237-9190-012177145e10")  # duplicates folded
    assert request.groups == ("6a1b1f2c-0000-4000-8000-000000000001",)
    assert request.tap.enabled is False
    assert request.expiration_actions == (ExpirationAction.REMOVE_ROLES, ExpirationAction.REMOVE_GROUPS)


def without(key: str) -> dict[str, Any]:
    body = valid_request()
    del body[key]
    return body


CASES: list[tuple[str, Any, set[str]]] = [
    ("not json", b"{tenantId:", {"body"}),
    ("not an object", b"[1, 2]", {"body"}),
    ("unknown field", valid_request(role="x"), {"role"}),
    ("unknown nested field", valid_request(user={"type": "new", "displayName": "A", "mail": "a@b.c"}), {"user.mail"}),
    ("missing tenant", without("tenantId"), {"tenantId"}),
    ("tenant neither a GUID nor a domain", valid_request(tenantId="contoso tenant"), {"tenantId"}),
    ("tenant a URL", valid_request(tenantId="https://contoso.com/"), {"tenantId"}),
    ("tenant of wrong type", valid_request(tenantId=42), {"tenantId"}),
    ("missing user", without("user"), {"user"}),
    ("unknown user type", valid_request(user={"type": "guest", "displayName": "A"}), {"user.type"}),
    ("new user without display name", valid_request(user={"type": "new"}), {"user.displayName"}),
    ("existing user with neither upn nor id", valid_request(user={"type": "existing"}), {"user"}),
    (
        "existing user with both upn and id",
        valid_request(
            user={"type": "existing", "userPrincipalName": "a@contoso.com", "id": "6a1b1f2c-0000-4000-8000-000000000001"}
        ),
        {"user"},
    ),
    ("existing user id not a GUID", valid_request(user={"type": "existing", "id": "42"}), {"user.id"}),
    (
        "bad upn: no domain",
        valid_request(user={"type": "new", "displayName": "A", "userPrincipalName": "ada"}),
        {"user.userPrincipalName"},
    ),
    (
        "bad upn: space",
        valid_request(user={"type": "new", "displayName": "A", "userPrincipalName": "a da@x.com"}),
        {"user.userPrincipalName"},
    ),
    (
        "bad upn: double dot",
        valid_request(user={"type": "new", "displayName": "A", "userPrincipalName": "a..b@x.com"}),
        {"user.userPrincipalName"},
    ),
    (
        "bad upn: too long",
        valid_request(user={"type": "new", "displayName": "A", "userPrincipalName": "a" * 65 + "@x.com"}),
        {"user.userPrincipalName"},
    ),
    ("neither end nor duration", without("duration"), {"endDateTime"}),
    ("both end and duration", valid_request(endDateTime="2026-11-23T13:00:00Z"), {"endDateTime"}),
    ("duration not ISO 8601", valid_request(duration="2 hours"), {"duration"}),
    ("duration in months", valid_request(duration="P1M"), {"duration"}),
    ("duration as a number", valid_request(duration=7200), {"duration"}),
    ("start without offset", valid_request(startDateTime="2026-11-23T12:00:00"), {"startDateTime"}),
    ("start not a date", valid_request(startDateTime="tomorrow"), {"startDateTime"}),
    ("start in the past", valid_request(startDateTime=iso(NOW - timedelta(minutes=10))), {"startDateTime"}),
    ("start too far ahead", valid_request(startDateTime=iso(NOW + timedelta(days=120))), {"startDateTime"}),
    (
        "end before start",
        valid_request(duration=None, startDateTime=iso(NOW + timedelta(hours=2)), endDateTime=iso(NOW + timedelta(hours=1))),
        {"endDateTime"},
    ),
    ("duration over the maximum", valid_request(duration="PT9H"), {"duration"}),
    ("duration under the minimum", valid_request(duration="PT1M"), {"duration"}),
    ("no roles and no groups", valid_request(roles=[], groups=[]), {"roles"}),
    ("roles not a list", valid_request(roles="Global Administrator"), {"roles"}),
    ("empty role name", valid_request(roles=[" "]), {"roles.0"}),
    ("too many roles", valid_request(roles=[f"Role {i}" for i in range(51)]), {"roles"}),
    ("group not a GUID", valid_request(groups=["sales"]), {"groups.0"}),
    ("reason missing", without("reason"), {"reason"}),
    ("reason too short", valid_request(reason="because"), {"reason"}),
    ("reason too long", valid_request(reason="x" * 1001), {"reason"}),
    ("ticket id too long", valid_request(ticketId="T" * 101), {"ticketId"}),
    (
        "tap lifetime too short",
        valid_request(temporaryAccessPass={"enabled": True, "lifetimeInMinutes": 5}),
        {"temporaryAccessPass.lifetimeInMinutes"},
    ),
    (
        "tap lifetime a string",
        valid_request(temporaryAccessPass={"enabled": True, "lifetimeInMinutes": "60"}),
        {"temporaryAccessPass.lifetimeInMinutes"},
    ),
    ("tap enabled missing", valid_request(temporaryAccessPass={"lifetimeInMinutes": 60}), {"temporaryAccessPass.enabled"}),
    ("unknown expiration action", valid_request(expirationActions=["Wipe"]), {"expirationActions.0"}),
    ("empty expiration actions", valid_request(expirationActions=[]), {"expirationActions"}),
    ("DeleteUser combined", valid_request(expirationActions=["DeleteUser", "RemoveRoles"]), {"expirationActions"}),
    (
        "existing user may not be deleted",
        valid_request(user={"type": "existing", "userPrincipalName": "a@contoso.com"}, expirationActions=["DeleteUser"]),
        {"expirationActions"},
    ),
    (
        "existing user may not be disabled",
        valid_request(
            user={"type": "existing", "userPrincipalName": "a@contoso.com"}, expirationActions=["DisableUser", "RemoveRoles"]
        ),
        {"expirationActions"},
    ),
    (
        "existing user's roles must be removed",
        valid_request(user={"type": "existing", "userPrincipalName": "a@contoso.com"}, expirationActions=["RemoveGroups"]),
        {"expirationActions"},
    ),
    ("notifications not an object", valid_request(notifications=["a@b.c"]), {"notifications"}),
]


@pytest.mark.parametrize(("name", "body", "fields"), CASES, ids=[c[0] for c in CASES])
def test_invalid_requests_name_the_field(name: str, body: Any, fields: set[str]) -> None:
    assert fields_of(body) == fields


def test_all_problems_are_reported_together() -> None:
    body = valid_request(tenantId="nope", user={"type": "existing"}, duration="forever")
    assert fields_of(body) == {"tenantId", "user", "duration"}


def test_messages_are_written_for_people() -> None:
    with pytest.raises(ValidationFailed) as raised:
        parse(valid_request(user={"type": "guest", "displayName": "A"}))
    [error] = raised.value.errors
    assert (error.field, error.message) == ("user.type", "must be new or existing")
