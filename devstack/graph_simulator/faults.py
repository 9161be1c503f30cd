"""Per-test fault injection: latency, throttling, 503/504 and dropped connections.

Rules are checked in the order they were added. Latency rules add up; the
first firing "action" rule (throttle/unavailable/gateway_timeout/drop) decides
the outcome. A rule with `count` set is deterministic: it fires on the next
`count` matching requests and then stops (its `rate` is ignored). Otherwise it
fires on a `rate` share of matching requests using a seeded RNG, so a test
that sets a seed gets the same sequence every run.
"""

from __future__ import annotations

import fnmatch
import random
import threading
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

ACTIONS = ("throttle", "unavailable", "gateway_timeout", "drop")
KINDS = ("latency", *ACTIONS)


@dataclass
class FaultRule:
    kind: str
    rate: float = 1.0
    count: int | None = None
    endpoint: str | None = None  # "/users/{id}", "POST /users", globs like "/users/*"
    method: str | None = None
    retry_after: int | None = 1  # seconds, for throttle (and optionally 503)
    latency_ms: float = 0.0
    latency_max_ms: float | None = None  # set for a uniform latency range
    batch_inner: bool = True  # also applies to requests inside $batch
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {KINDS}")
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError("rate must be between 0 and 1")
        if self.count is not None and self.count < 0:
            raise ValueError("count must be >= 0")
        if self.endpoint and " " in self.endpoint.strip():
            method, _, path = self.endpoint.strip().partition(" ")
            self.method = self.method or method
            self.endpoint = path.strip()
        if self.method:
            self.method = self.method.upper()

    def matches(self, method: str, template: str, inner: bool) -> bool:
        if inner and (not self.batch_inner or self.kind == "drop"):
            # A dropped connection has no meaning inside a batch response.
            return False
        if self.method and self.method != method.upper():
            return False
        if self.endpoint and not fnmatch.fnmatchcase(template.lower(), self.endpoint.lower()):
            return False
        return not (self.count is not None and self.count <= 0)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FaultRule:
        known = {f.name for f in fields(cls)}
        aliases = {
            "retryAfter": "retry_after",
            "latencyMs": "latency_ms",
            "latencyMaxMs": "latency_max_ms",
            "batchInner": "batch_inner",
        }
        values: dict[str, Any] = {}
        for key, value in data.items():
            name = aliases.get(key, key)
            if name not in known:
                raise ValueError(f"unknown fault field {key!r}")
            values[name] = value
        if "id" in values and values["id"] is None:
            del values["id"]
        return cls(**values)


@dataclass
class FaultDecision:
    delay_s: float = 0.0
    action: str | None = None
    retry_after: int | None = None
    rule_id: str | None = None


class Faults:
    def __init__(self, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._seed = seed
        self._rng = random.Random(seed)

    # -- configuration ----------------------------------------------------

    def add(self, rule: FaultRule) -> FaultRule:
        with self._lock:
            self._rules.append(rule)
        return rule

    def latency(self, ms: float, max_ms: float | None = None, **match: Any) -> FaultRule:
        return self.add(FaultRule("latency", latency_ms=ms, latency_max_ms=max_ms, **match))

    def throttle(self, rate: float = 1.0, *, retry_after: int = 1, count: int | None = None, **match: Any) -> FaultRule:
        return self.add(FaultRule("throttle", rate=rate, retry_after=retry_after, count=count, **match))

    def unavailable(
        self,
        rate: float = 1.0,
        *,
        retry_after: int | None = None,
        count: int | None = None,
        **match: Any,
    ) -> FaultRule:
        return self.add(FaultRule("unavailable", rate=rate, retry_after=retry_after, count=count, **match))

    def gateway_timeout(self, rate: float = 1.0, *, count: int | None = None, **match: Any) -> FaultRule:
        return self.add(FaultRule("gateway_timeout", rate=rate, count=count, **match))

    def drop(self, rate: float = 1.0, *, count: int | None = None, **match: Any) -> FaultRule:
        return self.add(FaultRule("drop", rate=rate, count=count, **match))

    def fail_next(self, n: int, kind: str = "throttle", **options: Any) -> FaultRule:
        """Deterministically fail the next `n` matching requests with `kind`."""
        if kind not in ACTIONS:
            raise ValueError(f"fail_next kind must be one of {ACTIONS}")
        return self.add(FaultRule(kind, count=n, **options))

    def remove(self, rule_id: str) -> bool:
        with self._lock:
            before = len(self._rules)
            self._rules = [r for r in self._rules if r.id != rule_id]
            return len(self._rules) != before

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def reset(self, seed: int | None = None) -> None:
        """Remove all rules and restart the RNG (same seed unless given)."""
        with self._lock:
            self._rules.clear()
            if seed is not None:
                self._seed = seed
            self._rng = random.Random(self._seed)

    def seed(self, seed: int) -> None:
        with self._lock:
            self._seed = seed
            self._rng = random.Random(seed)

    def load(self, rules: Iterable[Mapping[str, Any]], *, replace: bool = True) -> list[FaultRule]:
        parsed = [FaultRule.from_dict(r) for r in rules]
        with self._lock:
            if replace:
                self._rules = parsed
            else:
                self._rules.extend(parsed)
        return parsed

    @property
    def rules(self) -> list[FaultRule]:
        with self._lock:
            return [FaultRule(**asdict(r)) for r in self._rules]

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"seed": self._seed, "rules": [r.to_dict() for r in self._rules]}

    # -- evaluation -------------------------------------------------------

    def evaluate(self, method: str, template: str, *, inner: bool = False) -> FaultDecision:
        decision = FaultDecision()
        with self._lock:
            for rule in self._rules:
                if not rule.matches(method, template, inner):
                    continue
                if rule.kind in ACTIONS and decision.action is not None:
                    continue  # outcome already decided; don't consume counts
                if rule.count is not None:
                    rule.count -= 1
                elif self._rng.random() >= rule.rate:
                    continue
                if rule.kind == "latency":
                    high = rule.latency_max_ms
                    ms = rule.latency_ms if high is None else self._rng.uniform(rule.latency_ms, high)
                    decision.delay_s += ms / 1000.0
                else:
                    decision.action = rule.kind
                    decision.retry_after = rule.retry_after
                    decision.rule_id = rule.id
        return decision
