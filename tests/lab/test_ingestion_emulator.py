"""Ingestion and query emulators: every refusal Azure can answer, fault injection, and a real data path."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
import requests

from promrw_doctor.lab.emulators import ingestion, query
from promrw_doctor.lab.prometheus import PrometheusProcess, free_port
from promrw_doctor.lab.server import Endpoint, LabServer
from promrw_doctor.remote_write import HEADERS, build_write_request, encode, series

from .conftest import INGESTION_AUDIENCE, QUERY_AUDIENCE, LabPki, World

PUBLISHER = "Monitoring Metrics Publisher"
READER = "Monitoring Data Reader"


def _body(name: str = "promrw_lab_probe", **labels: str) -> bytes:
    return encode(build_write_request([series(name, labels, value=42.0)]))


class Ingest:
    """A served ingestion app plus a helper that posts like the sidecar does."""

    def __init__(self, ep: Endpoint, app: object, world: World, lab_pki: LabPki) -> None:
        self.ep, self.app, self.world, self.verify = ep, app, world, str(lab_pki.ca_bundle)

    def url(
        self,
        dcr: str | None = None,
        *,
        api_version: str | None = "2023-04-24",
        stream: str = "Microsoft-PrometheusMetrics",
    ) -> str:
        qs = f"?api-version={api_version}" if api_version else ""
        return (
            f"{self.ep.url}/dataCollectionRules/{dcr or self.world.dcr.immutable_id}/streams/{stream}"
            f"/api/v1/write{qs}"
        )

    def post(self, token: str | None, *, body: bytes | None = None, **kw: object) -> requests.Response:
        headers = dict(HEADERS)
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return requests.post(
            self.url(**kw),
            data=body if body is not None else _body(),  # type: ignore[arg-type]
            headers=headers,
            verify=self.verify,
            timeout=10,
        )

    @property
    def log(self) -> ingestion.IngestionLog:
        return ingestion.request_log(self.app)  # type: ignore[arg-type]


@pytest.fixture
def ingest(lab_server: LabServer, lab_pki: LabPki, world: World) -> Ingest:
    app = ingestion.make_app(
        world.state, world.issuer, world.dce, receiver_url=None, audience=INGESTION_AUDIENCE
    )
    ep = lab_server.add("ingestion", app, ssl_context=lab_pki.server_ssl)
    return Ingest(ep, app, world, lab_pki)


@pytest.fixture
def publisher(world: World) -> str:
    """A principal with an effective Monitoring Metrics Publisher on the DCR; returns its object id."""
    world.grant(world.uami.principal_id, PUBLISHER, world.dcr.id)
    return world.uami.principal_id


def test_accepted_write_is_recorded_without_the_token(
    ingest: Ingest, publisher: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token = ingest.world.token(publisher, client_id=ingest.world.uami.client_id)
    body = _body()
    r = ingest.post(token, body=body)
    assert r.status_code == 204, r.text
    rec = ingest.log.records[-1]
    assert (rec.status, rec.outcome, rec.dcr, rec.principal, rec.client_id, rec.bytes) == (
        204,
        "ok",
        ingest.world.dcr.immutable_id,
        publisher,
        ingest.world.uami.client_id,
        len(body),
    )
    assert list(ingest.log.bodies) == [body]
    assert token not in caplog.text and token not in repr(ingest.log.records)


@pytest.mark.parametrize(
    "case,code",
    [
        ("missing", "InvalidToken"),
        ("expired", "TokenExpired"),
        ("audience", "InvalidAudience"),
        ("tenant", "InvalidTenant"),
        ("signature", "InvalidToken"),
    ],
)
def test_unauthorized(ingest: Ingest, publisher: str, case: str, code: str) -> None:
    from promrw_doctor.lab.tokens import TokenIssuer

    w = ingest.world
    tokens = {
        "missing": None,
        "expired": w.token(publisher, not_before=int(time.time()) - 7200, lifetime_s=3600),
        "audience": w.token(publisher, audience="https://management.core.windows.net/"),
        "tenant": w.token(publisher, tenant_id="11111111-1111-1111-1111-111111111111"),
        "signature": TokenIssuer(w.state.tenant_id).mint(
            audience=INGESTION_AUDIENCE, client_id="c", principal_id=publisher
        )[0],
    }
    r = ingest.post(tokens[case])
    assert r.status_code == 401
    assert r.json()["error"]["code"] == code
    www = r.headers["WWW-Authenticate"]
    assert www.startswith("Bearer ") and f"/{w.state.tenant_id}" in www
    assert (case == "missing") != ('error="invalid_token"' in www)
    token = tokens[case]
    assert token is None or token not in r.text
    assert ingest.log.records[-1].outcome == f"unauthorized:{case}"


def test_no_role_is_403_naming_the_action(ingest: Ingest) -> None:
    w = ingest.world
    w.grant(w.uami.principal_id, READER, w.workspace.id)  # the wrong role does not help
    w.grant(w.uami.principal_id, PUBLISHER, w.other_dcr.id)  # nor the right role on another DCR
    r = ingest.post(w.token(w.uami.principal_id, client_id=w.uami.client_id))
    assert r.status_code == 403
    err = r.json()["error"]
    assert err["code"] == "AuthorizationFailed"
    assert (
        "does not have authorization to perform action 'Microsoft.Insights/Metrics/Write'" in err["message"]
    )
    assert w.dcr.id in err["message"] and w.uami.principal_id in err["message"]
    assert ingest.log.records[-1].outcome == "forbidden"


def test_role_on_parent_scope_counts(ingest: Ingest) -> None:
    w = ingest.world
    w.grant(w.app.sp_object_id, PUBLISHER, w.rg_id)
    assert ingest.post(w.token(w.app.sp_object_id)).status_code == 204


def test_role_propagation_delay(ingest: Ingest) -> None:
    w = ingest.world
    ra = w.grant(w.uami.principal_id, PUBLISHER, w.dcr.id, age=timedelta(minutes=5))
    token = w.token(w.uami.principal_id)
    r = ingest.post(token)
    assert r.status_code == 403 and ingest.log.records[-1].outcome == "role-not-propagated"
    ra.created_on = w.state.now() - timedelta(minutes=31)
    assert ingest.post(token).status_code == 204


def test_unknown_dcr_and_dcr_of_another_dce(ingest: Ingest, publisher: str) -> None:
    w = ingest.world
    token = w.token(publisher)
    r = ingest.post(token, dcr="dcr-" + uuid.uuid4().hex)
    assert r.status_code == 404 and r.json()["error"]["code"] == "DataCollectionRuleNotFound"
    w.grant(publisher, PUBLISHER, w.other_dcr.id)
    r = ingest.post(token, dcr=w.other_dcr.immutable_id)
    assert r.status_code == 404


def test_stream_and_api_version(ingest: Ingest, publisher: str) -> None:
    w = ingest.world
    token = w.token(publisher)
    r = ingest.post(token, api_version=None)
    assert r.status_code == 400 and r.json()["error"]["code"] == "MissingApiVersionParameter"
    r = ingest.post(token, api_version="2019-01-01")
    assert r.status_code == 400 and r.json()["error"]["code"] == "InvalidApiVersionParameter"
    assert ingest.post(token, api_version="2021-11-01-preview").status_code == 204
    r = ingest.post(token, stream="Custom-Stream")
    assert r.status_code == 400 and r.json()["error"]["code"] == "InvalidStream"
    w.dcr.streams = ["Microsoft-Syslog"]
    assert ingest.post(token).status_code == 400


def test_throttle_429_with_retry_after(ingest: Ingest, publisher: str) -> None:
    w = ingest.world
    w.state.throttle = True
    w.state.throttle_retry_after_s = 7
    r = ingest.post(w.token(publisher))
    assert r.status_code == 429 and r.headers["Retry-After"] == "7"
    assert r.json()["error"]["code"] == "TooManyRequests"
    w.state.throttle = False
    assert ingest.post(w.token(publisher)).status_code == 204
    assert ingest.log.by_status == {429: 1, 204: 1}


def test_fault_queue(ingest: Ingest, publisher: str) -> None:
    w = ingest.world
    token = w.token(publisher)
    faults = ingestion.faults(ingest.app)  # type: ignore[arg-type]
    pusher = threading.Thread(
        target=lambda: faults.push(503, headers={"Retry-After": "1"}, body="busy", count=2)
    )
    pusher.start()
    pusher.join()
    faults.push(reset=True)
    faults.push(None, delay=0.3)  # slow, then normal processing
    faults.push(200, body={"forced": True})
    assert len(faults) == 5
    r1, r2 = ingest.post(token), ingest.post(token)
    assert (r1.status_code, r1.headers["Retry-After"], r1.text) == (503, "1", "busy")
    assert r2.status_code == 503
    with pytest.raises(requests.ConnectionError):
        ingest.post(token)
    started = time.monotonic()
    assert ingest.post(token).status_code == 204
    assert time.monotonic() - started >= 0.3
    assert ingest.post(None).json() == {"forced": True}  # forced responses precede every check
    assert ingest.post(token).status_code == 204
    assert [r.outcome for r in ingest.log.records] == ["forced", "forced", "reset", "ok", "forced", "ok"]


def test_handler_bug_becomes_json_500(
    ingest: Ingest, publisher: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*_: object, **__: object) -> bool:
        raise RuntimeError("lab bug")

    monkeypatch.setattr(ingest.world.state, "has_role", boom)
    r = ingest.post(ingest.world.token(publisher))
    assert r.status_code == 500 and r.json()["error"]["code"] == "InternalServerError"


# ------------------------------------------------------------------------------------ query
@pytest.fixture
def query_ep(lab_server: LabServer, lab_pki: LabPki, world: World) -> Endpoint:
    # A port nobody listens on: only refusals are exercised here; the data path is in the slow test.
    app = query.make_app(
        world.state,
        world.issuer,
        world.workspace,
        receiver_url=f"http://127.0.0.1:{free_port()}",
        audience=QUERY_AUDIENCE,
    )
    return lab_server.add("query", app, ssl_context=lab_pki.server_ssl)


def _q(ep: Endpoint, lab_pki: LabPki, token: str | None) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(
        f"{ep.url}/api/v1/query",
        params={"query": "up"},
        headers=headers,
        verify=str(lab_pki.ca_bundle),
        timeout=5,
    )


def test_query_refusals(query_ep: Endpoint, lab_pki: LabPki, world: World) -> None:
    reader = world.app.sp_object_id
    assert _q(query_ep, lab_pki, None).status_code == 401
    r = _q(query_ep, lab_pki, world.token(reader))  # an ingestion token is the wrong audience
    assert r.status_code == 401 and r.json()["error"]["code"] == "InvalidAudience"
    r = _q(query_ep, lab_pki, world.token(reader, audience=QUERY_AUDIENCE))
    assert (
        r.status_code == 403
        and "Microsoft.Monitor/accounts/data/metrics/read" in r.json()["error"]["message"]
    )
    world.grant(reader, READER, world.workspace.id)
    r = _q(query_ep, lab_pki, world.token(reader, audience=QUERY_AUDIENCE))
    assert r.status_code == 503  # authorized: reaches the (absent) receiver
    world.state.doctor_app_id = world.app.app_id
    world.state.doctor_denied = {"query:read"}
    r = _q(query_ep, lab_pki, world.token(reader, audience=QUERY_AUDIENCE, client_id=world.app.app_id))
    assert r.status_code == 403


# ------------------------------------------------------------------------------ data path
@pytest.mark.slow
def test_write_through_ingestion_then_query(
    lab_server: LabServer, lab_pki: LabPki, world: World, tmp_path: Path
) -> None:
    """A snappy+protobuf body goes ingestion -> real Prometheus receiver -> query endpoint."""
    with PrometheusProcess.receiver(tmp_path / "receiver") as receiver:
        app = ingestion.make_app(
            world.state, world.issuer, world.dce, receiver_url=receiver.url, audience=INGESTION_AUDIENCE
        )
        ing = Ingest(lab_server.add("ingestion", app, ssl_context=lab_pki.server_ssl), app, world, lab_pki)
        qapp = query.make_app(
            world.state, world.issuer, world.workspace, receiver_url=receiver.url, audience=QUERY_AUDIENCE
        )
        qep = lab_server.add("query", qapp, ssl_context=lab_pki.server_ssl)
        world.grant(world.uami.principal_id, PUBLISHER, world.dcr.id)
        world.grant(world.app.sp_object_id, READER, world.workspace.id)
        run = uuid.uuid4().hex[:12]
        r = ing.post(world.token(world.uami.principal_id), body=_body(run=run))
        assert r.status_code == 204, r.text
        assert ing.log.records[-1].upstream_status == 204
        # The receiver's own 400 passes through unchanged (framed/garbage snappy).
        bad = ing.post(world.token(world.uami.principal_id), body=b"\xff\x06\x00\x00sNaPpY garbage")
        assert bad.status_code == 400 and "snappy" in bad.text
        assert ing.log.records[-1].outcome == "rejected"
        token = world.token(world.app.sp_object_id, audience=QUERY_AUDIENCE)
        resp = requests.post(
            f"{qep.url}/api/v1/query",
            data={"query": f'promrw_lab_probe{{run="{run}"}}'},
            headers={"Authorization": f"Bearer {token}"},
            verify=str(lab_pki.ca_bundle),
            timeout=5,
        )
        result = resp.json()["data"]["result"]
        assert [(x["metric"]["run"], x["value"][1]) for x in result] == [(run, "42")]
        names = requests.get(
            f"{qep.url}/api/v1/label/__name__/values",
            headers={"Authorization": f"Bearer {token}"},
            verify=str(lab_pki.ca_bundle),
            timeout=5,
        ).json()["data"]
        assert "promrw_lab_probe" in names


@pytest.mark.slow
def test_real_prometheus_sender_through_ingestion(
    lab_server: LabServer, lab_pki: LabPki, world: World, tmp_path: Path
) -> None:
    """Prometheus remote-writes (bearer token, lab CA) through the ingestion emulator into a receiver."""
    with PrometheusProcess.receiver(tmp_path / "receiver") as receiver:
        app = ingestion.make_app(
            world.state, world.issuer, world.dce, receiver_url=receiver.url, audience=INGESTION_AUDIENCE
        )
        ep = lab_server.add("ingestion", app, ssl_context=lab_pki.server_ssl)
        world.grant(world.uami.principal_id, PUBLISHER, world.dcr.id)
        url = (
            f"{ep.url}/dataCollectionRules/{world.dcr.immutable_id}/streams/Microsoft-PrometheusMetrics"
            "/api/v1/write?api-version=2023-04-24"
        )
        token = world.token(world.uami.principal_id)
        with PrometheusProcess.sender(
            tmp_path / "sender",
            url,
            external_labels={"cluster": "lab-e2e"},
            extra_remote_write={
                "authorization": {"type": "Bearer", "credentials": token},
                "tls_config": {"ca_file": str(lab_pki.ca_bundle)},
            },
        ):
            receiver.wait_for('count({cluster="lab-e2e"}) > 10', timeout=30)
        log = ingestion.request_log(app)
        assert log.accepted >= 1 and {r.principal for r in log.records} == {world.uami.principal_id}
