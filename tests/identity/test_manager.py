"""Token cache policy: half-life refresh, keep-on-failure with backoff, single-flight forced refresh.

The token source is a seam we own; these tests drive it with a fake clock (pure logic).
The real azure-identity sources are tested against the lab emulators in test_sources.py.
"""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from promrw_doctor.identity import Token, TokenError, TokenManager


class FakeSource:
    description = "userAssigned (client id test)"

    def __init__(self, clock: list[float], lifetime: float = 3600.0) -> None:
        self.clock = clock
        self.lifetime = lifetime
        self.fail: list[TokenError] = []
        self.calls = 0

    def fetch(self) -> Token:
        self.calls += 1
        if self.fail:
            raise self.fail.pop(0)
        now = self.clock[0]
        return Token(value=f"eyJhbGciOiJIUzI1NiJ9.eyJzZXJpYWwiOjF9.secret-signature-{self.calls}",
                     expires_on=now + self.lifetime, acquired_at=now, serial=self.calls)


def _manager(lifetime: float = 3600.0) -> tuple[TokenManager, FakeSource, list[float]]:
    clock = [1000.0]
    src = FakeSource(clock, lifetime)
    return TokenManager(src, clock=lambda: clock[0]), src, clock  # type: ignore[arg-type]


def _err() -> TokenError:
    return TokenError("userAssigned (client id test)", "IMDS unavailable", "unavailable")


def test_get_caches_and_schedules_half_life() -> None:
    m, src, clock = _manager()
    t1 = m.get()
    assert m.get() is t1 and src.calls == 1
    assert m.refresh_due_at() == pytest.approx(1000 + 1800)
    clock[0] += 1799
    assert m.current() is t1


def test_failed_refresh_keeps_valid_token_and_backs_off(caplog: pytest.LogCaptureFixture) -> None:
    m, src, clock = _manager()
    t1 = m.get()
    clock[0] += 1800
    src.fail = [_err(), _err(), _err()]
    caplog.set_level(logging.WARNING, logger="promrw_doctor.identity")
    assert m.refresh() is None
    assert m.current() is t1  # still valid: keep serving it
    assert m.refresh_due_at() == pytest.approx(clock[0] + 1)
    assert m.refresh() is None
    assert m.refresh_due_at() == pytest.approx(clock[0] + 2)
    assert m.refresh() is None
    assert m.refresh_due_at() == pytest.approx(clock[0] + 4)
    assert m.stats.failures == 3 and m.stats.consecutive_failures == 3
    assert "keeping the current token" in caplog.text
    assert t1.value not in caplog.text
    t2 = m.refresh()
    assert t2 is not None and t2.serial == src.calls and m.current() is t2
    assert m.stats.consecutive_failures == 0
    assert m.refresh_due_at() == pytest.approx(clock[0] + 1800)


def test_backoff_is_capped() -> None:
    m, src, clock = _manager()
    m.get()
    src.fail = [_err() for _ in range(12)]
    for _ in range(12):
        m.refresh()
    assert m.refresh_due_at() - clock[0] == pytest.approx(60)


def test_expired_token_is_not_served() -> None:
    m, _, clock = _manager(lifetime=600)
    m.get()
    clock[0] += 600 - 30  # within the 30 s margin
    assert m.current() is None


def test_margin_scales_down_for_short_lived_tokens() -> None:
    m, _, clock = _manager(lifetime=10)
    tok = m.get()
    clock[0] += 8.5
    assert m.current() is tok  # margin is 10 % of 10 s, not 30 s


def test_get_raises_when_no_token() -> None:
    m, src, _ = _manager()
    src.fail = [_err()]
    with pytest.raises(TokenError, match="IMDS unavailable"):
        m.get()


def test_force_refresh_is_single_flight_and_rate_limited() -> None:
    m, src, clock = _manager()
    stale = m.get()
    clock[0] += 60

    async def go() -> list[Token | None]:
        return list(await asyncio.gather(*(m.force_refresh(stale) for _ in range(10))))

    results = asyncio.run(go())
    assert src.calls == 2  # one shared fetch for ten concurrent 401s
    assert all(r is not None and r.serial == 2 for r in results)
    # A second 401 right after a forced refresh: no new fetch, no retry.
    assert asyncio.run(m.force_refresh(results[0])) is None
    assert src.calls == 2
    clock[0] += 10
    assert asyncio.run(m.force_refresh(results[0])) is not None
    assert src.calls == 3


def test_listeners_are_notified() -> None:
    m, src, _ = _manager()
    seen: list[bool] = []
    m.add_listener(seen.append)
    m.get()
    src.fail = [_err()]
    m.refresh()
    assert seen == [True, False]


def test_token_repr_hides_value() -> None:
    m, _, _ = _manager()
    tok = m.get()
    assert tok.value not in repr(tok) and tok.value not in str(tok)
    assert tok.authorization() == f"Bearer {tok.value}"


def test_background_refresher_refreshes_at_half_life() -> None:
    clock = [time.time()]
    src = FakeSource(clock, lifetime=0.4)
    m = TokenManager(src, clock=time.time)  # type: ignore[arg-type]

    async def go() -> int:
        stop = asyncio.Event()
        m.get()
        task = asyncio.create_task(m.run(stop))
        for _ in range(30):
            await asyncio.sleep(0.05)
            clock[0] = time.time()
        stop.set()
        await task
        return src.calls

    assert asyncio.run(go()) >= 4  # 1.5 s of 0.4 s tokens, refreshed every ~0.2 s
