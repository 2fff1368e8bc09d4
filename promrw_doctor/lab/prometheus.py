"""Run real (Debian) Prometheus processes for tests and the lab: remote-write receivers and senders.

A receiver (``--web.enable-remote-write-receiver``, nothing scraped) stands in for the
Azure Monitor workspace's storage; a sender scrapes itself and remote-writes through
the forwarder, like the Prometheus in the pod. Both listen on free 127.0.0.1 ports.

Gotchas handled here (see ``shared/domain/local-components.md``): ``--storage.remote.flush-deadline=2s``
so a sender whose endpoint is down still exits promptly; the first remote write arrives
~6 s after start (WAL replay), so use :meth:`PrometheusProcess.wait_for` rather than
sleeps; Debian's 2.42 silently ignores ``remote_write.headers``. Every started process is
registered for an ``atexit`` clean-up, senders before receivers, so no stray process is
left even when a test fails half-way.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

LOOPBACK = "127.0.0.1"
FLUSH_DEADLINE = "2s"
INSTALL_HINT = "prometheus not found: apt-get install prometheus"


class PrometheusError(RuntimeError):
    """Prometheus could not be started or queried; the message carries the tail of its log."""


class PrometheusNotFound(PrometheusError):
    """The ``prometheus`` binary is not on PATH."""


class _PortTaken(Exception):
    """Prometheus could not bind its port (someone took it after we probed it)."""


def find_binary(binary: str | None = None) -> str:
    """The Prometheus executable (``binary`` if given, else ``prometheus`` on PATH)."""
    path = shutil.which(binary or "prometheus")
    if path is None:
        raise PrometheusNotFound(INSTALL_HINT)
    return path


def free_port(host: str = LOOPBACK) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


_live: list[PrometheusProcess] = []
_live_lock = threading.Lock()


def _stop_all() -> None:
    """atexit safety net: senders first (they flush into receivers), then receivers."""
    with _live_lock:
        procs = list(_live)
    for p in sorted(procs, key=lambda p: 0 if p.role == "sender" else 1):
        with contextlib.suppress(Exception):
            p.stop(timeout=3)


atexit.register(_stop_all)


class PrometheusProcess:
    """One Prometheus server process with its own config, TSDB and log under ``workdir``."""

    def __init__(
        self,
        workdir: str | os.PathLike[str],
        config: Mapping[str, Any],
        *,
        role: str = "server",
        receiver: bool = False,
        port: int | None = None,
        extra_args: tuple[str, ...] | list[str] = (),
        binary: str | None = None,
    ) -> None:
        self.binary = find_binary(binary)
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config = dict(config)
        self.role = role
        self.receiver_flag = receiver
        self._auto_port = port is None
        self.port = port or free_port()
        self.extra_args = list(extra_args)
        self.config_path = self.workdir / "prometheus.yml"
        self.log_path = self.workdir / "prometheus.log"
        self.data_path = self.workdir / "data"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_file: Any = None

    # ----------------------------------------------------------------------- factories
    @classmethod
    def receiver(
        cls,
        workdir: str | os.PathLike[str],
        *,
        extra_args: tuple[str, ...] | list[str] = (),
        start: bool = True,
        timeout: float = 20.0,
    ) -> PrometheusProcess:
        """A remote-write receiver with an empty scrape config (started unless ``start=False``)."""
        config = {"global": {"scrape_interval": "15s"}, "scrape_configs": []}
        proc = cls(workdir, config, role="receiver", receiver=True, extra_args=extra_args)
        return proc.start(timeout) if start else proc

    @classmethod
    def sender(
        cls,
        workdir: str | os.PathLike[str],
        remote_write_url: str,
        *,
        scrape_interval: str = "1s",
        external_labels: Mapping[str, str] | None = None,
        queue_config: Mapping[str, Any] | None = None,
        extra_remote_write: Mapping[str, Any] | None = None,
        extra_args: tuple[str, ...] | list[str] = (),
        start: bool = True,
        timeout: float = 20.0,
    ) -> PrometheusProcess:
        """A Prometheus that scrapes itself every ``scrape_interval`` and remote-writes to the URL.

        ``queue_config`` is merged over short test defaults (1 s batch deadline, 100 ms-1 s
        backoff); ``extra_remote_write`` is merged into the remote_write entry (e.g.
        ``{"name": "azure", "remote_timeout": "5s", "authorization": {...}}``).
        """
        port = free_port()
        queue = {"batch_send_deadline": "1s", "min_backoff": "100ms", "max_backoff": "1s"}
        queue.update(dict(queue_config or {}))
        rw: dict[str, Any] = {"url": remote_write_url, "queue_config": queue}
        rw.update(dict(extra_remote_write or {}))
        glob: dict[str, Any] = {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval}
        if external_labels:
            glob["external_labels"] = dict(external_labels)
        config = {
            "global": glob,
            "scrape_configs": [{"job_name": "prometheus",
                                "static_configs": [{"targets": [f"{LOOPBACK}:{port}"]}]}],
            "remote_write": [rw],
        }
        proc = cls(workdir, config, role="sender", port=port, extra_args=extra_args)
        proc._auto_port = True  # the port was probed here, so it may be moved like an automatic one
        return proc.start(timeout) if start else proc

    # ------------------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def write_url(self) -> str:
        """The remote-write receiver URL (meaningful for receivers)."""
        return f"{self.url}/api/v1/write"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def command(self) -> list[str]:
        cmd = [
            self.binary,
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.data_path}",
            f"--web.listen-address={LOOPBACK}:{self.port}",
            f"--storage.remote.flush-deadline={FLUSH_DEADLINE}",
            "--log.level=info",
        ]
        if self.receiver_flag:
            cmd.append("--web.enable-remote-write-receiver")
        return cmd + self.extra_args

    def start(self, timeout: float = 20.0) -> PrometheusProcess:
        """Start and wait for ``/-/ready``; raises :class:`PrometheusError` with the log tail.

        A free port can be taken by someone else between probing and binding; when
        Prometheus reports ``address already in use`` on an auto-chosen port, it is retried
        on a new port (twice).
        """
        if self.running:
            return self
        for attempt in range(3):
            try:
                return self._start_once(timeout)
            except _PortTaken:
                if not self._auto_port or attempt == 2:
                    raise PrometheusError(f"port {self.port} is already in use (log {self.log_path})") from None
                self._move_to(free_port())
        raise AssertionError("unreachable")  # pragma: no cover

    def _move_to(self, port: int) -> None:
        old = f"{LOOPBACK}:{self.port}"
        self.port = port
        for job in self.config.get("scrape_configs") or []:  # a sender scrapes itself
            for sc in job.get("static_configs") or []:
                sc["targets"] = [f"{LOOPBACK}:{port}" if t == old else t for t in sc.get("targets", [])]

    def _start_once(self, timeout: float) -> PrometheusProcess:
        # JSON is YAML: no YAML dependency needed to write the config.
        self.config_path.write_text(json.dumps(self.config, indent=2), encoding="utf-8")
        self._log_file = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the process
        self._proc = subprocess.Popen(
            self.command(), stdout=self._log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            cwd=self.workdir, start_new_session=True)
        with _live_lock:
            _live.append(self)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                tail = self.log_tail()
                self._forget()
                if "address already in use" in tail:
                    raise _PortTaken
                raise PrometheusError(
                    f"prometheus exited with code {self._proc.returncode} during start-up "
                    f"(log {self.log_path}):\n{tail}")
            if self._ready() and self._proc.poll() is None:
                return self
            time.sleep(0.05)
        self.stop()
        raise PrometheusError(
            f"prometheus not ready after {timeout:.0f}s (log {self.log_path}):\n{self.log_tail()}")

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as resp:
                return int(resp.status) == 200
        except (urllib.error.URLError, OSError):
            return False

    def stop(self, timeout: float = 5.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout`` seconds; returns the exit code (None if never started)."""
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait(5)
        self._forget()
        return proc.returncode

    def _forget(self) -> None:
        with _live_lock:
            if self in _live:
                _live.remove(self)
        if self._log_file is not None:
            with contextlib.suppress(OSError):
                self._log_file.close()
            self._log_file = None

    def __enter__(self) -> PrometheusProcess:
        return self if self.running else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    # ------------------------------------------------------------------------ HTTP API
    def api(self, path: str, params: Mapping[str, str] | None = None, timeout: float = 10.0) -> Any:
        """GET ``/api/v1/<path>`` and return ``data`` (raises :class:`PrometheusError` on error)."""
        qs = f"?{urllib.parse.urlencode(dict(params))}" if params else ""
        url = f"{self.url}/api/v1/{path.lstrip('/')}{qs}"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp:
                doc = json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            body = exc.read().decode("utf-8", "replace")[:500]
            raise PrometheusError(f"GET {url}: HTTP {exc.code}: {body}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise PrometheusError(f"GET {url}: {exc}") from None
        if doc.get("status") != "success":
            raise PrometheusError(f"GET {url}: {doc.get('errorType')}: {doc.get('error')}")
        return doc.get("data")

    def query(self, promql: str, at: float | None = None) -> list[dict[str, Any]]:
        """Instant query; returns ``data.result`` (a list of ``{"metric", "value"}``)."""
        params = {"query": promql}
        if at is not None:
            params["time"] = str(at)
        data = self.api("query", params)
        result = data.get("result", []) if isinstance(data, dict) else []
        return list(result) if isinstance(result, list) else []

    def value(self, promql: str) -> float | None:
        """The first sample value of an instant query, or None when the result is empty."""
        result = self.query(promql)
        if not result:
            return None
        return float(result[0]["value"][1])

    def wait_for(
        self,
        promql: str,
        predicate: Callable[[list[dict[str, Any]]], bool] = bool,
        *,
        timeout: float = 20.0,
        interval: float = 0.25,
    ) -> list[dict[str, Any]]:
        """Poll ``promql`` until ``predicate(result)`` holds; raises :class:`PrometheusError` on timeout."""
        deadline = time.monotonic() + timeout
        last: list[dict[str, Any]] = []
        while True:
            with contextlib.suppress(PrometheusError):
                last = self.query(promql)
                if predicate(last):
                    return last
            if time.monotonic() >= deadline:
                raise PrometheusError(
                    f"timed out after {timeout:.0f}s waiting for {promql!r}; last result {last}")
            time.sleep(interval)
