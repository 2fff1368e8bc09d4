"""Fifty probes against one lab leave exactly one canary series: the nonce is the value, never a label."""

from __future__ import annotations

import pytest

from promrw_doctor import api
from promrw_doctor.core.model import Status
from promrw_doctor.lab.world import LabWorld

from .conftest import CANARY, explicit_kwargs, result_of

pytestmark = pytest.mark.slow
RUNS = 50


def test_fifty_probes_leave_exactly_one_series(shared: LabWorld) -> None:
    nonces = []
    for _ in range(RUNS):
        report = api.probe(**explicit_kwargs(shared))
        res = result_of(report, "pipeline.canary-probe")
        assert res.status == Status.PASS, res.summary
        nonces.append(res.findings[0].evidence["nonce"])
    assert len(set(nonces)) == RUNS  # a fresh nonce every time
    receiver = shared.receiver
    assert receiver.value(f"count({CANARY})") == 1.0
    series = receiver.api("series", {"match[]": CANARY})
    assert series == [{"__name__": CANARY, "cluster": "aks-lab", "source": "promrw-doctor"}]
    # Every probe's sample is in that one series, and the newest is the last nonce.
    assert receiver.value(f"count_over_time({CANARY}[1h])") == float(RUNS)
    assert receiver.value(CANARY) == float(nonces[-1])
