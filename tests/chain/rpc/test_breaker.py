"""The circuit breaker's state machine on a hand-driven clock, and Retry-After parsing."""

from __future__ import annotations

import email.utils
import time

import pytest

from chain.rpc.breaker import BreakerState, CircuitBreaker
from chain.rpc.client import _retry_after
from chain.rpc.config import RpcConfig


def state(breaker: CircuitBreaker) -> BreakerState:
    # A function call, so that mypy does not narrow the property between two reads.
    return breaker.state


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_threshold_consecutive_failures_only() -> None:
    clock = Clock()
    breaker = CircuitBreaker(3, 10.0, clock)
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_success()  # resets the streak
    breaker.record_failure()
    breaker.record_failure()
    assert state(breaker) is BreakerState.CLOSED
    assert breaker.allows_request()
    breaker.record_failure()
    assert state(breaker) is BreakerState.OPEN
    assert not breaker.allows_request()
    assert breaker.ready_at() == 110.0


def test_half_open_lets_one_probe_through() -> None:
    clock = Clock()
    breaker = CircuitBreaker(1, 10.0, clock)
    breaker.record_failure()
    clock.now += 9.9
    assert state(breaker) is BreakerState.OPEN
    clock.now += 0.1
    assert state(breaker) is BreakerState.HALF_OPEN
    assert breaker.allows_request()
    breaker.begin()
    assert not breaker.allows_request()  # the probe is in flight: nobody else
    breaker.record_success()
    assert state(breaker) is BreakerState.CLOSED
    assert breaker.consecutive_failures == 0


def test_failed_probe_reopens_for_a_full_period() -> None:
    clock = Clock()
    breaker = CircuitBreaker(2, 10.0, clock)
    breaker.record_failure()
    breaker.record_failure()
    clock.now += 10
    breaker.begin()
    breaker.record_failure()
    assert state(breaker) is BreakerState.OPEN
    assert breaker.ready_at() == clock.now + 10


def test_abandoned_probe_frees_the_slot() -> None:
    clock = Clock()
    breaker = CircuitBreaker(1, 1.0, clock)
    breaker.record_failure()
    clock.now += 1
    breaker.begin()
    assert not breaker.allows_request()
    breaker.abandon()
    assert breaker.allows_request()


def test_retry_after_formats() -> None:
    assert _retry_after(None) is None
    assert _retry_after("120") == 120
    assert _retry_after(" 1.5 ") == 1.5
    assert _retry_after("-3") == 0
    assert _retry_after("nan") is None
    assert _retry_after("soon") is None
    in_a_minute = email.utils.formatdate(time.time() + 60, usegmt=True)
    seconds = _retry_after(in_a_minute)
    assert seconds is not None
    assert 55 <= seconds <= 61
    assert _retry_after(email.utils.formatdate(time.time() - 60, usegmt=True)) == 0


@pytest.mark.parametrize(
    "bad",
    [
        {"request_timeout": 0},
        {"max_attempts": 0},
        {"backoff_base": 1, "backoff_max": 0.5},
        {"breaker_failure_threshold": 0},
        {"breaker_reset_after": 0},
        {"chunk_concurrency": 0},
    ],
)
def test_config_refuses_nonsense(bad: dict[str, float]) -> None:
    from core.errors import ConfigError

    with pytest.raises(ConfigError):
        RpcConfig(**bad)  # type: ignore[arg-type]
