"""Was a Prometheus pod found, and does it carry the remote-write sidecar?"""

from __future__ import annotations

from typing import Any

from promrw_doctor.core import Unknown, check

from ._common import SIDECAR, describe, helm_release, helm_values, pod_of

FIND_ALL = ("kubectl get pods -A -o json | jq -r '.items[] | select(any(.spec.containers[]; "
            ".name==\"prom-remotewrite\" or any(.env[]?; .name==\"INGESTION_URL\"))) | "
            ".metadata.namespace + \"/\" + .metadata.name'")


@check(id="kubernetes.prometheus-pod", title="A Prometheus pod with a remote-write sidecar is found",
       category="kubernetes", severity="critical", codes=["PROM_POD_NOT_FOUND"], tags=["discovery"])
def prometheus_pod(ctx: Any) -> Any:
    """Discovery found the Prometheus pod(s) to examine, with only a kubeconfig context.

    Prometheus pods are listed cluster-wide (or in ``-n``) by the labels every common install
    sets (``app.kubernetes.io/name=prometheus``, ``operator.prometheus.io/name``,
    ``app=prometheus``); a pod with a ``prom-remotewrite`` container (or any container with
    ``INGESTION_URL``) is checked. When none is found every other check is moot, so this is
    the root of the check graph; the finding says which context, namespaces and selectors
    were searched.
    """
    t = ctx.target
    if t.kind == "pod":
        return ctx.passed(f"checking {t.description.lower()} {t.id}", evidence=dict(t.attributes))
    a = t.attributes
    denied = list(a.get("denied") or [])
    namespaces = a.get("namespaces")
    if denied and namespaces == []:
        raise Unknown(f"could not list pods where Prometheus might run: missing permission {denied[0]}",
                      needs=denied[0])
    evidence = {"context": a.get("context"), "searched": a.get("searched"), "selectors": a.get("selectors")}
    if a.get("notes"):
        evidence["notes"] = a["notes"]
    if denied:
        evidence["denied"] = denied
    return ctx.fail(
        "PROM_POD_NOT_FOUND",
        f"no Prometheus pod found in {a.get('searched')} of context {a.get('context')} "
        f"(selectors: {', '.join(a.get('selectors') or [])})",
        evidence=evidence,
        remediation=[
            "kubectl config current-context",
            "kubectl get pods -A -l app.kubernetes.io/name=prometheus -o wide",
            FIND_ALL,
            "promrw-doctor run -n <namespace> --pod <prometheus-pod>   # when Prometheus carries other labels",
        ],
    )


@check(id="kubernetes.sidecar-present", title="The Prometheus pod has the prom-remotewrite sidecar",
       category="kubernetes", severity="critical", codes=["SIDECAR_MISSING"], depends_on=["kubernetes.prometheus-pod"],
       needs=["k8s.pod", "k8s.sidecar_container"], tags=["sidecar"])
def sidecar_present(ctx: Any) -> Any:
    """The Prometheus pod runs the remote-write sidecar (``prom-remotewrite``).

    The sidecar attaches the Entra token and forwards to the ingestion endpoint; without it
    Prometheus writes to a port nobody listens on. When the Prometheus CR declares the
    container but the pod lacks it, the operator has not rolled the StatefulSet yet.
    """
    container = ctx.fact("k8s.sidecar_container")
    ns, pod = pod_of(ctx.target)
    if container is not None:
        return ctx.passed(f"sidecar container {container.get('name')} runs {container.get('image')}",
                          evidence={"container": container.get("name"), "image": container.get("image")})
    spec = ctx.fact("k8s.pod").get("spec") or {}
    names = [c.get("name") for c in spec.get("containers") or []]
    cr = ctx.try_fact("k8s.prometheus_cr")
    rw = ctx.try_fact("k8s.remote_write_config")
    evidence: dict[str, Any] = {"pod": f"{ns}/{pod}", "containers": names}
    if rw is not None:
        evidence["remote_write_urls"] = [u["url"] for u in rw.urls]
    declared = bool(cr) and any((c or {}).get("name") == SIDECAR
                                for c in (cr.get("spec") or {}).get("containers") or [])
    release = helm_release(cr)
    if declared:
        owner = str(ctx.target.attributes.get("owner") or "")
        sts = owner.split("/", 1)[1] if owner.startswith("StatefulSet/") else f"prometheus-{cr['metadata']['name']}"
        return ctx.fail(
            "SIDECAR_MISSING",
            f"pod {ns}/{pod} has no {SIDECAR} container although Prometheus {cr['metadata']['name']} declares it: "
            "the pod predates the change",
            evidence=evidence,
            remediation=[f"kubectl -n {ns} rollout restart statefulset/{sts}",
                         "kubectl -n <operator-namespace> logs deploy/<prometheus-operator> | grep -i error"],
        )
    return ctx.fail(
        "SIDECAR_MISSING",
        f"pod {ns}/{pod} has no {SIDECAR} container (containers: {', '.join(str(n) for n in names)})",
        evidence=evidence,
        remediation=[
            describe(ns, pod),
            *helm_values(ns, release, "prometheus: {prometheusSpec: {containers: [{name: prom-remotewrite, image: "
                         "mcr.microsoft.com/azuremonitor/containerinsights/ciprod/prometheus-remote-write/images:"
                         "prom-remotewrite-20250814.1, ports: [{name: rw-port, containerPort: 8081}], env: [{name: "
                         "INGESTION_URL, value: <ingestion-url>}, {name: LISTENING_PORT, value: '8081'}, {name: "
                         "IDENTITY_TYPE, value: <identity-type>}, {name: AZURE_CLIENT_ID, value: <client-id>}]}]}}"),
        ],
    )
