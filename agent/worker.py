"""The agent's loop: take the site's commands from the queue, carry them out in AD, report results and a heartbeat.

Outbound only: the agent polls Azure Storage and connects to its DC; nothing connects to it.

Message handling:
- a command that can never work (not base64 JSON, unknown op or version, another site or tenant) is a poison
  message: reported as a permanent error and deleted;
- a transient failure (the DC unreachable or busy, the agent's bind refused) is reported with transient=true and
  the message is left in the queue, to reappear after the visibility timeout;
- anything else settles the command (ok, or a permanent error) and deletes the message;
- a message whose command already has a settled result (a repeated delivery) is deleted without acting again.
"""

from __future__ import annotations

import base64
import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from azure.core.exceptions import AzureError, ResourceNotFoundError
from azure.storage.queue import QueueMessage
from cryptography.hazmat.primitives.asymmetric import rsa

from agent import __version__, sealing
from agent import protocol as p
from agent.config import AgentConfig
from agent.directory import Directory, DirectoryError
from agent.storage import Clients

log = logging.getLogger(__name__)
_BATCH = 16


class Agent:
    def __init__(
        self,
        config: AgentConfig,
        directory: Directory,
        clients: Clients,
        private_key: rsa.RSAPrivateKey,
        *,
        host_name: str | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.directory = directory
        self.clients = clients
        self.private_key = private_key
        self.host_name = host_name or socket.gethostname()
        self._monotonic = monotonic
        self._next_heartbeat = 0.0

    # ---- the loop -----------------------------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        log.info("agent %s for site %s started on %s", __version__, self.config.site, self.host_name)
        while not stop.is_set():
            handled = 0
            try:
                self.heartbeat_if_due()
                handled = self.poll_once(stop)
            except AzureError as error:
                # Storage unreachable or refusing: keep running and try again after the poll interval.
                log.warning("storage call failed: %s", type(error).__name__)
            except Exception:
                log.exception("unexpected failure in the agent loop")
            if not handled:
                stop.wait(self.config.poll_interval)
        self.directory.close()
        log.info("agent stopped")

    def heartbeat_if_due(self) -> None:
        now = self._monotonic()
        if now >= self._next_heartbeat:
            self.heartbeat()
            self._next_heartbeat = now + self.config.heartbeat_interval

    def heartbeat(self) -> None:
        beat = p.Heartbeat(
            site=self.config.site,
            last_seen=datetime.now(UTC),
            agent_version=__version__,
            host_name=self.host_name,
            public_key=sealing.public_pem(self.private_key),
            key_id=sealing.key_id(self.private_key.public_key()),
            queue=p.queue_name(self.config.site),
        )
        self.clients.agents.upsert_entity(beat.to_entity())

    def poll_once(self, stop: threading.Event | None = None) -> int:
        """Handle one batch of visible messages; returns how many there were. Once `stop` is set, the rest of the
        batch is left alone (those messages reappear after the visibility timeout)."""
        messages = self.clients.queue.receive_messages(
            messages_per_page=_BATCH, visibility_timeout=self.config.visibility_timeout, max_messages=_BATCH
        )
        count = 0
        for message in messages:
            if stop is not None and stop.is_set():
                break
            count += 1
            self.handle(message)
        return count

    # ---- one message ----------------------------------------------------------------------------------------------

    def handle(self, message: QueueMessage) -> p.Result:
        attempt = int(message.dequeue_count or 1)
        try:
            command = p.decode_command(message.content)
            self._check_scope(command)
        except p.ProtocolError as error:
            partition, row = _ids_for_poison(message, self.config.site)
            result = p.Result(
                partition_key=partition,
                command_id=row,
                ok=False,
                error=p.ErrorInfo(error.code, error.message),
                site=self.config.site,
                attempt=attempt,
                agent_version=__version__,
            )
            log.warning("poison message %s: %s (%s)", message.id, error.code, error.message)
            self._report(result)
            self.clients.queue.delete_message(message)
            return result
        previous = self._settled(command)
        if previous is not None:
            log.info("command %s (%s) already settled; dropping the repeated delivery", command.id, command.op)
            self.clients.queue.delete_message(message)
            return previous
        result = self.execute(command, attempt)
        self._report(result)
        if result.final:
            self.clients.queue.delete_message(message)
        return result

    def _check_scope(self, command: p.Command) -> None:
        if command.site != self.config.site:
            raise p.ProtocolError(p.E_WRONG_SITE, f"command for site {command.site!r} reached the agent of {self.config.site!r}")
        if self.config.tenant_id and command.tenant_id.lower() != self.config.tenant_id.lower():
            raise p.ProtocolError(p.E_WRONG_TENANT, "command for another tenant")

    def _settled(self, command: p.Command) -> p.Result | None:
        try:
            entity = self.clients.results.get_entity(command.partition_key, command.id)
        except ResourceNotFoundError:
            return None
        previous = p.result_from_entity(dict(entity))
        return previous if previous.final else None

    def _report(self, result: p.Result) -> None:
        try:
            entity = p.result_to_entity(result)
        except ValueError:
            too_large = p.ErrorInfo(p.E_RESULT_TOO_LARGE, "the result does not fit in one table entity")
            entity = p.result_to_entity(
                p.Result(
                    partition_key=result.partition_key,
                    command_id=result.command_id,
                    ok=False,
                    error=too_large,
                    op=result.op,
                    site=result.site,
                    tenant_id=result.tenant_id,
                    attempt=result.attempt,
                    agent_version=result.agent_version,
                )
            )
        self.clients.results.upsert_entity(entity)

    def execute(self, command: p.Command, attempt: int = 1) -> p.Result:
        """Carry out one command; never raises for directory or input problems (they become the result's error)."""
        started = time.monotonic()
        payload: dict[str, Any] | None = None
        error: p.ErrorInfo | None = None
        try:
            payload = self._dispatch(command)
        except DirectoryError as failure:
            error = p.ErrorInfo(failure.code, failure.message, failure.transient)
        except p.ProtocolError as failure:
            error = p.ErrorInfo(failure.code, failure.message)
        except Exception as failure:
            log.exception("command %s (%s) failed unexpectedly", command.id, command.op)
            error = p.ErrorInfo(p.E_INTERNAL, f"unexpected {type(failure).__name__} in the agent")
        log.info(
            "command %s op=%s grant=%s attempt=%d -> %s in %.0f ms",
            command.id,
            command.op,
            command.grant_id or "-",
            attempt,
            "ok" if error is None else f"{error.code}{' (transient)' if error.transient else ''}",
            (time.monotonic() - started) * 1000,
        )
        return p.Result(
            partition_key=command.partition_key,
            command_id=command.id,
            ok=error is None,
            result=payload,
            error=error,
            op=command.op,
            site=command.site,
            tenant_id=command.tenant_id,
            attempt=attempt,
            agent_version=__version__,
        )

    def _dispatch(self, command: p.Command) -> dict[str, Any]:
        args = p.parse_args(command)
        d = self.directory
        if isinstance(args, p.EnsureAccountArgs):
            try:
                password = sealing.open_sealed(self.private_key, args.password)
            except sealing.SealingError as failure:
                raise DirectoryError(p.E_SEALED_PASSWORD, str(failure)) from None
            return d.ensure_account(args.sam_account_name, args.user_principal_name, args.display_name, args.marker, password)
        if isinstance(args, p.GroupArgs):
            if command.op == p.OP_ADD_TO_GROUP:
                return d.add_to_group(args.sam_account_name, args.marker, args.group)
            return d.remove_from_group(args.sam_account_name, args.marker, args.group)
        if isinstance(args, p.MarkedAccountsArgs):
            return d.marked_accounts(args.marker_prefix)
        if isinstance(args, p.NoArgs):
            return d.list_groups()
        if command.op == p.OP_DISABLE:
            return d.disable(args.sam_account_name, args.marker)
        if command.op == p.OP_DELETE:
            return d.delete(args.sam_account_name, args.marker)
        return d.read_back(args.sam_account_name, args.marker)


def _ids_for_poison(message: QueueMessage, site: str) -> tuple[str, str]:
    """Report a poison message under its command's own ids when they can be read, so the sender sees the refusal."""
    partition, row = p.site_partition(site), f"poison-{message.id}"
    try:
        data = json.loads(base64.b64decode(message.content, validate=True))
    except (ValueError, TypeError):
        return partition, row
    if isinstance(data, dict):
        ids = [data.get("grantId") or partition, data.get("id")]
        if all(isinstance(value, str) and value and not p.invalid_key(value) for value in ids):
            return str(ids[0]), str(ids[1])
    return partition, row
