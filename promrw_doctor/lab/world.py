"""A running lab world: every emulator of one scenario on loopback, plus real Prometheus behind it.

:class:`LabWorld` is what ``promrw-doctor lab up``/``lab run`` and every end-to-end test
use. It materialises a :class:`~promrw_doctor.lab.scenario.Scenario` (certificates
generated, relative times made absolute, placeholders filled with real ports) and
starts, in one per-run directory:

* Entra, Key Vault, ARM, Graph, the metrics data plane, one ingestion endpoint per DCE and
  one PromQL endpoint per workspace (HTTPS, signed by a per-run CA);
* IMDS (plain HTTP; the NMI personality for pod identity, not started when NMI is down);
* the Kubernetes API (HTTPS + bearer token) serving the scenario's objects and logs, whose
  pod proxy reaches a small "Prometheus pod" app (build info, config, /metrics);
* one real Prometheus receiver: the workspace's store, seeded with recent samples;
* with traffic: the built-in forwarder (``promrw-doctor forward``, configured from the
  pod's sidecar env) and a real Prometheus sender remote-writing through it.

The doctor reaches it exactly as it reaches Azure and AKS, through three files:
``kubeconfig`` (context ``promrw-lab``), ``cloud.yaml`` (a custom cloud profile whose
endpoints are the loopback emulators) and ``env`` (CA bundle, the doctor's own lab-only
client secret, the IMDS redirect). Teardown stops senders before receivers and servers,
removes the directory unless ``keep=True``, and an ``atexit`` hook does the same for a
world left open by a crash, so no process or port outlives the run.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import weakref
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ..core.errors import InputError
from .scenario import PlaceholderValues, Scenario, materialise

CONTEXT = "promrw-lab"
LOOPBACK = "127.0.0.1"
INGESTION_API_VERSION = "2023-04-24"
PROMETHEUS_CONTAINER = "prometheus"
SIDECAR_CONTAINER = "prom-remotewrite"
DOCTOR_APP_NAME = "promrw-doctor-lab-reader"
LAB_PERMISSION_SWITCHES = {"query:read"}  # plus azure_common.PERMISSIONS

_LIVE: weakref.WeakSet[LabWorld] = weakref.WeakSet()


def _close_all() -> None:
    """atexit safety net: a world left open (crash, forgotten close) still stops its processes."""
    for world in list(_LIVE):
        with contextlib.suppress(Exception):
            world.close()


atexit.register(_close_all)


@dataclass
class _CertMaterial:
    name: str
    der: bytes
    thumbprint: str
    not_before: datetime
    not_after: datetime


@dataclass
class LabTimings:
    """Where start-up time goes (``bench/lab_startup.py`` prints these)."""

    steps: dict[str, float] = field(default_factory=dict)
    total: float = 0.0
    teardown: float = 0.0


class LabWorld:
    """One running scenario. Use as a context manager (or :meth:`start`/:meth:`close`).

    ``traffic``: None = the scenario's ``traffic``; True/False forces live traffic on or off.
    ``keep``: leave the run directory behind after teardown (``lab up --keep``).
    ``store``: start the real Prometheus receiver behind ingestion and query (default). False
    keeps a world free of processes for fast tests: ingestion accepts writes without storing
    them and the query endpoint answers 502; live traffic needs the store.
    """

    def __init__(
        self,
        scenario: Scenario,
        workdir: str | os.PathLike[str] | None = None,
        *,
        traffic: bool | None = None,
        keep: bool = False,
        store: bool = True,
        summary_interval_s: float = 60.0,
    ) -> None:
        self.scenario = scenario
        self.traffic = scenario.traffic if traffic is None else bool(traffic)
        self.store = store
        if self.traffic and not store:
            raise InputError("live traffic needs the workspace store (store=True)")
        self.keep = keep
        self.summary_interval_s = summary_interval_s
        self._own_dir = workdir is None
        self._workdir_arg = Path(workdir) if workdir is not None else None
        self.workdir: Path = Path()
        self.context = CONTEXT
        self.now = datetime.now(UTC)
        self.timings = LabTimings()
        self.endpoints: dict[str, str] = {}
        self.apps: dict[str, Any] = {}
        self.azure_state: Any = None
        self.kube_state: Any = None
        self.issuer: Any = None
        self.oidc: Any = None
        self.receiver: Any = None
        self.sender: Any = None
        self.forwarder_url: str | None = None
        self.forwarder_exit: int | None = None
        self.tenant_id = str(scenario.azure["tenant_id"])
        self.subscription_id = str(scenario.azure["subscription_id"])
        self.doctor_client_id = str(uuid.uuid4())
        self._doctor_secret = secrets.token_urlsafe(32)
        self.kube_token = "lab-" + secrets.token_urlsafe(24)
        self.certificates: dict[str, _CertMaterial] = {}
        self.placeholders = PlaceholderValues(now=self.now)
        self._server: Any = None
        self._forwarder: subprocess.Popen[bytes] | None = None
        self._forwarder_log: Any = None
        self._log_pump: threading.Thread | None = None
        self._stop = threading.Event()
        self._closed = False
        self._started = False
        self._sidecar_history = ""
        self._lock = threading.Lock()
        self._reserved: list[socket.socket] = []

    # ------------------------------------------------------------------ files
    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "kubeconfig"

    @property
    def cloud_config(self) -> Path:
        return self.workdir / "cloud.yaml"

    @property
    def env_file(self) -> Path:
        return self.workdir / "env"

    @property
    def ca_bundle(self) -> Path:
        return self.workdir / "ca.pem"

    def files(self) -> dict[str, Path]:
        """The files a user points kubectl and the doctor at."""
        return {"kubeconfig": self.kubeconfig, "cloud_config": self.cloud_config, "env": self.env_file,
                "ca_bundle": self.ca_bundle}

    def pod_path(self, path: str) -> Path:
        """Where a file inside the (single) Prometheus pod lives on the lab's disk."""
        return self.workdir / "podfs" / path.lstrip("/")

    def env_vars(self) -> dict[str, str]:
        """What ``env`` exports: the doctor's own credential and how to reach the lab.

        Contains the doctor's lab-only client secret: hand it to the doctor, never to a report.
        """
        return {
            "KUBECONFIG": str(self.kubeconfig),
            "PROMRW_DOCTOR_CLOUD_CONFIG": str(self.cloud_config),
            "REQUESTS_CA_BUNDLE": str(self.ca_bundle),
            "AZURE_AUTHORITY_HOST": self.endpoints["entra"],
            "AZURE_TENANT_ID": self.tenant_id,
            "AZURE_CLIENT_ID": self.doctor_client_id,
            "AZURE_CLIENT_SECRET": self._doctor_secret,
            "AZURE_SUBSCRIPTION_ID": self.subscription_id,
            "AZURE_POD_IDENTITY_AUTHORITY_HOST": self.endpoints["imds"],
        }

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> LabWorld:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> LabWorld:
        """Materialise and start everything; on any failure, tear down what started and re-raise."""
        if self._started:
            return self
        self._started = True
        _LIVE.add(self)
        t0 = time.perf_counter()
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        self.timings.total = time.perf_counter() - t0
        return self

    def _reserve_port(self) -> int:
        """A loopback port held for this world until it closes.

        The socket is bound with SO_REUSEADDR but never listens: connecting to it is refused
        (a dead NMI, a wrong remote-write port), nobody else can take it, and an emulator may
        still bind it (aiohttp sets SO_REUSEADDR too; Linux allows that while no one listens).
        Picking a free port and releasing it would race with every other process on the box.
        """
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((LOOPBACK, 0))
        self._reserved.append(sock)
        return int(sock.getsockname()[1])

    def _step(self, name: str, t: float) -> float:
        now = time.perf_counter()
        self.timings.steps[name] = round(now - t, 4)
        return now

    def _start(self) -> None:
        from .server import LabServer

        t = time.perf_counter()
        if self._own_dir:
            self.workdir = Path(tempfile.mkdtemp(prefix=f"promrw-lab-{self.scenario.name}-"))
        else:
            assert self._workdir_arg is not None
            self.workdir = self._workdir_arg.resolve()
            self.workdir.mkdir(parents=True, exist_ok=True)
        self.placeholders.lab_dir = str(self.workdir)
        self._check_switches()

        from concurrent.futures import ThreadPoolExecutor

        from .pki import CertificateAuthority
        from .tokens import OidcIssuer, TokenIssuer

        cluster = (self.scenario.azure.get("clusters") or [{}])[0]
        region = str(cluster.get("location") or "eastus")
        # RSA key generation dominates start-up and releases the GIL: make the keys side by side.
        with ThreadPoolExecutor(max_workers=4, thread_name_prefix="lab-keys") as pool:
            issuer = pool.submit(TokenIssuer, self.tenant_id)
            oidc = pool.submit(OidcIssuer, f"https://{region}.oic.prod-aks.azure.com/{self.tenant_id}/{uuid.uuid4()}/")
            certs = pool.submit(self._make_certificates)

            def _tls() -> Any:
                ca = CertificateAuthority.create()
                ca.write_bundle(self.ca_bundle)
                return ca.issue_server((LOOPBACK, "localhost")).ssl_context()

            tls = pool.submit(_tls).result()
            self.issuer = issuer.result()
            self.oidc = oidc.result()
            certs.result()
        t = self._step("keys", t)

        self._server = LabServer().start()
        # The workspace store first: ingestion and query are built pointing at it.
        if self.store:
            from .prometheus import PrometheusProcess

            self.receiver = PrometheusProcess.receiver(self.workdir / "prometheus" / "receiver")
            t = self._step("receiver", t)
        self._build_azure_state()
        self._start_azure(tls)
        t = self._step("azure_emulators", t)
        self._seed_workspace()
        t = self._step("seed", t)
        self._start_kube(tls)
        self._write_federated_token()
        t = self._step("kube", t)
        if self.traffic:
            self._start_traffic()
            t = self._step("traffic", t)
        self._write_files()
        self._step("files", t)

    def close(self) -> None:
        """Stop everything (senders first), remove the run directory unless ``keep``. Idempotent."""
        if self._closed:
            return
        self._closed = True
        t0 = time.perf_counter()
        self._stop.set()
        if self.sender is not None:
            with contextlib.suppress(Exception):
                self.sender.stop()
        if self._forwarder is not None:
            proc = self._forwarder
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
                    proc.wait(5)
        if self._log_pump is not None:
            self._log_pump.join(2)
        if self._forwarder_log is not None:
            with contextlib.suppress(OSError):
                self._forwarder_log.close()
        if self._server is not None:
            with contextlib.suppress(Exception):
                self._server.stop()
        if self.receiver is not None:
            with contextlib.suppress(Exception):
                self.receiver.stop()
        for sock in self._reserved:
            with contextlib.suppress(OSError):
                sock.close()
        self._reserved.clear()
        if self._own_dir and not self.keep and self.workdir != Path() and self.workdir.exists():
            shutil.rmtree(self.workdir, ignore_errors=True)
        _LIVE.discard(self)
        self.timings.teardown = time.perf_counter() - t0

    # ------------------------------------------------------------------ materialisation
    def _check_switches(self) -> None:
        from .emulators.azure_common import PERMISSIONS

        known = set(PERMISSIONS) | LAB_PERMISSION_SWITCHES
        for d in self.scenario.azure.get("doctor_denied") or []:
            if d not in known:
                raise InputError(f"{self.scenario.path}: $.azure.doctor_denied: unknown permission switch "
                                 f"{d!r} (known: {', '.join(sorted(known))})")

    def _days(self, days: float) -> datetime:
        return self.now + timedelta(days=float(days))

    def _make_certificates(self) -> None:
        from .pki import make_client_certificate

        for name, spec in (self.scenario.azure.get("certificates") or {}).items():
            nb = self._days(spec.get("valid_from_days", -30))
            na = nb + timedelta(days=float(spec.get("valid_days", 365)))
            cn = str(spec.get("subject") or f"CN={name}").split("=", 1)[1]
            cert = make_client_certificate(cn, nb, na)
            self.certificates[name] = _CertMaterial(name, cert.der, cert.thumbprint, nb, na)
            self.placeholders.cert_thumbprints[name] = cert.thumbprint
            mounted = spec.get("mounted_as")
            if mounted:
                target = self.pod_path(str(mounted))
                target.parent.mkdir(parents=True, exist_ok=True)
                target.touch(mode=0o600)
                if spec.get("content") == "cert_only":
                    target.write_bytes(cert.cert_pem)  # objectType cert: public certificate only
                elif spec.get("format") == "pfx":
                    target.write_bytes(cert.pfx())
                else:
                    target.write_bytes(cert.pem_bundle())

    def _resolve_scope(self, scope: str) -> str:
        sub = f"/subscriptions/{self.subscription_id}"
        if scope.startswith("/"):
            return scope
        if scope == "subscription":
            return sub
        kind, _, name = scope.partition(":")
        st = self.azure_state
        table: dict[str, Any] = {
            "dcr": {d.name: d.id for d in st.dcrs},
            "dce": {d.name: d.id for d in st.dces},
            "workspace": {w.name: w.id for w in st.workspaces},
            "identity": {m.name: m.resource_id(self.subscription_id) for m in st.identities},
            "nodeRg": {c.name: f"{sub}/resourceGroups/{c.node_resource_group}" for c in st.clusters},
        }
        if kind == "rg":
            return f"{sub}/resourceGroups/{name}"
        if name not in table.get(kind, {}):
            raise InputError(f"{self.scenario.path}: $.azure.role_assignments: scope {scope!r}: "
                             f"no {kind} named {name!r}")
        return str(table[kind][name])

    def _principal(self, ref: str) -> tuple[str, str]:
        st = self.azure_state
        found = st.principal_for_client_id(ref)
        if found is not None:
            return found[0], "ServicePrincipal"
        low = ref.lower()
        for mi in [*st.identities, *(c.kubelet_identity for c in st.clusters)]:
            if low in (mi.principal_id.lower(), mi.name.lower()):
                return mi.principal_id, "ServicePrincipal"
        for app in st.applications:
            if low in (app.sp_object_id.lower(), app.display_name.lower()):
                return app.sp_object_id, "ServicePrincipal"
        raise InputError(f"{self.scenario.path}: $.azure.role_assignments: unknown principal {ref!r} "
                         "(give a client id, principal id, identity name or app display name)")

    def _build_azure_state(self) -> None:
        from .azure_state import (
            Application,
            AzureState,
            DataCollectionEndpoint,
            DataCollectionRule,
            FederatedCredential,
            KeyCredential,
            KeyVaultCertificate,
            ManagedCluster,
            ManagedIdentity,
            RoleAssignment,
            Workspace,
        )
        from .pki import x5t_of

        az = self.scenario.azure
        sub = f"/subscriptions/{self.subscription_id}"
        st = AzureState(tenant_id=self.tenant_id, subscription_id=self.subscription_id)
        st.identities = [ManagedIdentity(i["name"], i["resource_group"], i["client_id"], i["principal_id"],
                                         i.get("subscription_id", "")) for i in az.get("identities") or []]
        cert_specs = az.get("certificates") or {}
        for a in az.get("applications") or []:
            creds = []
            for cname in a.get("certificates") or []:
                m = self.certificates[cname]
                creds.append(KeyCredential(
                    key_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{a['app_id']}/{m.thumbprint}")),
                    thumbprint=m.thumbprint, start=m.not_before, end=m.not_after,
                    display_name=str(cert_specs[cname].get("subject") or f"CN={cname}"), cert_der=m.der))
            st.applications.append(Application(a["app_id"], a["object_id"], a["sp_object_id"],
                                                a["display_name"], key_credentials=creds))
        # The doctor's own identity: an app with a lab-only secret (Reader-like, see doctor_denied).
        st.applications.append(Application(
            self.doctor_client_id, str(uuid.uuid4()), str(uuid.uuid4()), DOCTOR_APP_NAME,
            client_secrets=[self._doctor_secret]))
        st.doctor_app_id = self.doctor_client_id
        st.doctor_denied = set(az.get("doctor_denied") or [])
        for name, spec in cert_specs.items():
            kv = spec.get("keyvault")
            if not kv:
                continue
            m = self.certificates[name]
            st.keyvault_certificates.append(KeyVaultCertificate(
                vault=kv["vault"], name=kv["name"], version=uuid.uuid5(uuid.NAMESPACE_URL, m.thumbprint).hex,
                cert_der=m.der, x5t=x5t_of(m.der), not_before=m.not_before, expires=m.not_after,
                enabled=bool(kv.get("enabled", True)), auto_renew=bool(kv.get("auto_renew", True)),
                created=m.not_before))
        st.keyvault_certificates.sort(key=lambda c: c.created)
        for d in az.get("dces") or []:
            st.dces.append(DataCollectionEndpoint(
                id=f"{sub}/resourceGroups/{d['resource_group']}/providers/Microsoft.Insights/"
                   f"dataCollectionEndpoints/{d['name']}",
                name=d["name"], location=d["location"], immutable_id=d["immutable_id"],
                metrics_ingestion_host=""))
        dce_ids = {d.name: d.id for d in st.dces}
        for w in az.get("workspaces") or []:
            ws_id = f"{sub}/resourceGroups/{w['resource_group']}/providers/Microsoft.Monitor/accounts/{w['name']}"
            metrics = {k: ([float(v)] if isinstance(v, int | float) else [float(x) for x in v])
                       for k, v in (w.get("metrics") or {}).items()}
            st.workspaces.append(Workspace(id=ws_id, name=w["name"], location=w["location"],
                                           default_dcr_id="", default_dce_id=dce_ids.get(w["dce"], ""),
                                           query_endpoint="", metrics=metrics))
        for d in az.get("dcrs") or []:
            ws = next((w for w in az.get("workspaces") or [] if w.get("dcr") == d["name"]), None)
            rule = DataCollectionRule(
                id=f"{sub}/resourceGroups/{d['resource_group']}/providers/Microsoft.Insights/"
                   f"dataCollectionRules/{d['name']}",
                name=d["name"], location=d["location"], immutable_id=d["immutable_id"],
                dce_id=dce_ids[d["dce"]], streams=list(d.get("streams") or ["Microsoft-PrometheusMetrics"]),
                workspace_id=next((x.id for x in st.workspaces if ws and x.name == ws["name"]), ""))
            st.dcrs.append(rule)
        for ws_obj, w in zip(st.workspaces, az.get("workspaces") or [], strict=True):
            ws_obj.default_dcr_id = next((r.id for r in st.dcrs if r.name == w["dcr"]), "")
        for c in az.get("clusters") or []:
            k = c["kubelet_identity"]
            st.clusters.append(ManagedCluster(
                id=f"{sub}/resourceGroups/{c['resource_group']}/providers/Microsoft.ContainerService/"
                   f"managedClusters/{c['name']}",
                name=c["name"], location=c["location"], node_resource_group=c["node_resource_group"],
                kubelet_identity=ManagedIdentity(k["name"], c["node_resource_group"], k["client_id"],
                                                 k["principal_id"]),
                oidc_issuer=self.oidc.url if c.get("oidc_issuer", True) else ""))
        issuer_url = st.clusters[0].oidc_issuer if st.clusters else self.oidc.url
        st.federated_credentials = [
            FederatedCredential(client_id=f["client_id"], issuer=f.get("issuer") or issuer_url,
                                subject=f["subject"], audience=f.get("audience") or "api://AzureADTokenExchange")
            for f in az.get("federated_credentials") or []]
        nmi = az.get("nmi") or {}
        st.nmi_running = bool(nmi.get("running", True))
        assigned = nmi.get("assigned", "all")
        st.nmi_assigned_pods = None if assigned == "all" else {tuple(p.split("/", 1)) for p in assigned}
        st.throttle = bool(az.get("throttle", False))
        st.throttle_retry_after_s = int(az.get("throttle_retry_after_s", st.throttle_retry_after_s))
        self.azure_state = st
        for i, ra in enumerate(az.get("role_assignments") or []):
            scope = self._resolve_scope(str(ra["scope"]))
            pid, ptype = self._principal(str(ra["principal"]))
            guid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{scope}|{pid}|{ra['role']}|{i}"))
            st.role_assignments.append(RoleAssignment(
                id=f"{scope}/providers/Microsoft.Authorization/roleAssignments/{guid}", name=guid, scope=scope,
                role_definition_id=st.role_definition_id(ra["role"]), principal_id=pid, principal_type=ptype,
                created_on=self.now - timedelta(minutes=float(ra.get("created_minutes_ago", 240)))))
        # The doctor's read access, as a real tenant would show it.
        doctor_sp = next(a.sp_object_id for a in st.applications if a.app_id == self.doctor_client_id)
        for role, scope in (("Reader", sub), *(("Monitoring Data Reader", w.id) for w in st.workspaces)):
            guid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{scope}|{doctor_sp}|{role}"))
            st.role_assignments.append(RoleAssignment(
                id=f"{scope}/providers/Microsoft.Authorization/roleAssignments/{guid}", name=guid, scope=scope,
                role_definition_id=st.role_definition_id(role), principal_id=doctor_sp,
                principal_type="ServicePrincipal", created_on=self.now - timedelta(days=30)))

    def profile(self) -> dict[str, Any]:
        """The lab's custom cloud profile (what ``cloud.yaml`` holds), shaped per ``azure.cloud``."""
        from ..domain import clouds

        base = clouds.builtin(str(self.scenario.azure.get("cloud") or "public"))
        e = self.endpoints
        return {
            "name": f"lab-{base.name}",
            "authority_host": e["entra"],
            "arm_endpoint": e["arm"],
            "arm_audience": base.arm_audience,
            "graph_endpoint": e["graph"],
            "keyvault_suffix": base.keyvault_suffix,
            "keyvault_url_template": e["keyvault"] + "/{vault}",
            "ingestion_audience": base.ingestion_audience,
            "query_audience": base.query_audience,
            "resource_graph_endpoint": e["arm"],
            "ingestion_host_suffixes": [LOOPBACK],
            "sidecar_names": list(base.sidecar_names),
            "metrics_endpoint_template": e["metrics"],
            "metrics_audience": base.metrics_audience,
            "disable_instance_discovery": True,
            "extra": {"lab": True, "scenario": self.scenario.name, "base_cloud": base.name,
                      "keyvault_url_template": e["keyvault"] + "/{vault}",
                      "metrics_endpoint_template": e["metrics"],
                      "graph_audience": _graph_audience(base.name),
                      "keyvault_audience": _keyvault_audience(base.name)},
        }

    def _start_azure(self, tls: Any) -> None:
        from ..domain import clouds
        from .emulators import arm, entra, graph, imds, ingestion, keyvault, metrics, query

        st = self.azure_state
        base = clouds.builtin(str(self.scenario.azure.get("cloud") or "public"))
        srv = self._server
        pod_identity = self.scenario.variant == "podIdentity"
        # Ports first: apps accept their own lab URL as a token audience (a client may derive the
        # scope from the endpoint it calls), and placeholders need the URLs before the state is final.
        names = ["entra", "arm", "graph", "keyvault", "metrics", "imds",
                 *(f"ingestion:{d.name}" for d in st.dces), *(f"query:{w.name}" for w in st.workspaces)]
        ports = {n: self._reserve_port() for n in names}
        url = {n: f"{'http' if n == 'imds' else 'https'}://{LOOPBACK}:{p}" for n, p in ports.items()}
        authority = url["entra"]
        self.placeholders.authority_host = authority + "/"
        for dce in st.dces:
            dce.metrics_ingestion_host = url[f"ingestion:{dce.name}"].split("://", 1)[1]
            self.placeholders.dce_endpoints[dce.name] = url[f"ingestion:{dce.name}"]
        for rule in st.dcrs:
            dce = next(d for d in st.dces if d.id == rule.dce_id)
            self.placeholders.ingestion_urls[rule.name] = (
                f"https://{dce.metrics_ingestion_host}/dataCollectionRules/{rule.immutable_id}/streams/"
                f"Microsoft-PrometheusMetrics/api/v1/write?api-version={INGESTION_API_VERSION}")
        for ws in st.workspaces:
            ws.query_endpoint = url[f"query:{ws.name}"]

        apps: dict[str, Any] = {
            "entra": entra.make_app(st, self.issuer, workload_issuers={self.oidc.url: self.oidc}),
            "arm": arm.make_app(st, self.issuer, audience=base.arm_audience,
                                extra_audiences=[base.arm_endpoint, url["arm"]]),
            "graph": graph.make_app(st, self.issuer, audience=_graph_audience(base.name),
                                    extra_audiences=[url["graph"]]),
            "keyvault": keyvault.make_app(st, self.issuer, audience=_keyvault_audience(base.name),
                                          authority=authority, extra_audiences=[url["keyvault"]]),
            "metrics": metrics.make_app(st, self.issuer, audience=base.metrics_audience,
                                        extra_audiences=[url["metrics"]]),
        }
        store = self.receiver.url if self.receiver is not None else None
        for dce in st.dces:
            apps[f"ingestion:{dce.name}"] = ingestion.make_app(
                st, self.issuer, dce, receiver_url=store, audience=base.ingestion_audience, authority=authority)
        for ws in st.workspaces:
            apps[f"query:{ws.name}"] = query.make_app(
                st, self.issuer, ws, receiver_url=store or f"http://{LOOPBACK}:{self._reserve_port()}",
                audience=base.query_audience, authority=authority)
        if pod_identity and not st.nmi_running:
            # NMI down: nothing listens behind the iptables redirect -> connection refused.
            self.endpoints["imds"] = url["imds"]
        else:
            apps["imds"] = imds.make_app(st, self.issuer,
                                         pod=self.scenario.prometheus_pod if pod_identity else None)
        for name in names:
            if name not in apps:
                continue
            srv.add(name, apps[name], ssl_context=None if name == "imds" else tls, port=ports[name])
            self.apps[name] = apps[name]
        self.endpoints.update({n: url[n] for n in names})

    def _seed_workspace(self) -> None:
        """Recent samples in the workspace store, as if the cluster had been sending (``workspaces[].data``)."""
        import urllib.request

        from ..remote_write.builders import SeriesSpec, build_write_request
        from ..remote_write.codec import encode

        if self.receiver is None:
            return
        for w in self.scenario.azure.get("workspaces") or []:
            data = w.get("data")
            if not data:
                continue
            start = self.now - timedelta(minutes=float(data.get("from_minutes_ago", 30)))
            end = self.now - timedelta(minutes=float(data.get("to_minutes_ago", 0)))
            step = 30
            stamps = []
            t = start
            while t <= end:
                stamps.append(int(t.timestamp() * 1000))
                t += timedelta(seconds=step)
            if not stamps:
                continue
            cluster = str(data["cluster"])
            base = {"cluster": cluster, "namespace": "monitoring"}
            specs = [
                SeriesSpec({"__name__": "up", "job": "prometheus", "instance": "10.244.0.23:9090", **base},
                           [(s, 1.0) for s in stamps]),
                SeriesSpec({"__name__": "up", "job": "kubelet", "instance": "10.224.0.4:10250", **base},
                           [(s, 1.0) for s in stamps]),
                SeriesSpec({"__name__": "prometheus_tsdb_head_series", "job": "prometheus",
                            "instance": "10.244.0.23:9090", **base},
                           [(s, 48213.0 + i) for i, s in enumerate(stamps)]),
                SeriesSpec({"__name__": "kube_pod_info", "job": "kube-state-metrics", "pod":
                            "prometheus-prometheus-kube-prometheus-prometheus-0", **base},
                           [(s, 1.0) for s in stamps]),
            ]
            body = encode(build_write_request(specs))
            req = urllib.request.Request(self.receiver.write_url, data=body, method="POST", headers={
                "Content-Encoding": "snappy", "Content-Type": "application/x-protobuf",
                "X-Prometheus-Remote-Write-Version": "0.1.0", "User-Agent": "promrw-doctor-lab/seed"})
            with urllib.request.urlopen(req, timeout=10) as resp:
                resp.read()

    def _start_kube(self, tls: Any) -> None:
        from .emulators.kubeapi import DenyRule, KubeState, ProxyTarget, make_app

        sc = self.scenario
        objects = materialise(sc.objects, self.placeholders)
        logs = {k: v for k, v in materialise(dict(sc.kubernetes.get("logs") or {}), self.placeholders).items()
                if v is not None}
        ns, pod = sc.prometheus_pod
        self._sidecar_history = logs.get(f"{ns}/{pod}/{SIDECAR_CONTAINER}", "")
        deny = [DenyRule(d["verb"], d["resource"], d.get("namespace")) for d in sc.kubernetes.get("deny") or []]
        # The "Prometheus pod": what the pod proxy reaches (build info, config, metrics).
        pod_app = _prometheus_pod_app(self)
        ep = self._server.add("prometheus-pod", pod_app)
        self.apps["prometheus-pod"] = pod_app
        self.endpoints["prometheus-pod"] = ep.url
        proxy: dict[str, Any] = {}
        if ns and pod:
            target = ProxyTarget.to(ep.url)
            proxy = {f"{ns}/{pod}:9090": target, f"{ns}/{pod}:http-web": target, f"{ns}/{pod}": target}
        state = KubeState(objects=objects, logs=logs, deny=deny, token=self.kube_token, proxy=proxy)
        try:
            app = make_app(state)
        except ValueError as exc:
            raise InputError(f"{sc.path}: $.kubernetes.objects: {exc}") from None
        self.kube_state = state
        self.apps["kube"] = app
        self.endpoints["kube"] = self._server.add("kube", app, ssl_context=tls).url

    # ------------------------------------------------------------------ traffic
    def forwarder_env(self) -> dict[str, str]:
        """The sidecar's env as the forwarder process gets it: pod paths mapped into the run directory.

        This is also "the pod's identity context" the doctor's canary probe needs
        (``probe_options["identity_env"]``): in the lab the doctor can stand where the sidecar stands.
        """
        env = {k: v for k, v in materialise(self.scenario.sidecar_env(), self.placeholders).items()}
        for key in ("AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_FEDERATED_TOKEN_FILE"):
            if env.get(key, "").startswith("/"):
                env[key] = str(self.pod_path(env[key]))
        env["AZURE_POD_IDENTITY_AUTHORITY_HOST"] = self.endpoints["imds"]
        env["REQUESTS_CA_BUNDLE"] = str(self.ca_bundle)
        return env

    def _write_federated_token(self) -> None:
        """The projected service-account token the kubelet keeps in a workload-identity pod."""
        env = self.scenario.sidecar_env()
        path = env.get("AZURE_FEDERATED_TOKEN_FILE")
        if not path:
            return
        ns, _ = self.scenario.prometheus_pod
        pod = self.scenario.pod() or {}
        sa = str((pod.get("spec") or {}).get("serviceAccountName") or "default")
        token = self.oidc.service_account_token(ns, sa)
        target = self.pod_path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.touch(mode=0o600)
        target.write_text(token, encoding="ascii")  # no trailing newline: it is sent verbatim

    def _start_traffic(self) -> None:
        from .prometheus import PrometheusProcess

        sidecar = self.scenario.sidecar_container()
        if sidecar is not None:
            self._start_forwarder()
        rw_url = self._sender_target()
        labels = {str(k): str(v) for k, v in (self._prometheus_cr().get("spec", {}).get("externalLabels")
                                                or {}).items()}
        self.sender = PrometheusProcess.sender(
            self.workdir / "prometheus" / "sender", rw_url, scrape_interval="5s", external_labels=labels or None,
            extra_remote_write={"remote_timeout": "10s"})

    def _prometheus_cr(self) -> dict[str, Any]:
        found = self.scenario.find("Prometheus")
        return found[0] if found else {}

    def remote_write_urls(self) -> list[str]:
        """``spec.remoteWrite[].url`` of the Prometheus CR (what the operator puts into the config)."""
        return [str(rw.get("url")) for rw in self._prometheus_cr().get("spec", {}).get("remoteWrite") or []
                if rw.get("url")]

    def _sender_target(self) -> str:
        """Where the real sender writes: the forwarder when the CR's URL port is the sidecar's port."""
        urls = self.remote_write_urls()
        listening = self.scenario.sidecar_env().get("LISTENING_PORT", "8081").strip()
        port = _port_of(urls[0]) if urls else None
        if self.forwarder_url and port is not None and str(port) == listening:
            return self.forwarder_url + "/api/v1/write"
        return f"http://{LOOPBACK}:{self._reserve_port()}/api/v1/write"

    def _start_forwarder(self) -> None:
        env = {k: os.environ[k] for k in ("PATH", "LANG", "LC_ALL", "TZ", "PYTHONPATH") if k in os.environ}
        env["HOME"] = str(self.workdir)
        env.update(self.forwarder_env())
        cmd = [sys.executable, "-m", "promrw_doctor", "forward", "--listening-port", "0",
               "--authority-host", self.endpoints["entra"], "--ca-bundle", str(self.ca_bundle),
               "--imds-retries", "0", "--pass-through-4xx",
               "--summary-interval", str(self.summary_interval_s)]
        log_path = self.workdir / "forwarder.log"
        self._forwarder_log = open(log_path, "ab")  # noqa: SIM115 - closed in close()
        self._forwarder = subprocess.Popen(cmd, env=env, stdout=self._forwarder_log, stderr=subprocess.STDOUT,
                                           stdin=subprocess.DEVNULL, cwd=self.workdir, start_new_session=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            text = log_path.read_text(encoding="utf-8", errors="replace")
            m = re.search(r'msg="?ready"?.*?\bport=(\d+)', text)
            if m:
                self.forwarder_url = f"http://{LOOPBACK}:{m.group(1)}"
                break
            if self._forwarder.poll() is not None:
                self.forwarder_exit = self._forwarder.returncode
                break
            time.sleep(0.05)
        self._log_pump = threading.Thread(target=self._pump_sidecar_log, args=(log_path,),
                                          name="lab-sidecar-log", daemon=True)
        self._log_pump.start()

    def _pump_sidecar_log(self, path: Path) -> None:
        """Feed the forwarder's output into the pod's sidecar log, after the scenario's history."""
        ns, pod = self.scenario.prometheus_pod
        key = f"{ns}/{pod}/{SIDECAR_CONTAINER}"
        size = -1
        while True:
            with contextlib.suppress(OSError):
                st = path.stat()
                if st.st_size != size:
                    size = st.st_size
                    live = path.read_text(encoding="utf-8", errors="replace")
                    history = self._sidecar_history
                    if history and not history.endswith("\n"):
                        history += "\n"
                    self.kube_state.logs[key] = history + live
            if self._stop.wait(0.5):
                return

    # ------------------------------------------------------------------ outputs
    def _write_files(self) -> None:
        import yaml

        ca_b64 = base64.b64encode(self.ca_bundle.read_bytes()).decode("ascii")
        kubeconfig = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "aks-lab", "cluster": {"server": self.endpoints["kube"],
                                                         "certificate-authority-data": ca_b64}}],
            "users": [{"name": "promrw-doctor-lab", "user": {"token": self.kube_token}}],
            "contexts": [{"name": CONTEXT, "context": {"cluster": "aks-lab", "user": "promrw-doctor-lab"}}],
            "current-context": CONTEXT,
        }
        _write_private(self.kubeconfig, yaml.safe_dump(kubeconfig, sort_keys=False))
        self.cloud_config.write_text(
            "# promrw-doctor lab: a custom cloud profile whose endpoints are this run's loopback emulators.\n"
            + yaml.safe_dump(self.profile(), sort_keys=False), encoding="utf-8")
        lines = ["# promrw-doctor lab environment (LAB ONLY: the client secret below is a throw-away",
                 f"# credential of the emulated tenant of scenario {self.scenario.name}; never a real secret).",
                 f"# Load with:  set -a; . {self.env_file}; set +a"]
        lines += [f"{k}={_shell_quote(v)}" for k, v in self.env_vars().items()]
        _write_private(self.env_file, "\n".join(lines) + "\n")
        summary = {"scenario": self.scenario.name, "variant": self.scenario.variant,
                   "expected_root_causes": list(self.scenario.expected_root_causes),
                   "endpoints": self.endpoints, "traffic": self.traffic, "forwarder_url": self.forwarder_url,
                   "receiver": self.receiver.url if self.receiver else None,
                   "sender": self.sender.url if self.sender else None, "context": CONTEXT}
        (self.workdir / "lab.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")

    def request_logs(self) -> dict[str, list[tuple[str, str]]]:
        """(method, path) per emulator, in call order: proof of what the doctor touched (and that it only read)."""
        from .emulators import azure_common, entra, imds, ingestion, query

        out: dict[str, list[tuple[str, str]]] = {}
        for name, app in self.apps.items():
            kind = name.split(":")[0]
            rows: list[tuple[str, str]] = []
            if kind == "entra":
                rows = [(r.method, r.path) for r in entra.request_log(app)]
            elif kind == "imds":
                rows = [(r.method, r.path) for r in imds.request_log(app)]
            elif kind == "ingestion":
                rows = [("POST", f"/dataCollectionRules/{r.dcr}/...") for r in ingestion.request_log(app).records]
            elif kind == "query":
                rows = [("GET", r.path) for r in query.request_log(app)]
            elif kind == "kube":
                rows = [(m, p) for m, p in self.kube_state.requests]
            elif kind == "prometheus-pod":
                rows = list(app[_POD_LOG])
            else:
                with contextlib.suppress(KeyError):
                    rows = [(m, p) for m, p in azure_common.request_log(app)]
            out[name] = rows
        return out

    def describe(self) -> str:
        """Multi-line text for ``lab up``: files, endpoints and how to point kubectl and the doctor here."""
        lines = [f"Lab world '{self.scenario.name}' ({self.scenario.variant}) is up in {self.workdir}",
                 f"  {self.scenario.description}", "", "Files:"]
        lines += [f"  {k:13} {v}" for k, v in self.files().items()]
        lines += ["", "Endpoints:"]
        lines += [f"  {k:22} {v}" for k, v in self.endpoints.items()]
        if self.receiver is not None:
            lines.append(f"  {'workspace store':22} {self.receiver.url} (real Prometheus)")
        if self.traffic:
            lines.append(f"  {'forwarder (sidecar)':22} {self.forwarder_url or 'not running (see forwarder.log)'}")
            if self.sender is not None:
                lines.append(f"  {'prometheus (sender)':22} {self.sender.url}")
        lines += ["", "Point kubectl and the doctor at it (another shell):",
                  f"  export KUBECONFIG={self.kubeconfig}",
                  "  kubectl get pods -n monitoring",
                  f"  set -a; . {self.env_file}; set +a",
                  f"  promrw-doctor run --context {CONTEXT} --cloud-config {self.cloud_config}",
                  "", f"Expected root causes: {', '.join(self.scenario.expected_root_causes) or 'none (healthy)'}"]
        return "\n".join(lines)


# --------------------------------------------------------------------------------------- helpers
def _graph_audience(cloud: str) -> str:
    return "https://graph.microsoft.us" if cloud == "usgov" else "https://graph.microsoft.com"


def _keyvault_audience(cloud: str) -> str:
    return "https://vault.usgovcloudapi.net" if cloud == "usgov" else "https://vault.azure.net"


def _port_of(url: str) -> int | None:
    from urllib.parse import urlsplit

    try:
        u = urlsplit(url)
        return u.port or (443 if u.scheme == "https" else 80)
    except ValueError:
        return None


def _shell_quote(value: str) -> str:
    import shlex

    return shlex.quote(value)


def _write_private(path: Path, text: str) -> None:
    path.touch(mode=0o600)
    os.chmod(path, 0o600)
    path.write_text(text, encoding="utf-8")


_POD_LOG: Any = None


def _prometheus_pod_app(world: LabWorld) -> Any:
    """The Prometheus container as the pod proxy reaches it.

    Without traffic it answers from the scenario (``kubernetes.prometheus``); with traffic it
    proxies to the real sender but keeps the scenario's identity: the build info says the
    pod's version (not Debian's 2.42) and the remote-write URL reads as the CR's, not the
    lab's ephemeral port, so version and URL checks see the world the scenario describes.
    """
    import aiohttp
    from aiohttp import web

    global _POD_LOG
    if _POD_LOG is None:
        _POD_LOG = web.AppKey("lab_pod_log", list)
    sc = world.scenario
    prom = dict(sc.kubernetes.get("prometheus") or {})
    version = str(prom.get("version") or "2.51.2")
    cr = world._prometheus_cr()
    app = web.Application()
    app[_POD_LOG] = []

    def config_yaml() -> str:
        import yaml

        spec = cr.get("spec") or {}
        cr_name = cr.get("metadata", {}).get("name", "")
        cfg = {"global": {"scrape_interval": spec.get("scrapeInterval", "30s"),
                          "evaluation_interval": spec.get("evaluationInterval", "30s"),
                          "external_labels": {**(spec.get("externalLabels") or {}),
                                              "prometheus": f"{sc.prometheus_pod[0]}/{cr_name}",
                                              "prometheus_replica": sc.prometheus_pod[1]}},
               "remote_write": [{"url": u, "remote_timeout": "30s", "follow_redirects": True,
                                 "enable_http2": True,
                                 "queue_config": {"capacity": 10000, "max_shards": 50, "min_shards": 1,
                                                  "max_samples_per_send": 2000, "batch_send_deadline": "5s",
                                                  "min_backoff": "30ms", "max_backoff": "5s"}}
                                for u in world.remote_write_urls()]}
        return yaml.safe_dump(cfg, sort_keys=False)

    def rewrite(text: str) -> str:
        if world.sender is not None:
            live = str(world.sender.config.get("remote_write", [{}])[0].get("url", ""))
            urls = world.remote_write_urls()
            if live and urls:
                text = text.replace(live, urls[0])
            text = re.sub(r'(prometheus_build_info\{[^}]*version=")[^"]*(")', rf"\g<1>{version}\g<2>", text)
        return text

    async def handle(request: web.Request) -> web.StreamResponse:
        app[_POD_LOG].append((request.method, request.path_qs))
        path = request.path
        if path == "/api/v1/status/buildinfo":
            return web.json_response({"status": "success", "data": {
                "version": version, "revision": "lab", "branch": "HEAD", "buildUser": "root@lab",
                "buildDate": "20240410-14:05:54", "goVersion": "go1.22.2"}})
        if path == "/api/v1/status/config":
            return web.json_response({"status": "success", "data": {"yaml": config_yaml()}})
        if path == "/api/v1/status/flags":
            flags = {"storage.tsdb.retention.time": "10d", "web.enable-lifecycle": "true",
                     **{str(k): str(v) for k, v in (prom.get("flags") or {}).items()}}
            return web.json_response({"status": "success", "data": flags})
        if path in ("/-/ready", "/-/healthy"):
            return web.Response(text="Prometheus Server is Ready.\n" if path == "/-/ready"
                                else "Prometheus Server is Healthy.\n")
        if world.sender is not None and world.sender.running:
            async with aiohttp.ClientSession() as session, session.get(
                    world.sender.url + request.path_qs, timeout=aiohttp.ClientTimeout(total=10)) as up:
                body = await up.read()
                ctype = up.headers.get("Content-Type", "text/plain")
            if path == "/metrics" or ctype.startswith("text/plain"):
                body = rewrite(body.decode("utf-8", "replace")).encode()
            return web.Response(status=up.status, body=body, headers={"Content-Type": ctype})
        if path == "/metrics" and prom.get("metrics"):
            text = materialise(str(prom["metrics"]), world.placeholders)
            return web.Response(text=text, content_type="text/plain", charset="utf-8",
                                headers={"X-Lab": "canned"})
        return web.Response(status=404, text="404 page not found\n")

    app.router.add_route("GET", "/{tail:.*}", handle)
    return app
