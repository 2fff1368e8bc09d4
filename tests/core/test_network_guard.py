"""The suite's loopback-only guard really blocks the outside world (so every other test is honest)."""

from __future__ import annotations

import socket

import pytest


def test_connect_to_imds_is_refused():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        with pytest.raises(PermissionError):
            s.connect(("169.254.169.254", 80))
    finally:
        s.close()


def test_public_dns_is_refused():
    with pytest.raises(socket.gaierror):
        socket.getaddrinfo("login.microsoftonline.com", 443)


def test_loopback_is_allowed():
    assert socket.getaddrinfo("127.0.0.1", 80)
    assert socket.getaddrinfo("localhost", 80)


def test_outer_environment_export_does_not_block_worker_threads():
    """Regression: lab run exports the lab env for a whole run; the probe's worker thread exports more."""
    import os
    import threading

    from promrw_doctor.core.environ import patched_environ

    seen: list[str | None] = []
    with patched_environ({"PROMRW_TEST_OUTER": "1"}):
        def worker() -> None:
            with patched_environ({"PROMRW_TEST_INNER": "2"}, exclusive=True):
                seen.append(os.environ.get("PROMRW_TEST_OUTER"))

        t = threading.Thread(target=worker)
        t.start()
        t.join(5)
        assert not t.is_alive(), "the worker thread deadlocked on the environment lock"
    assert seen == ["1"]
    assert "PROMRW_TEST_OUTER" not in os.environ and "PROMRW_TEST_INNER" not in os.environ
