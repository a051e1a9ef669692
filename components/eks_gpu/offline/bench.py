"""`make bench`: how the offline plan's time and memory grow with the number of GPU pools.

Each size runs in a fresh process (as `make plan` does), on a generated stack file of N pools
next to the dev stack's settings: wall time and peak memory (max RSS) of the whole process; then
once more with ``--against`` the first run's JSON (a review of an unchanged stack: the whole diff).

    python -m eks_gpu.offline.bench [--sizes 1,10,50]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import yaml

from .engine import REPO

POOL_TYPES = ("g5.xlarge", "g6.xlarge", "g5.12xlarge", "p5.48xlarge")
"""Pool instance types, taken in turn: types with 1, 4 and 8 GPUs, all offered in us-east-1a/b/c."""


def stack_with_pools(pools: int) -> dict:
    """The dev stack's config with ``pools`` GPU pools instead of its own."""
    config = yaml.safe_load((REPO / "Pulumi.dev.yaml").read_text())
    body = config["config"]
    body["eks-gpu:vpc"] = {"cidr": "10.0.0.0/16", "availabilityZones": ["us-east-1a", "us-east-1b", "us-east-1c"]}
    body["eks-gpu:gpuNodeGroups"] = {
        f"pool{i:02d}": {"instanceTypes": [POOL_TYPES[i % len(POOL_TYPES)]], "minSize": 0, "maxSize": 2}
        for i in range(pools)
    }
    body["eks-gpu:gpuPod"] = {"enabled": True, "nodeGroup": "pool00"}
    return config


def measure(pools: int, folder: Path, *more: str) -> tuple[float, float, int]:
    """(wall seconds, peak MiB, resources) of one `eks_gpu.offline.plan --json` process for ``pools`` pools;
    its JSON is left in ``folder`` as ``plan<pools>.json``."""
    stack_file = folder / f"Pulumi.bench{pools}.yaml"
    stack_file.write_text(yaml.safe_dump(stack_with_pools(pools)))
    start = time.perf_counter()
    with subprocess.Popen(
        [sys.executable, "-m", "eks_gpu.offline.plan", "--stack-file", str(stack_file), "--json", *more],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    ) as child:
        out = child.stdout.read() if child.stdout else ""
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    if child.returncode != 0:
        raise RuntimeError(f"the plan of {pools} pools failed with exit code {child.returncode}")
    (folder / f"plan{pools}.json").write_text(out)
    return wall, usage.ru_maxrss / 1024, len(json.loads(out)["resources"])


def main(argv: Sequence[str] | None = None) -> int:
    """Print time and peak memory per pool count."""
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default="1,10,50", help="pool counts, comma-separated (default 1,10,50)")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"{'pools':>5}  {'resources':>9}  {'wall s':>7}  {'peak MiB':>8}  {'ms/resource':>11}  {'--against s':>11}")
    with tempfile.TemporaryDirectory() as tmp:
        for pools in sizes:
            wall, peak, count = measure(pools, Path(tmp))
            old = Path(tmp) / f"old{pools}.json"
            (Path(tmp) / f"plan{pools}.json").rename(old)
            against, _, _ = measure(pools, Path(tmp), "--against", str(old))
            per_resource = 1000 * wall / max(count, 1)
            print(f"{pools:>5}  {count:>9}  {wall:>7.2f}  {peak:>8.0f}  {per_resource:>11.2f}  {against:>11.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
