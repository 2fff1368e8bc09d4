"""Remediation shared by the certificate checks (no checks here): renew in Key Vault, upload to the app.

Why one place: both certificate findings must name the same real vault, certificate and
application, and the commands must work as printed.
"""

from __future__ import annotations

from typing import Any

from promrw_doctor.checks.azure._common import optional

NEEDS = ("pass --client-certificate FILE, or mount the certificate from Key Vault with a SecretProviderClass the "
         "doctor can read")

__all__ = ["NEEDS", "cert_renew_fixes", "optional"]


def cert_renew_fixes(ctx: Any, kv: Any, app: Any, *, upload_only: bool = False) -> list[str]:
    """Commands with the real names: renew (Key Vault), export, upload to the application, restart."""
    app_id = getattr(app, "app_id", None) or ctx.fact("sidecar.settings").client_id or "<app id>"
    ns = ctx.target.attributes.get("namespace", "<namespace>")
    pod = ctx.target.attributes.get("pod", "<pod>")
    out: list[str] = []
    if kv is not None:
        if not upload_only:
            out.append(f"az keyvault certificate create --vault-name {kv.vault} -n {kv.name} "
                       f"-p \"$(az keyvault certificate show --vault-name {kv.vault} -n {kv.name} --query policy)\"")
            if not kv.auto_renew:
                out.append(f"enable renewal: az keyvault certificate set-attributes --vault-name {kv.vault} "
                           f"-n {kv.name} --policy @policy.json  (lifetime_actions: AutoRenew)")
        out.append(f"az keyvault certificate download --vault-name {kv.vault} -n {kv.name} -f {kv.name}.pem -e PEM")
        out.append(f"az ad app credential reset --id {app_id} --cert @{kv.name}.pem --append")
    else:
        cert = ctx.option("client_certificate") or "<certificate>.pem"
        out.append(f"az ad app credential reset --id {app_id} --cert @{cert} --append")
    if not upload_only:
        out.append(f"kubectl -n {ns} delete pod {pod}  (after the CSI driver mounted the new version)")
    return out
