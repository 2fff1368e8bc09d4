"""The probe against real lab worlds: real Entra/IMDS/ingestion/query emulators, a real Prometheus receiver.

Healthy worlds confirm the canary end to end; every world whose fault is on the data path
stops at the scenario's ``expected.probe_stage`` with the right code, and the ranking shows
the check that explains it as the root cause with the probe as its consequence.
"""

from __future__ import annotations

import pytest
from aiohttp import web

from promrw_doctor import api
from promrw_doctor.core.model import Status
from promrw_doctor.lab.emulators import ingestion
from promrw_doctor.lab.scenario import list_scenarios, load_scenario
from promrw_doctor.lab.server import LabServer
from promrw_doctor.probe.facts import HOW_TO_ENABLE
from promrw_doctor.probe.lab import lab_probe_options, workspace_query_endpoint
from promrw_doctor.probe.stages import (
    CANARY_NOT_ARRIVED,
    CANARY_REJECTED,
    QUERY_ACCESS_MISSING,
    TOKEN_ACQUISITION_FAILED,
)

from .conftest import (
    discovery_kwargs,
    explicit_kwargs,
    probe_as_pod,
    receiver_values,
    result_of,
)

pytestmark = pytest.mark.slow

PROBE = "pipeline.canary-probe"
STAGED = sorted(i.name for i in list_scenarios() if load_scenario(i.name).probe_stage)
HEALTHY = sorted(n for n in STAGED if load_scenario(n).probe_stage == "ok"
                 and not load_scenario(n).expected_root_causes)
STAGE_CODE = {"token": TOKEN_ACQUISITION_FAILED, "ingestion": CANARY_REJECTED}
STATUS = {"role-missing": 403, "role-on-wrong-scope": 403, "role-propagating": 403, "wrong-dcr-id": 404,
          "throttled": 429, "gov-audience-missing": 401}


def ingestion_records(world: object) -> list[ingestion.IngestionRecord]:
    return [r for name, app in world.apps.items() if name.startswith("ingestion:")  # type: ignore[attr-defined]
            for r in ingestion.request_log(app).records]


@pytest.mark.parametrize("name", HEALTHY)
def test_healthy_world_confirms_the_canary_end_to_end(name: str, lab_env: object) -> None:
    world = lab_env(name)  # type: ignore[operator]
    report = probe_as_pod(world)
    res = result_of(report, PROBE)
    assert res.status == Status.PASS, res.summary
    ev = res.findings[0].evidence
    stages = {s["stage"]: s for s in ev["stages"]}
    assert [s["result"] for s in ev["stages"]] == ["ok", "ok", "ok", "ok"]
    assert stages["ingestion"]["status"] == 204 and stages["query"]["value"] == str(ev["nonce"])
    # The nonce really is in the workspace's store, under the one canary series.
    assert receiver_values(world) == [str(ev["nonce"])]
    assert ev["series"] == 'promrw_doctor_canary{cluster="aks-lab",source="promrw-doctor"}'
    assert ev["token_claims"]["aud"] and "eyJ" not in str(report.to_dict())
    assert not report.root_causes
    print(f"\n{name}: end to end {ev['total_ms']:.0f} ms; token {stages['token']['ms']:.0f} ms, ingestion "
          f"{stages['ingestion']['ms']:.0f} ms, queryable after {stages['query']['ms']:.0f} ms, "
          f"preflight {ev.get('query_preflight_ms', 0):.0f} ms")


@pytest.mark.parametrize("name", STAGED)
def test_scenario_probe_stage_code_and_ranking(name: str, lab_env: object) -> None:
    scenario = load_scenario(name)
    world = lab_env(name)  # type: ignore[operator]
    report = probe_as_pod(world, with_checks=True)
    res = result_of(report, PROBE)
    roots = sorted({rc.code for rc in report.root_causes})
    assert roots == sorted(scenario.expected_root_causes), report.root_causes
    stage = scenario.probe_stage
    assert stage is not None
    if stage == "ok":
        assert res.status == Status.PASS, res.summary
        return
    [finding] = [f for f in res.findings if f.status.is_problem]
    assert res.status == Status.FAIL
    assert (finding.subject, finding.code) == (stage, STAGE_CODE[stage])
    # The probe is the consequence of the check that explains it, not a second root cause.
    assert finding.consequence_of in scenario.expected_root_causes
    [root] = report.root_causes
    assert PROBE in root.consequences
    if name in STATUS:
        assert finding.evidence["stages"][2]["status"] == STATUS[name]
        assert all(r.status == STATUS[name] for r in ingestion_records(world))
    assert receiver_values(world) == []  # nothing arrived


def test_production_path_failing_beside_a_healthy_canary(lab_env: object) -> None:
    world = lab_env("remote-write-url-wrong-port")  # type: ignore[operator]
    report = probe_as_pod(world, with_checks=True)
    assert result_of(report, PROBE).status == Status.PASS
    prod = result_of(report, "pipeline.probe-vs-production")
    [f] = prod.findings
    assert (prod.status, f.code) == (Status.WARN, "PRODUCTION_PATH_FAILING_CANARY_OK")
    assert "not Azure" in f.summary and "localhost:8080" in f.summary
    assert f.consequence_of == "REMOTE_WRITE_URL_MISMATCH"
    assert [rc.code for rc in report.root_causes] == ["REMOTE_WRITE_URL_MISMATCH"]


def test_run_probe_through_diagnose(lab_env: object) -> None:
    """``run --probe``: api.diagnose(probe=True, probe_options=...) selects the opt-in probe checks."""
    world = lab_env("role-missing")  # type: ignore[operator]
    kwargs = discovery_kwargs(world)
    report = api.diagnose(probe=True, probe_options=lab_probe_options(world), **kwargs)
    [finding] = result_of(report, PROBE).findings
    assert (finding.code, finding.consequence_of) == (CANARY_REJECTED, "ROLE_ASSIGNMENT_MISSING")
    assert [rc.code for rc in report.root_causes] == ["ROLE_ASSIGNMENT_MISSING"]
    without = api.diagnose(**kwargs)
    assert not [r for r in without.results if r.check_id == PROBE]
    assert len(ingestion_records(world)) == 1  # only the probe wrote; the plain run did not


def test_without_the_pods_identity_context_the_probe_is_not_attempted(lab_env: object) -> None:
    world = lab_env("healthy-pod-identity")  # type: ignore[operator]
    report = api.probe(**discovery_kwargs(world))
    res = result_of(report, PROBE)
    assert res.status == Status.UNKNOWN and HOW_TO_ENABLE in res.summary and "--as-me" in (res.needs or "")
    assert api.exit_code(report) == 3  # asked for and not done: incomplete, never "all clear"
    assert ingestion_records(world) == [] and receiver_values(world) == []


def test_as_me_proves_the_path_not_the_sidecars_identity(lab_env: object) -> None:
    world = lab_env("healthy-pod-identity")  # type: ignore[operator]
    report = api.probe(**discovery_kwargs(world, as_me=True))
    res = result_of(report, PROBE)
    # The lab's doctor identity may read but not publish: refused, and said to be about the doctor.
    assert res.status == Status.UNKNOWN and "--as-me" in res.summary and "403" in res.summary
    assert "Monitoring Metrics Publisher" in (res.needs or "")
    [rec] = ingestion_records(world)
    assert rec.status == 403 and rec.client_id == world.doctor_client_id


def test_explicit_settings_target_kind_probe(lab_env: object) -> None:
    world = lab_env("healthy-managed-identity")  # type: ignore[operator]
    report = api.probe(**explicit_kwargs(world))
    assert [t.kind for t in report.targets] == ["probe"]
    res = result_of(report, PROBE)
    assert res.status == Status.PASS, res.summary
    assert res.findings[0].evidence["query_endpoint_source"] == "--query-endpoint"
    assert result_of(report, "pipeline.probe-vs-production").status == Status.SKIPPED


def test_query_access_missing_still_sends_and_says_so(lab_env: object) -> None:
    scenario = load_scenario("healthy-pod-identity").with_denials(azure=["query:read"])
    world = lab_env("", scenario=scenario)  # type: ignore[operator]
    report = probe_as_pod(world)
    res = result_of(report, PROBE)
    [f] = res.findings
    assert (res.status, f.code, f.subject) == (Status.WARN, QUERY_ACCESS_MISSING, "query")
    assert "Monitoring Data Reader" in " ".join(f.remediation)
    assert len(receiver_values(world)) == 1  # written and stored, only not confirmable by the doctor


def _fake_prometheus(value: str | None) -> web.Application:
    async def handler(request: web.Request) -> web.Response:
        result = [] if value is None else [{"metric": {"__name__": "promrw_doctor_canary"},
                                            "value": [float(request.query.get("time", "0")), value]}]
        return web.json_response({"status": "success", "data": {"resultType": "vector", "result": result}})

    app = web.Application()
    app.router.add_get("/api/v1/query", handler)
    return app


@pytest.mark.parametrize(("value", "words"), [(None, "no sample"), ("4503599627370497", "older value")])
def test_accepted_but_never_queryable(value: str | None, words: str, lab_env: object) -> None:
    world = lab_env("healthy-pod-identity")  # type: ignore[operator]
    with LabServer() as srv:
        endpoint = srv.add("fake-workspace", _fake_prometheus(value)).url
        report = probe_as_pod(world, query_endpoint=endpoint, timeout_s=1.0)
    res = result_of(report, PROBE)
    [f] = res.findings
    assert (res.status, f.code, f.subject) == (Status.FAIL, CANARY_NOT_ARRIVED, "query")
    assert words in f.summary
    query = f.evidence["stages"][3]
    # The deadline covers the whole probe (preflight, token, send, then polling up to it).
    assert 3 <= query["queries"] <= 20 and query["ms"] > 0 and 950 <= f.evidence["total_ms"] < 3000
    assert len(receiver_values(world)) == 1  # it did arrive in the real store: another workspace was asked


def test_query_endpoint_from_the_workspace(lab_env: object) -> None:
    world = lab_env("healthy-workload-identity")  # type: ignore[operator]
    report = probe_as_pod(world)
    ev = result_of(report, PROBE).findings[0].evidence
    assert (ev["query_endpoint"], ev["query_endpoint_source"]) == (workspace_query_endpoint(world), "workspace")


STALE_ROLE_CHECK = '''
from promrw_doctor.core import check


@check(id="azure.stale-role-view", title="Stand-in: a role check judging from stale data", category="azure",
       severity="critical", codes=["ROLE_ASSIGNMENT_MISSING"])
def stale_role_view(ctx):
    """Test stand-in for a check whose Azure metadata is stale (the role has propagated since)."""
    return ctx.fail("ROLE_ASSIGNMENT_MISSING", "no Monitoring Metrics Publisher on the DCR (stale view)")
'''


def _grant_doctor_publisher(world: object) -> None:
    """Give the lab's doctor identity Monitoring Metrics Publisher on the DCR (lab state: a seam we own)."""
    from datetime import timedelta

    from promrw_doctor.lab.azure_state import RoleAssignment

    st = world.azure_state  # type: ignore[attr-defined]
    sp = next(a.sp_object_id for a in st.applications if a.app_id == st.doctor_app_id)
    dcr = st.dcrs[0]
    st.role_assignments.append(RoleAssignment(
        id=f"{dcr.id}/providers/Microsoft.Authorization/roleAssignments/doctor", name="doctor", scope=dcr.id,
        role_definition_id=st.role_definition_id("Monitoring Metrics Publisher"), principal_id=sp,
        principal_type="ServicePrincipal", created_on=st.now() - timedelta(days=1)))


@pytest.mark.parametrize("as_me", [False, True])
def test_delivered_canary_beside_a_failing_check_says_whom_to_believe(as_me: bool, lab_env: object,
                                                                     tmp_path: object) -> None:
    from pathlib import Path

    checks_dir = Path(str(tmp_path)) / "checks"
    checks_dir.mkdir()
    (checks_dir / "stale_role.py").write_text(STALE_ROLE_CHECK, encoding="utf-8")
    world = lab_env("healthy-pod-identity")  # type: ignore[operator]
    if as_me:
        _grant_doctor_publisher(world)
        report = api.probe(**discovery_kwargs(world, as_me=True, with_checks=True, checks_dirs=[checks_dir]))
    else:
        report = probe_as_pod(world, with_checks=True, checks_dirs=[checks_dir])
    assert result_of(report, PROBE).status == Status.PASS
    verdict = result_of(report, "pipeline.probe-vs-checks")
    [f] = verdict.findings
    assert (verdict.status, f.code, f.evidence["check_id"]) == (Status.WARN, "PROBE_CONTRADICTS_CHECKS",
                                                                "azure.stale-role-view")
    assert f.evidence["believe"] == ("check" if as_me else "probe")
    assert ("--as-me" in f.summary) is as_me
    assert {rc.code for rc in report.root_causes} == {"ROLE_ASSIGNMENT_MISSING", "PROBE_CONTRADICTS_CHECKS"}


def test_live_traffic_world_canary_beside_real_production_queue(lab_env: object) -> None:
    """A real Prometheus remote-writes through the forwarder; the canary and its queue are compared live."""
    world = lab_env("healthy-pod-identity-live", traffic=True)  # type: ignore[operator]
    world.receiver.wait_for("prometheus_build_info", timeout=30)  # the sender's own samples arrive
    report = probe_as_pod(world)
    assert result_of(report, PROBE).status == Status.PASS
    prod = result_of(report, "pipeline.probe-vs-production")
    assert prod.status == Status.PASS, prod.summary
    queues = prod.findings[0].evidence["queues"]
    assert queues and queues[0]["samples_total"] > 0  # Prometheus's own, live counters
    assert len(receiver_values(world)) == 1


def test_explicit_settings_with_checks_rank_the_azure_side(lab_env: object) -> None:
    world = lab_env("role-missing")  # type: ignore[operator]
    kwargs = explicit_kwargs(world, with_checks=True, subscription=world.subscription_id,
                             options={"subscriptions": [world.subscription_id]})
    kwargs.pop("query_endpoint")  # found from the workspace via ARM, like a user's run
    report = api.probe(**kwargs)
    assert [t.kind for t in report.targets] == ["probe"]
    assert not [r for r in report.results if r.category == "kubernetes"]  # no cluster was given
    [finding] = result_of(report, PROBE).findings
    assert (finding.code, finding.consequence_of) == (CANARY_REJECTED, "ROLE_ASSIGNMENT_MISSING")
    assert [rc.code for rc in report.root_causes] == ["ROLE_ASSIGNMENT_MISSING"]
