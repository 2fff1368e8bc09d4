"""A read-only Kubernetes API reader over the official client's transport, and the error mapping.

Why not the generated ``CoreV1Api`` methods: the doctor needs one code path for core, apps
and custom resources (aad-pod-identity, Secrets Store CSI, Prometheus Operator), raw JSON
(deserialising 5 000 pods into generated models costs seconds), and the exact HTTP status to
decide between ``unknown`` (403 names the missing permission), ``unreachable`` and a finding.
The official client still does everything that makes a kubeconfig work: contexts, TLS, client
certificates, bearer tokens and exec plugins (kubelogin) with their refresh.

Everything here is a GET. The ``kubernetes`` package is imported inside functions only.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..core.errors import AccessDenied, InputError, Unreachable

DEFAULT_TIMEOUT = (5.0, 30.0)  # (connect, read) seconds
VERSION_TIMEOUT = (3.0, 10.0)
PAGE_SIZE = 500


# --------------------------------------------------------------------------- resources


@dataclass(frozen=True)
class Resource:
    """A resource type: how its URL is built and how RBAC names it (for ``needs``)."""

    group: str
    version: str
    plural: str
    namespaced: bool = True

    @property
    def rbac(self) -> str:
        """``pods`` or ``azureidentitybindings.aadpodidentity.k8s.io`` (what a Role's rule names)."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def path(self, namespace: str | None = None, name: str | None = None, sub: str | None = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{quote(namespace, safe='')}"
        base += f"/{self.plural}"
        if name:
            base += f"/{quote(name, safe=':')}"
        if sub:
            base += f"/{sub}"
        return base


PODS = Resource("", "v1", "pods")
EVENTS = Resource("", "v1", "events")
SERVICEACCOUNTS = Resource("", "v1", "serviceaccounts")
CONFIGMAPS = Resource("", "v1", "configmaps")
SECRETS = Resource("", "v1", "secrets")
NAMESPACES = Resource("", "v1", "namespaces", namespaced=False)
DAEMONSETS = Resource("apps", "v1", "daemonsets")
STATEFULSETS = Resource("apps", "v1", "statefulsets")
AZURE_IDENTITIES = Resource("aadpodidentity.k8s.io", "v1", "azureidentities")
AZURE_IDENTITY_BINDINGS = Resource("aadpodidentity.k8s.io", "v1", "azureidentitybindings")
AZURE_ASSIGNED_IDENTITIES = Resource("aadpodidentity.k8s.io", "v1", "azureassignedidentities")
SECRET_PROVIDER_CLASSES = Resource("secrets-store.csi.x-k8s.io", "v1", "secretproviderclasses")
PROMETHEUSES = Resource("monitoring.coreos.com", "v1", "prometheuses")


def needs(verb: str, resource: Resource | str, namespace: str | None = None) -> str:
    """The permission sentence used in ``unknown`` results: ``list pods in namespace monitoring``."""
    name = resource.rbac if isinstance(resource, Resource) else resource
    if namespace:
        return f"{verb} {name} in namespace {namespace}"
    return f"{verb} {name} at cluster scope (all namespaces)"


# --------------------------------------------------------------------------- errors


class ApiError(Exception):
    """A non-2xx answer: ``status``, the Status ``reason`` and ``message`` (or the body's first line)."""

    def __init__(self, status: int, reason: str, message: str, path: str) -> None:
        super().__init__(f"{status} {reason}: {message}" if message else f"{status} {reason}")
        self.status = status
        self.reason = reason
        self.message = message
        self.path = path


class UnexpectedAnswer(Exception):
    """A 2xx (or 5xx) answer the doctor cannot read as the API server's JSON."""


def _status_message(body: bytes) -> tuple[str, str]:
    """(reason, message) from a ``Status`` body, else ("", first line of the body)."""
    text = body.decode("utf-8", errors="replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return "", text.splitlines()[0][:300] if text else ""
    if isinstance(data, Mapping):
        return str(data.get("reason") or ""), str(data.get("message") or "")[:500]
    return "", text[:300]


# --------------------------------------------------------------------------- kubeconfig


@dataclass(frozen=True)
class KubeconfigInfo:
    path: str
    context: str
    cluster: str
    user: str
    namespace: str  # the context's default namespace ("default" when unset)
    contexts: tuple[str, ...]


def kubeconfig_path(explicit: str | None) -> str:
    """``--kubeconfig``, else ``$KUBECONFIG`` (may list several files), else ``~/.kube/config``."""
    return explicit or os.environ.get("KUBECONFIG") or "~/.kube/config"


def _existing(path: str) -> list[str]:
    sep = ";" if os.name == "nt" else ":"
    return [p for p in path.split(sep) if p and Path(os.path.expanduser(p)).is_file()]


def read_kubeconfig(path: str, context: str | None) -> KubeconfigInfo:
    """Which context, cluster, user and namespace a run will use. ``InputError`` with one line otherwise."""
    from kubernetes.config import kube_config
    from kubernetes.config.config_exception import ConfigException

    if not _existing(path):
        raise InputError(f"kubeconfig {path}: no such file (pass --kubeconfig or set KUBECONFIG)")
    try:
        contexts, active = kube_config.list_kube_config_contexts(config_file=path)
    except ConfigException as exc:
        raise InputError(f"kubeconfig {path}: {exc}") from None
    except Exception as exc:  # YAML errors, unreadable files
        raise InputError(f"kubeconfig {path}: cannot read it: {type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else ''}") from None
    names = tuple(str(c.get("name")) for c in contexts or [] if isinstance(c, Mapping))
    chosen: Mapping[str, Any] | None
    if context:
        chosen = next((c for c in contexts or [] if c.get("name") == context), None)
        if chosen is None:
            listed = ", ".join(names) or "none"
            raise InputError(f"context {context!r} not found in kubeconfig {path} (contexts: {listed})")
    else:
        chosen = active if isinstance(active, Mapping) else None
        if chosen is None:
            raise InputError(f"kubeconfig {path} has no current-context; pass --context "
                             f"(contexts: {', '.join(names) or 'none'})")
    ctx = chosen.get("context") or {}
    return KubeconfigInfo(
        path=path,
        context=str(chosen.get("name")),
        cluster=str(ctx.get("cluster") or ""),
        user=str(ctx.get("user") or ""),
        namespace=str(ctx.get("namespace") or "default"),
        contexts=names,
    )


# --------------------------------------------------------------------------- the client


@dataclass
class KubeClient:
    """One run's connection to one cluster: GET helpers, per-run caches, a request counter.

    ``api`` is a ``kubernetes.client.ApiClient``. Caches make the run-scoped lists
    (bindings, identities, daemonsets, Prometheus CRs) one request per run however many
    targets read them.
    """

    api: Any
    info: KubeconfigInfo
    server: str
    timeout: tuple[float, float] = DEFAULT_TIMEOUT
    requests: int = 0
    _cache: dict[Any, Any] = field(default_factory=dict)
    _errors: dict[Any, BaseException] = field(default_factory=dict)
    _locks: dict[Any, threading.Lock] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # ------------------------------------------------------------------ raw GET
    def get(self, path: str, query: Iterable[tuple[str, Any]] = (), *, accept: str = "application/json",
            timeout: tuple[float, float] | None = None) -> bytes:
        """GET ``path``; return the body of a 2xx. ``ApiError`` for other statuses, ``Unreachable`` when
        nothing answers (refused, DNS, TLS, timeout)."""
        import urllib3
        from kubernetes.client.exceptions import ApiException
        from kubernetes.config.config_exception import ConfigException

        params = [(k, v) for k, v in query if v is not None]
        method, url, headers, _body, _post = self.api.param_serialize(
            "GET", path, query_params=params or None, header_params={"Accept": accept},
            auth_settings=["BearerToken"])
        with self._lock:
            self.requests += 1
        try:
            resp = self.api.call_api(method, url, header_params=headers,
                                     _request_timeout=timeout or self.timeout)
            data = resp.read()
        except (urllib3.exceptions.HTTPError, OSError, ConfigException) as exc:
            # refused, DNS, timeout; a failing exec credential plugin (kubelogin) on token refresh
            raise Unreachable(f"the Kubernetes API server {self.server}", _short(exc)) from None
        except ApiException as exc:  # the REST layer reports TLS failures as status 0
            if not exc.status:
                raise Unreachable(f"the Kubernetes API server {self.server}", _short(exc)) from None
            raise ApiError(int(exc.status), str(exc.reason or ""), _status_message(
                (exc.body or "").encode())[1], path) from None
        status = int(resp.status)
        if 200 <= status < 300:
            return bytes(data or b"")
        reason, message = _status_message(bytes(data or b""))
        raise ApiError(status, reason or str(resp.reason or ""), message, path)

    def get_json(self, path: str, query: Iterable[tuple[str, Any]] = (), *,
                 timeout: tuple[float, float] | None = None) -> dict[str, Any]:
        body = self.get(path, query, timeout=timeout)
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise UnexpectedAnswer(f"GET {path}: the answer is not JSON ({exc})") from None
        if not isinstance(data, dict):
            raise UnexpectedAnswer(f"GET {path}: expected a JSON object, got {type(data).__name__}")
        return data

    def get_text(self, path: str, query: Iterable[tuple[str, Any]] = (), *, accept: str = "*/*") -> str:
        return self.get(path, query, accept=accept).decode("utf-8", errors="replace")

    # ------------------------------------------------------------------ typed reads
    def list_objects(self, res: Resource, namespace: str | None = None, *, label_selector: str | None = None,
             field_selector: str | None = None) -> list[dict[str, Any]]:
        """All items (paged by ``limit``/``continue``). 403 -> ``AccessDenied`` naming ``list <res>``."""
        path = res.path(namespace)
        items: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            query = [("labelSelector", label_selector), ("fieldSelector", field_selector),
                     ("limit", PAGE_SIZE), ("continue", token)]
            try:
                data = self.get_json(path, query)
            except ApiError as exc:
                raise self._denied_or(exc, "list", res, namespace) from None
            raw = data.get("items")
            if raw is None:
                raw = []
            if not isinstance(raw, list):
                raise UnexpectedAnswer(f"GET {path}: 'items' is not a list")
            items.extend(i for i in raw if isinstance(i, dict))
            token = (data.get("metadata") or {}).get("continue") or None
            if not token:
                return items

    def read(self, res: Resource, namespace: str | None, name: str) -> dict[str, Any] | None:
        """One object, or None when it does not exist. 403 -> ``AccessDenied`` naming ``get <res>``."""
        try:
            return self.get_json(res.path(namespace, name))
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise self._denied_or(exc, "get", res, namespace) from None

    def _denied_or(self, exc: ApiError, verb: str, res: Resource, namespace: str | None) -> BaseException:
        if exc.status == 403:
            return AccessDenied(needs(verb, res, namespace if res.namespaced else None), exc.message)
        return exc

    # ------------------------------------------------------------------ run-wide caching
    def cached(self, key: Any, compute: Callable[[], Any]) -> Any:
        """``compute()`` once per ``key`` for the whole run (failures are remembered too)."""
        with self._lock:
            if key in self._cache:
                return self._cache[key]
            if key in self._errors:
                raise self._errors[key]
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            with self._lock:
                if key in self._cache:
                    return self._cache[key]
                if key in self._errors:
                    raise self._errors[key]
            try:
                value = compute()
            except BaseException as exc:
                with self._lock:
                    self._errors[key] = exc
                raise
            with self._lock:
                self._cache[key] = value
            return value

    def list_cached(self, res: Resource, namespace: str | None = None, *,
                    label_selector: str | None = None) -> list[dict[str, Any]]:
        return list(self.cached(("list", res, namespace, label_selector),
                                lambda: self.list_objects(res, namespace, label_selector=label_selector)))

    def visible(self, res: Resource, namespace: str, *, label_selector: str | None = None) -> Visible:
        """Objects of ``res``: the cluster-wide list (one request per run), or, when that is forbidden, the
        list in ``namespace``. A CRD that is not installed reads as an empty list (``installed=False``)."""
        try:
            items = self.list_cached(res, None, label_selector=label_selector)
            return Visible(items, True, True, None)
        except AccessDenied as denied:
            cluster_denied = denied.needs
        except ApiError as exc:
            if exc.status == 404:
                return Visible([], True, False, None)
            raise
        try:
            items = self.list_cached(res, namespace, label_selector=label_selector)
        except ApiError as exc:
            if exc.status == 404:
                return Visible([], False, False, cluster_denied)
            raise
        return Visible(items, False, True, cluster_denied)


@dataclass(frozen=True)
class Visible:
    """What the doctor could see of one resource type."""

    items: list[dict[str, Any]]
    cluster_wide: bool  # False: only the target's namespace (the cluster-wide list was forbidden)
    installed: bool  # False: the CRD is not installed (404 on the list)
    cluster_denied: str | None  # the permission that would have allowed the cluster-wide view

    def in_namespace(self, namespace: str) -> list[dict[str, Any]]:
        return [i for i in self.items if (i.get("metadata") or {}).get("namespace") == namespace]


def _short(exc: BaseException) -> str:
    """One line for an exception from urllib3/the client (their messages nest reasons deeply)."""
    text = str(exc)
    reason = getattr(exc, "reason", None)
    if reason is not None and not isinstance(reason, str):
        text = str(reason)
    for marker in ("Connection refused", "Name or service not known", "timed out", "CERTIFICATE_VERIFY_FAILED",
                   "No route to host", "Temporary failure in name resolution", "certificate verify failed"):
        if marker in text:
            return marker.lower() if marker[0].islower() else marker
    line = " ".join(text.split())
    return line[:200]


def connect(kubeconfig: str | None, context: str | None) -> KubeClient:
    """Load the kubeconfig context and check the server answers (``GET /version``) with our credentials.

    Every way this can fail is an ``InputError`` with one line (exit 2): unknown context,
    unreadable kubeconfig, unreachable server, rejected or expired credentials, a server
    that does not answer like a Kubernetes API server.
    """
    import urllib3
    from kubernetes import client as kclient
    from kubernetes.config import kube_config
    from kubernetes.config.config_exception import ConfigException

    path = kubeconfig_path(kubeconfig)
    info = read_kubeconfig(path, context)
    cfg = kclient.Configuration()
    try:
        kube_config.load_kube_config(config_file=path, context=info.context, client_configuration=cfg,
                                     persist_config=False)
    except ConfigException as exc:
        raise InputError(f"kubeconfig {path}, context {info.context}: {exc}") from None
    except Exception as exc:  # exec plugin missing/failing, bad certificate data, ...
        raise InputError(f"kubeconfig {path}, context {info.context}: cannot load credentials: "
                         f"{type(exc).__name__}: {_short(exc)}") from None
    cfg.retries = urllib3.util.Retry(total=1, connect=1, read=0, redirect=0, status=0, raise_on_status=False)
    cfg.connection_pool_maxsize = 16
    api = kclient.ApiClient(configuration=cfg)
    kc = KubeClient(api=api, info=info, server=str(cfg.host))
    where = f"{kc.server} (context {info.context})"
    try:
        version = kc.get_json("/version", timeout=VERSION_TIMEOUT)
    except Unreachable as exc:
        raise InputError(f"cannot reach the Kubernetes API server {where}: {exc.detail}") from None
    except ApiError as exc:
        if exc.status == 401:
            raise InputError(
                f"the Kubernetes API server {where} rejected the kubeconfig credentials (401 Unauthorized): "
                "the token has expired or is invalid; refresh it (az aks get-credentials / kubelogin) and retry"
            ) from None
        if exc.status != 403:  # /version may be closed to some identities; the lists will tell
            raise InputError(f"unexpected answer from the API server {where} to GET /version: {exc}") from None
        version = {}
    except UnexpectedAnswer as exc:
        raise InputError(f"unexpected answer from the API server {where}: {exc}") from None
    if version and "gitVersion" not in version and "major" not in version:
        raise InputError(f"unexpected answer from the API server {where} to GET /version: "
                         "not a Kubernetes version document")
    kc._cache["version"] = version
    return kc
