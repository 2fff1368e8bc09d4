"""send_canary: the probe's write path, with its three error kinds (token / network / http)."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl

import pytest
from azure.identity import ManagedIdentityCredential

import promrw_doctor.remote_write as rw
from promrw_doctor.forwarder.http1 import ProtocolError
from promrw_doctor.forwarder.send import send_canary, send_canary_async
from promrw_doctor.forwarder.upstream import classify
from promrw_doctor.lab.emulators import ingestion

from .harness import AUDIENCE, Emulators, forwarder_config
from .test_server import PLANTED


def test_canary_accepted_with_claims(emu: Emulators) -> None:
    cfg = forwarder_config(emu.env())
    res = send_canary(cfg)
    assert res.ok and res.status == 204 and res.error is None
    assert res.canary is not None and res.canary.cluster == "fwd-test"
    assert emu.ingestion_log.bodies[-1] == res.canary.body
    assert res.latency_ms is not None and res.latency_ms > 0 and res.token_ms is not None
    c = res.claims
    assert c is not None
    assert (c.aud, c.tid, c.oid, c.appid) == (AUDIENCE, emu.world.state.tenant_id, emu.world.uami.principal_id,
                                              emu.world.uami.client_id)
    assert c.exp and c.exp > 0
    doc = json.dumps(res.to_dict())
    assert "eyJ" not in doc and str(res.canary.nonce) in doc
    assert res.summary().startswith("accepted: HTTP 204")


def test_token_error(emu: Emulators, clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://127.0.0.1:9")
    res = send_canary(forwarder_config(emu.env()))
    assert not res.ok and res.error is not None
    assert res.error.kind == "token" and res.error.token_category == "unavailable"
    assert "userAssigned (client id" in res.error.detail and res.status is None
    assert emu.ingestion_log.records == []


def test_network_connect_error(emu: Emulators) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/dataCollectionRules/x/streams/y/api/v1/write"
    res = send_canary(forwarder_config(emu.env(INGESTION_URL=url)))
    assert res.error is not None and (res.error.kind, res.error.network) == ("network", "connect")
    assert res.claims is not None  # the token was fine: it is shown to tell the layers apart


def test_network_timeout(emu: Emulators) -> None:
    emu.faults.push(delay=2.0)
    res = send_canary(forwarder_config(emu.env()), timeout=0.5)
    assert res.error is not None and (res.error.kind, res.error.network) == ("network", "timeout")


def test_tls_untrusted_then_trusted(emu: Emulators) -> None:
    app = ingestion.make_app(emu.world.state, emu.world.issuer, emu.world.dce, receiver_url=None,
                             audience=AUDIENCE)
    ep = emu.lab.add("ingestion-tls", app, ssl_context=emu.certs.ca.issue_server().ssl_context())
    env = emu.env(INGESTION_URL=emu.ingestion_url(ep))
    res = send_canary(forwarder_config(env))
    assert res.error is not None and (res.error.kind, res.error.network) == ("network", "tls")
    res = send_canary(forwarder_config(env, ca_bundle=str(emu.certs.ca_bundle)))
    assert res.ok, res.summary()


def test_http_error_body_is_redacted(emu: Emulators) -> None:
    emu.faults.push(403, body={"error": {"code": "AuthorizationFailed", "token": PLANTED}},
                    headers={"x-ms-request-id": "req-123"})
    res = send_canary(forwarder_config(emu.env()))
    assert res.error is not None and res.error.kind == "http" and res.error.status == 403
    assert res.request_id == "req-123"
    assert res.error.body_excerpt is not None and "AuthorizationFailed" in res.error.body_excerpt
    assert PLANTED not in json.dumps(res.to_dict()) and PLANTED not in res.summary()


def test_401_then_success_refreshes_once(emu: Emulators) -> None:
    emu.faults.push(401)
    res = send_canary(forwarder_config(emu.env()))
    assert res.ok and res.token_refreshed_after_401


def test_callers_credential_and_custom_samples(emu: Emulators) -> None:
    cred = ManagedIdentityCredential(client_id=emu.world.uami.client_id, retry_total=0)
    samples = [rw.series("probe_custom", {"k": "v"}, [(rw.builders.now_ms(), 42.0)])]
    res = send_canary(forwarder_config(emu.env()), credential=cred, samples=samples)
    assert res.ok and res.canary is None and res.samples == 1
    assert "caller's credential" in res.identity
    sent = rw.decode(emu.ingestion_log.bodies[-1])
    assert sent.timeseries[0].samples[0].value == 42.0


def test_works_inside_a_running_event_loop(emu: Emulators) -> None:
    cfg = forwarder_config(emu.env())

    async def inside() -> bool:
        return send_canary(cfg).ok

    assert asyncio.run(inside())
    assert asyncio.run(send_canary_async(cfg)).ok


def test_missing_cluster_is_a_config_error(emu: Emulators) -> None:
    env = emu.env()
    env.pop("CLUSTER")
    res = send_canary(forwarder_config(env))
    assert res.error is not None and res.error.kind == "config" and "cluster" in res.error.detail


def test_classify_network_errors() -> None:
    assert classify(socket.gaierror(-2, "Name or service not known"), "ingest.example")[0] == "dns"
    assert classify(ConnectionRefusedError(111, "Connection refused"), "ingest.example", 443) == (
        "connect", "cannot connect to ingest.example:443: connection refused")
    assert classify(TimeoutError())[0] == "timeout"
    assert classify(ConnectionResetError())[0] == "reset"
    assert classify(ssl.SSLCertVerificationError(1, "certificate verify failed"))[0] == "tls"
    assert classify(ProtocolError("not an HTTP/1.x status line"))[0] == "reset"
