"""Entra application certificate wiring: env path -> CSI mount -> SecretProviderClass object of type secret."""

from __future__ import annotations

from promrw_doctor.core import Finding, Severity, Skip, check
from promrw_doctor.core.engine import CheckContext
from promrw_doctor.lint.certwiring import CSI_DRIVER, CertWiring, resolve
from promrw_doctor.lint.loader import DocumentSet
from promrw_doctor.lint.views import Sidecar, all_sidecars, to_yaml

ARTICLE = "https://learn.microsoft.com/azure/azure-monitor/containers/prometheus-remote-write-active-directory"
PROVIDER_DOCS = ("https://azure.github.io/secrets-store-csi-driver-provider-azure/docs/configurations/"
                 "getting-certs-and-keys/")


def _cert_sidecars(ctx: CheckContext) -> tuple[DocumentSet, list[Sidecar]]:
    docs: DocumentSet = ctx.fact("lint.documents")
    sidecars = [s for s in all_sidecars(docs) if s.identity_type == "aadApplication"]
    if not sidecars:
        raise Skip("no sidecar with IDENTITY_TYPE aadApplication (certificate wiring applies to Entra applications)")
    return docs, sidecars


def _mount_snippet(w: CertWiring, docs: DocumentSet) -> list[str]:
    s = w.sidecar
    path = w.cert_path or "/mnt/secrets-store/<objectName>"
    mount_path = str(w.mount.get("mountPath")) if w.mount else path.rsplit("/", 1)[0] or "/mnt/secrets-store"
    classes = [c.name for c in docs.of_kind("SecretProviderClass") if c.name]
    spc = ((w.spc.name if w.spc else None) or (classes[0] if len(classes) == 1 else None) or w.spc_name
           or "<SecretProviderClass name>")
    volume = str(w.mount.get("name")) if w.mount else "secrets-store-inline"
    file_name = w.objects[0].file_name if w.objects and w.file_name not in [o.file_name for o in w.objects] \
        else (w.file_name or "<objectName>")
    return [
        f"{s.workload.dotted('volumes')}:\n" + to_yaml([{"name": volume, "csi": {
            "driver": CSI_DRIVER, "readOnly": True, "volumeAttributes": {"secretProviderClass": spc}}}]),
        f"{s.dotted('volumeMounts')}:\n" + to_yaml([{"name": volume, "mountPath": mount_path, "readOnly": True}]),
        f"{s.dotted('env')}:\n" + to_yaml([{"name": "AZURE_CLIENT_CERTIFICATE_PATH",
                                             "value": f"{mount_path.rstrip('/')}/{file_name}"}]),
    ]


@check(
    id="lint.certificate-wiring",
    title="AZURE_CLIENT_CERTIFICATE_PATH is a file the CSI volume mounts",
    category="lint",
    severity="critical",
    codes=["CERT_NOT_MOUNTED", "SECRET_PROVIDER_CLASS_NOT_GIVEN", "SECRET_PROVIDER_CLASS_INVALID"],
    needs=["lint.documents"],
    depends_on=["lint.sidecar-present"],
    docs_url=ARTICLE,
    tags=["aad-application", "certificate"],
)
def certificate_wiring(ctx: CheckContext) -> list[Finding]:
    """For `aadApplication`, follow the certificate from the env to the Key Vault object.

    AZURE_CLIENT_CERTIFICATE_PATH must lie under the `mountPath` of a volumeMount of the sidecar;
    that volume must be a `secrets-store.csi.k8s.io` CSI volume whose `secretProviderClass` is the
    SecretProviderClass's `metadata.name`; and the file name must be an `objectName` (or
    `objectAlias`) in that class's `objects`. Any broken link: the sidecar finds no certificate.
    """
    docs, sidecars = _cert_sidecars(ctx)
    out: list[Finding] = []
    for s in sidecars:
        subject = f"{s.workload.label} container {s.name}"
        w = resolve(s, docs)
        if w.status == "skip":
            continue
        if w.status == "ok":
            assert w.spc is not None and w.obj is not None
            out.append(ctx.passed(
                f"{subject}: {w.cert_path} is object {w.obj.name} of {w.spc.label}",
                location=s.env_loc("AZURE_CLIENT_CERTIFICATE_PATH"), subject=subject,
                evidence={"certificate_path": w.cert_path, "secretProviderClass": w.spc.name,
                          "object": w.obj.name},
            ))
            continue
        if w.status == "note":
            out.append(ctx.note("CERT_NOT_MOUNTED", f"{subject}: {w.problem}", location=w.location,
                                subject=subject, evidence=w.evidence))
            continue
        if w.status == "warn":
            out.append(ctx.warn(
                w.code or "SECRET_PROVIDER_CLASS_NOT_GIVEN", f"{subject}: {w.problem}", location=w.location,
                subject=subject, severity=Severity.LOW, evidence=w.evidence,
                remediation=[f"promrw-doctor lint {s.doc.file} <secretproviderclass.yaml>",
                             f"kubectl get secretproviderclass {w.spc_name} -n <namespace> -o yaml"],
            ))
            continue
        fix = _mount_snippet(w, docs)
        if w.code == "SECRET_PROVIDER_CLASS_INVALID" and w.spc is not None:
            fix = ["objects: |\n  array:\n    - |\n      objectName: <certificate name in Key Vault>\n"
                   "      objectType: secret", f"kubectl apply -f {w.spc.file}"]
        out.append(ctx.fail(w.code or "CERT_NOT_MOUNTED", f"{subject}: {w.problem}", location=w.location,
                            subject=subject, evidence=w.evidence, remediation=fix))
    if not out:
        raise Skip("AZURE_CLIENT_CERTIFICATE_PATH not set or a placeholder (see lint.sidecar-env, lint.placeholders)")
    return out


@check(
    id="lint.certificate-object-type",
    title="The certificate object carries its private key (objectType secret)",
    category="lint",
    severity="critical",
    codes=["CERT_NO_PRIVATE_KEY"],
    needs=["lint.documents"],
    depends_on=["lint.certificate-wiring"],
    docs_url=PROVIDER_DOCS,
    tags=["aad-application", "certificate"],
)
def certificate_object_type(ctx: CheckContext) -> list[Finding]:
    """The Key Vault object behind AZURE_CLIENT_CERTIFICATE_PATH must have `objectType: secret`.

    The Azure Key Vault provider writes only the public certificate for `objectType: cert` and
    only the public key for `key`; `secret` yields the private key with the certificate, which
    client-certificate authentication needs to sign its assertion.
    """
    docs, sidecars = _cert_sidecars(ctx)
    out: list[Finding] = []
    for s in sidecars:
        subject = f"{s.workload.label} container {s.name}"
        w = resolve(s, docs)
        if w.status != "ok" or w.obj is None or w.spc is None:
            continue
        loc = f"{w.spc.file}:{w.obj.type_line or w.obj.line}"
        if (w.obj.type or "").lower() == "secret":
            out.append(ctx.passed(f"{subject}: object {w.obj.name} of {w.spc.label} is objectType secret",
                                  location=loc, subject=subject))
            continue
        found = w.obj.type or "(not set)"
        out.append(ctx.fail(
            "CERT_NO_PRIVATE_KEY",
            f"{w.spc.label}: object {w.obj.name} has objectType {found}; the mounted file has no private key "
            "(use objectType: secret)",
            location=loc, subject=subject,
            evidence={"secretProviderClass": w.spc.name, "objectName": w.obj.name, "objectType": w.obj.type},
            remediation=[to_yaml({k: ("secret" if k == "objectType" else v) for k, v in
                                  {**w.obj.raw, "objectType": "secret"}.items()}),
                         f"kubectl apply -f {w.spc.file}",
                         "kubectl delete pod <prometheus pod> -n <namespace>  # remount with the new object"],
        ))
    if not out:
        raise Skip("certificate wiring not resolved to a SecretProviderClass object")
    return out
