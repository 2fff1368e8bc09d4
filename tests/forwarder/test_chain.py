"""The whole chain with real parts: Debian Prometheus (scraping itself) -> forwarder -> auth-checking
ingestion emulator -> Debian Prometheus receiver -> PromQL.

"Nothing lost" is checked the strict way: every sample the sender scraped in the window
(counted in its own TSDB) is counted in the receiver, while upstream faults (5xx, 429,
timeouts, resets, a 401, 403s, a role still propagating) hit the forwarder.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from promrw_doctor.lab.prometheus import PrometheusProcess
from promrw_doctor.lab.server import LabServer

from .harness import (
    Certs,
    Emulators,
    World,
    forwarder_config,
    forwarder_url,
    start_emulators,
    start_forwarder,
    stop_forwarder,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusProcess]:
    proc = PrometheusProcess.receiver(Path(tmp_path_factory.mktemp("chain-recv")))
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def chain_emu(lab: LabServer, world: World, certs: Certs, receiver: PrometheusProcess,
              clean_env: pytest.MonkeyPatch) -> Emulators:
    e = start_emulators(lab, world, certs, receiver_url=receiver.url)
    clean_env.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", e.imds.url)
    return e


def _sender(tmp: Path, url: str, cluster: str) -> PrometheusProcess:
    return PrometheusProcess.sender(
        tmp / f"send-{cluster}", url, external_labels={"cluster": cluster},
        queue_config={"retry_on_http_429": True, "capacity": 2500, "max_samples_per_send": 500},
        extra_remote_write={"remote_timeout": "5s"})


def _samples(proc: PrometheusProcess, selector: str, window_s: int, at: float) -> set[tuple[Any, ...]]:
    """Every raw sample in the window: (series labels without cluster, timestamp, value)."""
    out: set[tuple[Any, ...]] = set()
    for series in proc.query(f"{selector}[{window_s}s]", at=at):
        labels = tuple(sorted((k, v) for k, v in series["metric"].items() if k != "cluster"))
        for ts, value in series["values"]:
            out.add((labels, ts, value))
    return out


def _metric(proc: PrometheusProcess, name: str) -> float:
    res = proc.query(f"sum({name})")
    return float(res[0]["value"][1]) if res else 0.0


def _assert_nothing_lost(sender: PrometheusProcess, receiver: PrometheusProcess, cluster: str,
                         start: float, end: float, patience: float = 30.0) -> int:
    window = int(end - start)
    want = _samples(sender, '{job="prometheus"}', window, end)
    assert len(want) > 1000
    deadline = time.monotonic() + patience
    got: set[tuple[Any, ...]] = set()
    while time.monotonic() < deadline:
        got = _samples(receiver, f'{{job="prometheus",cluster="{cluster}"}}', window, end)
        if got >= want:
            break
        time.sleep(0.5)
    missing = want - got
    assert not missing, (f"receiver lacks {len(missing)} of the {len(want)} samples the sender scraped in "
                         f"{window}s, e.g. {sorted(missing)[:3]}")
    return len(want)


def _stats(fwd: Any) -> str:
    return requests.get(forwarder_url(fwd, "/metrics"), timeout=5).text


def test_nothing_lost_through_upstream_faults(chain_emu: Emulators, lab: LabServer, receiver: PrometheusProcess,
                                              tmp_path: Path) -> None:
    fwd = start_forwarder(lab, forwarder_config(chain_emu.env(), upstream_timeout=1.0, auth_retry_after_s=1))
    sender = _sender(tmp_path, forwarder_url(fwd), "chain-faults")
    try:
        receiver.wait_for('up{cluster="chain-faults"}', timeout=30)
        start = time.time() + 1
        time.sleep(2)
        q = chain_emu.faults
        q.push(500, count=2)
        q.push(502)
        q.push(503, headers={"Retry-After": "1"})
        q.push(429, headers={"Retry-After": "1"}, count=2)
        q.push(delay=2.0)  # longer than the forwarder's upstream timeout
        q.push(reset=True, count=2)
        q.push(401)  # token refreshed once, retried at once
        q.push(403, count=3)
        deadline = time.monotonic() + 40
        while len(q) and time.monotonic() < deadline:
            time.sleep(0.25)
        assert len(q) == 0, "the sender stopped sending"
        time.sleep(3)
        end = time.time() - 1
        n = _assert_nothing_lost(sender, receiver, "chain-faults", start, end)
        assert _metric(sender, "prometheus_remote_storage_samples_failed_total") == 0
        assert _metric(sender, "prometheus_remote_storage_samples_dropped_total") == 0
        assert _metric(sender, "prometheus_remote_storage_samples_retried_total") > 0
        stats = _stats(fwd)
        for status in ("500", "502", "503", "429", "timeout", "reset", "401", "403"):
            assert f'upstream_status="{status}"' in stats, status
        assert n > 0
    finally:
        sender.stop()
        stop_forwarder(lab, fwd)


def test_nothing_lost_while_the_role_assignment_propagates(chain_emu: Emulators, lab: LabServer,
                                                           receiver: PrometheusProcess, tmp_path: Path) -> None:
    world = chain_emu.world
    world.state.role_assignments.clear()
    world.state.role_propagation = timedelta(seconds=12)
    world.grant(world.uami.principal_id, age=timedelta(0))  # assigned just now: 403 for a while
    fwd = start_forwarder(lab, forwarder_config(chain_emu.env(), auth_retry_after_s=1))
    sender = _sender(tmp_path, forwarder_url(fwd), "chain-rbac")
    sender_started = time.time()
    try:
        receiver.wait_for('up{cluster="chain-rbac"}', timeout=45)
        outcomes = chain_emu.ingestion_log.by_outcome
        assert outcomes["role-not-propagated"] > 0
        time.sleep(2)
        end = time.time() - 1
        _assert_nothing_lost(sender, receiver, "chain-rbac", sender_started, end)
        assert _metric(sender, "prometheus_remote_storage_samples_failed_total") == 0
    finally:
        sender.stop()
        stop_forwarder(lab, fwd)


def test_passing_403_through_loses_the_window(chain_emu: Emulators, lab: LabServer, receiver: PrometheusProcess,
                                              tmp_path: Path) -> None:
    """The contrast that justifies the default: Prometheus drops every batch answered 403."""
    world = chain_emu.world
    world.state.role_assignments.clear()
    world.state.role_propagation = timedelta(seconds=9)
    world.grant(world.uami.principal_id, age=timedelta(0))
    fwd = start_forwarder(lab, forwarder_config(chain_emu.env(), pass_through_4xx=True))
    sender = _sender(tmp_path, forwarder_url(fwd), "chain-drop")
    sender_started = time.time()
    try:
        receiver.wait_for('up{cluster="chain-drop"}', timeout=45)
        time.sleep(2)
        end = time.time() - 1
        with pytest.raises(AssertionError, match="receiver lacks"):
            _assert_nothing_lost(sender, receiver, "chain-drop", sender_started, end, patience=3)
        assert _metric(sender, "prometheus_remote_storage_samples_failed_total") > 0
    finally:
        sender.stop()
        stop_forwarder(lab, fwd)
