"""An emulated Kubernetes API server (read-only) that the official client and kubectl accept as real.

No real kube-apiserver can run in the lab (see ``shared/domain/local-components.md`` §5), and
the doctor's Kubernetes collectors must be tested against the *wire* behaviour they will meet on
AKS: discovery documents, Table responses, selector grammar, pagination, pod logs and the pod
proxy subresource, and above all the exact error bodies (401/403/404/400 ``Status`` objects)
that decide whether a check reports ``AccessDenied``, ``Unreachable`` or a finding.

Everything is driven by one mutable :class:`KubeState`; :func:`make_app` turns it into an
``aiohttp`` application served by :class:`promrw_doctor.lab.server.LabServer`. Every request is
recorded in ``KubeState.requests`` so tests can prove the doctor only ever reads.

Request pipeline (the same order as the real server): record -> fault injection ->
authentication (401) -> method (405, the doctor is read-only) -> routing/discovery ->
authorization (403 from ``deny``) -> handler (404/400/200).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import json
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from .kube_logs import select_lines
from .kube_models import validate, zero_fill
from .kube_resources import (
    ALL_GROUPS,
    APIEXTENSIONS,
    BUILTIN_GROUPS,
    BY_PLURAL,
    CORE,
    ResourceInfo,
    api_group_doc,
    api_group_list_doc,
    api_resource_list_doc,
    api_versions_doc,
    crd_manifest,
    group_versions,
    known_kinds,
    resource_for_manifest,
)
from .kube_selectors import (
    FieldSelector,
    LabelSelector,
    SelectorError,
    fields_match,
    labels_match,
    parse_field_selector,
    parse_label_selector,
)
from .kube_tables import Cell, Since, parse_time, table_columns, table_row

__all__ = [
    "CannedResponse",
    "DenyRule",
    "Fault",
    "KubeState",
    "ProxyTarget",
    "default_version",
    "make_app",
]

DEFAULT_USER = "system:serviceaccount:promrw:doctor"

#: ``(status, content_type, body)`` served for one proxied path.
CannedResponse = tuple[int, str, str | bytes]
#: ``(status, body)`` answered instead of the real handler (body sent as ``application/json``).
Fault = tuple[int, str | bytes]


def default_version() -> dict[str, str]:
    """``GET /version``: minor 29 makes the gcloud kubectl dispatcher pick its kubectl 1.29."""
    return {
        "major": "1",
        "minor": "29",
        "gitVersion": "v1.29.0-promrw-lab",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2024-01-01T00:00:00Z",
        "goVersion": "go1.21.5",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


@dataclass(frozen=True)
class DenyRule:
    """An RBAC permission the doctor's identity lacks: matching requests get 403 Forbidden.

    ``resource`` is the RBAC resource name, with a subresource after ``/`` (``pods/log``) and
    optionally qualified by group (``azureidentitybindings.aadpodidentity.k8s.io``); ``*`` matches
    any. ``namespace=None`` denies in every namespace. A namespaced rule also denies the
    all-namespaces form of the request (``GET /api/v1/pods``), because on a real cluster that
    needs a ClusterRoleBinding, which would have granted the namespace too.
    """

    verb: str
    resource: str
    namespace: str | None = None

    VERBS = frozenset({"get", "list", "watch", "*"})

    def __post_init__(self) -> None:
        if self.verb not in self.VERBS:
            raise ValueError(f"DenyRule: verb {self.verb!r} is not one of get, list, watch, * (the doctor only reads)")
        if not self.resource:
            raise ValueError("DenyRule: resource is required (e.g. pods, pods/log, azureidentitybindings)")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> DenyRule:
        """From a scenario's ``kubernetes.deny`` entry: ``{verb, resource, namespace?}``."""
        unknown = set(data) - {"verb", "resource", "namespace"}
        if unknown:
            raise ValueError(f"DenyRule: unknown key(s) {sorted(unknown)}; expected verb, resource, namespace")
        ns = data.get("namespace")
        return cls(str(data.get("verb", "")), str(data.get("resource", "")), None if ns is None else str(ns))

    def matches(self, verb: str, resource: ResourceInfo, subresource: str, namespace: str | None) -> bool:
        if self.verb not in ("*", verb):
            return False
        name, _, group = self.resource.partition(".")
        if group and group != resource.group:
            return False
        wanted = f"{resource.plural}/{subresource}" if subresource else resource.plural
        if name not in ("*", wanted) and not (name == f"{resource.plural}/*" and subresource):
            return False
        if self.namespace is None or not resource.namespaced:
            return True
        return namespace is None or namespace == self.namespace


@dataclass(frozen=True)
class ProxyTarget:
    """What ``pods/{name}[:{port}]/proxy/...`` reaches: a live upstream or canned answers.

    ``upstream`` is a base URL (``http://127.0.0.1:9090``) that GETs are reverse-proxied to, e.g.
    a real Prometheus. ``responses`` maps a path (optionally with ``?query``) to
    ``(status, content_type, body)``; unknown paths answer ``404 page not found`` like Prometheus.
    """

    upstream: str | None = None
    responses: Mapping[str, CannedResponse] = field(default_factory=dict)

    @classmethod
    def to(cls, upstream: str) -> ProxyTarget:
        return cls(upstream=upstream)

    @classmethod
    def canned(cls, responses: Mapping[str, CannedResponse]) -> ProxyTarget:
        return cls(responses=dict(responses))

    @staticmethod
    def coerce(value: ProxyTarget | str | Mapping[str, CannedResponse]) -> ProxyTarget:
        """Accept the plain forms too (a URL string or a path map), as a scenario loader produces them."""
        if isinstance(value, ProxyTarget):
            return value
        if isinstance(value, str):
            return ProxyTarget(upstream=value)
        return ProxyTarget(responses=dict(value))

    def lookup(self, path: str, query: str) -> CannedResponse | None:
        for key in ((f"{path}?{query}" if query else None), path, path.rstrip("/") or "/"):
            if key is None:
                continue
            for candidate in (key, key.lstrip("/")):
                if candidate in self.responses:
                    return self.responses[candidate]
        return None


@dataclass
class KubeState:
    """Everything the emulated API server serves; mutable while the server runs.

    ``objects``: full manifests (``apiVersion``/``kind``/``metadata.name`` required; missing
    ``uid``/``creationTimestamp``/``resourceVersion``/``namespace`` are defaulted). After
    mutating objects in place call :meth:`changed`; appending/removing/replacing the list is
    noticed automatically. ``logs``: ``"<ns>/<pod>/<container>"`` (+ ``"/previous"``).
    ``proxy``: ``"<ns>/<pod>:<port>"`` or ``"<ns>/<pod>"`` -> target. ``fault``: path prefix ->
    ``(status, body)`` answered verbatim as ``application/json`` (invalid JSON allowed), longest
    prefix wins. ``crd_groups``: CRD API groups installed (None = every known group); a group
    holding objects is always installed. ``clock`` drives AGE columns, ``sinceSeconds`` and
    defaulted timestamps. ``validate``: check built-in kinds against the ``kubernetes`` client's
    models at index time, because the client (pydantic, strict) refuses objects a real API
    server could never return, and a scenario typo must fail at lab start, not inside a check.
    """

    objects: list[dict[str, Any]] = field(default_factory=list)
    logs: dict[str, str] = field(default_factory=dict)
    deny: list[DenyRule] = field(default_factory=list)
    token: str | None = None
    token_expired: bool = False
    proxy: dict[str, ProxyTarget | str | Mapping[str, CannedResponse]] = field(default_factory=dict)
    user: str = DEFAULT_USER
    version: dict[str, str] = field(default_factory=default_version)
    requests: list[tuple[str, str]] = field(default_factory=list)
    fault: dict[str, Fault] = field(default_factory=dict)
    crd_groups: set[str] | None = None
    clock: Callable[[], float] = time.time
    proxy_timeout: float = 10.0
    validate: bool = True
    generation: int = 0

    def changed(self) -> None:
        """Declare in-place edits of ``objects``: the server re-indexes before the next request."""
        self.generation += 1

    def writes(self) -> list[tuple[str, str]]:
        """Recorded requests that were not GETs (the doctor must never make one)."""
        return [r for r in self.requests if r[0] != "GET"]


# --------------------------------------------------------------------------------------------- index

def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _rfc3339(epoch: float) -> str:
    return datetime.fromtimestamp(int(epoch), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Entry:
    """One stored object with its serialisations computed at most once."""

    __slots__ = ("_cells", "_json", "_meta_json", "conditions", "labels", "name", "namespace", "obj",
                 "resource")

    def __init__(self, resource: ResourceInfo, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        self.resource = resource
        self.obj = obj
        self.name: str = meta["name"]
        self.namespace: str = meta.get("namespace", "") if resource.namespaced else ""
        labels = meta.get("labels")
        self.labels: Mapping[str, Any] = labels if isinstance(labels, Mapping) else {}
        self._json: bytes | None = None
        self._meta_json: bytes | None = None
        self._cells: list[Cell] | None = None
        self.conditions: list[dict[str, str]] = []

    @property
    def json(self) -> bytes:
        if self._json is None:
            self._json = _dumps(self.obj)
        return self._json

    @property
    def meta_json(self) -> bytes:
        if self._meta_json is None:
            self._meta_json = _dumps({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                                      "metadata": self.obj["metadata"]})
        return self._meta_json

    def cells(self) -> list[Cell]:
        if self._cells is None:
            self._cells, self.conditions = table_row(self.resource.plural, self.obj)
        return self._cells


class _Index:
    """Objects by (group, plural) and namespace, each list sorted like etcd keys (namespace, name)."""

    def __init__(self, state: KubeState, epoch: str) -> None:
        self.source = (id(state.objects), len(state.objects), state.generation)
        self.by_ns: dict[tuple[str, str], dict[str, list[_Entry]]] = {}
        self.by_name: dict[tuple[str, str, str, str], _Entry] = {}
        object_groups: set[str] = set()
        namespaces_used: set[str] = {"default"}
        prepared: list[tuple[ResourceInfo, dict[str, Any]]] = []
        for i, raw in enumerate(state.objects):
            resource, obj = _prepare(i, raw)
            object_groups.add(resource.group)
            if resource.namespaced:
                namespaces_used.add(obj["metadata"].setdefault("namespace", "default"))
            prepared.append((resource, obj))
        installed = set(ALL_GROUPS) if state.crd_groups is None else BUILTIN_GROUPS | set(state.crd_groups)
        unknown = installed - set(ALL_GROUPS)
        if unknown:
            raise ValueError(f"KubeState.crd_groups: unknown API group(s) {sorted(unknown)}; "
                             f"known: {sorted(g for g in ALL_GROUPS if g not in BUILTIN_GROUPS)}")
        self.groups: frozenset[str] = frozenset(installed | object_groups | set(BUILTIN_GROUPS))
        declared = {(r.plural, o["metadata"]["name"]) for r, o in prepared if not r.namespaced}
        for ns in sorted(namespaces_used):
            if ("namespaces", ns) not in declared:
                prepared.append((BY_PLURAL[(CORE, "v1", "namespaces")], {
                    "apiVersion": "v1", "kind": "Namespace",
                    "metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns}},
                    "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}))
        for group in sorted(self.groups - BUILTIN_GROUPS):
            for crd in crd_manifest(group, epoch):
                if ("customresourcedefinitions", crd["metadata"]["name"]) not in declared:
                    prepared.append((BY_PLURAL[(APIEXTENSIONS, "v1", "customresourcedefinitions")], crd))
        rv = 1000
        for resource, obj in prepared:
            meta = obj["metadata"]
            rv += 1
            key = (resource.group, resource.plural, meta.get("namespace", "") if resource.namespaced else "",
                   meta["name"])
            meta.setdefault("uid", str(uuid.uuid5(uuid.NAMESPACE_URL, "promrw-lab:" + "/".join(key))))
            meta.setdefault("resourceVersion", str(rv))
            meta.setdefault("creationTimestamp", epoch)
            if key in self.by_name:
                raise ValueError(f"KubeState.objects: duplicate {resource.kind} "
                                 f"{(key[2] + '/') if key[2] else ''}{key[3]}")
            _default_kubelet_fields(resource, obj)
            obj = zero_fill(resource.kind, obj)
            if state.validate:
                problem = validate(resource.kind, obj)
                if problem is not None:
                    raise ValueError(f"KubeState.objects: {resource.kind} {(key[2] + '/') if key[2] else ''}"
                                     f"{key[3]}: the kubernetes client cannot read it: {problem}")
            entry = _Entry(resource, obj)
            self.by_name[key] = entry
            spaces = self.by_ns.setdefault((resource.group, resource.plural), {})
            spaces.setdefault(entry.namespace, []).append(entry)
        self.all: dict[tuple[str, str], list[_Entry]] = {}
        for gp, spaces in self.by_ns.items():
            for entries in spaces.values():
                entries.sort(key=lambda e: e.name)
            self.all[gp] = [e for ns in sorted(spaces) for e in spaces[ns]]
        self.resource_version = str(rv)

    def entries(self, resource: ResourceInfo, namespace: str | None) -> list[_Entry]:
        gp = (resource.group, resource.plural)
        if namespace is None or not resource.namespaced:
            return self.all.get(gp, [])
        return self.by_ns.get(gp, {}).get(namespace, [])

    def get(self, resource: ResourceInfo, namespace: str | None, name: str) -> _Entry | None:
        ns = (namespace or "") if resource.namespaced else ""
        return self.by_name.get((resource.group, resource.plural, ns, name))


def _prepare(i: int, raw: Any) -> tuple[ResourceInfo, dict[str, Any]]:
    """Validate one manifest and copy what defaulting touches (the caller's dicts stay untouched)."""
    if not isinstance(raw, Mapping):
        raise ValueError(f"KubeState.objects[{i}]: expected a manifest mapping, got {type(raw).__name__}")
    api_version, kind = raw.get("apiVersion"), raw.get("kind")
    meta = raw.get("metadata")
    name = meta.get("name") if isinstance(meta, Mapping) else None
    label = f"KubeState.objects[{i}] ({kind or '?'} {name or '?'})"
    if not api_version or not kind:
        raise ValueError(f"{label}: apiVersion and kind are required")
    if not isinstance(name, str) or not name:
        raise ValueError(f"{label}: metadata.name is required")
    resource = resource_for_manifest(str(api_version), str(kind))
    if resource is None:
        raise ValueError(f"{label}: unknown kind {kind!r} in apiVersion {api_version!r}; "
                         f"the lab API server serves: {known_kinds()}")
    obj = dict(raw)
    obj["metadata"] = dict(meta)  # type: ignore[arg-type]
    if not resource.namespaced:
        obj["metadata"].pop("namespace", None)
    return resource, obj


_NODE_INFO = {
    "architecture": "amd64", "bootID": "", "containerRuntimeVersion": "containerd://1.7.15-1",
    "kernelVersion": "5.15.0-1064-azure", "kubeProxyVersion": "", "kubeletVersion": "v1.29.0",
    "machineID": "", "operatingSystem": "linux", "osImage": "Ubuntu 22.04.4 LTS", "systemUUID": "",
}


def _default_kubelet_fields(resource: ResourceInfo, obj: dict[str, Any]) -> None:
    """Fill status fields the kubelet always writes (container ``image``/``imageID``, ``nodeInfo``).

    Scenario authors describe a crash loop with ``state``/``restartCount``; a real status
    always also carries the image, and the client refuses a status without it.
    """
    if resource.kind == "Node" and isinstance(obj.get("status"), Mapping) and isinstance(
            obj["status"].get("nodeInfo"), Mapping):
        obj["status"] = dict(obj["status"])
        obj["status"]["nodeInfo"] = {**_NODE_INFO, **obj["status"]["nodeInfo"]}
    if resource.kind != "Pod" or not isinstance(obj.get("status"), Mapping):
        return
    raw_spec = obj.get("spec")
    spec: Mapping[str, Any] = raw_spec if isinstance(raw_spec, Mapping) else {}
    status = obj["status"] = dict(obj["status"])
    for spec_key, status_key in (("containers", "containerStatuses"),
                                 ("initContainers", "initContainerStatuses"),
                                 ("ephemeralContainers", "ephemeralContainerStatuses")):
        statuses = status.get(status_key)
        specs = spec.get(spec_key)
        if not isinstance(statuses, list):
            continue
        images = {c.get("name"): c.get("image", "") for c in (specs if isinstance(specs, list) else [])
                  if isinstance(c, Mapping)}
        filled = []
        for cs in statuses:
            if isinstance(cs, Mapping):
                cs = dict(cs)
                cs.setdefault("image", images.get(cs.get("name"), "") or "")
                cs.setdefault("imageID", "")
                cs.setdefault("ready", False)
                cs.setdefault("restartCount", 0)
            filled.append(cs)
        status[status_key] = filled


# --------------------------------------------------------------------------------------------- responses

def _status(code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> web.Response:
    body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                            "message": message, "reason": reason}
    if details is not None:
        body["details"] = details
    body["code"] = code
    return web.Response(status=code, body=_dumps(body), content_type="application/json")


def _details(resource: ResourceInfo, name: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if name:
        out["name"] = name
    if resource.group:
        out["group"] = resource.group
    out["kind"] = resource.plural
    return out


def _not_found(resource: ResourceInfo, name: str) -> web.Response:
    return _status(404, "NotFound", f'{resource.qualified} "{name}" not found', _details(resource, name))


def _bad_request(message: str) -> web.Response:
    return _status(400, "BadRequest", message)


def _json(value: Any) -> web.Response:
    return web.Response(body=_dumps(value), content_type="application/json")


def _page_not_found() -> web.Response:
    """What the Go mux answers for a path no API group owns (e.g. an uninstalled CRD group)."""
    return web.Response(status=404, text="404 page not found\n", content_type="text/plain")


def _resource_not_found() -> web.Response:
    return _status(404, "NotFound", "the server could not find the requested resource", {})


class _HTTPStatus(Exception):
    """Raised inside helpers to answer with a ready Status response."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.text)
        self.response = response


# --------------------------------------------------------------------------------------------- negotiation

@dataclass(frozen=True)
class _Want:
    form: str  # json | table | meta
    version: str = "v1"


def _negotiate(accept: str, *, single: bool) -> _Want | None:
    """Pick the representation from ``Accept``: Table / PartialObjectMetadata[List] / plain JSON."""
    if not accept.strip():
        return _Want("json")
    for media in accept.split(","):
        parts = [p.strip() for p in media.split(";")]
        mime = parts[0].lower()
        params = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
        if mime not in ("application/json", "application/*", "*/*"):
            continue
        kind = params.get("as")
        if kind is None:
            return _Want("json")
        if params.get("g") != "meta.k8s.io" or params.get("v") not in ("v1", "v1beta1"):
            continue
        if kind == "Table":
            return _Want("table", params["v"])
        if kind == ("PartialObjectMetadata" if single else "PartialObjectMetadataList"):
            return _Want("meta", params["v"])
    return None


def _not_acceptable() -> web.Response:
    return _status(406, "NotAcceptable", "only the following media types are accepted: application/json, "
                   "application/yaml, application/vnd.kubernetes.protobuf", {})


# --------------------------------------------------------------------------------------------- the server

_STATE_KEY = web.AppKey("kube_state", KubeState)
_PUBLIC_PATHS = frozenset({"/version", "/healthz", "/livez", "/readyz"})


class _KubeAPI:
    """Request handling bound to one state; one instance per application."""

    def __init__(self, state: KubeState) -> None:
        self.state = state
        self.epoch = _rfc3339(state.clock())  # creationTimestamp for objects without one, stable across re-indexing
        self.index = _Index(state, self.epoch)
        self.session: Any = None  # aiohttp.ClientSession, created on the server loop
        self.shutdown = asyncio.Event()

    def current(self) -> _Index:
        s = self.state
        if self.index.source != (id(s.objects), len(s.objects), s.generation):
            self.index = _Index(s, self.epoch)
        return self.index

    # ------------------------------------------------------------------ pipeline

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.state.requests.append((request.method, request.raw_path))
        try:
            return await self._handle(request)
        except _HTTPStatus as exc:
            return exc.response
        except (asyncio.CancelledError, ConnectionResetError):
            raise
        except Exception as exc:  # a bug in the emulator must read as a 500, never a dropped connection
            return _status(500, "InternalError", f"Internal error occurred: {type(exc).__name__}: {exc}",
                           {"causes": [{"message": str(exc)}]})

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw_path = request.raw_path.split("?", 1)[0]
        fault = self._fault(request.raw_path)
        if fault is not None:
            status, body = fault
            return web.Response(status=status, body=body.encode() if isinstance(body, str) else body,
                                content_type="application/json")
        path = unquote(raw_path)
        denied = self._authenticate(request, path)
        if denied is not None:
            return denied
        if request.method != "GET":
            return _status(405, "MethodNotAllowed",
                           "the server does not allow this method on the requested resource", {})
        return await self._route(request, path)

    def _fault(self, path_qs: str) -> Fault | None:
        best: str | None = None
        for prefix in self.state.fault:
            if path_qs.startswith(prefix) and (best is None or len(prefix) > len(best)):
                best = prefix
        return self.state.fault[best] if best is not None else None

    def _authenticate(self, request: web.Request, path: str) -> web.Response | None:
        """401 unless the bearer token matches; anonymous probes of /version etc. stay public."""
        token = self.state.token
        if token is None:
            return None
        header = request.headers.get("Authorization", "")
        if not header and (path.rstrip("/") or "/") in _PUBLIC_PATHS and not self.state.token_expired:
            return None  # system:public-info-viewer grants these to system:unauthenticated
        scheme, _, presented = header.partition(" ")
        ok = scheme.lower() == "bearer" and hmac.compare_digest(presented.strip().encode(), token.encode())
        if ok and not self.state.token_expired:
            return None
        return _status(401, "Unauthorized", "Unauthorized")

    def _authorize(self, verb: str, resource: ResourceInfo, sub: str, namespace: str | None,
                   name: str | None) -> None:
        for rule in self.state.deny:
            if rule.matches(verb, resource, sub, namespace):
                what = f"{resource.plural}/{sub}" if sub else resource.plural
                scope = (f'in the namespace "{namespace}"' if namespace and resource.namespaced
                         else "at the cluster scope")
                reason = (f'User "{self.state.user}" cannot {verb} resource "{what}" in API group '
                          f'"{resource.group}" {scope}')
                subject = f'{resource.qualified} "{name}"' if name else resource.qualified
                raise _HTTPStatus(_status(403, "Forbidden", f"{subject} is forbidden: {reason}",
                                          _details(resource, name)))

    # ------------------------------------------------------------------ routing

    async def _route(self, request: web.Request, path: str) -> web.StreamResponse:
        segs = path.split("/")[1:]
        if "proxy" not in segs:  # "/version/" (what VersionApi requests) is "/version"
            path = path.rstrip("/") or "/"
            segs = path.split("/")[1:] if path != "/" else []
        index = self.current()
        if path == "/version":
            return _json(self.state.version)
        if path in ("/healthz", "/livez", "/readyz"):
            return web.Response(text="ok", content_type="text/plain")
        if segs[:1] == ["api"]:
            if len(segs) == 1:
                return _json(api_versions_doc(request.host or "127.0.0.1"))
            if segs[1] != "v1":
                return _page_not_found()
            if len(segs) == 2:
                return _json(api_resource_list_doc(CORE, "v1"))
            return await self._resource(request, index, CORE, "v1", segs[2:], path)
        if segs[:1] == ["apis"]:
            served = group_versions(g for g in index.groups if g)
            if len(segs) == 1:
                return _json(api_group_list_doc(index.groups))
            group = segs[1]
            if group not in served:
                return _page_not_found()
            if len(segs) == 2:
                return _json(api_group_doc(group, served[group]))
            if segs[2] not in served[group]:
                return _page_not_found()
            if len(segs) == 3:
                return _json(api_resource_list_doc(group, segs[2]))
            return await self._resource(request, index, group, segs[2], segs[3:], path)
        return _page_not_found()  # includes /openapi/v2 and /openapi/v3: no client of the doctor needs them

    async def _resource(self, request: web.Request, index: _Index, group: str, version: str,
                        rest: list[str], path: str) -> web.StreamResponse:
        namespace: str | None = None
        if rest[0] == "namespaces" and len(rest) >= 3:
            namespace, rest = rest[1], rest[2:]
        resource = BY_PLURAL.get((group, version, rest[0]))
        if resource is None or (namespace is not None and not resource.namespaced):
            return _resource_not_found()
        if namespace is None and resource.namespaced and len(rest) > 1:
            return _resource_not_found()  # e.g. /api/v1/pods/x: named access needs the namespace
        if len(rest) == 1:
            watch = request.query.get("watch", "").lower() in ("1", "true")
            self._authorize("watch" if watch else "list", resource, "", namespace, None)
            if watch:
                return await self._watch(request, index, resource, namespace)
            return self._list(request, index, resource, namespace)
        name = rest[1]
        if len(rest) == 2:
            self._authorize("get", resource, "", namespace, name)
            return self._get(request, index, resource, namespace, name)
        sub = rest[2]
        if resource.plural == "pods" and sub == "log" and len(rest) == 3:
            self._authorize("get", resource, "log", namespace, name)
            return self._log(request, index, resource, namespace or "", name)
        if resource.plural == "pods" and sub == "proxy":
            pod_name = name.split(":")[1] if name.count(":") == 2 else name.split(":")[0]
            self._authorize("get", resource, "proxy", namespace, pod_name)
            marker = f"/{rest[0]}/{name}/proxy"
            proxied = path[path.index(marker) + len(marker):] if marker in path else ""
            return await self._proxy(request, index, resource, namespace or "", name, proxied)
        return _resource_not_found()

    # ------------------------------------------------------------------ list / get / watch

    def _selectors(self, request: web.Request, resource: ResourceInfo) -> tuple[LabelSelector, FieldSelector]:
        try:
            return (parse_label_selector(request.query.get("labelSelector")),
                    parse_field_selector(request.query.get("fieldSelector"), resource.plural))
        except SelectorError as exc:
            raise _HTTPStatus(_bad_request(str(exc))) from exc

    def _select(self, request: web.Request, index: _Index, resource: ResourceInfo,
                namespace: str | None) -> tuple[list[_Entry], bool]:
        labels, fields = self._selectors(request, resource)
        entries = index.entries(resource, namespace)
        if labels:
            entries = [e for e in entries if labels_match(labels, e.labels)]
        if fields:
            entries = [e for e in entries if fields_match(fields, e.obj)]
        return entries, bool(labels or fields)

    def _page(self, request: web.Request, index: _Index, entries: list[_Entry],
              filtered: bool) -> tuple[list[_Entry], dict[str, Any]]:
        """``limit``/``continue`` paging; a token from an older state is 410 Expired, as after compaction."""
        start = 0
        token = request.query.get("continue")
        if token:
            try:
                decoded = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
                rv, start = str(decoded["rv"]), int(decoded["start"])
            except (ValueError, KeyError, TypeError, binascii.Error) as exc:
                raise _HTTPStatus(_bad_request(f"continue key is not valid: {exc}")) from exc
            if rv != index.resource_version:
                raise _HTTPStatus(_status(
                    410, "Expired",
                    "The provided continue parameter is too old to display a consistent list result. You can "
                    "start a new list without the continue parameter, or use the continue token in this "
                    "response to retrieve the remainder of the results. Continuing with the provided token "
                    "results in an inconsistent list - objects that were created, modified, or deleted "
                    "between the time the first chunk was returned and now may show up in the list.", {}))
        meta: dict[str, Any] = {"resourceVersion": index.resource_version}
        limit = _int_param(request, "limit", minimum=0)
        if limit:
            end = start + limit
            if end < len(entries):
                meta["continue"] = base64.urlsafe_b64encode(
                    _dumps({"rv": index.resource_version, "start": end})).decode().rstrip("=")
                if not filtered:
                    meta["remainingItemCount"] = len(entries) - end
            return entries[start:end], meta
        return entries[start:], meta

    def _list(self, request: web.Request, index: _Index, resource: ResourceInfo,
              namespace: str | None) -> web.Response:
        want = _negotiate(request.headers.get("Accept", ""), single=False)
        if want is None:
            return _not_acceptable()
        entries, filtered = self._select(request, index, resource, namespace)
        page, meta = self._page(request, index, entries, filtered)
        if want.form == "table":
            return self._table(request, resource, page, meta, want.version)
        if want.form == "meta":
            head = _dumps({"kind": "PartialObjectMetadataList", "apiVersion": f"meta.k8s.io/{want.version}",
                           "metadata": meta})
            items = b",".join(e.meta_json for e in page)
        else:
            head = _dumps({"kind": f"{resource.kind}List", "apiVersion": resource.api_version,
                           "metadata": meta})
            items = b",".join(e.json for e in page)
        return web.Response(body=head[:-1] + b',"items":[' + items + b"]}", content_type="application/json")

    def _get(self, request: web.Request, index: _Index, resource: ResourceInfo, namespace: str | None,
             name: str) -> web.Response:
        want = _negotiate(request.headers.get("Accept", ""), single=True)
        if want is None:
            return _not_acceptable()
        entry = index.get(resource, namespace, name)
        if entry is None:
            return _not_found(resource, name)
        if want.form == "table":
            return self._table(request, resource, [entry], {"resourceVersion": index.resource_version},
                               want.version)
        body = entry.meta_json if want.form == "meta" else entry.json
        return web.Response(body=body, content_type="application/json")

    def _table(self, request: web.Request, resource: ResourceInfo, entries: list[_Entry],
               meta: dict[str, Any], version: str) -> web.Response:
        include = request.query.get("includeObject", "Metadata")
        now = self.state.clock()
        rows = []
        for e in entries:
            cells = [c.render(now) if isinstance(c, Since) else c for c in e.cells()]
            row = b'{"cells":' + _dumps(cells)
            if e.conditions:
                row += b',"conditions":' + _dumps(e.conditions)
            if include == "Object":
                row += b',"object":' + e.json
            elif include != "None":
                row += b',"object":' + e.meta_json
            rows.append(row + b"}")
        head = _dumps({"kind": "Table", "apiVersion": f"meta.k8s.io/{version}", "metadata": meta,
                       "columnDefinitions": list(table_columns(resource.plural))})
        return web.Response(body=head[:-1] + b',"rows":[' + b",".join(rows) + b"]}",
                            content_type="application/json")

    async def _watch(self, request: web.Request, index: _Index, resource: ResourceInfo,
                     namespace: str | None) -> web.StreamResponse:
        """A watch on a static world: initial ADDED events (unless resuming), then quiet until timeout."""
        entries, _ = self._select(request, index, resource, namespace)
        timeout = _int_param(request, "timeoutSeconds", minimum=0)
        resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        await resp.prepare(request)
        if request.query.get("resourceVersion", "") in ("", "0"):
            for e in entries:
                await resp.write(b'{"type":"ADDED","object":' + e.json + b"}\n")
        try:
            hold = min(timeout if timeout is not None else 60, 1800)
            await asyncio.wait_for(self.shutdown.wait(), timeout=hold)
        except TimeoutError:
            pass
        await resp.write_eof()
        return resp

    # ------------------------------------------------------------------ logs

    def _log(self, request: web.Request, index: _Index, resource: ResourceInfo, namespace: str,
             name: str) -> web.Response:
        entry = index.get(resource, namespace, name)
        if entry is None:
            return _not_found(resource, name)
        spec = entry.obj.get("spec") or {}

        def names(key: str) -> list[str]:
            return [str(c.get("name")) for c in spec.get(key) or [] if isinstance(c, Mapping)]

        containers, inits, ephemerals = names("containers"), names("initContainers"), names(
            "ephemeralContainers")
        container = request.query.get("container", "")
        if not container:
            if len(containers) == 1:
                container = containers[0]
            else:
                message = (f"a container name must be specified for pod {name}, "
                           f"choose one of: [{' '.join(containers)}]")
                if inits:
                    message += f" or one of the init containers: [{' '.join(inits)}]"
                if ephemerals:
                    message += f" or one of the ephemeral containers: [{' '.join(ephemerals)}]"
                return _bad_request(message)
        if container not in (*containers, *inits, *ephemerals):
            return _bad_request(f"container {container} is not valid for pod {name}")
        tail = _int_param(request, "tailLines", minimum=0)
        since_seconds = _int_param(request, "sinceSeconds", minimum=1)
        limit_bytes = _int_param(request, "limitBytes", minimum=1)
        since_time = request.query.get("sinceTime")
        if since_seconds is not None and since_time:
            return _bad_request("at most one of `sinceTime` or `sinceSeconds` may be specified")
        since: float | None = None
        if since_seconds is not None:
            since = self.state.clock() - since_seconds
        elif since_time:
            since = parse_time(since_time)
            if since is None:
                return _bad_request(f'parsing time "{since_time}" as "2006-01-02T15:04:05Z07:00": '
                                    "cannot parse")
        key = f"{namespace}/{name}/{container}"
        previous = request.query.get("previous", "").lower() in ("1", "true")
        if previous:
            text = self.state.logs.get(key + "/previous")
            if text is None:
                return _bad_request(f'previous terminated container "{container}" in pod "{name}" not found')
        else:
            text = self.state.logs.get(key)
            waiting = _waiting_reason(entry.obj, container)
            if waiting is not None:
                return _bad_request(f'container "{container}" in pod "{name}" is waiting to start: {waiting}')
        body = select_lines(text or "", tail=tail, since=since, limit_bytes=limit_bytes)
        return web.Response(text=body, content_type="text/plain")

    # ------------------------------------------------------------------ proxy

    async def _proxy(self, request: web.Request, index: _Index, resource: ResourceInfo, namespace: str,
                     name_port: str, subpath: str) -> web.Response:
        parts = name_port.split(":")
        if len(parts) == 3:
            _scheme, pod, port = parts
        elif len(parts) == 2:
            pod, port = parts
        else:
            pod, port = parts[0], ""
        entry = index.get(resource, namespace, pod)
        if entry is None:
            return _not_found(resource, pod)
        raw = self.state.proxy.get(f"{namespace}/{pod}:{port}") if port else None
        if raw is None:
            raw = self.state.proxy.get(f"{namespace}/{pod}")
        if subpath in ("", "/") and request.query.get("path"):
            subpath = request.query["path"]
        subpath = subpath or "/"
        if not subpath.startswith("/"):
            subpath = "/" + subpath
        pod_ip = (entry.obj.get("status") or {}).get("podIP") or "10.244.0.10"
        if raw is None:
            return _status(503, "ServiceUnavailable", f"error trying to reach service: dial tcp {pod_ip}:"
                           f"{port or 80}: connect: connection refused", {})
        target = ProxyTarget.coerce(raw)
        query = request.query_string
        if target.upstream is None:
            canned = target.lookup(subpath, query)
            if canned is None:
                return web.Response(status=404, text="404 page not found\n", content_type="text/plain")
            status, ctype, body = canned
            return web.Response(status=status, body=body.encode() if isinstance(body, str) else body,
                                headers={"Content-Type": ctype})
        return await self._forward(request, target.upstream, subpath, query, pod_ip, port)

    async def _forward(self, request: web.Request, upstream: str, subpath: str, query: str, pod_ip: str,
                       port: str) -> web.Response:
        import aiohttp

        if self.session is None:
            self.session = aiohttp.ClientSession(trust_env=False)
        url = upstream.rstrip("/") + subpath + (f"?{query}" if query else "")
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("accept", "accept-encoding")}
        try:
            async with self.session.get(url, headers=headers, allow_redirects=False,
                                        timeout=aiohttp.ClientTimeout(total=self.state.proxy_timeout)) as up:
                body = await up.read()
                out = {"Content-Type": up.headers.get("Content-Type", "application/octet-stream")}
                if "Location" in up.headers:
                    out["Location"] = up.headers["Location"]
                return web.Response(status=up.status, body=body, headers=out)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            detail = str(exc) or type(exc).__name__
            return _status(503, "ServiceUnavailable",
                           f"error trying to reach service: dial tcp {pod_ip}:{port or 80}: {detail}", {})

    async def close(self, _app: web.Application) -> None:
        self.shutdown.set()
        if self.session is not None:
            await self.session.close()
            self.session = None

    async def on_shutdown(self, _app: web.Application) -> None:
        self.shutdown.set()


def _int_param(request: web.Request, name: str, *, minimum: int) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError as exc:
        raise _HTTPStatus(_bad_request(f'invalid value for {name}: strconv.ParseInt: parsing "{raw}": '
                                       "invalid syntax")) from exc
    if value < minimum:
        raise _HTTPStatus(_bad_request(f"{name}: Invalid value: {value}: must be greater than or equal to "
                                       f"{minimum}"))
    return value


def _waiting_reason(pod: Mapping[str, Any], container: str) -> str | None:
    """The kubelet refuses logs of a container that never ran (waiting, no terminated instance)."""
    status = pod.get("status") or {}
    for key in ("containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses"):
        for cs in status.get(key) or []:
            if cs.get("name") != container:
                continue
            waiting = (cs.get("state") or {}).get("waiting")
            if waiting is not None and not (cs.get("lastState") or {}).get("terminated"):
                return str(waiting.get("reason") or "ContainerCreating")
            return None
    return None


def make_app(state: KubeState) -> web.Application:
    """Build the API server application for ``state``.

    Raises ``ValueError`` at once for manifests the server could not serve (unknown kind,
    missing name, duplicates), so a broken scenario fails at lab start with the object's
    position, not later as a puzzling 404.
    """
    api = _KubeAPI(state)
    app = web.Application(client_max_size=1024 * 1024)
    app[_STATE_KEY] = state
    app.router.add_route("*", "/{tail:.*}", api.handle)
    app.on_shutdown.append(api.on_shutdown)
    app.on_cleanup.append(api.close)
    return app
