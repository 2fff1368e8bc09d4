"""Lab start-up and teardown times per scenario (a figure, not a timed test).

    .venv/bin/python bench/lab_startup.py                  # every scenario, with the Prometheus store
    .venv/bin/python bench/lab_startup.py role-missing ... # only these
    .venv/bin/python bench/lab_startup.py --no-store       # no Prometheus process (what fast tests use)
    .venv/bin/python bench/lab_startup.py --traffic healthy-pod-identity

The first world of the process pays the imports (aiohttp, cryptography, kubernetes
emulators); it is reported separately as "cold". The budget is ~3 s per world without
traffic; the ratio column says how far under (or over) that budget each start-up is.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

BUDGET_S = 3.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenarios", nargs="*")
    parser.add_argument("--no-store", action="store_true", help="start no Prometheus receiver")
    parser.add_argument("--traffic", action="store_true", help="also start the forwarder and a sender")
    parser.add_argument("--repeat", type=int, default=1, help="worlds per scenario")
    args = parser.parse_args()

    t_import = time.perf_counter()
    from promrw_doctor.lab.scenario import list_scenarios, load_scenario
    from promrw_doctor.lab.world import LabWorld

    import_s = time.perf_counter() - t_import
    names = args.scenarios or [i.name for i in list_scenarios(strict=True)]
    print(f"imports: {import_s:.3f}s   store: {not args.no_store}   traffic: {args.traffic}   "
          f"budget: {BUDGET_S:.1f}s per world")
    print(f"{'scenario':30} {'start s':>8} {'ratio':>6} {'teardown s':>10}  slowest steps")
    starts: list[float] = []
    teardowns: list[float] = []
    first = True
    for name in names:
        scenario = load_scenario(name)
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            world = LabWorld(scenario, store=not args.no_store, traffic=args.traffic or None)
            world.start()
            start = time.perf_counter() - t0
            world.close()
            teardown = world.timings.teardown
            steps = sorted(world.timings.steps.items(), key=lambda kv: -kv[1])[:3]
            label = f"{name} (cold)" if first else name
            print(f"{label:30} {start:8.3f} {start / BUDGET_S:6.2f} {teardown:10.3f}  "
                  + ", ".join(f"{k} {v:.3f}" for k, v in steps))
            if not first:
                starts.append(start)
                teardowns.append(teardown)
            first = False
    if starts:
        print(f"\nwarm start-up: median {statistics.median(starts):.3f}s, max {max(starts):.3f}s "
              f"({max(starts) / BUDGET_S:.2f} of budget); teardown median {statistics.median(teardowns):.3f}s, "
              f"max {max(teardowns):.3f}s over {len(starts)} worlds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
