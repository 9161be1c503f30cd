"""The product under test: `function_app.py` hosted locally on Azurite (as tests/conftest.py's Stack is), talking to
the directory under test, with a clock that is the test's in simulator mode and the wall clock against a tenant."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import azure.functions as func

from jit import bootstrap
from jit.domain.work import Step, WorkItem
from tests.conftest import Product, body_of

from .config import Mode

# States after which nothing more happens to a grant without a new event.
SETTLED = frozenset({"Active", "Expired", "Revoked", "Failed", "Denied", "AwaitingApproval", "Scheduled"})
ENDED = frozenset({"Expired", "Revoked", "Failed"})


@dataclass
class SimulatedTime:
    """The simulator-mode clock: it stands still, and the suite moves it past a grant's end at once."""

    current: datetime = field(default_factory=lambda: datetime.now(UTC))

    def now(self) -> datetime:
        return self.current

    def pass_until(self, moment: datetime) -> None:
        self.current = max(self.current, moment)


class WallTime:
    """The live-mode clock: real time, which the suite can only wait out."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def pass_until(self, moment: datetime) -> None:
        while (left := (moment - self.now()).total_seconds()) > 0:
            time.sleep(min(left, 10.0))


Timeline = SimulatedTime | WallTime


@dataclass
class Jit:
    """Drives the product through its HTTP API, queue and timers, as its users and Azure would."""

    product: Product
    timeline: Timeline
    mode: Mode
    poll_s: float  # between rounds while waiting for the product (and Graph) to finish
    settle_s: float  # how long a grant may take to settle

    def install(self) -> None:
        """Make this product's services the process's: the functions find theirs through `bootstrap`, and other
        tests in the same worker install their own. (Nothing in the product reads os.environ once services exist.)"""
        bootstrap.reset(self.product.services)

    def call(self, method: str, url: str, body: Any = None) -> func.HttpResponse:
        return self.product.call(method, url, body)

    def request(self, body: dict[str, Any]) -> dict[str, Any]:
        response = self.product.post_request(body)
        assert response.status_code in (201, 202), response.get_body()
        created: dict[str, Any] = body_of(response)
        return created

    def grant(self, grant_id: str) -> dict[str, Any]:
        response = self.call("GET", f"/api/jit/requests/{grant_id}")
        assert response.status_code == 200, response.get_body()
        found: dict[str, Any] = body_of(response)
        return found

    def settle(self, grant_ids: Iterable[str], statuses: frozenset[str] = SETTLED) -> dict[str, dict[str, Any]]:
        """Deliver queued work until every grant is in one of `statuses` (or time is up); their views."""
        pending = list(grant_ids)
        deadline = time.monotonic() + self.settle_s
        views: dict[str, dict[str, Any]] = {}
        while True:
            self.product.drain()
            views = {grant_id: self.grant(grant_id) for grant_id in pending}
            if all(v["status"] in statuses for v in views.values()) or time.monotonic() > deadline:
                return views
            time.sleep(self.poll_s)

    def end(self, grants: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """Let the grants' end pass and the product act on it; their views afterwards.

        The end's queue message is hidden until endDateTime by Azurite's own (real) clock, and the sweep is the
        backstop one minute later; in simulator mode the test clock jumps, so the message is sent as Azure would
        deliver it when it became visible. Against a tenant the real one arrives too: ending is idempotent."""
        chosen = list(grants)
        last = max(_moment(g["endDateTime"]) for g in chosen)
        self.timeline.pass_until(last + timedelta(seconds=5))
        for grant in chosen:
            self.product.services.lifecycle.queue.send(WorkItem(grant["tenantId"], grant["id"], Step.EXPIRE))
        self.product.host.fire("schedule_sweep")
        return self.settle([g["id"] for g in chosen], ENDED)

    def revoke(self, grant_id: str, reason: str) -> dict[str, Any]:
        response = self.call("POST", f"/api/jit/requests/{grant_id}/revoke", {"reason": reason})
        assert response.status_code == 202, response.get_body()
        return self.settle([grant_id], ENDED)[grant_id]

    def drift(self) -> list[dict[str, Any]]:
        """Run the daily drift check now; every finding it recorded."""
        self.product.host.fire("drift_check")
        response = self.call("GET", "/api/jit/drift")
        assert response.status_code == 200, response.get_body()
        return list(body_of(response)["value"])

    def failures(self) -> list[str]:
        return [f"{name}: {error!r}" for name, error in self.product.host.failures]


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
