"""The ECR registries EKS publishes its add-on images to, one per region (bundled, with its source)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path


@dataclass(frozen=True)
class AddonRegistries:
    """The EKS User Guide's table of add-on image registries (``data/eks_addon_registries.json``)."""

    source: str
    updated: date
    """When the table was last copied from the guide."""
    registries: Mapping[str, str]
    """AWS region -> its registry host (``602401143452.dkr.ecr.eu-west-1.amazonaws.com``)."""

    def registry(self, region: str) -> str:
        """The registry of ``region``: an image there is pulled inside the region and partition (an
        account's nodes in ``cn-north-1`` or a GovCloud region cannot pull from the commercial ones)."""
        try:
            return self.registries[region]
        except KeyError:
            raise ValueError(
                f"no EKS add-on image registry is bundled for region {region} ({self.source}, {self.updated})"
            ) from None


@cache
def addon_registries() -> AddonRegistries:
    """Load the bundled table (once)."""
    raw = json.loads((Path(__file__).parent / "data" / "eks_addon_registries.json").read_text())
    return AddonRegistries(
        source=raw["source"], updated=date.fromisoformat(raw["updated"]), registries=raw["registries"]
    )
