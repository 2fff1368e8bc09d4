"""Progress on stderr for runs that take a while, as the engine's ``on_result`` callback.

Quiet by design: nothing at all if the run finishes within ``delay_s`` (1 s), so fast
runs and their tests stay clean; after that, one line rewritten in place
(``\\r[12/30] checking kubernetes.sidecar-env…``) and erased by :meth:`close`, so the
report on stdout starts on a clean line.

Only on a TTY: on a pipe or file (CI logs, ``2> log``) a carriage-return line would be
noise, and a line per check would drown the report, so non-TTY streams get nothing.
Callbacks arrive from the engine's worker threads; a lock serialises them. A timer shows
``gathering…`` when the fact-gathering phase alone outlasts the delay.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import TextIO

from ..core.model import CheckResult

DEFAULT_DELAY_S = 1.0
_FALLBACK_COLUMNS = 80


def _columns(stream: TextIO) -> int:
    import os

    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (OSError, ValueError, AttributeError):
        return _FALLBACK_COLUMNS


def _is_tty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (ValueError, AttributeError):  # closed or not a real file
        return False


class Progress:
    """``Progress(sys.stderr, enabled=not quiet, total=len(specs) * len(targets))``; pass as ``on_result``."""

    def __init__(
        self,
        stream: TextIO,
        enabled: bool,
        total: int,
        *,
        delay_s: float = DEFAULT_DELAY_S,
        clock: Callable[[], float] = time.monotonic,
        tty: bool | None = None,
    ) -> None:
        self.stream = stream
        self.total = max(total, 0)
        self.done = 0
        self.delay_s = delay_s
        self._clock = clock
        self._started = clock()
        self._active = enabled and (_is_tty(stream) if tty is None else tty)
        self._lock = threading.Lock()
        self._shown = 0  # width of the line currently on screen
        self._closed = False
        self._last = "gathering facts"
        self._ellipsis = "…" if self._encodable("…") else "..."
        self._timer: threading.Timer | None = None
        if self._active and delay_s > 0:
            self._timer = threading.Timer(delay_s, self._tick)
            self._timer.daemon = True
            self._timer.start()

    @property
    def active(self) -> bool:
        return self._active

    def _encodable(self, text: str) -> bool:
        try:
            text.encode(getattr(self.stream, "encoding", None) or "ascii")
        except (UnicodeEncodeError, LookupError):
            return False
        return True

    def __call__(self, result: CheckResult) -> None:
        """Engine callback: one more check finished."""
        with self._lock:
            self.done += 1
            self._last = f"checking {result.check_id}"
            if self._active and not self._closed and self._clock() - self._started >= self.delay_s:
                self._draw()

    def _tick(self) -> None:
        with self._lock:
            if self._active and not self._closed and self._shown == 0:
                self._draw()

    def _draw(self) -> None:
        """Rewrite the line in place; caller holds the lock."""
        line = f"[{self.done}/{self.total}] {self._last}{self._ellipsis}" if self.total else \
            f"{self._last}{self._ellipsis}"
        limit = max(_columns(self.stream) - 1, 10)  # never wrap: a wrapped line cannot be rewritten
        if len(line) > limit:
            line = line[: limit - len(self._ellipsis)] + self._ellipsis
        pad = " " * max(self._shown - len(line), 0)
        self._write("\r" + line + pad)
        self._shown = len(line)

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # stderr closed or broken pipe: progress is optional
            self._active = False

    def close(self) -> None:
        """Erase the progress line (if one was drawn) and stop. Safe to call twice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._timer is not None:
                self._timer.cancel()
            if self._active and self._shown:
                self._write("\r" + " " * self._shown + "\r")
            self._shown = 0

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
