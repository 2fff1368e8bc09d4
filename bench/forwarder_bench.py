"""Forwarder throughput, added latency and memory against nginx (figures, not a timed test).

    .venv/bin/python bench/forwarder_bench.py                 # 10 s per run
    .venv/bin/python bench/forwarder_bench.py --duration 5 --connections 16

Pre-built remote-write bodies (2 000 samples each, realistic label sets) are POSTed by
wrk (Lua body rotation, bench/assets/remote_write_post.lua) to:

  (a) a sink: nginx answering 204 (it reads and discards the body);
  (b) the sink through Debian nginx adding ``Authorization: Bearer ...`` (the baseline proxy);
  (c) the sink through ``promrw-doctor forward`` (a real process; token from the lab IMDS emulator).

Each measurement is repeated (``--repeat``, default 3) with the targets interleaved, and
the median is used: on a shared 2-core machine a single 10 s run of any target can lose a
third of its throughput, or gain a 10 ms p99, to a neighbour. Every run is printed.

Printed: req/s, samples/s, p50/p99 latency and the latency each proxy adds over the sink
(at max load and at half of the forwarder's max load, paced with wrk's ``delay()``), CPU
time per request of the forwarder and of the nginx worker (the figure least disturbed by
other load on a shared machine), the forwarder's peak RSS (also with a stalled upstream
that never answers), and the forwarder/nginx throughput ratio, each against its target.

Targets (2-core machine): forwarder >= 0.5 x nginx; >= 1 000 000 samples/s; p99 added
latency <= 5 ms at half of max load; RSS <= 100 MB, also with a stalled upstream.
Everything listens on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ASSETS = Path(__file__).resolve().parent / "assets"
SAMPLES_PER_BODY = 2000
LOOPBACK = "127.0.0.1"
INGEST_PATH = ("/dataCollectionRules/dcr-0123456789abcdef0123456789abcdef/streams/Microsoft-PrometheusMetrics"
               "/api/v1/write?api-version=2023-04-24")


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    errors: int

    @property
    def samples_per_s(self) -> float:
        return self.rps * SAMPLES_PER_BODY


_UNIT = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not m:
        raise ValueError(f"cannot parse wrk latency {text!r}")
    return float(m.group(1)) * _UNIT[m.group(2)]


def run_wrk(url: str, body_dir: Path, count: int, *, connections: int, duration: float, threads: int = 1,
            delay_ms: float = 0.0) -> WrkResult:
    env = dict(os.environ, RW_BODY_DIR=str(body_dir), RW_BODY_COUNT=str(count), RW_DELAY_MS=f"{delay_ms:.3f}")
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration:g}s", "--latency", "--timeout", "30s",
           "-s", str(ASSETS / "remote_write_post.lua"), url]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=duration + 60).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errs = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return WrkResult(rps, p50, p99, total, int(non2xx.group(1)) if non2xx else 0,
                     sum(int(g) for g in errs.groups()) if errs else 0)


def median_result(results: list[WrkResult]) -> WrkResult:
    """Field-wise median of repeated runs (throughput and each latency percentile separately)."""
    return WrkResult(statistics.median(r.rps for r in results), statistics.median(r.p50_ms for r in results),
                     statistics.median(r.p99_ms for r in results), sum(r.requests for r in results),
                     sum(r.non_2xx for r in results), sum(r.errors for r in results))


# ------------------------------------------------------------------------------------ processes
class Nginx:
    def __init__(self, workdir: Path, servers: str) -> None:
        self.dir = workdir
        (workdir / "tmp").mkdir(parents=True, exist_ok=True)
        conf = (ASSETS / "nginx.conf.tmpl").read_text().replace("{{DIR}}", str(workdir)).replace(
            "{{SERVERS}}", servers)
        (workdir / "nginx.conf").write_text(conf)
        self.proc = subprocess.Popen(["nginx", "-p", str(workdir), "-c", str(workdir / "nginx.conf"),
                                      "-e", str(workdir / "error.log")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def nginx_worker(master: int) -> int:
    kids = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return int(kids[0]) if kids else master


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((LOOPBACK, port), timeout=0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {LOOPBACK}:{port}")


class Forwarder:
    """``promrw-doctor forward`` as a real process (what users run); RSS read from /proc."""

    def __init__(self, workdir: Path, ingestion_url: str, imds_url: str, client_id: str, *extra: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "IDENTITY_", "MSI_"))}
        env.update(INGESTION_URL=ingestion_url, IDENTITY_TYPE="userAssigned", AZURE_CLIENT_ID=client_id,
                   AZURE_POD_IDENTITY_AUTHORITY_HOST=imds_url, CLUSTER="bench")
        self.log_path = workdir / f"forwarder-{uuid.uuid4().hex[:6]}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "promrw_doctor", "forward", "--port", "0", "--imds-retries", "0", *extra],
            env=env, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        self.port = 0
        while time.monotonic() < deadline and not self.port:
            m = re.search(r"msg=\"?ready\"? port=(\d+)", self.log_path.read_text(errors="replace"))
            if m:
                self.port = int(m.group(1))
            elif self.proc.poll() is not None:
                break
            time.sleep(0.05)
        if not self.port:
            self.proc.kill()
            self.proc.wait(5)
            self._log.close()
            raise RuntimeError(f"forwarder did not become ready: {self.log_path.read_text(errors='replace')[-2000:]}")
        self.peak_rss_kb = 0
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def _status(self, key: str) -> int:
        text = Path(f"/proc/{self.proc.pid}/status").read_text()
        m = re.search(rf"^{key}:\s+(\d+) kB", text, re.M)
        return int(m.group(1)) if m else 0

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            with contextlib.suppress(OSError):
                self.peak_rss_kb = max(self.peak_rss_kb, self._status("VmRSS"))

    def hwm_mb(self) -> float:
        """Peak resident set size (kernel's VmHWM, cross-checked with our sampler)."""
        return max(self._status("VmHWM"), self.peak_rss_kb) / 1024

    def rss_mb(self) -> float:
        return self._status("VmRSS") / 1024

    def stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(40)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._log.close()


@contextlib.contextmanager
def stalled_upstream() -> Iterator[int]:
    """Accepts connections and reads request bytes forever, never answers: the worst upstream."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((LOOPBACK, 0))
    srv.listen(1024)
    stop = threading.Event()
    conns: list[socket.socket] = []

    def drain(c: socket.socket) -> None:
        c.settimeout(0.5)
        while not stop.is_set():
            try:
                if not c.recv(65536):
                    return
            except TimeoutError:
                continue
            except OSError:
                return

    def accept() -> None:
        srv.settimeout(0.5)
        while not stop.is_set():
            try:
                c, _ = srv.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conns.append(c)
            threading.Thread(target=drain, args=(c,), daemon=True).start()

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        yield int(srv.getsockname()[1])
    finally:
        stop.set()
        for c in conns:
            with contextlib.suppress(OSError):
                c.close()
        srv.close()


def lab_imds() -> tuple[object, str, str, str]:
    """The lab's IMDS emulator (plain HTTP) with one managed identity; returns (server, url, client id, token)."""
    from promrw_doctor.lab.azure_state import AzureState, ManagedIdentity
    from promrw_doctor.lab.emulators import imds
    from promrw_doctor.lab.server import LabServer
    from promrw_doctor.lab.tokens import TokenIssuer

    mi = ManagedIdentity(name="bench-mi", resource_group="rg", client_id=str(uuid.uuid4()),
                         principal_id=str(uuid.uuid4()))
    state = AzureState(tenant_id=str(uuid.uuid4()), subscription_id=str(uuid.uuid4()), identities=[mi])
    issuer = TokenIssuer(state.tenant_id)
    server = LabServer().start()
    ep = server.add("imds", imds.make_app(state, issuer))
    token, _ = issuer.mint(audience="https://monitor.azure.com", client_id=mi.client_id, principal_id=mi.principal_id)
    return server, ep.url, mi.client_id, token


def build_bodies(directory: Path, count: int) -> int:
    from promrw_doctor.remote_write import SyntheticBatch, encode

    sizes = []
    for i in range(1, count + 1):
        body = encode(SyntheticBatch(samples=SAMPLES_PER_BODY, cluster=f"bench-{i % 3}", seed=i).request())
        (directory / f"body-{i}.bin").write_bytes(body)
        sizes.append(len(body))
    return sum(sizes) // len(sizes)


# ----------------------------------------------------------------------------------------- main
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections at max load")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--bodies", type=int, default=8, help="distinct pre-built bodies")
    parser.add_argument("--stall-connections", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3, help="interleaved runs per target (median used)")
    args = parser.parse_args()
    for tool in ("wrk", "nginx"):
        if shutil.which(tool) is None:
            print(f"{tool} not found (apt-get install {tool})", file=sys.stderr)
            return 2

    work = Path(tempfile.mkdtemp(prefix="promrw-fwd-bench-"))
    bodies = work / "bodies"
    bodies.mkdir()
    avg = build_bodies(bodies, args.bodies)
    print(f"bodies: {args.bodies} x {SAMPLES_PER_BODY} samples, avg {avg / 1024:.1f} KiB snappy; "
          f"wrk -t{args.threads} -c{args.connections} -d{args.duration:g}s; cores: {os.cpu_count()}")

    server, imds_url, client_id, token = lab_imds()
    sink_port, proxy_port = free_port(), free_port()
    sink = Nginx(work / "sink", f"server {{ listen {LOOPBACK}:{sink_port} reuseport; "
                                f"location / {{ return 204; }} }}")
    proxy = Nginx(work / "proxy", (
        f"upstream sink {{ server {LOOPBACK}:{sink_port}; keepalive 64; }} "
        f"server {{ listen {LOOPBACK}:{proxy_port}; location / {{ proxy_pass http://sink; "
        f"proxy_http_version 1.1; proxy_set_header Connection \"\"; "
        f"proxy_set_header Authorization \"Bearer {token}\"; }} }}"))
    fwd: Forwarder | None = None
    try:
        wait_port(sink_port)
        wait_port(proxy_port)
        fwd = Forwarder(work, f"http://{LOOPBACK}:{sink_port}{INGEST_PATH}", imds_url, client_id,
                        "--log-level", "info")
        idle_rss = fwd.rss_mb()
        urls = {
            "sink (direct)": f"http://{LOOPBACK}:{sink_port}{INGEST_PATH}",
            "nginx proxy": f"http://{LOOPBACK}:{proxy_port}{INGEST_PATH}",
            "forwarder": f"http://{LOOPBACK}:{fwd.port}/api/v1/write",
        }
        # Warm-up (connections, token, JIT-free but caches).
        for url in urls.values():
            run_wrk(url, bodies, args.bodies, connections=4, duration=1, threads=args.threads)

        print(f"\n== max load ({args.repeat} interleaved runs per target; median)")
        pids = {"nginx proxy": nginx_worker(proxy.proc.pid), "forwarder": fwd.proc.pid}
        runs: dict[str, list[WrkResult]] = {name: [] for name in urls}
        cpu_runs: dict[str, list[float]] = {name: [] for name in pids}
        for _ in range(args.repeat):
            for name, url in urls.items():
                before = cpu_seconds(pids[name]) if name in pids else 0.0
                r = run_wrk(url, bodies, args.bodies, connections=args.connections, duration=args.duration,
                            threads=args.threads)
                if name in pids and r.requests:
                    cpu_runs[name].append((cpu_seconds(pids[name]) - before) / r.requests * 1e6)
                runs[name].append(r)
        print(f"{'target':16} {'req/s':>9} {'samples/s':>12} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8} "
              f"{'errors':>7}  runs (req/s)")
        maxr = {name: median_result(rs) for name, rs in runs.items()}
        for name, r in maxr.items():
            print(f"{name:16} {r.rps:9.0f} {r.samples_per_s:12,.0f} {r.p50_ms:8.2f} {r.p99_ms:8.2f} "
                  f"{sum(x.non_2xx for x in runs[name]):8d} {sum(x.errors for x in runs[name]):7d}  "
                  + " ".join(f"{x.rps:.0f}" for x in runs[name]))
        cpu_per_req = {name: statistics.median(v) for name, v in cpu_runs.items() if v}
        print("CPU per request (median; the figure least disturbed by other load on the machine): "
              + ", ".join(f"{k} {v:.0f} us" for k, v in cpu_per_req.items())
              + (f"; capacity ratio forwarder/nginx {cpu_per_req['nginx proxy'] / cpu_per_req['forwarder']:.2f}"
                 if len(cpu_per_req) == 2 and cpu_per_req["forwarder"] else ""))
        ratios = [f.rps / n.rps for f, n in zip(runs["forwarder"], runs["nginx proxy"], strict=True) if n.rps]
        print("forwarder/nginx throughput per round: " + " ".join(f"{x:.2f}" for x in ratios))
        rss_max_load = fwd.hwm_mb()

        half = maxr["forwarder"].rps / 2
        conns = 8
        delay = max(0.0, conns * 1000.0 / half)
        print(f"\n== half of the forwarder's max load: target {half:.0f} req/s "
              f"({conns} connections, {delay:.1f} ms pacing; {args.repeat} interleaved runs, median)")
        load1 = os.getloadavg()[0]
        hruns: dict[str, list[WrkResult]] = {name: [] for name in urls}
        for _ in range(args.repeat):
            for name, url in urls.items():
                hruns[name].append(run_wrk(url, bodies, args.bodies, connections=conns, duration=args.duration,
                                           threads=args.threads, delay_ms=delay))
        print(f"{'target':16} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'added p50':>10} {'added p99':>10}  "
              "runs (p99 ms)")
        halfr = {name: median_result(rs) for name, rs in hruns.items()}
        base = halfr["sink (direct)"]
        for name, r in halfr.items():
            print(f"{name:16} {r.rps:9.0f} {r.p50_ms:8.2f} {r.p99_ms:8.2f} {r.p50_ms - base.p50_ms:10.2f} "
                  f"{r.p99_ms - base.p99_ms:10.2f}  " + " ".join(f"{x.p99_ms:.2f}" for x in hruns[name]))
        print(f"(1-min load average before these runs: {load1:.1f} on {os.cpu_count()} cores; other processes "
              "on the machine show up in the p99 of every target)")
        rss_half = fwd.hwm_mb()
        fwd.stop()
        fwd = None

        print(f"\n== stalled upstream (never answers): {args.stall_connections} connections for "
              f"{args.duration:g}s")
        with stalled_upstream() as stall_port:
            sfwd = Forwarder(work, f"http://{LOOPBACK}:{stall_port}{INGEST_PATH}", imds_url, client_id,
                             "--log-level", "info", "--upstream-timeout", "60")
            try:
                r = run_wrk(f"http://{LOOPBACK}:{sfwd.port}/api/v1/write", bodies, args.bodies,
                            connections=args.stall_connections, duration=args.duration, threads=args.threads)
                metrics = _get(f"http://{LOOPBACK}:{sfwd.port}/metrics")
                in_flight = re.search(r"^promrw_forwarder_in_flight_requests (\d+)", metrics, re.M)
                busy = re.search(r'^promrw_forwarder_rejected_total\{reason="busy"\} (\d+)', metrics, re.M)
                rss_stall = sfwd.hwm_mb()
                print(f"requests answered: {r.requests} ({r.non_2xx} non-2xx = 503 busy), "
                      f"in flight upstream at the end: {in_flight.group(1) if in_flight else '?'}, "
                      f"503 busy: {busy.group(1) if busy else 0}, peak RSS {rss_stall:.1f} MB")
            finally:
                sfwd.stop()

        ratio = maxr["forwarder"].rps / maxr["nginx proxy"].rps
        added_p99 = halfr["forwarder"].p99_ms - base.p99_ms
        peak = max(rss_max_load, rss_half)
        print("\n== summary (target: measured)")
        checks = [
            ("forwarder/nginx throughput >= 0.5", ratio >= 0.5, f"{ratio:.2f}"),
            ("forwarder samples/s >= 1 000 000", maxr["forwarder"].samples_per_s >= 1_000_000,
             f"{maxr['forwarder'].samples_per_s:,.0f}"),
            ("p99 added latency at half load <= 5 ms", added_p99 <= 5.0, f"{added_p99:.2f} ms"),
            ("forwarder peak RSS <= 100 MB", peak <= 100, f"{peak:.1f} MB (idle {idle_rss:.1f} MB)"),
            ("peak RSS with stalled upstream <= 100 MB", rss_stall <= 100, f"{rss_stall:.1f} MB"),
        ]
        for label, ok, value in checks:
            print(f"  [{'met' if ok else 'MISSED'}] {label}: {value}")
        return 0
    finally:
        if fwd is not None:
            fwd.stop()
        proxy.stop()
        sink.stop()
        server.stop()  # type: ignore[attr-defined]
        shutil.rmtree(work, ignore_errors=True)


def _get(url: str) -> str:
    import urllib.request

    with urllib.request.urlopen(url, timeout=10) as resp:
        return resp.read().decode()


if __name__ == "__main__":
    sys.exit(main())
