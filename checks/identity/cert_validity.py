"""The Entra application's certificate: valid now and for a while, and registered on the application.

"The certificate in use" is, in order of authority: the file given with ``--client-certificate``,
the Key Vault certificate the pod mounts through Secrets Store CSI (its pinned or current
version), and, when neither can be read, the application's registered certificates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from promrw_doctor.core import Severity, Skip, Unknown, check
from promrw_doctor.domain.certs import DEFAULT_HIGH_DAYS, DEFAULT_WARN_DAYS, iso, validity

from .cert_validity_common import NEEDS, cert_renew_fixes, optional

VARIANT = ["aadApplication"]


@dataclass
class InUse:
    """One certificate the sidecar uses, seen from one or more places."""

    thumbprint: str
    not_before: datetime | None
    not_after: datetime | None
    sources: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def certificates_in_use(ctx: Any) -> tuple[list[InUse], list[str], Any, Any]:
    """(certificates by thumbprint, needs of sources that could not be read, Key Vault cert, file cert)."""
    needs: list[str] = []
    found: dict[str, InUse] = {}
    file_cert, why = optional(ctx, "azure.certificate_file")
    if file_cert is not None:
        c = found.setdefault(file_cert.thumbprint, InUse(file_cert.thumbprint, file_cert.not_before,
                                                         file_cert.not_after))
        c.sources.append(f"--client-certificate ({file_cert.subject})")
    kv, why = optional(ctx, "azure.keyvault_certificate")
    if why:
        needs.append(why)
    if kv is not None and kv.thumbprint:
        c = found.setdefault(kv.thumbprint, InUse(kv.thumbprint, kv.not_before, kv.expires))
        c.sources.append(f"Key Vault {kv.vault}/{kv.name} version {kv.version}")
        if not kv.enabled:
            c.notes.append(f"disabled in Key Vault {kv.vault}: the CSI driver cannot fetch it on the next rotation")
        if kv.expires and (c.not_after is None or kv.expires < c.not_after):
            c.not_after = kv.expires
    return list(found.values()), needs, kv, file_cert


def _thresholds(ctx: Any) -> tuple[float, float]:
    warn = ctx.option("cert_warn_days")
    high = ctx.option("cert_critical_days")
    if high is None:
        high = ctx.option("cert_high_days")
    return (float(warn) if warn is not None else DEFAULT_WARN_DAYS,
            float(high) if high is not None else DEFAULT_HIGH_DAYS)


@check(id="identity.certificate-validity", title="The client certificate is valid and not about to expire",
       category="identity", severity="critical", codes=["CERT_EXPIRED", "CERT_EXPIRING_SOON", "CERT_NOT_YET_VALID"],
       variants=VARIANT, needs=["azure.certificate_file", "azure.keyvault_certificate", "azure.application"],
       tags=["azure", "certificate"])
def certificate_validity(ctx: Any) -> Any:
    """The certificate the sidecar signs its client assertion with is inside its validity window, with
    more than ``--cert-warn-days`` (30) left; under ``--cert-critical-days`` (7) the warning is high.

    Why: Entra refuses assertions signed with an expired or not-yet-valid key (AADSTS700027), and
    a certificate that Key Vault does not renew (no AutoRenew action) expires silently. Sources:
    the ``--client-certificate`` file, the Key Vault certificate the pod mounts
    (``attributes.exp``, enabled, AutoRenew), and the application's ``keyCredentials``.
    """
    now = datetime.fromtimestamp(ctx.now, UTC)
    warn_days, high_days = _thresholds(ctx)
    in_use, needs, kv, _file = certificates_in_use(ctx)
    app, app_needs = optional(ctx, "azure.application")
    if app is not None:
        for c in in_use:
            kc = app.by_thumbprint(c.thumbprint)
            if kc is not None:
                c.sources.append(f"application {app.display_name or app.app_id} keyCredential {kc.key_id}")
                if kc.end and (c.not_after is None or kc.end < c.not_after):
                    c.not_after = kc.end
    judged_from_app = False
    if not in_use and app is not None:
        # Nothing says which certificate the pod uses: judge the app's best (latest-ending) credential.
        creds = [k for k in app.key_credentials if k.thumbprint and k.end]
        if not creds:
            raise Skip(f"application {app.app_id} has no registered certificate (see identity.certificate-registered)")
        valid_now = [k for k in creds if (k.start is None or k.start <= now) and k.end and k.end > now]
        best = max(valid_now or creds, key=lambda k: k.end or now)
        in_use = [InUse(str(best.thumbprint), best.start, best.end,
                        [f"application {app.display_name or app.app_id} keyCredential {best.key_id} (the latest "
                         "ending; the certificate the pod mounts could not be read)"])]
        judged_from_app = True
    if not in_use:
        missing = [n for n in (*needs, app_needs) if n]
        if missing:
            raise Unknown("could not read the certificate in use", needs="; ".join(missing))
        raise Skip(f"no certificate to judge: {NEEDS}")
    findings = []
    for c in in_use:
        if c.not_after is None:
            continue
        v = validity(c.not_before or c.not_after, c.not_after, now, warn_days, high_days)
        evidence: dict[str, Any] = {"thumbprint": c.thumbprint, "sources": c.sources,
                                    "not_before": iso(c.not_before) if c.not_before else None,
                                    "not_after": iso(c.not_after), "days_left": round(v.days_left, 1)}
        if kv is not None and kv.thumbprint == c.thumbprint:
            evidence["keyvault_auto_renew"] = kv.auto_renew
            evidence["keyvault_enabled"] = kv.enabled
        if c.notes:
            evidence["notes"] = c.notes
        evidence = {k: v for k, v in evidence.items() if v is not None}
        fixes = cert_renew_fixes(ctx, kv if kv is not None and kv.thumbprint == c.thumbprint else None, app)
        subject = f"certificate {c.thumbprint}"
        if v.status == "expired":
            findings.append(ctx.fail("CERT_EXPIRED", f"the client {subject} {v.describe()}", evidence=evidence,
                                     remediation=fixes))
        elif v.status == "not-yet-valid":
            findings.append(ctx.fail("CERT_NOT_YET_VALID", f"the client {subject} is {v.describe()}",
                                     evidence=evidence, remediation=fixes))
        elif v.status in ("expiring-high", "expiring-warn"):
            renews = kv is not None and kv.thumbprint == c.thumbprint and kv.auto_renew
            tail = (" (Key Vault renews it, but the new version must also be uploaded to the application)" if renews
                    else " and nothing renews it" if kv is not None and kv.thumbprint == c.thumbprint else "")
            sev = Severity.HIGH if v.status == "expiring-high" else Severity.MEDIUM
            findings.append(ctx.warn("CERT_EXPIRING_SOON", f"the client {subject} {v.describe()}{tail}",
                                     evidence=evidence, severity=sev, remediation=fixes))
        else:
            note = " (judged from the application registration)" if judged_from_app else ""
            findings.append(ctx.passed(f"certificate {c.thumbprint} {v.describe()}{note}", evidence=evidence))
    if not findings:
        raise Unknown("the certificate's end date is unknown", needs="; ".join(needs) or None)
    return findings


@check(id="identity.certificate-registered", title="The certificate in use is registered on the application",
       category="identity", severity="critical", codes=["CERT_NOT_REGISTERED"], variants=VARIANT,
       needs=["azure.application", "azure.certificate_file", "azure.keyvault_certificate"],
       tags=["azure", "certificate"])
def certificate_registered(ctx: Any) -> Any:
    """The thumbprint of the certificate in use (``--client-certificate``, else the Key Vault certificate the
    pod mounts) is among the application registration's ``keyCredentials``.

    Why: after Key Vault renews a certificate (new key pair at 80 % of its lifetime) the CSI
    driver mounts the new version, but Entra only accepts keys uploaded to the application:
    AADSTS700027 "key was not found" on every token request.
    """
    app = ctx.fact("azure.application")
    if app is None:
        raise Skip("the application was not found (see azure.identity-found)")
    in_use, needs, kv, _file = certificates_in_use(ctx)
    if not in_use:
        if needs:
            raise Unknown("could not read the certificate the pod mounts", needs="; ".join(needs))
        raise Skip(f"no certificate to compare: {NEEDS}")
    registered = [{"thumbprint": k.thumbprint, "end": iso(k.end) if k.end else None, "key_id": k.key_id}
                  for k in app.key_credentials]
    findings = []
    for c in in_use:
        evidence = {"thumbprint": c.thumbprint, "sources": c.sources, "application": app.app_id,
                    "registered": registered}
        if app.by_thumbprint(c.thumbprint) is None:
            findings.append(ctx.fail(
                "CERT_NOT_REGISTERED",
                f"certificate {c.thumbprint} ({c.sources[0]}) is not registered on application "
                f"{app.display_name or app.app_id} ({len(registered)} certificate(s) registered)",
                evidence=evidence, remediation=cert_renew_fixes(ctx, kv if kv is not None and kv.thumbprint ==
                                                                c.thumbprint else None, app, upload_only=True)))
        else:
            findings.append(ctx.passed(f"certificate {c.thumbprint} is registered on application "
                                       f"{app.display_name or app.app_id}", evidence=evidence))
    return findings
