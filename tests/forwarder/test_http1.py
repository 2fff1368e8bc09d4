"""The forwarder's HTTP/1.1 upstream client against scripted raw-socket servers and a CONNECT proxy."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from promrw_doctor.forwarder.http1 import Http1Pool, ProtocolError
from promrw_doctor.forwarder.upstream import Upstream, UpstreamError

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, dict[str, Any]], Any]


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return lines[0].encode(), headers, body


@contextlib.asynccontextmanager
async def server(handler: Handler) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    state: dict[str, Any] = {"connections": 0, "requests": []}

    async def on_conn(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state["connections"] += 1
        try:
            await handler(reader, writer, state)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    srv = await asyncio.start_server(on_conn, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/dataCollectionRules/d/streams/s/api/v1/write?api-version=2023-04-24", state
    finally:
        srv.close()
        await srv.wait_closed()


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def _scripted(responses: list[bytes]) -> Handler:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, state: dict[str, Any]) -> None:
        while True:
            line, headers, body = await read_request(reader)
            state["requests"].append((line, headers, body))
            if not responses:
                return
            writer.write(responses.pop(0))
            await writer.drain()

    return handler


def test_request_shape_and_keep_alive_reuse() -> None:
    async def go() -> None:
        handler = await _scripted([b"HTTP/1.1 204 No Content\r\n\r\n"] * 3)
        async with server(handler) as (url, state):
            pool = Http1Pool(url)
            for _ in range(3):
                r = await pool.post(b"\x00\x01body", {"Authorization": "Bearer t", "Content-Encoding": "snappy"})
                assert r.status == 204 and r.reusable
            await pool.close()
            assert state["connections"] == 1
            line, headers, body = state["requests"][0]
            assert line == b"POST /dataCollectionRules/d/streams/s/api/v1/write?api-version=2023-04-24 HTTP/1.1"
            assert headers["host"] == url.split("/")[2] and headers["content-length"] == "6"
            assert headers["authorization"] == "Bearer t" and body == b"\x00\x01body"

    run(go())


@pytest.mark.parametrize(("raw", "status", "body", "reusable"), [
    (b"HTTP/1.1 400 Bad Request\r\nContent-Length: 13\r\n\r\nout of bounds", 400, b"out of bounds", True),
    (b"HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\nboom\r\n3\r\n!!!\r\n0\r\nX-T: 1\r\n\r\n",
     500, b"boom!!!", True),
    (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n", 204, b"", True),
    (b"HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 2\r\n\r\nno", 403, b"no", False),
    (b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", 200, b"", False),
    (b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", 200, b"", True),
])
def test_response_framing(raw: bytes, status: int, body: bytes, reusable: bool) -> None:
    async def go() -> None:
        handler = await _scripted([raw])
        async with server(handler) as (url, _):
            pool = Http1Pool(url)
            r = await pool.post(b"x", {})
            assert (r.status, r.body, r.reusable) == (status, body, reusable)
            await pool.close()

    run(go())


def test_close_delimited_body_and_excerpt_limit() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, state: dict[str, Any]) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 502 Bad Gateway\r\n\r\n" + b"z" * 10000)
        await writer.drain()
        writer.close()

    async def go() -> None:
        async with server(handler) as (url, _):
            pool = Http1Pool(url)
            r = await pool.post(b"x", {}, max_body=100)
            assert r.status == 502 and r.body == b"z" * 100 and not r.reusable
            await pool.close()

    run(go())


def test_large_error_body_is_not_drained_forever() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, state: dict[str, Any]) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 500 X\r\nContent-Length: 50000000\r\n\r\n" + b"a" * 8192)
        await writer.drain()
        await asyncio.sleep(5)

    async def go() -> None:
        async with server(handler) as (url, _):
            pool = Http1Pool(url)
            r = await asyncio.wait_for(pool.post(b"x", {}, max_body=64), 2)
            assert r.status == 500 and r.body == b"a" * 64 and not r.reusable
            await pool.close()

    run(go())


@pytest.mark.parametrize("raw", [b"SSH-2.0-OpenSSH_9.2\r\n", b"HTTP/1.1 abc Nope\r\n\r\n",
                                 b"HTTP/1.1 200 OK\r\nContent-Length: nope\r\n\r\n",
                                 b"HTTP/1.1 200 OK\r\nbroken header line\r\n\r\n"])
def test_garbage_is_a_protocol_error(raw: bytes) -> None:
    async def go() -> None:
        handler = await _scripted([raw])
        async with server(handler) as (url, _):
            pool = Http1Pool(url)
            with pytest.raises(ProtocolError):
                await pool.post(b"x", {})
            await pool.close()

    run(go())


def test_server_closing_an_idle_connection_is_retried_on_a_fresh_one() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, state: dict[str, Any]) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        await writer.drain()
        # then read the next request and close without answering (idle-timeout race)
        with contextlib.suppress(asyncio.IncompleteReadError):
            await read_request(reader)

    async def go() -> None:
        async with server(handler) as (url, state):
            up = Upstream(url, timeout=5)
            assert (await up.post(b"x", {})).status == 204
            assert (await up.post(b"x", {})).status == 204  # first try died on the reused connection
            assert state["connections"] == 2
            await up.close()

    run(go())


def test_upstream_error_kinds() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, state: dict[str, Any]) -> None:
        await read_request(reader)
        await asyncio.sleep(5)

    async def go() -> None:
        async with server(silent) as (url, _):
            up = Upstream(url, timeout=0.3)
            with pytest.raises(UpstreamError) as exc:
                await up.post(b"x", {})
            assert exc.value.kind == "timeout"
            await up.close()
        up = Upstream(url, timeout=2)
        with pytest.raises(UpstreamError) as exc:
            await up.post(b"x", {})
        assert exc.value.kind == "connect" and "connection refused" in exc.value.detail
        await up.close()

    run(go())


def test_https_through_an_env_proxy(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    from promrw_doctor.lab.pki import CertificateAuthority

    ca = CertificateAuthority.create()
    bundle = ca.write_bundle(tmp_path / "ca.pem")
    server_ssl = ca.issue_server().ssl_context()
    tunnels: list[bytes] = []

    async def origin(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                await read_request(reader)
                writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
                await writer.drain()

    async def pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await r.read(65536):
                w.write(data)
                await w.drain()
        w.close()

    async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        tunnels.append(head.split(b"\r\n")[0])
        host, _, port = head.split(b" ")[1].decode().rpartition(":")
        r2, w2 = await asyncio.open_connection(host, int(port))
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        await asyncio.gather(pipe(reader, w2), pipe(r2, writer))

    async def go() -> None:
        o = await asyncio.start_server(origin, "127.0.0.1", 0, ssl=server_ssl)
        p = await asyncio.start_server(proxy, "127.0.0.1", 0)
        oport, pport = o.sockets[0].getsockname()[1], p.sockets[0].getsockname()[1]
        monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{pport}")
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        up = Upstream(f"https://localhost:{oport}/api/v1/write", ca_bundle=str(bundle), timeout=5)
        assert (await up.post(b"x", {})).status == 204
        assert (await up.post(b"x", {})).status == 204
        await up.close()
        assert tunnels == [f"CONNECT localhost:{oport} HTTP/1.1".encode()]  # one tunnel, kept alive
        monkeypatch.setenv("NO_PROXY", "localhost")
        up = Upstream(f"https://localhost:{oport}/api/v1/write", ca_bundle=str(bundle), timeout=5)
        assert (await up.post(b"x", {})).status == 204
        await up.close()
        assert len(tunnels) == 1  # bypassed
        for s in (o, p):
            s.close()

    run(go())


def test_slots_bound_concurrency_and_a_timed_out_waiter_leaks_none() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, state: dict[str, Any]) -> None:
        while True:
            await read_request(reader)
            state["active"] = state.get("active", 0) + 1
            state["peak"] = max(state.get("peak", 0), state["active"])
            await asyncio.sleep(0.2)
            state["active"] -= 1
            writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
            await writer.drain()

    async def go() -> None:
        async with server(handler) as (url, state):
            pool = Http1Pool(url, limit=2)
            results = await asyncio.gather(*(pool.post(b"x", {}, timeout=5) for _ in range(5)))
            assert [r.status for r in results] == [204] * 5
            assert state["peak"] == 2  # never more than the limit at once
            # Two slow requests hold both slots; a third gives up waiting for one...
            slow = [asyncio.ensure_future(pool.post(b"x", {}, timeout=5)) for _ in range(2)]
            await asyncio.sleep(0.05)
            with pytest.raises(TimeoutError):
                await pool.post(b"x", {}, timeout=0.1)
            assert [r.status for r in await asyncio.gather(*slow)] == [204, 204]
            # ...and leaves no slot behind: both can be used again at once.
            started = asyncio.get_running_loop().time()
            again = await asyncio.gather(*(pool.post(b"x", {}, timeout=5) for _ in range(2)))
            assert [r.status for r in again] == [204, 204]
            assert asyncio.get_running_loop().time() - started < 0.35  # in parallel, not one after the other
            await pool.close()

    run(go())
