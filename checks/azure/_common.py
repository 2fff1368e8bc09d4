"""Helpers shared by the Azure-side checks (and the identity token/certificate checks). No checks here.

Why: several checks judge from whichever sources they can read (a certificate file, Key
Vault, the app registration) and must tell "not applicable" from "could not look"
(``unknown`` naming the permission) without failing on the first unreadable one.
"""

from __future__ import annotations

from typing import Any

from promrw_doctor.core import AccessDenied, InputError, NotApplicable, Target, Unreachable
from promrw_doctor.core.facts import FactError

MMP_ROLE = "Monitoring Metrics Publisher"
MMP_ROLE_ID = "3913510d-42f4-4e42-8a64-420c390055eb"
MIO_ROLE = "Managed Identity Operator"
MIO_ROLE_ID = "f1a07417-d97a-45cb-824c-7a7467783830"
VMC_ROLE = "Virtual Machine Contributor"
VMC_ROLE_ID = "9980e02c-c2be-4d73-94e8-173b1dc7cf3c"
PROPAGATION_MINUTES = 30.0
KPS_CHART = "prometheus-community/kube-prometheus-stack"


def optional(ctx: Any, name: str) -> tuple[Any, str | None]:
    """``(value, None)``; ``(None, None)`` when the fact does not apply; ``(None, needs)`` when the doctor
    could not look. Input errors still abort the run."""
    try:
        return ctx.fact(name), None
    except FactError as exc:
        cause = exc.cause
        if isinstance(cause, InputError):
            raise cause from None
        if isinstance(cause, NotApplicable):
            return None, None
        if isinstance(cause, AccessDenied):
            return None, cause.needs
        if isinstance(cause, Unreachable):
            return None, f"reachable {cause.what}"
        raise


def pod_of(target: Target) -> tuple[str, str]:
    return str(target.attributes.get("namespace", "")), str(target.attributes.get("pod", ""))


def helm_env(namespace: str, settings: dict[str, str], container: str = "prom-remotewrite") -> list[str]:
    """Remediation lines for a sidecar env change that survives the next rollout (Helm values)."""
    pairs = ", ".join(f"{{name: {k}, value: \"{v}\"}}" for k, v in settings.items())
    return [
        f"Helm values (kube-prometheus-stack): prometheus.prometheusSpec.containers[name={container}].env: "
        f"add/replace [{pairs}]",
        f"helm upgrade <release> {KPS_CHART} -n {namespace} --reuse-values -f fix-values.yaml",
    ]


def scope_label(scope: str, node_rg: str | None = None) -> str:
    """What an ARM scope is, in words an operator recognises."""
    s = scope.rstrip("/")
    low = s.lower()
    parts = s.split("/")
    if low in ("", "/"):
        return "the root scope"
    if "/providers/microsoft.insights/datacollectionrules/" in low:
        return f"the data collection rule {parts[-1]}"
    if "/providers/microsoft.insights/datacollectionendpoints/" in low:
        return f"the data collection endpoint {parts[-1]} (not its DCR)"
    if "/providers/microsoft.monitor/accounts/" in low:
        return f"the Azure Monitor workspace {parts[-1]} (not its DCR)"
    if "/providers/" in low:
        return f"the resource {parts[-1]}"
    if "/resourcegroups/" in low:
        rg = parts[-1]
        if (node_rg and rg.lower() == node_rg.lower()) or rg.upper().startswith("MC_"):
            return f"the AKS node resource group {rg}"
        if rg.upper().startswith("MA_"):
            return f"the workspace's managed resource group {rg}"
        return f"the resource group {rg}"
    if low.startswith("/subscriptions/"):
        return f"the subscription {parts[-1]}"
    if "managementgroups" in low:
        return f"the management group {parts[-1]}"
    return s
