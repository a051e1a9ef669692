"""The bundled Cluster Autoscaler releases: the chart version and the image of each Kubernetes minor."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path


@dataclass(frozen=True)
class AutoscalerReleases:
    """The bundled Cluster Autoscaler releases (``data/cluster_autoscaler.json``)."""

    source: str
    updated: date
    """When the releases were last checked against kubernetes/autoscaler."""
    chart_version: str
    images: Mapping[str, str]
    """Kubernetes minor version -> the image tag of its Cluster Autoscaler release."""

    def newest(self) -> str:
        """The newest Kubernetes minor version with a bundled release."""
        return max(self.images, key=lambda v: int(v.split(".")[1]))


def first_release_tag(minor: str) -> str:
    """The image tag of the first Cluster Autoscaler release for Kubernetes ``minor`` (``v1.37.0``).

    Since 1.12 the autoscaler's minor version is the Kubernetes minor it is built and tested for, and
    every minor starts with a ``cluster-autoscaler-1.N.0`` release whose image is
    ``registry.k8s.io/autoscaling/cluster-autoscaler:v1.N.0`` (kubernetes/autoscaler releases, e.g.
    cluster-autoscaler-1.36.1's "Images"; cluster-autoscaler/README.md, "Releases"). It comes weeks
    after the Kubernetes release, and may come after EKS offers the version (1.36.0: by 2026-07-13,
    EKS 1.36: 2026-06-02).
    """
    return f"v{minor}.0"


@cache
def autoscaler_releases() -> AutoscalerReleases:
    """Load the bundled releases (once)."""
    raw = json.loads((Path(__file__).parent / "data" / "cluster_autoscaler.json").read_text())
    return AutoscalerReleases(
        source=raw["source"],
        updated=date.fromisoformat(raw["updated"]),
        chart_version=raw["chartVersion"],
        images=raw["images"],
    )
