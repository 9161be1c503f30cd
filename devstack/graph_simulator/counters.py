"""Thread-safe request counters keyed by "METHOD /endpoint/{template}".

Top-level requests count under their template (e.g. "POST /$batch"); requests
inside a batch count under "batch:" + template. "total" counts top-level HTTP
requests and "batch:total" counts inner batch requests, so benchmarks can see
both the wire traffic and the Graph operations it carried.
"""

from __future__ import annotations

import threading
from collections import Counter

TOTAL = "total"
BATCH_TOTAL = "batch:total"
BATCH_PREFIX = "batch:"


class Counters:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def increment(self, key: str, *, inner: bool = False) -> None:
        with self._lock:
            if inner:
                self._counts[BATCH_PREFIX + key] += 1
                self._counts[BATCH_TOTAL] += 1
            else:
                self._counts[key] += 1
                self._counts[TOTAL] += 1

    def __getitem__(self, key: str) -> int:
        with self._lock:
            return self._counts.get(key, 0)

    def get(self, key: str) -> int:
        return self[key]

    @property
    def total(self) -> int:
        return self[TOTAL]

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            data = dict(self._counts)
        data.setdefault(TOTAL, 0)
        data.setdefault(BATCH_TOTAL, 0)
        return dict(sorted(data.items()))

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()

    def __repr__(self) -> str:
        return f"Counters({self.snapshot()!r})"
