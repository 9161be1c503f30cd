"""The README's run command as a fixture: `python -m devstack.run --port 0`, started once per test module."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def runner() -> Iterator[str]:
    """The base URL of a local runner; its banner must show a ready-to-paste curl example."""
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
    # The runner logs every request: keep reading, so that its pipe never fills up and blocks it.
    tail: deque[str] = deque(maxlen=200)
    threading.Thread(target=tail.extend, args=(process.stdout,), daemon=True).start()
    yield base
    process.send_signal(signal.SIGTERM)
    try:
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
