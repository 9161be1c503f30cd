"""Retrying Graph calls that may succeed later: throttling (honouring Retry-After), outages, replication lag."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_delay, wait_exponential_jitter

from jit.services.access_backend import DirectoryError, NotFoundInDirectory, ReferenceNotFound, Throttled

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How long one invocation keeps trying before it leaves the rest to the queue's redelivery and the sweep."""

    budget_seconds: float = 60.0
    first_wait_seconds: float = 0.5
    max_wait_seconds: float = 15.0

    async def run(self, operation: Callable[..., Awaitable[T]], *args: Any, not_found_is_lag: bool = False, **kwargs: Any) -> T:
        """`await operation(*args, **kwargs)`, retried while it fails in a way that may pass."""

        def retryable(error: BaseException) -> bool:
            if isinstance(error, NotFoundInDirectory | ReferenceNotFound):
                return not_found_is_lag
            return isinstance(error, DirectoryError) and error.transient

        backoff = wait_exponential_jitter(
            multiplier=self.first_wait_seconds, max=self.max_wait_seconds, jitter=self.first_wait_seconds
        )

        def wait(state: RetryCallState) -> float:
            error = state.outcome.exception() if state.outcome else None
            asked = error.retry_after if isinstance(error, Throttled) else 0.0
            return max(asked, backoff(state))

        async for attempt in AsyncRetrying(
            retry=retry_if_exception(retryable), wait=wait, stop=stop_after_delay(self.budget_seconds), reraise=True
        ):
            with attempt:
                return await operation(*args, **kwargs)
        raise AssertionError("unreachable: tenacity re-raises the last error")
