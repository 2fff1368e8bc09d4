"""List latency of the lab Kubernetes API server: a small scenario vs 5 000 pods + 1 000 bindings.

Prints, per request, the median server time (handler only, measured by a middleware) and the
median HTTP round trip (raw ``requests``, no JSON parsing), plus the ``kubernetes`` client's
own time for the same list (dominated by its pydantic models, not by the server). Budget:
a label-selected list on the large state should stay well under 100 ms of server time.
"cold" is the first request for a path, which also serialises each object it returns once.

    .venv/bin/python bench/kubeapi_list.py [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import requests
from aiohttp import web

from promrw_doctor.lab.emulators.kubeapi import KubeState, make_app
from promrw_doctor.lab.server import LabServer

TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


def pod(ns: str, name: str, labels: dict[str, str], node: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": labels,
                     "creationTimestamp": "2024-05-01T10:00:00Z"},
        "spec": {"nodeName": node, "containers": [
            {"name": "prometheus", "image": "quay.io/prometheus/prometheus:v2.51.2",
             "ports": [{"containerPort": 9090}]},
            {"name": "prom-remotewrite", "image": "mcr.microsoft.com/azuremonitor/prometheus/promdev/"
             "prom-remotewrite:prom-remotewrite-20240507.1",
             "env": [{"name": "IDENTITY_TYPE", "value": "aadApplication"}]}]},
        "status": {"phase": "Running", "podIP": "10.244.0.5", "containerStatuses": [
            {"name": "prometheus", "ready": True, "restartCount": 0, "state": {"running": {}}},
            {"name": "prom-remotewrite", "ready": True, "restartCount": 1, "state": {"running": {}}}]},
    }


def binding(ns: str, name: str, team: str) -> dict[str, Any]:
    return {"apiVersion": "aadpodidentity.k8s.io/v1", "kind": "AzureIdentityBinding",
            "metadata": {"name": name, "namespace": ns, "labels": {"team": team}},
            "spec": {"azureIdentity": f"{name}-id", "selector": name}}


def small_state() -> KubeState:
    objects = [pod("monitoring", f"prometheus-{i}", {"app": "prometheus", "aadpodidbinding": "prom-rw"},
                   "aks-node-0") for i in range(2)]
    objects += [pod("kube-system", f"nmi-{i}", {"component": "nmi", "tier": "node"}, f"aks-node-{i}")
                for i in range(3)]
    objects += [binding("monitoring", "prom-rw-binding", "obs")]
    return KubeState(objects=objects)


def large_state(validate: bool) -> KubeState:
    apps = ["prometheus", "grafana", "api", "web", "worker"]
    objects = [pod(f"ns-{i % 50:02d}", f"pod-{i:05d}",
                   {"app": apps[i % len(apps)], "tier": "backend" if i % 2 else "frontend",
                    "aadpodidbinding": f"b-{i % 1000}"}, f"aks-node-{i % 20}")
               for i in range(5000)]
    objects += [binding(f"ns-{i % 50:02d}", f"binding-{i:04d}", "obs" if i % 10 == 0 else "app")
                for i in range(1000)]
    return KubeState(objects=objects, validate=validate)


def timing_middleware(sink: list[float]) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def mw(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
                 ) -> web.StreamResponse:
        t0 = time.perf_counter()
        resp = await handler(request)
        sink.append(time.perf_counter() - t0)
        return resp
    return mw


def measure(url: str, path: str, sink: list[float], repeat: int, accept: str = "application/json",
            ) -> tuple[float, float, int, int]:
    server, wall = [], []
    size = count = 0
    with requests.Session() as s:
        for _ in range(repeat):
            sink.clear()
            t0 = time.perf_counter()
            r = s.get(url + path, headers={"Accept": accept}, timeout=60)
            wall.append(time.perf_counter() - t0)
            server.append(sink[-1])
            r.raise_for_status()
            size = len(r.content)
        body = json.loads(r.content)
        count = len(body.get("items", body.get("rows", [])))
    return statistics.median(server) * 1000, statistics.median(wall) * 1000, count, size


def client_list(url: str, namespace: str | None, selector: str, repeat: int) -> float:
    from kubernetes import client, config

    with tempfile.TemporaryDirectory() as d:
        kc = Path(d, "kubeconfig")
        kc.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": "lab", "cluster": {"server": url}}], "users": [{"name": "u", "user": {}}],
            "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": "u"}}], "current-context": "lab"}))
        api = config.new_client_from_config(config_file=str(kc))
        core = client.CoreV1Api(api)
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            if namespace:
                core.list_namespaced_pod(namespace, label_selector=selector)
            else:
                core.list_pod_for_all_namespaces(label_selector=selector)
            times.append(time.perf_counter() - t0)
        api.close()
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()

    t0 = time.perf_counter()
    make_app(large_state(validate=True))
    build_validated = time.perf_counter() - t0
    t0 = time.perf_counter()
    make_app(large_state(validate=False))
    build_plain = time.perf_counter() - t0
    print(f"make_app, 5000 pods + 1000 bindings: {build_validated * 1000:.0f} ms with client-model validation, "
          f"{build_plain * 1000:.0f} ms with validate=False")

    cases = [
        ("small", "pods in ns, label selector", "/api/v1/namespaces/monitoring/pods?labelSelector=app%3Dprometheus",
         "application/json"),
        ("small", "all pods", "/api/v1/pods", "application/json"),
        ("small", "all pods, Table", "/api/v1/pods?limit=500", TABLE),
        ("large", "all pods, labelSelector app=grafana", "/api/v1/pods?labelSelector=app%3Dgrafana",
         "application/json"),
        ("large", "all pods, set-based selector",
         "/api/v1/pods?labelSelector=app%20in%20(prometheus%2Cweb)%2Ctier!%3Dfrontend", "application/json"),
        ("large", "pods in one ns, aadpodidbinding=b-7",
         "/api/v1/namespaces/ns-07/pods?labelSelector=aadpodidbinding%3Db-7", "application/json"),
        ("large", "all pods, fieldSelector spec.nodeName",
         "/api/v1/pods?fieldSelector=spec.nodeName%3Daks-node-3", "application/json"),
        ("large", "all pods, no selector (5000 items)", "/api/v1/pods", "application/json"),
        ("large", "all pods, Table, limit=500 (kubectl)", "/api/v1/pods?limit=500", TABLE),
        ("large", "all bindings, labelSelector team=obs",
         "/apis/aadpodidentity.k8s.io/v1/azureidentitybindings?labelSelector=team%3Dobs", "application/json"),
    ]
    states = {"small": small_state(), "large": large_state(validate=False)}
    budget_ms = 100.0
    print(f"\n{'state':<6} {'request':<42} {'items':>6} {'bytes':>9} {'server ms':>10} {'http ms':>9} "
          f"{'/budget':>8} {'cold ms':>8}")
    with LabServer() as lab:
        urls: dict[str, tuple[str, list[float]]] = {}
        for name, state in states.items():
            sink: list[float] = []
            app = make_app(state)
            app.middlewares.append(timing_middleware(sink))
            urls[name] = (lab.add(name, app).url, sink)
        for state_name, label, path, accept in cases:
            url, sink = urls[state_name]
            cold_ms = measure(url, path, sink, 1, accept)[0]  # builds the per-object JSON/table caches
            server_ms, wall_ms, count, size = measure(url, path, sink, args.repeat, accept)
            print(f"{state_name:<6} {label:<42} {count:>6} {size:>9} {server_ms:>10.2f} {wall_ms:>9.2f} "
                  f"{server_ms / budget_ms:>8.3f} {cold_ms:>8.1f}")
        url = urls["large"][0]
        print("\nkubernetes client (includes its pydantic deserialisation):")
        for label, ns, sel in (("list_pod_for_all_namespaces(app=grafana)", None, "app=grafana"),
                               ("list_namespaced_pod(ns-07, aadpodidbinding=b-7)", "ns-07", "aadpodidbinding=b-7")):
            print(f"  {label:<52} {client_list(url, ns, sel, max(3, args.repeat // 3)):>9.1f} ms")


if __name__ == "__main__":
    main()
