"""The canary: labels, a nonce that survives float64 and Prometheus' JSON formatting, a ready body."""

from __future__ import annotations

import json
import struct

import pytest

import promrw_doctor.remote_write as rw
from promrw_doctor.remote_write.canary import METRIC, SOURCE, new_nonce


def test_canary_shape() -> None:
    c = rw.build_canary("aks-prod", timestamp_ms=1_700_000_000_123)
    req = rw.decode(c.body)
    assert len(req.timeseries) == 1
    ts = req.timeseries[0]
    assert [(lb.name, lb.value) for lb in ts.labels] == [
        ("__name__", METRIC), ("cluster", "aks-prod"), ("source", SOURCE)]
    assert ts.samples[0].timestamp == 1_700_000_000_123
    assert ts.samples[0].value == float(c.nonce)
    assert rw.validate(req) == []
    assert c.promql() == 'promrw_doctor_canary{cluster="aks-prod",source="promrw-doctor"}'


def test_nonce_is_fresh_and_roundtrips_float64_exactly() -> None:
    nonces = {new_nonce() for _ in range(2000)}
    assert len(nonces) == 2000
    for n in nonces:
        f = float(n)
        assert int(f) == n
        # Through the wire (IEEE-754 double) and back.
        assert int(struct.unpack("<d", struct.pack("<d", f))[0]) == n
        # Through Prometheus' JSON API: strconv.FormatFloat(v, 'f', -1, 64) prints the integer digits.
        assert rw.build_canary("c", nonce=n).matches(json.loads(json.dumps(f"{f:.0f}")))
        assert len(str(n)) == 16


def test_matches_rejects_other_values() -> None:
    c = rw.build_canary("c")
    assert c.matches(str(c.nonce)) and c.matches(c.value)
    assert not c.matches(str(c.nonce + 1)) and not c.matches("NaN") and not c.matches("x")


def test_cluster_label_required_and_escaped() -> None:
    with pytest.raises(ValueError, match="cluster"):
        rw.build_canary("")
    assert rw.build_canary('we"ird').promql() == 'promrw_doctor_canary{cluster="we\\"ird",source="promrw-doctor"}'


def test_repr_hides_body() -> None:
    assert "body" not in repr(rw.build_canary("c"))
