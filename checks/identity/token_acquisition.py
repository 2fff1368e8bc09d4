"""Token acquisition as the sidecar's identity, and what the token says (claims only, never the token)."""

from __future__ import annotations

from typing import Any

from promrw_doctor.collectors.azure import extra_clouds
from promrw_doctor.core import Skip, check
from promrw_doctor.domain.clouds import normalize_audience, scope
from promrw_doctor.domain.ingestion_url import cloud_owning_host

from ..kubernetes._common import IDENTITY_ROOTS

# What usually explains a refused token (found by other checks; this one is then a consequence):
# the identity defects of the one write-path table, plus an env or audience the request was built from.
TOKEN_ROOTS: tuple[str, ...] = (
    *(c for c in IDENTITY_ROOTS if c != "TOKEN_ACQUISITION_FAILED"), "AUDIENCE_MISMATCH", "SIDECAR_CONFIG_INVALID",
)


@check(id="identity.sidecar-token", title="A token can be had as the sidecar's identity", category="identity",
       severity="critical", codes=["TOKEN_ACQUISITION_FAILED"], needs=["azure.sidecar_token"],
       tags=["azure", "token"])
def sidecar_token(ctx: Any) -> Any:
    """The doctor requests an ingestion token with the sidecar's own credentials, where it can do so
    honestly: ``--client-certificate FILE`` for an Entra application, or running in-cluster in the
    pod's identity context (same service account / ``aadpodidbinding``). Otherwise skipped.

    Why: this is the step the sidecar repeats every hour; Entra's refusal (AADSTS code) names
    the exact reason (certificate not registered or expired, unknown client, no federated
    credential, wrong cloud). Only the decoded claims are kept.
    """
    tok = ctx.fact("azure.sidecar_token")
    evidence: dict[str, Any] = {"as": tok.identity, "how": tok.how, "audience": tok.audience}
    if tok.ok:
        if tok.claims is not None:
            evidence["claims"] = {k: v for k, v in tok.claims.to_dict().items() if k in ("aud", "tid", "oid", "appid",
                                                                                          "iss", "exp")}
        return ctx.passed(f"got a token for {tok.audience} as {tok.identity}", evidence=evidence)
    evidence["error"] = tok.error
    evidence["category"] = tok.category
    remediation: list[str] = []
    if tok.aadsts_code:
        evidence["aadsts"] = f"AADSTS{tok.aadsts_code}"
        if tok.aadsts_meaning:
            evidence["meaning"] = tok.aadsts_meaning
        if tok.certificate_reason:
            evidence["certificate"] = tok.certificate_reason
        if tok.aadsts_fix:
            remediation.append(tok.aadsts_fix)
    meaning = f": {tok.aadsts_meaning}" if tok.aadsts_meaning else ""
    summary = (f"no token as {tok.identity}: AADSTS{tok.aadsts_code}{meaning}" if tok.aadsts_code
               else f"no token as {tok.identity}: {tok.error}")
    return ctx.fail("TOKEN_ACQUISITION_FAILED", summary, evidence=evidence, remediation=remediation,
                    explained_by=TOKEN_ROOTS)


@check(id="identity.sidecar-token-claims", title="The sidecar's token is for the ingestion audience and its tenant",
       category="identity", severity="high", codes=["TOKEN_CLAIMS_UNEXPECTED"], depends_on=["identity.sidecar-token"],
       needs=["azure.sidecar_token", "sidecar.settings", "azure.ingestion_url", "azure.cloud"],
       tags=["azure", "token"])
def sidecar_token_claims(ctx: Any) -> Any:
    """The token acquired as the sidecar's identity carries the ingestion audience of the ingestion
    host's cloud (``aud``), the sidecar's tenant (``tid``) and its client id (``appid``).

    Why: ingestion refuses a token minted for another cloud's audience or tenant with 401; the
    claims show it without sending anything.
    """
    tok = ctx.fact("azure.sidecar_token")
    if not tok.ok or tok.claims is None:
        raise Skip("no token was acquired (see identity.sidecar-token)")
    settings = ctx.fact("sidecar.settings")
    url = ctx.fact("azure.ingestion_url")
    profile = ctx.fact("azure.cloud")
    claims = tok.claims
    problems: list[str] = []
    expected_aud = None
    if url.parsed is not None:
        host_cloud = cloud_owning_host(url.parsed.host, extra_clouds(profile))
        if host_cloud is not None:
            expected_aud = normalize_audience(host_cloud.ingestion_audience)
            if normalize_audience(str(claims.aud or "")).lower() != expected_aud.lower():
                problems.append(f"aud is {claims.aud}, but {url.parsed.host} ({host_cloud.name}) expects "
                                f"{expected_aud}")
    if settings.tenant_id and claims.tid and claims.tid.lower() != settings.tenant_id.lower():
        problems.append(f"tid is {claims.tid}, not the sidecar's AZURE_TENANT_ID {settings.tenant_id}")
    if settings.client_id and claims.appid and claims.appid.lower() != settings.client_id.lower():
        problems.append(f"appid is {claims.appid}, not the sidecar's AZURE_CLIENT_ID {settings.client_id}")
    evidence = {"claims": {k: v for k, v in claims.to_dict().items() if k in ("aud", "tid", "oid", "appid", "iss")},
                "expected_audience": expected_aud}
    if problems:
        return ctx.fail("TOKEN_CLAIMS_UNEXPECTED", "; ".join(problems), evidence=evidence,
                        explained_by=("AUDIENCE_MISMATCH", "SIDECAR_CONFIG_INVALID"),
                        remediation=[f"INGESTION_AAD_AUDIENCE={scope(expected_aud)}" if expected_aud else
                                     "set INGESTION_AAD_AUDIENCE for the workspace's cloud"])
    return ctx.passed("token claims match the ingestion audience, tenant and client id", evidence=evidence)
