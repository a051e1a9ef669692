"""`make mutation SAMPLE=N`: run mutmut on a seeded random sample of N mutants and score it.

A full run tests each of ~6,300 mutants against the ~90 tests that reach its function (every test
runs the whole program), hours of CPU; a sample gives the score with a known error instead. The
sample is the N mutants whose names hash lowest under a seed, drawn from every mutant mutmut generates
over ``eks_gpu`` (``components/eks_gpu``): two runs test the same mutants, except in functions changed in
between (mutmut numbers a function's mutants afresh), so a before/after comparison is like for like.

Usage (from the repository root, mutmut installed from requirements-mutation.txt)::

    python -m tests.mutation_sample --sample 100 [--seed 12] [--max-children 2]
    python -m tests.mutation_sample --sample 100 --score-only   # the last run's results again

A run can be stopped: the next one runs only the sampled mutants that have no result yet (``--rerun``
runs them all again). ``--sample 50`` after a stopped ``--sample 100`` is the first half of its draw.

It prints the sampled mutants that survived (``mutmut show NAME`` shows the change) and the score:
killed / (sample - no tests), with a 95 % Wilson interval.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import math
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

MUTANTS = Path("mutants")


def generate() -> None:
    """Let mutmut copy the tree and write its mutants (its own first step, without running tests)."""
    # imported by name: mutmut is in requirements-mutation.txt only, so mypy in CI does not see it
    mm = importlib.import_module("mutmut.__main__")
    importlib.import_module("mutmut.mutation.trampoline").set_mutant_under_test("mutant_generation")
    MUTANTS.mkdir(exist_ok=True)
    mm.copy_src_dir()
    mm.copy_also_copy_files()
    mm.setup_source_paths()
    mm.store_lines_covered_by_tests()
    mm.create_mutants(os.cpu_count() or 2)


def bytecode_cached() -> dict[str, str]:
    """The environment without PYTHONDONTWRITEBYTECODE: every run of the program imports
    ``components/`` afresh, and mutmut's copies of its modules (each mutant a function of its own) are
    ten times the source, so compiling them on every import made a run four times slower here."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def exit_codes() -> dict[str, int | None]:
    """Every mutant's name and its last result (None: not run yet), from mutmut's .meta files."""
    found: dict[str, int | None] = {}
    for meta in sorted(MUTANTS.glob("src/eks_gpu/**/*.py.meta")):
        found.update(json.loads(meta.read_text())["exit_code_by_key"])
    return found


def rank(name: str, seed: int) -> str:
    """A mutant's place in the draw: a hash of its name, so a change elsewhere in ``components/``
    (which adds or removes other mutants) leaves the rest of the sample as it was."""
    return hashlib.sha256(f"{seed}:{name}".encode()).hexdigest()


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95 % Wilson score interval of k successes in n trials."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=100, help="how many mutants (default 100)")
    parser.add_argument("--seed", type=int, default=12, help="the sample's seed (default 12)")
    parser.add_argument("--max-children", type=int, default=2)
    parser.add_argument("--score-only", action="store_true", help="do not run; score the last results")
    parser.add_argument("--rerun", action="store_true", help="run mutants that have a result again too")
    args = parser.parse_args(argv)

    if not exit_codes():
        generate()
    before = exit_codes()
    names = sorted(before)
    sample = sorted(sorted(names, key=lambda n: rank(n, args.seed))[: args.sample])
    # mutmut runs every mutant it is named, so name only those without a result (mutmut resets the
    # results of changed code and settings itself): a stopped run goes on where it was.
    todo = [n for n in sample if args.rerun or before[n] is None]
    if todo and not args.score_only:
        run = [sys.executable, "-m", "mutmut", "run", "--max-children", str(args.max_children), *todo]
        subprocess.run(run, check=False, env=bytecode_cached())

    status_by_exit_code = importlib.import_module("mutmut.stats").status_by_exit_code
    codes = exit_codes()
    status = {name: status_by_exit_code[codes.get(name)] for name in sample}
    counts = Counter(status.values())
    scored = len(sample) - counts["no tests"] - counts["not checked"]
    killed = counts["killed"] + counts["timeout"] + counts["caught by type check"]
    print(
        f"\n{len(sample)} of {len(names)} mutants sampled (seed {args.seed}): "
        + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    )
    for name in sample:
        if status[name] not in ("killed", "timeout", "caught by type check"):
            print(f"  {status[name]:10} {name}")
    lo, hi = wilson(killed, scored)
    if scored:
        print(f"score: {killed}/{scored} killed = {killed / scored:.0%} (95 % interval {lo:.0%}-{hi:.0%})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
