"""``promrw-doctor run`` against the lab: the healthy scenario vs the same cluster grown to 5 000 pods.

Prints, for the lab's healthy pod-identity world:

* the library diagnosis time (``api.diagnose``, every live check, no probe) on the small
  cluster and after adding 5 000 pods (many namespaces, none of them Prometheus) and 1 000
  AzureIdentityBindings, the ratio (budget: <= 2x), and the Kubernetes API requests of one
  run on each (budget: no per-pod calls — the count must not grow with the cluster; a list
  may take one more page);
* the wall time of a full ``promrw-doctor run`` CLI invocation (new process: imports,
  kubeconfig, discovery, every live check, rendering) on the healthy world (budget: <= 3 s).

    .venv/bin/python bench/run_scale.py [--repeat N] [--scenario NAME]

Exit status 1 when a budget is missed, so the script can gate CI if wanted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from promrw_doctor import api  # noqa: E402
from promrw_doctor.core.environ import patched_environ  # noqa: E402
from promrw_doctor.lab.scenario import load_scenario  # noqa: E402
from promrw_doctor.lab.world import LabWorld  # noqa: E402

EXTRA_PODS = 5000
EXTRA_BINDINGS = 1000
EXTRA_NAMESPACES = 50
RATIO_BUDGET = 2.0
CLI_BUDGET_S = 3.0


def filler_pod(i: int) -> dict[str, Any]:
    """An ordinary workload pod (not Prometheus): what makes a real cluster big."""
    ns = f"team-{i % EXTRA_NAMESPACES:02d}"
    app = f"svc-{i % 97}"
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": f"{app}-{i:05d}", "namespace": ns,
                     "labels": {"app": app, "app.kubernetes.io/name": app, "pod-template-hash": f"{i:08x}"}},
        "spec": {"nodeName": f"aks-nodepool1-31415926-vmss{i % 40:06d}", "serviceAccountName": "default",
                 "containers": [{"name": "app", "image": f"contoso.azurecr.io/{app}:1.{i % 9}.0",
                                 "ports": [{"containerPort": 8080}],
                                 "env": [{"name": "LOG_LEVEL", "value": "info"}]}]},
        "status": {"phase": "Running", "podIP": f"10.244.{i // 250}.{i % 250}",
                   "containerStatuses": [{"name": "app", "ready": True, "restartCount": 0,
                                          "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}]},
    }


def filler_binding(i: int) -> dict[str, Any]:
    ns = "monitoring" if i % 10 == 0 else f"team-{i % EXTRA_NAMESPACES:02d}"
    return {"apiVersion": "aadpodidentity.k8s.io/v1", "kind": "AzureIdentityBinding",
            "metadata": {"name": f"binding-{i:04d}", "namespace": ns},
            "spec": {"azureIdentity": f"identity-{i:04d}", "selector": f"selector-{i:04d}"}}


def grow(world: LabWorld) -> None:
    state = world.kube_state
    state.objects.extend(filler_pod(i) for i in range(EXTRA_PODS))
    state.objects.extend(filler_binding(i) for i in range(EXTRA_BINDINGS))
    state.changed()


def kube_requests(world: LabWorld) -> list[tuple[str, str]]:
    return list(world.kube_state.requests)


def distinct_reads(requests: list[tuple[str, str]]) -> set[str]:
    """Request paths with the paging token removed: the same set on any cluster size means no per-pod calls."""
    import re

    return {re.sub(r"[&?]continue=[^&]*", "", p) for _, p in requests}


def one_run(world: LabWorld) -> tuple[float, int, list[str]]:
    """(seconds, kube API requests, root-cause codes) of one in-process diagnosis."""
    before = len(kube_requests(world))
    kwargs = {"kubeconfig": str(world.kubeconfig), "context": world.context, "cloud_config": str(world.cloud_config),
              "subscription": world.subscription_id, "options": {"subscriptions": [world.subscription_id]}}
    with patched_environ(world.env_vars()):
        t0 = time.perf_counter()
        report = api.diagnose(**kwargs)
        dt = time.perf_counter() - t0
    return dt, len(kube_requests(world)) - before, sorted({rc.code for rc in report.root_causes})


def timed(world: LabWorld, repeat: int) -> tuple[float, int, list[str]]:
    one_run(world)  # warm-up: imports, emulator index, TLS session
    runs = [one_run(world) for _ in range(repeat)]
    return statistics.median(r[0] for r in runs), runs[-1][1], runs[-1][2]


def cli_run(world: LabWorld, repeat: int) -> tuple[float, int]:
    """Median wall time and exit code of ``python -m promrw_doctor run`` (a fresh process each time)."""
    env = {**os.environ, **world.env_vars(), "NO_COLOR": "1", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "promrw_doctor", "run", "--kubeconfig", str(world.kubeconfig), "--context",
           world.context, "--cloud-config", str(world.cloud_config), "--subscription", world.subscription_id,
           "-o", "json"]
    times, code = [], 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, timeout=60)
        times.append(time.perf_counter() - t0)
        code = proc.returncode
    return statistics.median(times), code


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--scenario", default="healthy-pod-identity")
    args = parser.parse_args()
    scenario = load_scenario(args.scenario)
    with tempfile.TemporaryDirectory() as tmp, LabWorld(scenario, Path(tmp) / "lab", traffic=False,
                                                        store=False) as world:
        cli_s, cli_code = cli_run(world, max(1, args.repeat // 2))
        small_s, small_req, small_rc = timed(world, args.repeat)
        small_paths = distinct_reads(kube_requests(world)[-small_req:])
        grow(world)
        large_s, large_req, large_rc = timed(world, args.repeat)
        paths = [p for _, p in kube_requests(world)[-large_req:]]
        large_paths = distinct_reads(kube_requests(world)[-large_req:])
    ratio = large_s / small_s if small_s else float("inf")
    print(f"scenario {args.scenario}: root causes small={small_rc} large={large_rc}")
    print(f"diagnose, small cluster:                    {small_s * 1000:8.1f} ms  "
          f"({small_req} Kubernetes API requests)")
    print(f"diagnose, +{EXTRA_PODS} pods +{EXTRA_BINDINGS} bindings:       {large_s * 1000:8.1f} ms  "
          f"({large_req} Kubernetes API requests)")
    print(f"ratio large/small:                          {ratio:8.2f}x  (budget <= {RATIO_BUDGET:.0f}x)")
    print(f"full CLI run (new process, -o json):        {cli_s * 1000:8.1f} ms  (exit {cli_code}; budget <= "
          f"{CLI_BUDGET_S:.0f} s; exit 3 = some check unknown/error)")
    per_pod = [p for p in paths if "/pods/" in p and "prometheus-prometheus" not in p and "/nmi-" not in p]
    grown = sorted(large_paths - small_paths)
    print(f"distinct reads small/large:                 {len(small_paths)} / {len(large_paths)}  "
          f"(new reads on the large cluster: {len(grown)}; the other extra requests are continue= pages)")
    print(f"reads of the 5 000 filler pods:             {len(per_pod)}")
    ok = ratio <= RATIO_BUDGET and cli_s <= CLI_BUDGET_S and not per_pod and not grown
    print("budgets:", "met" if ok else "MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
