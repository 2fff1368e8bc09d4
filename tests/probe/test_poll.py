"""The polling schedule: fast first, backing off, bounded, hard deadline. A fake clock (a seam we own)."""

from __future__ import annotations

import itertools

import pytest

from promrw_doctor.probe.poll import DEFAULT_MAX_QUERIES, Attempt, Backoff, Step, poll, schedule


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.t

    def sleep(self, d: float) -> None:
        assert d >= 0
        self.sleeps.append(d)
        self.t += d


def test_first_attempt_is_immediate_then_doubles_to_the_ceiling() -> None:
    offsets = schedule(20.0)
    assert offsets[0] == 0.0
    gaps = [round(b - a, 6) for a, b in itertools.pairwise(offsets)]
    assert gaps[:8] == [0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0]
    assert max(gaps) == 5.0
    assert offsets[-1] == pytest.approx(20.0)  # the last wait is shortened to end on the deadline


def test_ten_minutes_against_azure_stays_well_under_the_bound() -> None:
    offsets = schedule(600.0)
    assert 100 < len(offsets) < DEFAULT_MAX_QUERIES
    assert offsets[-1] == pytest.approx(600.0)
    assert all(b > a for a, b in itertools.pairwise(offsets))


def test_long_deadlines_raise_the_ceiling_so_queries_stay_bounded() -> None:
    offsets = schedule(3600.0)
    assert len(offsets) <= DEFAULT_MAX_QUERIES
    assert offsets[-1] == pytest.approx(3600.0)
    assert Backoff.for_deadline(3600.0).max_s > 5.0
    assert Backoff.for_deadline(600.0).max_s == 5.0


def test_max_queries_bound_stops_before_the_deadline() -> None:
    clock = FakeClock()
    calls = []

    def attempt() -> Attempt[int]:
        calls.append(clock.t)
        return Attempt(Step.NOT_YET, len(calls))

    out = poll(attempt, timeout_s=1000.0, backoff=Backoff(max_queries=7), clock=clock, sleep=clock.sleep)
    assert (out.reason, out.attempts, len(calls), out.value) == ("max-queries", 7, 7, 7)
    assert clock.t < 1000.0


def test_found_stops_at_once_with_the_value_and_elapsed_time() -> None:
    clock = FakeClock()
    answers = iter([Attempt(Step.NOT_YET), Attempt(Step.NOT_YET), Attempt(Step.FOUND, "nonce")])

    def attempt() -> Attempt[str]:
        clock.t += 0.01  # each query takes 10 ms
        return next(answers)

    out = poll(attempt, timeout_s=10.0, clock=clock, sleep=clock.sleep)
    assert out.found and out.value == "nonce" and out.attempts == 3
    assert clock.sleeps == [0.05, 0.1]
    assert out.elapsed_s == pytest.approx(0.03 + 0.15)


def test_stop_is_definitive() -> None:
    clock = FakeClock()
    out = poll(lambda: Attempt(Step.STOP, "403"), timeout_s=10.0, clock=clock, sleep=clock.sleep)
    assert (out.reason, out.value, out.attempts, clock.sleeps) == ("stopped", "403", 1, [])


def test_slow_attempts_never_overshoot_the_deadline_and_at_least_one_is_made() -> None:
    clock = FakeClock()

    def slow() -> Attempt[None]:
        clock.t += 3.0
        return Attempt(Step.NOT_YET)

    starts: list[float] = []

    def timed() -> Attempt[None]:
        starts.append(clock.t)
        return slow()

    out = poll(timed, timeout_s=7.0, clock=clock, sleep=clock.sleep)
    assert out.reason == "deadline"
    # starts at 0, 3.05, 6.15: every attempt starts before the deadline; none after it
    assert out.attempts == 3 and starts == [0.0, 3.05, pytest.approx(6.15)]
    assert clock.sleeps == [0.05, 0.1]

    clock2 = FakeClock()
    out = poll(lambda: Attempt(Step.NOT_YET), timeout_s=0.0, clock=clock2, sleep=clock2.sleep)
    assert out.attempts == 1 and out.reason == "deadline" and clock2.sleeps == []


@pytest.mark.parametrize("kw", [{"first_s": 0}, {"factor": 0.5}, {"max_s": 0.01}, {"max_queries": 0}])
def test_invalid_backoff_is_refused(kw: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Backoff(**kw)  # type: ignore[arg-type]
