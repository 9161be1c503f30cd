"""Fixtures: one simulator per session, a fresh tenant (and clean knobs) per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from devstack.graph_simulator import GraphSimulator, Tenant


@pytest.fixture(scope="session")
def sim() -> Iterator[GraphSimulator]:
    with GraphSimulator(seed=1234) as simulator:
        yield simulator


@pytest.fixture(autouse=True)
def _clean_knobs(sim: GraphSimulator) -> Iterator[None]:
    sim.faults.reset(seed=1234)
    sim.reset_counters()
    sim.reset_served()
    sim.replication_lag_seconds = 0.0
    sim.clock_offset = 0.0
    yield
    sim.reset_faults()
    sim.replication_lag_seconds = 0.0
    sim.clock_offset = 0.0


@pytest.fixture
def tenant(sim: GraphSimulator) -> Iterator[Tenant]:
    created = sim.add_tenant(initial_domain=f"t{uuid.uuid4().hex[:8]}.onmicrosoft.com")
    yield created
    sim.remove_tenant(created.id)


@pytest.fixture
def client(sim: GraphSimulator, tenant: Tenant) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {sim.token_for(tenant.id)}"}
    with httpx.Client(base_url=sim.base_url, headers=headers, timeout=10) as http:
        yield http
