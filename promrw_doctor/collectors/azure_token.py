"""A token *as the sidecar's identity*, acquired only where the doctor can do so honestly.

Honest means with the sidecar's own credentials, so a success or an AADSTS refusal says
something about the sidecar and not about the doctor:

* ``aadApplication`` and ``--client-certificate FILE``: the application's certificate,
  against the profile's authority (the same ``CertificateCredential`` the forwarder uses);
* running in-cluster in the pod's identity context: the same namespace and service account
  (workload identity: the projected token file), the same ``aadpodidbinding`` (pod
  identity: NMI answers for this pod), or a node of the cluster (kubelet managed identity).

Anything else is ``NotApplicable`` with how to enable it. Only the decoded claims are kept:
the token itself never leaves :func:`acquire`.

Fact (target scope): ``azure.sidecar_token`` (:class:`SidecarToken`).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.errors import NotApplicable
from ..core.facts import FactContext, fact
from ..domain import aadsts
from ..domain.clouds import CloudProfile, normalize_audience
from ..domain.ingestion_url import cloud_owning_host
from ..domain.sidecar import SidecarSettings, effective_ingestion_audience, is_guid
from .azure import extra_clouds

SA_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
HOW_TO_ENABLE = ("to test token acquisition as the sidecar's identity, pass --client-certificate FILE (and "
                 "--client-certificate-password) for an Entra application, or run the doctor in-cluster as a pod "
                 "with the sidecar's service account / aadpodidbinding label")


@dataclass(frozen=True)
class SidecarToken:
    """The outcome of one token request as the sidecar's identity (claims only, never the token)."""

    how: str
    identity: str
    audience: str
    ok: bool
    claims: Any = None  # identity.claims.TokenClaims
    error: str | None = None
    category: str | None = None
    aadsts_code: int | None = None
    aadsts_meaning: str | None = None
    aadsts_fix: str | None = None
    aadsts_hint: str | None = None
    certificate_reason: str | None = None  # AADSTS700027: expired | not-yet-valid | not-registered


def _in_cluster() -> tuple[str, str] | None:
    """(namespace, pod name) when the doctor runs inside a Kubernetes pod."""
    if not os.environ.get("KUBERNETES_SERVICE_HOST"):
        return None
    try:
        ns = (SA_DIR / "namespace").read_text(encoding="utf-8").strip()
    except OSError:
        return None
    name = os.environ.get("POD_NAME") or os.environ.get("HOSTNAME") or ""
    return (ns, name) if ns and name else None


def _own_pod(ctx: FactContext, ns: str, name: str) -> dict[str, Any] | None:
    try:
        from .kube_client import PODS

        client = ctx.fact("k8s.api")
        pod: dict[str, Any] | None = client.read(PODS, ns, name)
        return pod
    except Exception:
        return None


def _in_cluster_settings(ctx: FactContext, variant: str, settings: SidecarSettings,
                         audience: str, profile: CloudProfile) -> tuple[Any, str] | None:
    """IdentitySettings for an in-cluster run in the pod's identity context, with a description; else None."""
    from ..identity.settings import IdentitySettings, needs_instance_discovery_disabled

    where = _in_cluster()
    if where is None:
        return None
    ns, name = where
    target_pod = ctx.fact("k8s.pod")
    target_meta = target_pod.get("metadata") or {}
    if ns != target_meta.get("namespace"):
        return None
    own = _own_pod(ctx, ns, name)
    if own is None:
        return None
    own_spec, target_spec = own.get("spec") or {}, target_pod.get("spec") or {}
    ca = os.environ.get("REQUESTS_CA_BUNDLE")
    if variant == "workloadIdentity":
        token_file = os.environ.get("AZURE_FEDERATED_TOKEN_FILE")
        if own_spec.get("serviceAccountName") != target_spec.get("serviceAccountName") or not token_file:
            return None
        authority = os.environ.get("AZURE_AUTHORITY_HOST") or profile.authority_host
        return IdentitySettings("workloadIdentity", audience, client_id=settings.client_id,
                                tenant_id=settings.tenant_id or os.environ.get("AZURE_TENANT_ID"),
                                federated_token_file=token_file, authority_host=authority,
                                disable_instance_discovery=needs_instance_discovery_disabled(authority),
                                ca_bundle=ca), f"in-cluster as pod {ns}/{name} (same service account)"
    if variant == "podIdentity":
        own_label = (own.get("metadata") or {}).get("labels", {}).get("aadpodidbinding")
        if not own_label or own_label != (target_meta.get("labels") or {}).get("aadpodidbinding"):
            return None
        return IdentitySettings("userAssigned", audience, client_id=settings.client_id, imds_retry_total=0,
                                ca_bundle=ca), f"in-cluster as pod {ns}/{name} (same aadpodidbinding)"
    if variant == "managedIdentity":
        return IdentitySettings("userAssigned", audience, client_id=settings.client_id, imds_retry_total=0,
                                ca_bundle=ca), f"in-cluster as pod {ns}/{name} (node managed identity)"
    return None


def _quiet_sdk_logs() -> None:
    """azure-identity logs each refusal at WARNING; without a handler Python prints it raw to stderr
    (multi-line, mid-report). The finding carries the same cause, one line and redacted; an
    application that configures logging still receives the records."""
    for name in ("azure.identity", "msal"):
        logger = logging.getLogger(name)
        if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
            logger.addHandler(logging.NullHandler())


def acquire(identity_settings: Any, how: str) -> SidecarToken:
    """One token request; keep its claims (or the one-line, redacted cause), drop the token."""
    from ..identity.credentials import TokenSource

    _quiet_sdk_logs()
    from ..identity.errors import TokenError

    source = TokenSource(identity_settings)
    audience = identity_settings.audience
    try:
        token = source.fetch()
    except TokenError as exc:
        found = aadsts.find(exc.cause)
        entry = found[1] if found else None
        return SidecarToken(how=how, identity=exc.identity or identity_settings.describe(), audience=audience,
                            ok=False, error=exc.cause, category=exc.category,
                            aadsts_code=found[0] if found else None, aadsts_meaning=entry.meaning if entry else None,
                            aadsts_fix=entry.fix if entry else None, aadsts_hint=entry.hint_code if entry else None,
                            certificate_reason=aadsts.certificate_reason(exc.cause))
    claims = token.claims()
    del token
    return SidecarToken(how=how, identity=identity_settings.describe(), audience=audience, ok=True, claims=claims)


@fact("azure.sidecar_token", scope="target")
def sidecar_token(ctx: FactContext) -> SidecarToken:
    """Token acquisition as the sidecar's identity (``--client-certificate`` or in-cluster), claims only."""
    from ..identity.settings import IdentitySettings

    settings: SidecarSettings = ctx.fact("sidecar.settings")
    variant = str(ctx.fact("target.variant"))
    profile: CloudProfile = ctx.fact("azure.cloud")
    host_cloud = None
    try:
        url = ctx.fact("azure.ingestion_url")
        if url.parsed is not None:
            host_cloud = cloud_owning_host(url.parsed.host, extra_clouds(profile))
    except Exception:
        host_cloud = None
    audience = normalize_audience(effective_ingestion_audience(settings, host_cloud))
    cert = ctx.option("client_certificate")
    if variant == "aadApplication" and cert:
        ctx.fact("azure.certificate_file")  # bad file or password: exit 2 before any network call
        if not (is_guid(settings.client_id) and is_guid(settings.tenant_id)):
            raise NotApplicable("AZURE_CLIENT_ID/AZURE_TENANT_ID are missing or not GUIDs (see the sidecar env "
                                "check)")
        identity = IdentitySettings(
            "aadApplication", audience, client_id=settings.client_id, tenant_id=settings.tenant_id,
            certificate_path=str(cert), certificate_password=ctx.option("client_certificate_password") or None,
            authority_host=profile.authority_host, disable_instance_discovery=profile.disable_instance_discovery,
            ca_bundle=os.environ.get("REQUESTS_CA_BUNDLE"))
        return acquire(identity, f"client certificate {cert} against {profile.authority_host}")
    if variant != "aadApplication" and settings.client_id:
        found = _in_cluster_settings(ctx, variant, settings, audience, profile)
        if found is not None:
            return acquire(found[0], found[1])
    raise NotApplicable(f"not attempted: {HOW_TO_ENABLE}")
