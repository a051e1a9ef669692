"""Tags: one place that decides what every taggable AWS resource carries."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping


def tags_for(base: Mapping[str, str], name: str) -> dict[str, str]:
    """The stack's tags plus ``Name``, which the EC2 console shows."""
    return {**base, "Name": name}


def tag_slug(key: str) -> str:
    """A resource-name-safe, unique form of a tag key (``k8s.io/cluster-autoscaler/enabled`` ->
    ``k8s-io-cluster-autoscaler-enabled-<hash>``): the hash keeps ``a.b`` and ``a-b`` apart."""
    readable = re.sub(r"[^A-Za-z0-9]+", "-", key).strip("-").lower()
    return f"{readable}-{hashlib.sha256(key.encode()).hexdigest()[:6]}"
