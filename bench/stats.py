"""Small statistics: nearest-rank percentiles of one run, and min/median/max of a figure over runs."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile: the smallest value that at least `share` of the values do not exceed. For 80
    values p99 is the 80th (the largest), for 200 values the 198th."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class Spread:
    """One figure measured once per run: its minimum, median and maximum over the runs that produced it."""

    values: tuple[float, ...]

    @property
    def min(self) -> float:
        return min(self.values) if self.values else math.nan

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else math.nan

    @property
    def max(self) -> float:
        return max(self.values) if self.values else math.nan

    def as_dict(self) -> dict[str, float | list[float] | int]:
        return {"min": self.min, "median": self.median, "max": self.max, "runs": len(self.values), "values": list(self.values)}


def spread(values: Sequence[float]) -> Spread:
    return Spread(tuple(v for v in values if not math.isnan(v)))
