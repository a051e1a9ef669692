"""EKS Kubernetes version calendar: standard support, extended support, and what each costs.

EKS supports a version for 14 months at the standard control-plane rate, then 12 more months of
extended support, which is on by default and bills the control plane at six times the rate. The
calendar is bundled (``data/eks_versions.json``, with its source and date) so the program can warn
before a stack quietly starts costing more, without calling AWS.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path

_CALENDAR_FILE = Path(__file__).parent / "data" / "eks_versions.json"

VERSION_PATTERN = re.compile(r"^1\.(\d{2})$")
"""A Kubernetes minor version as EKS spells it: ``1.35``."""


@dataclass(frozen=True)
class VersionSupport:
    """One Kubernetes minor version on EKS and its support dates."""

    version: str
    released: date
    end_of_standard_support: date
    end_of_extended_support: date


@dataclass(frozen=True)
class Calendar:
    """The bundled calendar: every known version, the rates, and where the dates come from."""

    source: str
    updated: date
    standard_usd_per_hour: float
    extended_usd_per_hour: float
    versions: dict[str, VersionSupport]

    def newest(self) -> str:
        """The newest version the calendar knows."""
        return max(self.versions, key=_minor)


@dataclass(frozen=True)
class VersionVerdict:
    """What a stack's version means today: an error (past extended support), a warning, or neither."""

    error: str | None = None
    warning: str | None = None
    extended_support: bool = False


def _minor(version: str) -> int:
    return int(version.split(".")[1])


@cache
def calendar() -> Calendar:
    """Load the bundled calendar (once)."""
    raw = json.loads(_CALENDAR_FILE.read_text())
    versions = {
        v: VersionSupport(
            version=v,
            released=date.fromisoformat(d["released"]),
            end_of_standard_support=date.fromisoformat(d["endOfStandardSupport"]),
            end_of_extended_support=date.fromisoformat(d["endOfExtendedSupport"]),
        )
        for v, d in raw["versions"].items()
    }
    return Calendar(
        source=raw["source"],
        updated=date.fromisoformat(raw["updated"]),
        standard_usd_per_hour=float(raw["standardSupportUsdPerHour"]),
        extended_usd_per_hour=float(raw["extendedSupportUsdPerHour"]),
        versions=versions,
    )


def check_version(version: str, today: date) -> VersionVerdict:
    """Judge ``version`` on ``today`` against the calendar.

    - past the end of extended support: an error (EKS no longer runs it);
    - in extended support: a warning that the control plane costs six times as much;
    - newer than the calendar knows: accepted with a warning that says what is assumed (standard
      support and its rate; EKS itself refuses a version it does not offer);
    - older than the calendar knows: an error (it left extended support before the calendar began).
    """
    cal = calendar()
    info = cal.versions.get(version)
    known = ", ".join(sorted(cal.versions, key=_minor))
    if info is None:
        if _minor(version) > _minor(cal.newest()):
            # Accepted: a calendar older than EKS must not stop a stack; the assumption is said.
            return VersionVerdict(
                warning=(
                    f"Kubernetes {version} is newer than the bundled EKS calendar "
                    f"(updated {cal.updated}, knows {known}): assuming it is in standard support "
                    f"(control plane at ${cal.standard_usd_per_hour:.2f}/h) with no known end date; "
                    "EKS refuses it if it does not offer it yet"
                )
            )
        return VersionVerdict(error=f"Kubernetes {version} is no longer supported by EKS; supported versions: {known}")
    if today > info.end_of_extended_support:
        supported = ", ".join(
            v for v in sorted(cal.versions, key=_minor) if today <= cal.versions[v].end_of_extended_support
        )
        return VersionVerdict(
            error=(
                f"Kubernetes {version} left EKS extended support on {info.end_of_extended_support}; "
                f"use one of {supported} (source: {cal.source})"
            )
        )
    if today > info.end_of_standard_support:
        ratio = cal.extended_usd_per_hour / cal.standard_usd_per_hour
        in_standard = [v for v in sorted(cal.versions, key=_minor) if today <= cal.versions[v].end_of_standard_support]
        return VersionVerdict(
            warning=(
                f"Kubernetes {version} left EKS standard support on {info.end_of_standard_support}: "
                f"the control plane now bills extended support at ${cal.extended_usd_per_hour:.2f}/h "
                f"instead of ${cal.standard_usd_per_hour:.2f}/h ({ratio:.0f}x) until "
                f"{info.end_of_extended_support}. Versions in standard support: "
                f"{', '.join(in_standard) or 'none known to the bundled calendar'}"
            ),
            extended_support=True,
        )
    return VersionVerdict()
