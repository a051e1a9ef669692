"""Test setup: the project root on sys.path, and a fixed date for every test.

The program judges the Kubernetes version by today's date against the bundled calendar; the suite
runs on the day the calendar was last updated, so its verdicts do not drift with the real date.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import time_machine

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from components.facts.versions import calendar  # noqa: E402


@pytest.fixture(autouse=True)
def calendar_day() -> Iterator[None]:
    with time_machine.travel(calendar().updated.isoformat() + "T12:00:00Z", tick=False):
        yield
