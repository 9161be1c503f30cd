"""The /_simulator control API and the `python -m devstack.graph_simulator` entry point."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import httpx

from devstack.graph_simulator import DEV_APP_ID, GraphSimulator
from devstack.graph_simulator.demo import DEMO_GROUPS, DEMO_MAILBOX_UPN, DEMO_TENANT_ID

from .helpers import new_user_body

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_control_api_round_trip(sim: GraphSimulator) -> None:
    with httpx.Client(base_url=sim.control_url, timeout=10) as control:
        info = control.get("").json()
        assert info["baseUrl"] == sim.base_url
        tenant_id = str(uuid.uuid4())
        created = control.post(
            "/tenants",
            json={"tenantId": tenant_id, "initialDomain": "ctl.onmicrosoft.com", "tapPolicy": {"maximumLifetimeInMinutes": 120}},
        )
        assert created.status_code == 201 and created.json()["id"] == tenant_id
        group = control.post(f"/tenants/{tenant_id}/groups", json={"displayName": "Ctl group"}).json()["id"]
        seeded = control.post(
            f"/tenants/{tenant_id}/users",
            json={"userPrincipalName": "seed@ctl.onmicrosoft.com", "displayName": "Seed", "employeeType": "Employee"},
        ).json()["id"]
        role = control.post(f"/tenants/{tenant_id}/roleDefinitions", json={"displayName": "Custom"}).json()["id"]
        token = control.get(f"/tenants/{tenant_id}/token").json()["accessToken"]

        graph = httpx.Client(base_url=sim.base_url, headers={"Authorization": f"Bearer {token}"})
        with graph:
            assert graph.get(f"/groups/{group}").json()["displayName"] == "Ctl group"
            assert graph.get(f"/users/{seeded}", params={"$select": "employeeType"}).json()["employeeType"] == "Employee"
            assert graph.get(f"/roleManagement/directory/roleDefinitions/{role}").json()["isBuiltIn"] is False
            policy = "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/TemporaryAccessPass"
            assert graph.get(policy).json()["maximumLifetimeInMinutes"] == 120

            # Faults over the control API.
            rule = control.post(
                "/faults", json={"kind": "throttle", "count": 1, "endpoint": "GET /organization", "retryAfter": 2}
            )
            assert rule.status_code == 201
            throttled = graph.get("/organization")
            assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "2"
            assert control.get("/faults").json()["rules"][0]["count"] == 0
            replaced = control.put("/faults", json={"seed": 5, "rules": [{"kind": "unavailable", "endpoint": "/domains"}]})
            assert replaced.json()["seed"] == 5 and len(replaced.json()["rules"]) == 1
            assert graph.get("/domains").status_code == 503
            assert control.delete("/faults").status_code == 204
            assert graph.get("/domains").status_code == 200

            # Replication lag, globally and per tenant.
            assert control.put("/replication-lag", json={"seconds": 30}).json() == {"seconds": 30.0}
            new_id = graph.post("/users", json=new_user_body(sim.tenant(tenant_id), "lagged")).json()["id"]
            assert graph.get(f"/users/{new_id}").status_code == 404
            control.patch(f"/tenants/{tenant_id}", json={"replicationLagSeconds": 0})
            new_id2 = graph.post("/users", json=new_user_body(sim.tenant(tenant_id), "quick")).json()["id"]
            assert graph.get(f"/users/{new_id2}").status_code == 200
            control.put("/replication-lag", json={"seconds": 0})

            # Tenant flags and state dump.
            control.patch(f"/tenants/{tenant_id}", json={"acceptDeletesWithoutEffect": True})
            assert graph.delete(f"/users/{seeded}").status_code == 204
            dump = control.get(f"/tenants/{tenant_id}").json()
            assert dump["acceptDeletesWithoutEffect"] is True
            assert seeded in {u["id"] for u in dump["users"]}
            assert dump["groups"][0]["id"] == group

            # Newer knobs: lag status, mailbox, seeded roles, app roles and consent, licences, clock, served log.
            assert control.patch(f"/tenants/{tenant_id}", json={"lagStatus": "mixed"}).json()["lagStatus"] == "mixed"
            assert control.patch(f"/tenants/{tenant_id}", json={"lagStatus": "418"}).status_code == 400
            boss = control.post(
                f"/tenants/{tenant_id}/users",
                json={"userPrincipalName": "boss@ctl.onmicrosoft.com", "displayName": "Boss", "roles": ["Global Administrator"]},
            ).json()["id"]
            assert sim.tenant(tenant_id).roles_of(boss) == {"62e90394-69f5-4237-9190-012177145e10"}
            control.put(f"/tenants/{tenant_id}/users/{seeded}/mailbox", json={"hasMailbox": True}).raise_for_status()
            mail = {"message": {"subject": "s", "toRecipients": [{"emailAddress": {"address": "a@example.com"}}]}}
            assert graph.post(f"/users/{seeded}/sendMail", json=mail).status_code == 202
            assert control.patch(f"/tenants/{tenant_id}", json={"subscribedSkus": []}).json()["subscribedSkus"] == []
            assert graph.get("/subscribedSkus").json()["value"] == []
            control.patch(f"/tenants/{tenant_id}", json={"subscribedSkus": ["AAD_PREMIUM_P2"]})
            assert graph.get("/subscribedSkus").json()["value"][0]["skuPartNumber"] == "AAD_PREMIUM_P2"
            control.put(f"/tenants/{tenant_id}/consent", json={"permissions": ["User.Read.All"]}).raise_for_status()
            limited = control.get(f"/tenants/{tenant_id}/token").json()["accessToken"]
            assert httpx.get(f"{sim.base_url}/domains", headers={"Authorization": f"Bearer {limited}"}).status_code == 403
            assert control.delete(f"/tenants/{tenant_id}/consent").status_code == 204
            form = {"grant_type": "client_credentials", "client_id": DEV_APP_ID, "client_secret": "x"}
            form["scope"] = "https://graph.microsoft.com/.default"
            assert httpx.post(sim.token_url(tenant_id), data=form).json()["error_codes"] == [7000229]
            assert control.put("/clock", json={"advanceSeconds": 90}).json()["offsetSeconds"] == 90
            assert control.put("/clock", json={"offsetSeconds": 0}).json()["offsetSeconds"] == 0
            served = control.get("/served").json()
            assert {"method": "GET", "template": "/subscribedSkus", "permission": "Directory.Read.All"} in served["served"]
            assert any(d["template"] == "/domains" for d in served["denied"])

        counters = control.get("/counters").json()
        assert counters["GET /organization"] == 1 and counters["total"] >= 8
        assert control.delete("/counters").status_code == 204
        assert control.get("/counters").json()["total"] == 0
        assert control.get("/tenants/00000000-0000-0000-0000-000000000000").status_code == 404
        assert control.get("/nope").status_code == 404
        assert control.post("/faults", json={"kind": "meteor"}).status_code == 400
        assert control.delete(f"/tenants/{tenant_id}").status_code == 204
        assert tenant_id not in sim.tenants


def test_cli_demo_prints_base_url_and_seeds_demo_tenant() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "devstack.graph_simulator", "--port", "0", "--demo"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO_ROOT,
    )
    try:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1.0")
        origin = base_url.removesuffix("/v1.0")
        token = httpx.get(f"{origin}/_simulator/tenants/{DEMO_TENANT_ID}/token", timeout=10).json()["accessToken"]
        headers = {"Authorization": f"Bearer {token}"}
        org = httpx.get(f"{base_url}/organization", headers=headers, timeout=10).json()["value"][0]
        assert org["id"] == DEMO_TENANT_ID
        assert org["verifiedDomains"][0]["name"] == "demo.onmicrosoft.com"
        for group_id, name in DEMO_GROUPS.items():
            assert httpx.get(f"{base_url}/groups/{group_id}", headers=headers, timeout=10).json()["displayName"] == name
        # The product's way in: the token endpoint, by the demo tenant's domain; the mailbox user for notifications.
        form = {"grant_type": "client_credentials", "client_id": DEV_APP_ID, "client_secret": "x"}
        form["scope"] = "https://graph.microsoft.com/.default"
        issued = httpx.post(f"{origin}/demo.onmicrosoft.com/oauth2/v2.0/token", data=form, timeout=10).json()["access_token"]
        mail = {"message": {"subject": "s", "toRecipients": [{"emailAddress": {"address": "a@example.com"}}]}}
        sent = httpx.post(
            f"{base_url}/users/{DEMO_MAILBOX_UPN}/sendMail", json=mail, headers={"Authorization": f"Bearer {issued}"}, timeout=10
        )
        assert sent.status_code == 202
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert proc.returncode == 0
