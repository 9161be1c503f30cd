"""HaloPSA: a private action (note) on the ticket."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from urllib.parse import urlencode

import httpx

from jit.adapters.notify import _http
from jit.adapters.notify.psa._ticket import ticket_number
from jit.adapters.notify.render import html_fragment
from jit.domain.notification import ChannelKind, DeliveryFailed, Notification

_WHAT = "HaloPSA"
_REFRESH_EARLY_S = 60.0  # a token this close to its end is renewed first rather than refused mid-request


class HaloPsaChannel:
    """Adds an action to the HaloPSA ticket whose number is the address.

    Documentation this follows:
    - halopsa.com/apidoc ("Getting started"): OAuth2 with an Authorisation server and a Resource server; on a
      self-hosted instance they are `<site>/auth` and `<site>/api`, on a Halo-hosted one the authorisation
      server is separate (`auth_url`) and a `tenant` is needed. Bearer tokens; JSON only.
    - The client-credentials request (form: grant_type=client_credentials, client_id, client_secret,
      scope=all; `?tenant=` for hosted instances; POST `<auth>/token`) as the HaloAPI PowerShell module
      (homotechsual/HaloAPI, Connect-HaloAPI.ps1) and the HaloPsa.Api .NET client (AuthenticationHandler.cs)
      send it.
    - POST `<api>/Actions` with a JSON *array* of actions (HaloAPI New-HaloPOSTRequest.ps1 sends `-AsArray`),
      each with `ticket_id`, `outcome`, `note_html`, `hiddenfromuser`, `sendemail`: field names as in Halo's
      Actions schema quoted by the HaloPsa.Api tests and in several published integrations.
    Not confirmed from Halo's own reference (its apidoc pages are not in the corpus): that `outcome` given by
    name is matched to an outcome ("Private Note" exists by default in the instances the examples come from;
    use `outcome_id` when it does not), and which of `note`/`note_html` wins when both are sent, so only
    `note_html` is sent.

    One note per call; a rejected cached token (401) is renewed once and the note sent again, since Halo may
    revoke tokens before their `expires_in`.
    """

    kind = ChannelKind.PSA

    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str,
        *,
        auth_url: str | None = None,
        tenant: str | None = None,
        outcome: str = "Private Note",
        outcome_id: int | None = None,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not base_url or not client_id or not client_secret:
            raise ValueError("HaloPSA needs its URL, a client id and a client secret")
        self._api = base_url.rstrip("/") + "/api"
        self._token_url = (auth_url or base_url.rstrip("/") + "/auth").rstrip("/") + "/token"
        self._client_id = client_id
        self._client_secret = client_secret
        self._tenant = tenant
        self._outcome = outcome
        self._outcome_id = outcome_id
        self._client = client
        self._clock = clock
        self._token: tuple[str, float] | None = None  # (access token, monotonic expiry)

    def __repr__(self) -> str:
        return f"HaloPsaChannel(api={_http.host_of(self._api)!r}, client_id=***, client_secret=***)"

    async def deliver(self, notification: Notification, address: str, *, allow_private: bool = False) -> None:
        # The PSA's address comes from the operator's settings, never from a request: an on-premises PSA is fine.
        action: dict[str, object] = {
            "ticket_id": ticket_number(address, _WHAT),
            "outcome": self._outcome,
            "note_html": html_fragment(notification),
            "hiddenfromuser": True,  # an internal note: the end user is not shown it, nor emailed
            "sendemail": False,
        }
        if self._outcome_id is not None:
            action["outcome_id"] = self._outcome_id
        body = json.dumps([action], ensure_ascii=False).encode("utf-8")
        token, fresh = await self._access_token()
        try:
            await self._post_action(body, token)
        except DeliveryFailed as failure:
            if failure.status != 401 or fresh:
                raise
            self._token = None
            token, _ = await self._access_token()
            await self._post_action(body, token)

    async def _post_action(self, body: bytes, token: str) -> None:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json; charset=utf-8"}
        await _http.send(
            self._client, "POST", f"{self._api}/Actions", what=_WHAT, headers=headers, content=body, allow_private=True
        )

    async def _access_token(self) -> tuple[str, bool]:
        """A bearer token, and whether it was just issued (rather than cached)."""
        if self._token is not None and self._clock() < self._token[1] - _REFRESH_EARLY_S:
            return self._token[0], False
        url = self._token_url + ("?" + urlencode({"tenant": self._tenant}) if self._tenant else "")
        form = {
            "grant_type": "client_credentials",
            "client_id": self._client_id,
            "client_secret": self._client_secret,
            "scope": "all",
        }
        # Wrong client credentials come back as 400 invalid_client (or 401): permanent, as they should be.
        response = await _http.send(self._client, "POST", url, what=f"{_WHAT} token", headers={}, data=form, allow_private=True)
        try:
            answer = response.json()
            token = str(answer["access_token"])
            lifetime = float(answer.get("expires_in") or 3600)
        except (ValueError, KeyError, TypeError):
            raise DeliveryFailed(f"{_WHAT} token: the answer carried no access token", transient=True) from None
        self._token = (token, self._clock() + lifetime)
        return token, True
