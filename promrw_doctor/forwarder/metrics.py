"""The forwarder's own metrics (Prometheus text format 0.0.4) and the sidecar's minute summary.

No client library: a handful of counters, one gauge set and one histogram, updated
from the event loop thread only, so plain ints suffice and the hot path pays a dict
increment. Names are prefixed ``promrw_forwarder_``.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass, field

# Upstream latency buckets (seconds): loopback is sub-millisecond, Azure tens of ms, timeouts 25 s.
BUCKETS: tuple[float, ...] = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                              10.0, 30.0)
PREFIX = "promrw_forwarder_"


@dataclass
class Histogram:
    buckets: tuple[float, ...] = BUCKETS
    counts: list[int] = field(default_factory=lambda: [0] * len(BUCKETS))
    total: int = 0
    sum: float = 0.0

    def observe(self, value: float) -> None:
        self.total += 1
        self.sum += value
        i = bisect_left(self.buckets, value)  # first bound >= value
        if i < len(self.counts):
            self.counts[i] += 1

    def cumulative(self) -> list[int]:
        out, acc = [], 0
        for c in self.counts:
            acc += c
            out.append(acc)
        return out


@dataclass
class MinuteWindow:
    """What the per-minute summary line reports; reset after each line."""

    succeeded: int = 0
    failed: int = 0
    upstream_requests: int = 0
    upstream_bytes: int = 0
    upstream_seconds: float = 0.0


class ForwarderMetrics:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.requests_by_upstream_status: dict[str, int] = {}
        self.responses_by_code: dict[int, int] = {}
        self.rejected_by_reason: dict[str, int] = {}
        self.bytes_received = 0
        self.bytes_forwarded = 0
        self.upstream_latency = Histogram()
        self.token_refreshes = 0
        self.token_refresh_failures = 0
        self.token_expiry: float = 0.0
        self.in_flight = 0
        self.window = MinuteWindow()
        self.started = clock()

    # ------------------------------------------------------------ recording
    def upstream(self, status: str, nbytes: int, seconds: float) -> None:
        """One upstream attempt: ``status`` is the HTTP code or an error kind (timeout, connect, ...)."""
        self.requests_by_upstream_status[status] = self.requests_by_upstream_status.get(status, 0) + 1
        self.bytes_forwarded += nbytes
        self.upstream_latency.observe(seconds)
        w = self.window
        w.upstream_requests += 1
        w.upstream_bytes += nbytes
        w.upstream_seconds += seconds

    def responded(self, code: int) -> None:
        """What the sender got for a write request (2xx = published)."""
        self.responses_by_code[code] = self.responses_by_code.get(code, 0) + 1
        if 200 <= code < 300:
            self.window.succeeded += 1
        else:
            self.window.failed += 1

    def rejected(self, reason: str) -> None:
        self.rejected_by_reason[reason] = self.rejected_by_reason.get(reason, 0) + 1

    def token_refreshed(self, ok: bool) -> None:
        if ok:
            self.token_refreshes += 1
        else:
            self.token_refresh_failures += 1

    def take_window(self) -> MinuteWindow:
        w, self.window = self.window, MinuteWindow()
        return w

    # ------------------------------------------------------------ exposition
    def render(self) -> str:
        lines: list[str] = []

        def family(name: str, kind: str, help_: str) -> None:
            lines.append(f"# HELP {PREFIX}{name} {help_}")
            lines.append(f"# TYPE {PREFIX}{name} {kind}")

        family("requests_total", "counter", "Upstream write attempts by upstream HTTP status or error kind.")
        for status, n in sorted(self.requests_by_upstream_status.items()):
            lines.append(f'{PREFIX}requests_total{{upstream_status="{status}"}} {n}')
        family("responses_total", "counter", "Responses to senders' write requests by HTTP code.")
        for code, n in sorted(self.responses_by_code.items()):
            lines.append(f'{PREFIX}responses_total{{code="{code}"}} {n}')
        family("rejected_total", "counter", "Write requests refused before reaching upstream, by reason.")
        for reason, n in sorted(self.rejected_by_reason.items()):
            lines.append(f'{PREFIX}rejected_total{{reason="{reason}"}} {n}')
        family("received_bytes_total", "counter", "Compressed request body bytes received from senders.")
        lines.append(f"{PREFIX}received_bytes_total {self.bytes_received}")
        family("forwarded_bytes_total", "counter",
               "Compressed request body bytes sent upstream (retries included).")
        lines.append(f"{PREFIX}forwarded_bytes_total {self.bytes_forwarded}")
        family("upstream_request_duration_seconds", "histogram", "Upstream write latency.")
        h = self.upstream_latency
        for bound, c in zip(h.buckets, h.cumulative(), strict=True):
            lines.append(f'{PREFIX}upstream_request_duration_seconds_bucket{{le="{bound:g}"}} {c}')
        lines.append(f'{PREFIX}upstream_request_duration_seconds_bucket{{le="+Inf"}} {h.total}')
        lines.append(f"{PREFIX}upstream_request_duration_seconds_sum {h.sum:.6f}")
        lines.append(f"{PREFIX}upstream_request_duration_seconds_count {h.total}")
        family("token_refreshes_total", "counter", "Successful Entra token acquisitions.")
        lines.append(f"{PREFIX}token_refreshes_total {self.token_refreshes}")
        family("token_refresh_failures_total", "counter", "Failed Entra token acquisitions.")
        lines.append(f"{PREFIX}token_refresh_failures_total {self.token_refresh_failures}")
        family("token_expiry_timestamp_seconds", "gauge",
               "Expiry (Unix time) of the token in use; 0 if none.")
        lines.append(f"{PREFIX}token_expiry_timestamp_seconds {self.token_expiry:.0f}")
        family("in_flight_requests", "gauge", "Write requests being read or forwarded right now.")
        lines.append(f"{PREFIX}in_flight_requests {self.in_flight}")
        family("start_time_seconds", "gauge", "Start time of the forwarder (Unix time).")
        lines.append(f"{PREFIX}start_time_seconds {self.started:.0f}")
        return "\n".join(lines) + "\n"


SUMMARY_MSG = "Metric packets published in last 1 minute"


def summary_fields(w: MinuteWindow) -> dict[str, object]:
    """The sidecar's documented summary fields, in its order."""
    avg_bytes = w.upstream_bytes // w.upstream_requests if w.upstream_requests else 0
    avg_s = w.upstream_seconds / w.upstream_requests if w.upstream_requests else 0.0
    return {
        "avgBytesPerRequest": avg_bytes,
        "avgRequestDurationInSec": f"{avg_s:.3f}",
        "failedPublishing": w.failed,
        "successfullyPublished": w.succeeded,
    }
