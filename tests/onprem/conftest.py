"""Fixtures for the on-premises agent: a real Samba AD DC per test session (per xdist worker), the agent's LDAP layer
bound as the delegated service account, and the whole agent wired to Azurite.

Without Samba (not installed, or not root) these tests skip with the install command; under CI (CI=true) they fail
instead, so a CI machine that lost its Samba cannot pass silently.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from ldap3 import NONE, SIMPLE, Connection, Server, Tls
from ldap3.core.exceptions import LDAPBindError, LDAPInvalidCredentialsResult

from agent import config as agent_config
from agent import protocol as p
from agent import sealing, storage
from agent.directory import Directory
from agent.worker import Agent
from devstack.azurite import AzuriteEndpoints
from tests.onprem.samba_dc import SambaDC, SambaUnavailable, unavailable_reason

ROOT_DIR = Path(__file__).resolve().parents[2]


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


@pytest.fixture(scope="session")
def samba_dc() -> Iterator[SambaDC]:
    reason = unavailable_reason()
    if reason:
        message = f"Samba AD DC unavailable: {reason}"
        if _in_ci():
            pytest.fail(f"{message} (CI=true: the on-premises tests must run in CI)", pytrace=False)
        pytest.skip(message)
    dc = SambaDC()
    try:
        dc.start()
    except SambaUnavailable as error:
        dc.close()
        pytest.fail(f"Samba is installed but the DC did not start: {error}", pytrace=False)
    print(f"samba DC on {dc.address}: {dc.timings} (template built: {dc.template_built})")
    yield dc
    dc.close()


@pytest.fixture
def running_dc(samba_dc: SambaDC) -> SambaDC:
    """The session's DC, started again if an earlier test stopped it."""
    if not samba_dc.running:
        samba_dc.start()
    return samba_dc


def ldap_config(dc: SambaDC, **overrides: Any) -> agent_config.LdapConfig:
    settings = dc.agent_ldap_settings()
    values: dict[str, Any] = {
        "url": settings["url"],
        "ca_file": settings["ca_file"],
        "tls_server_name": settings["tls_server_name"],
        "bind_dn": settings["bind_dn"],
        "password": dc.service_password,
        "ou": settings["ou"],
        "allowed_groups": tuple(settings["allowed_groups"]),
        "timeout": 5.0,
    }
    values.update(overrides)
    return agent_config.LdapConfig(**values)


@pytest.fixture
def directory(running_dc: SambaDC) -> Iterator[Directory]:
    d = Directory(ldap_config(running_dc))
    yield d
    d.close()


def connect_as(dc: SambaDC, user: str, password: str) -> Connection:
    """A SIMPLE bind over LDAPS, validating the DC's certificate; raises when the DC refuses the password."""
    tls = Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=dc.ca_file, valid_names=[dc.tls_server_name])
    server = Server(dc.ldaps_url, use_ssl=True, tls=tls, get_info=NONE, connect_timeout=5)
    return Connection(server, user=user, password=password, authentication=SIMPLE, raise_exceptions=True, auto_bind=True)


def can_bind(dc: SambaDC, user: str, password: str) -> bool:
    try:
        connect_as(dc, user, password).unbind()
    except (LDAPInvalidCredentialsResult, LDAPBindError):
        return False
    return True


@pytest.fixture
def admin(running_dc: SambaDC) -> Iterator[Connection]:
    """Domain Administrator, for arranging what the agent must not touch and for checking the directory's state."""
    conn = connect_as(running_dc, running_dc.admin_dn, running_dc.admin_password)
    yield conn
    conn.unbind()


def unique_sam() -> str:
    return f"jit-{uuid.uuid4().hex[:12]}"


def one_time_password() -> str:
    return f"Otp-{uuid.uuid4().hex[:16]}!9"


# ---- the whole agent against Azurite ---------------------------------------------------------------------------


@dataclass
class AgentRig:
    agent: Agent
    config: agent_config.AgentConfig
    clients: storage.Clients
    dc: SambaDC
    private_key: Any
    public_pem: str

    def command(self, op: str, args: dict[str, Any], *, grant_id: str = "grant-1", command_id: str | None = None) -> p.Command:
        return p.Command(
            id=command_id or uuid.uuid4().hex,
            site=self.config.site,
            op=op,
            args=args,
            tenant_id="11111111-2222-4333-8444-555555555555",
            grant_id=grant_id,
        )

    def send(self, command: p.Command) -> None:
        self.clients.queue.send_message(p.encode_command(command))

    def send_raw(self, text: str) -> None:
        self.clients.queue.send_message(text)

    def drain(self, rounds: int = 10) -> int:
        total = 0
        for _ in range(rounds):
            handled = self.agent.poll_once()
            total += handled
            if not handled:
                break
        return total

    def result(self, command: p.Command) -> p.Result:
        return p.result_from_entity(dict(self.clients.results.get_entity(command.partition_key, command.id)))

    def run(self, command: p.Command) -> p.Result:
        self.send(command)
        self.drain()
        return self.result(command)

    def queued(self) -> int:
        return int(self.clients.queue.get_queue_properties().approximate_message_count)

    def ensure_args(self, sam: str, marker: str, password: str, display_name: str | None = None) -> dict[str, Any]:
        return {
            "samAccountName": sam,
            "userPrincipalName": f"{sam}@jit.test",
            "displayName": display_name or f"JIT {sam}",
            "marker": marker,
            "password": sealing.seal_for_agent(self.public_pem, password),
        }


def write_agent_config(path: Path, dc: SambaDC, azurite: AzuriteEndpoints, site: str, prefix: str, **extra: Any) -> Path:
    """A TOML config file for this DC and Azurite (the password goes in a file of its own, as in production)."""
    password_file = path.parent / "ldap-password"
    password_file.write_text(dc.service_password + "\n")
    ldap = dc.agent_ldap_settings() | {"password_file": str(password_file)}
    top = {
        "site": site,
        "table_prefix": prefix,
        "private_key_file": str(path.parent / "agent-key.pem"),
        "poll_interval": 0.2,
        "heartbeat_interval": 1.0,
        "visibility_timeout": 1,
    } | extra

    def toml_value(value: Any) -> str:
        return json.dumps(value)  # JSON strings, numbers and string arrays are valid TOML

    lines = [f"{key} = {toml_value(value)}" for key, value in top.items()]
    lines += ["[storage]", f"connection_string = {toml_value(azurite.connection_string)}", "[ldap]"]
    lines += [f"{key} = {toml_value(value)}" for key, value in ldap.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def rig(running_dc: SambaDC, azurite: AzuriteEndpoints, tmp_path: Path) -> Iterator[AgentRig]:
    unique = uuid.uuid4().hex[:10]
    path = write_agent_config(tmp_path / "agent.toml", running_dc, azurite, site=f"s-{unique}", prefix=f"A{unique}")
    settings = agent_config.load(path, environ={})
    clients = storage.connect(settings)
    private_key = sealing.load_or_create_private_key(Path(settings.private_key_file))
    directory = Directory(settings.ldap)
    agent = Agent(settings, directory, clients, private_key, host_name="agent-test-host")
    yield AgentRig(agent, settings, clients, running_dc, private_key, sealing.public_pem(private_key))
    directory.close()
    clients.close()


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()
