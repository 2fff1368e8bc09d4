"""PrometheusProcess: real Debian Prometheus starts on a free loopback port and leaves nothing behind."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from promrw_doctor.lab import prometheus as prom
from promrw_doctor.lab.prometheus import PrometheusError, PrometheusNotFound, PrometheusProcess


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); read its state.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_missing_binary_has_an_actionable_message(tmp_path: Path) -> None:
    with pytest.raises(PrometheusNotFound, match=r"prometheus not found: apt-get install prometheus"):
        PrometheusProcess(tmp_path, {}, binary="definitely-not-prometheus-3f9a")


@pytest.mark.slow
def test_receiver_start_query_stop(tmp_path: Path) -> None:
    receiver = PrometheusProcess.receiver(tmp_path / "r")
    pid = receiver.pid
    assert pid is not None and receiver.running
    assert receiver.url.startswith("http://127.0.0.1:")
    assert receiver in prom._live
    assert receiver.query("vector(1)")[0]["value"][1] == "1"
    assert receiver.value("vector(3)") == 3.0
    with pytest.raises(PrometheusError, match="bad_data"):
        receiver.query("sum(")
    assert receiver.stop() == 0
    assert not _alive(pid) and not receiver.running
    assert receiver not in prom._live
    assert "Server is ready to receive web requests" in receiver.log_path.read_text()
    assert receiver.stop() == 0  # idempotent


@pytest.mark.slow
def test_bad_config_fails_fast_with_log_tail(tmp_path: Path) -> None:
    proc = PrometheusProcess(tmp_path, {"global": {"scrape_interval": "not-a-duration"}})
    with pytest.raises(PrometheusError, match="exited with code"):
        proc.start(timeout=10)
    assert proc not in prom._live and not proc.running


@pytest.mark.slow
def test_context_manager_and_atexit_safety_net(tmp_path: Path) -> None:
    with PrometheusProcess.receiver(tmp_path / "a") as a:
        pid_a = a.pid
        b = PrometheusProcess.sender(tmp_path / "b", a.write_url)
        pid_b = b.pid
        assert a.port != b.port
        prom._stop_all()  # what atexit runs: sender first, then receiver
        assert pid_b is not None and not _alive(pid_b)
    assert pid_a is not None and not _alive(pid_a)
    assert a not in prom._live and b not in prom._live


@pytest.mark.slow
def test_taken_port_is_retried_for_automatic_ports(tmp_path: Path) -> None:
    sender = PrometheusProcess.sender(tmp_path / "s", "http://127.0.0.1:1/api/v1/write", start=False)
    with socket.socket() as blocker:
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        blocker.bind(("127.0.0.1", sender.port))
        blocker.listen()
        taken = sender.port
        with sender:
            assert sender.port != taken
            targets = sender.config["scrape_configs"][0]["static_configs"][0]["targets"]
            assert targets == [f"127.0.0.1:{sender.port}"]  # it still scrapes itself
        fixed = PrometheusProcess(tmp_path / "f", {"scrape_configs": []}, port=taken)
        with pytest.raises(PrometheusError, match="already in use"):
            fixed.start(timeout=10)
        assert not fixed.running
