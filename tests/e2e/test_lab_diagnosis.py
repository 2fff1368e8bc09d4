"""Every shipped lab scenario, diagnosed end to end through the real client stacks.

For each scenario a real lab world starts on loopback; the doctor reaches it only through
the files a user would use (kubeconfig, cloud profile, env) and must report exactly the
scenario's expected root causes. Healthy worlds must have no ``fail``. The emulators'
request logs must show that the doctor only read (GET/LIST; the metrics batch query is a
read despite POST).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from promrw_doctor import api
from promrw_doctor.core.environ import patched_environ
from promrw_doctor.core.model import Status
from promrw_doctor.lab.scenario import list_scenarios, load_scenario
from promrw_doctor.lab.world import LabWorld

pytestmark = pytest.mark.slow

SCENARIOS = [info.name for info in list_scenarios()]
READ_ONLY_POSTS = ("metrics:getBatch", "/oauth2/v2.0/token", "/oauth2/token")


def doctor_kwargs(world: LabWorld) -> dict:
    """What an on-call engineer would pass after sourcing the lab's env file."""
    kwargs = {
        "kubeconfig": str(world.kubeconfig),
        "context": world.context,
        "cloud_config": str(world.cloud_config),
        "subscription": world.subscription_id,
        "options": {"subscriptions": [world.subscription_id]},
    }
    env = world.scenario.sidecar_env()
    cert = env.get("AZURE_CLIENT_CERTIFICATE_PATH")
    if env.get("IDENTITY_TYPE") == "aadApplication" and cert and world.pod_path(cert).is_file():
        # The engineer hands the doctor the app's certificate (as mounted in the pod).
        kwargs["client_certificate"] = str(world.pod_path(cert))
    return kwargs


def diagnose_in(world: LabWorld):
    with patched_environ(world.env_vars()):
        return api.diagnose(**doctor_kwargs(world))


def assert_read_only(world: LabWorld) -> None:
    for emulator, rows in world.request_logs().items():
        kind = emulator.split(":")[0]
        if kind in ("ingestion", "entra"):
            continue  # the forwarder/sidecar traffic and token requests, not the doctor's reads
        writes = [(m, p) for m, p in rows if m not in ("GET", "HEAD") and not p.endswith(READ_ONLY_POSTS)
                  and "metrics:getBatch" not in p]
        assert not writes, f"{emulator}: the doctor wrote: {writes[:5]}"


@pytest.mark.parametrize("name", SCENARIOS)
def test_scenario_is_diagnosed_as_expected(name: str, tmp_path: Path) -> None:
    scenario = load_scenario(name)
    with LabWorld(scenario, tmp_path / "lab", traffic=False) as world:
        report = diagnose_in(world)
        assert_read_only(world)
    got = sorted({rc.code for rc in report.root_causes})
    expected = sorted(set(scenario.expected_root_causes))
    detail = "\n".join(f"  {r.status.value:8s} {r.check_id}: {r.summary}" for r in report.results
                       if r.status not in (Status.PASS, Status.SKIPPED))
    assert got == expected, f"{name}: root causes {got}, expected {expected}\n{detail}"
    if not expected:
        failing = [r.check_id for r in report.results if r.status == Status.FAIL]
        assert not failing, f"{name}: healthy world has failing checks {failing}\n{detail}"
