"""A fake HaloPSA: the OAuth2 client-credentials token endpoint and `POST /api/Actions`.

Modelled on halopsa.com/apidoc (self-hosted layout: `<site>/auth` and `<site>/api`, Bearer tokens, JSON only)
and on how the HaloAPI PowerShell module and the HaloPsa.Api .NET client call it (form-encoded token request
with grant_type, client_id, client_secret, scope; `?tenant=` for hosted instances; a JSON array of actions).
Errors follow OAuth2 (RFC 6749 §5.2: 400 `invalid_client`, `unsupported_grant_type`, `invalid_scope`) and a
bare 401 for a missing or unknown token. The 400 bodies of `/api/Actions` are the fake's own wording.
"""

from __future__ import annotations

import secrets
import threading
from typing import Any
from urllib.parse import parse_qs

from devstack.fake_receivers._server import LoopbackReceiver, RecordedRequest, Reply

_SCOPES = {"all", "edit:tickets"}


class FakeHaloPsa(LoopbackReceiver):
    """Issues tokens to one API application and records the actions added per ticket in `notes`."""

    def __init__(self, client_id: str, client_secret: str, *, tenant: str | None = None, tickets: set[int] | None = None) -> None:
        super().__init__()
        self.client_id = client_id
        self.client_secret = client_secret
        self.tenant = tenant
        self.tickets = tickets  # None: every ticket exists
        self._state = threading.Lock()
        self._tokens: set[str] = set()
        self._notes: dict[int, list[dict[str, Any]]] = {}
        self.token_requests = 0

    @property
    def notes(self) -> dict[int, list[dict[str, Any]]]:
        with self._state:
            return {ticket: list(actions) for ticket, actions in self._notes.items()}

    def revoke_tokens(self) -> None:
        """Forget every issued token, as an instance does when the application's secret is rotated."""
        with self._state:
            self._tokens.clear()

    def handle(self, request: RecordedRequest) -> Reply:
        path = request.path.rstrip("/").lower()
        if request.method == "POST" and path == "/auth/token":
            return self._token(request)
        if request.method == "POST" and path == "/api/actions":
            return self._actions(request)
        return Reply.json(404, {"error": "not found"})

    def _token(self, request: RecordedRequest) -> Reply:
        with self._state:
            self.token_requests += 1
        if not (request.header("Content-Type") or "").lower().startswith("application/x-www-form-urlencoded"):
            return Reply.json(400, {"error": "invalid_request", "error_description": "form-encoded body expected"})
        form = {name: values[0] for name, values in parse_qs(request.body.decode("utf-8"), keep_blank_values=True).items()}
        if form.get("grant_type") != "client_credentials":
            return Reply.json(400, {"error": "unsupported_grant_type"})
        if self.tenant is not None and request.query.get("tenant", [""])[0] != self.tenant:
            return Reply.json(400, {"error": "invalid_request", "error_description": "unknown tenant"})
        given_id, given_secret = form.get("client_id", ""), form.get("client_secret", "")
        if not (secrets.compare_digest(given_id, self.client_id) and secrets.compare_digest(given_secret, self.client_secret)):
            return Reply.json(400, {"error": "invalid_client"})
        scopes = set(form.get("scope", "").split())
        if not scopes or not scopes <= _SCOPES:
            return Reply.json(400, {"error": "invalid_scope"})
        token = secrets.token_urlsafe(24)
        with self._state:
            self._tokens.add(token)
        return Reply.json(
            200, {"access_token": token, "token_type": "Bearer", "expires_in": 3600, "scope": " ".join(sorted(scopes))}
        )

    def _actions(self, request: RecordedRequest) -> Reply:
        scheme, _, token = (request.header("Authorization") or "").partition(" ")
        with self._state:
            known = scheme.lower() == "bearer" and token in self._tokens
        if not known:
            return Reply(401, headers={"WWW-Authenticate": "Bearer"})
        try:
            actions = request.json()
        except ValueError:
            return Reply.json(400, {"message": "The request body is not valid JSON."})
        if not isinstance(actions, list) or not actions:
            return Reply.json(400, {"message": "Expected a JSON array of actions."})
        created: list[dict[str, Any]] = []
        for action in actions:
            problem = _problem(action, self.tickets)
            if problem:
                return Reply.json(404 if problem == "ticket not found" else 400, {"message": problem})
        with self._state:
            for action in actions:
                ticket = int(action["ticket_id"])
                stored = {**action, "id": sum(len(v) for v in self._notes.values()) + 1, "ticket_id": ticket}
                self._notes.setdefault(ticket, []).append(stored)
                created.append(stored)
        return Reply.json(201, created[0] if len(created) == 1 else created)


def _problem(action: Any, tickets: set[int] | None) -> str:
    if not isinstance(action, dict):
        return "Each action must be an object."
    ticket = action.get("ticket_id")
    if isinstance(ticket, bool) or not (isinstance(ticket, int) or (isinstance(ticket, str) and ticket.isdigit())):
        return "ticket_id must be a ticket number."
    if tickets is not None and int(ticket) not in tickets:
        return "ticket not found"
    note, note_html = action.get("note"), action.get("note_html")
    if not any(isinstance(text, str) and text.strip() for text in (note, note_html)):
        return "An action needs a note or note_html."
    for flag in ("hiddenfromuser", "sendemail"):
        if flag in action and not isinstance(action[flag], bool):
            return f"{flag} must be a boolean."
    if "outcome" in action and not isinstance(action["outcome"], str):
        return "outcome must be a string."
    return ""
