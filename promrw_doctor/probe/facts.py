"""The probe's facts: ``probe.plan`` (what to send, as whom) and ``probe.result`` (the probe, run once per target).

These are the only facts that *write* (one canary sample), which is why only the opt-in
checks need them: nothing gathers ``probe.result`` unless the probe was asked for. The
module registers its facts on import; ``checks/pipeline/probe.py`` imports it.

Acting as the sidecar's identity, honestly (the same rules as ``azure.sidecar_token``):

* ``probe_options["identity_env"]``: the caller runs the doctor *in the pod's identity
  context* and says so by handing over that context: the sidecar's env with pod paths
  mapped to where the files really are, and the IMDS/NMI address. The lab does this with
  :meth:`~promrw_doctor.lab.world.LabWorld.forwarder_env` (see :mod:`.lab`);
* ``aadApplication`` with ``--client-certificate FILE``: the application's own certificate;
* in-cluster, in a pod with the sidecar's service account / ``aadpodidbinding`` / node;
* ``--as-me``: the doctor's own credential, said so in every line of the report;
* otherwise the probe is not attempted (``unknown``: incomplete, with how to enable it).

Options read (``probe_options`` dict, from ``api.diagnose(probe_options=...)`` / ``api.probe``):
``as_me``, ``query_endpoint``, ``timeout_s``, ``cluster``, ``identity_env``,
``identity_context``, ``federated_token_file``; plus the run options ``client_certificate``,
``client_certificate_password``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..core.errors import InputError, Unknown
from ..core.facts import FactContext, fact
from .runner import (
    DEFAULT_TIMEOUT_S,
    IMDS_ENV,
    LAB_TIMEOUT_S,
    ProbePlan,
    check_timeout,
    run_probe,
)
from .stages import (
    EXPLAINS_TOKEN,
    INGESTION,
    NETWORK,
    QUERY,
    TOKEN,
    TOKEN_ACQUISITION_FAILED,
    ProbeResult,
    StageResult,
)

HOW_TO_ENABLE = ("to probe as the sidecar's identity pass --client-certificate FILE (Entra application), run the "
                 "doctor in-cluster in the pod's identity context, or pass --as-me to send the canary with your "
                 "own identity")


class SidecarConfigUnusable(Exception):
    """The sidecar's env cannot make a working forwarder configuration (the probe's token stage fails)."""


@dataclass(frozen=True)
class ProbeOptions:
    as_me: bool = False
    query_endpoint: str | None = None
    timeout_s: float | None = None
    cluster: str | None = None
    identity_env: dict[str, str] = field(default_factory=dict)
    identity_context: str | None = None
    federated_token_file: str | None = None

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> ProbeOptions:
        raw = dict(options.get("probe_options") or {})
        unknown = sorted(set(raw) - set(cls.__dataclass_fields__))
        if unknown:
            raise InputError(f"probe options: unknown setting(s): {', '.join(unknown)}")
        timeout = raw.get("timeout_s")
        endpoint = raw.get("query_endpoint")
        if endpoint is not None:
            endpoint = validate_query_endpoint(str(endpoint))
        env = raw.get("identity_env") or {}
        if not isinstance(env, Mapping):
            raise InputError("probe options: identity_env must be a mapping of environment variables")
        return cls(as_me=bool(raw.get("as_me")), query_endpoint=endpoint,
                   timeout_s=check_timeout(timeout) if timeout is not None else None,
                   cluster=str(raw["cluster"]) if raw.get("cluster") else None,
                   identity_env={str(k): str(v) for k, v in env.items() if v is not None},
                   identity_context=str(raw["identity_context"]) if raw.get("identity_context") else None,
                   federated_token_file=str(raw["federated_token_file"]) if raw.get("federated_token_file")
                   else None)


def validate_query_endpoint(value: str) -> str:
    """``--query-endpoint``: an http(s) URL with a host (the workspace's "Query endpoint"), no path needed."""
    from urllib.parse import urlsplit

    v = value.strip().rstrip("/")
    try:
        u = urlsplit(v)
    except ValueError:
        raise InputError(f"--query-endpoint {value!r}: not a URL") from None
    if u.scheme not in ("https", "http") or not u.hostname:
        raise InputError(f"--query-endpoint {value!r}: expected https://<workspace>.<region>.prometheus."
                         "monitor.azure.com")
    if u.path.endswith("/api/v1/query"):
        v = v[: -len("/api/v1/query")]
    return v


def probe_options(ctx: FactContext) -> ProbeOptions:
    return ProbeOptions.from_options(ctx.options)


def default_timeout(profile: Any) -> float:
    """10 minutes against Azure (ingestion can lag by minutes); 30 s against the lab (its store is immediate)."""
    return LAB_TIMEOUT_S if bool((getattr(profile, "extra", None) or {}).get("lab")) else DEFAULT_TIMEOUT_S


def _try(ctx: FactContext, name: str) -> Any:
    """A nice-to-have fact: None when it cannot be had (FactContext re-raises the root cause)."""
    try:
        return ctx.fact(name)
    except Exception:
        return None


# --------------------------------------------------------------------------------- cluster label
def cluster_label(ctx: FactContext, opts: ProbeOptions, settings: Any) -> tuple[str, str]:
    """(cluster, where it came from): ``--cluster``, the sidecar's ``CLUSTER``, or the CR's ``externalLabels``."""
    if opts.cluster:
        return opts.cluster, "--cluster"
    if getattr(settings, "cluster", None):
        return str(settings.cluster), "sidecar env CLUSTER"
    try:
        cr = ctx.fact("k8s.prometheus_cr")
    except Exception:
        cr = None
    labels = ((cr or {}).get("spec") or {}).get("externalLabels") or {}
    if labels.get("cluster"):
        return str(labels["cluster"]), "Prometheus externalLabels.cluster"
    raise Unknown("the canary needs a cluster label: the sidecar has no CLUSTER and Prometheus no "
                  "externalLabels.cluster (pass --cluster)", needs="a cluster label (--cluster)")


# --------------------------------------------------------------------------------- plan (pod mode)
def _pod_env(ctx: FactContext, settings: Any) -> dict[str, str]:
    env_fact = ctx.fact("k8s.sidecar_env")
    env = {k: str(v) for k, v in env_fact.values.items() if v is not None}
    # Workload identity: what the webhook injects, as sidecar.settings resolved it from the ServiceAccount.
    if settings.client_id and not env.get("AZURE_CLIENT_ID"):
        env["AZURE_CLIENT_ID"] = str(settings.client_id)
    if settings.tenant_id and not env.get("AZURE_TENANT_ID"):
        env["AZURE_TENANT_ID"] = str(settings.tenant_id)
    return env


def _in_cluster_identity(ctx: FactContext, variant: str, settings: Any, profile: Any) -> tuple[Any, str] | None:
    """The Azure-side collector's in-cluster rule (same namespace + service account / binding / node)."""
    try:
        from ..collectors import azure_token
        from ..domain.clouds import normalize_audience
        from ..domain.sidecar import effective_ingestion_audience

        finder = getattr(azure_token, "_in_cluster_settings", None)
        if finder is None:
            return None
        audience = normalize_audience(effective_ingestion_audience(settings))
        found: tuple[Any, str] | None = finder(ctx, variant, settings, audience, profile)
        return found
    except Exception:
        return None


def build_config(env: Mapping[str, str], *, authority_host: str | None, ca_bundle: str | None) -> Any:
    """The forwarder configuration the sidecar's env makes (``InputError`` when it makes none)."""
    from ..forwarder.config import config_from_env

    return config_from_env(dict(env), authority_host=authority_host, ca_bundle=ca_bundle, imds_retry_total=0)


def custom_authority(profile: Any) -> str | None:
    """A custom cloud profile's authority (lab, air-gapped) overrides the sidecar's: the built-in ones do not."""
    from ..domain.clouds import BUILTIN

    if profile.name in BUILTIN and BUILTIN[profile.name] == profile:
        return None
    return str(profile.authority_host)


@fact("probe.plan", scope="target")
def probe_plan(ctx: FactContext) -> ProbePlan:
    """What the canary travels with (the sidecar's settings from its pod) and as whom (see the module docstring)."""
    opts = probe_options(ctx)
    profile = ctx.fact("azure.cloud")
    settings = ctx.fact("sidecar.settings")
    cluster, _ = cluster_label(ctx, opts, settings)
    env = _pod_env(ctx, settings)
    variant = str(_try(ctx, "target.variant") or "")
    ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or None
    process_env: dict[str, str] = {}
    as_me_credential = None
    swap_identity: Any = None
    if opts.as_me:
        as_me_credential = ctx.fact("azure.credential")
        context = "the doctor's own credential (--as-me): proves the path, not the sidecar's identity"
    elif opts.identity_env:
        env.update(opts.identity_env)
        process_env = {k: v for k, v in opts.identity_env.items() if k in IMDS_ENV}
        ca_bundle = opts.identity_env.get("REQUESTS_CA_BUNDLE") or ca_bundle
        context = opts.identity_context or "the pod's identity context (given by the caller)"
    elif variant == "aadApplication" and ctx.option("client_certificate"):
        env["AZURE_CLIENT_CERTIFICATE_PATH"] = str(ctx.option("client_certificate"))
        if ctx.option("client_certificate_password"):
            env["AZURE_CLIENT_CERTIFICATE_PASSWORD"] = str(ctx.option("client_certificate_password"))
        context = f"the application's certificate from --client-certificate {ctx.option('client_certificate')}"
    elif variant == "workloadIdentity" and opts.federated_token_file:
        env["AZURE_FEDERATED_TOKEN_FILE"] = opts.federated_token_file
        context = f"the service account token from --federated-token-file {opts.federated_token_file}"
    else:
        found = _in_cluster_identity(ctx, variant, settings, profile) if variant != "aadApplication" else None
        if found is None:
            # Asked for, but not possible honestly: incomplete (exit 3), never a silent pass.
            raise Unknown(f"probe not attempted: the doctor cannot act as the sidecar's identity "
                          f"({variant or 'unknown variant'}) from here; {HOW_TO_ENABLE}",
                          needs="the sidecar's identity (--client-certificate, in-cluster, or --as-me)")
        swap_identity, context = found
    try:
        config = build_config(env, authority_host=custom_authority(profile), ca_bundle=ca_bundle)
    except InputError as exc:
        raise SidecarConfigUnusable(str(exc)) from None
    if swap_identity is not None:
        config = config.with_changes(identity=swap_identity)
    return ProbePlan(config=config, cluster=cluster, identity_context=context, as_me_credential=as_me_credential,
                     process_env=process_env)


# --------------------------------------------------------------------------------- query endpoint
def workspace_query_endpoint(workspace: Any) -> str | None:
    """``properties.metrics.prometheusQueryEndpoint`` of a ``Microsoft.Monitor/accounts`` resource."""
    if not isinstance(workspace, Mapping):
        return None
    metrics = (workspace.get("properties") or {}).get("metrics") or {}
    endpoint = metrics.get("prometheusQueryEndpoint")
    return str(endpoint).rstrip("/") if endpoint else None


def query_client(ctx: FactContext, opts: ProbeOptions, profile: Any) -> tuple[Any, str | None, str | None]:
    """(client or None, source, why none): ``--query-endpoint`` wins, else the workspace's own endpoint."""
    from .query import QueryClient

    endpoint, source, why = opts.query_endpoint, "--query-endpoint", None
    if endpoint is None:
        source = "workspace"
        try:
            endpoint = workspace_query_endpoint(ctx.fact("azure.workspace"))
            if endpoint is None:
                why = "the workspace has no Prometheus query endpoint (pass --query-endpoint)"
        except Exception as exc:
            needs = getattr(exc, "needs", None)
            why = ("the workspace's query endpoint is unknown: "
                   + (f"missing permission: {needs}" if needs else str(exc) or type(exc).__name__)
                   + " (pass --query-endpoint)")
    if endpoint is None:
        return None, None, why
    try:
        credential = ctx.fact("azure.credential")
    except Exception as exc:
        if source == "--query-endpoint":
            raise InputError(f"--query-endpoint needs the doctor's Azure credential: {exc}") from None
        return None, None, f"the doctor has no Azure credential to query the workspace: {exc}"
    return QueryClient(endpoint, credential=credential, audience=profile.query_audience), source, None


# --------------------------------------------------------------------------------- the probe
def config_failure(plan_error: str, cluster: str, as_me: bool = False) -> ProbeResult:
    """The probe's verdict when the sidecar's own configuration cannot make a token request at all."""
    from .runner import canary_selector

    stage = StageResult(TOKEN, False, None, TOKEN_ACQUISITION_FAILED,
                        f"the sidecar's configuration cannot get a token: {plan_error}",
                        {"category": "config"}, () if as_me else ("SIDECAR_CONFIG_INVALID", *EXPLAINS_TOKEN))
    return ProbeResult(stages=[stage, StageResult(NETWORK, None), StageResult(INGESTION, None),
                               StageResult(QUERY, None)],
                       series=canary_selector(cluster), cluster=cluster, identity="the sidecar's identity",
                       as_me=as_me)


@fact("probe.result", scope="target")
def probe_result(ctx: FactContext) -> ProbeResult:
    """The probe (writes one canary sample): stage verdicts, timings, series, nonce and token claims."""
    opts = probe_options(ctx)
    profile = ctx.fact("azure.cloud")
    timeout = opts.timeout_s if opts.timeout_s is not None else default_timeout(profile)
    try:
        plan: ProbePlan = ctx.fact("probe.plan")
    except SidecarConfigUnusable as exc:
        try:
            cluster = cluster_label(ctx, opts, _try(ctx, "sidecar.settings"))[0]
        except Unknown:
            cluster = "unknown"
        return config_failure(str(exc), cluster, opts.as_me)
    query, source, why = query_client(ctx, opts, profile)
    try:
        return run_probe(plan, query=query, query_source=source, timeout_s=timeout,
                         explicit_query=source == "--query-endpoint", no_query_reason=why)
    finally:
        if query is not None:
            query.close()
