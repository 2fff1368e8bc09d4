"""The canary sample: one series whose value proves *this* write arrived.

``promrw_doctor_canary{cluster="<cluster>", source="promrw-doctor"}`` with a fresh
random nonce as its value and "now" as its timestamp. The nonce is the value (not a
label) so repeated probes reuse one series instead of creating a new one each run
(active-series quota), while a query can still tell this write from an older one.

The nonce is an integer in ``[2**52, 2**53)``: every such integer is exactly
representable as a float64, has 16 decimal digits, and survives Prometheus' JSON
formatting (``strconv.FormatFloat(v, 'f', -1, 64)``) and ``float()`` unchanged.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from .builders import SeriesSpec, build_write_request, now_ms
from .codec import encode

METRIC = "promrw_doctor_canary"
SOURCE = "promrw-doctor"
_NONCE_LOW = 2**52
_NONCE_SPAN = 2**52


def new_nonce() -> int:
    return _NONCE_LOW + secrets.randbelow(_NONCE_SPAN)


@dataclass(frozen=True)
class Canary:
    cluster: str
    nonce: int
    timestamp_ms: int
    body: bytes = field(repr=False)  # snappy-compressed WriteRequest, ready to POST

    @property
    def value(self) -> float:
        return float(self.nonce)

    @property
    def labels(self) -> dict[str, str]:
        return canary_labels(self.cluster)

    def promql(self) -> str:
        """The instant query that returns this series (compare its value with :attr:`nonce`)."""
        return f'{METRIC}{{cluster="{_escape(self.cluster)}",source="{SOURCE}"}}'

    def matches(self, value: str | float) -> bool:
        """True when a queried value (string from the PromQL JSON API, or float) is this canary's nonce."""
        try:
            return float(value) == self.value
        except (TypeError, ValueError):
            return False


def canary_labels(cluster: str) -> dict[str, str]:
    return {"__name__": METRIC, "cluster": cluster, "source": SOURCE}


def canary_request(cluster: str, nonce: int, timestamp_ms: int) -> Any:
    return build_write_request([SeriesSpec(canary_labels(cluster), [(timestamp_ms, float(nonce))])])


def build_canary(cluster: str, *, nonce: int | None = None, timestamp_ms: int | None = None) -> Canary:
    """A fresh canary for ``cluster`` (raises ``ValueError`` if the cluster label would be invalid)."""
    if not cluster:
        raise ValueError("the canary needs a non-empty cluster label (set CLUSTER or --cluster)")
    n = new_nonce() if nonce is None else int(nonce)
    if float(n) != n:
        raise ValueError(f"nonce {n} does not round-trip through float64")
    ts = now_ms() if timestamp_ms is None else int(timestamp_ms)
    return Canary(cluster=cluster, nonce=n, timestamp_ms=ts, body=encode(canary_request(cluster, n, ts)))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
