"""Run aiohttp applications on loopback, on free ports, in one background event-loop thread.

Every lab emulator is an ``aiohttp.web.Application``; :class:`LabServer` serves any
number of them (plain HTTP or HTTPS with the lab's per-run CA) and tears them down
cleanly, so tests and ``lab up`` share one mechanism and leave no port behind.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

LOOPBACK = "127.0.0.1"


@dataclass
class Endpoint:
    name: str
    host: str
    port: int
    tls: bool

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{self.host}:{self.port}"


class LabServer:
    """Serve several aiohttp apps from a dedicated thread. Use as a context manager or start()/stop()."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run_loop, name="lab-server", daemon=True)
        self._runners: list[web.AppRunner] = []
        self.endpoints: dict[str, Endpoint] = {}
        self._started = False

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    def start(self) -> LabServer:
        if not self._started:
            self._thread.start()
            self._started = True
        return self

    def call(self, coro_factory: Callable[[], Any], timeout: float = 30.0) -> Any:
        """Run a coroutine on the server loop from another thread and wait for its result."""
        self.start()
        fut = asyncio.run_coroutine_threadsafe(coro_factory(), self._loop)
        return fut.result(timeout)

    def add(
        self,
        name: str,
        app: web.Application,
        *,
        ssl_context: ssl.SSLContext | None = None,
        host: str = LOOPBACK,
        port: int = 0,
    ) -> Endpoint:
        """Serve ``app``; returns its endpoint (the real port when ``port=0``)."""

        async def _start() -> Endpoint:
            runner = web.AppRunner(app, access_log=None, handle_signals=False)
            await runner.setup()
            site = web.TCPSite(runner, host, port, ssl_context=ssl_context, reuse_address=True)
            await site.start()
            self._runners.append(runner)
            server = site._server
            assert server is not None and server.sockets  # type: ignore[attr-defined]
            bound = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
            return Endpoint(name, host, int(bound), ssl_context is not None)

        endpoint: Endpoint = self.call(_start)
        self.endpoints[name] = endpoint
        return endpoint

    def stop(self) -> None:
        if not self._started:
            return

        async def _stop() -> None:
            for runner in reversed(self._runners):
                await runner.cleanup()
            self._runners.clear()

        try:
            self.call(_stop, timeout=15)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
            if not self._loop.is_running():
                self._loop.close()
            self._started = False

    def __enter__(self) -> LabServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
