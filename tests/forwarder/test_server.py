"""The forwarder over the wire: real aiohttp server, the lab's IMDS and auth-checking ingestion emulators.

Upstream faults come from the ingestion emulator's fault queue; header inspection uses a
tiny recording upstream defined here (the emulator does not expose request headers).
"""

from __future__ import annotations

import logging
import re
import socket
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import requests
from aiohttp import web

import promrw_doctor.remote_write as rw
from promrw_doctor.forwarder.logfmt import LogrusFormatter
from promrw_doctor.forwarder.server import Forwarder
from promrw_doctor.lab.emulators import imds

from .harness import AUDIENCE, Emulators, forwarder_config, forwarder_url, start_forwarder, stop_forwarder

HEADERS = {**rw.HEADERS, "User-Agent": "Prometheus/2.42.0+ds"}
PLANTED = ("eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJodHRwczovL21vbml0b3IuYXp1cmUuY29tIn0."
           "c2lnbmF0dXJlLXRoYXQtbXVzdC1uZXZlci1sZWFr")


def canary_body() -> bytes:
    return rw.build_canary("fwd-test").body


def post(f: Forwarder, body: bytes | None = None, headers: dict[str, str] | None = None,
         path: str = "/api/v1/write", timeout: float = 10) -> requests.Response:
    return requests.post(forwarder_url(f, path), data=canary_body() if body is None else body,
                         headers=HEADERS if headers is None else headers, timeout=timeout)


def one_line(r: requests.Response) -> str:
    text = r.text.rstrip("\n")
    assert "\n" not in text, text
    assert text.startswith("promrw-doctor forwarder: ")
    return text


# ------------------------------------------------------------------------------- data path
def test_forwards_bytes_and_headers_verbatim(emu: Emulators, fwd_factory: Any) -> None:
    seen: list[tuple[dict[str, str], bytes, str]] = []

    async def record(request: web.Request) -> web.Response:
        seen.append((dict(request.headers), await request.read(), request.query_string))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/dataCollectionRules/{dcr}/streams/{s}/api/v1/write", record)
    ep = emu.lab.add("recorder", app)
    f = fwd_factory(env=emu.env(INGESTION_URL=emu.ingestion_url(ep)))
    body = rw.encode(rw.SyntheticBatch(samples=500).request())
    sender_headers = {**HEADERS, "Authorization": "Bearer sender-supplied-value", "Retry-Attempt": "2"}
    r = post(f, body, sender_headers)
    assert r.status_code == 204
    headers, got, query = seen[0]
    assert got == body  # byte for byte
    assert query == "api-version=2023-04-24"
    for name in ("Content-Encoding", "Content-Type", "X-Prometheus-Remote-Write-Version", "User-Agent",
                 "Retry-Attempt"):
        assert headers[name] == sender_headers[name], name
    scheme, _, token = headers["Authorization"].partition(" ")
    assert scheme == "Bearer" and token != "sender-supplied-value"
    claims = emu.world.issuer.verify(token, audiences=[AUDIENCE])
    assert claims["appid"] == emu.world.uami.client_id


def test_auth_checking_ingestion_accepts_the_write(emu: Emulators, fwd: Forwarder) -> None:
    body = canary_body()
    assert post(fwd, body).status_code == 204
    rec = emu.ingestion_log.records[-1]
    assert rec.outcome == "ok" and rec.principal == emu.world.uami.principal_id
    assert emu.ingestion_log.bodies[-1] == body


def test_never_acknowledges_before_upstream(emu: Emulators, fwd: Forwarder) -> None:
    emu.faults.push(delay=1.0)  # upstream answers slowly, then normally
    started = time.monotonic()
    r = post(fwd)
    assert r.status_code == 204
    assert time.monotonic() - started >= 1.0
    assert emu.ingestion_log.records[-1].outcome == "ok"


def test_hot_path_does_not_decode(emu: Emulators, fwd: Forwarder) -> None:
    assert post(fwd, b"\x00not-snappy-at-all").status_code == 204  # forwarded as-is without --validate
    assert emu.ingestion_log.bodies[-1] == b"\x00not-snappy-at-all"


def test_health_ready_metrics(fwd: Forwarder) -> None:
    assert requests.get(forwarder_url(fwd, "/health"), timeout=5).text == "ok\n"
    assert requests.get(forwarder_url(fwd, "/ready"), timeout=5).status_code == 200
    assert post(fwd).status_code == 204
    text = requests.get(forwarder_url(fwd, "/metrics"), timeout=5).text
    for line in ('promrw_forwarder_requests_total{upstream_status="204"} 1',
                 'promrw_forwarder_responses_total{code="204"} 1',
                 "promrw_forwarder_upstream_request_duration_seconds_count 1",
                 'promrw_forwarder_upstream_request_duration_seconds_bucket{le="+Inf"} 1',
                 "promrw_forwarder_token_refreshes_total 1",
                 "promrw_forwarder_token_refresh_failures_total 0",
                 "promrw_forwarder_in_flight_requests 0"):
        assert line in text, line
    assert re.search(r"^promrw_forwarder_forwarded_bytes_total [1-9]\d*$", text, re.M)
    assert re.search(r"^promrw_forwarder_token_expiry_timestamp_seconds [1-9]\d+$", text, re.M)
    assert requests.post(forwarder_url(fwd, "/health"), timeout=5).status_code == 405


# ------------------------------------------------------------------------- upstream faults
@pytest.mark.parametrize(("fault", "status", "retry_after"), [
    ({"status": 500}, 503, None),
    ({"status": 502}, 503, None),
    ({"status": 503, "headers": {"Retry-After": "9"}}, 503, "9"),
    ({"status": 429, "headers": {"Retry-After": "3"}}, 429, "3"),
    ({"status": 400, "body": "out of bounds"}, 400, None),
    ({"status": 404, "body": {"error": {"code": "DataCollectionRuleNotFound"}}}, 404, None),
])
def test_upstream_status_mapping(emu: Emulators, fwd: Forwarder, fault: dict[str, Any], status: int,
                                 retry_after: str | None) -> None:
    emu.faults.push(**fault)
    r = post(fwd)
    assert r.status_code == status
    assert r.headers.get("Retry-After") == retry_after
    one_line(r)
    assert post(fwd).status_code == 204  # and it keeps serving


def test_upstream_timeout_is_503(emu: Emulators, fwd_factory: Any) -> None:
    f = fwd_factory(upstream_timeout=0.5)
    emu.faults.push(delay=1.5)
    r = post(f)
    assert r.status_code == 503 and "timeout" in one_line(r)
    assert 'upstream_status="timeout"' in requests.get(forwarder_url(f, "/metrics"), timeout=5).text


def test_connection_reset_is_503_and_a_stale_connection_is_retried_once(emu: Emulators, fwd: Forwarder) -> None:
    emu.faults.push(reset=True)  # on a fresh connection: no retry
    r = post(fwd)
    assert r.status_code == 503 and "reset" in one_line(r)
    assert post(fwd).status_code == 204  # now a kept-alive connection is pooled
    emu.faults.push(reset=True)  # on the reused connection: retried once on a fresh one
    assert post(fwd).status_code == 204
    emu.faults.push(reset=True, count=2)  # and the retry is only once
    assert post(fwd).status_code == 503


def test_upstream_unreachable_is_503(emu: Emulators, fwd_factory: Any) -> None:
    dead = f"http://127.0.0.1:9/dataCollectionRules/{emu.world.dcr.immutable_id}/streams/x/api/v1/write"
    f = fwd_factory(env=emu.env(INGESTION_URL=dead))
    r = post(f)
    assert r.status_code == 503 and "connect" in one_line(r)


def test_401_refreshes_the_token_once_and_retries(emu: Emulators, fwd: Forwarder) -> None:
    before = len([x for x in emu.imds_requests() if x.outcome == "ok"])
    emu.faults.push(401, body={"error": {"code": "InvalidToken", "message": "expired"}})
    r = post(fwd)
    assert r.status_code == 204
    assert len([x for x in emu.imds_requests() if x.outcome == "ok"]) == before + 1
    metrics = requests.get(forwarder_url(fwd, "/metrics"), timeout=5).text
    assert 'upstream_status="401"} 1' in metrics and 'upstream_status="204"} 1' in metrics


def test_persistent_401_becomes_503_with_retry_after(emu: Emulators, fwd: Forwarder,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    emu.faults.push(401, count=2)
    r = post(fwd)
    assert r.status_code == 503 and r.headers["Retry-After"] == "7"
    assert "401" in one_line(r)
    assert "answering 503" in caplog.text


def test_403_becomes_503_so_prometheus_keeps_the_batch(emu: Emulators, fwd: Forwarder,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    emu.faults.push(403, body={"error": {"code": "AuthorizationFailed", "message": "no role"}})
    r = post(fwd)
    assert r.status_code == 503 and r.headers["Retry-After"] == "7"
    text = one_line(r)
    assert "403" in text and emu.world.uami.client_id in text
    assert "keeps the batch in its WAL" in caplog.text


def test_pass_through_4xx_flag(emu: Emulators, fwd_factory: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    f = fwd_factory(pass_through_4xx=True)
    emu.faults.push(403)
    r = post(f)
    assert r.status_code == 403 and "Retry-After" not in r.headers
    assert "Prometheus drops this batch" in caplog.text


def test_role_propagation_window_then_success(emu: Emulators, fwd: Forwarder) -> None:
    state = emu.world.state
    state.role_assignments.clear()
    state.role_propagation = timedelta(seconds=1.5)
    emu.world.grant(emu.world.uami.principal_id, age=timedelta(0))
    r = post(fwd)
    assert r.status_code == 503 and emu.ingestion_log.records[-1].outcome == "role-not-propagated"
    time.sleep(1.6)
    assert post(fwd).status_code == 204


def test_planted_token_in_upstream_body_never_escapes(emu: Emulators, fwd: Forwarder,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    planted_body = (f'{{"error": "bad", "access_token": "{PLANTED}", "echo": "Authorization: Bearer '
                    f'{PLANTED}", "client_secret": "hunter2-secret"}}')
    for status in (500, 403, 400, 429):
        emu.faults.push(status, body=planted_body)
        r = post(fwd)
        assert PLANTED not in r.text and "hunter2-secret" not in r.text
    metrics = requests.get(forwarder_url(fwd, "/metrics"), timeout=5).text
    everything = caplog.text + "\n".join(LogrusFormatter().format(rec) for rec in caplog.records) + metrics
    assert PLANTED not in everything and "hunter2-secret" not in everything
    # Nor does the forwarder's own token show up anywhere.
    own = fwd.tokens.current()
    assert own is not None and own.value not in everything


# ----------------------------------------------------------------------------- bad input
def test_wrong_method_and_path(fwd: Forwarder) -> None:
    r = requests.get(forwarder_url(fwd), timeout=5)
    assert r.status_code == 405 and r.headers["Allow"] == "POST" and "use POST" in one_line(r)
    r = post(fwd, path="/api/v1/push")
    assert r.status_code == 404 and "/api/v1/write" in one_line(r)
    assert post(fwd).status_code == 204


@pytest.mark.parametrize("encoding", [None, "gzip", "identity"])
def test_content_encoding_must_be_snappy(fwd: Forwarder, encoding: str | None) -> None:
    headers = {k: v for k, v in HEADERS.items() if k != "Content-Encoding"}
    if encoding:
        headers["Content-Encoding"] = encoding
    r = post(fwd, headers=headers)
    assert r.status_code == 415 and "snappy" in one_line(r)
    assert post(fwd).status_code == 204


def _unsorted() -> bytes:
    req = rw.WriteRequest()
    ts = req.timeseries.add()
    for name, value in (("__name__", "m"), ("b", "1"), ("a", "2")):
        ts.labels.add(name=name, value=value)
    ts.samples.add(value=1.0, timestamp=1)
    return rw.encode(req)


@pytest.mark.parametrize(("body", "words"), [
    (b"\x00\x01garbage", "snappy"),
    (rw.codec.compress(b"\x0a\xff\xff\xff\x0f\x01"), "protobuf"),
    (_unsorted(), "not sorted"),
    (rw.encode(rw.build_write_request([rw.SeriesSpec({"job": "x"}, [(1, 1.0)])], check=False)), "__name__"),
], ids=["corrupt-snappy", "corrupt-protobuf", "unsorted-labels", "no-name"])
def test_validate_rejects_bad_bodies(emu: Emulators, fwd_factory: Any, body: bytes, words: str) -> None:
    f = fwd_factory(validate=True)
    upstream_before = len(emu.ingestion_log.records)
    r = post(f, body)
    assert r.status_code == 400 and words in one_line(r)
    assert len(emu.ingestion_log.records) == upstream_before  # never forwarded
    assert post(f).status_code == 204


def test_oversize_body_is_413_without_reading_it(emu: Emulators, fwd_factory: Any) -> None:
    f = fwd_factory(max_body_bytes=64 * 1024, max_buffered_bytes=1024 * 1024)
    big = b"\x00" * (200 * 1024)
    r = post(f, big)
    assert r.status_code == 413 and "exceeds the limit of 65536 bytes" in one_line(r)

    def chunks() -> Iterator[bytes]:
        for _ in range(20):
            yield b"\x00" * 8192

    r = requests.post(forwarder_url(f), data=chunks(), headers=HEADERS, timeout=10)  # chunked: no length
    assert r.status_code == 413
    assert emu.ingestion_log.records == []
    assert post(f).status_code == 204


def _raw(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    return s


def test_slow_body_trickle_gets_408(fwd_factory: Any) -> None:
    f = fwd_factory(read_timeout=0.5)
    s = _raw(f.port)  # type: ignore[arg-type]
    head = (b"POST /api/v1/write HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Encoding: snappy\r\n"
            b"Content-Type: application/x-protobuf\r\nContent-Length: 1000\r\n\r\n")
    s.sendall(head + b"x" * 10)
    started = time.monotonic()
    for _ in range(3):
        time.sleep(0.1)
        s.sendall(b"y")
    reply = s.recv(4096).decode()
    assert reply.startswith("HTTP/1.1 408") and "not received within 0.5s" in reply
    assert time.monotonic() - started < 3
    s.close()
    assert post(f).status_code == 204


def test_slow_header_trickle_is_disconnected(fwd_factory: Any) -> None:
    f = fwd_factory(idle_timeout=1.0)
    s = _raw(f.port)  # type: ignore[arg-type]
    s.sendall(b"POST /api/v1/write HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    started = time.monotonic()
    closed = False
    while time.monotonic() - started < 5:
        try:
            s.sendall(b"X")
            s.settimeout(0.2)
            if s.recv(1024) == b"":
                closed = True
                break
        except TimeoutError:
            continue
        except OSError:
            closed = True
            break
    assert closed and time.monotonic() - started < 4
    s.close()
    assert post(f).status_code == 204


# ------------------------------------------------------------------------------ resources
def _in_threads(n: int, fn: Any) -> tuple[list[Any], list[threading.Thread]]:
    results: list[Any] = []
    threads = [threading.Thread(target=lambda: results.append(fn())) for _ in range(n)]
    for t in threads:
        t.start()
    return results, threads


def test_in_flight_limit_answers_503_when_saturated(emu: Emulators, fwd_factory: Any) -> None:
    f = fwd_factory(max_in_flight=2)
    emu.faults.push(delay=1.5, count=2)  # a stalled upstream
    results, threads = _in_threads(2, lambda: post(f).status_code)
    time.sleep(0.4)
    assert f.in_flight == 2
    r = post(f)
    assert r.status_code == 503 and r.headers["Retry-After"] == "1" and "busy" in one_line(r)
    for t in threads:
        t.join()
    assert results == [204, 204]


def test_buffered_bytes_are_bounded(emu: Emulators, fwd_factory: Any) -> None:
    f = fwd_factory(max_body_bytes=200_000, max_buffered_bytes=250_000, max_in_flight=10)
    body = b"\x01" * 150_000
    emu.faults.push(delay=1.5)
    results, threads = _in_threads(1, lambda: post(f, body).status_code)
    time.sleep(0.4)
    r = post(f, body)  # 150 kB held + 150 kB would exceed 250 kB
    assert r.status_code == 503 and "busy" in one_line(r)
    for t in threads:
        t.join()
    assert results == [204]
    assert post(f, body).status_code == 204


def test_graceful_shutdown_drains_in_flight(emu: Emulators, lab: Any) -> None:
    f = start_forwarder(lab, forwarder_config(emu.env()))
    emu.faults.push(delay=1.0)
    results, threads = _in_threads(1, lambda: post(f).status_code)
    time.sleep(0.3)
    started = time.monotonic()
    stop_forwarder(lab, f)
    assert time.monotonic() - started >= 0.5  # waited for the request
    threads[0].join()
    assert results == [204]
    with pytest.raises(requests.ConnectionError):
        post(f, timeout=2)


# --------------------------------------------------------------------------------- tokens
def test_token_refresh_at_half_life_and_failure_handling(emu: Emulators, fwd_factory: Any,
                                                         clean_env: pytest.MonkeyPatch) -> None:
    short = imds.make_app(emu.world.state, emu.world.issuer, token_lifetime_s=2)
    ep = emu.lab.add("imds-short", short)
    clean_env.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", ep.url)
    f = fwd_factory(no_token_retry_after_s=3)
    time.sleep(1.4)  # past half life: refreshed once
    assert len(imds.request_log(short)) >= 2
    assert post(f).status_code == 204
    # IMDS goes away: the refresh fails, the still-valid token keeps working...
    clean_env.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://127.0.0.1:9")
    time.sleep(1.0)
    # ...until it expires: then 503 (never a 2xx, never a 4xx), and not ready.
    deadline = time.monotonic() + 5
    r = post(f)
    while r.status_code == 204 and time.monotonic() < deadline:
        time.sleep(0.2)
        r = post(f)
    assert r.status_code == 503 and r.headers["Retry-After"] == "3" and "no valid Entra token" in one_line(r)
    assert requests.get(forwarder_url(f, "/ready"), timeout=5).status_code == 503
    metrics = requests.get(forwarder_url(f, "/metrics"), timeout=5).text
    assert re.search(r"^promrw_forwarder_token_refresh_failures_total [1-9]", metrics, re.M)
    # IMDS is back: the backoff retry gets a token and service resumes.
    clean_env.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", ep.url)
    deadline = time.monotonic() + 6
    while requests.get(forwarder_url(f, "/ready"), timeout=5).status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert post(f).status_code == 204


# -------------------------------------------------------------------------------- logging
SUMMARY_RE = re.compile(
    r'^time="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ" level=info msg="Metric packets published in last 1 minute" '
    r"avgBytesPerRequest=(\d+) avgRequestDurationInSec=(\d+\.\d{3}) failedPublishing=(\d+) "
    r"successfullyPublished=(\d+)$")


def test_minute_summary_line_in_the_sidecar_format(emu: Emulators, fwd_factory: Any,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="promrw_doctor.forwarder")
    f = fwd_factory(summary_interval_s=0.5)
    body = canary_body()
    assert post(f, body).status_code == 204
    assert post(f, body).status_code == 204
    emu.faults.push(500)
    assert post(f, body).status_code == 503
    time.sleep(1.2)
    lines = [LogrusFormatter().format(r) for r in caplog.records if r.getMessage().startswith("Metric packets")]
    parsed = [SUMMARY_RE.match(line) for line in lines]
    assert lines and all(parsed), lines
    assert sum(int(m.group(4)) for m in parsed if m) == 2
    assert sum(int(m.group(3)) for m in parsed if m) == 1
    busy = next(m for m in parsed if m and int(m.group(4)))
    assert int(busy.group(1)) == len(body)


def test_connection_cap_refuses_extra_connections_cheaply(fwd_factory: Any) -> None:
    f = fwd_factory(max_in_flight=1, max_connections=2)
    held = [_raw(f.port) for _ in range(2)]  # type: ignore[arg-type]
    time.sleep(0.2)
    r = post(f)
    assert r.status_code == 503 and r.headers["Retry-After"] == "1" and "too many connections" in one_line(r)
    for s in held:
        s.close()
    time.sleep(0.2)
    assert post(f).status_code == 204
    metrics = requests.get(forwarder_url(f, "/metrics"), timeout=5).text
    assert 'promrw_forwarder_rejected_total{reason="connections"} 1' in metrics


def test_expect_100_continue(fwd: Forwarder) -> None:
    body = canary_body()
    s = _raw(fwd.port)  # type: ignore[arg-type]
    s.sendall((f"POST /api/v1/write HTTP/1.1\r\nHost: x\r\nContent-Encoding: snappy\r\n"
               f"Content-Type: application/x-protobuf\r\nExpect: 100-continue\r\nContent-Length: {len(body)}\r\n\r\n")
              .encode())
    assert s.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
    s.sendall(body)
    assert s.recv(200).startswith(b"HTTP/1.1 204")
    s.close()
