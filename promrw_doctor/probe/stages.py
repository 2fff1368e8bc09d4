"""The probe's result model, and how a send/query outcome becomes a stage verdict. Pure logic, no I/O.

Why stages: "the canary did not arrive" is useless on its own; "the token was fine, the
ingestion endpoint answered 403 in 41 ms" names the layer and therefore the fix. Each
failed stage carries the diagnosis codes of the checks that would *explain* it
(``explained_by``), so the engine shows the probe as a consequence of, say,
``ROLE_ASSIGNMENT_MISSING`` instead of as a second root cause.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

TOKEN, NETWORK, INGESTION, QUERY = "token", "network", "ingestion", "query"
STAGES: tuple[str, ...] = (TOKEN, NETWORK, INGESTION, QUERY)

TOKEN_ACQUISITION_FAILED = "TOKEN_ACQUISITION_FAILED"
CANARY_REJECTED = "CANARY_REJECTED"
INGESTION_UNREACHABLE = "INGESTION_UNREACHABLE"
CANARY_NOT_ARRIVED = "CANARY_NOT_ARRIVED"
QUERY_ACCESS_MISSING = "QUERY_ACCESS_MISSING"
PRODUCTION_PATH_FAILING_CANARY_OK = "PRODUCTION_PATH_FAILING_CANARY_OK"
PROBE_CONTRADICTS_CHECKS = "PROBE_CONTRADICTS_CHECKS"
PROBE_CODES: tuple[str, ...] = (TOKEN_ACQUISITION_FAILED, CANARY_REJECTED, INGESTION_UNREACHABLE,
                                CANARY_NOT_ARRIVED, QUERY_ACCESS_MISSING)

# ------------------------------------------------------------------------ what explains each failure
# Codes of other checks that, when they also fail in the same run, explain a failed stage. They
# follow the codes the cluster-side and Azure-side checks emit (checks/kubernetes/_common.py:
# IDENTITY_ROOTS, AZURE_ROOTS); a code no check emits yet is harmless here.
CERT_CODES = ("CERT_EXPIRED", "CERT_NOT_REGISTERED", "CERT_NOT_FOUND", "CERT_DISABLED", "CERT_NOT_MOUNTED",
              "CERT_NO_PRIVATE_KEY")
POD_IDENTITY_CODES = ("POD_IDENTITY_LABEL_MISSING", "POD_IDENTITY_BINDING_MISMATCH", "POD_IDENTITY_BINDING_INVALID",
                      "POD_IDENTITY_CLIENT_ID_MISMATCH", "POD_IDENTITY_NOT_ASSIGNED", "NMI_UNHEALTHY")
EXPLAINS_TOKEN: tuple[str, ...] = (
    *CERT_CODES, *POD_IDENTITY_CODES, "WORKLOAD_IDENTITY_MISCONFIGURED", "FEDERATED_CREDENTIAL_MISSING",
    "FEDERATED_CREDENTIAL_MISMATCH", "IDENTITY_NOT_FOUND", "APPLICATION_NOT_FOUND", "SERVICE_PRINCIPAL_MISSING",
    "SIDECAR_CONFIG_INVALID", "AUDIENCE_MISMATCH", "NETWORK_BLOCKED",
    # The Azure-side token check found the same failure first: the probe's is its echo.
    TOKEN_ACQUISITION_FAILED,
)
EXPLAINS_STATUS: dict[int, tuple[str, ...]] = {
    400: ("INGESTION_URL_INVALID", "INGESTION_URL_MISMATCH", "INGESTION_REJECTED"),
    401: ("AUDIENCE_MISMATCH", "TOKEN_CLAIMS_UNEXPECTED", "CERT_EXPIRED", "CERT_NOT_REGISTERED",
          "INGESTION_URL_MISMATCH", "INGESTION_URL_INVALID"),
    403: ("ROLE_ASSIGNMENT_MISSING", "ROLE_ASSIGNMENT_PROPAGATING", "ROLE_ASSIGNMENT_WRONG_SCOPE",
          "IDENTITY_NOT_FOUND", "SERVICE_PRINCIPAL_MISSING", "POD_IDENTITY_CLIENT_ID_MISMATCH", "NETWORK_BLOCKED"),
    404: ("DCR_NOT_FOUND", "DCE_NOT_FOUND", "DCE_MISMATCH", "INGESTION_URL_MISMATCH", "INGESTION_URL_INVALID",
          "WORKSPACE_NOT_FOUND"),
    413: ("INGESTION_REJECTED",),
    429: ("INGESTION_THROTTLED", "QUOTA_NEAR_LIMIT"),
}
EXPLAINS_NETWORK: tuple[str, ...] = ("INGESTION_ENDPOINT_UNREACHABLE", "NETWORK_BLOCKED", "INGESTION_URL_INVALID",
                                     "INGESTION_URL_MISMATCH", "DCE_NOT_FOUND")
EXPLAINS_NOT_ARRIVED: tuple[str, ...] = ("INGESTION_URL_MISMATCH", "WORKSPACE_NOT_FOUND", "INGESTION_THROTTLED",
                                         "QUOTA_NEAR_LIMIT")
#: Codes that are about *who* sends (the identity), not *where* to: a canary sent with the
#: doctor's own identity (``--as-me``) proves nothing about them.
IDENTITY_CLAIM_CODES: frozenset[str] = frozenset({
    *EXPLAINS_TOKEN, *EXPLAINS_STATUS[401], "ROLE_ASSIGNMENT_MISSING", "ROLE_ASSIGNMENT_PROPAGATING",
    "ROLE_ASSIGNMENT_WRONG_SCOPE", "IDENTITY_NOT_FOUND", "SERVICE_PRINCIPAL_MISSING",
} - {"NETWORK_BLOCKED", "SIDECAR_CONFIG_INVALID", "INGESTION_URL_MISMATCH", "INGESTION_URL_INVALID",
      # The audience travels with the canary either way: --as-me asks for the sidecar's audience.
      "AUDIENCE_MISMATCH"})
#: Rate-based problems: one canary slipping through does not disprove them.
RATE_CODES: frozenset[str] = frozenset({"INGESTION_THROTTLED", "QUOTA_NEAR_LIMIT"})
#: About the sidecar *process* (its binary, its start-up parsing, Prometheus's URL to it): the probe
#: sends with the doctor's forwarder code, which is more lenient, so a delivered canary says nothing here.
SIDECAR_PROCESS_CODES: frozenset[str] = frozenset({
    "SIDECAR_CONFIG_INVALID", "SIDECAR_IMAGE_KNOWN_BAD", "SIDECAR_CRASHLOOP", "SIDECAR_NOT_READY",
    "SIDECAR_MISSING", "REMOTE_WRITE_URL_MISMATCH",
})
#: Everything a delivered canary can contradict.
PATH_CODES: frozenset[str] = frozenset({
    *EXPLAINS_TOKEN, *(c for codes in EXPLAINS_STATUS.values() for c in codes), *EXPLAINS_NETWORK,
    *EXPLAINS_NOT_ARRIVED,
}) - SIDECAR_PROCESS_CODES


def explained_by_status(status: int | None) -> tuple[str, ...]:
    if status is None:
        return ()
    if status in EXPLAINS_STATUS:
        return EXPLAINS_STATUS[status]
    return ("INGESTION_REJECTED",) if 400 <= status < 500 else ()


_MEANING = {
    400: "the endpoint refused the request itself (api-version, stream name, or a malformed body)",
    401: "the token was refused: wrong audience for this cloud's ingestion endpoint, expired, or from another "
         "tenant",
    403: "the token is valid but its principal may not write: Monitoring Metrics Publisher is missing on the "
         "workspace's DCR, or was assigned less than ~30 minutes ago and has not propagated yet",
    404: "the data collection rule in the URL is unknown to this endpoint: wrong DCR immutable id, a DCE that "
         "does not serve that DCR, or a deleted DCR",
    413: "the request body is too large for the endpoint (the canary is tiny: a proxy in between limits bodies)",
    429: "throttled: the workspace's or the DCE's ingestion limits are exceeded",
}


def status_meaning(status: int | None, azure_code: str | None = None) -> str:
    """What an ingestion status means for the operator (Azure's own error code refines 401)."""
    if status is None:
        return "no HTTP answer"
    if status == 401 and azure_code:
        low = azure_code.lower()
        if "audience" in low:
            return "the token was refused: its audience is not this cloud's ingestion audience"
        if "expired" in low:
            return "the token was refused: it has expired (clock skew or a stale cache)"
        if "tenant" in low:
            return "the token was refused: it was issued by another tenant"
    if status in _MEANING:
        return _MEANING[status]
    if 500 <= status < 600:
        return "Azure Monitor ingestion failed on its side (transient); Prometheus retries these"
    if 200 <= status < 300:
        return "accepted"
    return f"unexpected HTTP status {status}"


_CODE_RE = re.compile(r'"code"\s*:\s*"([^"]+)"')
_MESSAGE_RE = re.compile(r'"message"\s*:\s*"((?:[^"\\]|\\.)*)')


def azure_error(body: str | None) -> tuple[str | None, str | None]:
    """(code, message) from an Azure data-plane error body ``{"error": {"code", "message"}}``.

    The body may arrive truncated (the send path keeps a redacted excerpt), so a regex
    fallback reads what JSON parsing cannot.
    """
    if not body:
        return None, None
    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    if isinstance(doc, dict) and isinstance(doc.get("error"), dict):
        err = doc["error"]
        code = err.get("code")
        msg = err.get("message")
        return (str(code) if code else None), (str(msg) if msg else None)
    code_m = _CODE_RE.search(body)
    msg_m = _MESSAGE_RE.search(body)
    return (code_m.group(1) if code_m else None), (msg_m.group(1) if msg_m else None)


# ------------------------------------------------------------------------------------- results
@dataclass
class StageResult:
    """One stage's verdict. ``ok`` is None when the stage was not reached (an earlier one failed)."""

    name: str
    ok: bool | None
    duration_ms: float | None = None
    code: str | None = None
    detail: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)
    explained_by: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"stage": self.name,
                               "result": "not reached" if self.ok is None else ("ok" if self.ok else "failed")}
        if self.duration_ms is not None:
            out["ms"] = round(self.duration_ms, 1)
        if self.code:
            out["code"] = self.code
        if self.detail:
            out["detail"] = self.detail
        out.update(self.evidence)
        return out

    def line(self) -> str:
        mark = "-" if self.ok is None else ("ok" if self.ok else "FAILED")
        ms = f" {self.duration_ms:.0f} ms" if self.duration_ms is not None else ""
        status = self.evidence.get("status")
        http = f" HTTP {status}" if status is not None else ""
        return f"{self.name} {mark}{http}{ms}"


@dataclass
class ProbeResult:
    """Everything one probe observed. Never holds a token (claims are decoded, signature dropped)."""

    stages: list[StageResult]
    series: str  # the PromQL selector of the canary series
    cluster: str
    nonce: int | None = None
    timestamp_ms: int | None = None
    identity: str = ""  # who sent the canary (description, never a secret)
    as_me: bool = False
    identity_context: str = ""  # how the doctor acted as that identity
    ingestion_url: str = ""  # redacted
    query_endpoint: str | None = None
    query_endpoint_source: str | None = None  # "--query-endpoint" | "workspace" | None
    arrived_after_ms: float | None = None  # ingestion accepted -> nonce queryable
    total_ms: float = 0.0
    preflight_ms: float | None = None  # the doctor's query token + one query, before writing
    queries: int = 0
    claims: dict[str, Any] = field(default_factory=dict)
    unconfirmed: str | None = None  # why arrival could not be checked (no/unusable query endpoint)
    unconfirmed_needs: str | None = None
    request_id: str | None = None

    # -- verdicts
    def stage(self, name: str) -> StageResult | None:
        return next((s for s in self.stages if s.name == name), None)

    @property
    def failed(self) -> StageResult | None:
        """The first failed stage, or None."""
        return next((s for s in self.stages if s.ok is False), None)

    @property
    def accepted(self) -> bool:
        ing = self.stage(INGESTION)
        return bool(ing and ing.ok)

    @property
    def delivered(self) -> bool:
        q = self.stage(QUERY)
        return bool(q and q.ok)

    def timings(self) -> dict[str, float | None]:
        out: dict[str, float | None] = {s.name: (round(s.duration_ms, 1) if s.duration_ms is not None else None)
                                        for s in self.stages}
        out["preflight"] = round(self.preflight_ms, 1) if self.preflight_ms is not None else None
        out["total"] = round(self.total_ms, 1)
        return out

    def stage_line(self) -> str:
        return " -> ".join(s.line() for s in self.stages)

    def evidence(self) -> dict[str, Any]:
        """What a report shows: stages with timings, the series and nonce, the identity and its claims."""
        ev: dict[str, Any] = {
            "stage_timings": self.stage_line(),
            "stages": [s.to_dict() for s in self.stages],
            "series": self.series,
            "nonce": self.nonce,
            "timestamp_ms": self.timestamp_ms,
            "identity": self.identity,
            "as_me": self.as_me,
            "ingestion_url": self.ingestion_url,
            "total_ms": round(self.total_ms, 1),
        }
        if self.identity_context:
            ev["identity_context"] = self.identity_context
        if self.query_endpoint:
            ev["query_endpoint"] = self.query_endpoint
            ev["query_endpoint_source"] = self.query_endpoint_source
        if self.arrived_after_ms is not None:
            ev["arrived_after_ms"] = round(self.arrived_after_ms, 1)
        if self.preflight_ms is not None:
            ev["query_preflight_ms"] = round(self.preflight_ms, 1)
        if self.queries:
            ev["queries"] = self.queries
        if self.claims:
            ev["token_claims"] = dict(self.claims)
        if self.request_id:
            ev["x_ms_request_id"] = self.request_id
        if self.unconfirmed:
            ev["unconfirmed"] = self.unconfirmed
        return ev


# ------------------------------------------------------------------------------ classification
def claims_dict(claims: Any) -> dict[str, Any]:
    """aud/tid/oid/appid/exp of a :class:`~promrw_doctor.identity.claims.TokenClaims` (never the token)."""
    if claims is None:
        return {}
    d = claims.to_dict() if hasattr(claims, "to_dict") else dict(claims)
    return {k: d[k] for k in ("aud", "tid", "oid", "appid", "exp", "idtyp", "xms_mirid") if d.get(k) is not None}


def token_stage_failed(identity: str, cause: str, category: str | None, duration_ms: float | None,
                       *, as_me: bool = False) -> StageResult:
    """The token stage when no token could be had (``category``: config/unavailable/authentication/network/tls)."""
    from ..domain import aadsts

    ev: dict[str, Any] = {"identity": identity}
    if category:
        ev["category"] = category
    found = aadsts.find(cause)
    if found is not None:
        code, entry = found
        ev["aadsts"] = code
        if entry is not None:
            ev["aadsts_meaning"] = entry.meaning
            ev["aadsts_fix"] = entry.fix
    return StageResult(TOKEN, False, duration_ms, TOKEN_ACQUISITION_FAILED, f"no token for {identity}: {cause}",
                       ev, () if as_me else EXPLAINS_TOKEN)


def stages_from_send(send: Any, *, token_ms: float | None, as_me: bool = False) -> list[StageResult]:
    """Token/network/ingestion stages from a :class:`~promrw_doctor.forwarder.send.SendResult`.

    ``token_ms``: the token stage's duration as the runner measured it (the send call reuses
    the already fetched token, so its own ``token_ms`` is 0).
    """
    token = StageResult(TOKEN, True, token_ms, evidence={"identity": send.identity})
    err = send.error
    if err is not None and err.kind == "token":
        return [token_stage_failed(send.identity, err.detail, err.token_category, token_ms, as_me=as_me),
                StageResult(NETWORK, None), StageResult(INGESTION, None)]
    if err is not None and err.kind == "network":
        which = {"dns": "DNS lookup of the ingestion host failed", "tls": "the TLS handshake failed",
                 "connect": "the TCP connection was refused or could not be opened",
                 "timeout": "no answer within the timeout", "reset": "the connection was reset"}
        kind = err.network or "connect"
        detail = f"{which.get(kind, kind)}: {err.detail}"
        net = StageResult(NETWORK, False, send.latency_ms, INGESTION_UNREACHABLE, detail,
                          {"network": kind}, EXPLAINS_NETWORK)
        return [token, net, StageResult(INGESTION, None)]
    net = StageResult(NETWORK, True, None, evidence={"answered": True})
    ev: dict[str, Any] = {"status": send.status}
    if send.request_id:
        ev["x_ms_request_id"] = send.request_id
    if send.token_refreshed_after_401:
        ev["token_refreshed_after_401"] = True
    if send.ok:
        return [token, net, StageResult(INGESTION, True, send.latency_ms, detail="accepted", evidence=ev)]
    status = err.status if err is not None and err.status is not None else send.status
    body = err.body_excerpt if err is not None else None
    code, message = azure_error(body)
    meaning = status_meaning(status, code)
    ev.update({"status": status, "meaning": meaning})
    if code:
        ev["azure_error_code"] = code
    if body:
        ev["error_body"] = body
    detail = f"HTTP {status}" + (f" {code}" if code else "") + f": {meaning}"
    if message:
        detail += f" (Azure: {message})"
    explained = explained_by_status(status)
    if as_me:  # the doctor's identity was refused: only what the canary shares with the sidecar explains it
        explained = tuple(c for c in explained if c not in IDENTITY_CLAIM_CODES)
    return [token, net, StageResult(INGESTION, False, send.latency_ms, CANARY_REJECTED, detail, ev, explained)]


def unreached(*names: str) -> list[StageResult]:
    return [StageResult(n, None) for n in names]


def merge_evidence(base: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    out = dict(base)
    out.update({k: v for k, v in extra.items() if v is not None})
    return out
