"""The function app's end of one site's agent: commands out on the site's queue, results read back from the results
table, and the agent's heartbeat (docs/onprem-agent.md has the protocol).

Commands carry a time-to-live (`JIT_AD_COMMAND_TIMEOUT`): one the agent has not taken by then disappears and never
runs. The link waits for results that long plus `GRACE` (the time a command taken just before its expiry may still
take to run), so once `run` returns, nothing it sent can still change the directory: a later retry never races an
older command (an old password set after the new one, a group added back after its removal).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient
from azure.storage.queue import QueueClient

from agent import protocol as p
from agent import sealing
from jit.adapters.backends.active_directory.settings import AdSettings, SiteSettings
from jit.services.access_backend import Health, Unavailable

log = logging.getLogger(__name__)

GRACE = timedelta(seconds=30)
HEARTBEAT_CACHE_SECONDS = 2.0
ALERT_EVERY_SECONDS = 600.0
TIMED_OUT = "agent_timeout"


@dataclass(frozen=True)
class Reply:
    """The agent's answer to one command, or what the link saw instead (no answer in time)."""

    command: p.Command
    ok: bool
    result: dict[str, Any] = field(default_factory=dict)
    code: str = ""
    message: str = ""
    transient: bool = False


class AgentLink:
    def __init__(
        self,
        site: SiteSettings,
        settings: AdSettings,
        queue: QueueClient,
        results: TableClient,
        agents: TableClient,
    ) -> None:
        self.site = site
        self._settings = settings
        self._queue = queue
        self._results = results
        self._agents = agents
        self._beat: tuple[float, p.Heartbeat | None] | None = None
        self._alerted_at = -ALERT_EVERY_SECONDS

    # The agent's heartbeat ------------------------------------------------------------------------------------

    async def heartbeat(self) -> p.Heartbeat | None:
        """The agent's last heartbeat; None when it never reported. A good one is kept a couple of seconds (every
        command checks it); a missing or stale one is read again each time, so a returning agent is seen at once."""
        now = time.monotonic()
        if self._beat is None or now - self._beat[0] > HEARTBEAT_CACHE_SECONDS or self._problem(self._beat[1]):
            self._beat = (now, await asyncio.to_thread(self._read_heartbeat))
        return self._beat[1]

    def _read_heartbeat(self) -> p.Heartbeat | None:
        try:
            return p.Heartbeat.from_entity(dict(self._agents.get_entity(p.HEARTBEAT_PARTITION, self.site.name)))
        except ResourceNotFoundError:
            return None

    async def health(self) -> Health:
        beat = await self.heartbeat()
        problem = self._problem(beat)
        if beat is None:
            return Health(False, problem)
        facts = {"agentVersion": beat.agent_version, "hostName": beat.host_name, "keyId": beat.key_id, "queue": beat.queue}
        return Health(problem == "", problem, beat.last_seen, facts)

    def _problem(self, beat: p.Heartbeat | None) -> str:
        """Why commands cannot go to the agent now ("" when they can)."""
        name = self.site.name
        if beat is None:
            return f"the agent of site {name} has never reported (no heartbeat in the agents table): install and start it"
        age = datetime.now(UTC) - beat.last_seen
        if age > self._settings.heartbeat_stale_after:
            return (
                f"the agent of site {name} has not reported since {beat.last_seen.isoformat()} "
                f"({int(age.total_seconds())} s ago, more than {int(self._settings.heartbeat_stale_after.total_seconds())} s); "
                "its grants wait until it reports again"
            )
        try:
            actual = sealing.key_id(sealing.load_public_key(beat.public_key))
        except sealing.SealingError as error:
            return f"the agent of site {name} publishes an unusable key: {error}"
        if actual != self.site.agent_key_id:
            return (
                f"the agent of site {name} publishes key {actual[:16]}…, not the pinned {self.site.agent_key_id[:16]}… "
                "(JIT_AD_SITES agentKeyId): if the agent's key was replaced on purpose, pin the new one"
            )
        return ""

    async def agent_key(self) -> str:
        """The agent's public key (PEM) to seal passwords to, once its heartbeat is fresh and its key the pinned one;
        Unavailable otherwise, so the saga tries again later and nothing waits in the queue for an absent agent."""
        beat = await self.heartbeat()
        problem = self._problem(beat)
        if problem:
            if time.monotonic() - self._alerted_at > ALERT_EVERY_SECONDS:
                self._alerted_at = time.monotonic()
                log.error("ALERT on-premises site %s: %s", self.site.name, problem)
            raise Unavailable(problem, code="AgentNotReporting")
        assert beat is not None
        return beat.public_key

    # Commands -------------------------------------------------------------------------------------------------

    def command(self, op: str, args: dict[str, Any], *, grant_id: str = "") -> p.Command:
        return p.Command(
            id=uuid.uuid4().hex, site=self.site.name, op=op, args=args, tenant_id=self.site.tenant_id, grant_id=grant_id
        )

    async def run(self, commands: Sequence[p.Command]) -> list[Reply]:
        """Send the commands at once (the agent may run them in any order) and wait for each one's answer."""
        await self.agent_key()
        ttl = max(1, int(self._settings.command_timeout.total_seconds()))
        for command in commands:
            text = p.encode_command(command)
            await asyncio.to_thread(self._queue.send_message, text, time_to_live=ttl)
        deadline = time.monotonic() + ttl + GRACE.total_seconds()
        replies: dict[str, Reply] = {}
        last_error: dict[str, p.ErrorInfo] = {}
        delay = 0.1
        while len(replies) < len(commands) and time.monotonic() < deadline:
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 1.0)
            waiting = [c for c in commands if c.id not in replies]
            found = await asyncio.gather(*(asyncio.to_thread(self._read_result, c) for c in waiting))
            for command, result in zip(waiting, found, strict=True):
                if result is None:
                    continue
                if result.final:
                    replies[command.id] = _reply(command, result)
                elif result.error is not None:
                    last_error[command.id] = result.error  # transient: the agent tries again after its visibility timeout
        for command in commands:
            if command.id not in replies:
                replies[command.id] = self._no_answer(command, last_error.get(command.id))
        return [replies[c.id] for c in commands]

    def _read_result(self, command: p.Command) -> p.Result | None:
        try:
            return p.result_from_entity(dict(self._results.get_entity(command.partition_key, command.id)))
        except ResourceNotFoundError:
            return None

    def _no_answer(self, command: p.Command, error: p.ErrorInfo | None) -> Reply:
        seconds = int(self._settings.command_timeout.total_seconds() + GRACE.total_seconds())
        if error is not None:
            message = f"the agent of site {self.site.name} kept failing ({error.code}): {error.message}"
            return Reply(command, False, code=error.code, message=message, transient=True)
        message = f"the agent of site {self.site.name} did not answer {command.op} within {seconds} s"
        log.warning("%s (command %s)", message, command.id)
        return Reply(command, False, code=TIMED_OUT, message=message, transient=True)


def _reply(command: p.Command, result: p.Result) -> Reply:
    if result.ok:
        return Reply(command, True, result.result or {})
    error = result.error or p.ErrorInfo(p.E_INTERNAL, "the agent reported a failure without an error")
    return Reply(command, False, code=error.code, message=error.message, transient=error.transient)
