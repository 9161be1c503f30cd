"""Revocation lateness, and what a sweep costs as the number of stored grants grows.

    .venv/bin/python -m bench.expiration [--grants 60] [--sizes 1000,10000,100000]

Lateness: `--grants` grants, all provisioned first, with ends spread over 20 s, run for real (real clock, the Azurite queues with
messages hidden until each end, 8 queue pumps side by side as the Functions host runs a batch of 8 per instance,
each polling every 0.5 s when idle (the host polls at most every 2 s), the sweep every 10 s), and each grant's
`revokedAt - endDateTime` (access verified gone) is collected: p50, p99, max.

Sweep: for 1k/10k/100k stored Active grants of which 10 are due, the time of one sweep (median of 5) and the
entities it read (schedule entries returned + grants read by id).
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.harness import BenchStack, bench_stack, request
from devstack.bulk import active_grants


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def lateness(grant_count: int, tenant_count: int) -> None:
    with bench_stack(JIT_MIN_DURATION="PT1S", JIT_SWEEP_SCHEDULE="*/10 * * * * *") as stack:
        tenants = [stack.new_tenant()[0] for _ in range(tenant_count)]
        stop = threading.Event()

        def pump() -> None:
            while not stop.is_set():
                if not stack.host.deliver(stack.queues, limit=1):
                    stop.wait(0.5)

        def timer() -> None:
            while not stop.wait(10):
                stack.host.fire("schedule_sweep")

        threads = [threading.Thread(target=pump, daemon=True) for _ in range(8)]
        threads.append(threading.Thread(target=timer, daemon=True))
        for thread in threads:
            thread.start()
        # Every grant is provisioned well before the first end, so the figure is the expiry path alone: ends spread
        # over 20 s, starting 40 s from now.
        first_end = datetime.now(UTC) + timedelta(seconds=40)
        ids = []
        for i in range(grant_count):
            body = request(
                tenants[i % tenant_count],
                ["Exchange Administrator"],
                [],
                temporaryAccessPass={"enabled": False},
            )
            del body["duration"]
            body["endDateTime"] = (first_end + timedelta(seconds=(i * 20.0) / grant_count)).isoformat()
            answer = stack.host.http("POST", "/api/jit/requests", body)
            assert answer.status_code == 202, answer.get_body()
            ids.append(json.loads(answer.get_body())["id"])
        provisioned = time.monotonic()
        while any(json.loads(stack.host.http("GET", f"/api/jit/requests/{g}").get_body())["status"] != "Active" for g in ids):
            if datetime.now(UTC) >= first_end:
                print("  (not all grants were Active before the first end: the figures below include provisioning)")
                break
            time.sleep(0.5)
        print(f"  {grant_count} grants provisioned in {time.monotonic() - provisioned:.1f} s")
        deadline = time.monotonic() + 180
        grants: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            grants = [json.loads(stack.host.http("GET", f"/api/jit/requests/{g}").get_body()) for g in ids]
            if all(g["status"] in ("Expired", "Failed") for g in grants):
                break
            time.sleep(1)
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        late = [g["latenessSeconds"] for g in grants if g["status"] == "Expired"]
        print(
            f"revocation lateness over {len(late)} of {grant_count} grants in {tenant_count} tenant(s)"
            " (access verified gone, minus endDateTime):"
        )
        print(f"  p50 {statistics.median(late):.2f} s   p99 {percentile(late, 0.99):.2f} s   max {max(late):.2f} s")
        not_done = [g["status"] for g in grants if g["status"] != "Expired"]
        if not_done:
            print(f"  not expired within 180 s: {not_done}")


def sweep_cost(sizes: list[int]) -> None:
    print("sweep cost with 10 due grants:")
    print(f"{'stored grants':>14} {'sweep p50':>10} {'min':>8} {'max':>8} {'entities read':>14} {'load time':>10}")
    for size in sizes:
        with bench_stack() as stack:
            tenant, _ = stack.new_tenant()
            now = datetime.now(UTC)
            loaded = time.perf_counter()
            active_grants(stack.services, tenant, size - 10, now=now, ends_in=timedelta(hours=4))
            load_seconds = time.perf_counter() - loaded
            times, reads = [], []
            for _ in range(5):
                active_grants(stack.services, tenant, 10, now=now, ends_in=timedelta(minutes=-1))
                counted = count_reads(stack)
                started = time.perf_counter()
                result = stack.services.lifecycle.sweep()
                times.append(time.perf_counter() - started)
                reads.append(counted())
                assert result.due == 10, result
                drain_queue(stack)
            print(
                f"{size:>14} {statistics.median(times) * 1000:>7.1f} ms {min(times) * 1000:>5.1f} ms "
                f"{max(times) * 1000:>5.1f} ms {statistics.median(reads):>14.0f} {load_seconds:>8.1f} s"
            )


def count_reads(stack: BenchStack) -> Any:
    """Counts entities the sweep reads: schedule entries returned by its query, and grants read by id."""
    seen = {"n": 0}
    schedule = stack.services.lifecycle.schedule
    grants = stack.services.lifecycle.grants
    due, get = type(schedule).due, type(grants).get

    def counting_due(self: Any, now: datetime, limit: int) -> Any:
        items = due(self, now, limit)
        seen["n"] += len(items)
        return items

    def counting_get(self: Any, grant_id: str, tenant_id: str | None = None) -> Any:
        seen["n"] += 1
        return get(self, grant_id, tenant_id)

    schedule.due = counting_due.__get__(schedule)  # type: ignore[method-assign]
    grants.get = counting_get.__get__(grants)  # type: ignore[method-assign]
    return lambda: seen["n"]


def drain_queue(stack: BenchStack) -> None:
    queue = stack.queues.get_queue_client(stack.env["JIT_WORK_QUEUE"])
    queue.clear_messages()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--grants", type=int, default=60)
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--tenants", default="1,8", help="lateness runs, one per tenant count")
    parser.add_argument("--skip-lateness", action="store_true")
    args = parser.parse_args()
    if not args.skip_lateness:
        for tenant_count in (int(t) for t in args.tenants.split(",")):
            lateness(args.grants, tenant_count)
    sweep_cost([int(s) for s in args.sizes.split(",")])


if __name__ == "__main__":
    main()
