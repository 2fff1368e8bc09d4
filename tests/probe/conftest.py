"""Lab fixtures for the probe: a running world with the doctor's env exported, and helpers to probe it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from promrw_doctor import api
from promrw_doctor.core.model import CheckResult, Report
from promrw_doctor.lab.scenario import load_scenario
from promrw_doctor.lab.world import LabWorld
from promrw_doctor.probe.lab import lab_probe_options, workspace_query_endpoint

# Anything that would make azure-identity pick another credential source or authority.
IDENTITY_ENV = (
    "AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_CLIENT_CERTIFICATE_PASSWORD", "AZURE_AUTHORITY_HOST", "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_POD_IDENTITY_AUTHORITY_HOST", "IDENTITY_ENDPOINT", "IDENTITY_HEADER", "IMDS_ENDPOINT", "MSI_ENDPOINT",
    "MSI_SECRET", "AZURE_TOKEN_CREDENTIALS", "REQUESTS_CA_BUNDLE", "PROMRW_DOCTOR_CLOUD_CONFIG", "KUBECONFIG",
    "KUBERNETES_SERVICE_HOST",
)
CANARY = "promrw_doctor_canary"


@pytest.fixture
def lab_env(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Start a world by name with the doctor's env exported for the test (``. env`` in a shell)."""
    worlds: list[LabWorld] = []
    for name in IDENTITY_ENV:
        monkeypatch.delenv(name, raising=False)

    def start(name: str, **kw: Any) -> LabWorld:
        scenario = kw.pop("scenario", None) or load_scenario(name)
        world = LabWorld(scenario, traffic=kw.pop("traffic", False)).start()
        worlds.append(world)
        for k, v in world.env_vars().items():
            monkeypatch.setenv(k, v)
        return world

    yield start
    for w in worlds:
        w.close()


@pytest.fixture(scope="module")
def shared_world() -> Iterator[LabWorld]:
    """One healthy pod-identity world for the tests that probe it many times (module scope)."""
    saved = {k: os.environ.pop(k) for k in IDENTITY_ENV if k in os.environ}
    world = LabWorld(load_scenario("healthy-pod-identity"), traffic=False).start()
    try:
        yield world
    finally:
        world.close()
        os.environ.update(saved)


def discovery_kwargs(world: LabWorld, **extra: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "kubeconfig": str(world.kubeconfig), "context": world.context, "cloud_config": str(world.cloud_config),
        "subscription": world.subscription_id, "options": {"subscriptions": [world.subscription_id]},
    }
    kwargs.update(extra)
    return kwargs


def probe_as_pod(world: LabWorld, **extra: Any) -> Report:
    """``api.probe`` in discovery mode, in the pod's identity context (see promrw_doctor.probe.lab)."""
    opts = lab_probe_options(world)
    return api.probe(**discovery_kwargs(world, identity_env=opts["identity_env"], **extra))


def explicit_kwargs(world: LabWorld, **extra: Any) -> dict[str, Any]:
    """Explicit sidecar settings (no cluster): the sidecar's env as the scenario has it."""
    env = world.forwarder_env()
    kwargs: dict[str, Any] = {
        "ingestion_url": env["INGESTION_URL"], "identity_type": env["IDENTITY_TYPE"],
        "client_id": env.get("AZURE_CLIENT_ID"), "cluster": env.get("CLUSTER") or "aks-lab",
        "cloud_config": str(world.cloud_config), "query_endpoint": workspace_query_endpoint(world),
    }
    kwargs.update(extra)
    return kwargs


def result_of(report: Report, check_id: str) -> CheckResult:
    found = [r for r in report.results if r.check_id == check_id]
    assert found, f"{check_id} did not run: {[r.check_id for r in report.results]}"
    return found[0]


def receiver_values(world: LabWorld) -> list[str]:
    """The canary series' current values in the workspace store (the real Prometheus receiver)."""
    return [row["value"][1] for row in world.receiver.query(CANARY)]


@pytest.fixture
def shared(shared_world: LabWorld, monkeypatch: pytest.MonkeyPatch) -> LabWorld:
    """The module's healthy world with the doctor's env exported for this test."""
    for name in IDENTITY_ENV:
        monkeypatch.delenv(name, raising=False)
    for k, v in shared_world.env_vars().items():
        monkeypatch.setenv(k, v)
    return shared_world
