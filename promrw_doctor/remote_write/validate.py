"""Remote-write 1.0 validation rules, as the spec states them.

A receiver (Prometheus, Azure ingestion) rejects a whole batch with ``400`` for one
bad series, and Prometheus then drops the batch. Finding the offending series
before it leaves the pod turns "samples vanish" into a one-line reason.

Rules (spec "Labels" / "Samples"): every series has a ``__name__`` label whose value
matches ``[a-zA-Z_:][a-zA-Z0-9_:]*``; label names match ``[a-zA-Z_][a-zA-Z0-9_]*``;
names and values are non-empty; labels are sorted by name and unique; samples of
one series are in timestamp order.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

METRIC_NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_NAME_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
NAME_LABEL = "__name__"


@dataclass(frozen=True)
class Violation:
    """One broken rule in one series. ``rule`` is a stable key, ``message`` one line."""

    series_index: int
    # missing-name | bad-metric-name | bad-label-name | empty-label-value | unsorted | duplicate
    # | samples-out-of-order
    rule: str
    message: str

    def __str__(self) -> str:
        return f"series {self.series_index}: {self.message}"


def _series_id(labels: list[tuple[str, str]]) -> str:
    inner = ",".join(f'{n}="{v}"' for n, v in labels if n != NAME_LABEL)
    name = next((v for n, v in labels if n == NAME_LABEL), "")
    text = f"{name}{{{inner}}}"
    return text if len(text) <= 120 else text[:117] + "..."


def check_labels(labels: list[tuple[str, str]], series_index: int = 0) -> Iterator[Violation]:
    """Violations of one label set (as ``(name, value)`` pairs in wire order)."""
    sid = _series_id(labels)
    names = [n for n, _ in labels]
    if NAME_LABEL not in names:
        yield Violation(series_index, "missing-name", f"{sid}: no __name__ label")
    for i, (name, value) in enumerate(labels):
        if name == NAME_LABEL:
            if not METRIC_NAME_RE.fullmatch(value):
                yield Violation(series_index, "bad-metric-name", f"{sid}: metric name {value!r} is invalid")
        elif not LABEL_NAME_RE.fullmatch(name):
            yield Violation(series_index, "bad-label-name", f"{sid}: label name {name!r} is invalid")
        if name != NAME_LABEL and value == "":
            yield Violation(series_index, "empty-label-value", f"{sid}: label {name!r} has an empty value")
        if i:
            prev = labels[i - 1][0]
            if prev == name:
                yield Violation(series_index, "duplicate", f"{sid}: label {name!r} appears more than once")
            elif prev > name:
                yield Violation(series_index, "unsorted",
                                f"{sid}: labels not sorted by name ({prev!r} before {name!r})")


def check_series(series: Any, series_index: int = 0) -> Iterator[Violation]:
    """Violations of one ``TimeSeries`` message."""
    labels = [(lb.name, lb.value) for lb in series.labels]
    yield from check_labels(labels, series_index)
    last = None
    for s in series.samples:
        if last is not None and s.timestamp < last:
            yield Violation(series_index, "samples-out-of-order", f"{_series_id(labels)}: sample timestamps "
                            f"not ascending ({last} then {s.timestamp})")
            break
        last = s.timestamp


def validate(request: Any, *, limit: int | None = None) -> list[Violation]:
    """All violations in a ``WriteRequest`` (at most ``limit``)."""
    out: list[Violation] = []
    for i, ts in enumerate(request.timeseries):
        for v in check_series(ts, i):
            out.append(v)
            if limit is not None and len(out) >= limit:
                return out
    return out


def first_violation(request: Any) -> Violation | None:
    """The first violation, or None: what the forwarder reports in a ``400``."""
    found = validate(request, limit=1)
    return found[0] if found else None


def sorted_labels(labels: Iterable[tuple[str, str]] | Mapping[str, str]) -> list[tuple[str, str]]:
    """Labels in wire order (sorted by name)."""
    items = labels.items() if isinstance(labels, Mapping) else labels
    return sorted(items, key=lambda kv: kv[0])
