"""The README's run command as a fixture: `python -m devstack.run --port 0`, started once per test module, with what
a caller needs to sign in: people get tokens from the runner's local OpenID issuer (as the portal does), machines use
the function key its banner shows."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.browser.signin import ApiClient, sign_in
from tests.local_runner import local_runner

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
    with local_runner() as running:
        output = running.banner
        assert any("curl -si -X POST" in line for line in output), "the banner shows a ready-to-paste curl example"
        keys = [m.group(1) for line in output if (m := KEY.search(line))]
        assert keys, "the banner shows the function key for /api/svc/"
        yield Stack(running.base, keys[0])
    assert running.exit_code == 0, "the runner stops cleanly on SIGTERM"


@pytest.fixture(scope="module")
def runner(stack: Stack) -> str:
    """The base URL of the local runner."""
    return stack.base
