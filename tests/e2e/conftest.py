"""The README's run command as a fixture: `python -m devstack.run --port 0`, started once per test module, with what
a caller needs to sign in: people get tokens from the runner's local OpenID issuer (as the portal does), machines use
the function key its banner shows."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.browser.signin import ApiClient, sign_in

ROOT = Path(__file__).resolve().parents[2]
KEY = re.compile(r"x-functions-key: (\S+)")


@dataclass(frozen=True)
class Stack:
    base: str
    machine_key: str  # the function key the runner's host accepts for /api/svc/ routes

    def person(self, name: str) -> ApiClient:
        """The API as the demo person `name` sees it ("Tess Technician", "Avery Approver", "Ada Admin")."""
        return sign_in(self.base, name)


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    """A local runner; its banner must show a ready-to-paste curl example with the function key."""
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
    keys = [m.group(1) for line in output if (m := KEY.search(line))]
    assert keys, "the banner shows the function key for /api/svc/"
    # The runner logs every request: keep reading, so that its pipe never fills up and blocks it.
    tail: deque[str] = deque(maxlen=200)
    threading.Thread(target=tail.extend, args=(process.stdout,), daemon=True).start()
    running = Stack(base, keys[0])
    _wait_for_demo_tenant(running)
    yield running
    process.send_signal(signal.SIGTERM)
    try:
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()


@pytest.fixture(scope="module")
def runner(stack: Stack) -> str:
    """The base URL of the local runner."""
    return stack.base


def _wait_for_demo_tenant(stack: Stack) -> None:
    """The runner onboards the demo tenant as it starts; its queue finishes the check a moment later."""
    admin = stack.person("Ada Admin")
    deadline = time.monotonic() + 30
    tenants: list[dict[str, object]] = []
    while time.monotonic() < deadline:
        tenants = admin.call("GET", "/api/jit/tenants").json()["value"]
        if any(t["state"] == "Ready" for t in tenants):
            return
        time.sleep(0.3)
    pytest.fail(f"the demo tenant did not become Ready: {tenants}")
