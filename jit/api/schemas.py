"""The JSON shape of a grant request (API v1) and its translation into the domain's `GrantRequest`.

Pydantic checks shapes and types strictly (no "4" for 4, no unknown fields); the rules that need the clock and the
configured limits are the domain's (`GrantRequest.create`). Both report errors by the field's path in the body.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, model_validator
from pydantic import ValidationError as PydanticValidationError

from jit.domain.errors import FieldError, ValidationFailed
from jit.domain.ids import normalize_tenant
from jit.domain.notification import Event
from jit.domain.request import (
    ExpirationAction,
    GrantRequest,
    RequestLimits,
    TapSettings,
    UserKind,
    UserSpec,
    default_expiration_actions,
)

# Entra UPNs: up to 64 characters of A-Z a-z 0-9 ' . - _ ! # ^ ~ before the @ (no leading, trailing or doubled
# period), a DNS domain after it, 113 characters in all.
_UPN = re.compile(
    r"^(?=.{3,113}$)(?!\.)(?!.*\.\.)[A-Za-z0-9'._!#^~-]{1,64}(?<!\.)@"
    r"(?=.{1,253}$)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
)
_GUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
# Days, hours, minutes, seconds (or weeks) only: months and years have no fixed length.
_DURATION = re.compile(r"^P(?:\d+W|(?=\d|T\d)(?:\d+D)?(?:T(?=\d)(?:\d+H)?(?:\d+M)?(?:\d+(?:\.\d+)?S)?)?)$")
_TIMEDELTA = TypeAdapter(timedelta)
_DOMAIN = re.compile(r"^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
T = TypeVar("T")

Guid = Annotated[str, StringConstraints(pattern=_GUID)]
Upn = Annotated[str, StringConstraints(max_length=113)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class NewUserBody(_Strict):
    type: Literal["new"]
    displayName: Text
    userPrincipalName: Upn | None = None


class ExistingUserBody(_Strict):
    type: Literal["existing"]
    userPrincipalName: Upn | None = None
    id: Guid | None = None


class TemporaryAccessPassBody(_Strict):
    enabled: bool
    lifetimeInMinutes: Annotated[int, Field(ge=10, le=43200)] = 60
    isUsableOnce: bool = False


ChannelName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}$")]


class NotificationsBody(_Strict):
    """Who hears about this grant, besides the defaults from settings: named channels an admin configured (a
    requester chooses among destinations, never names one: an address given in a request could aim the service's
    mail or web requests anywhere, inward included)."""

    channels: Annotated[list[ChannelName], Field(max_length=10)] = []
    ticketNotes: bool = True
    events: Annotated[list[Event], Field(max_length=len(Event))] | None = None
    # No longer accepted (named channels replace them); kept so the answer says so instead of "unknown field".
    emails: list[Any] | None = None
    teamsWebhookUrls: list[Any] | None = None
    webhookUrls: list[Any] | None = None


TemplateName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}$")]


# A backend's name, and for a backend with several places (on-premises sites) which one: "ad:<site>".
DirectoryName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,30}(:[A-Za-z0-9][A-Za-z0-9_.-]{0,62})?$")]


class GrantRequestBody(_Strict):
    tenantId: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    user: Annotated[NewUserBody | ExistingUserBody, Field(discriminator="type")]
    # Where the access lives: "entra", "entra-pim" or "ad:<site>"; absent: the tenant's default.
    directory: DirectoryName | None = None
    startDateTime: AwareDatetime | None = None
    endDateTime: AwareDatetime | None = None
    duration: Annotated[str, StringConstraints(max_length=32)] | None = None
    roles: Annotated[list[Text], Field(max_length=50)] = []
    groups: Annotated[list[Guid], Field(max_length=50)] = []
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=10, max_length=1000)]
    ticketId: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)] | None = None
    temporaryAccessPass: TemporaryAccessPassBody | None = None
    expirationActions: Annotated[list[ExpirationAction], Field(min_length=1, max_length=4)] | None = None
    notifications: NotificationsBody | None = None
    templateName: TemplateName | None = None


class TemplateBody(_Strict):
    """A template: any request field but the tenant and the user, and a prefix for the reason."""

    description: Annotated[str, StringConstraints(max_length=500)] | None = None
    roles: Annotated[list[Text], Field(max_length=50)] | None = None
    groups: Annotated[list[Guid], Field(max_length=50)] | None = None
    duration: Annotated[str, StringConstraints(max_length=32)] | None = None
    temporaryAccessPass: TemporaryAccessPassBody | None = None
    expirationActions: Annotated[list[ExpirationAction], Field(min_length=1, max_length=4)] | None = None
    notifications: NotificationsBody | None = None
    reasonPrefix: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] | None = None

    @model_validator(mode="after")
    def duration_is_iso(self) -> TemplateBody:
        if self.duration is not None and not _DURATION.match(self.duration):
            raise ValueError("duration must be an ISO 8601 duration such as PT4H")
        return self


def parse_grant_request(raw: bytes, *, now: datetime, limits: RequestLimits) -> GrantRequest:
    """The domain request a JSON body describes; ValidationFailed naming every bad field otherwise."""
    try:
        body = GrantRequestBody.model_validate_json(raw)
    except PydanticValidationError as invalid:
        raise ValidationFailed([_field_error(e) for e in invalid.errors()]) from None
    errors: list[FieldError] = []
    tenant = _tenant(body.tenantId)
    if tenant is None:
        errors.append(FieldError("tenantId", "must be the tenant's GUID or one of its verified domains"))
    user = _user(body, errors)
    start = body.startDateTime or now
    end = _end(body, start, errors)
    if errors:
        raise ValidationFailed(errors)
    assert tenant is not None and end is not None
    return GrantRequest.create(
        now=now,
        limits=limits,
        tenant_id=tenant,
        user=user,
        start=start,
        end=end,
        roles=_unique(body.roles, key=str.casefold),
        groups=_unique([g.lower() for g in body.groups], key=str),
        reason=body.reason,
        ticket_id=body.ticketId,
        tap=_tap(body, user),
        expiration_actions=_unique(body.expirationActions, key=str)
        if body.expirationActions
        else default_expiration_actions(user),
        notifications=_notifications(body.notifications, errors_at="notifications"),
        template_name=body.templateName,
        directory=body.directory or "",
    )


def _notifications(given: NotificationsBody | None, *, errors_at: str) -> dict[str, Any] | None:
    """The preferences as stored on the grant: named channels, events, PSA notes."""
    if given is None:
        return None
    named = [f for f in ("emails", "teamsWebhookUrls", "webhookUrls") if getattr(given, f)]
    if named:
        raise ValidationFailed(
            [
                FieldError(
                    f"{errors_at}.{field}",
                    "addresses are no longer taken from requests: name a channel an admin configured in notifications.channels",
                )
                for field in named
            ]
        )
    return given.model_dump(mode="json", exclude_defaults=True, exclude={"emails", "teamsWebhookUrls", "webhookUrls"})


def _tenant(text: str) -> str | None:
    candidate = text.strip().lower()
    return normalize_tenant(candidate) or (candidate if _DOMAIN.match(candidate) else None)


def _user(body: GrantRequestBody, errors: list[FieldError]) -> UserSpec:
    given = body.user
    if given.userPrincipalName is not None and not _UPN.match(given.userPrincipalName):
        errors.append(FieldError("user.userPrincipalName", "is not a valid user principal name (alias@domain)"))
    if isinstance(given, NewUserBody):
        return UserSpec(UserKind.NEW, display_name=given.displayName, user_principal_name=given.userPrincipalName)
    if (given.userPrincipalName is None) == (given.id is None):
        errors.append(FieldError("user", "an existing user needs exactly one of userPrincipalName or id"))
    object_id = given.id.lower() if given.id else None
    return UserSpec(UserKind.EXISTING, user_principal_name=given.userPrincipalName, object_id=object_id)


def _end(body: GrantRequestBody, start: datetime, errors: list[FieldError]) -> datetime | None:
    if (body.endDateTime is None) == (body.duration is None):
        errors.append(FieldError("endDateTime", "give exactly one of endDateTime or duration"))
        return None
    if body.endDateTime is not None:
        return body.endDateTime
    assert body.duration is not None
    if not _DURATION.match(body.duration):
        errors.append(FieldError("duration", "must be an ISO 8601 duration in weeks, days, hours, minutes or seconds (PT4H)"))
        return None
    return start + _TIMEDELTA.validate_python(body.duration)


def _tap(body: GrantRequestBody, user: UserSpec) -> TapSettings:
    if body.temporaryAccessPass is None:
        # A new account has a password nobody knows: without a TAP nobody could sign in with it.
        return TapSettings(enabled=user.kind is UserKind.NEW)
    given = body.temporaryAccessPass
    return TapSettings(given.enabled, given.lifetimeInMinutes, given.isUsableOnce)


def _unique(values: list[T], *, key: Any) -> tuple[T, ...]:
    seen: set[Any] = set()
    kept: list[T] = []
    for value in values:
        if key(value) not in seen:
            seen.add(key(value))
            kept.append(value)
    return tuple(kept)


def _field_error(error: Any) -> FieldError:
    if error["type"] == "json_invalid":
        return FieldError("body", "is not valid JSON")
    # Drop the union tag pydantic puts in the path of a discriminated union ("user.new.displayName").
    path = [str(p) for p in error["loc"] if p not in ("new", "existing")]
    if error["type"] == "model_type" and not path:
        return FieldError("body", "must be a JSON object")
    if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
        return FieldError(".".join([*path, "type"]), "must be new or existing")
    message = "is not a known field" if error["type"] == "extra_forbidden" else _lower_first(error["msg"])
    return FieldError(".".join(path) or "body", message)


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]
