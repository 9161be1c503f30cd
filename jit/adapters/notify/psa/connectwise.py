"""ConnectWise Manage (ConnectWise PSA): an internal analysis note on the service ticket."""

from __future__ import annotations

import base64
import json

import httpx

from jit.adapters.notify import _http
from jit.adapters.notify.psa._ticket import ticket_number
from jit.adapters.notify.render import plain_text
from jit.domain.notification import ChannelKind, Notification

_WHAT = "ConnectWise"
_MAX_TEXT = 30000  # well inside what a ticket note holds; notes here are a few hundred characters


class ConnectWiseChannel:
    """Adds a note to the ConnectWise service ticket whose number is the address.

    Documentation this follows:
    - Authentication: HTTP Basic with `<companyId>+<publicKey>` as the user name and `<privateKey>` as the
      password, plus a `clientId` header on every request (ConnectWise developer guide, "ClientIds", as quoted
      by the integration guides of Nango, Commvault and others; the clientId identifies the integration).
    - `POST {site}/{codebase}/apis/3.0/service/tickets/{ticketId}/notes` with a ServiceNote: `text`,
      `detailDescriptionFlag`, `internalAnalysisFlag`, `resolutionFlag`, `processNotifications` (field names
      from the ServiceNote schema of ConnectWise's OpenAPI description, as generated in ai-connor/connectwise
      build/docs/ServiceNote.md). `v4_6_release` is the usual codebase on cloud sites.
    - An optional `Accept: application/vnd.connectwise.com+json; version=<api_version>` pins the API version.
    Assumed, not confirmed: that the site answers a missing or unknown clientId with 401 like bad keys.

    The note is internal (internal analysis, no notifications), so the customer contact is not emailed.
    """

    kind = ChannelKind.PSA

    def __init__(
        self,
        site_url: str,
        company_id: str,
        public_key: str,
        private_key: str,
        client_id: str,
        *,
        codebase: str = "v4_6_release",
        api_version: str | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        if not all((site_url, company_id, public_key, private_key, client_id)):
            raise ValueError("ConnectWise needs its site URL, company id, public and private keys and a clientId")
        self._api = f"{site_url.rstrip('/')}/{codebase.strip('/')}/apis/3.0"
        credentials = f"{company_id}+{public_key}:{private_key}".encode()
        self._authorization = "Basic " + base64.b64encode(credentials).decode("ascii")
        self._client_id = client_id
        self._api_version = api_version
        self._client = client

    def __repr__(self) -> str:
        return f"ConnectWiseChannel(api={_http.host_of(self._api)!r}, keys=***)"

    async def deliver(self, notification: Notification, address: str, *, allow_private: bool = False) -> None:
        # The PSA's address comes from the operator's settings, never from a request: an on-premises PSA is fine.
        ticket = ticket_number(address, _WHAT)
        note = {
            "text": plain_text(notification)[:_MAX_TEXT],
            "detailDescriptionFlag": False,
            "internalAnalysisFlag": True,
            "resolutionFlag": False,
            "processNotifications": False,
        }
        headers = {
            "Authorization": self._authorization,
            "clientId": self._client_id,
            "Content-Type": "application/json; charset=utf-8",
            "Accept": f"application/vnd.connectwise.com+json; version={self._api_version}"
            if self._api_version
            else "application/json",
        }
        body = json.dumps(note, ensure_ascii=False).encode("utf-8")
        await _http.send(
            self._client,
            "POST",
            f"{self._api}/service/tickets/{ticket}/notes",
            what=_WHAT,
            headers=headers,
            content=body,
            allow_private=True,
        )
