"""Prometheus's remote-write configuration: from the Prometheus CR, else the operator's config Secret.

Why both: with the Prometheus Operator the CR's ``spec.remoteWrite`` is what the user (Helm
values) wrote and what the operator renders; reading it needs only ``list prometheuses``.
Without the CR (or without permission to list it) the operator's generated Secret
``prometheus-<name>`` (key ``prometheus.yaml.gz``) holds the rendered config — but reading
Secrets is a permission many on-call identities rightly lack, so it is the fallback, and a
denial becomes ``unknown`` naming ``get secrets in namespace <ns>``. Only the remote-write
URLs (credentials stripped) and names are kept. Plain installs mount the config from a
ConfigMap (``--config.file``); that is read the same way.

Facts (target scope): ``k8s.prometheus_cr`` (the pod's Prometheus CR dict, or None) and
``k8s.remote_write_config`` (:class:`RemoteWriteConfig`).
"""

from __future__ import annotations

import base64
import gzip
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..core.errors import AccessDenied, Unknown, Unreachable
from ..core.facts import FactContext, fact
from .kube import pod_key
from .kube_client import CONFIGMAPS, PROMETHEUSES, SECRETS, ApiError, KubeClient

CONFIG_SECRET_KEY = "prometheus.yaml.gz"
CR_LABELS = ("operator.prometheus.io/name", "prometheus")


@dataclass(frozen=True)
class RemoteWriteConfig:
    """Remote-write targets as configured. ``urls``: ``[{"url": ..., "name": ...}]`` (no credentials)."""

    source: str
    urls: tuple[dict[str, Any], ...]
    cr: str | None = None
    notes: tuple[str, ...] = ()


def strip_userinfo(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.username or parts.password:
        host = parts.hostname or ""
        if parts.port:
            host += f":{parts.port}"
        return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    return url


def _entries(items: Any, url_key: str) -> tuple[dict[str, Any], ...]:
    out = []
    for item in items or []:
        if isinstance(item, Mapping) and item.get(url_key) is not None:
            entry: dict[str, Any] = {"url": strip_userinfo(str(item[url_key]))}
            if item.get("name"):
                entry["name"] = str(item["name"])
            out.append(entry)
    return tuple(out)


def cr_name_for(pod: Mapping[str, Any]) -> str | None:
    """The Prometheus CR a pod belongs to, from the operator's labels."""
    labels = (pod.get("metadata") or {}).get("labels") or {}
    for key in CR_LABELS:
        if labels.get(key):
            return str(labels[key])
    return None


@fact("k8s.prometheus_cr", scope="target")
def prometheus_cr(ctx: FactContext) -> dict[str, Any] | None:
    """The Prometheus custom resource that generated the pod (None: not operator-managed, or CRD absent)."""
    pod = ctx.fact("k8s.pod")
    ns = pod_key(pod)[0]
    name = cr_name_for(pod)
    if name is None:
        return None
    client: KubeClient = ctx.fact("k8s.api")
    view = client.visible(PROMETHEUSES, ns)
    return next((p for p in view.in_namespace(ns) if (p.get("metadata") or {}).get("name") == name), None)


def remote_write_from_yaml(text: str) -> tuple[dict[str, Any], ...]:
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise Unknown(f"the Prometheus configuration is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, Mapping):
        return ()
    return _entries(data.get("remote_write"), "url")


def _from_secret(client: KubeClient, ns: str, cr: str) -> RemoteWriteConfig | None:
    name = f"prometheus-{cr}"
    secret = client.read(SECRETS, ns, name)
    if secret is None:
        return None
    raw = (secret.get("data") or {}).get(CONFIG_SECRET_KEY)
    secret = {}  # drop everything else the Secret held at once
    if not raw:
        return None
    try:
        text = gzip.decompress(base64.b64decode(raw)).decode("utf-8", errors="replace")
    except (ValueError, OSError) as exc:
        raise Unknown(f"secret {ns}/{name} key {CONFIG_SECRET_KEY} is not gzip+base64: {exc}") from None
    return RemoteWriteConfig(f"secret {ns}/{name} ({CONFIG_SECRET_KEY})", remote_write_from_yaml(text), cr)


def config_file_arg(container: Mapping[str, Any] | None) -> str | None:
    for arg in (container or {}).get("args") or []:
        text = str(arg)
        if text.startswith("--config.file="):
            return text.split("=", 1)[1]
    return None


def _from_configmap(client: KubeClient, pod: Mapping[str, Any], container: Mapping[str, Any] | None
                    ) -> RemoteWriteConfig | None:
    path = config_file_arg(container) or "/etc/prometheus/prometheus.yml"
    mount = None
    for m in (container or {}).get("volumeMounts") or []:
        mp = str(m.get("mountPath") or "").rstrip("/")
        if mp and path.startswith(mp + "/") and (mount is None or len(mp) > len(str(mount.get("mountPath")))):
            mount = m
    if mount is None:
        return None
    volume = next((v for v in (pod.get("spec") or {}).get("volumes") or [] if v.get("name") == mount.get("name")),
                  None)
    cm = (volume or {}).get("configMap")
    if not isinstance(cm, Mapping):
        return None
    ns = pod_key(pod)[0]
    obj = client.read(CONFIGMAPS, ns, str(cm.get("name")))
    if obj is None:
        return None
    key = path[len(str(mount.get("mountPath")).rstrip("/")) + 1:]
    text = (obj.get("data") or {}).get(key)
    if text is None:
        return None
    return RemoteWriteConfig(f"ConfigMap {ns}/{cm.get('name')} ({key})", remote_write_from_yaml(str(text)))


def _from_running_config(ctx: FactContext) -> RemoteWriteConfig | None:
    """The config Prometheus runs (``/api/v1/status/config`` through the pod proxy; needs only ``pods/proxy``)."""
    import json

    from .kube_metrics import proxy_get

    ns, name = pod_key(ctx.fact("k8s.pod"))
    port, prefix = ctx.fact("k8s.prometheus_web")
    try:
        status, body = proxy_get(ctx.fact("k8s.api"), ns, name, port, prefix + "api/v1/status/config")
    except Unreachable:
        return None
    if status != 200:
        return None
    try:
        text = (json.loads(body).get("data") or {}).get("yaml")
    except (ValueError, AttributeError):
        return None
    if not isinstance(text, str):
        return None
    return RemoteWriteConfig(f"running config of {ns}/{name} (/api/v1/status/config)", remote_write_from_yaml(text),
                             cr_name_for(ctx.fact("k8s.pod")))


@fact("k8s.remote_write_config", scope="target")
def remote_write_config(ctx: FactContext) -> RemoteWriteConfig:
    """Prometheus's ``remote_write`` targets: CR ``spec.remoteWrite``, else the generated Secret, else a ConfigMap."""
    pod = ctx.fact("k8s.pod")
    ns = pod_key(pod)[0]
    client: KubeClient = ctx.fact("k8s.api")
    denied: list[str] = []
    notes: list[str] = []
    cr_name = cr_name_for(pod)
    try:
        cr = ctx.fact("k8s.prometheus_cr")
    except AccessDenied as exc:
        denied.append(exc.needs)
        cr = None
    if cr is not None:
        spec = cr.get("spec") or {}
        return RemoteWriteConfig(f"Prometheus {ns}/{cr_name} spec.remoteWrite",
                                 _entries(spec.get("remoteWrite"), "url"), cr_name)
    if cr_name:
        try:
            found = _from_secret(client, ns, cr_name)
        except AccessDenied as exc:
            denied.append(exc.needs)
            found = None
        if found is not None:
            why = (f"read from the generated secret ({'; '.join(denied)} was denied)" if denied else
                   "no Prometheus CR found; read the operator's generated secret")
            return RemoteWriteConfig(found.source, found.urls, cr_name, (*notes, why))
    try:
        found = _from_running_config(ctx)
    except AccessDenied as exc:
        denied.append(exc.needs)
        found = None
    if found is not None:
        return found
    try:
        found = _from_configmap(client, pod, ctx.fact("k8s.prometheus_container"))
    except AccessDenied as exc:
        denied.append(exc.needs)
        found = None
    except ApiError:
        found = None
    if found is not None:
        return found
    if denied:
        raise AccessDenied(" or ".join(dict.fromkeys(denied)))
    raise Unknown("could not find Prometheus's remote-write configuration (no Prometheus CR, no generated "
                  "config secret, no config file from a ConfigMap)", needs="the Prometheus configuration")
