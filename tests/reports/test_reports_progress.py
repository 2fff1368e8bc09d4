"""Progress on stderr: silent for fast runs and on pipes, one rewritten line otherwise."""

from __future__ import annotations

import io
import threading
import time

from promrw_doctor.core.model import CheckResult, Severity, Status
from promrw_doctor.reports.progress import Progress


class Tty(io.StringIO):
    encoding = "utf-8"

    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def result(n: int) -> CheckResult:
    return CheckResult(check_id=f"kubernetes.check-{n}", title="t", category="kubernetes",
                       status=Status.PASS, severity=Severity.LOW)


def test_fast_run_prints_nothing() -> None:
    stream, clock = Tty(), Clock()
    with Progress(stream, True, 3, clock=clock, delay_s=60) as progress:
        for n in range(3):
            clock.now = 0.5
            progress(result(n))
    assert stream.getvalue() == ""


def test_slow_run_rewrites_one_line_and_close_erases_it() -> None:
    stream, clock = Tty(), Clock()
    progress = Progress(stream, True, 30, clock=clock, delay_s=1.0)
    clock.now = 0.2
    progress(result(1))
    assert stream.getvalue() == ""
    clock.now = 1.5
    progress(result(2))
    assert stream.getvalue() == "\r[2/30] checking kubernetes.check-2…"
    progress(result(3))
    assert stream.getvalue().endswith("\r[3/30] checking kubernetes.check-3…")
    assert "\n" not in stream.getvalue()
    before = len(stream.getvalue())
    progress.close()
    tail = stream.getvalue()[before:]
    assert tail == "\r" + " " * len("[3/30] checking kubernetes.check-3…") + "\r"
    progress.close()  # idempotent
    progress(result(4))  # late callbacks after close draw nothing
    assert stream.getvalue()[before:] == tail


def test_shorter_line_is_padded_over_the_longer_one() -> None:
    stream, clock = Tty(), Clock()
    progress = Progress(stream, True, 9, clock=clock, delay_s=0)
    progress(CheckResult(check_id="kubernetes.a-rather-long-check-id", title="t", category="kubernetes",
                         status=Status.PASS, severity=Severity.LOW))
    progress(CheckResult(check_id="lint.x", title="t", category="lint", status=Status.PASS,
                         severity=Severity.LOW))
    last = stream.getvalue().rsplit("\r", 1)[1]
    assert last.startswith("[2/9] checking lint.x…")
    assert len(last) == len("[1/9] checking kubernetes.a-rather-long-check-id…")
    progress.close()


def test_non_tty_and_disabled_print_nothing() -> None:
    clock = Clock()
    clock.now = 5.0
    pipe = io.StringIO()
    progress = Progress(pipe, True, 2, clock=clock, delay_s=0)
    assert not progress.active
    progress(result(1))
    progress.close()
    assert pipe.getvalue() == ""
    tty = Tty()
    quiet = Progress(tty, False, 2, clock=clock, delay_s=0)
    quiet(result(1))
    quiet.close()
    assert tty.getvalue() == ""


def test_ascii_stream_gets_ascii_ellipsis() -> None:
    class AsciiTty(Tty):
        encoding = "ascii"

    stream = AsciiTty()
    progress = Progress(stream, True, 1, delay_s=0)
    progress(result(1))
    assert stream.getvalue() == "\r[1/1] checking kubernetes.check-1..."
    progress.close()


def test_timer_shows_gathering_when_nothing_finished_yet() -> None:
    stream = Tty()
    progress = Progress(stream, True, 4, delay_s=0.05)
    deadline = time.monotonic() + 5
    while not stream.getvalue() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert stream.getvalue() == "\r[0/4] gathering facts…"
    progress.close()


def test_thread_safe_counting() -> None:
    stream = Tty()
    progress = Progress(stream, True, 800, delay_s=0)
    def worker(k: int) -> None:
        for i in range(100):
            progress(result(k * 100 + i))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    progress.close()
    assert progress.done == 800
    frames = [f for f in stream.getvalue().split("\r") if f.strip()]
    assert len(frames) == 800
    assert all(f.rstrip().startswith("[") and f.rstrip().endswith("…") for f in frames)  # never interleaved
    assert max(int(f[1:f.index("/")]) for f in frames) == 800


def test_broken_stream_is_ignored() -> None:
    class Broken(Tty):
        def write(self, s: str) -> int:
            raise OSError("broken pipe")

    progress = Progress(Broken(), True, 1, delay_s=0)
    progress(result(1))  # must not raise
    assert not progress.active
    progress.close()
