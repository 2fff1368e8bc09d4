"""``promrw-doctor probe`` as a library call: pick the target(s), run the probe checks, cross-check, report.

Two ways to say what to probe:

* **discovery** (like ``run``): the kubeconfig context finds the Prometheus pod(s) with the
  sidecar; the canary travels with that sidecar's settings, as its identity where the
  doctor may act as it (see :mod:`.facts`), or ``--as-me``;
* **explicit settings** (``--ingestion-url`` with ``--identity-type`` and friends): no
  cluster needed; one target of kind ``probe``. The identity is whatever this machine can
  be: its IMDS for ``userAssigned``, the certificate file, the federated token file, or
  ``--as-me``.

By default only the probe's checks run (``pipeline.canary-probe`` and its companions);
``with_checks=True`` adds every live check, so the ranking can name the check that explains
a failed stage and :func:`~.crosscheck.cross_check` can weigh a delivered canary against them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..core.engine import EngineOptions, run_checks
from ..core.errors import InputError
from ..core.facts import FactStore
from ..core.model import CheckResult, Report, Target
from ..core.registry import Registry
from .crosscheck import cross_check
from .facts import custom_authority, validate_query_endpoint
from .runner import ProbePlan, check_timeout

LIVE_CATEGORIES = ("kubernetes", "identity", "azure", "pipeline")
PROBE_TAG = "probe"
#: Settings that also apply to a discovered sidecar (everything else needs --ingestion-url).
DISCOVERY_OVERRIDES = ("federated_token_file",)


#: Without a cluster (explicit settings) the Kubernetes-side checks have nothing to look at.
EXPLICIT_CATEGORIES = ("azure", "pipeline")


def select(registry: Registry, *, with_checks: bool, only: Sequence[str], skip: Sequence[str],
           explicit: bool = False) -> list[Any]:
    """The probe's checks (tag ``probe``), or every live check plus them with ``with_checks``."""
    chosen_only = tuple(only) if (only or with_checks) else (PROBE_TAG,)
    categories = EXPLICIT_CATEGORIES if explicit else LIVE_CATEGORIES
    specs = registry.select(categories=categories, only=chosen_only, skip=skip, include_opt_in=True)
    if not any(s.id == "pipeline.canary-probe" for s in specs):
        raise InputError("--only/--skip left out pipeline.canary-probe: nothing to probe")
    return specs


def explicit_plan(settings: Mapping[str, Any], *, profile: Any, as_me_credential: Any) -> tuple[ProbePlan, Any]:
    """(plan, SidecarSettings) from explicit flags; bad flags are an ``InputError`` (nothing written)."""
    from ..domain.clouds import BUILTIN
    from ..domain.sidecar import settings_from_env
    from ..forwarder.config import FLAG_ENV, config_from_env

    flags = {k: v for k, v in settings.items() if k in FLAG_ENV and v not in (None, "")}
    env: dict[str, str] = {}
    if settings.get("client_certificate_password"):
        env["AZURE_CLIENT_CERTIFICATE_PASSWORD"] = str(settings["client_certificate_password"])
    if not flags.get("cloud") and profile.name in BUILTIN and profile.name != "public":
        flags["cloud"] = profile.sidecar_names[0]
    is_custom = custom_authority(profile) is not None
    config = config_from_env(env, flags=flags, cloud_config=settings.get("cloud_config") if is_custom else None,
                             authority_host=custom_authority(profile),
                             ca_bundle=os.environ.get("REQUESTS_CA_BUNDLE") or None, imds_retry_total=0)
    cluster = settings.get("cluster") or config.cluster
    if not cluster:
        raise InputError("the canary needs a cluster label: pass --cluster (or set CLUSTER)")
    ident = config.identity
    if as_me_credential is not None:
        context = "the doctor's own credential (--as-me): proves the path, not the sidecar's identity"
    elif ident.identity_type == "userAssigned":
        context = "this machine's managed identity endpoint (IMDS, or AZURE_POD_IDENTITY_AUTHORITY_HOST)"
    elif ident.identity_type == "aadApplication":
        context = f"the application's certificate {ident.certificate_path}"
    elif ident.identity_type == "workloadIdentity":
        context = f"the federated token file {ident.federated_token_file}"
    else:
        context = f"explicit {ident.identity_type} settings"
    sidecar = settings_from_env({"INGESTION_URL": config.ingestion_url, "IDENTITY_TYPE": ident.identity_type,
                                 "AZURE_CLIENT_ID": ident.client_id, "AZURE_TENANT_ID": ident.tenant_id,
                                 "AZURE_CLIENT_CERTIFICATE_PATH": ident.certificate_path, "CLUSTER": str(cluster),
                                 "INGESTION_AAD_AUDIENCE": ident.scope})
    plan = ProbePlan(config=config, cluster=str(cluster), identity_context=context, as_me_credential=as_me_credential)
    return plan, sidecar


def probe_report(
    *,
    registry: Registry,
    kubeconfig: str | None = None,
    context: str | None = None,
    namespace: str | None = None,
    pod: str | None = None,
    settings: Mapping[str, Any] | None = None,
    as_me: bool = False,
    query_endpoint: str | None = None,
    timeout_s: float | None = None,
    cluster: str | None = None,
    cloud: str | None = None,
    cloud_config: str | None = None,
    tenant: str | None = None,
    subscription: str | None = None,
    client_certificate: str | None = None,
    client_certificate_password: str | None = None,
    identity_env: Mapping[str, str] | None = None,
    with_checks: bool = False,
    only: Sequence[str] = (),
    skip: Sequence[str] = (),
    check_timeout_s: float = 30.0,
    options: Mapping[str, Any] | None = None,
    on_result: Callable[[CheckResult], None] | None = None,
) -> Report:
    """Run the probe (and with ``with_checks`` every live check) and return the cross-checked report."""
    given = {k: v for k, v in (settings or {}).items() if v not in (None, "")}
    explicit = given if given.get("ingestion_url") else {}
    if timeout_s is not None:
        timeout_s = check_timeout(timeout_s)
    if query_endpoint is not None:
        query_endpoint = validate_query_endpoint(query_endpoint)
    if explicit and (context or namespace or pod):
        raise InputError("give either the discovery flags (--context/-n/--pod) or explicit sidecar settings "
                         "(--ingestion-url ...), not both")
    stray = sorted(k for k in given if k not in DISCOVERY_OVERRIDES) if not explicit else []
    if stray:
        flags = ", ".join("--" + k.replace("_", "-") for k in stray)
        raise InputError(f"{flags}: explicit sidecar settings need --ingestion-url (or use the discovery flags)")
    specs = select(registry, with_checks=with_checks, only=only, skip=skip, explicit=bool(explicit))
    probe_options: dict[str, Any] = {"as_me": as_me}
    for key, value in (("query_endpoint", query_endpoint), ("timeout_s", timeout_s), ("cluster", cluster),
                       ("identity_env", dict(identity_env) if identity_env else None)):
        if value is not None:
            probe_options[key] = value
    if not explicit and given.get("federated_token_file"):
        probe_options["federated_token_file"] = str(given["federated_token_file"])
    opts: dict[str, Any] = {
        "kubeconfig": kubeconfig, "context": context, "namespace": namespace, "pod": pod, "cloud": cloud,
        "cloud_config": cloud_config, "tenant": tenant, "subscription": subscription,
        "client_certificate": client_certificate, "client_certificate_password": client_certificate_password,
        "probe": True, "probe_options": probe_options,
    }
    opts.update(options or {})
    store = FactStore(opts)
    if explicit:
        targets, ctx_info = _explicit_target(store, explicit, cluster=cluster, as_me=as_me,
                                             cloud_config=cloud_config, client_certificate=client_certificate,
                                             client_certificate_password=client_certificate_password)
    else:
        from ..core.facts import fact_spec

        if fact_spec("k8s.targets") is None:
            raise InputError("probing a cluster needs the Kubernetes collector; pass --ingestion-url ... instead")
        targets = store.get("k8s.targets")
        ctx_info = dict(store.try_get("k8s.context_info", default={}) or {})
    ctx_info["probe"] = {"as_me": as_me, "with_checks": with_checks,
                         "timeout_s": timeout_s, "query_endpoint": query_endpoint}
    report = run_checks(registry, specs, targets, store, command="probe",
                        options=EngineOptions(check_timeout_s=check_timeout_s, on_result=on_result),
                        context=ctx_info)
    return cross_check(report, registry)


def _explicit_target(store: FactStore, explicit: Mapping[str, Any], *, cluster: str | None, as_me: bool,
                     cloud_config: str | None, client_certificate: str | None,
                     client_certificate_password: str | None) -> tuple[list[Target], dict[str, Any]]:
    from urllib.parse import urlsplit

    profile = store.get("azure.cloud")
    credential = store.get("azure.credential") if as_me else None
    flags = dict(explicit)
    flags.setdefault("cluster", cluster)
    if client_certificate and not flags.get("certificate_path"):
        flags["certificate_path"] = client_certificate
    if client_certificate_password:
        flags["client_certificate_password"] = client_certificate_password
    flags["cloud_config"] = cloud_config or os.environ.get("PROMRW_DOCTOR_CLOUD_CONFIG")
    plan, sidecar = explicit_plan(flags, profile=profile, as_me_credential=credential)
    host = urlsplit(plan.config.ingestion_url).netloc
    target = Target(id=f"probe/{plan.cluster}", kind="probe", description="canary probe with explicit sidecar settings",
                    attributes={"cluster": plan.cluster, "ingestion_host": host, "identity": plan.identity})
    store.preset("probe.plan", plan, target)
    store.preset("sidecar.settings", sidecar, target)
    return [target], {"mode": "explicit sidecar settings", "ingestion_host": host, "cloud": profile.name}

