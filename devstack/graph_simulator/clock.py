"""The simulator's directory clock: real time plus an offset tests can move.

Schedules (PIM assignments, TAP lifetimes) end on this clock, so a test can `advance()` past an end time and
watch Graph end access with no further request. Access-token lifetimes and replication lag stay on real time.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime


class SimClock:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._offset = 0.0

    @property
    def offset(self) -> float:
        with self._lock:
            return self._offset

    @offset.setter
    def offset(self, seconds: float) -> None:
        with self._lock:
            self._offset = float(seconds)

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        with self._lock:
            self._offset += float(seconds)

    def time(self) -> float:
        return time.time() + self.offset

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.time(), UTC)
