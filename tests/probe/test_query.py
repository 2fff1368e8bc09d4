"""The PromQL client: strict parsing, the one-__name__ rule, and each failure told apart (real loopback servers)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web

from promrw_doctor.lab.server import LabServer
from promrw_doctor.probe.query import (
    NotPrometheus,
    QueryClient,
    QueryRefused,
    QueryRejected,
    QueryTransient,
    QueryUnreachable,
    name_matchers,
    parse_vector,
    series_selector,
)
from promrw_doctor.probe.runner import canary_selector

OK = b'{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"m"},"value":[1.5,"7"]}]}}'


class FakeToken:
    def __init__(self, token: str) -> None:
        self.token = token


class Cred:
    """A credential double: counts get_token calls (the seam is azure-identity's get_token protocol)."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def get_token(self, scope: str) -> FakeToken:
        self.calls.append(scope)
        return FakeToken(f"tok-{len(self.calls)}")


def test_canary_selector_has_exactly_one_name_matcher() -> None:
    sel = canary_selector('aks "prod"')
    assert sel == 'promrw_doctor_canary{cluster="aks \\"prod\\"",source="promrw-doctor"}'
    assert name_matchers(sel) == 1
    assert name_matchers('{__name__="a", x="__name__=b"}') == 1
    assert name_matchers('a{__name__=~"b"}') == 2
    assert name_matchers('{job="x"}') == 0
    with pytest.raises(ValueError):
        series_selector("bad-name", {})
    with pytest.raises(ValueError):
        series_selector("m", {"__name__": "x"})


def test_parse_vector() -> None:
    [s] = parse_vector("e", 200, OK)
    assert (s.labels, s.value, s.at) == ({"__name__": "m"}, "7", 1.5)
    assert parse_vector("e", 200, b'{"status":"success","data":{"resultType":"vector","result":[]}}') == []
    for body in (b'{"hello":"world"}', b"<!doctype html><html></html>", b'{"status":"success","data":[]}',
                 b'{"status":"success","data":{"resultType":"vector","result":[{"metric":{}}]}}', b"[1,2]"):
        with pytest.raises(NotPrometheus):
            parse_vector("e", 200, body)
    with pytest.raises(QueryRejected):
        parse_vector("e", 400, b'{"status":"error","errorType":"bad_data","error":"parse error"}')
    with pytest.raises(QueryTransient):
        parse_vector("e", 503, b'{"status":"error","errorType":"unavailable","error":"busy"}')


@pytest.fixture
def server() -> Iterator[LabServer]:
    with LabServer() as srv:
        yield srv


def serve(server: LabServer, handler: Any) -> str:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    return str(server.add(f"q{id(handler)}", app).url)


def test_instant_query_sends_time_and_bearer_and_reuses_the_token(server: LabServer) -> None:
    seen: list[tuple[str, str | None, str | None]] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append((request.query["query"], request.query.get("time"), request.headers.get("Authorization")))
        return web.Response(body=OK, content_type="application/json")

    cred = Cred()
    client = QueryClient(serve(server, handler), credential=cred, audience="https://prometheus.monitor.azure.com")
    client.instant("m", at_s=1795000000.123)
    client.instant("m")
    assert seen == [("m", "1795000000.123", "Bearer tok-1"), ("m", None, "Bearer tok-1")]
    assert cred.calls == ["https://prometheus.monitor.azure.com/.default"]
    assert client.queries == 2


def test_401_refreshes_once_then_refused_with_azure_code(server: LabServer) -> None:
    calls = []

    async def handler(request: web.Request) -> web.Response:
        calls.append(request.headers.get("Authorization"))
        return web.json_response({"error": {"code": "AuthorizationFailed", "message": "no Monitoring Data Reader"}},
                                 status=403 if len(calls) > 1 else 401)

    cred = Cred()
    client = QueryClient(serve(server, handler), credential=cred, audience="https://q")
    with pytest.raises(QueryRefused) as info:
        client.instant("m")
    assert calls == ["Bearer tok-1", "Bearer tok-2"]
    assert info.value.status == 403 and info.value.code == "AuthorizationFailed"
    assert "tok-" not in str(info.value)


def test_non_prometheus_json_and_html_and_redirects(server: LabServer) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        if request.path.startswith("/json"):
            return web.json_response({"hello": "world"})
        if request.path.startswith("/html"):
            return web.Response(text="<!DOCTYPE html><html>portal</html>", content_type="text/html")
        raise web.HTTPFound("/elsewhere")

    base = serve(server, handler)
    for path, words in (("/json", "status"), ("/html", "HTML"), ("/redirect", "redirect")):
        with pytest.raises(NotPrometheus, match=words):
            QueryClient(base + path, credential=None, audience="https://q").instant("m")


def test_unreachable_says_which_layer(server: LabServer) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(QueryUnreachable) as info:
        QueryClient(f"http://127.0.0.1:{port}", credential=None, audience="https://q", timeout=(2, 2)).instant("m")
    assert info.value.layer == "connect" and info.value.kind == "unreachable"


def test_transient_5xx_and_429_are_retryable(server: LabServer) -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.json_response({"error": {"code": "TooManyRequests", "message": "slow"}}, status=429)

    with pytest.raises(QueryTransient, match="429"):
        QueryClient(serve(server, handler), credential=None, audience="https://q").instant("m")


def test_credential_failure_is_a_refusal_without_a_request(server: LabServer) -> None:
    hits = []

    async def handler(request: web.Request) -> web.Response:
        hits.append(1)
        return web.Response(body=OK)

    class Broken:
        def get_token(self, scope: str) -> Any:
            raise RuntimeError("no credential configured")

    with pytest.raises(QueryRefused) as info:
        QueryClient(serve(server, handler), credential=Broken(), audience="https://q").instant("m")
    assert info.value.code == "no-token" and hits == []
