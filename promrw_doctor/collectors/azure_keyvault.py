"""Key Vault facts: which Key Vault certificate the pod mounts for the sidecar, and its current state.

The Secrets Store CSI driver copies a Key Vault object into the pod; the sidecar reads
it as ``AZURE_CLIENT_CERTIFICATE_PATH``. Which object that is follows from the pod: the
CSI volume names a SecretProviderClass, whose ``keyvaultName`` and ``objects`` list
(``objectName``/``objectAlias``) name the file. Key Vault then says whether the
certificate has expired (``attributes.exp``), is enabled, and renews itself (an
``AutoRenew`` lifetime action), and its ``x5t`` is the thumbprint to compare with the
application's registered certificates.

Facts (target scope): ``azure.keyvault_source`` (:class:`KeyVaultSource`),
``azure.keyvault_certificate`` (:class:`KeyVaultCertificate` or None when the vault has no
such certificate).
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..core.errors import NotApplicable
from ..core.facts import FactContext, fact
from ..domain.certs import parse_time, thumbprint_from_b64_der, thumbprint_from_x5t
from ..domain.sidecar import SidecarSettings
from .azure_http import AzureHttp

CSI_DRIVER = "secrets-store.csi.k8s.io"


@dataclass(frozen=True)
class KeyVaultSource:
    vault: str
    object_name: str
    object_type: str  # secret | cert | key
    object_version: str
    secret_provider_class: str
    file: str  # the path the sidecar reads

    def describe(self) -> str:
        return (f"Key Vault {self.vault}, {self.object_type} {self.object_name} (SecretProviderClass "
                f"{self.secret_provider_class}, mounted as {self.file})")


@dataclass(frozen=True)
class KeyVaultCertificate:
    vault: str
    name: str
    version: str
    thumbprint: str | None
    not_before: datetime | None
    expires: datetime | None
    enabled: bool
    auto_renew: bool | None  # None: the policy could not be read
    url: str

    def to_evidence(self) -> dict[str, Any]:
        from ..domain.certs import iso

        return {"vault": self.vault, "name": self.name, "version": self.version, "thumbprint": self.thumbprint,
                "not_before": iso(self.not_before) if self.not_before else None,
                "expires": iso(self.expires) if self.expires else None, "enabled": self.enabled,
                "auto_renew": self.auto_renew}


def parse_objects(raw: Any) -> list[dict[str, str]]:
    """``spec.parameters.objects`` (a YAML string ``array: [ "<yaml>", … ]``) -> list of object dicts."""
    import yaml

    try:
        data = yaml.safe_load(raw) if isinstance(raw, str) else raw
    except yaml.YAMLError:
        return []
    items = (data or {}).get("array") if isinstance(data, dict) else data
    out: list[dict[str, str]] = []
    for item in items or []:
        try:
            obj = yaml.safe_load(item) if isinstance(item, str) else item
        except yaml.YAMLError:
            continue
        if isinstance(obj, dict):
            out.append({str(k): "" if v is None else str(v) for k, v in obj.items()})
    return out


def _csi_mounts(pod: dict[str, Any], container_name: str) -> dict[str, str]:
    """mount path -> SecretProviderClass name, for the CSI volumes the container mounts."""
    spec = pod.get("spec") or {}
    classes: dict[str, str] = {}
    for vol in spec.get("volumes") or []:
        csi = (vol or {}).get("csi") or {}
        if csi.get("driver") == CSI_DRIVER:
            spc = (csi.get("volumeAttributes") or {}).get("secretProviderClass")
            if spc:
                classes[str(vol.get("name"))] = str(spc)
    out: dict[str, str] = {}
    for c in spec.get("containers") or []:
        if c.get("name") != container_name:
            continue
        for m in c.get("volumeMounts") or []:
            if m.get("name") in classes:
                out[str(m.get("mountPath") or "").rstrip("/")] = classes[str(m["name"])]
    return out


def find_source(pod: dict[str, Any], container_name: str, certificate_path: str,
                classes: list[dict[str, Any]]) -> KeyVaultSource | None:
    """The Key Vault object behind ``certificate_path`` in ``container_name`` of ``pod`` (None if not CSI)."""
    mounts = _csi_mounts(pod, container_name)
    path = posixpath.normpath(certificate_path)
    for mount, spc_name in sorted(mounts.items(), key=lambda kv: -len(kv[0])):
        if not (path == mount or path.startswith(mount + "/")):
            continue
        file_name = path[len(mount):].lstrip("/")
        spc = next((s for s in classes if (s.get("metadata") or {}).get("name") == spc_name), None)
        if spc is None:
            return None
        params = (spc.get("spec") or {}).get("parameters") or {}
        vault = str(params.get("keyvaultName") or "")
        objects = parse_objects(params.get("objects"))
        chosen = next((o for o in objects if (o.get("objectAlias") or o.get("objectName")) == file_name), None)
        if chosen is None and len(objects) == 1:
            chosen = objects[0]
        if chosen is None or not vault:
            return None
        return KeyVaultSource(vault=vault, object_name=chosen.get("objectName", ""),
                              object_type=(chosen.get("objectType") or "secret").lower(),
                              object_version=chosen.get("objectVersion", ""), secret_provider_class=spc_name,
                              file=certificate_path)
    return None


@fact("azure.keyvault_source", scope="target")
def keyvault_source(ctx: FactContext) -> KeyVaultSource:
    """The Key Vault object the sidecar's certificate file is mounted from (Secrets Store CSI)."""
    if str(ctx.fact("target.variant")) != "aadApplication":
        raise NotApplicable("only an Entra application uses a certificate")
    settings: SidecarSettings = ctx.fact("sidecar.settings")
    if not settings.certificate_path:
        raise NotApplicable("AZURE_CLIENT_CERTIFICATE_PATH is not set")
    container = ctx.fact("k8s.sidecar_container") or {}
    pod = ctx.fact("k8s.pod")
    classes = ctx.fact("k8s.secret_provider_classes")
    found = find_source(pod, str(container.get("name") or ""), settings.certificate_path, list(classes or []))
    if found is None:
        raise NotApplicable(f"{settings.certificate_path} is not mounted from Key Vault by a SecretProviderClass")
    if found.object_type == "key":
        raise NotApplicable(f"{found.describe()} is a key, not a certificate")
    return found


def certificate_from_bundle(vault: str, name: str, bundle: dict[str, Any],
                            policy: dict[str, Any] | None) -> KeyVaultCertificate:
    attrs = bundle.get("attributes") or {}
    thumb = thumbprint_from_x5t(bundle.get("x5t")) or thumbprint_from_b64_der(bundle.get("cer"))
    version = str(bundle.get("id") or "").rstrip("/").rsplit("/", 1)[-1]
    auto_renew: bool | None = None
    if policy is not None:
        actions = policy.get("lifetime_actions") or policy.get("lifetimeActions") or []
        auto_renew = any(str(((a or {}).get("action") or {}).get("action_type")
                             or ((a or {}).get("action") or {}).get("actionType") or "").lower() == "autorenew"
                         for a in actions)
    return KeyVaultCertificate(vault=vault, name=name, version=version, thumbprint=thumb,
                               not_before=parse_time(attrs.get("nbf")), expires=parse_time(attrs.get("exp")),
                               enabled=bool(attrs.get("enabled", True)), auto_renew=auto_renew,
                               url=str(bundle.get("id") or ""))


@fact("azure.keyvault_certificate", scope="target")
def keyvault_certificate(ctx: FactContext) -> KeyVaultCertificate | None:
    """The mounted Key Vault certificate (the pinned version, else the current one) and its policy."""
    source: KeyVaultSource = ctx.fact("azure.keyvault_source")
    client: AzureHttp = ctx.fact("azure.http")
    path = f"certificates/{source.object_name}" + (f"/{source.object_version}" if source.object_version else "")
    bundle = client.cached(("kv", source.vault.lower(), path.lower()), lambda: client.keyvault(source.vault, path))
    if bundle is None:
        return None
    policy = bundle.get("policy") if isinstance(bundle.get("policy"), dict) else None
    if policy is None:
        policy = client.cached(("kv", source.vault.lower(), f"{path}/policy".lower()),
                               lambda: client.keyvault(source.vault, f"certificates/{source.object_name}/policy"))
    return certificate_from_bundle(source.vault, source.object_name, bundle, policy)
