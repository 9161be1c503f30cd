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


def test_post_is_stored_queued_and_readable(runner: str) -> None:
    with httpx.Client(base_url=runner, timeout=10) as client:
        created = client.post("/api/jit/requests", json=request_body())
        assert created.status_code == 202
        location = created.headers["location"]
        assert location.startswith(runner)
        grant_id = created.json()["id"]
        # The queue pump delivers the message to the queue trigger: the grant leaves Scheduled.
        deadline = time.monotonic() + 20
        status = "Scheduled"
        while status == "Scheduled" and time.monotonic() < deadline:
            time.sleep(0.2)
            status = client.get(location).json()["status"]
        assert status != "Scheduled"
        listed = client.get("/api/jit/requests", params={"tenantId": "demo.onmicrosoft.com"}).json()
        assert grant_id in [g["id"] for g in listed["value"]]


def test_bad_input_gets_a_precise_400(runner: str) -> None:
    with httpx.Client(base_url=runner, timeout=10) as client:
        body = request_body() | {"duration": "PT99H"}
        response = client.post("/api/jit/requests", json=body)
        assert response.status_code == 400
        assert response.headers["content-type"] == "application/problem+json"
        assert [e["field"] for e in response.json()["errors"]] == ["duration"]
        assert client.get("/api/health").json() == {"status": "healthy"}
