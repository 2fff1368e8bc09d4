"""``promrw-doctor probe`` through the real CLI process: bad input is one line and exit 2, nothing written."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest
from aiohttp import web

from promrw_doctor.lab.emulators import ingestion
from promrw_doctor.lab.server import LabServer
from promrw_doctor.lab.world import LabWorld
from promrw_doctor.probe.lab import workspace_query_endpoint

from .conftest import IDENTITY_ENV

pytestmark = pytest.mark.slow


def writes(world: LabWorld) -> int:
    return sum(len(ingestion.request_log(app).records) for name, app in world.apps.items()
               if name.startswith("ingestion:"))


def cli(world: LabWorld, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in IDENTITY_ENV}
    env.update(world.env_vars())
    sidecar = world.forwarder_env()
    base = ["probe", "--ingestion-url", sidecar["INGESTION_URL"], "--identity-type", sidecar["IDENTITY_TYPE"],
            "--client-id", sidecar["AZURE_CLIENT_ID"], "--cluster", "aks-lab"]
    return subprocess.run([sys.executable, "-m", "promrw_doctor", *base, *args], env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.fixture(scope="module")
def odd_endpoints() -> Iterator[dict[str, str]]:
    """A loopback app answering JSON that is not the Prometheus API, and a port nothing listens on."""
    async def hello(request: web.Request) -> web.Response:
        return web.json_response({"hello": "world", "data": [1, 2, 3]})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", hello)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    with LabServer() as srv:
        yield {"json": srv.add("not-prometheus", app).url, "closed": f"http://127.0.0.1:{closed}"}


def assert_one_line_exit_2(proc: subprocess.CompletedProcess[str], *words: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("promrw-doctor: error: "), proc.stderr
    for w in words:
        assert w in lines[0]
    assert "Traceback" not in proc.stderr and proc.stdout == ""


@pytest.mark.parametrize("value", ["0", "-1", "-0.5", "abc"])
def test_bad_timeout(shared_world: LabWorld, value: str) -> None:
    before = writes(shared_world)
    assert_one_line_exit_2(cli(shared_world, "--timeout", value), "--timeout")
    assert writes(shared_world) == before


def test_unreachable_query_endpoint(shared_world: LabWorld, odd_endpoints: dict[str, str]) -> None:
    before = writes(shared_world)
    proc = cli(shared_world, "--query-endpoint", odd_endpoints["closed"])
    assert_one_line_exit_2(proc, "--query-endpoint", "unreachable (connect)")
    assert writes(shared_world) == before  # checked before anything is written


def test_query_endpoint_answering_non_prometheus_json(shared_world: LabWorld, odd_endpoints: dict[str, str]) -> None:
    before = writes(shared_world)
    proc = cli(shared_world, "--query-endpoint", odd_endpoints["json"])
    assert_one_line_exit_2(proc, "--query-endpoint", "not a Prometheus query API")
    assert writes(shared_world) == before


def test_not_a_url(shared_world: LabWorld) -> None:
    assert_one_line_exit_2(cli(shared_world, "--query-endpoint", "ftp://x"), "--query-endpoint")


def test_delivered_json_report_exit_0(shared_world: LabWorld) -> None:
    proc = cli(shared_world, "--query-endpoint", workspace_query_endpoint(shared_world), "-o", "json")
    assert proc.returncode == 0, (proc.returncode, proc.stderr, proc.stdout[-3000:])
    doc = json.loads(proc.stdout)
    assert doc["command"] == "probe" and doc["targets"][0]["kind"] == "probe"
    [res] = [r for r in doc["results"] if r["check_id"] == "pipeline.canary-probe"]
    stages = [s["stage"] for s in res["findings"][0]["evidence"]["stages"]]
    assert res["status"] == "pass" and stages == ["token", "network", "ingestion", "query"]
    assert "eyJ" not in proc.stdout and "eyJ" not in proc.stderr  # never a token
    assert proc.stderr == ""  # azure-identity's own warnings do not leak


def test_token_stage_failure_exit_1(shared_world: LabWorld) -> None:
    proc = cli(shared_world, "--query-endpoint", workspace_query_endpoint(shared_world), "--client-id",
               "00000000-0000-4000-8000-000000000000")
    assert proc.returncode == 1, (proc.returncode, proc.stderr, proc.stdout[-3000:])
    assert "TOKEN_ACQUISITION_FAILED" in proc.stdout and "token" in proc.stdout
