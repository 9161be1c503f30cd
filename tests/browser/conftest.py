"""The browser suite's fixtures: the local stack as the README runs it (one per test module), Debian's Chromium
driven by Playwright for Python (never a browser Playwright downloads), and signing a demo person in through the
local issuer's "Sign in as" page, as a person would.

Chromium missing: the tests skip and say how to install it; under CI=true they fail instead."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.local_runner import local_runner

ROOT = Path(__file__).resolve().parents[2]
# Each run writes its pictures under build/; with JIT_UPDATE_SCREENSHOTS=1 into docs/screenshots/ (what the README shows).
SCREENSHOTS = ROOT / ("docs/screenshots" if os.environ.get("JIT_UPDATE_SCREENSHOTS") == "1" else "build/screenshots")
CHROMIUM = os.environ.get("JIT_CHROMIUM", "/usr/bin/chromium")
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
VENDOR = ROOT / "build" / "portal" / "vendor" / "oidc-client-ts.min.js"
# Quiet, reproducible, offline: no updates, sync, QUIC or background traffic; no sandbox (root in a container).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: the browser tests must run)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium() -> str:
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        _unavailable("Chromium is not installed: apt-get install -y chromium (scripts/setup does it as root)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _unavailable("Playwright for Python is missing: .venv/bin/pip install -r requirements-dev.txt")
    return CHROMIUM if Path(CHROMIUM).exists() else str(shutil.which("chromium"))


@pytest.fixture(scope="module")
def stack() -> Iterator[str]:
    """The base URL of `python -m devstack.run --port 0`, with the portal's library built."""
    if not VENDOR.exists():
        subprocess.run([str(ROOT / "scripts" / "build-portal")], cwd=ROOT, check=True)
    with local_runner() as running:
        yield running.base


@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # launch() gives every run a fresh, temporary profile (user-data dir), removed when the browser closes.
        launched = playwright.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@dataclass
class Person:
    """A signed-in person's page, and what went wrong in it that no assertion asked about."""

    page: Any
    name: str
    problems: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        assert not self.problems, f"{self.name}'s page reported: {self.problems}"


@pytest.fixture
def people(browser: Any, stack: str) -> Iterator[Any]:
    """`people("Tess Technician", viewport=...)` signs a demo person in, each in a fresh browser context."""
    opened: list[Person] = []

    def open_as(name: str, viewport: dict[str, int] = DESKTOP, **options: Any) -> Person:
        context = browser.new_context(viewport=viewport, locale="en-GB", timezone_id="UTC", **options)
        page = context.new_page()
        person = Person(page, name)
        # Any script error, or anything the Content-Security-Policy refused, fails the test.
        page.on("pageerror", lambda error: person.problems.append(f"script error: {error}"))
        page.on(
            "console",
            lambda message: (
                person.problems.append(f"console: {message.text}")
                if message.type == "error" and ("Content Security Policy" in message.text or "Refused" in message.text)
                else None
            ),
        )
        page.goto(f"{stack}/portal/")
        page.get_by_role("button", name="Sign in").click()
        # The local issuer's page: one button per demo person.
        page.get_by_role("button", name=name).click()
        page.locator("#who .who__name").wait_for()
        opened.append(person)
        return person

    yield open_as
    try:
        for person in opened:
            person.assert_clean()
    finally:
        for person in opened:
            person.page.context.close()


def screenshot(page: Any, name: str, *, full_page: bool = False) -> Path:
    """A picture of the page for docs/screenshots/ (viewport-sized, so the files stay small)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page, animations="disabled")
    return path


def accessibility_problems(page: Any) -> list[str]:
    """axe-core's serious and critical findings on the page as it is (WCAG 2.1 A and AA rules)."""
    if not AXE.exists():
        pytest.fail("axe-core is missing: npm ci (scripts/setup)")
    # Evaluated through the DevTools protocol, which the page's Content-Security-Policy does not govern.
    page.evaluate(AXE.read_text())
    result = page.evaluate(
        """async () => {
            const r = await axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] } });
            return r.violations.filter(v => v.impact === "serious" || v.impact === "critical")
                .map(v => v.id + ": " + v.help + " — " + v.nodes.slice(0, 3).map(n => n.target.join(" ")).join(", "));
        }"""
    )
    return [str(item) for item in result]
