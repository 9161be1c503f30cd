"""The README's run command (`python -m devstack.run --port 0`) as tests start it: a real process on a free port,
its banner read until READY, the demo tenant Ready, stopped with SIGTERM at the end."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Runner:
    base: str
    banner: list[str]  # the lines printed up to READY
    exit_code: int | None = field(default=None)  # once stopped


@contextmanager
def local_runner(timeout: float = 60) -> Iterator[Runner]:
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
    deadline = time.monotonic() + timeout
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
        pytest.fail("the local runner did not start:\n" + "".join(output))
    # The runner logs every request: keep reading, so that its pipe never fills up and blocks it.
    tail: deque[str] = deque(maxlen=300)
    threading.Thread(target=tail.extend, args=(process.stdout,), daemon=True).start()
    running = Runner(base, output)
    try:
        wait_for_demo_tenant(base)
        yield running
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            running.exit_code = process.wait(timeout=20)
        finally:
            if process.poll() is None:
                process.kill()


def wait_for_demo_tenant(base: str) -> None:
    """The runner onboards the demo tenant as it starts; its queue finishes the check a moment later."""
    from tests.browser.signin import sign_in

    admin = sign_in(base, "Ada Admin")
    deadline = time.monotonic() + 30
    tenants: list[dict[str, object]] = []
    while time.monotonic() < deadline:
        tenants = admin.call("GET", "/api/jit/tenants").json()["value"]
        if any(t["state"] == "Ready" for t in tenants):
            return
        time.sleep(0.3)
    pytest.fail(f"the demo tenant did not become Ready: {tenants}")
