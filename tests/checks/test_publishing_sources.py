"""``pipeline.sidecar-publishing``: which log it judges (pods/log, Log Analytics, or both), on preset facts.

Log Analytics (``azure.sidecar_logs_la``, ContainerLogV2) stands in when ``pods/log`` is
denied and fills the gap before a restart inside the window; the evidence names the source.
When it cannot (no workspace known), the check stays ``unknown`` naming the kube permission.
"""

from __future__ import annotations

from promrw_doctor.checks.pipeline.sidecar_publishing import KUBE_SOURCE, sidecar_publishing

from promrw_doctor.collectors.kube_logs import ContainerLog
from promrw_doctor.core import AccessDenied, NotApplicable, Status
from promrw_doctor.domain.logs import split_lines

from .kube_fixtures import NOW, NS, POD, Fails, iso, run_check, running
from .test_pipeline import sidecar_log, stamp, summary

WS = "11111111-2222-4333-8444-555555555555"
KUBE_NEEDS = f"get pods/log in namespace {NS}"
DENIED = Fails(AccessDenied(KUBE_NEEDS, "pods \"x\" is forbidden"))


def la_log(*lines: str) -> ContainerLog:
    return ContainerLog(f"{NS}/{POD}", "prom-remotewrite", False, tuple(split_lines("\n".join(lines), NOW)), 1800.0,
                        2000, note=f"from Log Analytics ContainerLogV2, workspace {WS} (--log-analytics-workspace)",
                        workspace=WS)


def restarted(seconds_ago: float) -> dict:
    return running(restartCount=1, state={"running": {"startedAt": iso(-seconds_ago)}},
                   lastState={"terminated": {"exitCode": 2, "reason": "Error", "finishedAt": iso(-seconds_ago - 5)}})


FAILING = (summary(-180, 122, 0),
           f'time="{stamp(-170)}" level=error msg="Failed to publish metrics" statusCode=403 '
           'error="AuthorizationFailed"',
           summary(-60, 121, 0))


# ------------------------------------------------------------------ pods/log denied


def test_denied_pod_logs_are_judged_from_log_analytics() -> None:
    r = run_check(sidecar_publishing, {"k8s.sidecar_logs": DENIED, "azure.sidecar_logs_la": la_log(*FAILING)})
    assert r.status == Status.FAIL, r.summary
    f = r.findings[0]
    assert f.code == "PUBLISH_FAILING" and f.evidence["failedPublishing_total"] == 243
    assert f.evidence["source"] == f"Log Analytics ContainerLogV2, workspace {WS} (--log-analytics-workspace)"
    assert f.evidence["pods_log"] == f"not readable: missing permission: {KUBE_NEEDS}"
    az = f.remediation[-1]
    assert az.startswith(f"az monitor log-analytics query -w {WS} --analytics-query 'ContainerLogV2 | where ")
    assert f'PodName == "{POD}"' in az and "\n" not in az and az.endswith("--timespan PT1800S")


def test_denied_pod_logs_and_a_clean_log_analytics_copy_pass_naming_the_source() -> None:
    la = la_log(summary(-120, 0, 120), summary(-60, 0, 121))
    r = run_check(sidecar_publishing, {"k8s.sidecar_logs": DENIED, "azure.sidecar_logs_la": la})
    assert r.status == Status.PASS and "241 packets published" in r.summary
    assert r.findings[0].evidence["source"].startswith("Log Analytics ContainerLogV2")


def test_denied_without_a_workspace_stays_unknown_naming_the_kube_permission() -> None:
    r = run_check(sidecar_publishing, {"k8s.sidecar_logs": DENIED})  # azure.sidecar_logs_la: not applicable
    assert r.status == Status.UNKNOWN
    assert r.needs == KUBE_NEEDS
    assert r.summary.startswith(f"could not look: missing permission: {KUBE_NEEDS}")
    assert "--log-analytics-workspace" in r.summary


def test_denied_when_the_cluster_lookup_fails_says_pass_the_workspace() -> None:
    arm = "Reader (Microsoft.ContainerService/managedClusters/read) on /subscriptions/s"
    r = run_check(sidecar_publishing, {"k8s.sidecar_logs": DENIED, "azure.sidecar_logs_la": Fails(AccessDenied(arm))})
    assert r.status == Status.UNKNOWN and r.needs == KUBE_NEEDS
    assert arm in r.summary and "pass --log-analytics-workspace" in r.summary


def test_denied_both_names_either_permission() -> None:
    la_needs = f"Log Analytics Reader on workspace {WS} (--log-analytics-workspace)"
    r = run_check(sidecar_publishing, {"k8s.sidecar_logs": DENIED,
                                       "azure.sidecar_logs_la": Fails(AccessDenied(la_needs, "403"))})
    assert r.status == Status.UNKNOWN
    assert r.needs == f"{KUBE_NEEDS} (or {la_needs})"
    assert "pass --log-analytics-workspace" not in r.summary  # the workspace is known; the role is missing


def test_other_pod_log_failures_are_not_papered_over() -> None:
    r = run_check(sidecar_publishing, {"k8s.sidecar_logs": Fails(NotApplicable("pod monitoring/x no longer exists")),
                                       "azure.sidecar_logs_la": la_log(*FAILING)})
    assert r.status == Status.SKIPPED


# ------------------------------------------------------------------ restarted inside the window


def test_restart_inside_the_window_adds_the_lines_before_it_from_log_analytics() -> None:
    before = [summary(-1500 + 60 * i, 120, 0) for i in range(5)]  # failing before the restart at -600
    after = [summary(-540 + 60 * i, 0, 100) for i in range(8)]  # clean since
    la = la_log(*before, *after[:3])  # the copy lags a little behind and overlaps pods/log
    r = run_check(sidecar_publishing, {"k8s.sidecar_status": restarted(600), "k8s.sidecar_logs": sidecar_log(*after),
                                       "azure.sidecar_logs_la": la})
    f = r.findings[0]
    assert r.status == Status.WARN and f.code == "PUBLISH_FAILING" and "none in the last 5 minutes" in r.summary
    assert f.evidence["summary_lines"] == 13  # 5 from Log Analytics + 8 from pods/log, no line twice
    assert f.evidence["failedPublishing_total"] == 600
    source = f.evidence["source"]
    assert source.startswith(f"Log Analytics ContainerLogV2, workspace {WS}")
    assert f"before the container started at {iso(-600)} (5 lines), {KUBE_SOURCE} since (8 lines)" in source
    assert f.remediation[0].startswith(f"kubectl -n {NS} logs {POD} -c prom-remotewrite")
    assert f.remediation[1].startswith(f"az monitor log-analytics query -w {WS}")


def test_restart_without_log_analytics_judges_pods_log_and_says_what_is_missing() -> None:
    after = [summary(-540 + 60 * i, 0, 100) for i in range(8)]
    r = run_check(sidecar_publishing, {"k8s.sidecar_status": restarted(600), "k8s.sidecar_logs": sidecar_log(*after)})
    assert r.status == Status.PASS, r.summary
    ev = r.findings[0].evidence
    assert ev["source"] == f"{KUBE_SOURCE}, only since the container started at {iso(-600)}"
    assert ev["log_analytics"].startswith("not used for the lines before: no Log Analytics workspace known")


def test_no_restart_never_consults_log_analytics() -> None:
    """pods/log covers the whole window: a (failing) Log Analytics copy must not be read."""
    r = run_check(sidecar_publishing, {"k8s.sidecar_logs": sidecar_log(summary(-120, 0, 120)),
                                       "azure.sidecar_logs_la": la_log(*FAILING)})
    assert r.status == Status.PASS and r.findings[0].evidence["source"] == KUBE_SOURCE
    old = run_check(sidecar_publishing, {"k8s.sidecar_status": restarted(7200),  # restarted before the window
                                         "k8s.sidecar_logs": sidecar_log(summary(-120, 0, 120)),
                                         "azure.sidecar_logs_la": la_log(*FAILING)})
    assert old.status == Status.PASS and old.findings[0].evidence["source"] == KUBE_SOURCE
