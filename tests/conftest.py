"""Test setup: the project root (for ``tests``) and the source root ``components/`` (for ``eks_gpu``,
also installed editable by requirements.txt) on sys.path, and a fixed date for every test.

The program judges the Kubernetes version by today's date against the bundled calendar; the suite
runs on the day the calendar was last updated, so its verdicts do not drift with the real date.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import time_machine

ROOT = Path(__file__).resolve().parent.parent
# Under `make mutation` ROOT is mutmut's mutants/ copy, whose package is in src/ (pyproject [tool.mutmut]).
SOURCE_ROOT = ROOT / "src" if (ROOT / "src" / "eks_gpu").is_dir() else ROOT / "components"
for path in (ROOT, SOURCE_ROOT):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))
if "MUTANT_UNDER_TEST" in os.environ:
    # The suite's child processes (`make plan` in tests/helpers.py run_plan) import the mutants too.
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SOURCE_ROOT), os.environ.get("PYTHONPATH")]))

from eks_gpu.facts.versions import calendar  # noqa: E402

from tests.helpers import mutmut_is_mapping  # noqa: E402


def pytest_collection_finish(session: pytest.Session) -> None:
    """Once the tests are collected, everything imported so far (moto's catalogue, the SDKs, the
    schemas: most of the heap, and alive to the end) leaves the collector's view (``gc.freeze``), and
    the youngest generation is collected every 100,000 allocations instead of 700.

    A program run allocates hundreds of thousands of short-lived objects, and CPython's default
    thresholds (gc.get_threshold()) made it traverse the long-lived heap again and again: this takes
    about 30 % off the suite. Nothing depends on when garbage goes; the engine collects what an
    aborted run leaves itself (eks_gpu.offline.engine._forget_aborted_run).
    """
    del session
    gc.collect()
    gc.freeze()
    gc.set_threshold(100_000, 50, 1000)


@pytest.fixture(autouse=True)
def calendar_day() -> Iterator[None]:
    with time_machine.travel(calendar().updated.isoformat() + "T12:00:00Z", tick=False):
        yield


@pytest.fixture(autouse=True)
def fresh_caches_while_mutmut_maps() -> None:
    """While mutmut maps tests to functions (``MUTANT_UNDER_TEST=stats``), empty ``components/``'s
    caches before each test, so every test that needs a cached result is seen computing it.

    Otherwise only the first test to call, say, ``vcpu_quotas()`` would be mapped to ``families_in``,
    and a mutant there would be run against that test alone (docs/testing.md "Mutation testing").
    """
    if not mutmut_is_mapping():
        return
    for name, module in list(sys.modules.items()):
        if name.startswith("eks_gpu."):
            for value in vars(module).values():
                if callable(getattr(value, "cache_clear", None)) and getattr(value, "__module__", None) == name:
                    value.cache_clear()
