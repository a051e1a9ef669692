"""The Cluster Autoscaler's design: chart, image for the cluster's minor version, flags, priorities."""

from __future__ import annotations

from collections.abc import Mapping

from eks_gpu.config import (
    Problem,
    StackConfig,
    key_path,
)
from eks_gpu.design.allocatable import EFA_RESOURCE as EFA_RESOURCE
from eks_gpu.design.allocatable import HUGEPAGES_RESOURCE as HUGEPAGES_RESOURCE
from eks_gpu.design.model import AutoscalerDesign, NodeGroupDesign
from eks_gpu.facts.aws_limits import EFA_DRIVER_HUGEPAGES_2MI
from eks_gpu.facts.releases import autoscaler_releases, first_release_tag

TAG_PREFIX = "k8s.io/cluster-autoscaler"
"""The prefix of every tag the Cluster Autoscaler reads on an Auto Scaling group."""
SCOPE_TAG = "eks-gpu/autoscaler"
"""With ``existingCluster``, on the ASGs of this program's node groups only (value: the cluster's name):
the autoscaler it installs discovers, and may resize, no other ASG. EKS tags the ASG of every managed
node group, the owner's too, with both discovery tags (EKS User Guide, "Managed node groups": "automatically
tagged for auto-discovery by the Kubernetes cluster autoscaler"), so those alone would hand it the owner's
node groups. ``--node-group-auto-discovery=asg:tag=<k1>,<k2>,...`` finds the ASGs where every listed key
exists (kubernetes/autoscaler ``cluster-autoscaler/cloudprovider/aws/README.md``, "Auto-Discovery Setup")."""
TEMPLATE_ALLOCATABLE = ("cpu", "memory", "ephemeral-storage", "pods")
"""What the template node gets from the pool's :class:`~eks_gpu.design.allocatable.Allocatable`
rather than from the instance type: the autoscaler takes a tag's value as capacity and allocatable
alike (``buildNodeFromTemplate``: "TODO: use proper allocatable!!"), parsed by
``resource.ParseQuantity`` (``extractAllocatableResourcesFromAsg``; an unparsable value is skipped)."""


def efa_hugepages(design: NodeGroupDesign) -> str | None:
    """The ``hugepages-2Mi`` a node of an EFA pool brings (``10256Mi``), or None where no source says:
    pools without EFA, and Bottlerocket, which sizes its own pool."""
    if design.efa is None or design.ami_type.bottlerocket:
        return None
    return f"{EFA_DRIVER_HUGEPAGES_2MI * 2}Mi"


def discovery_tags(cluster_name: str, scoped: bool = False) -> dict[str, str]:
    """The tags ``--node-group-auto-discovery`` finds a node group's ASG by; ``scoped`` (an existing
    cluster with this program's autoscaler) adds :data:`SCOPE_TAG`."""
    tags = {f"{TAG_PREFIX}/enabled": "true", f"{TAG_PREFIX}/{cluster_name}": "owned"}
    if scoped:
        tags[SCOPE_TAG] = cluster_name
    return tags


def asg_tags(design: NodeGroupDesign, cluster_name: str, scoped: bool = False) -> dict[str, str]:
    """Every tag of a node group's ASG: discovery, and for GPU pools what scale-from-zero needs.

    EKS does not copy node-group tags to the ASG (aws/containers-roadmap#608), so the program tags
    it. GPUs per node come from the instance catalogue; CPU, memory and ephemeral storage are what a
    node's kubelet will offer (the pool's allocatable), not the type's nominal size; labels and taints
    from the pool's design, the same objects the node group gets.
    """
    tags = discovery_tags(cluster_name, scoped)
    if design.gpu is None:
        return tags
    template = f"{TAG_PREFIX}/node-template"
    tags[f"{template}/resources/nvidia.com/gpu"] = str(design.gpu.count)
    if design.allocatable is not None:
        # without them the template has nominal CPU and memory (a pod between allocatable and nominal
        # scales the pool up and never fits), no ephemeral storage (a pod asking for any never
        # scales it from zero: kubernetes/autoscaler#1869) and 110 pods (g6.xlarge runs 58)
        quantities = design.allocatable.quantities()
        tags |= {f"{template}/resources/{name}": quantities[name] for name in TEMPLATE_ALLOCATABLE}
    if design.efa is not None:
        # what the EFA device plugin advertises: a pod asking for EFA fits a node of this pool
        tags[f"{template}/resources/{EFA_RESOURCE}"] = str(design.efa.interfaces)
    hugepages = efa_hugepages(design)
    if hugepages is not None:
        # what the EFA driver pre-allocates: a pod asking for huge pages fits a node not yet started
        tags[f"{template}/resources/{HUGEPAGES_RESOURCE}"] = hugepages
    tags |= {f"{template}/label/{k}": v for k, v in design.labels.items()}
    tags |= {f"{template}/taint/{t.key}": f"{t.value}:{t.effect.kubernetes}" for t in design.taints}
    return tags


RESERVED_AUTOSCALER_FLAGS = {
    "expander": "eks-gpu:autoscaler.expander",
    "scale-down-unneeded-time": "eks-gpu:autoscaler.scaleDownUnneededTime",
    "cloud-provider": "the chart (cloudProvider: aws)",
    "namespace": "the chart (the release's namespace)",
    "node-group-auto-discovery": "the chart (autoDiscovery.clusterName)",
}
"""Flags ``autoscaler.extraArgs`` may not set: a dedicated key or the chart owns them."""
OWN_NAME = "eks-gpu-cluster-autoscaler"
"""With ``existingCluster``: the name of everything the autoscaler's release makes (Deployment, service
account, RBAC) and of its leader-election lease, so it stands beside an autoscaler the cluster may run
already (the chart's and the binary's defaults are all ``cluster-autoscaler``, in ``kube-system``)."""
OWN_NAME_ARGS: dict[str, str | int | bool] = {
    # the lease both would otherwise share: one of the two would stand by forever
    # (kubernetes/autoscaler cluster-autoscaler/main.go, defaultLeaderElectionConfiguration)
    "leader-elect-resource-name": OWN_NAME,
    # the status ConfigMap both would otherwise overwrite (main.go, --status-config-map-name)
    "status-config-map-name": f"{OWN_NAME}-status",
}
"""Flags of the autoscaler on an existing cluster: a lease and a status ConfigMap of its own."""


def design_autoscaler(
    config: StackConfig, groups: Mapping[str, NodeGroupDesign], problems: list[Problem], warnings: list[str]
) -> AutoscalerDesign | None:
    cfg = config.autoscaler
    if not cfg.enabled:
        for key, pool in config.gpu_node_groups.items():
            if pool.min_size == 0:
                warnings.append(
                    f"{key_path('gpuNodeGroups', key, 'minSize')}: 0 with eks-gpu:autoscaler disabled: the pool "
                    "never scales up by itself; a pending GPU pod waits for someone to raise its size"
                )
        return None
    catalogue = autoscaler_releases()
    minor = config.kubernetes_version
    image = cfg.image_tag or catalogue.images.get(minor)
    if image is None:
        # Not in the bundled data (a version newer than it): no refusal, the project's versioning says what to run.
        image = first_release_tag(minor)
        warnings.append(
            f"{key_path('autoscaler', 'imageTag')}: no Cluster Autoscaler release for Kubernetes {minor} is "
            f"bundled (releases checked {catalogue.updated}, newest {catalogue.newest()}): assuming {image}, the "
            f"first release the autoscaler project publishes for each minor, on chart "
            f"{cfg.chart_version or catalogue.chart_version}. "
            "It can come weeks after EKS offers the version; until it exists the autoscaler cannot pull its "
            "image and no pool scales: set eks-gpu:autoscaler.imageTag to a published tag "
            "(github.com/kubernetes/autoscaler/releases)"
        )
    elif not image.startswith(f"v{minor}."):
        warnings.append(
            f"{key_path('autoscaler', 'imageTag')}: {image} is not a {minor} release; the Cluster Autoscaler "
            "supports the Kubernetes minor version it was built for"
        )
    if cfg.expander == "priority" and not cfg.priorities:
        problems.append(Problem(key_path("autoscaler", "priorities"), "is required with expander priority"))
    if cfg.priorities and cfg.expander != "priority":
        problems.append(
            Problem(key_path("autoscaler", "priorities"), f"only applies to expander priority, not {cfg.expander}")
        )
    for key in cfg.priorities:
        if key not in groups:
            problems.append(
                Problem(
                    key_path("autoscaler", "priorities", key),
                    f"is not a node group; the node groups are: {', '.join(groups)}",
                )
            )
    for flag in cfg.extra_args:
        owner = RESERVED_AUTOSCALER_FLAGS.get(flag.removeprefix("--"))
        if owner is not None:
            problems.append(
                Problem(key_path("autoscaler", "extraArgs", flag), f"is set by {owner}; set it there instead")
            )
    # No balance-similar-node-groups: it would never find two pools similar. Each pool is one ASG
    # over all its AZs, and the comparator (processors/nodegroupset/compare_nodegroups.go,
    # IsCloudProviderNodeInfoSimilar) wants every label but ignored ones equal: a template node has
    # nodegroup-name from the ASG's eks:nodegroup-name tag, a real node its pool's own
    # eks.amazonaws.com/sourceLaunchTemplateId and capacityType, none of them ignored.
    args: dict[str, str | int | bool] = {
        # GPU jobs often use emptyDir scratch space: that must not pin an idle GPU node.
        "skip-nodes-with-local-storage": False,
        "expander": cfg.expander,
        "scale-down-unneeded-time": cfg.scale_down_unneeded_time,
        **(OWN_NAME_ARGS if config.existing_cluster is not None else {}),
        **cfg.extra_args,
    }
    if config.existing_cluster is not None:
        _scope_tag_budget(config, groups, problems)
    return AutoscalerDesign(
        chart_version=cfg.chart_version or catalogue.chart_version,
        image_tag=image,
        expander=cfg.expander,
        priorities=dict(cfg.priorities),
        args=args,
    )


def _scope_tag_budget(config: StackConfig, groups: Mapping[str, NodeGroupDesign], problems: list[Problem]) -> None:
    """With ``existingCluster`` every ASG also carries :data:`SCOPE_TAG`: a node group whose tags fit
    only without it is refused here (one that does not fit at all is refused by the stack's own check)."""
    from eks_gpu.design.tags import check_asg_tag_budget, node_group_asg_tags  # it builds on this module

    stack_tags = {**config.tags, "Environment": config.environment}
    for key, group in groups.items():
        pool = config.gpu_node_groups.get(key)
        prefix = ("gpuNodeGroups", key) if pool is not None else ("systemNodeGroup",)
        labels = pool.labels if pool is not None else {}
        plain = node_group_asg_tags(group, config.cluster_name, stack_tags, True)
        if check_asg_tag_budget(prefix, group, plain, labels) is not None:
            continue
        scoped = node_group_asg_tags(group, config.cluster_name, stack_tags, True, scoped=True)
        over = check_asg_tag_budget(prefix, group, scoped, labels)
        if over is not None:
            problems.append(over)
