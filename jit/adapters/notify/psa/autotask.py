"""Autotask (Datto/Kaseya Autotask PSA): a ticket note through the REST API."""

from __future__ import annotations

import json

import httpx

from jit.adapters.notify import _http
from jit.adapters.notify.psa._ticket import ticket_number
from jit.adapters.notify.render import plain_text, subject
from jit.domain.notification import ChannelKind, Notification

_WHAT = "Autotask"
_MAX_TITLE = 250  # TicketNotes.title length
_MAX_DESCRIPTION = 32000  # TicketNotes.description length


class AutotaskChannel:
    """Adds a TicketNote to the Autotask ticket whose id is the address.

    Documentation this follows:
    - Autotask's developer help, "TicketNotes" REST entity (autotask.net/help/DeveloperHelp/Content/APIs/REST/
      Entities/TicketNotesEntity.htm): entity path `/atservicesrest/v1.0/TicketNotes`, created under its parent
      ticket through the child access URL `Tickets/{parentId}/Notes`; `description` (plain text: the API cannot
      create Rich Text), `title` (required or not per the ticket category's "Require titles on ticket notes"
      setting, so it is always sent), `noteType` and `publish` (picklists), `ticketID`.
    - Authentication headers `ApiIntegrationCode` (the API tracking identifier, required on every call),
      `UserName` and `Secret` of an API-only user (Autotask help, "The API tracking identifier"; integration
      guides of Nango and others).
    - `zone_url` is the instance's zone, e.g. `https://webservices5.autotask.net` (what `ZoneInformation`
      answers for the API user); `/ATServicesRest/V1.0` is appended unless it is already there.
    Not confirmed: the picklist values. `note_type` and `publish` vary per instance's setup; the defaults
    (1 and 1) are the values most published integrations send, and should be checked against the instance's
    `TicketNotes/entityInformation/fields` picklists when the PSA is configured.
    """

    kind = ChannelKind.PSA

    def __init__(
        self,
        zone_url: str,
        integration_code: str,
        username: str,
        secret: str,
        *,
        note_type: int = 1,
        publish: int = 1,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        if not all((zone_url, integration_code, username, secret)):
            raise ValueError("Autotask needs its zone URL, the integration code, an API user name and its secret")
        base = zone_url.rstrip("/")
        if not base.lower().endswith("/atservicesrest/v1.0"):
            base = base + "/V1.0" if base.lower().endswith("/atservicesrest") else base + "/ATServicesRest/V1.0"
        self._api = base
        self._headers = {
            "ApiIntegrationCode": integration_code,
            "UserName": username,
            "Secret": secret,
            "Content-Type": "application/json; charset=utf-8",
        }
        self._note_type = note_type
        self._publish = publish
        self._client = client

    def __repr__(self) -> str:
        return f"AutotaskChannel(api={_http.host_of(self._api)!r}, credentials=***)"

    async def deliver(self, notification: Notification, address: str, *, allow_private: bool = False) -> None:
        # The PSA's address comes from the operator's settings, never from a request: an on-premises PSA is fine.
        ticket = ticket_number(address, _WHAT)
        note = {
            "ticketID": ticket,
            "title": subject(notification)[:_MAX_TITLE],
            "description": plain_text(notification)[:_MAX_DESCRIPTION],
            "noteType": self._note_type,
            "publish": self._publish,
        }
        body = json.dumps(note, ensure_ascii=False).encode("utf-8")
        await _http.send(
            self._client,
            "POST",
            f"{self._api}/Tickets/{ticket}/Notes",
            what=_WHAT,
            headers=self._headers,
            content=body,
            allow_private=True,
        )
