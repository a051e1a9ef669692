"""The one line a real deploy still needs, stood in for offline runs of the shipped stack files.

The shipped stacks name nobody who may reach the Kubernetes API: only the person deploying knows
their address (docs/deploy.md, "First deploy"), and the program refuses a stack nobody can reach. `make
plan` and the tests still run the shipped files: they add a stand-in public CIDR, exactly where
`pulumi config set --path 'endpointPublicAccessCidrs[0]' ...` would put the deployer's, and say so.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from eks_gpu.config import key_path
from eks_gpu.config.parse import REACH_FIX, REACH_KEYS

STAND_IN_CIDR = "198.18.0.10/32"
"""A stand-in deployer address: RFC 2544 benchmarking space, routed nowhere on the internet, so no
real client has it, yet not a documentation range (which the program refuses)."""

FULL_REACH_KEYS = tuple(key_path(key) for key in REACH_KEYS)
"""The stack keys that let someone reach the API, as a stack file spells them."""


def with_deployer(config: Mapping[str, Any]) -> tuple[dict[str, Any], str | None]:
    """``config`` with the stand-in deployer CIDR when it names nobody, and what a real deploy needs.

    Returns the config unchanged and ``None`` when some reach key is set.
    """
    if any(config.get(key) for key in FULL_REACH_KEYS):
        return dict(config), None
    need = (
        f"not deployable as is: nobody may reach the Kubernetes API. This plan stands in {STAND_IN_CIDR} "
        f"for the deployer; before `pulumi up`, run: {REACH_FIX} (or set {REACH_KEYS[1]} / {REACH_KEYS[2]} "
        "for a runner inside the VPC; docs/deploy.md, First deploy)"
    )
    return {**config, FULL_REACH_KEYS[0]: [STAND_IN_CIDR]}, need
