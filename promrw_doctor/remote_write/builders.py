"""Build valid ``WriteRequest`` messages from plain Python values.

Callers say *what* to send (label dicts, ``(timestamp_ms, value)`` pairs); the
builder produces the wire shape the spec wants (labels sorted, ``__name__`` first
by sort order) and refuses anything a receiver would reject, so a test or a probe
never blames the pipeline for its own malformed input.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .messages import METRIC_TYPES, WriteRequest
from .validate import NAME_LABEL, Violation, check_labels, sorted_labels


class InvalidSeries(ValueError):
    """The series would be rejected by a receiver; ``violations`` says why."""

    def __init__(self, violations: list[Violation]) -> None:
        more = f" (+{len(violations) - 1} more)" if len(violations) > 1 else ""
        super().__init__(str(violations[0]) + more)
        self.violations = violations


@dataclass(frozen=True)
class SeriesSpec:
    """One series: its full label set (``__name__`` included) and its samples."""

    labels: Mapping[str, str]
    samples: Sequence[tuple[int, float]]  # (timestamp in ms, value)


@dataclass(frozen=True)
class MetadataSpec:
    metric_family_name: str
    type: str = "GAUGE"  # a key of METRIC_TYPES
    help: str = ""
    unit: str = ""


def series(name: str, labels: Mapping[str, str] | None = None,
           samples: Sequence[tuple[int, float]] | None = None, *, value: float = 1.0) -> SeriesSpec:
    """Shorthand: ``series("up", {"job": "x"})`` is one sample of 1.0 at "now"."""
    all_labels = {NAME_LABEL: name, **(labels or {})}
    return SeriesSpec(all_labels, list(samples) if samples is not None else [(now_ms(), value)])


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def build_write_request(
    items: Iterable[SeriesSpec],
    *,
    metadata: Iterable[MetadataSpec] = (),
    check: bool = True,
) -> Any:
    """A ``WriteRequest``; with ``check`` (default) raises :class:`InvalidSeries` for spec violations."""
    req = WriteRequest()
    problems: list[Violation] = []
    for i, spec in enumerate(items):
        labels = sorted_labels(spec.labels)
        if check:
            problems.extend(check_labels(labels, i))
        ts = req.timeseries.add()
        for name, val in labels:
            ts.labels.add(name=name, value=val)
        for t, v in sorted(spec.samples, key=lambda s: s[0]):
            ts.samples.add(value=float(v), timestamp=int(t))
    if problems:
        raise InvalidSeries(problems)
    for md in metadata:
        if md.type not in METRIC_TYPES:
            raise ValueError(f"unknown metric type {md.type!r} (expected one of {', '.join(METRIC_TYPES)})")
        req.metadata.add(type=METRIC_TYPES[md.type], metric_family_name=md.metric_family_name,
                         help=md.help, unit=md.unit)
    return req


@dataclass
class SyntheticBatch:
    """A batch shaped like what Prometheus sends: many series, one sample each, realistic labels."""

    samples: int = 2000
    cluster: str = "bench"
    seed: int = 1
    timestamp_ms: int = field(default_factory=now_ms)

    def specs(self) -> list[SeriesSpec]:
        rnd = random.Random(self.seed)
        families = [
            ("container_cpu_usage_seconds_total", "cadvisor"),
            ("container_memory_working_set_bytes", "cadvisor"),
            ("kube_pod_status_phase", "kube-state-metrics"),
            ("node_network_receive_bytes_total", "node"),
            ("http_request_duration_seconds_bucket", "app"),
            ("apiserver_request_total", "apiserver"),
        ]
        out: list[SeriesSpec] = []
        for i in range(self.samples):
            name, job = families[i % len(families)]
            labels = {
                NAME_LABEL: name,
                "cluster": self.cluster,
                "job": job,
                "namespace": f"team-{i % 17}",
                "pod": f"{job}-{rnd.randrange(16**8):08x}-{rnd.randrange(16**5):05x}",
                "container": f"c{i % 5}",
                "instance": f"10.244.{i % 23}.{i % 251}:{9100 + i % 7}",
                "node": f"aks-nodepool1-{12345678 + i % 9}-vmss00000{i % 6}",
            }
            if name.endswith("_bucket"):
                labels["le"] = ("0.005", "0.01", "0.05", "0.1", "0.5", "1", "+Inf")[i % 7]
            out.append(SeriesSpec(labels, [(self.timestamp_ms, rnd.random() * 1e6)]))
        return out

    def request(self) -> Any:
        return build_write_request(self.specs())
