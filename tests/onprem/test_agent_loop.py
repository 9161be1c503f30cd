"""The whole agent: commands on an Azurite queue, carried out against the Samba DC, results read from Azurite tables."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from azure.core.exceptions import ResourceNotFoundError

from agent import protocol as p
from agent import sealing
from devstack.azurite import AzuriteEndpoints
from tests.onprem.conftest import ROOT_DIR, AgentRig, b64, can_bind, one_time_password, unique_sam, write_agent_config
from tests.onprem.samba_dc import SambaDC

DA = "Domain Admins"


def test_grant_lifecycle_through_the_queue(rig: AgentRig) -> None:
    sam, marker, otp = unique_sam(), "tenant-a/tech-1", one_time_password()
    ensure = rig.command(p.OP_ENSURE_ACCOUNT, rig.ensure_args(sam, marker, otp), grant_id="grant-1")
    created = rig.run(ensure)
    assert created.ok, created.error
    assert created.partition_key == "grant-1" and created.op == p.OP_ENSURE_ACCOUNT and created.result is not None
    assert created.result["created"] is True and created.result["enabled"] is True
    dn = created.result["dn"]
    assert can_bind(rig.dc, dn, otp)

    add = rig.command(p.OP_ADD_TO_GROUP, {"samAccountName": sam, "marker": marker, "group": DA}, grant_id="grant-1")
    added = rig.run(add)
    assert added.ok and added.result is not None and added.result["changed"] is True
    assert added.result["group"]["sid"] in {g["sid"] for g in added.result["tokenGroups"]}

    # The same message delivered twice: the second delivery is dropped, the settled result stays as it was.
    rig.send(add)
    assert rig.drain() == 1
    assert rig.result(add).completed_at == added.completed_at and rig.queued() == 0
    # A new command with the same effect is carried out again and changes nothing.
    add_again = rig.run(
        rig.command(p.OP_ADD_TO_GROUP, {"samAccountName": sam, "marker": marker, "group": DA}, grant_id="grant-1")
    )
    assert add_again.ok and add_again.result is not None and add_again.result["changed"] is False

    read = rig.run(rig.command(p.OP_READ_BACK, {"samAccountName": sam, "marker": marker}, grant_id="grant-1"))
    assert read.ok and read.result is not None and read.result["enabled"] is True
    assert any(dn_.lower().startswith("cn=domain admins,") for dn_ in read.result["memberOf"])

    for op in (p.OP_REMOVE_FROM_GROUP, p.OP_DISABLE):
        args = {"samAccountName": sam, "marker": marker} | ({"group": DA} if op == p.OP_REMOVE_FROM_GROUP else {})
        done = rig.run(rig.command(op, args, grant_id="grant-1"))
        assert done.ok, done.error
    assert not can_bind(rig.dc, dn, otp)
    state = rig.run(rig.command(p.OP_READ_BACK, {"samAccountName": sam, "marker": marker}, grant_id="grant-1")).result
    assert state is not None and state["enabled"] is False and state["memberOf"] == []

    # A second grant for the same technician reuses the account.
    otp2 = one_time_password()
    second = rig.run(rig.command(p.OP_ENSURE_ACCOUNT, rig.ensure_args(sam, marker, otp2), grant_id="grant-2"))
    assert second.ok and second.partition_key == "grant-2" and second.result is not None
    assert second.result["created"] is False and second.result["enabled"] is True
    assert can_bind(rig.dc, dn, otp2)

    listed = rig.run(rig.command(p.OP_MARKED_ACCOUNTS, {"markerPrefix": "tenant-a/"}, grant_id=""))
    assert listed.partition_key == f"site-{rig.config.site}"
    assert listed.result is not None and sam in [a["samAccountName"] for a in listed.result["accounts"]]

    deleted = rig.run(rig.command(p.OP_DELETE, {"samAccountName": sam, "marker": marker}, grant_id="grant-2"))
    assert deleted.ok and deleted.result == {"deleted": True, "exists": False, "dn": dn}
    assert rig.queued() == 0


def test_refusals_are_permanent_and_reported(rig: AgentRig) -> None:
    unmarked = rig.run(rig.command(p.OP_DISABLE, {"samAccountName": "Administrator", "marker": "x"}))
    assert not unmarked.ok and unmarked.error is not None
    assert unmarked.error.code == p.E_NOT_OURS and unmarked.error.transient is False
    not_allowed = rig.run(
        rig.command(p.OP_ADD_TO_GROUP, {"samAccountName": "Administrator", "marker": "x", "group": "Enterprise Admins"})
    )
    assert not_allowed.error is not None and not_allowed.error.code in (p.E_NOT_OURS, p.E_GROUP_NOT_ALLOWED)
    assert rig.queued() == 0  # settled: deleted from the queue


def test_poison_messages_are_reported_and_deleted_and_the_agent_goes_on(rig: AgentRig) -> None:
    rig.send_raw("this is not base64 JSON!")
    rig.send_raw(b64("[1, 2, 3]"))
    unknown = {
        "v": 1,
        "id": "cmd-unknown",
        "site": rig.config.site,
        "grantId": "grant-p",
        "op": "format_c",
        "args": {},
        "issuedAt": p.now_iso(),
    }
    rig.send_raw(b64(json.dumps(unknown)))
    future = unknown | {"id": "cmd-v2", "v": 2, "op": p.OP_LIST_GROUPS}
    rig.send_raw(b64(json.dumps(future)))
    elsewhere = unknown | {"id": "cmd-elsewhere", "site": "another-site", "op": p.OP_LIST_GROUPS}
    rig.send_raw(b64(json.dumps(elsewhere)))
    good = rig.command(p.OP_LIST_GROUPS, {}, grant_id="")
    rig.send(good)
    assert rig.drain() == 6
    assert rig.queued() == 0

    def error_of(partition: str, row: str) -> p.ErrorInfo:
        result = p.result_from_entity(dict(rig.clients.results.get_entity(partition, row)))
        assert not result.ok and result.error is not None and not result.error.transient
        return result.error

    assert error_of("grant-p", "cmd-unknown").code == p.E_UNKNOWN_OP
    assert error_of("grant-p", "cmd-v2").code == p.E_UNSUPPORTED_VERSION
    assert error_of("grant-p", "cmd-elsewhere").code == p.E_WRONG_SITE
    site_rows = list(rig.clients.results.query_entities("PartitionKey eq @pk", parameters={"pk": f"site-{rig.config.site}"}))
    poison = [p.result_from_entity(dict(e)) for e in site_rows if str(e["RowKey"]).startswith("poison-")]
    assert sorted(r.error.code for r in poison if r.error) == [p.E_BAD_MESSAGE, p.E_BAD_MESSAGE]
    listed = rig.result(good)
    assert listed.ok and listed.result is not None
    assert [g["name"] for g in listed.result["groups"]] == list(rig.dc.allowed_groups)


def test_dc_down_is_reported_transient_and_the_message_comes_back(rig: AgentRig) -> None:
    sam, marker = unique_sam(), "tenant-a/tech-2"
    assert rig.run(rig.command(p.OP_ENSURE_ACCOUNT, rig.ensure_args(sam, marker, one_time_password()))).ok
    disable = rig.command(p.OP_DISABLE, {"samAccountName": sam, "marker": marker})
    rig.dc.stop()
    try:
        rig.send(disable)
        assert rig.drain() == 1
        failed = rig.result(disable)
        assert not failed.ok and failed.error is not None
        assert failed.error.code == p.E_LDAP_UNAVAILABLE and failed.error.transient is True
        assert rig.queued() == 1  # left for another try
    finally:
        rig.dc.start()
    time.sleep(rig.config.visibility_timeout + 0.2)
    assert rig.drain() == 1
    settled = rig.result(disable)
    assert settled.ok and settled.attempt == 2 and settled.result is not None and settled.result["enabled"] is False
    assert rig.queued() == 0


def test_heartbeat_publishes_the_key_that_seals_passwords(rig: AgentRig) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    rig.agent.heartbeat_if_due()
    entity = rig.clients.agents.get_entity(p.HEARTBEAT_PARTITION, rig.config.site)
    beat = p.Heartbeat.from_entity(dict(entity))
    assert beat.last_seen >= before and beat.host_name == "agent-test-host" and beat.queue == f"jit-ad-{rig.config.site}"
    assert beat.agent_version and beat.key_id == sealing.key_id(sealing.load_public_key(beat.public_key))
    # What the function app does: seal to the published key; only this agent opens it.
    sealed = sealing.seal_for_agent(beat.public_key, "Otp-from-the-app-1!")
    assert sealing.open_sealed(rig.private_key, sealed) == "Otp-from-the-app-1!"


def test_password_sealed_for_another_key_is_refused(rig: AgentRig) -> None:
    other = sealing.public_pem(sealing.generate_private_key())
    args = rig.ensure_args(unique_sam(), "tenant-a/tech-3", one_time_password()) | {
        "password": sealing.seal_for_agent(other, "Otp-x-1!Aa")
    }
    refused = rig.run(rig.command(p.OP_ENSURE_ACCOUNT, args))
    assert not refused.ok and refused.error is not None and refused.error.code == p.E_SEALED_PASSWORD


def test_agent_process_runs_until_sigterm_and_never_logs_passwords(
    samba_dc: SambaDC, azurite: AzuriteEndpoints, tmp_path: Path
) -> None:
    """`python -m agent` as its own process, as on the agent host: config file, queue in, table out, clean stop."""
    if not samba_dc.running:
        samba_dc.start()
    unique = uuid.uuid4().hex[:10]
    site, prefix = f"p-{unique}", f"P{unique}"
    config = write_agent_config(tmp_path / "agent.toml", samba_dc, azurite, site=site, prefix=prefix)
    env = {k: v for k, v in os.environ.items() if not k.startswith("JIT_AGENT_")} | {"PYTHONPATH": str(ROOT_DIR)}
    public_pem = subprocess.run(
        [sys.executable, "-m", "agent", "--config", str(config), "--print-public-key"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    log_path = tmp_path / "agent.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "agent", "--config", str(config)], env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        from azure.data.tables import TableServiceClient
        from azure.storage.queue import QueueClient

        tables = TableServiceClient.from_connection_string(azurite.connection_string)
        results = tables.get_table_client(p.results_table(prefix))
        agents = tables.get_table_client(p.agents_table(prefix))
        queue = QueueClient.from_connection_string(azurite.connection_string, p.queue_name(site))
        deadline = time.monotonic() + 20
        while True:  # the agent creates its queue and tables against Azurite, then beats
            try:
                beat = p.Heartbeat.from_entity(dict(agents.get_entity(p.HEARTBEAT_PARTITION, site)))
                break
            except ResourceNotFoundError:
                assert time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.2)
        assert beat.public_key == public_pem
        sam, otp = unique_sam(), one_time_password()
        command = p.Command(
            id=uuid.uuid4().hex,
            site=site,
            op=p.OP_ENSURE_ACCOUNT,
            args={
                "samAccountName": sam,
                "userPrincipalName": f"{sam}@jit.test",
                "displayName": f"JIT {sam}",
                "marker": "tenant-a/proc",
                "password": sealing.seal_for_agent(beat.public_key, otp),
            },
            grant_id="grant-proc",
        )
        queue.send_message(p.encode_command(command))
        while True:
            try:
                result = p.result_from_entity(dict(results.get_entity("grant-proc", command.id)))
                break
            except ResourceNotFoundError:
                assert time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.2)
        assert result.ok, result.error
        assert result.result is not None and can_bind(samba_dc, result.result["dn"], otp)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    log_text = log_path.read_text()
    assert "agent stopped" in log_text and command.id in log_text
    assert otp not in log_text and samba_dc.service_password not in log_text
    assert "Traceback" not in log_text


def test_stop_leaves_the_rest_of_a_batch_in_the_queue(rig: AgentRig) -> None:
    import threading

    stop = threading.Event()
    stop.set()
    rig.send(rig.command(p.OP_LIST_GROUPS, {}, grant_id=""))
    assert rig.agent.poll_once(stop) == 0
    time.sleep(rig.config.visibility_timeout + 0.2)
    assert rig.queued() == 1
    assert rig.drain() == 1 and rig.queued() == 0
