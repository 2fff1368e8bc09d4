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
