"""Probe stage timings against a healthy lab world: per-stage p50/p95 and end to end vs the 3 s target.

Starts one lab world (default ``healthy-pod-identity``), then runs ``promrw-doctor probe``'s
library call N times in the pod's identity context (discovery through the lab's Kubernetes
API, the workspace's query endpoint found through ARM, exactly as a user's run), and prints
for each stage (token, ingestion, query = time until queryable, the preflight query, the
probe's own end to end, and the whole ``api.probe`` call including discovery and fact
gathering) the median and 95th percentile. Target: a healthy canary confirmed end to end in
at most 3 s.

    .venv/bin/python bench/probe_stages.py [--runs N] [--scenario NAME] [--explicit]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from promrw_doctor import api
from promrw_doctor.core.environ import patched_environ
from promrw_doctor.lab.scenario import load_scenario
from promrw_doctor.lab.world import LabWorld
from promrw_doctor.probe.lab import lab_probe_options, workspace_query_endpoint

TARGET_MS = 3000.0
ROWS = ("token", "ingestion", "query", "preflight", "probe end to end", "api.probe call")


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = max(0, min(len(s) - 1, round(q * (len(s) - 1))))
    return s[k]


def one(world: LabWorld, explicit: bool) -> dict[str, float]:
    kw: dict[str, Any] = {"cloud_config": str(world.cloud_config)}
    if explicit:
        env = world.forwarder_env()
        kw.update(ingestion_url=env["INGESTION_URL"], identity_type=env["IDENTITY_TYPE"],
                  client_id=env.get("AZURE_CLIENT_ID"), cluster=env.get("CLUSTER") or "aks-lab",
                  query_endpoint=workspace_query_endpoint(world))
    else:
        kw.update(kubeconfig=str(world.kubeconfig), context=world.context, subscription=world.subscription_id,
                  options={"subscriptions": [world.subscription_id]},
                  identity_env=lab_probe_options(world)["identity_env"])
    t = time.perf_counter()
    report = api.probe(**kw)
    call_ms = (time.perf_counter() - t) * 1000.0
    res = next(r for r in report.results if r.check_id == "pipeline.canary-probe")
    if res.status.value != "pass":
        raise SystemExit(f"probe did not deliver: {res.status.value}: {res.summary}")
    ev = res.findings[0].evidence
    stages = {s["stage"]: s.get("ms") for s in ev["stages"]}
    return {"token": stages["token"], "ingestion": stages["ingestion"], "query": stages["query"],
            "preflight": ev.get("query_preflight_ms", 0.0), "probe end to end": ev["total_ms"],
            "api.probe call": call_ms}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--scenario", default="healthy-pod-identity")
    ap.add_argument("--explicit", action="store_true", help="explicit sidecar settings instead of discovery")
    args = ap.parse_args()
    t0 = time.perf_counter()
    with LabWorld(load_scenario(args.scenario), traffic=False) as world, patched_environ(world.env_vars()):
        startup = time.perf_counter() - t0
        samples = [one(world, args.explicit) for _ in range(args.runs)]
    mode = "explicit settings" if args.explicit else "discovery, pod identity context"
    print(f"probe stages: {args.scenario} ({mode}), {args.runs} runs (lab start {startup:.2f}s)")
    print(f"{'stage':<18} {'p50 ms':>9} {'p95 ms':>9} {'max ms':>9}")
    for row in ROWS:
        vals = [s[row] for s in samples if s.get(row) is not None]
        print(f"{row:<18} {pct(vals, 0.5):>9.1f} {pct(vals, 0.95):>9.1f} {max(vals):>9.1f}")
    e2e = [s["probe end to end"] for s in samples]
    call = [s["api.probe call"] for s in samples]
    first = e2e[0]
    print(f"first probe end to end {first:.0f} ms")
    ok = max(e2e) <= TARGET_MS
    print(f"end to end p95 {pct(e2e, 0.95):.0f} ms vs target {TARGET_MS:.0f} ms: "
          f"{pct(e2e, 0.95) / TARGET_MS:.3f} of budget ({'OK' if ok else 'OVER'}; worst {max(e2e):.0f} ms)")
    print(f"whole api.probe call p95 {pct(call, 0.95):.0f} ms ({pct(call, 0.95) / TARGET_MS:.3f} of 3 s); "
          f"median {statistics.median(call):.0f} ms")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
