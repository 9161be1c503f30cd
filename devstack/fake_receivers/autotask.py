"""A fake Autotask zone: `POST /ATServicesRest/V1.0/Tickets/{id}/Notes` (the TicketNotes child access URL).

Modelled on Autotask's developer help: the TicketNotes REST entity (`description` plain text up to 32000
characters, `title` up to 250 and required when the ticket category says so, `noteType` and `publish`
picklists, `ticketID`) and the header authentication every REST call carries (`ApiIntegrationCode`,
`UserName`, `Secret`). Answers `{"itemId": n}` on create and `{"errors": [...]}` otherwise, as the REST API
does. The statuses are simplified: Autotask is known to answer some validation failures with 500, the fake
answers 400 so that tests can tell a bad request from an outage.
"""

from __future__ import annotations

import re
import secrets
import threading
from typing import Any

from devstack.fake_receivers._server import LoopbackReceiver, RecordedRequest, Reply

_ROUTE = re.compile(r"^/atservicesrest/v1\.0/tickets/(\d+)/notes/?$", re.IGNORECASE)


class FakeAutotask(LoopbackReceiver):
    """Accepts notes from one API user and integration code; `notes` per ticket; picklists from the constructor."""

    def __init__(
        self,
        integration_code: str,
        username: str,
        secret: str,
        *,
        note_types: frozenset[int] = frozenset({1, 2, 3}),
        publish_values: frozenset[int] = frozenset({1, 2, 3}),
        require_titles: bool = True,
        tickets: set[int] | None = None,
    ) -> None:
        super().__init__()
        self.integration_code = integration_code
        self.username = username
        self._secret = secret
        self.note_types = note_types
        self.publish_values = publish_values
        self.require_titles = require_titles
        self.tickets = tickets
        self._state = threading.Lock()
        self._notes: dict[int, list[dict[str, Any]]] = {}
        self._next_id = 1000

    @property
    def zone_url(self) -> str:
        return self.base_url

    @property
    def notes(self) -> dict[int, list[dict[str, Any]]]:
        with self._state:
            return {ticket: list(items) for ticket, items in self._notes.items()}

    def handle(self, request: RecordedRequest) -> Reply:
        match = _ROUTE.match(request.path)
        if match is None or request.method != "POST":
            return Reply.json(404, {"errors": ["The requested resource does not exist."]})
        if not self._authorised(request):
            return Reply.json(401, {"errors": ["Unauthorized: the ApiIntegrationCode, UserName or Secret is not valid."]})
        ticket = int(match.group(1))
        if self.tickets is not None and ticket not in self.tickets:
            return Reply.json(404, {"errors": [f"Ticket {ticket} was not found."]})
        try:
            note = request.json()
        except ValueError:
            return Reply.json(400, {"errors": ["The request body is not valid JSON."]})
        errors = self._problems(note, ticket)
        if errors:
            return Reply.json(400, {"errors": errors})
        with self._state:
            self._next_id += 1
            stored = {**note, "id": self._next_id, "ticketID": ticket}
            self._notes.setdefault(ticket, []).append(stored)
        return Reply.json(200, {"itemId": stored["id"]})

    def _authorised(self, request: RecordedRequest) -> bool:
        given = (request.header("ApiIntegrationCode") or "", request.header("UserName") or "", request.header("Secret") or "")
        expected = (self.integration_code, self.username, self._secret)
        return all(secrets.compare_digest(a, b) for a, b in zip(given, expected, strict=True))

    def _problems(self, note: Any, ticket: int) -> list[str]:
        if not isinstance(note, dict):
            return ["The body must be a TicketNotes object."]
        errors = []
        description = note.get("description")
        if not isinstance(description, str) or not description.strip():
            errors.append("description is required.")
        elif len(description) > 32000:
            errors.append("description is longer than 32000 characters.")
        title = note.get("title")
        if title is not None and (not isinstance(title, str) or len(title) > 250):
            errors.append("title must be text of at most 250 characters.")
        if self.require_titles and not (isinstance(title, str) and title.strip()):
            errors.append("title is required by this ticket category.")
        for field, allowed in (("noteType", self.note_types), ("publish", self.publish_values)):
            value = note.get(field)
            if isinstance(value, bool) or not isinstance(value, int):
                errors.append(f"{field} is required.")
            elif value not in allowed:
                errors.append(f"{field} {value} is not a valid picklist value.")
        if "ticketID" in note and note["ticketID"] != ticket:
            errors.append("ticketID does not match the parent ticket.")
        return errors
