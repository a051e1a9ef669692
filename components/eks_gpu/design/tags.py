"""Which tags go where on a node group, so that tag edits never roll nodes.

A launch template's ``tag_specifications`` are part of its version: a changed value makes a new
version, and EKS replaces every node of the group (terraform-provider-aws ``launch_template.go``:
every change but ``description``, ``tags``, ``default_version`` and ``update_default_version`` is a
new version). So the launch template tags what it launches (instances, their volumes and network
interfaces) only with tags that change when the node group itself is replaced anyway: the cluster
and the pool. The stack's tags (``eks-gpu:tags`` and ``Environment``) reach the instances through
the Auto Scaling group instead, ``propagate_at_launch``: an edit updates the ASG's tags in place and
every instance launched after it carries the new values. Volumes are not tagged by the ASG (Amazon
EC2 Auto Scaling User Guide, "Tag Auto Scaling groups and instances"); they carry the identity tags.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from eks_gpu.config import Problem, key_path
from eks_gpu.design.autoscaler import asg_tags
from eks_gpu.design.model import NodeGroupDesign
from eks_gpu.facts.aws_limits import ASG_MAX_TAGS, EKS_OWNED_ASG_TAGS

CLUSTER_TAG = "eks-gpu/cluster"
"""On every instance, volume and network interface a node group launches: its cluster's name."""
NODE_GROUP_TAG = "eks-gpu/node-group"
"""On every instance, volume and network interface a node group launches: its pool key (or ``system``)."""


def launch_tags(cluster_name: str, key: str) -> dict[str, str]:
    """The launch template's ``tag_specifications``: fixed for the node group's lifetime."""
    return {"Name": f"{cluster_name}-{key}", CLUSTER_TAG: cluster_name, NODE_GROUP_TAG: key}


@dataclass(frozen=True)
class AsgTag:
    """One tag on a node group's Auto Scaling group."""

    value: str
    propagate_at_launch: bool
    """Copied to the instances the ASG launches (the stack's tags), or the ASG's only (the autoscaler's)."""


def node_group_asg_tags(
    design: NodeGroupDesign,
    cluster_name: str,
    stack_tags: Mapping[str, str],
    autoscaler: bool,
    *,
    scoped: bool = False,
) -> dict[str, AsgTag]:
    """Every tag the program puts on a node group's ASG: the stack's, propagated to instances, and,
    with the autoscaler, its discovery and node-template tags, not propagated; ``scoped`` (an existing
    cluster with the program's own autoscaler) adds the tag that keeps it to these ASGs
    (:data:`eks_gpu.design.autoscaler.SCOPE_TAG`)."""
    tags = {k: AsgTag(v, True) for k, v in stack_tags.items()}
    if autoscaler:
        tags |= {k: AsgTag(v, False) for k, v in asg_tags(design, cluster_name, scoped).items()}
    return tags


def check_asg_tag_budget(
    prefix: tuple[str, ...], design: NodeGroupDesign, tags: Mapping[str, AsgTag], user_labels: Mapping[str, str]
) -> Problem | None:
    """A node group's ASG tags fit the ASG's 50, beside the ones EKS puts there itself.

    Past the limit tagging fails on AWS mid-update, and the autoscaler cannot be told what a node of
    the pool looks like, so the pool would never scale from zero.
    """
    used = len(tags) + len(EKS_OWNED_ASG_TAGS)
    if used <= ASG_MAX_TAGS:
        return None
    stack = sum(1 for t in tags.values() if t.propagate_at_launch)
    autoscaler = len(tags) - stack
    yours = ", ".join(sorted(user_labels)) or "none of yours"
    return Problem(
        key_path(*prefix),
        f"needs {used} tags on its Auto Scaling group ({len(EKS_OWNED_ASG_TAGS)} of EKS's, {stack} of the stack's "
        f"tags, {autoscaler} for the autoscaler: discovery, resources (allocatable CPU, memory and ephemeral "
        f"storage, GPUs, EFA, huge pages), "
        f"one per label ({len(design.labels)}, "
        f"{len(user_labels)} of them yours) and one per taint ({len(design.taints)})), but an ASG holds at most "
        f"{ASG_MAX_TAGS}: drop {used - ASG_MAX_TAGS} of its labels ({yours}), "
        f"taints ({', '.join(t.key for t in design.taints) or 'none'}) or eks-gpu:tags",
    )
