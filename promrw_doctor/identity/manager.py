"""Token cache with refresh at half life, backoff on failure, and single-flight forced refresh.

Policy (same as Prometheus' native ``azuread``): a token is refreshed when half of its
lifetime has passed, long before it expires, so a token-endpoint outage of up to
half a lifetime (~30-45 min for Entra) costs nothing. A failed refresh keeps serving
the still-valid token and retries with exponential backoff (1 s doubling to 60 s).
After an upstream ``401`` the caller may force one refresh; concurrent 401s share it.

Thread-safe: the sync API (:meth:`TokenManager.get`) is used by ``send`` and at
startup; the async API (:meth:`run`, :meth:`force_refresh`) by the forwarder, which
runs fetches in a worker thread so the event loop never blocks on Entra.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..core.redact import RedactingFilter
from .credentials import Token, TokenSource
from .errors import TokenError

log = logging.getLogger("promrw_doctor.identity")
log.addFilter(RedactingFilter())

# A token this close to expiry is treated as expired (clock skew, request time); at most 10 % of its lifetime.
EXPIRY_MARGIN_S = 30.0


@dataclass
class TokenStats:
    refreshes: int = 0  # successful fetches (the first one included)
    failures: int = 0
    consecutive_failures: int = 0
    last_error: str | None = None  # one line, redacted
    last_error_category: str | None = None
    last_success_at: float | None = None


class TokenManager:
    def __init__(
        self,
        source: TokenSource,
        *,
        refresh_fraction: float = 0.5,
        min_backoff: float = 1.0,
        max_backoff: float = 60.0,
        force_min_interval: float = 5.0,
        clock: Callable[[], float] = time.time,
        on_refresh: Callable[[bool], None] | None = None,
    ) -> None:
        self.source = source
        self.refresh_fraction = refresh_fraction
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.force_min_interval = force_min_interval
        self._clock = clock
        self._listeners: list[Callable[[bool], None]] = [on_refresh] if on_refresh else []
        self._token: Token | None = None
        self._lock = threading.Lock()  # guards fetches (one at a time) and state
        self._async_lock: asyncio.Lock | None = None
        self._next_attempt: float = 0.0
        self._last_forced: float | None = None
        self.stats = TokenStats()

    # ----------------------------------------------------------------- state
    @property
    def description(self) -> str:
        return self.source.description

    def current(self) -> Token | None:
        """The cached token if it is still valid (with a safety margin), else None."""
        tok = self._token
        if tok is None or self._clock() >= tok.expires_on - min(EXPIRY_MARGIN_S, tok.lifetime * 0.1):
            return None
        return tok

    def refresh_due_at(self) -> float:
        """When the next fetch should happen (half life, or the backoff after a failure)."""
        tok = self._token
        if tok is None:
            return self._next_attempt
        half = tok.acquired_at + tok.lifetime * self.refresh_fraction
        if self.stats.consecutive_failures:
            return self._next_attempt
        return half

    # ------------------------------------------------------------------ sync
    def get(self) -> Token:
        """A valid token, fetching one if none is cached (raises :class:`TokenError`)."""
        tok = self.current()
        if tok is not None:
            return tok
        with self._lock:
            tok = self.current()
            if tok is not None:
                return tok
            return self._fetch_locked(log_failure=False)  # the caller reports the raised error

    def refresh(self) -> Token | None:
        """One refresh attempt now. Returns the new token, or None (the old one, if valid, stays)."""
        with self._lock:
            try:
                return self._fetch_locked()
            except TokenError:
                return None

    def _fetch_locked(self, *, log_failure: bool = True) -> Token:
        try:
            tok = self.source.fetch()
        except TokenError as exc:
            s = self.stats
            s.failures += 1
            s.consecutive_failures += 1
            s.last_error = exc.cause
            s.last_error_category = exc.category
            delay = min(self.max_backoff, self.min_backoff * (2 ** (s.consecutive_failures - 1)))
            self._next_attempt = self._clock() + delay
            still = self.current()
            if log_failure:
                    log.warning("token refresh failed for %s: %s; %s; retrying in %.0fs",
                            exc.identity, exc.cause,
                            f"keeping the current token (valid for {still.expires_on - self._clock():.0f}s)"
                            if still else "no valid token", delay)
            self._notify(False)
            raise
        self._token = tok
        s = self.stats
        s.refreshes += 1
        s.consecutive_failures = 0
        s.last_success_at = tok.acquired_at
        self._next_attempt = 0.0
        log.info("token acquired for %s (serial %d, expires in %.0fs, fetch %.0f ms)",
                 self.source.description, tok.serial, tok.expires_on - self._clock(), tok.fetch_ms)
        self._notify(True)
        return tok

    def add_listener(self, callback: Callable[[bool], None]) -> None:
        """Call ``callback(ok)`` after every fetch attempt (metrics hook)."""
        self._listeners.append(callback)

    def _notify(self, ok: bool) -> None:
        for cb in self._listeners:
            try:
                cb(ok)
            except Exception:  # pragma: no cover - an observer must not break token refresh
                log.exception("token listener failed")

    # ----------------------------------------------------------------- async
    def _alock(self) -> asyncio.Lock:
        if self._async_lock is None:
            self._async_lock = asyncio.Lock()
        return self._async_lock

    async def aget(self) -> Token:
        tok = self.current()
        if tok is not None:
            return tok
        async with self._alock():
            tok = self.current()
            if tok is not None:
                return tok
            return await asyncio.to_thread(self.get)

    async def force_refresh(self, stale: Token | None) -> Token | None:
        """After a 401 with ``stale``: one shared refresh. Returns a token different from ``stale``, or None.

        If another request already replaced ``stale``, that token is returned without a fetch;
        if the last *forced* fetch is younger than ``force_min_interval`` no new fetch is
        made (a persistent 401 must not hammer Entra).
        """
        async with self._alock():
            cur = self.current()
            if cur is not None and (stale is None or cur.serial != stale.serial):
                return cur
            last = self._last_forced
            if last is not None and self._clock() - last < self.force_min_interval and cur is not None:
                return None
            self._last_forced = self._clock()
            new = await asyncio.to_thread(self.refresh)
            if new is None or (stale is not None and new.serial == stale.serial):
                return None
            return new

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Background refresher: sleeps until :meth:`refresh_due_at`, refreshes, repeats until ``stop``."""
        stop = stop or asyncio.Event()
        while not stop.is_set():
            delay = max(0.0, self.refresh_due_at() - self._clock())
            try:
                await asyncio.wait_for(stop.wait(), timeout=max(delay, 0.05))
                return
            except TimeoutError:
                pass
            if self.refresh_due_at() <= self._clock():
                async with self._alock():
                    if self.refresh_due_at() <= self._clock():
                        await asyncio.to_thread(self.refresh)
