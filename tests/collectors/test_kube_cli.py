"""``promrw-doctor run`` as a user runs it (a new process) against the lab: bad input is one line and
exit 2, a healthy world exits 0, and the doctor works as a kubectl plugin."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from promrw_doctor.lab.scenario import load_scenario
from promrw_doctor.lab.world import LabWorld

from .test_kube import CLUSTER_SIDE, NS

ONLY = [arg for pattern in CLUSTER_SIDE for arg in ("--only", pattern)]
PLUGIN = Path(sys.executable).with_name("kubectl-promrw_doctor")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabWorld]:
    with LabWorld(load_scenario("healthy-pod-identity"), tmp_path_factory.mktemp("cli") / "lab", traffic=False,
                  store=False) as w:
        yield w


@pytest.fixture
def lab(world: LabWorld) -> Iterator[LabWorld]:
    yield world
    world.kube_state.fault.clear()
    world.kube_state.token_expired = False


def clean_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "KUBECONFIG", "PROMRW_"))}
    env.update({"HOME": str(home), "NO_COLOR": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    return env


def doctor(*args: str, home: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "promrw_doctor", "run", *args, *ONLY], capture_output=True,
                          text=True, timeout=120, env=env or clean_env(home))


def assert_one_line_exit_2(proc: subprocess.CompletedProcess[str], needle: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert needle in lines[0], lines[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_healthy_run_exits_0_with_json(lab: LabWorld, tmp_path: Path) -> None:
    proc = doctor("--kubeconfig", str(lab.kubeconfig), "--context", lab.context, "-o", "json", home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["context"]["context"] == lab.context and report["root_causes"] == []
    assert report["targets"][0]["namespace"] == NS


def test_unreachable_api_server(lab: LabWorld, tmp_path: Path) -> None:
    text = lab.kubeconfig.read_text(encoding="utf-8")
    server = lab.endpoints["kube"]
    bad = tmp_path / "kubeconfig"
    bad.write_text(text.replace(server, f"https://127.0.0.1:{free_port()}"), encoding="utf-8")
    assert_one_line_exit_2(doctor("--kubeconfig", str(bad), "--context", lab.context, home=tmp_path),
                           "cannot reach the Kubernetes API server")


def test_expired_token(lab: LabWorld, tmp_path: Path) -> None:
    lab.kube_state.token_expired = True
    assert_one_line_exit_2(doctor("--kubeconfig", str(lab.kubeconfig), "--context", lab.context, home=tmp_path),
                           "401 Unauthorized")


def test_unknown_context(lab: LabWorld, tmp_path: Path) -> None:
    assert_one_line_exit_2(doctor("--kubeconfig", str(lab.kubeconfig), "--context", "aks-prod", home=tmp_path),
                           "context 'aks-prod' not found")


def test_missing_pod(lab: LabWorld, tmp_path: Path) -> None:
    assert_one_line_exit_2(doctor("--kubeconfig", str(lab.kubeconfig), "--context", lab.context, "-n", NS, "--pod",
                                  "prometheus-x-0", home=tmp_path), f"pod {NS}/prometheus-x-0 not found")


@pytest.mark.parametrize(("fault", "needle"), [
    ((200, "{this is not json"), "not JSON"),
    ((500, '{"kind":"Status","status":"Failure","message":"internal error","code":500}'), "500"),
])
def test_unexpected_api_answers(lab: LabWorld, tmp_path: Path, fault: tuple[int, str], needle: str) -> None:
    lab.kube_state.fault["/api/v1/pods"] = fault
    proc = doctor("--kubeconfig", str(lab.kubeconfig), "--context", lab.context, home=tmp_path)
    assert_one_line_exit_2(proc, "unexpected answer from the API server")
    assert needle in proc.stderr


@pytest.mark.kubectl
@pytest.mark.skipif(shutil.which("kubectl") is None, reason="no kubectl on PATH")
def test_kubectl_plugin(lab: LabWorld, tmp_path: Path) -> None:
    assert PLUGIN.exists(), "the console script kubectl-promrw_doctor is not installed in the venv"
    env = clean_env(tmp_path)
    env["PATH"] = f"{PLUGIN.parent}{os.pathsep}{env.get('PATH', '')}"
    cmd = ["kubectl", "promrw-doctor", "run", "--kubeconfig", str(lab.kubeconfig), "--context", lab.context,
           "-o", "json", *ONLY]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["context"]["context"] == lab.context
    # The plugin also takes kubectl's own way of choosing a cluster: $KUBECONFIG and its current context.
    env["KUBECONFIG"] = str(lab.kubeconfig)
    proc = subprocess.run(["kubectl", "promrw-doctor", "run", "-o", "json", *ONLY], capture_output=True, text=True,
                          timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["targets"][0]["namespace"] == NS
