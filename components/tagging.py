"""Tags: one place that decides what every taggable AWS resource carries."""

from __future__ import annotations

from collections.abc import Mapping


def tags_for(base: Mapping[str, str], name: str) -> dict[str, str]:
    """The stack's tags plus ``Name``, which the EC2 console shows."""
    return {**base, "Name": name}
