"""A fake ConnectWise Manage: `POST /{codebase}/apis/3.0/service/tickets/{id}/notes`.

Modelled on ConnectWise's documented authentication (Basic `<companyId>+<publicKey>:<privateKey>` and a
`clientId` header on every request) and the ServiceNote schema of its OpenAPI description (`text`,
`detailDescriptionFlag`, `internalAnalysisFlag`, `resolutionFlag`, `processNotifications`, ...). Its error
bodies use ConnectWise's `{"code", "message", "errors": [{"code", "message", "resource", "field"}]}` shape.
Assumed, not confirmed: 401 (rather than 400) for a missing clientId, and that a note must carry at least one
of the three type flags (the PSA files every note under one of them).
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import threading
from typing import Any

from devstack.fake_receivers._server import LoopbackReceiver, RecordedRequest, Reply

_FLAGS = ("detailDescriptionFlag", "internalAnalysisFlag", "resolutionFlag")
_BOOLEANS = (*_FLAGS, "issueFlag", "customerUpdatedFlag", "processNotifications", "internalFlag", "externalFlag")


class FakeConnectWise(LoopbackReceiver):
    """Accepts notes from one API member (company, public and private key) and one clientId; `notes` per ticket."""

    def __init__(
        self,
        company_id: str,
        public_key: str,
        private_key: str,
        client_id: str,
        *,
        codebase: str = "v4_6_release",
        tickets: set[int] | None = None,
    ) -> None:
        super().__init__()
        self._credentials = f"{company_id}+{public_key}:{private_key}"
        self.client_id = client_id
        self.tickets = tickets
        self._route = re.compile(rf"^/{re.escape(codebase)}/apis/3\.0/service/tickets/(\d+)/notes/?$", re.IGNORECASE)
        self._state = threading.Lock()
        self._notes: dict[int, list[dict[str, Any]]] = {}

    @property
    def site_url(self) -> str:
        return self.base_url

    @property
    def notes(self) -> dict[int, list[dict[str, Any]]]:
        with self._state:
            return {ticket: list(items) for ticket, items in self._notes.items()}

    def handle(self, request: RecordedRequest) -> Reply:
        match = self._route.match(request.path)
        if match is None or request.method != "POST":
            return _error(404, "NotFound", "The requested resource was not found.")
        if not self._authorised(request):
            return _error(401, "Unauthorized", "Authentication failed.")
        ticket = int(match.group(1))
        if self.tickets is not None and ticket not in self.tickets:
            return _error(404, "NotFound", f"Ticket with id {ticket} not found.")
        if not (request.header("Content-Type") or "").lower().startswith("application/json"):
            return _error(415, "UnsupportedMediaType", "Content-Type must be application/json.")
        try:
            note = request.json()
        except ValueError:
            return _error(400, "InvalidObject", "The request body is not valid JSON.")
        problems = _problems(note)
        if problems:
            return _error(400, "InvalidObject", "serviceNote object is invalid", problems)
        with self._state:
            items = self._notes.setdefault(ticket, [])
            stored = {**note, "id": len(items) + 1, "ticketId": ticket}
            items.append(stored)
        return Reply.json(201, stored)

    def _authorised(self, request: RecordedRequest) -> bool:
        client_id = request.header("clientId") or ""
        scheme, _, encoded = (request.header("Authorization") or "").partition(" ")
        if scheme.lower() != "basic" or not secrets.compare_digest(client_id, self.client_id):
            return False
        try:
            decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return secrets.compare_digest(decoded, self._credentials)


def _problems(note: Any) -> list[dict[str, str]]:
    if not isinstance(note, dict):
        return [{"code": "InvalidObject", "message": "serviceNote must be an object", "resource": "serviceNote", "field": ""}]
    problems = []
    text = note.get("text")
    if not isinstance(text, str) or not text.strip():
        problems.append({"code": "NullOrEmpty", "message": "text may not be empty", "resource": "serviceNote", "field": "text"})
    for name in _BOOLEANS:
        if name in note and not isinstance(note[name], bool):
            problems.append(
                {"code": "InvalidValue", "message": f"{name} must be a boolean", "resource": "serviceNote", "field": name}
            )
    if not any(note.get(flag) is True for flag in _FLAGS):
        problems.append(
            {
                "code": "Required",
                "message": "one of detailDescriptionFlag, internalAnalysisFlag or resolutionFlag must be true",
                "resource": "serviceNote",
                "field": "internalAnalysisFlag",
            }
        )
    return problems


def _error(status: int, code: str, message: str, errors: list[dict[str, str]] | None = None) -> Reply:
    body: dict[str, Any] = {"code": code, "message": message}
    if errors:
        body["errors"] = errors
    return Reply.json(status, body)
