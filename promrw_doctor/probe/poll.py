"""When to ask the workspace again: an adaptive, bounded polling schedule. Pure logic (clock and sleep injected).

Why adaptive: in the lab (and sometimes in Azure) the canary is queryable within
milliseconds, so the first questions come fast (the first one immediately, then 50 ms,
doubling); Azure's ingestion can lag by minutes, so the interval backs off to a ceiling
(5 s, more for very long deadlines) instead of hammering the query endpoint. Why bounded:
a probe on a schedule must cost a known, small number of queries however long it waits.
The deadline is hard: no query starts after it, and the last wait is shortened to end on it.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

#: With a 10-minute deadline the schedule asks about 126 times; this bound is never reached then.
DEFAULT_MAX_QUERIES = 150
MIN_INTERVAL_S = 0.05
MAX_INTERVAL_S = 5.0


@dataclass(frozen=True)
class Backoff:
    """Wait ``first_s`` after the first (immediate) attempt, multiply by ``factor`` up to ``max_s``."""

    first_s: float = MIN_INTERVAL_S
    factor: float = 2.0
    max_s: float = MAX_INTERVAL_S
    max_queries: int = DEFAULT_MAX_QUERIES

    def __post_init__(self) -> None:
        if self.first_s <= 0 or self.factor < 1 or self.max_s < self.first_s or self.max_queries < 1:
            raise ValueError(f"invalid backoff {self}")

    @classmethod
    def for_deadline(cls, timeout_s: float, max_queries: int = DEFAULT_MAX_QUERIES) -> Backoff:
        """The default schedule, with a ceiling raised for long deadlines so the query count stays bounded."""
        ceiling = max(MAX_INTERVAL_S, timeout_s / (max_queries * 0.8))
        return cls(max_s=ceiling, max_queries=max_queries)

    def delays(self) -> Iterator[float]:
        """Waits between attempts: first_s, first_s*factor, ... capped at max_s (infinite)."""
        d = self.first_s
        while True:
            yield d
            d = min(self.max_s, d * self.factor)


class Step(enum.Enum):
    FOUND = "found"  # done: the value is the answer
    NOT_YET = "not-yet"  # ask again later
    STOP = "stop"  # a definitive answer that is not "found" (e.g. access refused)


@dataclass(frozen=True)
class Attempt(Generic[T]):
    step: Step
    value: T | None = None


@dataclass(frozen=True)
class PollOutcome(Generic[T]):
    reason: str  # found | stopped | deadline | max-queries
    value: T | None  # the value of the last attempt (the answer when found/stopped)
    attempts: int
    elapsed_s: float  # from the start of polling to the end of the last attempt

    @property
    def found(self) -> bool:
        return self.reason == "found"


def poll(
    attempt: Callable[[], Attempt[T]],
    *,
    timeout_s: float,
    backoff: Backoff | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> PollOutcome[T]:
    """Call ``attempt`` now and then on the schedule until it is FOUND/STOP, the deadline or the query bound.

    At least one attempt is always made (a zero or negative remaining time still asks once,
    so a slow send never turns into "never looked").
    """
    policy = backoff or Backoff.for_deadline(timeout_s)
    start = clock()
    deadline = start + timeout_s
    delays = policy.delays()
    attempts = 0
    last: Attempt[T] = Attempt(Step.NOT_YET)
    while True:
        last = attempt()
        attempts += 1
        now = clock()
        if last.step is Step.FOUND:
            return PollOutcome("found", last.value, attempts, now - start)
        if last.step is Step.STOP:
            return PollOutcome("stopped", last.value, attempts, now - start)
        if attempts >= policy.max_queries:
            return PollOutcome("max-queries", last.value, attempts, now - start)
        remaining = deadline - now
        if remaining <= 0:
            return PollOutcome("deadline", last.value, attempts, now - start)
        sleep(min(next(delays), remaining))


def schedule(timeout_s: float, backoff: Backoff | None = None) -> list[float]:
    """Offsets (s from the start) at which :func:`poll` would ask if nothing is ever found and attempts
    take no time: for documentation, tests and ``--help`` figures."""
    t = 0.0
    out: list[float] = []

    def clock() -> float:
        return t

    def sleep(d: float) -> None:
        nonlocal t
        t += d

    def attempt() -> Attempt[None]:
        out.append(round(t, 6))
        return Attempt(Step.NOT_YET)

    poll(attempt, timeout_s=timeout_s, backoff=backoff, clock=clock, sleep=sleep)
    return out
