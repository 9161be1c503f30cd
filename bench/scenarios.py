"""The scenarios. Each run returns a flat dict of figures (numbers) plus notes; `bench.__main__` runs them N times
and reports min/median/max of each figure over the runs."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.cipp import CippStyle
from bench.meter import Invocation, StorageMeter, cpu_since, pid_cpu_seconds, thread_cpu
from bench.stack import ROLES, SimulatorProcess, Stack, request_body, stack
from bench.stats import percentile
from devstack.azurite import AzuriteEndpoints
from devstack.function_host import ROOT
from devstack.oidc_issuer import OidcIssuer

log = logging.getLogger(__name__)
FINAL = ("Expired", "Failed", "Revoked", "Cancelled", "Denied")
CLIENTS = 4  # callers posting requests side by side


@dataclass
class Run:
    figures: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass
class Bench:
    endpoints: AzuriteEndpoints
    graph: SimulatorProcess
    issuer: OidcIssuer
    meter: StorageMeter
    azurite_pid: int = 0

    def others_cpu(self) -> tuple[float, float]:
        """CPU seconds so far of Azurite and of the Graph simulator (what the product waits on, not its own)."""
        return pid_cpu_seconds(self.azurite_pid), pid_cpu_seconds(self.graph.pid)

    @contextmanager
    def stack(self, **overrides: str) -> Iterator[Stack]:
        self.graph.latency(0)
        with stack(self.endpoints, self.graph, self.issuer, self.meter, **overrides) as running:
            yield running


# Helpers --------------------------------------------------------------------------------------------------------


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def post_all(s: Stack, bodies: list[dict[str, Any]]) -> list[str]:
    with ThreadPoolExecutor(max_workers=CLIENTS, thread_name_prefix="bench-client") as pool:
        return list(pool.map(s.request, bodies))


def read_all(s: Stack, ids: list[str]) -> list[dict[str, Any]]:
    with ThreadPoolExecutor(max_workers=CLIENTS, thread_name_prefix="bench-client") as pool:
        return list(pool.map(s.grant, ids))


def storage_per_grant(invocations: list[Invocation], ids: set[str]) -> dict[str, dict[str, Counter[str]]]:
    """Storage requests each grant's invocations made: its request (HTTP), provisioning and expiry work."""
    found: dict[str, dict[str, Counter[str]]] = {
        g: {"provision": Counter(), "expire": Counter(), "notify": Counter()} for g in ids
    }
    for record in invocations:
        if record.grant_id not in found:
            continue
        phase = {"request": "provision", "provision": "provision", "expire": "expire"}.get(record.step, "notify")
        found[record.grant_id][phase].update(record.storage)
    return found


def roundtrip_figures(run: Run, invocations: list[Invocation], ids: list[str], prefix: str = "") -> None:
    per_grant = storage_per_grant(invocations, set(ids))
    for phase in ("provision", "expire"):
        totals = [sum(p[phase].values()) for p in per_grant.values()]
        if not totals:
            continue
        run.figures[f"{prefix}storageRequestsPer{phase.title()}"] = statistics.median(totals)
        run.figures[f"{prefix}storageRequestsPer{phase.title()}Max"] = max(totals)
        for service in ("table", "queue", "blob"):
            run.figures[f"{prefix}{phase}{service.title()}Requests"] = statistics.median(
                p[phase][service] for p in per_grant.values()
            )
    notify = [sum(p["notify"].values()) for p in per_grant.values()]
    if any(notify):
        run.figures[f"{prefix}storageRequestsPerGrantNotifications"] = statistics.median(notify)


def wait_final(s: Stack, ids: list[str], until: float) -> list[dict[str, Any]]:
    """Wait until every grant is final (or `until`, time.time()), reading the grants only while the instance is idle."""
    grants: list[dict[str, Any]] = []
    while True:
        with contextlib.suppress(RuntimeError):  # still busy: read where they are anyway
            s.wait_idle(quiet=2.0, timeout=max(5.0, until - time.time()))
        grants = read_all(s, ids)
        if all(g["status"] in FINAL for g in grants) or time.time() >= until:
            return grants
        time.sleep(3.0)


def jit_users_left(s: Stack, tenant_ids: list[str]) -> int:
    left = 0
    for tenant in tenant_ids:
        users = s.graph.tenant(tenant).get("users", [])
        left += sum(1 for u in users if str(u.get("employeeType") or "").startswith("JIT:"))
    return left


# Revocation lateness (and audit appends under that load) -------------------------------------------------------------


def lateness(bench: Bench, grants: int, tenants: int, window: float = 20.0) -> Run:
    """`grants` grants in `tenants` tenants, all provisioned first, their ends spread evenly over `window` seconds;
    each one's lateness is the moment the invocation that stored it Expired ended, minus its end."""
    run = Run()
    with bench.stack() as s:
        onboarded = s.onboard(tenants)
        s.wait_idle()
        bench.meter.reset_audit()
        lead = 20.0 + 0.3 * grants  # time to provision them all before the first end (checked below)
        first_end = datetime.now(UTC) + timedelta(seconds=lead)
        ends = [first_end + timedelta(seconds=window * i / max(grants - 1, 1)) for i in range(grants)]
        bodies = []
        for i, end in enumerate(ends):
            body = request_body(onboarded[i % tenants].domain, roles=["Exchange Administrator"])
            del body["duration"]
            body["endDateTime"] = _iso(end)
            bodies.append(body)
        started = time.monotonic()
        ids = post_all(s, bodies)
        provisioned_at = s.wait_done(ids, "provision", timeout=lead + 120)
        run.figures["provisionAllSeconds"] = provisioned_at - started
        statuses = Counter(g["status"] for g in read_all(s, ids))
        if time.time() >= first_end.timestamp() or statuses["Active"] != grants:
            run.notes.append(f"not all grants were Active before the first end ({dict(statuses)}): provisioning overlapped")
        time.sleep(max(0.0, ends[-1].timestamp() - time.time()))
        final = wait_final(s, ids, until=ends[-1].timestamp() + 180)
        invocations = list(s.instance.invocations)
        late, claimed = [], []
        by_grant: dict[str, list[Invocation]] = {}
        for record in invocations:
            if record.step == "expire" and not record.failed:
                by_grant.setdefault(record.grant_id, []).append(record)
        for grant, end in zip(final, ends, strict=True):
            if grant["status"] != "Expired":
                continue
            stored = next(_epoch(t["at"]) for t in grant["history"] if t["to"] == "Expired")
            done = [r.finished_wall for r in by_grant.get(grant["id"], []) if r.finished_wall >= stored - 0.001]
            late.append((min(done) if done else stored) - end.timestamp())
            if grant.get("latenessSeconds") is not None:
                claimed.append(float(grant["latenessSeconds"]))
        not_expired = Counter(g["status"] for g in final if g["status"] != "Expired")
        if not_expired:
            run.notes.append(f"not Expired within 180 s of the last end: {dict(not_expired)}")
        run.figures.update(
            {
                "latenessP50": percentile(late, 0.50),
                "latenessP99": percentile(late, 0.99),
                "latenessMax": max(late) if late else math.nan,
                "productLatenessP99": percentile(claimed, 0.99),
                "expired": len(late),
                "notExpired": sum(not_expired.values()),
                "jitUsersLeft": jit_users_left(s, [t.id for t in onboarded]),
                "maxInFlight": s.instance.max_in_flight,
            }
        )
        for key, value in bench.meter.audit.as_dict().items():
            run.figures[f"audit{key[0].upper()}{key[1:]}"] = value
        roundtrip_figures(run, invocations, ids)
        timers = [r for r in invocations if r.function in ("schedule_sweep", "audit_checkpoint")]
        if timers:
            run.figures["timerStorageRequestsPerRun"] = statistics.median(sum(r.storage.values()) for r in timers)
        run.figures["hostStorageRequests"] = sum(bench.meter.outside.values())
    return run


# Throughput and CPU time --------------------------------------------------------------------------------------------


def throughput(bench: Bench, grants: int, tenants: int) -> Run:
    """Provision `grants` grants queued up front (new user, one role), then expire them all at once: grants per
    minute from resuming the queue listener to the end of the last invocation, and CPU seconds of the worker's threads
    per grant (Graph at zero latency)."""
    run = Run()
    with bench.stack() as s:
        onboarded = s.onboard(tenants)
        s.wait_idle()
        s.instance.pause_queues()
        time.sleep(s.instance.options.max_polling_interval + 0.5)  # a receive under way when paused ends first
        lead = 20.0 + 0.2 * grants
        end = datetime.now(UTC) + timedelta(seconds=lead)
        bodies = []
        for i in range(grants):
            body = request_body(onboarded[i % tenants].domain, roles=["Exchange Administrator"])
            del body["duration"]
            body["endDateTime"] = _iso(end)
            bodies.append(body)
        cpu = thread_cpu()
        wall = time.monotonic()
        ids = post_all(s, bodies)
        run.figures["intakeCpuMsPerGrant"] = cpu_since(cpu) / grants * 1000
        run.figures["intakePerMinute"] = grants / (time.monotonic() - wall) * 60

        cpu, wall, others = thread_cpu(), time.monotonic(), bench.others_cpu()
        s.instance.resume_queues()
        last = s.wait_done(ids, "provision", timeout=lead + 300)
        used = cpu_since(cpu)
        _others(run, "provision", bench, others, grants)
        run.figures["provisionPerMinute"] = grants / (last - wall) * 60
        run.figures["provisionWorkerCpuMsPerGrant"] = used / grants * 1000
        run.figures["provisionCpuMsPerGrant"] = run.figures["provisionWorkerCpuMsPerGrant"] + run.figures["intakeCpuMsPerGrant"]
        active = Counter(g["status"] for g in read_all(s, ids))
        if active["Active"] != grants:
            run.notes.append(f"after provisioning: {dict(active)}")
        if time.time() > end.timestamp():
            run.notes.append("provisioning ran past the grants' end: the expiry figures mix in provisioning")

        s.instance.pause_queues()
        time.sleep(max(0.0, end.timestamp() - time.time()) + 1.5)  # every expiry message is visible now
        cpu, wall, others = thread_cpu(), time.monotonic(), bench.others_cpu()
        s.instance.resume_queues()
        last = s.wait_done(ids, "expire", timeout=300)
        used = cpu_since(cpu)
        _others(run, "expire", bench, others, grants)
        run.figures["expirePerMinute"] = grants / (last - wall) * 60
        run.figures["expireCpuMsPerGrant"] = used / grants * 1000
        expired = Counter(g["status"] for g in read_all(s, ids))
        if expired["Expired"] != grants:
            run.notes.append(f"after expiry: {dict(expired)}")
        run.figures["maxInFlight"] = s.instance.max_in_flight
        roundtrip_figures(run, list(s.instance.invocations), ids)
    return run


def _others(run: Run, phase: str, bench: Bench, before: tuple[float, float], grants: int) -> None:
    azurite, graph = bench.others_cpu()
    run.figures[f"{phase}AzuriteCpuMsPerGrant"] = (azurite - before[0]) / grants * 1000
    run.figures[f"{phase}SimulatorCpuMsPerGrant"] = (graph - before[1]) / grants * 1000


# Request -> Active ------------------------------------------------------------------------------------------------


def _wait_active(s: Stack, grant_id: str, timeout: float = 60.0) -> tuple[float, list[Invocation]]:
    """When the invocation that stored the grant Active ended (time.monotonic()), and the grant's invocations."""
    deadline = time.monotonic() + timeout
    checked: set[int] = set()
    while time.monotonic() < deadline:
        mine = [r for r in list(s.instance.invocations) if r.grant_id == grant_id and r.step == "provision"]
        for record in mine:
            if record.finished and id(record) not in checked:
                checked.add(id(record))
                status = s.grant(grant_id)["status"]
                if status == "Active":
                    return record.finished, mine
                if status in FINAL:
                    raise RuntimeError(f"grant {grant_id} ended {status}: {s.grant(grant_id).get('error')}")
        time.sleep(0.005)
    raise RuntimeError(f"grant {grant_id} not Active after {timeout:.0f} s")


def request_to_active(bench: Bench, runs: int, latency_ms: float) -> dict[str, list[float]]:
    """Existing user with one role, and a new user with 8 roles + 7 groups and a TAP, each `runs` times, against
    Graph at `latency_ms` per round trip; and the CIPP-style sequences for the same two cases."""
    cases: dict[str, list[float]] = {}

    def add(name: str, value: float) -> None:
        cases.setdefault(name, []).append(value)

    with bench.stack() as s:
        [tenant] = s.onboard(1)
        groups = [s.graph.add_group(tenant.id, f"Bench group {i}") for i in range(7)]
        s.graph.latency(latency_ms)
        cipp = CippStyle(s.graph.base_url, s.graph.token(tenant.id))

        def existing() -> dict[str, Any]:
            upn = f"u{uuid.uuid4().hex[:8]}@{tenant.domain}"
            s.graph.add_user(tenant.id, upn, "Existing Admin")
            return request_body(
                tenant.domain, roles=["Exchange Administrator"], user={"type": "existing", "userPrincipalName": upn}
            )

        def new() -> dict[str, Any]:
            return request_body(tenant.domain, roles=ROLES[:8], groups=groups, tap=True)

        # The tenant's first grant in this process fills caches (role definitions, tokens): a warm-up, not counted.
        warm = s.request(existing())
        _wait_active(s, warm)
        for name, make in (("existing1", existing), ("new15", new)):
            for _ in range(runs):
                body = make()
                time.sleep(random.uniform(0.5, 3.0))  # an idle host has backed off its polling: a random phase
                s.graph.reset_counters()
                start = time.monotonic()
                grant_id = s.request(body)
                posted = time.monotonic()
                active, mine = _wait_active(s, grant_id)
                counters = s.graph.counters()
                add(f"{name}.activeMs", (active - start) * 1000)
                add(f"{name}.postMs", (posted - start) * 1000)
                add(f"{name}.queueWaitMs", (min(r.started for r in mine) - posted) * 1000)
                add(f"{name}.workerMs", sum(r.finished - r.started for r in mine) * 1000)
                add(f"{name}.provisionInvocations", len(mine))
                for n, record in enumerate(sorted(mine, key=lambda r: r.started)):
                    add(f"{name}.invocation{n}.startMs", (record.started - posted) * 1000)
                    add(f"{name}.invocation{n}.endMs", (record.finished - posted) * 1000)
                add(f"{name}.graphRoundTrips", counters.get("total", 0))
                add(
                    f"{name}.graphOperations",
                    counters.get("total", 0) - counters.get("POST /$batch", 0) + counters.get("batch:total", 0),
                )
        for _ in range(runs):
            upn = f"c{uuid.uuid4().hex[:8]}@{tenant.domain}"
            s.graph.add_user(tenant.id, upn, "Existing Admin")
            timed = cipp.existing_user(upn, ["Exchange Administrator"])
            add("cipp.existing1Ms", timed.seconds * 1000)
            add("cipp.existing1Calls", timed.calls)
            add("cipp.existing1Failures", timed.failures)
            timed = cipp.new_user(tenant.domain, ROLES[:8], groups)
            add("cipp.new15Ms", timed.seconds * 1000)
            add("cipp.new15Calls", timed.calls)
            add("cipp.new15Failures", timed.failures)
        cipp.close()
        s.graph.latency(0)
    return cases


# Cold start -------------------------------------------------------------------------------------------------------


def _fresh(mode: str, job: dict[str, Any], timeout: float = 120.0) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "bench.cold", mode],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench.cold {mode} failed: {done.stderr.strip()[-1500:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def import_time(runs: int) -> dict[str, list[float]]:
    found: dict[str, list[float]] = {"importSeconds": [], "rssMiB": []}
    for _ in range(runs):
        result = _fresh("import", {})
        found["importSeconds"].append(result["importSeconds"])
        found["rssMiB"].append(result["rssMiB"])
    return found


def cold_start(bench: Bench, runs: int) -> dict[str, list[float]]:
    """A stack prepared here (tenant onboarded, users made); each measurement in a fresh process against it."""
    found: dict[str, list[float]] = {}
    with bench.stack() as s:
        [tenant] = s.onboard(1)
        s.wait_idle()
        s.instance.pause_queues()  # the fresh process runs the work queue itself
        time.sleep(s.instance.options.max_polling_interval + 0.5)
        env = dict(s.env)
        token = s.headers["Authorization"].split(" ", 1)[1]
        for _ in range(runs):
            upn = f"f{uuid.uuid4().hex[:8]}@{tenant.domain}"
            s.graph.add_user(tenant.id, upn, "Existing Admin")
            graph = _fresh("graph", {"env": env, "tenantId": tenant.id, "upn": upn})
            for key in ("servicesBuildSeconds", "firstGraphCallSeconds"):
                found.setdefault(key, []).append(graph[key])
            upn = f"g{uuid.uuid4().hex[:8]}@{tenant.domain}"
            s.graph.add_user(tenant.id, upn, "Existing Admin")
            body = request_body(
                tenant.domain, roles=["Exchange Administrator"], user={"type": "existing", "userPrincipalName": upn}
            )
            grant = _fresh("grant", {"env": env, "token": token, "body": body})
            for key in ("firstGrantSeconds", "postSeconds"):
                found.setdefault(key, []).append(grant[key])
    return found


Scenario = Callable[[Bench], Run]
