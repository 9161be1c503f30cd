"""`python -m bench`: every figure of the performance table, each as min / median / max over N runs, printed and
written as JSON. See bench/README.md for what each figure means and how it is measured.

    .venv/bin/python -m bench [--runs N] [--realtime-runs N] [--only lateness,latency,...] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import signal
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import scenarios
from bench.meter import StorageMeter
from bench.scenarios import Bench, Run
from bench.stack import services
from bench.stats import Spread, spread

SCENARIOS = ("lateness", "latency", "throughput", "import", "cold")


@dataclass(frozen=True)
class Row:
    figure: str
    goal: str
    key: str  # where its values are in the collected results
    unit: str
    meets: Callable[[float], bool] | None = None
    low_is_good: bool = True


def _le(limit: float) -> Callable[[float], bool]:
    return lambda value: value <= limit


def _ge(limit: float) -> Callable[[float], bool]:
    return lambda value: value >= limit


def table(args: argparse.Namespace) -> list[Row]:
    g, big, tp = args.lateness_grants, args.lateness_big, args.throughput_grants
    return [
        Row(f"revocation lateness p99, {g} grants / 20 s, 1 tenant", "<= 3 s", f"lateness-{g}-1.latenessP99", "s", _le(3)),
        Row(f"revocation lateness max, {g} grants / 20 s, 1 tenant", "<= 3 s", f"lateness-{g}-1.latenessMax", "s", _le(3)),
        Row(f"revocation lateness p99, {g} grants / 20 s, 8 tenants", "<= 3 s", f"lateness-{g}-8.latenessP99", "s", _le(3)),
        Row(f"revocation lateness max, {g} grants / 20 s, 8 tenants", "<= 3 s", f"lateness-{g}-8.latenessMax", "s", _le(3)),
        Row(f"revocation lateness p99, {big} grants / 20 s, 1 tenant", "<= 5 s", f"lateness-{big}-1.latenessP99", "s", _le(5)),
        Row(f"revocation lateness max, {big} grants / 20 s, 1 tenant", "<= 5 s", f"lateness-{big}-1.latenessMax", "s", _le(5)),
        Row(
            f"audit: transaction attempts per append, 1 tenant, {g} grants",
            "<= 1.05",
            f"lateness-{g}-1.auditAttemptsPerAppend",
            "",
            _le(1.05),
        ),
        Row(f"audit: ETag conflicts, 1 tenant, {g} grants", "-", f"lateness-{g}-1.auditConflictPercent", "%"),
        Row(
            f"audit: transaction attempts per append, 1 tenant, {big} grants",
            "<= 1.05",
            f"lateness-{big}-1.auditAttemptsPerAppend",
            "",
            _le(1.05),
        ),
        Row(f"audit: ETag conflicts, 1 tenant, {big} grants", "-", f"lateness-{big}-1.auditConflictPercent", "%"),
        Row(
            "storage requests per provisioning (request + worker)",
            "<= 12",
            f"lateness-{g}-1.storageRequestsPerProvision",
            "",
            _le(12),
        ),
        Row("storage requests per expiry", "<= 8", f"lateness-{g}-1.storageRequestsPerExpire", "", _le(8)),
        Row(
            f"request -> Active, existing user, 1 role, Graph {args.latency_ms:.0f} ms",
            "<= 500 ms",
            "latency.existing1.activeMs",
            "ms",
            _le(500),
        ),
        Row(
            f"  CIPP-style, 4 sequential calls, Graph {args.latency_ms:.0f} ms",
            "product faster",
            "latency.cipp.existing1Ms",
            "ms",
        ),
        Row(
            f"request -> Active, new user, 15 roles+groups, Graph {args.latency_ms:.0f} ms",
            "<= 600 ms",
            "latency.new15.activeMs",
            "ms",
            _le(600),
        ),
        Row(f"  CIPP-style, 28 sequential calls, Graph {args.latency_ms:.0f} ms", "product faster", "latency.cipp.new15Ms", "ms"),
        Row(
            f"grants/min provisioned, 1 instance, 20 tenants ({tp} grants)",
            ">= 1000",
            "throughput-20.provisionPerMinute",
            "/min",
            _ge(1000),
            False,
        ),
        Row(
            f"grants/min provisioned, 1 instance, 1 tenant ({tp} grants)",
            ">= 1000",
            "throughput-1.provisionPerMinute",
            "/min",
            _ge(1000),
            False,
        ),
        Row(
            f"grants/min expired, 1 instance, 20 tenants ({tp} grants)",
            ">= 1000",
            "throughput-20.expirePerMinute",
            "/min",
            _ge(1000),
            False,
        ),
        Row(
            f"grants/min expired, 1 instance, 1 tenant ({tp} grants)",
            ">= 1000",
            "throughput-1.expirePerMinute",
            "/min",
            _ge(1000),
            False,
        ),
        Row(
            "CPU per provisioning (request + worker), Graph 0 ms, 1 tenant",
            "<= 40 ms",
            "throughput-1.provisionCpuMsPerGrant",
            "ms",
            _le(40),
        ),
        Row("CPU per expiry, Graph 0 ms, 1 tenant", "<= 30 ms", "throughput-1.expireCpuMsPerGrant", "ms", _le(30)),
        Row("import function_app (fresh interpreter)", "<= 0.5 s (min)", "import.importSeconds", "s", _le(0.5)),
        Row("  RSS after import", "-", "import.rssMiB", "MiB"),
        Row("first Graph call after a cold start", "<= 0.2 s", "cold.firstGraphCallSeconds", "s", _le(0.2)),
        Row("first grant after a cold start (POST -> Active)", "<= 1 s", "cold.firstGrantSeconds", "s", _le(1.0)),
    ]


def details(results: dict[str, Spread]) -> list[str]:
    """Every other figure collected, for the breakdowns."""
    return sorted(results)


def collect(runs: list[Run], prefix: str, into: dict[str, list[float]], notes: list[str]) -> None:
    for run in runs:
        for key, value in run.figures.items():
            into.setdefault(f"{prefix}.{key}", []).append(float(value))
        notes.extend(f"{prefix}: {note}" for note in run.notes)


def fmt(value: float) -> str:
    if math.isnan(value):
        return "-"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}"


def _plain(value: Any) -> Any:
    """JSON without NaN (a figure with no value is null)."""
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 6)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3, help="runs of the quick figures (request->Active, import, cold start)")
    parser.add_argument("--realtime-runs", type=int, default=1, help="runs of the real-time ones (lateness, throughput)")
    parser.add_argument("--only", default=",".join(SCENARIOS), help=f"comma-separated subset of {', '.join(SCENARIOS)}")
    parser.add_argument("--json", default="bench-results.json", help="where to write the results")
    parser.add_argument("--latency-ms", type=float, default=150.0, help="Graph latency per round trip for request->Active")
    parser.add_argument("--lateness-grants", type=int, default=80)
    parser.add_argument("--lateness-big", type=int, default=200)
    parser.add_argument("--throughput-grants", type=int, default=120)
    parser.add_argument("--verbose", action="store_true", help="show the product's warnings and errors as they happen")
    args = parser.parse_args(argv)
    chosen = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(chosen) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios {sorted(unknown)}")
    logging.basicConfig(level=logging.WARNING if args.verbose else logging.CRITICAL, format="%(levelname)s %(name)s: %(message)s")
    # A polite kill still stops Azurite and the simulator: SIGTERM unwinds like Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))

    values: dict[str, list[float]] = {}
    notes: list[str] = []
    failures: dict[str, str] = {}
    started = time.monotonic()

    def attempt(name: str, work: Callable[[], None]) -> None:
        print(f"... {name}", file=sys.stderr, flush=True)
        began = time.monotonic()
        try:
            work()
        except Exception as error:  # noqa: BLE001 - one scenario failing must not hide the others' figures
            failures[name] = f"{type(error).__name__}: {error}"
            print(f"    FAILED: {failures[name]}", file=sys.stderr)
            if args.verbose:
                traceback.print_exc()
        print(f"    {time.monotonic() - began:.0f} s", file=sys.stderr, flush=True)

    meter = StorageMeter()
    with services() as (endpoints, graph, issuer, azurite_pid):
        bench = Bench(endpoints, graph, issuer, meter, azurite_pid)
        if "import" in chosen:
            attempt(
                "import", lambda: values.update({f"import.{k}": v for k, v in scenarios.import_time(max(args.runs, 3)).items()})
            )
        if "cold" in chosen:
            attempt("cold", lambda: values.update({f"cold.{k}": v for k, v in scenarios.cold_start(bench, args.runs).items()}))
        if "latency" in chosen:
            attempt(
                "latency",
                lambda: values.update(
                    {f"latency.{k}": v for k, v in scenarios.request_to_active(bench, args.runs, args.latency_ms).items()}
                ),
            )
        if "throughput" in chosen:
            for tenants in (20, 1):
                prefix = f"throughput-{tenants}"
                attempt(
                    prefix,
                    lambda t=tenants, p=prefix: collect(
                        [scenarios.throughput(bench, args.throughput_grants, t) for _ in range(args.realtime_runs)],
                        p,
                        values,
                        notes,
                    ),
                )
        if "lateness" in chosen:
            for grants, tenants in ((args.lateness_grants, 1), (args.lateness_grants, 8), (args.lateness_big, 1)):
                prefix = f"lateness-{grants}-{tenants}"
                attempt(
                    prefix,
                    lambda g=grants, t=tenants, p=prefix: collect(
                        [scenarios.lateness(bench, g, t) for _ in range(args.realtime_runs)], p, values, notes
                    ),
                )
        on_loop = dict(meter.on_event_loop)
    results = {key: spread(found) for key, found in values.items()}
    rows = table(args)
    print()
    print(f"{'figure':<70} {'goal':>15} {'min':>8} {'median':>8} {'max':>8} {'runs':>4}  met")
    for row in rows:
        found = results.get(row.key)
        if found is None or not found.values:
            scenario = row.key.split(".")[0]
            why = failures.get(scenario) or failures.get(scenario.split("-")[0]) or "not run"
            print(f"{row.figure:<70} {row.goal:>15}   {why[:120]}")
            continue
        met = "" if row.meets is None else ("yes" if row.meets(found.median) else "NO")
        spread_text = f"{fmt(found.min):>8} {fmt(found.median):>8} {fmt(found.max):>8}"
        print(f"{row.figure:<70} {row.goal:>15} {spread_text} {len(found.values):>4}  {met}")
    shown = {row.key for row in rows}
    print("\nbreakdowns (min / median / max over runs):")
    for key in details(results):
        if key in shown:
            continue
        found = results[key]
        print(f"  {key:<62} {fmt(found.min):>9} {fmt(found.median):>9} {fmt(found.max):>9}")
    if on_loop:
        print(f"\nstorage requests made on the event loop thread itself (blocking every other invocation): {on_loop}")
    for note in notes:
        print(f"note: {note}")
    for name, error in failures.items():
        print(f"FAILED {name}: {error}")
    output = {
        "when": datetime.now(UTC).isoformat(),
        "seconds": round(time.monotonic() - started, 1),
        "settings": vars(args),
        "table": [
            {
                "figure": r.figure,
                "goal": r.goal,
                "unit": r.unit,
                "key": r.key,
                **(results[r.key].as_dict() if r.key in results else {"error": failures.get(r.key.split(".")[0], "not run")}),
            }
            for r in rows
        ],
        "figures": {key: found.as_dict() for key, found in sorted(results.items())},
        "storageRequestsOnEventLoop": on_loop,
        "notes": notes,
        "failures": failures,
    }
    Path(args.json).write_text(json.dumps(_plain(output), indent=2, allow_nan=False) + "\n")
    print(f"\nwritten: {args.json} ({output['seconds']:.0f} s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
