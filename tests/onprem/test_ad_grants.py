"""Grants to an on-premises site, end to end: the function app (driven through its HTTP and queue functions against
Azurite) and the agent as a separate process (`python -m agent`) against the real Samba DC. Every outcome is read
from the DC directly with ldap3, as the Domain Administrator.

One agent process serves the whole module (its queue and tables are the module's); each test has its own function
app stack over the same tables.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableServiceClient
from ldap3 import MODIFY_REPLACE, SUBTREE, Connection

from agent import protocol as p
from agent import sealing
from devstack.azurite import AzuriteEndpoints
from jit.domain.work import Step, WorkItem
from tests.conftest import TENANT, TENANT_GUID, Stack, body_of, valid_request
from tests.onprem.conftest import ROOT_DIR, can_bind, connect_as, write_agent_config
from tests.onprem.samba_dc import SambaDC

DA = "Domain Admins"
MARKER_ATTRIBUTE = "msDS-cloudExtensionAttribute1"


@dataclass
class Site:
    """The module's on-premises site: its agent process, config and pinned key."""

    name: str
    prefix: str
    config: Path
    log: Path
    key_id: str
    dc: SambaDC
    azurite: AzuriteEndpoints
    process: subprocess.Popen[bytes] | None = None

    @property
    def directory(self) -> str:
        return f"ad:{self.name}"

    def env(self) -> dict[str, str]:
        return {k: v for k, v in os.environ.items() if not k.startswith(("JIT_AGENT_", "JIT_AD_"))} | {"PYTHONPATH": str(ROOT_DIR)}

    def start(self) -> None:
        if self.process is not None and self.process.poll() is None:
            return
        with open(self.log, "a") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "agent", "--config", str(self.config)], env=self.env(), stdout=log, stderr=subprocess.STDOUT
            )
        self.wait_for_heartbeat()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            assert self.process.wait(timeout=15) == 0

    def wait_for_heartbeat(self, timeout: float = 30) -> None:
        agents = TableServiceClient.from_connection_string(self.azurite.connection_string).get_table_client(p.agents_table(self.prefix))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                beat = p.Heartbeat.from_entity(dict(agents.get_entity(p.HEARTBEAT_PARTITION, self.name)))
                if datetime.now(UTC) - beat.last_seen < timedelta(seconds=2):
                    return
            except ResourceNotFoundError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"the agent did not report in {timeout} s:\n{self.log.read_text()}")


@pytest.fixture(scope="module")
def site(samba_dc: SambaDC, azurite: AzuriteEndpoints, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    if not samba_dc.running:
        samba_dc.start()
    unique = uuid.uuid4().hex[:10]
    folder = tmp_path_factory.mktemp("ad-site")
    name, prefix = f"hq-{unique}", f"T{unique}"
    config = write_agent_config(folder / "agent.toml", samba_dc, azurite, site=name, prefix=prefix, tenant_id=TENANT_GUID)
    env = {k: v for k, v in os.environ.items() if not k.startswith("JIT_AGENT_")} | {"PYTHONPATH": str(ROOT_DIR)}
    public_pem = subprocess.run(
        [sys.executable, "-m", "agent", "--config", str(config), "--print-public-key"], env=env, capture_output=True, text=True, check=True
    ).stdout
    key_id = sealing.key_id(sealing.load_public_key(public_pem))
    started = Site(name, prefix, config, folder / "agent.log", key_id, samba_dc, azurite)
    started.start()
    yield started
    started.stop()
    log = started.log.read_text()
    assert "Traceback" not in log, log


def ad_stack(make_stack: Any, site: Site, **overrides: str) -> Stack:
    """The function app over the site's tables, with Contoso onboarded for Entra and the site."""
    sites = {site.name: {"tenantId": TENANT_GUID, "agentKeyId": site.key_id}}
    env = {
        "JIT_TABLE_PREFIX": site.prefix,
        "JIT_AD_SITES": json.dumps(sites),
        "JIT_AD_HEARTBEAT_STALE_AFTER": "PT3S",
        "JIT_AD_COMMAND_TIMEOUT": "PT10S",
    } | overrides
    stack: Stack = make_stack(onboard=(), **env)
    stack.onboard(TENANT, directories=("entra", site.directory))
    return stack


def ad_request(site: Site, **overrides: Any) -> dict[str, Any]:
    body = valid_request(
        directory=site.directory,
        roles=[DA],
        user={"type": "new", "displayName": "JIT Admin for ticket 4711"},
        expirationActions=["DisableUser"],
    )
    body.update(overrides)
    return body


def grant_of(stack: Stack, grant_id: str) -> dict[str, Any]:
    return dict(body_of(stack.call("GET", f"/api/jit/requests/{grant_id}")))


def provisioned(stack: Stack, site: Site, **overrides: Any) -> dict[str, Any]:
    created = body_of(stack.post_request(ad_request(site, **overrides)))
    assert "id" in created, created
    stack.drain()
    return grant_of(stack, created["id"])


def sam_of(grant: dict[str, Any]) -> str:
    return str(grant["access"]["user"]["id"]).split(":", 1)[0]


def entry(dc: SambaDC, sam: str) -> dict[str, Any] | None:
    """The account as the DC has it (as Domain Administrator, not through the agent)."""
    conn = connect_as(dc, dc.admin_dn, dc.admin_password)
    try:
        conn.search(dc.base_dn, f"(sAMAccountName={sam})", SUBTREE, attributes=["memberOf", "userAccountControl", MARKER_ATTRIBUTE])
        found = [e for e in conn.response or [] if e.get("type") == "searchResEntry"]
        if not found:
            return None
        attributes = found[0]["attributes"]

        def first(name: str) -> Any:
            value = attributes.get(name)
            return (value[0] if value else None) if isinstance(value, list) else value

        return {
            "dn": str(found[0]["dn"]),
            "memberOf": [str(dn) for dn in attributes.get("memberOf", [])],
            "enabled": not int(first("userAccountControl")) & 2,
            "marker": str(first(MARKER_ATTRIBUTE) or ""),
        }
    finally:
        conn.unbind()


def in_domain_admins(account: dict[str, Any]) -> bool:
    return any(dn.lower().startswith("cn=domain admins,") for dn in account["memberOf"])


def reach_the_end(stack: Stack, grant: dict[str, Any]) -> dict[str, Any]:
    stack.clock.current = stack.services.grants.get(grant["id"]).request.end + timedelta(seconds=5)
    stack.services.lifecycle.queue.send(WorkItem(grant["tenantId"], grant["id"], Step.EXPIRE))
    stack.drain()
    return grant_of(stack, grant["id"])


def run_drift(stack: Stack) -> list[dict[str, Any]]:
    stack.host.fire("drift_check")
    return list(body_of(stack.call("GET", f"/api/jit/drift?tenantId={TENANT_GUID}"))["value"])


# -------------------------------------------------------------------------------------------------------------------


def test_a_domain_admin_grant_through_the_agent_ends_disabled_with_its_password_reset(make_stack: Any, site: Site) -> None:
    stack = ad_stack(make_stack, site)
    started = time.monotonic()
    grant = provisioned(stack, site)
    provisioning_seconds = time.monotonic() - started
    assert grant["status"] == "Active", grant
    assert grant["directory"] == site.directory
    sam = sam_of(grant)
    assert [(r["name"], r["state"]) for r in grant["access"]["roles"]] == [(DA, "done")]
    assert grant["access"]["credential"]["kind"] == "password" and grant["access"]["credential"]["state"] == "done"
    assert grant["access"]["temporaryAccessPass"] is None
    assert grant["directoryHealth"]["available"] is True

    account = entry(site.dc, sam)
    assert account is not None, sam
    assert account["dn"].lower().endswith("," + site.dc.ou_dn.lower())
    assert account["marker"] == f"JIT:{grant['id']}" and account["enabled"]
    assert in_domain_admins(account)

    # The one-time password: revealed once to the requester, and it signs in.
    revealed = stack.call("GET", f"/api/jit/requests/{grant['id']}/credentials")
    assert revealed.status_code == 200 and revealed.headers["Cache-Control"] == "no-store"
    body = body_of(revealed)
    credential = body["credential"]
    assert credential["kind"] == "password" and "temporaryAccessPass" not in body
    assert credential["expiresAt"] == grant["endDateTime"] and body["isUsableOnce"] is False
    password = credential["value"]
    assert can_bind(site.dc, account["dn"], password)
    assert stack.call("GET", f"/api/jit/requests/{grant['id']}/credentials").status_code == 410
    assert password not in site.log.read_text()  # the agent never logs it

    started = time.monotonic()
    ended = reach_the_end(stack, grant)
    expiry_seconds = time.monotonic() - started
    assert ended["status"] == "Expired", ended
    assert ended["access"]["expiration"]["verifiedAt"]
    assert [r["state"] for r in ended["access"]["roles"]] == ["removed"]
    after = entry(site.dc, sam)
    assert after is not None and not after["enabled"] and not in_domain_admins(after)
    assert not can_bind(site.dc, account["dn"], password)  # reset: the old password no longer works
    print(f"provisioning {provisioning_seconds:.1f} s, expiry {expiry_seconds:.1f} s")


def test_the_delete_action_removes_the_account(make_stack: Any, site: Site) -> None:
    stack = ad_stack(make_stack, site)
    grant = provisioned(stack, site, expirationActions=["DeleteUser"])
    assert grant["status"] == "Active", grant
    sam = sam_of(grant)
    account = entry(site.dc, sam)
    assert account is not None and in_domain_admins(account)
    ended = reach_the_end(stack, grant)
    assert ended["status"] == "Expired", ended
    assert entry(site.dc, sam) is None


def test_a_group_the_site_does_not_allow_fails_the_grant_before_anything_is_made(make_stack: Any, site: Site) -> None:
    stack = ad_stack(make_stack, site)
    grant = provisioned(stack, site, roles=["Enterprise Admins"])
    assert grant["status"] == "Failed", grant
    assert "Enterprise Admins" in grant["error"]["message"]
    assert grant["access"]["user"] is None


def test_a_site_not_configured_for_the_tenant_is_refused(make_stack: Any, site: Site) -> None:
    stack = ad_stack(make_stack, site, JIT_AD_SITES="{}")
    tenant = body_of(stack.call("GET", f"/api/jit/tenants/{TENANT}"))
    health = tenant["directoryHealth"][site.directory]
    assert health["available"] is False and "not configured" in health["detail"]
    grant = provisioned(stack, site)
    assert grant["status"] == "Failed" and "JIT_AD_SITES" in grant["error"]["message"], grant


def test_drift_reports_a_marked_account_no_grant_explains(make_stack: Any, site: Site) -> None:
    stack = ad_stack(make_stack, site)
    sam = f"jit-orph-{uuid.uuid4().hex[:8]}"
    stray_grant = "01ZZZZZZZZZZZZZZZZZZZZZZZZ"
    admin: Connection = connect_as(site.dc, site.dc.admin_dn, site.dc.admin_password)
    dn = f"CN={sam},{site.dc.ou_dn}"
    try:
        assert admin.add(dn, ["top", "person", "organizationalPerson", "user"], {"sAMAccountName": sam})
        assert admin.modify(dn, {MARKER_ATTRIBUTE: [(MODIFY_REPLACE, [f"JIT:{stray_grant}"])]})
        findings = run_drift(stack)
        orphans = [f for f in findings if f["kind"] == "JitAccountWithoutGrant" and sam in f["detail"]]
        assert len(orphans) == 1, findings
        assert orphans[0]["grantId"] == stray_grant
        assert entry(site.dc, sam) is not None  # reported, never deleted
    finally:
        admin.delete(dn)
        admin.unbind()


def test_an_agent_that_stops_reporting_holds_its_grants_and_says_so(make_stack: Any, site: Site) -> None:
    stack = ad_stack(make_stack, site, JIT_GRAPH_RETRY_BUDGET="PT2S")
    site.stop()
    try:
        time.sleep(3.5)  # JIT_AD_HEARTBEAT_STALE_AFTER is PT3S
        created = body_of(stack.post_request(ad_request(site)))
        stack.drain()
        waiting = grant_of(stack, created["id"])
        assert waiting["status"] == "Provisioning", waiting
        assert waiting["access"]["user"] is None  # nothing was sent to an absent agent
        health = waiting["directoryHealth"]
        assert health["available"] is False and "has not reported since" in health["detail"], health
        assert health["lastSeen"] and health["facts"]["keyId"] == site.key_id

        tenant = body_of(stack.call("GET", f"/api/jit/tenants/{TENANT}"))
        assert tenant["directoryHealth"][site.directory]["available"] is False
        assert "entra" not in tenant["directoryHealth"]

        # The alert, within a minute: the sweep's directory watch reports the silent agent (once per hour).
        stack.host.fire("schedule_sweep")
        stack.host.fire("schedule_sweep")
        watched = body_of(stack.call("GET", f"/api/jit/drift?tenantId={TENANT_GUID}"))["value"]
        alerts = [f for f in watched if f["kind"] == "DirectoryUnreachable" and site.directory in f["detail"]]
        assert len(alerts) == 1, watched

        # The daily drift check reports the site it can not check too (and announces the finding).
        findings = run_drift(stack)
        unreachable = [f for f in findings if f["kind"] == "DirectoryUnreachable" and site.directory in f["detail"]]
        assert unreachable and "has not reported since" in unreachable[0]["detail"], findings
    finally:
        site.start()

    # The agent is back: the grant carries on (the sweep's next delivery, sent here by hand).
    stack.services.lifecycle.queue.send(WorkItem(TENANT_GUID, created["id"], Step.PROVISION))
    stack.drain()
    active = grant_of(stack, created["id"])
    assert active["status"] == "Active", active
    assert active["directoryHealth"]["available"] is True
    account = entry(site.dc, sam_of(active))
    assert account is not None and in_domain_admins(account)
    assert reach_the_end(stack, active)["status"] == "Expired"
