"""The forwarder's fast path: which requests it takes, and that handing a connection to aiohttp loses nothing.

Pure parts (:func:`parse_write_head`, :class:`Reply`) are tested directly; the rest over
the wire with raw sockets, because the interesting cases (pipelining, a keep-alive
connection that switches to aiohttp mid-way, a sender vanishing mid-body) are exactly what
HTTP client libraries hide.
"""

from __future__ import annotations

import re
import socket
import time
from typing import Any

import pytest
import requests

from promrw_doctor.forwarder import fastpath
from promrw_doctor.forwarder.fastpath import Reply, parse_write_head
from promrw_doctor.forwarder.server import Forwarder

from .harness import Emulators, forwarder_url
from .test_server import canary_body, post

MAX = 10 * 1024 * 1024
PROM_HEAD = (b"POST /api/v1/write HTTP/1.1\r\nHost: 127.0.0.1:8081\r\nUser-Agent: Prometheus/2.45.0\r\n"
             b"Content-Length: 1234\r\nContent-Encoding: snappy\r\nContent-Type: application/x-protobuf\r\n"
             b"X-Prometheus-Remote-Write-Version: 0.1.0\r\nAccept-Encoding: gzip")


# ------------------------------------------------------------------------- parse_write_head
def test_prometheus_head_takes_the_fast_path() -> None:
    head = parse_write_head(PROM_HEAD, MAX)
    assert head is not None
    assert head.length == 1234 and not head.close
    assert head.headers == {"User-Agent": "Prometheus/2.45.0", "Content-Encoding": "snappy",
                            "Content-Type": "application/x-protobuf", "X-Prometheus-Remote-Write-Version": "0.1.0"}


def test_lowercase_names_and_connection_close() -> None:
    head = parse_write_head(b"POST /api/v1/write HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n"
                            b"content-encoding: SNAPPY\r\nconnection: close", MAX)
    assert head is not None and head.length == 5 and head.close
    assert head.headers == {"Content-Encoding": "SNAPPY"}


@pytest.mark.parametrize("head", [
    PROM_HEAD.replace(b"POST /api/v1/write", b"GET /api/v1/write"),
    PROM_HEAD.replace(b"/api/v1/write", b"/api/v1/write?x=1"),
    PROM_HEAD.replace(b"/api/v1/write", b"/metrics"),
    PROM_HEAD.replace(b"HTTP/1.1", b"HTTP/1.0", 1),
    PROM_HEAD.replace(b"Content-Length: 1234\r\n", b""),
    PROM_HEAD + b"\r\nContent-Length: 1234",
    PROM_HEAD.replace(b"1234", b"12a4"),
    PROM_HEAD.replace(b"1234", b"-1"),
    PROM_HEAD.replace(b"1234", b"%d" % (MAX + 1)),
    PROM_HEAD + b"\r\nTransfer-Encoding: chunked",
    PROM_HEAD + b"\r\nExpect: 100-continue",
    PROM_HEAD + b"\r\nUpgrade: h2c\r\nConnection: Upgrade",
    PROM_HEAD.replace(b"snappy", b"gzip"),
    PROM_HEAD.replace(b"Content-Encoding: snappy\r\n", b""),
    PROM_HEAD.replace(b"User-Agent:", b"User-Agent :"),
    PROM_HEAD + b"\r\n folded continuation",
    PROM_HEAD + b"\r\nX-Evil: a\x00b",
    PROM_HEAD + b"\r\nX-Evil: a\nInjected: b",
    PROM_HEAD + b"\r\nno colon here",
], ids=["GET", "query", "other-path", "http10", "no-length", "two-lengths", "bad-length", "negative-length",
        "oversize", "chunked", "expect", "upgrade", "gzip", "no-encoding", "space-before-colon", "obs-fold",
        "nul", "lone-lf", "no-colon"])
def test_anything_unusual_is_left_to_aiohttp(head: bytes) -> None:
    assert parse_write_head(head, MAX) is None


def test_repeated_heads_are_served_from_the_cache_with_their_own_length() -> None:
    fastpath._HEAD_CACHE.clear()
    first = parse_write_head(PROM_HEAD, MAX)
    assert first is not None and len(fastpath._HEAD_CACHE) == 1
    second = parse_write_head(PROM_HEAD.replace(b"1234", b"99"), MAX)
    assert second is not None and second.length == 99 and second.headers == first.headers
    assert len(fastpath._HEAD_CACHE) == 1  # a hit, not a new entry
    # The cached shape does not excuse the new value: it is checked again.
    assert parse_write_head(PROM_HEAD.replace(b"1234", b"12x"), MAX) is None
    assert parse_write_head(PROM_HEAD.replace(b"1234", b"%d" % (MAX + 1)), MAX) is None
    # Unparseable heads are never cached.
    parse_write_head(PROM_HEAD + b"\r\nTransfer-Encoding: chunked", MAX)
    assert len(fastpath._HEAD_CACHE) == 1


# ----------------------------------------------------------------------------------- Reply
def test_reply_encoding() -> None:
    assert Reply(204).encode() == b"HTTP/1.1 204 No Content\r\n\r\n"
    assert Reply(200).encode() == b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    raw = Reply(503, "busy; retry\n", (("Retry-After", "1"),), close=True).encode()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert body == b"busy; retry\n"
    lines = head.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 503 Service Unavailable"
    assert set(lines[1:]) == {b"Retry-After: 1", b"Content-Type: text/plain; charset=utf-8",
                              b"Content-Length: 12", b"Connection: close"}
    # An upstream header value can never split the response.
    assert b"\r\nX: a\r\nInjected" not in Reply(429, "x", (("Retry-After", "5\r\nInjected: 1"),)).encode()


# ------------------------------------------------------------------------------ over the wire
def _connect(f: Forwarder) -> socket.socket:
    return socket.create_connection(("127.0.0.1", f.port), timeout=10)  # type: ignore[arg-type]


def _write_request(body: bytes, extra: bytes = b"") -> bytes:
    return (b"POST /api/v1/write HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Encoding: snappy\r\n"
            b"Content-Type: application/x-protobuf\r\nX-Prometheus-Remote-Write-Version: 0.1.0\r\n" + extra +
            b"Content-Length: %d\r\n\r\n" % len(body) + body)


class _Reader:
    """HTTP/1.1 responses off a raw socket (Content-Length framed, which is all the forwarder sends)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def response(self) -> tuple[int, dict[str, str], bytes]:
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            assert chunk, f"connection closed; got {self.buf!r}"
            self.buf += chunk
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        n = int(headers.get("content-length", "0"))
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            assert chunk
            self.buf += chunk
        body, self.buf = self.buf[:n], self.buf[n:]
        return status, headers, body

    def closed(self) -> bool:
        self.sock.settimeout(5)
        return self.buf == b"" and self.sock.recv(1) == b""


def test_pipelined_writes_are_answered_in_order(emu: Emulators, fwd: Forwarder) -> None:
    bodies = [canary_body() + bytes([i]) for i in range(3)]
    s = _connect(fwd)
    s.sendall(b"".join(_write_request(b) for b in bodies))  # all three before any answer
    r = _Reader(s)
    assert [r.response()[0] for _ in bodies] == [204, 204, 204]
    assert list(emu.ingestion_log.bodies)[-3:] == bodies
    s.close()


def test_keep_alive_connection_switches_to_aiohttp_and_keeps_serving(emu: Emulators, fwd: Forwarder) -> None:
    s = _connect(fwd)
    r = _Reader(s)
    s.sendall(_write_request(canary_body()))
    assert r.response()[0] == 204  # fast path
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")  # not a write: handed over with its bytes
    status, _, text = r.response()
    assert status == 200 and re.search(rb'^promrw_forwarder_responses_total\{code="204"\} 1$', text, re.M)
    body = canary_body() + b"after-handover"
    s.sendall(_write_request(body))  # now served by aiohttp on the same connection
    assert r.response()[0] == 204
    assert emu.ingestion_log.bodies[-1] == body
    s.close()


def test_connection_close_is_honoured(fwd: Forwarder) -> None:
    s = _connect(fwd)
    s.sendall(_write_request(canary_body(), b"Connection: close\r\n"))
    r = _Reader(s)
    assert r.response()[0] == 204
    assert r.closed()
    s.close()


def test_a_body_in_many_small_pieces_arrives_byte_for_byte(emu: Emulators, fwd: Forwarder) -> None:
    body = canary_body() * 40
    raw = _write_request(body)
    s = _connect(fwd)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for i in range(0, len(raw), 997):  # splits the head, the blank line and the body anywhere
        s.sendall(raw[i:i + 997])
    assert _Reader(s).response()[0] == 204
    assert emu.ingestion_log.bodies[-1] == body
    s.close()


def test_a_sender_vanishing_mid_body_gives_its_reservation_back(emu: Emulators, fwd_factory: Any) -> None:
    f = fwd_factory(max_buffered_bytes=300_000, max_body_bytes=200_000)
    s = _connect(f)
    s.sendall(_write_request(b"\x01" * 200_000)[:50_000])  # admitted: 200 kB reserved of 300 kB
    deadline = time.monotonic() + 5
    while f.in_flight != 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert f.in_flight == 1
    s.close()
    while f.in_flight != 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert f.in_flight == 0
    assert post(f, b"\x02" * 200_000).status_code == 204  # would be 503 busy if 200 kB were still held
    metrics = requests.get(forwarder_url(f, "/metrics"), timeout=5).text
    assert 'promrw_forwarder_rejected_total{reason="incomplete_body"} 1' in metrics


def test_an_oversized_head_goes_to_aiohttp_which_refuses_it(fwd: Forwarder) -> None:
    s = _connect(fwd)
    s.sendall(b"POST /api/v1/write HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n")
    status, _, _ = _Reader(s).response()
    assert 400 <= status < 500
    s.close()
    assert post(fwd).status_code == 204


def test_a_sender_that_half_closes_still_gets_its_answer(emu: Emulators, fwd: Forwarder) -> None:
    body = canary_body() + b"half-close"
    s = _connect(fwd)
    s.sendall(_write_request(body))
    s.shutdown(socket.SHUT_WR)
    r = _Reader(s)
    assert r.response()[0] == 204
    assert r.closed()
    assert emu.ingestion_log.bodies[-1] == body
    s.close()


def test_allocator_thresholds_are_accepted_on_linux() -> None:
    import sys

    from promrw_doctor.forwarder.server import tune_allocator

    if not sys.platform.startswith("linux"):
        pytest.skip("glibc mallopt is Linux-only")
    assert tune_allocator(mmap_threshold=1 << 20, trim_threshold=32 << 20) is True
