"""Measurements that need a fresh interpreter; run by `bench.scenarios` as `python -m bench.cold MODE`, which prints
one JSON object. The settings (and, for `graph` and `grant`, a stack prepared by the parent) come on stdin.

    import   seconds to `import function_app`, and the process's peak RSS afterwards
    graph    the first Graph call: build the services (timed apart), then look up one user through the Entra
             backend (the Graph client is built, its token fetched and the request made, all in that call)
    grant    the first grant: POST an existing-user, one-role request and run the work queue until it is Active
             (queue messages are delivered as soon as they are there: no polling wait is counted)
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()

import asyncio  # noqa: E402 - the clock starts before anything is imported
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
from typing import Any  # noqa: E402


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def measure_import() -> dict[str, Any]:
    before = time.perf_counter()
    import function_app  # noqa: F401

    return {
        "importSeconds": time.perf_counter() - before,
        "rssMiB": _rss_mib(),
        "sinceStartSeconds": time.perf_counter() - STARTED,
    }


def measure_graph(job: dict[str, Any]) -> dict[str, Any]:
    import function_app  # noqa: F401
    from jit import bootstrap

    before = time.perf_counter()
    services = bootstrap.services()
    built = time.perf_counter() - before

    async def first_call() -> float:
        start = time.perf_counter()
        account = await services.backends.backend(job["tenantId"], "entra").find_account(job["upn"])
        assert account is not None, "the user was not found"
        return time.perf_counter() - start

    seconds = asyncio.run(first_call())
    return {"servicesBuildSeconds": built, "firstGraphCallSeconds": seconds, "rssMiB": _rss_mib()}


def measure_grant(job: dict[str, Any]) -> dict[str, Any]:
    before_import = time.perf_counter()
    from azure.storage.queue import QueueServiceClient

    import function_app
    from devstack.function_host import LocalFunctionHost

    imported = time.perf_counter() - before_import
    host = LocalFunctionHost(function_app.app, os.environ)
    connection = os.environ["AzureWebJobsStorage"]  # noqa: SIM112 - the Functions setting's name
    queues = QueueServiceClient.from_connection_string(connection)
    headers = {"Authorization": f"Bearer {job['token']}"}
    start = time.perf_counter()
    answer = host.http("POST", "/api/jit/requests", job["body"], headers)
    assert answer.status_code == 202, answer.get_body()
    posted = time.perf_counter() - start
    grant_id = json.loads(answer.get_body())["id"]
    status = ""
    deadline = start + 60
    while time.perf_counter() < deadline:
        host.deliver(queues)
        status = json.loads(host.http("GET", f"/api/jit/requests/{grant_id}", headers=headers).get_body())["status"]
        if status in ("Active", "Failed"):
            break
    active = time.perf_counter() - start
    host.close()
    if status != "Active":
        raise RuntimeError(f"the first grant ended {status!r}")
    return {"importSeconds": imported, "postSeconds": posted, "firstGrantSeconds": active, "rssMiB": _rss_mib()}


def main() -> None:
    mode = sys.argv[1]
    job = json.loads(sys.stdin.read() or "{}")
    os.environ.update(job.get("env", {}))
    if mode == "import":
        result = measure_import()
    elif mode == "graph":
        result = measure_graph(job)
    elif mode == "grant":
        result = measure_grant(job)
    else:
        raise SystemExit(f"unknown mode {mode}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
