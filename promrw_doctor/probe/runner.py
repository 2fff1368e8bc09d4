"""Run one probe: check the query endpoint, get a token, send the canary the forwarder's way, poll for it.

Order and why:

1. **preflight** (before anything is written): the doctor's query token and one instant
   query for the canary series. A ``--query-endpoint`` that is unreachable or is not the
   Prometheus API is bad input (exit 2) and nothing gets written; a refused query
   (401/403) is remembered as ``QUERY_ACCESS_MISSING`` and the canary is still sent, since
   the token and ingestion stages are worth knowing on their own.
2. **token**: through the forwarder's :class:`~promrw_doctor.identity.manager.TokenManager`
   with the sidecar's identity settings (or the doctor's own credential with ``--as-me``);
   timed separately so the stage table shows it.
3. **network / ingestion**: :func:`promrw_doctor.forwarder.send.send_canary` with that
   token: the same upstream client, headers, and 401-refresh as the forwarder, so the canary
   travels exactly the sidecar's way.
4. **query**: poll (:mod:`.poll`) an instant query at the canary's timestamp until the
   value is the canary's nonce, the query is refused, or the deadline passes.

The deadline (``timeout_s``) covers the whole probe; the query stage always asks at least once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..core.environ import patched_environ
from ..core.errors import InputError
from ..core.redact import redact
from .poll import Attempt, Backoff, Step, poll
from .query import (
    NotPrometheus,
    QueryClient,
    QueryError,
    QueryRefused,
    QueryRejected,
    QueryTransient,
    QueryUnreachable,
    Sample,
    series_selector,
)
from .stages import (
    CANARY_NOT_ARRIVED,
    EXPLAINS_NOT_ARRIVED,
    INGESTION,
    NETWORK,
    QUERY,
    QUERY_ACCESS_MISSING,
    TOKEN,
    ProbeResult,
    StageResult,
    claims_dict,
    stages_from_send,
    token_stage_failed,
    unreached,
)

DEFAULT_TIMEOUT_S = 600.0  # against Azure: ingestion can lag by minutes
LAB_TIMEOUT_S = 30.0  # against the lab (cloud profile extra.lab): the receiver is immediate
MAX_TIMEOUT_S = 3600.0
SEND_TIMEOUT_S = 30.0
#: Process env azure-identity reads at token time for managed identity / pod identity (NMI).
IMDS_ENV = ("AZURE_POD_IDENTITY_AUTHORITY_HOST", "IMDS_ENDPOINT", "IDENTITY_ENDPOINT", "IDENTITY_HEADER",
            "MSI_ENDPOINT", "MSI_SECRET")



class ProbeInputError(InputError):
    """A probe input the user gave explicitly is unusable (exit 2, nothing written)."""


def check_timeout(value: Any, flag: str = "--timeout") -> float:
    """A deadline in seconds: a finite number in (0, 3600]; anything else is a one-line ``InputError``."""
    try:
        t = float(value)
    except (TypeError, ValueError):
        raise ProbeInputError(f"{flag} {value!r}: not a number of seconds") from None
    if t != t or t in (float("inf"), float("-inf")):
        raise ProbeInputError(f"{flag} {value!r}: not a finite number of seconds")
    if t <= 0:
        raise ProbeInputError(f"{flag} {value!r}: must be greater than 0 seconds")
    if t > MAX_TIMEOUT_S:
        raise ProbeInputError(f"{flag} {value!r}: at most {MAX_TIMEOUT_S:.0f} seconds")
    return t


@dataclass(frozen=True)
class ProbePlan:
    """What the canary travels with, and as whom.

    ``config``: the forwarder configuration (ingestion URL, identity, CA bundle).
    ``as_me_credential``: the doctor's own credential (``--as-me``); None = the sidecar's identity.
    ``process_env``: IMDS-related env the token fetch runs with (the pod's identity context:
    azure-identity reads these from the process environment, not from arguments).
    """

    config: Any  # ForwarderConfig
    cluster: str
    identity_context: str = ""
    as_me_credential: Any = None
    process_env: dict[str, str] = field(default_factory=dict)

    @property
    def as_me(self) -> bool:
        return self.as_me_credential is not None

    @property
    def identity(self) -> str:
        if self.as_me:
            return f"the doctor's own credential ({type(self.as_me_credential).__name__}, --as-me)"
        return str(self.config.identity.describe())





def quiet_azure_logging() -> None:
    """azure-identity logs each failed token request as a WARNING; the probe reports it once, in its stage.

    A ``NullHandler`` on the ``azure`` logger stops Python's last-resort stderr handler
    without hiding anything from an application that configured logging itself.
    """
    logger = logging.getLogger("azure")
    if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
        logger.addHandler(logging.NullHandler())


def canary_selector(cluster: str) -> str:
    from ..remote_write.canary import METRIC, SOURCE

    return series_selector(METRIC, {"cluster": cluster, "source": SOURCE})


def _token_manager(plan: ProbePlan) -> Any:
    from ..identity.credentials import TokenSource
    from ..identity.manager import TokenManager

    ident = plan.config.identity
    if plan.as_me:
        source = TokenSource(ident, credential=plan.as_me_credential, scope=ident.scope, description=plan.identity)
    else:
        source = TokenSource(ident)
    return TokenManager(source, force_min_interval=0.0)


def run_probe(
    plan: ProbePlan,
    *,
    query: QueryClient | None,
    query_source: str | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    explicit_query: bool = False,
    no_query_reason: str | None = None,
    backoff: Backoff | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> ProbeResult:
    """Probe once. Raises :class:`ProbeInputError` (before writing) when an explicit ``--query-endpoint``
    is unreachable or not the Prometheus API; every other outcome is in the returned result."""
    from ..forwarder.send import send_canary
    from ..identity.errors import TokenError

    quiet_azure_logging()
    started = time.perf_counter()
    deadline = clock() + timeout_s
    selector = canary_selector(plan.cluster)
    result = ProbeResult(stages=[], series=selector, cluster=plan.cluster, identity=plan.identity,
                         as_me=plan.as_me, identity_context=plan.identity_context,
                         ingestion_url=redact(plan.config.ingestion_url),
                         query_endpoint=query.endpoint if query is not None else None,
                         query_endpoint_source=query_source if query is not None else None)

    client = query  # kept for the query count even when the endpoint turns out unusable

    def finish(stages: list[StageResult]) -> ProbeResult:
        result.stages = stages
        result.total_ms = (time.perf_counter() - started) * 1000.0
        if client is not None:
            result.queries = client.queries
        return result

    # 1. preflight: is the query endpoint usable? (nothing written yet)
    refused: QueryRefused | None = None
    if query is None:
        result.unconfirmed = no_query_reason or "no query endpoint for the workspace (pass --query-endpoint)"
        result.unconfirmed_needs = "the workspace's query endpoint (Reader on the workspace, or --query-endpoint)"
    else:
        t = time.perf_counter()
        try:
            query.instant(selector)
        except QueryRefused as exc:
            if exc.code == "no-token":
                _unusable(result, query, exc, explicit_query)
                query = None
            else:
                refused = exc
        except QueryTransient:
            pass  # asked again while polling
        except QueryUnreachable as exc:
            if exc.layer != "timeout":  # a slow answer is not a wrong endpoint: polling asks again
                _unusable(result, query, exc, explicit_query)
                query = None
        except (NotPrometheus, QueryRejected) as exc:
            _unusable(result, query, exc, explicit_query)
            query = None
        result.preflight_ms = (time.perf_counter() - t) * 1000.0

    # 2. token, 3. network + ingestion
    tokens = _token_manager(plan)
    t = time.perf_counter()
    with patched_environ(plan.process_env, exclusive=True):  # the token fetch runs in the identity context handed over
        try:
            token = tokens.get()
        except TokenError as exc:
            failed = token_stage_failed(exc.identity or plan.identity, exc.cause, exc.category,
                                        (time.perf_counter() - t) * 1000.0, as_me=plan.as_me)
            return finish([failed, *unreached(NETWORK, INGESTION, QUERY)])
        token_ms = (time.perf_counter() - t) * 1000.0
        result.claims = claims_dict(token.claims())
        del token
        send_timeout = max(1.0, min(SEND_TIMEOUT_S, deadline - clock()))
        sent = send_canary(plan.config, tokens=tokens, cluster=plan.cluster, timeout=send_timeout)
    if sent.canary is not None:
        result.nonce = sent.canary.nonce
        result.timestamp_ms = sent.canary.timestamp_ms
    if sent.claims is not None:
        result.claims = claims_dict(sent.claims)
    result.request_id = sent.request_id
    stages = stages_from_send(sent, token_ms=token_ms, as_me=plan.as_me)
    for s in stages:
        if s.name == TOKEN:
            s.evidence["identity"] = plan.identity
    if not sent.ok or sent.canary is None:
        return finish([*stages, *unreached(QUERY)])
    accepted_at = time.perf_counter()

    # 4. query
    if refused is not None:
        q = StageResult(QUERY, False, None, QUERY_ACCESS_MISSING,
                        f"the canary was accepted, but the workspace refused the doctor's query: {refused.detail}",
                        {"status": refused.status, "azure_error_code": refused.code,
                         "query_endpoint": refused.endpoint})
        return finish([*stages, q])
    if query is None:
        return finish([*stages, StageResult(QUERY, None, detail=result.unconfirmed or "not checked")])
    return finish([*stages, _poll_stage(result, query, sent.canary, deadline - clock(), accepted_at, backoff,
                                        clock, sleep)])


def _unusable(result: ProbeResult, query: QueryClient, exc: QueryError, explicit: bool) -> None:
    layer = getattr(exc, "layer", None)
    what = {"unreachable": f"unreachable ({layer})", "not-prometheus": "not a Prometheus query API",
            "rejected": "rejected the canary query", "refused": "unusable"}.get(exc.kind, exc.kind)
    if explicit:
        raise ProbeInputError(f"--query-endpoint {query.endpoint}: {what}: {exc.detail}")
    result.unconfirmed = f"the workspace's query endpoint {query.endpoint} is {what}: {exc.detail}"
    result.unconfirmed_needs = f"a usable query endpoint ({query.endpoint} is {what})"


def _poll_stage(result: ProbeResult, query: QueryClient, canary: Any, remaining_s: float, accepted_at: float,
                backoff: Backoff | None, clock: Callable[[], float], sleep: Callable[[float], None]) -> StageResult:
    at_s = canary.timestamp_ms / 1000.0
    seen: dict[str, Any] = {}

    def attempt() -> Attempt[Any]:
        try:
            samples = query.instant(result.series, at_s=at_s)
        except (QueryRefused, NotPrometheus, QueryRejected) as exc:
            return Attempt(Step.STOP, exc)
        except (QueryTransient, QueryUnreachable) as exc:
            seen["last_error"] = f"{exc.kind}: {exc.detail}"
            return Attempt(Step.NOT_YET, exc)
        hit = next((s for s in samples if canary.matches(s.value)), None)
        if hit is not None:
            return Attempt(Step.FOUND, hit)
        if samples:
            seen["last_value"] = samples[0].value
        return Attempt(Step.NOT_YET, samples)

    timeout = max(0.0, remaining_s)
    outcome = poll(attempt, timeout_s=timeout, backoff=backoff or Backoff.for_deadline(max(timeout, 1.0)),
                   clock=clock, sleep=sleep)
    waited_ms = (time.perf_counter() - accepted_at) * 1000.0
    ev: dict[str, Any] = {"queries": outcome.attempts, "at": f"{at_s:.3f}"}
    if outcome.found:
        sample: Sample = outcome.value  # type: ignore[assignment]  # FOUND always carries the sample
        result.arrived_after_ms = waited_ms
        ev["value"] = sample.value
        return StageResult(QUERY, True, waited_ms, detail="nonce read back from the workspace", evidence=ev)
    if outcome.reason == "stopped":
        exc: QueryError = outcome.value  # type: ignore[assignment]  # STOP always carries the error
        if isinstance(exc, QueryRefused):
            ev.update({"status": exc.status, "azure_error_code": exc.code})
            return StageResult(QUERY, False, waited_ms, QUERY_ACCESS_MISSING,
                               f"the canary was accepted, but the workspace refused the doctor's query: {exc.detail}",
                               ev)
        result.unconfirmed = f"the query endpoint stopped answering usefully: {exc.detail}"
        result.unconfirmed_needs = f"a usable query endpoint ({query.endpoint})"
        return StageResult(QUERY, None, waited_ms, detail=result.unconfirmed, evidence=ev)
    if seen.get("last_value") is not None:
        ev["last_value_seen"] = seen["last_value"]
        older = f"the series holds an older value ({seen['last_value']}, not nonce {canary.nonce})"
    else:
        older = "the series has no sample at or before the canary's timestamp"
    if seen.get("last_error"):
        ev["last_error"] = seen["last_error"]
    why = "the query bound was reached" if outcome.reason == "max-queries" else "the deadline passed"
    detail = (f"accepted by ingestion but not queryable after {waited_ms / 1000.0:.1f} s "
              f"({outcome.attempts} queries; {why}): {older}")
    return StageResult(QUERY, False, waited_ms, CANARY_NOT_ARRIVED, detail, ev, EXPLAINS_NOT_ARRIVED)
