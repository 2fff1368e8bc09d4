"""lint.manifest-indentation: the published YAML's env/containerPort/probe nesting defects."""

from __future__ import annotations

from promrw_doctor.core.model import Status

from .helpers import fails, line, result, run


def test_indentation_pass() -> None:
    assert result(run("good/pod-identity-values.yaml"), "lint.manifest-indentation").status == Status.PASS


def test_indentation_fail_on_published_pod_identity_yaml() -> None:
    found = fails(run("seed-pod-identity-values.yaml"), "lint.manifest-indentation", "MANIFEST_MISINDENTED")
    by_line = {line(f): f for f in found}
    assert sorted(by_line) == [17, 23, 29, 31]
    env = by_line[31]
    assert env.evidence["path"] == "prometheus.prometheusSpec.env"
    assert "containers:\n- name: prom-remotewrite\n  env:\n  - name: INGESTION_URL" in env.remediation[0]
    port = by_line[17]
    assert port.evidence["container_level_containerPort"] == 8081
    assert "- name: rw-port\n    containerPort: 8081" in port.remediation[0]
    probe = by_line[23]
    assert probe.evidence["misplaced"] == ["initialDelaySeconds", "timeoutSeconds"]
    assert probe.remediation[0] == ("livenessProbe:\n  httpGet:\n    path: /health\n    port: rw-port\n"
                                    "  initialDelaySeconds: 10\n  timeoutSeconds: 10")


def test_indentation_flow_style_probes() -> None:
    found = fails(run("seed-entra-cert-values.yaml"), "lint.manifest-indentation", "MANIFEST_MISINDENTED")
    assert sorted(f.evidence["probe"] for f in found) == ["livenessProbe", "readinessProbe"]
