"""The README's run command, as a person would use it: start the runner, curl it, see the grant move."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def runner() -> Iterator[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "devstack.run", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    output: list[str] = []
    deadline = time.monotonic() + 60
    base = None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        output.append(line)
        if line.startswith("READY "):
            base = line.split()[1]
            break
    if base is None:
        process.kill()
        pytest.fail("runner did not start:\n" + "".join(output))
    assert any("curl -si -X POST" in line for line in output), "the banner shows a ready-to-paste curl example"
    yield base
    process.send_signal(signal.SIGTERM)
    try:
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()


def request_body() -> dict[str, object]:
    return {
        "tenantId": "demo.onmicrosoft.com",
        "user": {"type": "new", "displayName": "JIT admin for ticket 4711"},
        "duration": "PT1H",
        "roles": ["Exchange Administrator"],
        "reason": "Mailbox migration, ticket 4711",
    }


def test_the_curl_example_ends_with_an_active_grant_and_a_tap(runner: str) -> None:
    with httpx.Client(base_url=runner, timeout=10) as client:
        created = client.post("/api/jit/requests", json=request_body())
        assert created.status_code == 202
        location = created.headers["location"]
        assert location.startswith(runner)
        grant_id = created.json()["id"]
        # Poll as Power Automate would: 202 + Retry-After until the grant settles.
        deadline = time.monotonic() + 30
        answer = client.get(location)
        while answer.status_code == 202 and time.monotonic() < deadline:
            time.sleep(0.2)
            answer = client.get(location)
        assert answer.status_code == 200
        assert answer.json()["status"] == "Active", answer.json()
        credentials = client.get(f"/api/jit/requests/{grant_id}/credentials")
        assert credentials.status_code == 200
        assert len(credentials.json()["temporaryAccessPass"]) >= 8
        assert credentials.json()["userPrincipalName"].endswith("@demo.onmicrosoft.com")
        assert client.get(f"/api/jit/requests/{grant_id}/credentials").status_code == 410
        listed = client.get("/api/jit/requests", params={"tenantId": "demo.onmicrosoft.com"}).json()
        assert grant_id in [g["id"] for g in listed["value"]]
        roles = client.get("/api/jit/tenants/demo.onmicrosoft.com/roles").json()["value"]
        assert "Global Administrator" in [r["displayName"] for r in roles]


def test_bad_input_gets_a_precise_400(runner: str) -> None:
    with httpx.Client(base_url=runner, timeout=10) as client:
        body = request_body() | {"duration": "PT99H"}
        response = client.post("/api/jit/requests", json=body)
        assert response.status_code == 400
        assert response.headers["content-type"] == "application/problem+json"
        assert [e["field"] for e in response.json()["errors"]] == ["duration"]
        assert client.get("/api/health").json() == {"status": "healthy"}
