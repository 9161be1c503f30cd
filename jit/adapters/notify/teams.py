"""Microsoft Teams (incoming webhook) and Power Automate / Teams Workflows (a "webhook request is received"
trigger URL): an Adaptive Card message.

Shape confirmed from Microsoft's docs (MicrosoftDocs/msteams-docs, webhooks-and-connectors/how-to/
connectors-using.md, "Send adaptive cards using an incoming webhook"): `{"type": "message", "attachments":
[{"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": null, "content": <card>}]}`; and
from learn.microsoft.com (connectors-using, "Known issues"): Workflows take Adaptive Cards only, not the
older MessageCard. The same page documents the rate limits (4 requests a second per webhook) and that a
connector may answer HTTP 200 with "Microsoft Teams endpoint returned HTTP error 429" in the body instead of a
429 status, which is treated as throttling here. Workflows answer 202 Accepted, webhooks 200 with "1".

The URL is itself the credential (its path or `sig=` query authorises posting), so it is never logged.
"""

from __future__ import annotations

import json

import httpx

from jit.adapters.notify import _http
from jit.adapters.notify.render import teams_message
from jit.domain.notification import ChannelKind, DeliveryFailed, Notification

_THROTTLED_IN_BODY = "returned http error 429"


class TeamsChannel:
    """POSTs the Adaptive Card message to a Teams incoming-webhook or Workflows URL, once per call."""

    kind = ChannelKind.TEAMS

    def __init__(self, client: httpx.AsyncClient | None = None) -> None:
        self._client = client

    async def deliver(self, notification: Notification, address: str, *, allow_private: bool = False) -> None:
        body = json.dumps(teams_message(notification), separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json; charset=utf-8"}
        response = await _http.send(
            self._client, "POST", address, what="teams", headers=headers, content=body, allow_private=allow_private
        )
        if _THROTTLED_IN_BODY in response.text[:500].lower():
            raise DeliveryFailed("teams: the webhook reported throttling (429) in a 200 answer", transient=True, status=429)
