"""Fixtures of the live suite: the directory under test (a real tenant or the simulator, chosen by JIT_LIVE_*), the
product hosted locally on Azurite against it, and the objects the suite needs there — all removed at the end."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator

import pytest

from devstack.azurite import AzuriteEndpoints
from devstack.oidc_issuer import OidcIssuer
from jit import bootstrap
from jit.domain.accounts import random_password
from tests.conftest import Product, stack_env, start_product

from .cleanup import sweep_until_clean
from .config import LiveSetupError, Mode, mode_of
from .directory import DirectoryUnderTest, open_directory
from .graph import GraphError
from .product import Jit, SimulatedTime, WallTime

_summary: list[str] = []


def pytest_report_header() -> str:
    return f"live suite: {mode_of(os.environ).value} mode"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for line in _summary:
        terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def directory() -> Iterator[DirectoryUnderTest]:
    """The directory under test; at the end every object named with this run's id is removed, whatever failed."""
    try:
        opened = open_directory(os.environ)
    except LiveSetupError as error:
        problem = str(error)
    else:
        problem = ""
    if problem:  # outside the handler: the reason alone, without a chained traceback
        pytest.fail(problem, pytrace=False)
    with opened as under_test:
        run_id = under_test.run_id
        _summary.append(
            f"live suite: {under_test.mode.value} mode, tenant {under_test.tenant}, run {run_id}, role {under_test.options.role}"
        )
        try:
            yield under_test
        finally:
            swept = sweep_until_clean(
                under_test.api, run_id, timeout_s=under_test.settle_s, interval_s=max(under_test.poll_s * 5, 0.05)
            )
            _summary.append(f"live suite: cleanup of {run_id}: removed {swept}")
            if swept.failures:
                _summary.append("live suite: LEFTOVERS remain; run scripts/test-live --cleanup-only")


@pytest.fixture(scope="session")
def jit(azurite: AzuriteEndpoints, issuer: OidcIssuer, directory: DirectoryUnderTest) -> Iterator[Jit]:
    """The product on Azurite, pointed at the directory under test, with the tenant onboarded."""
    simulated = directory.mode is Mode.SIMULATOR
    timeline = SimulatedTime() if simulated else WallTime()
    overrides = {
        **directory.product_env,
        # Grants left to expire last minutes, not hours: against a tenant the suite has to wait them out.
        "JIT_MIN_DURATION": "PT1M",
        # Entra replicates new users in seconds to a minute; the product retries within this budget.
        "JIT_GRAPH_RETRY_BUDGET": "PT10S" if simulated else "PT120S",
    }
    env = stack_env(azurite, directory.product_env["GRAPH_BASE_URL"], **overrides)
    host, services, queues = start_product(env, timeline)
    if not simulated:
        host.retry_visibility_seconds = 5  # a failed message comes back soon (host.json says 30 s)
    product = Product(host, services, timeline, env, queues)
    try:
        product.onboard(directory.tenant)
        yield Jit(product, timeline, directory.mode, poll_s=directory.poll_s, settle_s=max(directory.settle_s, 10.0))
    finally:
        host.close()
        bootstrap.reset()


@pytest.fixture
def live(jit: Jit) -> Jit:
    """The session's product, installed as the process's for this test."""
    jit.install()
    return jit


@pytest.fixture(scope="session")
def role_id(directory: DirectoryUnderTest) -> str:
    return directory.api.role_template(directory.options.role)


@pytest.fixture(scope="session")
def group_id(directory: DirectoryUnderTest) -> str:
    """A security group of the suite's own (named with the run id; the cleanup deletes it)."""
    run_id = directory.run_id
    created = directory.api.create_security_group(f"{run_id} group", run_id.replace("-", ""))
    _visible(directory, lambda: directory.api.members_of(created) == set())
    return created


@pytest.fixture(scope="session")
def existing_user(directory: DirectoryUnderTest, group_id: str) -> str:
    """An ordinary account the suite creates, already a member of the suite's group (access it had before)."""
    api = directory.api
    upn = f"{directory.run_id}-existing@{api.initial_domain()}"
    user_id = api.create_user(f"{directory.run_id} existing user", upn, random_password(24))
    _visible(directory, lambda: api.user(user_id) is not None)
    api.add_member(group_id, user_id)
    _visible(directory, lambda: user_id in api.members_of(group_id))
    return user_id


def _visible(directory: DirectoryUnderTest, check: Callable[[], bool]) -> None:
    """Wait until Graph shows what the suite just made (replication), so the product finds it too."""
    deadline = time.monotonic() + directory.settle_s
    while True:
        try:
            if check():
                return
        except GraphError:  # a 404 while the object replicates is the expected answer here
            if time.monotonic() >= deadline:
                raise
        if time.monotonic() >= deadline:
            raise AssertionError("Graph did not show the suite's new object in time")
        time.sleep(directory.poll_s)
