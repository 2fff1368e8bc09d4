"""AzureHttp's error mapping over real HTTP(S) on loopback with real ``requests``.

401/403 -> AccessDenied naming the permission; 404 -> None; 5xx/429 retried once then an
error; a 2xx that is not JSON -> exit-2 input error for ARM, an error elsewhere; DNS/connect/
TLS -> Unreachable; a credential that cannot get a token -> AccessDenied naming how to give
the doctor one (asked once per audience).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest
from aiohttp import web

from promrw_doctor.collectors.azure_http import (
    ARM,
    CREDENTIAL_NEEDS,
    GRAPH,
    AzureApiError,
    AzureHttp,
    UnexpectedArmAnswer,
    arm_needs,
    keyvault_audience,
)
from promrw_doctor.core import AccessDenied, InputError, Unreachable
from promrw_doctor.domain.clouds import PUBLIC, USGOV
from promrw_doctor.lab.pki import CertificateAuthority
from promrw_doctor.lab.server import LabServer


@dataclass
class FakeToken:
    token: str
    expires_on: int


class Credential:
    """A TokenCredential (the ``azure_credential`` option's seam): hands out opaque tokens, counts calls."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def get_token(self, scope: str, **kw: Any) -> FakeToken:
        self.calls.append((scope, kw))
        if self.fail:
            raise RuntimeError("DefaultAzureCredential failed to retrieve a token from the included credentials.\n"
                               "Attempted credentials:\n\tEnvironmentCredential: not configured")
        return FakeToken("opaque-test-token-value", int(time.time()) + 3600)


@dataclass
class Served:
    url: str
    hits: dict[str, int]
    auth: list[str]


@pytest.fixture(scope="module")
def server() -> Iterator[Served]:
    hits: dict[str, int] = {}
    auth: list[str] = []

    async def handle(request: web.Request) -> web.StreamResponse:
        path = request.path
        hits[path] = hits.get(path, 0) + 1
        auth.append(request.headers.get("Authorization", ""))
        n = hits[path]
        if path.endswith("/html"):
            return web.Response(text="<html><body>Sign in</body></html>", content_type="text/html")
        if path == "/list-not-json-object":
            return web.json_response([1, 2])
        if path == "/no-value":
            return web.json_response({"items": []})
        if path == "/denied":
            return web.json_response({"error": {"code": "AuthorizationFailed", "message": "The client 'x' does not "
                                                "have authorization to perform action 'a' over scope 's'."}},
                                     status=403)
        if path == "/unauthorized":
            return web.json_response({"error": {"code": "InvalidAuthenticationTokenAudience",
                                                "message": "wrong audience"}}, status=401)
        if path == "/missing":
            return web.json_response({"error": {"code": "ResourceNotFound", "message": "nope"}}, status=404)
        if path == "/flaky":
            if n == 1:
                return web.json_response({"error": {"code": "ServerBusy"}}, status=503, headers={"Retry-After": "0"})
            return web.json_response({"value": [{"id": "a"}]})
        if path == "/broken":
            return web.json_response({"error": {"code": "InternalServerError", "message": "boom"}}, status=500,
                                     headers={"Retry-After": "0"})
        if path == "/bad-request":
            return web.json_response({"error": {"code": "InvalidApiVersionParameter", "message": "bad"}},
                                     status=400)
        if path == "/paged":
            page = request.query.get("page", "1")
            base = f"{request.scheme}://{request.host}"
            if page == "1":
                return web.json_response({"value": [{"id": "p1"}], "nextLink": f"{base}/paged?page=2"})
            if page == "2":
                return web.json_response({"value": [{"id": "p2"}], "nextLink": "https://evil.example.com/paged?page=3"})
        return web.json_response({"value": []})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    with LabServer() as srv:
        ep = srv.add("fake", app)
        yield Served(ep.url, hits, auth)


def client(url: str, credential: Any = None, **kw: Any) -> AzureHttp:
    profile = replace(PUBLIC, arm_endpoint=url, graph_endpoint=url)
    return AzureHttp(profile, credential or Credential(), timeout=(2.0, 5.0), **kw)


def test_get_json_sends_the_doctors_token_and_reads_json(server: Served) -> None:
    cred = Credential()
    c = client(server.url, cred)
    assert c.arm_list("/ok", "2022-06-01", needs="n") == []
    assert server.auth[-1] == "Bearer opaque-test-token-value"
    assert cred.calls[0][0] == "https://management.core.windows.net/.default"
    c.arm("/ok", "2022-06-01", needs="n")
    assert len(cred.calls) == 1  # cached per audience
    assert c.calls[-1][0] == "GET" and "opaque" not in repr(c.calls)


def test_tenant_is_passed_to_the_credential(server: Served) -> None:
    cred = Credential()
    client(server.url, cred, tenant="t-1").arm("/ok", "1", needs="n")
    assert cred.calls[0][1] == {"tenant_id": "t-1"}


def test_403_names_the_permission(server: Served) -> None:
    needs = arm_needs("Microsoft.Insights/dataCollectionRules/read", "/subscriptions/s")
    with pytest.raises(AccessDenied) as err:
        client(server.url).arm("/denied", "1", needs=needs)
    assert err.value.needs == "Reader (Microsoft.Insights/dataCollectionRules/read) on /subscriptions/s"
    assert "AuthorizationFailed" in err.value.detail


def test_401_is_access_denied_too(server: Served) -> None:
    with pytest.raises(AccessDenied) as err:
        client(server.url).arm("/unauthorized", "1", needs="Reader on x")
    assert "token ARM accepts" in err.value.needs and "InvalidAuthenticationTokenAudience" in err.value.detail


def test_404_is_none(server: Served) -> None:
    assert client(server.url).arm("/missing", "1", needs="n") is None
    assert client(server.url).arm_list("/missing", "1", needs="n") is None


def test_server_errors_are_retried_once(server: Served) -> None:
    assert client(server.url).arm_list("/flaky", "1", needs="n") == [{"id": "a"}]
    assert server.hits["/flaky"] == 2
    with pytest.raises(AzureApiError) as err:
        client(server.url).arm("/broken", "1", needs="n")
    assert err.value.status == 500 and server.hits["/broken"] == 2
    with pytest.raises(AzureApiError, match="400 InvalidApiVersionParameter"):
        client(server.url).arm("/bad-request", "1", needs="n")


def test_unexpected_arm_answers_are_input_errors(server: Served) -> None:
    for path in ("/html", "/list-not-json-object"):
        with pytest.raises(UnexpectedArmAnswer) as err:
            client(server.url).arm(path, "1", needs="n")
        assert isinstance(err.value, InputError)
        assert str(err.value).startswith("unexpected answer from ARM: GET ") and "\n" not in str(err.value)
    with pytest.raises(UnexpectedArmAnswer, match="without a 'value' list"):
        client(server.url).arm_list("/no-value", "1", needs="n")


def test_unexpected_graph_answer_is_an_error_not_an_input_error(server: Served) -> None:
    with pytest.raises(AzureApiError) as err:
        client(server.url).graph("/html")
    assert not isinstance(err.value, InputError) and err.value.service == GRAPH


def test_next_link_followed_on_the_same_host_only(server: Served) -> None:
    assert client(server.url).arm_list("/paged", "1", needs="n") == [{"id": "p1"}, {"id": "p2"}]


def test_credential_failure_is_access_denied_asked_once(server: Served) -> None:
    cred = Credential(fail=True)
    c = client(server.url, cred)
    for _ in range(2):
        with pytest.raises(AccessDenied) as err:
            c.arm("/ok", "1", needs="n")
        assert err.value.needs == CREDENTIAL_NEEDS
        assert "EnvironmentCredential" in err.value.detail and "\n" not in err.value.detail
    assert len(cred.calls) == 1


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_connection_refused_is_unreachable() -> None:
    with pytest.raises(Unreachable) as err:
        client(f"http://127.0.0.1:{_closed_port()}").arm("/x", "1", needs="n")
    assert err.value.what.startswith(ARM) and "refused" in err.value.detail.lower()


def test_untrusted_tls_is_unreachable_and_says_how_to_trust(tmp_path: Any) -> None:
    ca = CertificateAuthority.create()

    async def empty(request: web.Request) -> web.Response:
        return web.json_response({})

    app = web.Application()
    app.router.add_get("/{tail:.*}", empty)
    with LabServer() as srv:
        ep = srv.add("tls", app, ssl_context=ca.issue_server().ssl_context())
        with pytest.raises(Unreachable) as err:
            client(ep.url, verify=True).arm("/x", "1", needs="n")
        assert "REQUESTS_CA_BUNDLE" in err.value.detail
        bundle = ca.write_bundle(tmp_path / "ca.pem")
        assert client(ep.url, verify=str(bundle)).arm("/x", "1", needs="n") == {}


def test_requests_ca_bundle_is_honoured(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "ca.pem"))
    assert client("https://127.0.0.1:1").verify == str(tmp_path / "ca.pem")


def test_keyvault_audience_per_cloud() -> None:
    assert keyvault_audience(PUBLIC) == "https://vault.azure.net"
    assert keyvault_audience(USGOV) == "https://vault.usgovcloudapi.net"
    assert keyvault_audience(replace(PUBLIC, extra={"keyvault_audience": "https://vault.x"})) == "https://vault.x"
