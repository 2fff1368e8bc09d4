"""Server-side ``meta.k8s.io/v1`` Table rendering: the columns ``kubectl get`` prints.

kubectl asks the API server for a Table and prints its cells verbatim, so READY, STATUS
and RESTARTS are computed here, with the same rules as the API server's printers
(``pkg/printers/internalversion/printers.go``): a pod in ``CrashLoopBackOff`` must read
exactly like it does on a real cluster, because that is what a user pastes into an issue.

Cells that depend on the clock (AGE, ``N (5m ago)``) are kept as :class:`Since`
placeholders and rendered per request; everything else is computed once per object.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

Obj = Mapping[str, Any]


@dataclass(frozen=True)
class Since:
    """A clock-dependent cell: ``prefix + HumanDuration(now - epoch) + suffix``."""

    epoch: float | None
    prefix: str = ""
    suffix: str = ""

    def render(self, now: float) -> str:
        if self.epoch is None:
            return "<unknown>"
        return f"{self.prefix}{human_duration(now - self.epoch)}{self.suffix}"


Cell = str | int | bool | float | Since | None


def human_duration(seconds_f: float) -> str:
    """``k8s.io/apimachinery/pkg/util/duration.HumanDuration``, bit for bit."""
    seconds = int(seconds_f)
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        s = seconds % 60
        return f"{minutes}m" if s == 0 else f"{minutes}m{s}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = seconds // 3600
    if hours < 8:
        m = minutes % 60
        return f"{hours}h" if m == 0 else f"{hours}h{m}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        h = hours % 24
        return f"{hours // 24}d" if h == 0 else f"{hours // 24}d{h}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        dy = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if dy == 0 else f"{hours // 24 // 365}y{dy}d"
    return f"{hours // 24 // 365}y"


def parse_time(value: Any) -> float | None:
    """RFC 3339 (``2024-05-01T12:00:00Z``, fractional seconds allowed) to epoch seconds, else None."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace("z", "Z")
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    if "." in text:  # Python < 3.12 accepts at most 6 fractional digits
        head, _, rest = text.partition(".")
        digits = "".join(ch for ch in rest if ch.isdigit())
        text = f"{head}.{digits[:6]}{rest[len(digits):]}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        from datetime import UTC

        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def _g(obj: Any, *keys: str) -> Any:
    for k in keys:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(k)
    return obj


def _age(obj: Obj) -> Since:
    return Since(parse_time(_g(obj, "metadata", "creationTimestamp")))


def _none(value: Any) -> str:
    return "<none>" if value in (None, "", [], {}) else str(value)


def _col(name: str, description: str, *, priority: int = 0, type_: str = "string",
         format_: str = "") -> dict[str, Any]:
    return {"name": name, "type": type_, "format": format_, "description": description, "priority": priority}


NAME_COL = _col("Name", "Name must be unique within a namespace.", format_="name")
AGE_COL = _col("Age", "CreationTimestamp is a timestamp representing the server time when this object "
               "was created.")


# --------------------------------------------------------------------------------------------- pods

def _is_restartable_init(container: Any) -> bool:
    return isinstance(container, Mapping) and container.get("restartPolicy") == "Always"


def _term_reason(term: Mapping[str, Any], prefix: str = "") -> str:
    if term.get("reason"):
        return prefix + str(term["reason"])
    if term.get("signal"):
        return f"{prefix}Signal:{term['signal']}"
    return f"{prefix}ExitCode:{term.get('exitCode', 0)}"


def pod_cells(pod: Obj) -> tuple[list[Cell], list[dict[str, str]]]:
    """NAME, READY, STATUS, RESTARTS, AGE, IP, NODE, NOMINATED NODE, READINESS GATES (printPod)."""
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    containers = spec.get("containers") or []
    init_specs = {c.get("name"): c for c in spec.get("initContainers") or [] if isinstance(c, Mapping)}
    total = len(containers) + sum(1 for c in init_specs.values() if _is_restartable_init(c))
    ready = 0
    restarts = 0
    sidecar_restarts = 0
    last_restart: float | None = None
    sidecar_last_restart: float | None = None
    reason = str(status.get("reason") or status.get("phase") or "")
    for cond in status.get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"
    conditions: list[dict[str, str]] = []
    if status.get("phase") == "Succeeded":
        conditions = [{"type": "Completed", "status": "True", "reason": "Succeeded",
                       "message": "The pod has completed successfully."}]
    elif status.get("phase") == "Failed":
        conditions = [{"type": "Completed", "status": "True", "reason": "Failed",
                       "message": "The pod has failed."}]

    def finished(cs: Mapping[str, Any]) -> float | None:
        return parse_time(_g(cs, "lastState", "terminated", "finishedAt"))

    initializing = False
    init_statuses = status.get("initContainerStatuses") or []
    for i, cs in enumerate(init_statuses):
        count = int(cs.get("restartCount") or 0)
        restarts += count
        done = finished(cs)
        if done is not None and (last_restart is None or done > last_restart):
            last_restart = done
        restartable = _is_restartable_init(init_specs.get(cs.get("name")))
        if restartable:
            sidecar_restarts += count
            if done is not None and (sidecar_last_restart is None or done > sidecar_last_restart):
                sidecar_last_restart = done
        state = cs.get("state") or {}
        term = state.get("terminated")
        waiting = state.get("waiting")
        if term is not None and int(term.get("exitCode") or 0) == 0:
            continue
        if restartable and cs.get("started"):
            if cs.get("ready"):
                ready += 1
            continue
        if term is not None:
            reason = _term_reason(term, "Init:")
        elif waiting and waiting.get("reason") and waiting.get("reason") != "PodInitializing":
            reason = "Init:" + str(waiting["reason"])
        else:
            reason = f"Init:{i}/{len(init_specs)}"
        initializing = True
        break
    initialized = any(c.get("type") == "Initialized" and c.get("status") == "True"
                      for c in status.get("conditions") or [])
    if not initializing or initialized:
        restarts = sidecar_restarts
        last_restart = sidecar_last_restart
        has_running = False
        for cs in reversed(status.get("containerStatuses") or []):
            restarts += int(cs.get("restartCount") or 0)
            done = finished(cs)
            if done is not None and (last_restart is None or done > last_restart):
                last_restart = done
            state = cs.get("state") or {}
            waiting, term = state.get("waiting"), state.get("terminated")
            if waiting and waiting.get("reason"):
                reason = str(waiting["reason"])
            elif term and term.get("reason"):
                reason = str(term["reason"])
            elif term is not None:
                reason = _term_reason(term)
            elif cs.get("ready") and state.get("running") is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            pod_ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                            for c in status.get("conditions") or [])
            reason = "Running" if pod_ready else "NotReady"
    meta = pod.get("metadata") or {}
    if meta.get("deletionTimestamp") and status.get("reason") == "NodeLost":
        reason = "Unknown"
    elif meta.get("deletionTimestamp"):
        reason = "Terminating"
    restarts_cell: Cell = str(restarts)
    if restarts and last_restart is not None:
        restarts_cell = Since(last_restart, f"{restarts} (", " ago)")
    gates = spec.get("readinessGates") or []
    gates_cell = "<none>"
    if gates:
        true_types = {c.get("type") for c in status.get("conditions") or [] if c.get("status") == "True"}
        gates_cell = f"{sum(1 for g in gates if g.get('conditionType') in true_types)}/{len(gates)}"
    cells: list[Cell] = [
        meta.get("name"), f"{ready}/{total}", reason, restarts_cell, _age(pod),
        _none(status.get("podIP")), _none(spec.get("nodeName")), _none(status.get("nominatedNodeName")),
        gates_cell,
    ]
    return cells, conditions


POD_COLUMNS = [
    NAME_COL,
    _col("Ready", "The aggregate readiness state of this pod for accepting traffic."),
    _col("Status", "The aggregate status of the containers in this pod."),
    _col("Restarts", "The number of times the containers in this pod have been restarted and when the "
         "last container in this pod has restarted."),
    AGE_COL,
    _col("IP", "IP address allocated to the pod.", priority=1),
    _col("Node", "NodeName is a request to schedule this pod onto a specific node.", priority=1),
    _col("Nominated Node", "nominatedNodeName is set only when this pod preempts other pods on the node.",
         priority=1),
    _col("Readiness Gates", "If specified, all readiness gates will be evaluated for pod readiness.",
         priority=1),
]


# --------------------------------------------------------------------------------------------- others

def _selector_string(selector: Any) -> str:
    if not isinstance(selector, Mapping):
        return "<none>"
    parts = [f"{k}={v}" for k, v in (selector.get("matchLabels") or {}).items()]
    for expr in selector.get("matchExpressions") or []:
        op = str(expr.get("operator", ""))
        values = ",".join(str(v) for v in expr.get("values") or [])
        if op == "In":
            parts.append(f"{expr.get('key')} in ({values})")
        elif op == "NotIn":
            parts.append(f"{expr.get('key')} notin ({values})")
        elif op == "Exists":
            parts.append(str(expr.get("key")))
        elif op == "DoesNotExist":
            parts.append(f"!{expr.get('key')}")
    return ",".join(parts) or "<none>"


def _template_containers(obj: Obj) -> tuple[str, str]:
    cs = _g(obj, "spec", "template", "spec", "containers") or []
    return (",".join(str(c.get("name", "")) for c in cs) or "<none>",
            ",".join(str(c.get("image", "")) for c in cs) or "<none>")


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


_CONTAINERS = _col("Containers", "Names of each container in the template.", priority=1)
_IMAGES = _col("Images", "Images referenced by each container in the template.", priority=1)
_SELECTOR = _col("Selector", "Label selector for pods.", priority=1)


def _daemonset(o: Obj) -> list[Cell]:
    st = o.get("status") or {}
    node_selector = _g(o, "spec", "template", "spec", "nodeSelector") or {}
    containers, images = _template_containers(o)
    return [_g(o, "metadata", "name"), _int(st.get("desiredNumberScheduled")),
            _int(st.get("currentNumberScheduled")), _int(st.get("numberReady")),
            _int(st.get("updatedNumberScheduled")), _int(st.get("numberAvailable")),
            ",".join(f"{k}={v}" for k, v in node_selector.items()) or "<none>", _age(o),
            containers, images, _selector_string(_g(o, "spec", "selector"))]


def _statefulset(o: Obj) -> list[Cell]:
    st = o.get("status") or {}
    replicas = _g(o, "spec", "replicas")
    containers, images = _template_containers(o)
    desired = 1 if replicas is None else replicas
    return [_g(o, "metadata", "name"), f"{_int(st.get('readyReplicas'))}/{desired}", _age(o), containers,
            images]


def _deployment(o: Obj) -> list[Cell]:
    st = o.get("status") or {}
    replicas = _g(o, "spec", "replicas")
    containers, images = _template_containers(o)
    desired = 1 if replicas is None else replicas
    return [_g(o, "metadata", "name"), f"{_int(st.get('readyReplicas'))}/{desired}",
            _int(st.get("updatedReplicas")), _int(st.get("availableReplicas")), _age(o), containers, images,
            _selector_string(_g(o, "spec", "selector"))]


def _replicaset(o: Obj) -> list[Cell]:
    st = o.get("status") or {}
    containers, images = _template_containers(o)
    return [_g(o, "metadata", "name"), _int(_g(o, "spec", "replicas")), _int(st.get("replicas")),
            _int(st.get("readyReplicas")), _age(o), containers, images,
            _selector_string(_g(o, "spec", "selector"))]


def _service(o: Obj) -> list[Cell]:
    spec = o.get("spec") or {}
    svc_type = spec.get("type") or "ClusterIP"
    external: str = ",".join(spec.get("externalIPs") or [])
    if svc_type == "LoadBalancer":
        ingress = [i.get("ip") or i.get("hostname") for i in _g(o, "status", "loadBalancer", "ingress") or []]
        external = ",".join(str(i) for i in ingress if i) or "<pending>"
    elif svc_type == "ExternalName":
        external = str(spec.get("externalName") or "")
    ports = []
    for p in spec.get("ports") or []:
        node = f":{p['nodePort']}" if p.get("nodePort") else ""
        ports.append(f"{p.get('port')}{node}/{p.get('protocol', 'TCP')}")
    selector = spec.get("selector") or {}
    return [_g(o, "metadata", "name"), svc_type, _none(spec.get("clusterIP")), external or "<none>",
            ",".join(ports) or "<none>", _age(o),
            ",".join(f"{k}={v}" for k, v in selector.items()) or "<none>"]


def _node(o: Obj) -> list[Cell]:
    conditions = _g(o, "status", "conditions") or []
    ready = next((c for c in conditions if c.get("type") == "Ready"), None)
    status = "Unknown"
    if ready is not None:
        status = "Ready" if ready.get("status") == "True" else "NotReady"
    if _g(o, "spec", "unschedulable"):
        status += ",SchedulingDisabled"
    labels = _g(o, "metadata", "labels") or {}
    roles = sorted(k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/"))
    if labels.get("kubernetes.io/role"):
        roles.append(str(labels["kubernetes.io/role"]))
    addresses = _g(o, "status", "addresses") or []

    def addr(kind: str) -> str:
        return ",".join(str(a.get("address")) for a in addresses if a.get("type") == kind) or "<none>"

    info = _g(o, "status", "nodeInfo") or {}
    return [_g(o, "metadata", "name"), status, ",".join(roles) or "<none>", _age(o),
            str(info.get("kubeletVersion", "")), addr("InternalIP"), addr("ExternalIP"),
            _none(info.get("osImage")), _none(info.get("kernelVersion")),
            _none(info.get("containerRuntimeVersion"))]


def _event(o: Obj) -> list[Cell]:
    first = parse_time(o.get("firstTimestamp")) or parse_time(o.get("eventTime"))
    last = parse_time(_g(o, "series", "lastObservedTime")) or parse_time(o.get("lastTimestamp")) or first
    involved = o.get("involvedObject") or {}
    source = o.get("source") or {}
    src = str(source.get("component") or o.get("reportingComponent") or "")
    if source.get("host"):
        src = f"{src}, {source['host']}"
    count = _g(o, "series", "count") or o.get("count") or 1
    return [Since(last), o.get("type", ""), o.get("reason", ""),
            f"{str(involved.get('kind', '')).lower()}/{involved.get('name', '')}",
            involved.get("fieldPath", ""), src, str(o.get("message", "")).strip(), Since(first),
            int(count), _g(o, "metadata", "name")]


def _condition_status(o: Obj, ctype: str) -> str:
    for c in _g(o, "status", "conditions") or []:
        if c.get("type") == ctype:
            return str(c.get("status", ""))
    return ""


@dataclass(frozen=True)
class TableSpec:
    columns: Sequence[dict[str, Any]]
    cells: Callable[[Obj], list[Cell]]


def _simple(*extra: tuple[dict[str, Any], Callable[[Obj], Cell]]) -> TableSpec:
    """NAME, extra columns, AGE: the shape of a CRD table with additionalPrinterColumns."""
    columns = [NAME_COL, *(c for c, _ in extra), AGE_COL]
    getters = [g for _, g in extra]
    return TableSpec(columns, lambda o: [_g(o, "metadata", "name"), *(g(o) for g in getters), _age(o)])


TABLES: dict[str, TableSpec] = {
    "namespaces": _simple((_col("Status", "The status of the namespace"),
                           lambda o: _g(o, "status", "phase") or "Active")),
    "serviceaccounts": _simple((_col("Secrets", "Secrets is a list of the secrets in the same namespace "
                                     "that pods running using this ServiceAccount are allowed to use.",
                                     type_="integer"), lambda o: len(o.get("secrets") or []))),
    "secrets": _simple((_col("Type", "The type of the secret"), lambda o: o.get("type") or "Opaque"),
                       (_col("Data", "The number of entries in the secret", type_="integer"),
                        lambda o: len(o.get("data") or {}) + len(o.get("stringData") or {}))),
    "configmaps": _simple((_col("Data", "The number of entries in the ConfigMap", type_="integer"),
                           lambda o: len(o.get("data") or {}) + len(o.get("binaryData") or {}))),
    "services": TableSpec([NAME_COL, _col("Type", "The type of the service."),
                           _col("Cluster-IP", "The IP address of the service."),
                           _col("External-IP", "The external IP addresses of the service."),
                           _col("Port(s)", "The ports of the service."), AGE_COL, _SELECTOR], _service),
    "nodes": TableSpec([NAME_COL, _col("Status", "The status of the node"),
                        _col("Roles", "The roles of the node"), AGE_COL,
                        _col("Version", "Kubelet Version reported by the node."),
                        _col("Internal-IP", "List of internal IPs.", priority=1),
                        _col("External-IP", "List of external IPs.", priority=1),
                        _col("OS-Image", "OS Image reported by the node.", priority=1),
                        _col("Kernel-Version", "Kernel Version reported by the node.", priority=1),
                        _col("Container-Runtime", "Container Runtime Version reported by the node.",
                             priority=1)], _node),
    "events": TableSpec([_col("Last Seen", "Time when last event happened"),
                         _col("Type", "Type of this event (Normal, Warning), new types could be added in the "
                              "future."),
                         _col("Reason", "This should be a short, machine understandable string that gives "
                              "the reason for the transition into the object's current status."),
                         _col("Object", "The object that this event is about."),
                         _col("Subobject", "The specific part of the object.", priority=1),
                         _col("Source", "The component reporting this event.", priority=1),
                         _col("Message", "A human-readable description of the status of this operation."),
                         _col("First Seen", "The time at which the event was first recorded.", priority=1),
                         _col("Count", "The number of times this event has occurred.", priority=1,
                              type_="integer"),
                         {**NAME_COL, "priority": 1}], _event),
    "daemonsets": TableSpec([NAME_COL,
                             _col("Desired", "The number of nodes that should be running the daemon pod.",
                                  type_="integer"),
                             _col("Current", "The number of nodes running at least one daemon pod.",
                                  type_="integer"),
                             _col("Ready", "The number of nodes that should be running the daemon pod and "
                                  "have one or more of the daemon pod running and ready.", type_="integer"),
                             _col("Up-to-date", "The total number of nodes that are running updated daemon "
                                  "pod", type_="integer"),
                             _col("Available", "The number of nodes that should be running the daemon pod "
                                  "and have one or more of the daemon pod running and available.",
                                  type_="integer"),
                             _col("Node Selector", "NodeSelector is a selector which must be true for "
                                  "the pod to fit on a node."),
                             AGE_COL, _CONTAINERS, _IMAGES, _SELECTOR], _daemonset),
    "statefulsets": TableSpec([NAME_COL, _col("Ready", "Number of the pod with ready state"), AGE_COL,
                               _CONTAINERS, _IMAGES], _statefulset),
    "deployments": TableSpec([NAME_COL, _col("Ready", "Number of the pod with ready state"),
                              _col("Up-to-date", "Total number of non-terminated pods targeted by this "
                                   "deployment that have the desired template spec.", type_="integer"),
                              _col("Available", "Total number of available pods (ready for at least "
                                   "minReadySeconds) targeted by this deployment.", type_="integer"),
                              AGE_COL, _CONTAINERS, _IMAGES, _SELECTOR], _deployment),
    "replicasets": TableSpec([NAME_COL, _col("Desired", "Number of desired pods.", type_="integer"),
                              _col("Current", "Number of actual replicas.", type_="integer"),
                              _col("Ready", "The number of ready replicas for this replica set.",
                                   type_="integer"),
                              AGE_COL, _CONTAINERS, _IMAGES, _SELECTOR], _replicaset),
    "customresourcedefinitions": TableSpec(
        [NAME_COL, _col("Created At", "CreationTimestamp is a timestamp representing the server time when "
                        "this object was created.", type_="date")],
        lambda o: [_g(o, "metadata", "name"), _g(o, "metadata", "creationTimestamp")]),
    "azureidentities": _simple((_col("Type", "0: user-assigned MSI, 1: service principal, 2: SP certificate",
                                     type_="integer"), lambda o: _g(o, "spec", "type")),
                               (_col("ClientID", "Client ID of the identity"),
                                lambda o: _g(o, "spec", "clientID"))),
    "azureidentitybindings": _simple((_col("AzureIdentity", "Name of the bound AzureIdentity"),
                                      lambda o: _g(o, "spec", "azureIdentity")),
                                     (_col("Selector", "Value of the pods' aadpodidbinding label"),
                                      lambda o: _g(o, "spec", "selector"))),
    "azureassignedidentities": _simple(
        (_col("Pod", "The pod the identity is assigned to"),
         lambda o: f"{_g(o, 'spec', 'podNamespace') or ''}/{_g(o, 'spec', 'pod') or ''}"),
        (_col("Identity", "The AzureIdentity assigned"),
         lambda o: _g(o, "spec", "azureIdentityRef", "metadata", "name")),
        (_col("Node", "The node of the pod"), lambda o: _g(o, "spec", "nodename")),
        (_col("Status", "Created, Assigned or Unassigned"), lambda o: _g(o, "status", "status"))),
    "prometheuses": _simple(
        (_col("Version", "The version of Prometheus"), lambda o: _g(o, "spec", "version")),
        (_col("Desired", "The number of desired replicas", type_="integer"),
         lambda o: _g(o, "spec", "replicas")),
        (_col("Ready", "The number of ready replicas", type_="integer"),
         lambda o: _g(o, "status", "availableReplicas")),
        (_col("Reconciled", "Whether the resource was reconciled"),
         lambda o: _condition_status(o, "Reconciled")),
        (_col("Available", "Whether the resource is available"),
         lambda o: _condition_status(o, "Available"))),
}
_PLAIN = _simple()


def table_columns(plural: str) -> Sequence[dict[str, Any]]:
    """The column definitions for ``plural``; NAME/AGE when no printer is defined (a CRD without columns)."""
    if plural == "pods":
        return POD_COLUMNS
    return TABLES.get(plural, _PLAIN).columns


def table_row(plural: str, obj: Obj) -> tuple[list[Cell], list[dict[str, str]]]:
    """Cells (with :class:`Since` placeholders) and row conditions for one object."""
    if plural == "pods":
        return pod_cells(obj)
    return TABLES.get(plural, _PLAIN).cells(obj), []
