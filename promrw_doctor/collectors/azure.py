"""Azure facts shared by every Azure-side check: the cloud, the doctor's credential, the ingestion URL.

The cluster side says what the sidecar is configured to do; these facts resolve that
configuration against Azure. Everything starts from the sidecar's settings
(``sidecar.settings``): the ingestion URL names the DCR, the client id names the identity.

Facts (scope):

* ``azure.cloud`` (run) :class:`~promrw_doctor.domain.clouds.CloudProfile` from ``--cloud`` /
  ``--cloud-config`` / ``PROMRW_DOCTOR_CLOUD_CONFIG`` (a malformed profile is an ``InputError``).
* ``azure.credential`` (run) the doctor's own credential: ``DefaultAzureCredential`` against
  the profile's authority (``az login``, ``AZURE_*`` env, managed identity), never interactive.
  The option ``azure_credential`` injects any ``TokenCredential`` (library callers, tests).
* ``azure.http`` (run) :class:`~.azure_http.AzureHttp` (one session, a token per audience).
* ``azure.ingestion_url`` (target) :class:`LiveIngestionUrl`: the sidecar's ``INGESTION_URL``
  parsed and judged, the custom profile counting as an extra cloud.
* ``azure.subscriptions`` (target) :class:`SubscriptionScope`: where ARM lookups search:
  ``--subscription`` values, else ``AZURE_SUBSCRIPTION_ID``, else every subscription the
  doctor may list, plus the subscriptions the cluster itself names (node ``providerID``,
  ``AzureIdentity.spec.resourceID``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..core.errors import AccessDenied, InputError, NotApplicable, Unreachable
from ..core.facts import FactContext, fact
from ..domain.clouds import BUILTIN, ENV_CLOUD_CONFIG, CloudProfile, resolve
from ..domain.ingestion_url import IngestionUrl, UrlProblem, ingestion_url_problems, parse_ingestion_url
from ..domain.sidecar import SidecarSettings, find_placeholder
from .azure_http import API_SUBSCRIPTIONS, AzureApiError, AzureHttp, arm_needs

SUB_RE = re.compile(r"(?i)/subscriptions/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})")
ENV_SUBSCRIPTION = "AZURE_SUBSCRIPTION_ID"


# --------------------------------------------------------------------------- run facts


@fact("azure.cloud", scope="run")
def cloud(ctx: FactContext) -> CloudProfile:
    """The doctor's cloud profile: ``--cloud-config``/``PROMRW_DOCTOR_CLOUD_CONFIG`` wins, else ``--cloud``.

    Errors name the profile file (a ``base: mars`` error would otherwise not say where it came from).
    """
    path = ctx.option("cloud_config") or os.environ.get(ENV_CLOUD_CONFIG)
    try:
        return resolve(ctx.option("cloud"), ctx.option("cloud_config"))
    except InputError as exc:
        message = str(exc)
        if path and not message.startswith("cloud profile"):
            message = f"cloud profile {path}: {message.removeprefix(str(path) + ': ')}"
        raise InputError(message) from None


def extra_clouds(profile: CloudProfile) -> tuple[CloudProfile, ...]:
    """Profiles to consult before the built-ins when deciding which cloud owns a host (custom ones only)."""
    return () if profile.name in BUILTIN and BUILTIN[profile.name] == profile else (profile,)


@fact("azure.credential", scope="run")
def credential(ctx: FactContext) -> Any:
    """``DefaultAzureCredential`` for the profile's authority; interactive and broker sign-in excluded."""
    injected = ctx.option("azure_credential")
    if injected is not None:
        return injected
    profile: CloudProfile = ctx.fact("azure.cloud")
    from azure.identity import DefaultAzureCredential

    kwargs: dict[str, Any] = {
        "authority": profile.authority_host,
        "exclude_interactive_browser_credential": True,
        "exclude_shared_token_cache_credential": True,
        "exclude_visual_studio_code_credential": True,
        "exclude_broker_credential": True,
    }
    if profile.disable_instance_discovery:
        kwargs["disable_instance_discovery"] = True
    tenant = ctx.option("tenant")
    if tenant:
        kwargs["additionally_allowed_tenants"] = [str(tenant)]
    return DefaultAzureCredential(**kwargs)


@fact("azure.http", scope="run")
def http(ctx: FactContext) -> AzureHttp:
    """The run's ARM/Graph/Key Vault client (token per audience, ``REQUESTS_CA_BUNDLE`` honoured)."""
    return AzureHttp(ctx.fact("azure.cloud"), ctx.fact("azure.credential"), tenant=ctx.option("tenant") or None)


# --------------------------------------------------------------------------- the ingestion URL


@dataclass(frozen=True)
class LiveIngestionUrl:
    """The sidecar's ``INGESTION_URL`` as the doctor reads it. ``parsed`` is None when it is not a URL at all."""

    raw: str
    parsed: IngestionUrl | None
    problems: tuple[UrlProblem, ...]
    error: str | None = None

    @property
    def errors(self) -> tuple[UrlProblem, ...]:
        return tuple(p for p in self.problems if p.severity == "error")

    @property
    def dcr_immutable_id(self) -> str | None:
        """The DCR id to look up (only when it is shaped like one and not a placeholder)."""
        if self.parsed is None or not self.parsed.dcr_immutable_id:
            return None
        dcr = self.parsed.dcr_immutable_id
        if find_placeholder(dcr) is not None or any(p.field in ("dcr", "placeholder") for p in self.errors):
            return None
        return dcr


@fact("azure.ingestion_url", scope="target")
def ingestion_url(ctx: FactContext) -> LiveIngestionUrl:
    """``INGESTION_URL`` from the running sidecar, parsed, with every deviation from the documented format."""
    settings: SidecarSettings = ctx.fact("sidecar.settings")
    raw = settings.ingestion_url
    if not raw:
        raise NotApplicable("the sidecar has no INGESTION_URL (reported by the sidecar env check)")
    extra = extra_clouds(ctx.fact("azure.cloud"))
    problems = tuple(ingestion_url_problems(raw, extra))
    try:
        parsed: IngestionUrl | None = parse_ingestion_url(raw, extra)
        error = None
    except ValueError as exc:
        parsed, error = None, str(exc)
    return LiveIngestionUrl(raw=raw, parsed=parsed, problems=problems, error=error)


# --------------------------------------------------------------------------- subscriptions


@dataclass(frozen=True)
class SubscriptionScope:
    """Subscriptions ARM lookups search, and how the doctor chose them (said in ``*_NOT_FOUND`` messages)."""

    ids: tuple[str, ...]
    source: str  # "--subscription" | "AZURE_SUBSCRIPTION_ID" | "listed" | "cluster"
    notes: tuple[str, ...] = ()
    denied: tuple[str, ...] = field(default_factory=tuple)  # why the listing was incomplete

    def describe(self) -> str:
        where = ", ".join(f"/subscriptions/{s}" for s in self.ids) or "no subscription"
        return f"{where} ({self.source})"


def subscriptions_in(values: Iterable[Any]) -> list[str]:
    """Subscription ids named anywhere in ``values`` (resource ids, providerIDs), in order, unique."""
    out: list[str] = []
    for v in values:
        for m in SUB_RE.finditer(str(v or "")):
            sid = m.group(1).lower()
            if sid not in out:
                out.append(sid)
    return out


def _explicit(ctx: FactContext) -> list[str]:
    raw: list[str] = []
    opts = ctx.option("subscriptions")
    if isinstance(opts, list | tuple):
        raw += [str(s) for s in opts if s]
    if ctx.option("subscription"):
        raw.append(str(ctx.option("subscription")))
    out: list[str] = []
    for s in raw:
        for part in re.split(r"[,\s]+", s.strip()):
            if not part:
                continue
            m = re.fullmatch(r"(?i)(?:/subscriptions/)?([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})",
                             part)
            if m is None:
                raise InputError(f"--subscription {part!r}: not a subscription id (a GUID)")
            if m.group(1).lower() not in out:
                out.append(m.group(1).lower())
    return out


def cluster_hints(ctx: FactContext) -> list[str]:
    """Subscriptions the cluster names: the node's ``providerID`` and pod-identity ``resourceID``s."""
    values: list[Any] = []
    try:
        pod = ctx.fact("k8s.pod")
    except Exception:
        pod = None
    node_name = ((pod or {}).get("spec") or {}).get("nodeName")
    if node_name:
        node = node_object(ctx, str(node_name))
        if node:
            values.append((node.get("spec") or {}).get("providerID"))
    try:
        view = ctx.fact("k8s.pod_identity")
        values += [(i.get("spec") or {}).get("resourceID") for i in view.identities]
    except Exception:
        pass
    return subscriptions_in(values)


def node_object(ctx: FactContext, name: str) -> dict[str, Any] | None:
    """The pod's Node (labels name the AKS node resource group, ``providerID`` the subscription); None if
    the doctor may not read nodes."""
    try:
        client = ctx.fact("k8s.api")
    except Exception:
        return None
    from .kube_client import Resource

    nodes = Resource("", "v1", "nodes", namespaced=False)
    try:
        node: dict[str, Any] | None = client.cached(("node", name), lambda: client.read(nodes, None, name))
    except Exception:
        return None
    return node


@fact("azure.subscriptions", scope="target")
def subscriptions(ctx: FactContext) -> SubscriptionScope:
    """Where ARM lookups search (see the module docstring for the order)."""
    explicit = _explicit(ctx)
    if explicit:
        return SubscriptionScope(tuple(explicit), "--subscription")
    env = os.environ.get(ENV_SUBSCRIPTION, "").strip()
    hints = cluster_hints(ctx)
    if env:
        ids = [env.lower(), *[h for h in hints if h != env.lower()]]
        return SubscriptionScope(tuple(ids), ENV_SUBSCRIPTION if len(ids) == 1 else f"{ENV_SUBSCRIPTION} + cluster")
    client: AzureHttp = ctx.fact("azure.http")
    notes: list[str] = []
    denied: list[str] = []
    try:
        listed = client.cached(("subscriptions",), lambda: client.arm_list(
            "/subscriptions", API_SUBSCRIPTIONS, needs=arm_needs("Microsoft.Resources/subscriptions/read", "/")))
    except (AccessDenied, AzureApiError, Unreachable) as exc:
        listed = None
        denied.append(getattr(exc, "needs", None) or str(exc))
    ids = [str(s.get("subscriptionId") or "").lower() for s in listed or [] if s.get("subscriptionId")]
    if listed is None:
        notes.append("the subscriptions could not be listed; searched those the cluster names (pass --subscription)")
    elif not ids:
        notes.append("the subscription list is empty (the doctor may read none); searched those the cluster names "
                     "(pass --subscription)")
    for h in hints:
        if h not in ids:
            ids.append(h)
    if not ids:
        needs = denied[0] if denied else arm_needs("Microsoft.Resources/subscriptions/read", "/")
        raise AccessDenied(needs, "no subscription to search: pass --subscription SUBSCRIPTION_ID")
    source = "listed" if listed else "cluster"
    return SubscriptionScope(tuple(ids), source, tuple(notes), tuple(denied))
