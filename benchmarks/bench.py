"""`make bench`: wall time and peak memory of `valohai-cfn build` (both formats), in fresh processes.

Targets on the project's 2-core machine: under 1 s wall and 150 MiB peak. For scale, the original
CDK app's `cdk synth` of the same stack takes about 9 s and 530 MiB there.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUNS = 7
WALL_TARGET_S = 1.0
PEAK_TARGET_MIB = 150.0
BUILD = [str(Path(sys.executable).parent / "valohai-cfn"), "build", "--format", "all", "--output-dir"]


def one_build(output_dir: str) -> tuple[float, float]:
    """(wall seconds, peak resident MiB) of one build in a new process."""
    start = time.perf_counter()
    process = subprocess.Popen([*BUILD, output_dir], stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit("valohai-cfn build failed")
    return wall, usage.ru_maxrss / 1024  # ru_maxrss is in KiB on Linux


def main() -> int:
    output_dir = tempfile.mkdtemp(prefix="valohai-cfn-bench-")
    try:
        one_build(output_dir)  # warm the file-system cache and .pyc files
        runs = [one_build(output_dir) for _ in range(RUNS)]
    finally:
        shutil.rmtree(output_dir)
    wall = statistics.median(w for w, _ in runs)
    peak = max(p for _, p in runs)
    print(f"valohai-cfn build ({RUNS} runs): median wall {wall:.3f} s (target < {WALL_TARGET_S} s), "
          f"peak RSS {peak:.1f} MiB (target < {PEAK_TARGET_MIB:.0f} MiB)")  # fmt: skip
    over = wall >= WALL_TARGET_S or peak >= PEAK_TARGET_MIB
    print("over target" if over else "within target")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
