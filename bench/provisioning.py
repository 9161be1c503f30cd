"""Graph round trips per grant, and request-to-Active time with simulated Graph latency.

    .venv/bin/python -m bench.provisioning [--latency-ms 150] [--runs 5]

For 1, 5 and 15 roles+groups (about half each) it prints the HTTP requests the product sent to Graph for one
grant (a $batch counts once; the operations it carried are shown beside it), first with the tenant's role
definitions not yet cached (a tenant's first grant in a process), then cached; and the time from POST to
`Active` as the caller sees it, through the real HTTP function, the Azurite queue and the queue function.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from bench.harness import BenchStack, bench_stack, request

ROLES = [
    "Exchange Administrator",
    "User Administrator",
    "Global Reader",
    "Helpdesk Administrator",
    "Security Administrator",
    "SharePoint Administrator",
    "Teams Administrator",
    "Intune Administrator",
]


def one_grant(stack: BenchStack, size: int, tenant: str, groups: list[str]) -> tuple[float, int, int]:
    roles = ROLES[: (size + 1) // 2]
    chosen = groups[: size - len(roles)]
    stack.graph.reset_counters()
    started = time.perf_counter()
    created = stack.host.http("POST", "/api/jit/requests", request(tenant, roles, chosen))
    assert created.status_code == 202, created.get_body()
    grant_id = json.loads(created.get_body())["id"]
    stack.drain()
    answer = stack.host.http("GET", f"/api/jit/requests/{grant_id}")
    elapsed = time.perf_counter() - started
    status = json.loads(answer.get_body())["status"]
    assert status == "Active", status
    return elapsed, stack.graph.counters.total, stack.graph.counters["batch:total"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency-ms", type=float, default=150.0)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with bench_stack() as stack:
        print(f"Graph latency {args.latency_ms:.0f} ms per request (simulator), {args.runs} grants per size")
        print(
            f"{'roles+groups':>12} {'round trips (cold)':>19} {'round trips (warm)':>19} {'ops in $batch':>14} "
            f"{'request->Active p50':>20} {'min':>7} {'max':>7}"
        )
        # Latency per HTTP round trip: Graph runs the requests inside one $batch side by side.
        stack.graph.faults.latency(args.latency_ms, batch_inner=False)
        for size in (1, 5, 15):
            tenant, directory = stack.new_tenant()
            groups = [directory.add_group(f"Bench group {i}") for i in range(size)]
            runs = [one_grant(stack, size, tenant, groups) for _ in range(args.runs)]
            times = [r[0] for r in runs]
            print(
                f"{size:>12} {runs[0][1]:>19} {runs[-1][1]:>19} {runs[-1][2]:>14} "
                f"{statistics.median(times) * 1000:>17.0f} ms {min(times) * 1000:>4.0f} ms {max(times) * 1000:>4.0f} ms"
            )


if __name__ == "__main__":
    main()
