"""Hand-built reports (the Report model is a seam we own) shared by the renderer tests.

A uniquely named module rather than conftest.py, so ``from report_samples import ...``
cannot pick up another test directory's conftest.

``full_report`` has every status, root causes with remediation and consequences, long
summaries, unicode, pipes, XML-special characters, and planted secrets that no output
may contain.
"""

from __future__ import annotations

from promrw_doctor.core.model import (
    CheckResult,
    Finding,
    Report,
    RootCause,
    Severity,
    Status,
    Target,
)

JWT = (
    "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9"
    ".eyJhdWQiOiJodHRwczovL21vbml0b3IuYXp1cmUuY29tIiwidGlkIjoiYWJjIn0"
    ".c2lnbmF0dXJlUGxhbnRlZEZvclRlc3RzT25seQ"
)
BEARER_VALUE = "Zx9PlantedBearerValue0123456789"
PEM_BODY = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQPlantedKeyBody"
PRIVATE_KEY = f"-----BEGIN PRIVATE KEY-----\n{PEM_BODY}\n-----END PRIVATE KEY-----"
CLIENT_SECRET = "Qx8~PlantedClientSecretValue.42"

# Fragments that must never appear in any rendering.
SECRET_FRAGMENTS = (
    "c2lnbmF0dXJlUGxhbnRlZEZvclRlc3RzT25seQ",
    "eyJhdWQiOiJodHRwczovL21vbml0b3IuYXp1cmUuY29tIiwidGlkIjoiYWJjIn0",
    BEARER_VALUE,
    PEM_BODY,
    CLIENT_SECRET,
)

TARGET = "monitoring/prometheus-prometheus-0"
ROLE_CMD = (
    "az role assignment create --assignee 5f1c2d3e-0000-4a6b-9c8d-1234567890ab "
    "--role \"Monitoring Metrics Publisher\" --scope /subscriptions/00000000-1111-2222-3333-444444444444"
    "/resourceGroups/MA_amw-prod_eastus_managed/providers/Microsoft.Insights/dataCollectionRules/amw-prod"
)
IMAGE_CMD = "kubectl -n monitoring set image sts/prometheus-prometheus prom-remotewrite=x:6.1"
LONG_URL = (
    "https://learn.microsoft.com/en-us/azure/azure-monitor/containers/"
    "prometheus-remote-write-managed-identity#troubleshoot-remote-write-403-forbidden"
)
LONG_SUMMARY = (
    "The user-assigned managed identity 'prom-rw-identity' (client ID 5f1c2d3e-0000-4a6b-9c8d-1234567890ab) "
    "holds no Monitoring Metrics Publisher role assignment on the data collection rule amw-prod, so every "
    "remote-write request is rejected with 403 Forbidden by the ingestion endpoint."
)


def _r(check_id: str, title: str, status: Status, **kw: object) -> CheckResult:
    category = check_id.split(".", 1)[0]
    severity = kw.pop("severity", Severity.HIGH)
    target = kw.pop("target", TARGET)
    return CheckResult(check_id=check_id, title=title, category=category, status=status,
                       severity=severity, target=target, **kw)  # type: ignore[arg-type]


def build_full_report() -> Report:
    role_finding = Finding(
        code="IDENTITY_ROLE_MISSING",
        status=Status.FAIL,
        severity=Severity.CRITICAL,
        summary=LONG_SUMMARY,
        subject="prom-rw-identity",
        evidence={
            "identity": "prom-rw-identity",
            "client_id": "5f1c2d3e-0000-4a6b-9c8d-1234567890ab",
            "roles_on_dcr": [],
            "token": JWT,  # planted: key rule
            "response_header": f"WWW-Authenticate: Bearer {BEARER_VALUE}",  # planted: bearer rule
        },
        remediation=[ROLE_CMD],
        docs_url=LONG_URL,
        check_id="identity.role-assignment",
    )
    env_finding = Finding(
        code="SIDECAR_ENV_MISSING",
        status=Status.FAIL,
        severity=Severity.HIGH,
        summary="INGESTION_URL is not set on container prom-remotewrite | pipes | in | text",
        evidence={"container": "prom-remotewrite", "missing": ["INGESTION_URL"],
                  "present": ["IDENTITY_TYPE"]},
        remediation=["kubectl -n monitoring set env sts/prometheus-prometheus -c prom-remotewrite "
                     "INGESTION_URL=https://amw-prod-abcd.eastus-1.metrics.ingest.monitor.azure.com/"
                     "dataCollectionRules/dcr-0123/streams/Microsoft-PrometheusMetrics/api/v1/write"
                     "?api-version=2023-04-24"],
        location="deploy/prometheus-values.yaml:42",
        docs_url="https://example.invalid/docs/SIDECAR_ENV_MISSING",
        check_id="kubernetes.sidecar-env",
    )
    tag_finding = Finding(
        code="SIDECAR_IMAGE_UNPINNED",
        status=Status.WARN,
        severity=Severity.MEDIUM,
        summary="Sidecar image uses tag 'latest'; pin a released tag <6.x> & \"quote\" 'apos'.",
        evidence={"image": "mcr.microsoft.com/azuremonitor/containerinsights/ciprod/prometheus-collector/"
                           "images:prom-remotewrite-latest",
                  "weird\u001bkey": "line1\nline2 | pipe \u0007 bell",
                  "client_secret": CLIENT_SECRET},  # planted: secret key
        check_id="kubernetes.sidecar-image",
    )
    results = [
        _r("lint.binding-keys", "Pod-identity binding keys are consistent", Status.PASS,
           summary="ok", findings=[Finding(code="OK", status=Status.PASS, summary="ok",
                                           severity=Severity.INFO, evidence={"files": 3},
                                           check_id="lint.binding-keys")]),
        _r("kubernetes.sidecar-present", "Remote-write sidecar container present", Status.PASS,
           summary="found prom-remotewrite",
           findings=[Finding(code="SIDECAR_NOTE", status=Status.PASS, severity=Severity.INFO,
                             summary="Consider workload identity — aad-pod-identity is deprecated "
                                     "(日本語 ✓).",
                             check_id="kubernetes.sidecar-present")]),
        _r("kubernetes.sidecar-env", "Sidecar environment is complete", Status.FAIL,
           summary=env_finding.summary, findings=[env_finding]),
        _r("kubernetes.sidecar-image", "Sidecar image <tag> & \"pinning\"", Status.WARN,
           severity=Severity.MEDIUM, summary=tag_finding.summary, findings=[tag_finding]),
        _r("kubernetes.pod-list", "Doctor may list pods in the namespace", Status.UNKNOWN,
           summary="could not look: missing permission: list pods in namespace monitoring",
           needs="list pods in namespace monitoring"),
        _r("identity.role-assignment", "Identity holds Monitoring Metrics Publisher on the DCR", Status.FAIL,
           severity=Severity.CRITICAL, summary=LONG_SUMMARY, findings=[role_finding]),
        _r("identity.token-claims", "Token audience and tenant match the endpoint", Status.ERROR,
           summary="KeyError while gathering identity.token: 'aud'",
           error=f"KeyError while gathering identity.token: 'aud' (Authorization: Bearer {BEARER_VALUE})"),
        _r("identity.workload-federation", "Federated credential matches the service account", Status.SKIPPED,
           summary="applies to workloadIdentity; this target uses managedIdentity"),
        _r("pipeline.write-probe", "A canary sample is accepted by the ingestion endpoint", Status.BLOCKED,
           summary="blocked by identity.role-assignment (fail)", blocked_by="identity.role-assignment"),
        _r("pipeline.read-back", "The canary sample can be queried back", Status.BLOCKED,
           summary="blocked by identity.role-assignment", blocked_by="identity.role-assignment"),
        _r("azure.dcr-exists", "Data collection rule exists", Status.PASS, summary="ok",
           duration_s=0.25),
    ]
    causes = [
        RootCause(target=TARGET, check_id="identity.role-assignment", code="IDENTITY_ROLE_MISSING",
                  status=Status.FAIL, severity=Severity.CRITICAL, summary=LONG_SUMMARY,
                  remediation=[ROLE_CMD],
                  consequences=["pipeline.read-back", "pipeline.write-probe"]),
        RootCause(target=TARGET, check_id="kubernetes.sidecar-env", code="SIDECAR_ENV_MISSING",
                  status=Status.FAIL, severity=Severity.HIGH, summary=env_finding.summary,
                  remediation=list(env_finding.remediation)),
        RootCause(target=TARGET, check_id="kubernetes.sidecar-image", code="SIDECAR_IMAGE_UNPINNED",
                  status=Status.WARN, severity=Severity.MEDIUM, summary=tag_finding.summary,
                  remediation=[IMAGE_CMD]),
    ]
    return Report(
        command="check",
        targets=[Target(id=TARGET, kind="pod", description="Prometheus pod with the prom-remotewrite sidecar",
                        attributes={"namespace": "monitoring", "pod": "prometheus-prometheus-0"})],
        results=results,
        root_causes=causes,
        started_at="2024-05-01T03:12:09Z",
        duration_s=3.21,
        context={"kube_context": "aks-prod-eastus", "cloud": "AzurePublicCloud",
                 "note": PRIVATE_KEY, "password": CLIENT_SECRET},  # planted
        tool_version="0.1.0",
    )


def build_clean_report() -> Report:
    return Report(
        command="lint",
        targets=[Target(id="files", kind="files", description="2 files")],
        results=[_r("lint.binding-keys", "Pod-identity binding keys are consistent", Status.PASS,
                    summary="ok", target="files")],
        root_causes=[],
        started_at="2024-05-01T03:12:09Z",
        duration_s=0.01,
        tool_version="0.1.0",
    )
