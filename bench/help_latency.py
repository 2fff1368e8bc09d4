"""How fast does `promrw-doctor --help` answer? (target: <= 0.3 s). Prints figures; asserts nothing.

Runs the installed console script (and `python -m promrw_doctor`) N times in fresh
processes and prints min / median / max wall time, plus which heavy modules got imported.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time

RUNS = int(os.environ.get("BENCH_RUNS", "15"))
HEAVY = ("kubernetes", "azure", "aiohttp", "requests", "google.protobuf", "cryptography", "yaml")


def measure(cmd: list[str]) -> list[float]:
    times = []
    for _ in range(RUNS):
        t0 = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    exe = shutil.which("promrw-doctor", path=os.path.dirname(sys.executable)) or shutil.which("promrw-doctor")
    cmds = {"python -m promrw_doctor --help": [sys.executable, "-m", "promrw_doctor", "--help"]}
    if exe:
        cmds["promrw-doctor --help"] = [exe, "--help"]
    for name, cmd in cmds.items():
        t = measure(cmd)
        print(f"{name:34s} min {min(t)*1000:6.1f} ms  median {statistics.median(t)*1000:6.1f} ms  "
              f"max {max(t)*1000:6.1f} ms  (n={RUNS}, target <= 300 ms, "
              f"median/target = {statistics.median(t)/0.3:.2f})")
    probe = ("import sys, promrw_doctor.cli as c\n"
             "from click.testing import CliRunner\n"
             "CliRunner().invoke(c.cli, ['--help'])\n"
             f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    print(f"heavy modules imported by --help: {out.stdout.strip()}")


if __name__ == "__main__":
    main()
