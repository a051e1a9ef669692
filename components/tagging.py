"""Tags: one place that decides what every taggable AWS resource carries."""

from __future__ import annotations

import re
from collections.abc import Mapping


def tags_for(base: Mapping[str, str], name: str) -> dict[str, str]:
    """The stack's tags plus ``Name``, which the EC2 console shows."""
    return {**base, "Name": name}


def tag_slug(key: str) -> str:
    """A resource-name-safe form of a tag key (``k8s.io/cluster-autoscaler/enabled`` ->
    ``k8s-io-cluster-autoscaler-enabled``)."""
    return re.sub(r"[^A-Za-z0-9]+", "-", key).strip("-").lower()
