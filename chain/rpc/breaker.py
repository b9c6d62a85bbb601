"""A circuit breaker per endpoint: stop sending to an endpoint that keeps failing.

closed --(threshold consecutive failures)--> open --(reset_after elapsed)--> half-open
half-open lets exactly one request through (the probe): success closes the breaker, failure
opens it again for another ``reset_after``. All of it runs on one event loop, so plain
attributes are enough.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    def __init__(
        self,
        failure_threshold: int,
        reset_after: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._threshold = failure_threshold
        self._reset_after = reset_after
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._clock() - self._opened_at < self._reset_after:
            return BreakerState.OPEN
        return BreakerState.HALF_OPEN

    @property
    def consecutive_failures(self) -> int:
        return self._failures

    def allows_request(self) -> bool:
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        return state is BreakerState.HALF_OPEN and not self._probing

    def ready_at(self) -> float:
        """Clock time from which :meth:`allows_request` can be true again."""
        if self._opened_at is None:
            return self._clock()
        return self._opened_at + self._reset_after

    def begin(self) -> None:
        """A request is about to go out; in half-open state it is the one probe."""
        if self.state is BreakerState.HALF_OPEN:
            self._probing = True

    def record_success(self) -> None:
        self._failures = 0
        self._opened_at = None
        self._probing = False

    def record_failure(self) -> None:
        self._failures += 1
        was_probing = self._probing
        self._probing = False
        if was_probing or self._opened_at is not None or self._failures >= self._threshold:
            self._opened_at = self._clock()

    def abandon(self) -> None:
        """The request ended without telling us anything (cancelled): free the probe slot."""
        self._probing = False
