"""`python -m devstack.graph_simulator [--host H] [--port P] [--demo]`.

The first stdout line is the base URL (e.g. http://127.0.0.1:53412/v1.0) so a
runner can read one line and go; further lines are informational, prefixed "#".
"""

from __future__ import annotations

import argparse
import signal
import threading
from types import FrameType

from .apps import DEV_APP_ID
from .demo import DEMO_GROUPS, DEMO_INITIAL_DOMAIN, DEMO_TENANT_ID, seed_demo_tenant
from .simulator import GraphSimulator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.graph_simulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--demo", action="store_true", help="seed the fixed demo tenant")
    parser.add_argument("--replication-lag", type=float, default=0.0, metavar="SECONDS")
    parser.add_argument("--seed", type=int, default=0, help="fault-injection RNG seed")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = parser.parse_args(argv)

    sim = GraphSimulator(
        args.host,
        args.port,
        seed=args.seed,
        replication_lag_seconds=args.replication_lag,
        verbose=args.verbose,
    )
    sim.start()
    print(sim.base_url, flush=True)
    print(f"# control: {sim.control_url}", flush=True)
    if args.demo:
        seed_demo_tenant(sim)
        print(f"# demo tenant: {DEMO_TENANT_ID} ({DEMO_INITIAL_DOMAIN})", flush=True)
        for group_id, name in DEMO_GROUPS.items():
            print(f"# demo group: {group_id} {name}", flush=True)
        print(f"# token endpoint: {sim.token_url(DEMO_TENANT_ID)} (client_id {DEV_APP_ID})", flush=True)

    stopped = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stopped.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    stopped.wait()
    sim.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
