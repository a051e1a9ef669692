"""The bundled Cluster Autoscaler releases: the chart version and the image of each Kubernetes minor."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path


@dataclass(frozen=True)
class AutoscalerReleases:
    """The bundled Cluster Autoscaler releases (``data/cluster_autoscaler.json``)."""

    source: str
    chart_version: str
    images: Mapping[str, str]
    """Kubernetes minor version -> the image tag of its Cluster Autoscaler release."""


@cache
def autoscaler_releases() -> AutoscalerReleases:
    """Load the bundled releases (once)."""
    raw = json.loads((Path(__file__).parent / "data" / "cluster_autoscaler.json").read_text())
    return AutoscalerReleases(source=raw["source"], chart_version=raw["chartVersion"], images=raw["images"])
