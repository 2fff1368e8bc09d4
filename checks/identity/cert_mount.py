"""The Entra application certificate is mounted where AZURE_CLIENT_CERTIFICATE_PATH says, with its key."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from promrw_doctor.core import Skip, check

from ..kubernetes._common import container_name, pod_of
from .workload_identity import covering_mount

CSI_DRIVER = "secrets-store.csi.k8s.io"
VARIANT = ["aadApplication"]


def spc_objects(spc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The Key Vault objects of an Azure SecretProviderClass (``parameters.objects`` is YAML in a string)."""
    import yaml

    raw = ((spc.get("spec") or {}).get("parameters") or {}).get("objects")
    if not raw:
        return []
    try:
        data = yaml.safe_load(raw) if isinstance(raw, str) else raw
    except yaml.YAMLError:
        return []
    items = (data or {}).get("array") if isinstance(data, Mapping) else None
    out = []
    for item in items or []:
        try:
            obj = yaml.safe_load(item) if isinstance(item, str) else item
        except yaml.YAMLError:
            continue
        if isinstance(obj, Mapping):
            out.append(dict(obj))
    return out


def file_name(obj: Mapping[str, Any]) -> str:
    """The file the provider writes for an object: ``objectAlias`` when set, else ``objectName``."""
    return str(obj.get("objectAlias") or obj.get("objectName") or "")


@dataclass
class CertLocation:
    """Where the certificate path leads, and what is wrong on the way (``problems``)."""

    path: str
    mount: Mapping[str, Any] | None = None
    volume: Mapping[str, Any] | None = None
    spc_name: str | None = None
    spc: Mapping[str, Any] | None = None
    obj: Mapping[str, Any] | None = None
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def evidence(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path}
        if self.mount is not None:
            out["volumeMount"] = {"name": self.mount.get("name"), "mountPath": self.mount.get("mountPath")}
        if self.spc_name:
            out["secretProviderClass"] = self.spc_name
        if self.obj is not None:
            out["object"] = {k: self.obj.get(k) for k in ("objectName", "objectAlias", "objectType", "objectFormat")
                             if self.obj.get(k) is not None}
        if self.notes:
            out["notes"] = list(self.notes)
        return out


def locate(path: str, pod: Mapping[str, Any], container: Mapping[str, Any],
           spcs: Sequence[Mapping[str, Any]] | None) -> CertLocation:
    """Follow the path: volumeMount -> volume -> (CSI) SecretProviderClass -> object whose file it is."""
    loc = CertLocation(path)
    cname = str(container.get("name"))
    loc.mount = covering_mount(path, container.get("volumeMounts") or [])
    if loc.mount is None:
        mounts = [str(m.get("mountPath")) for m in container.get("volumeMounts") or []]
        loc.problems.append(f"AZURE_CLIENT_CERTIFICATE_PATH {path} is not under any volumeMount of {cname} "
                            f"(mounts: {', '.join(mounts) or 'none'})")
        return loc
    volumes = {str(v.get("name")): v for v in (pod.get("spec") or {}).get("volumes") or []}
    loc.volume = volumes.get(str(loc.mount.get("name")))
    if loc.volume is None:
        loc.problems.append(f"volumeMount {loc.mount.get('name')} names no volume of the pod")
        return loc
    rel = path[len(str(loc.mount.get("mountPath")).rstrip("/")) + 1:]
    csi = loc.volume.get("csi")
    if isinstance(csi, Mapping):
        if csi.get("driver") != CSI_DRIVER:
            loc.notes.append(f"volume {loc.mount.get('name')} uses CSI driver {csi.get('driver')}")
            return loc
        loc.spc_name = str((csi.get("volumeAttributes") or {}).get("secretProviderClass") or "")
        if spcs is None:
            loc.notes.append("SecretProviderClasses not read (permission)")
            return loc
        loc.spc = next((s for s in spcs if (s.get("metadata") or {}).get("name") == loc.spc_name), None)
        if loc.spc is None:
            names = sorted(str((s.get("metadata") or {}).get("name")) for s in spcs)
            loc.problems.append(f"SecretProviderClass {loc.spc_name or '(none named)'} does not exist in the pod's "
                                f"namespace (existing: {', '.join(names) or 'none'}); the CSI volume cannot mount")
            return loc
        objects = spc_objects(loc.spc)
        loc.obj = next((o for o in objects if file_name(o) == rel), None)
        if loc.obj is None:
            files = [file_name(o) for o in objects]
            loc.problems.append(f"{path}: SecretProviderClass {loc.spc_name} mounts {', '.join(files) or 'no object'} "
                                f"at {loc.mount.get('mountPath')}, not {rel!r} (the file name is objectAlias or "
                                "objectName)")
        return loc
    secret = loc.volume.get("secret")
    if isinstance(secret, Mapping):
        items = [str(i.get("path")) for i in secret.get("items") or []]
        if items and rel not in items:
            loc.problems.append(f"{path}: Secret volume {secret.get('secretName')} projects {', '.join(items)}, "
                                f"not {rel!r}")
        else:
            loc.notes.append(f"mounted from Secret {secret.get('secretName')} (keys not read)")
        return loc
    loc.notes.append(f"volume {loc.mount.get('name')} is not a CSI or Secret volume; content not verifiable")
    return loc


def _location(ctx: Any) -> CertLocation:
    settings = ctx.fact("sidecar.settings")
    path = (settings.certificate_path or "").strip()
    if not path.startswith("/"):
        raise Skip("AZURE_CLIENT_CERTIFICATE_PATH is missing or not absolute (reported by kubernetes.sidecar-config)")
    spcs = ctx.try_fact("k8s.secret_provider_classes")
    return locate(path, ctx.fact("k8s.pod"), ctx.fact("k8s.sidecar_container"), spcs)


@check(id="identity.cert-mount", title="Client certificate is mounted at AZURE_CLIENT_CERTIFICATE_PATH",
       category="identity", severity="critical", codes=["CERT_NOT_MOUNTED"], variants=VARIANT,
       depends_on=["kubernetes.sidecar-present"], needs=["sidecar.settings", "k8s.pod", "k8s.sidecar_container"],
       tags=["certificate"])
def cert_mount(ctx: Any) -> Any:
    """``AZURE_CLIENT_CERTIFICATE_PATH`` lies under a volumeMount of the sidecar; for the Secrets
    Store CSI driver the volume's SecretProviderClass exists in the namespace and one of its
    objects is written under that file name (``objectAlias``, else ``objectName``).

    A path that names another file than the CSI object (``prom-rw-certificate`` vs
    ``prom-rw-cert``) or a misnamed SecretProviderClass leaves the sidecar without a
    certificate: token acquisition fails ("no such file or directory") or the pod never starts.
    """
    loc = _location(ctx)
    ns, name = pod_of(ctx.target)
    if not loc.problems:
        return ctx.passed(f"{loc.path} is mounted" + (f" from SecretProviderClass {loc.spc_name}" if loc.spc_name
                                                       else ""), evidence=loc.evidence())
    cname = container_name(ctx.target)
    remediation = [f"kubectl -n {ns} get secretproviderclass -o yaml",
                   f"kubectl -n {ns} describe pod {name}   # FailedMount events"]
    if loc.obj is None and loc.spc is not None:
        files = [file_name(o) for o in spc_objects(loc.spc)]
        if len(files) == 1 and loc.mount is not None:
            right = f"{str(loc.mount.get('mountPath')).rstrip('/')}/{files[0]}"
            remediation.insert(0, f"set AZURE_CLIENT_CERTIFICATE_PATH={right} on {cname} "
                                  "(prometheus.prometheusSpec.containers[name=prom-remotewrite].env) and helm upgrade")
    return ctx.fail("CERT_NOT_MOUNTED", "; ".join(loc.problems), evidence=loc.evidence(), remediation=remediation)


@check(id="identity.cert-private-key", title="The mounted certificate includes its private key",
       category="identity", severity="critical", codes=["CERT_NO_PRIVATE_KEY"], variants=VARIANT,
       depends_on=["identity.cert-mount"], needs=["sidecar.settings", "k8s.pod", "k8s.sidecar_container"],
       tags=["certificate"])
def cert_private_key(ctx: Any) -> Any:
    """The Key Vault object behind the certificate file is fetched with ``objectType: secret``.

    With the Azure provider ``objectType: cert`` writes only the public certificate and
    ``objectType: key`` only the public key; the private key needed to sign the client
    assertion comes only with ``objectType: secret`` (PEM or PFX).
    """
    loc = _location(ctx)
    if loc.obj is None:
        raise Skip("the certificate is not mounted from a SecretProviderClass object: key presence not verifiable "
                   "without reading the file")
    kind = str(loc.obj.get("objectType") or "").strip().lower()
    ns, _ = pod_of(ctx.target)
    if kind in ("cert", "key"):
        what = "only the public certificate" if kind == "cert" else "only the public key"
        return ctx.fail(
            "CERT_NO_PRIVATE_KEY",
            f"SecretProviderClass {loc.spc_name} fetches {loc.obj.get('objectName')} with objectType: {kind}, which "
            f"writes {what}; the sidecar needs the private key (objectType: secret)",
            evidence=loc.evidence(),
            remediation=[f"kubectl -n {ns} edit secretproviderclass {loc.spc_name}   # objectType: secret",
                         f"kubectl -n {ns} rollout restart statefulset/<prometheus-statefulset>   # remount"],
        )
    return ctx.passed(f"{loc.obj.get('objectName')} is fetched as objectType {kind or 'secret'} (key and certificate)",
                      evidence=loc.evidence())
