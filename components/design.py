"""The design of one stack: the parsed config joined with AWS's facts, every choice made.

:func:`resolve` is where the config meets AWS: instance types must exist in the region and carry
NVIDIA GPUs, a pool's types share one architecture, GPU model and count, the AMI type fits the
architecture, and every pool gets AZs that offer all its types. Every problem, from the stack file
or from AWS's answers, is raised together in one :class:`~components.config.ConfigError`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

from components.aws_facts import AwsFacts, InstanceFacts, lookup
from components.config import (
    ACCELERATOR_LABEL,
    DEFAULT_GPU_AMI,
    DEFAULT_SYSTEM_AMI,
    GPU_PRESENT_LABEL,
    POOL_LABEL,
    AmiType,
    CapacityType,
    ConfigError,
    ExistingVpc,
    GpuPool,
    NewVpc,
    ParsedConfig,
    Problem,
    StackConfig,
    SystemNodeGroup,
    Taint,
    key_path,
    parse_config,
)
from components.placement import choose_azs, subnet_layout

SYSTEM_KEY = "system"
"""The key of the system node group in names, labels and outputs."""


@dataclass(frozen=True)
class GpuSpec:
    """The GPUs of every node of a pool (the same for all its instance types)."""

    count: int
    model: str
    manufacturer: str

    @property
    def accelerator(self) -> str:
        """The ``k8s.amazonaws.com/accelerator`` label value, ``nvidia-a10g``."""
        return f"{self.manufacturer}-{self.model}".lower()


@dataclass(frozen=True)
class NodeGroupDesign:
    """One managed node group, ready to build: the system group or a GPU pool."""

    key: str
    instance_types: tuple[str, ...]
    ami_type: AmiType
    capacity_type: CapacityType
    min_size: int
    desired_size: int
    max_size: int
    disk_size_gib: int
    labels: Mapping[str, str]
    """Every label of the nodes: the user's and the program's."""
    taints: tuple[Taint, ...]
    availability_zones: tuple[str, ...]
    """The AZs of the VPC that offer every instance type of the group."""
    gpu: GpuSpec | None
    capacity_reservation_id: str | None = None

    @property
    def single_az(self) -> bool:
        """Confined to one AZ (legitimate for capacity blocks and EFA pools, a risk otherwise)."""
        return len(self.availability_zones) == 1


@dataclass(frozen=True)
class NewNetwork:
    """A VPC to build."""

    cidr: str
    azs: tuple[str, ...]
    private_cidrs: tuple[str, ...]
    public_cidrs: tuple[str, ...]
    nat_per_az: bool


@dataclass(frozen=True)
class ExistingNetwork:
    """A VPC the user brings: its private subnets by AZ."""

    vpc_id: str
    private_subnets: Mapping[str, tuple[str, ...]]
    """AZ -> private subnet ids."""
    public_subnet_ids: tuple[str, ...]

    @property
    def azs(self) -> tuple[str, ...]:
        """The AZs the private subnets span."""
        return tuple(sorted(self.private_subnets))


@dataclass(frozen=True)
class GpuPodDesign:
    """The smoke-test pod: which pool, what it runs."""

    pool: str
    image: str
    gpus: int
    command: tuple[str, ...]


@dataclass(frozen=True)
class KubernetesDesign:
    """What the program puts in the cluster."""

    namespace: str
    gpu_quota: int
    """``requests.nvidia.com/gpu`` of the namespace's ResourceQuota."""
    device_plugin_version: str | None
    """The device plugin chart version, or None when every pool is Bottlerocket (built in)."""
    device_plugin_pools: tuple[str, ...]
    """The pools the device plugin runs on: those with an AL2023 NVIDIA AMI."""
    gpu_pod: GpuPodDesign | None


@dataclass(frozen=True)
class AutoscalerDesign:
    """The Cluster Autoscaler, decided: chart, image, flags, priorities by pool."""

    chart_version: str
    image_tag: str
    expander: str
    priorities: Mapping[str, int]
    """Pool key (or ``system``) -> priority, for the priority expander."""
    args: Mapping[str, str | int | bool]
    """Every flag it runs with (``extraArgs`` of the chart)."""


@dataclass(frozen=True)
class StackDesign:
    """Everything the components build, decided before any resource exists."""

    stack: str
    cluster_name: str
    kubernetes_version: str
    region: str
    partition: str
    tags: Mapping[str, str]
    """Tags of every taggable AWS resource: the user's plus ``Environment``."""
    endpoint_public_access_cidrs: tuple[str, ...]
    protect: bool
    """Protect the cluster and its secrets key from deletion."""
    network: NewNetwork | ExistingNetwork
    system: NodeGroupDesign
    gpu_pools: Mapping[str, NodeGroupDesign]
    kubernetes: KubernetesDesign
    autoscaler: AutoscalerDesign | None
    """None when ``autoscaler.enabled`` is false."""
    warnings: tuple[str, ...]
    """Things the user should act on (``pulumi.log.warn``)."""
    notes: tuple[str, ...]
    """Choices the program made that the user may want to pin (``pulumi.log.info``)."""


def load(raw: Mapping[str, Any], stack: str, region: str | None, today: date) -> StackDesign:
    """Parse the stack config, ask AWS, and decide everything; raise every problem at once."""
    parsed = parse_config(raw, stack, today)
    if not region:
        raise ConfigError(
            [*parsed.problems, Problem("aws:region", "is required: the AWS region to build in, e.g. us-west-2")]
        )
    return resolve(parsed, lookup(parsed, region), stack)


def resolve(parsed: ParsedConfig, facts: AwsFacts, stack: str) -> StackDesign:
    """Join ``parsed`` with ``facts`` into a :class:`StackDesign`, or raise every problem found."""
    problems = list(parsed.problems)
    notes: list[str] = []
    warnings = list(parsed.warnings)
    pools: dict[str, _Group] = {}
    for key, pool in parsed.pools.items():
        group = _group(("gpuNodeGroups", key), pool, facts, problems)
        if group is not None:
            pools[key] = group
    system = _group(("systemNodeGroup",), parsed.system, facts, problems) if parsed.system else None

    needs = {g.key: g.offered for g in [*pools.values(), *([system] if system else [])]}
    network: NewNetwork | ExistingNetwork | None = None
    if isinstance(parsed.vpc, NewVpc):
        network = _new_network(parsed.vpc, facts, needs, problems, notes)
    elif isinstance(parsed.vpc, ExistingVpc):
        network = _existing_network(parsed.vpc, facts, problems, warnings)

    azs = frozenset(network.azs) if network else frozenset()
    designs: dict[str, NodeGroupDesign] = {}
    for group in [*pools.values(), *([system] if system else [])]:
        usable = tuple(sorted(group.offered & azs))
        if network is not None and not usable:
            problems.append(Problem(key_path(*group.prefix), _nowhere(group, facts, network.azs)))
        designs[group.key] = group.design(usable)

    config = parsed.config
    if config is not None:
        user_env = config.tags.get("Environment")
        if user_env is not None and user_env != config.environment:
            problems.append(
                Problem(key_path("tags", "Environment"), "is set from eks-gpu:environment; set that key instead")
            )
    autoscaler = _autoscaler(config, designs, problems, warnings) if config is not None else None
    kubernetes = _kubernetes(config, designs, problems, warnings) if config is not None else None
    if problems or config is None or network is None or kubernetes is None:
        raise ConfigError(problems)

    return StackDesign(
        stack=stack,
        cluster_name=config.cluster_name,
        kubernetes_version=config.kubernetes_version,
        region=facts.region,
        partition=facts.partition,
        tags={**config.tags, "Environment": config.environment},
        endpoint_public_access_cidrs=config.endpoint_public_access_cidrs,
        protect=config.protect,
        network=network,
        system=designs[SYSTEM_KEY],
        gpu_pools={k: designs[k] for k in config.gpu_node_groups},
        kubernetes=kubernetes,
        autoscaler=autoscaler,
        warnings=tuple(warnings),
        notes=tuple(notes),
    )


@dataclass(frozen=True)
class _Group:
    """A node group whose instance types checked out against AWS, before AZs are decided."""

    key: str
    prefix: tuple[str, ...]
    config: GpuPool | SystemNodeGroup
    instances: tuple[InstanceFacts, ...]
    ami_type: AmiType
    gpu: GpuSpec | None
    offered: frozenset[str]

    def design(self, azs: tuple[str, ...]) -> NodeGroupDesign:
        cfg = self.config
        labels = {POOL_LABEL: self.key}
        if isinstance(cfg, GpuPool) and self.gpu is not None:
            labels |= {GPU_PRESENT_LABEL: "true", ACCELERATOR_LABEL: self.gpu.accelerator, **cfg.labels}
        return NodeGroupDesign(
            key=self.key,
            instance_types=cfg.instance_types,
            ami_type=self.ami_type,
            capacity_type=cfg.capacity_type if isinstance(cfg, GpuPool) else CapacityType.ON_DEMAND,
            min_size=cfg.min_size,
            desired_size=cfg.desired,
            max_size=cfg.max_size,
            disk_size_gib=cfg.disk_size_gib,
            labels=labels,
            taints=cfg.taints if isinstance(cfg, GpuPool) else (),
            availability_zones=azs,
            gpu=self.gpu,
            capacity_reservation_id=cfg.capacity_reservation_id if isinstance(cfg, GpuPool) else None,
        )


def _group(
    prefix: tuple[str, ...], cfg: GpuPool | SystemNodeGroup, facts: AwsFacts, problems: list[Problem]
) -> _Group | None:
    gpu_pool = isinstance(cfg, GpuPool)
    before = len(problems)
    found: list[InstanceFacts] = []
    for i, itype in enumerate(cfg.instance_types):
        info = facts.instances.get(itype)
        if info is None:
            problems.append(
                Problem(
                    key_path(*prefix, "instanceTypes", i),
                    f"'{itype}' is not offered in any available AZ of {facts.region} (or does not exist)",
                )
            )
        elif gpu_pool and (info.gpu_count == 0 or (info.gpu_manufacturer or "").upper() != "NVIDIA"):
            has = f"{info.gpu_count} {info.gpu_manufacturer} {info.gpu_model} GPU" if info.gpu_count else "no GPU"
            problems.append(
                Problem(key_path(*prefix, "instanceTypes", i), f"'{itype}' has {has}; a GPU pool needs NVIDIA GPUs")
            )
        elif not info.architectures:
            problems.append(
                Problem(key_path(*prefix, "instanceTypes", i), f"'{itype}' has no architecture EKS AMIs support")
            )
        else:
            found.append(info)
    if len(problems) > before:
        return None

    # From here on a problem does not stop the checks: the group is still placed, so that every
    # problem of the pool is reported in the same run.
    types = ", ".join(f"{i.instance_type} {'/'.join(i.architectures)}" for i in found)
    archs = set.intersection(*(set(i.architectures) for i in found))
    if len(archs) != 1:
        problems.append(
            Problem(key_path(*prefix, "instanceTypes"), f"mixes CPU architectures ({types}); a pool has one")
        )
    arch = sorted(archs)[0] if archs else found[0].architectures[0]
    defaults = DEFAULT_GPU_AMI if gpu_pool else DEFAULT_SYSTEM_AMI
    ami = cfg.ami_type or defaults[arch]
    if len(archs) == 1 and ami.architecture != arch:
        problems.append(
            Problem(
                key_path(*prefix, "amiType"),
                f"{ami.value} is for {ami.architecture.value} but the instance types are {arch.value}; "
                f"use {defaults[arch].value}",
            )
        )
    gpu = None
    if gpu_pool:
        if len({(i.gpu_count, i.gpu_model) for i in found}) != 1:
            shown = ", ".join(f"{i.instance_type} {i.gpu_count}x {i.gpu_model}" for i in found)
            problems.append(
                Problem(
                    key_path(*prefix, "instanceTypes"),
                    f"mixes GPU models or counts ({shown}); the autoscaler and the accelerator label "
                    "need one per pool: split them into pools",
                )
            )
        first = found[0]
        gpu = GpuSpec(first.gpu_count, first.gpu_model or "", first.gpu_manufacturer or "")
    return _Group(
        key=prefix[-1] if gpu_pool else SYSTEM_KEY,
        prefix=prefix,
        config=cfg,
        instances=tuple(found),
        ami_type=ami,
        gpu=gpu,
        offered=frozenset.intersection(*(facts.offerings[i.instance_type] for i in found)),
    )


RESERVED_AUTOSCALER_FLAGS = {
    "expander": "eks-gpu:autoscaler.expander",
    "scale-down-unneeded-time": "eks-gpu:autoscaler.scaleDownUnneededTime",
    "cloud-provider": "the chart (cloudProvider: aws)",
    "namespace": "the chart (the release's namespace)",
    "node-group-auto-discovery": "the chart (autoDiscovery.clusterName)",
}
"""Flags ``autoscaler.extraArgs`` may not set: a dedicated key or the chart owns them."""


def _autoscaler(
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
        problems.append(
            Problem(
                key_path("autoscaler", "imageTag"),
                f"no Cluster Autoscaler release is bundled for Kubernetes {minor} (known: "
                f"{', '.join(sorted(catalogue.images))}); set the v{minor}.x image tag",
            )
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
    args: dict[str, str | int | bool] = {
        "balance-similar-node-groups": True,
        # Every pool has its own eks-gpu/node-group label: without this no two pools are "similar".
        "balancing-ignore-label": POOL_LABEL,
        # GPU jobs often use emptyDir scratch space: that must not pin an idle GPU node.
        "skip-nodes-with-local-storage": False,
        "expander": cfg.expander,
        "scale-down-unneeded-time": cfg.scale_down_unneeded_time,
        **cfg.extra_args,
    }
    return AutoscalerDesign(
        chart_version=cfg.chart_version or catalogue.chart_version,
        image_tag=image or "",
        expander=cfg.expander,
        priorities=dict(cfg.priorities),
        args=args,
    )


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


def _kubernetes(
    config: StackConfig, groups: Mapping[str, NodeGroupDesign], problems: list[Problem], warnings: list[str]
) -> KubernetesDesign:
    pools = {key: groups[key] for key in config.gpu_node_groups if key in groups}
    plugin_pools = tuple(k for k, p in pools.items() if not p.ami_type.bottlerocket)
    quota = config.gpu_namespace.gpu_quota
    if quota is None:
        quota = sum(p.max_size * (p.gpu.count if p.gpu else 0) for p in pools.values())
    pod = config.gpu_pod
    pod_design = None
    if pod.enabled:
        key = pod.node_group or (next(iter(config.gpu_node_groups)) if len(config.gpu_node_groups) == 1 else None)
        if key is None or key not in config.gpu_node_groups:
            shown = ", ".join(config.gpu_node_groups) or "none"
            problems.append(
                Problem(
                    key_path("gpuPod", "nodeGroup"),
                    f"{'is required with several pools' if key is None else repr(key) + ' is not a pool'}; "
                    f"the pools are: {shown}",
                )
            )
        elif key in pools:
            target = pools[key]
            per_node = target.gpu.count if target.gpu else 0
            if pod.gpus > per_node:
                problems.append(
                    Problem(
                        key_path("gpuPod", "gpus"),
                        f"{pod.gpus} GPUs do not fit on one node of pool {key} ({per_node} per node)",
                    )
                )
            if target.desired_size == 0 and not config.autoscaler.enabled:
                problems.append(
                    Problem(
                        key_path("gpuNodeGroups", key, "desiredSize"),
                        "is 0 while eks-gpu:gpuPod runs on this pool and the autoscaler is disabled: nothing "
                        "would start a node, so the pod would stay Pending and pulumi up would wait for it "
                        "until its timeout; set desiredSize to 1, enable eks-gpu:autoscaler, or disable the pod",
                    )
                )
            if pod.gpus > quota:
                problems.append(
                    Problem(key_path("gpuNamespace", "gpuQuota"), f"{quota} is below the pod's {pod.gpus} GPUs")
                )
            pod_design = GpuPodDesign(pool=key, image=pod.image, gpus=pod.gpus, command=pod.command)
    if not config.endpoint_public_access_cidrs:
        warnings.append(
            f"{key_path('endpointPublicAccessCidrs')}: the API endpoint is private, and the program creates "
            "Kubernetes objects: run pulumi from inside the VPC, or add your address (README, Quick start)"
        )
    return KubernetesDesign(
        namespace=config.gpu_namespace.name,
        gpu_quota=quota,
        device_plugin_version=config.device_plugin.chart_version if plugin_pools else None,
        device_plugin_pools=plugin_pools,
        gpu_pod=pod_design,
    )


def _nowhere(group: _Group, facts: AwsFacts, vpc_azs: tuple[str, ...]) -> str:
    where = "; ".join(
        f"{i.instance_type} in {', '.join(sorted(facts.offerings[i.instance_type]))}" for i in group.instances
    )
    if not group.offered:
        return f"no AZ of {facts.region} offers all its instance types ({where}): split them into pools"
    return (
        f"the VPC's AZs ({', '.join(vpc_azs)}) offer not all its instance types ({where}); "
        f"they are all offered together in {', '.join(sorted(group.offered))}"
    )


def _new_network(
    vpc: NewVpc,
    facts: AwsFacts,
    needs: Mapping[str, frozenset[str]],
    problems: list[Problem],
    notes: list[str],
) -> NewNetwork | None:
    before = len(problems)
    if vpc.availability_zones is not None:
        for i, az in enumerate(vpc.availability_zones):
            if az not in facts.available_azs:
                problems.append(
                    Problem(
                        key_path("vpc", "availabilityZones", i),
                        f"'{az}' is not an available AZ of {facts.region} ({', '.join(facts.available_azs)})",
                    )
                )
        if len(set(vpc.availability_zones)) != len(vpc.availability_zones):
            problems.append(Problem(key_path("vpc", "availabilityZones"), "lists an AZ twice"))
        if "az_count" in vpc.model_fields_set and vpc.az_count != len(vpc.availability_zones):
            problems.append(
                Problem(
                    key_path("vpc", "azCount"),
                    f"{vpc.az_count} disagrees with the {len(vpc.availability_zones)} availabilityZones; "
                    "set one of the two",
                )
            )
        azs = tuple(sorted(vpc.availability_zones))
    elif len(facts.available_azs) < vpc.az_count:
        problems.append(
            Problem(
                key_path("vpc", "azCount"),
                f"{vpc.az_count} AZs asked, but {facts.region} has {len(facts.available_azs)} available "
                f"({', '.join(facts.available_azs)})",
            )
        )
    else:
        azs = choose_azs(facts.available_azs, needs, vpc.az_count)
        notes.append(
            f"the VPC spans {', '.join(azs)}, chosen for the node groups' instance types; pin them with "
            f"eks-gpu:vpc.availabilityZones so that a new pool never moves the VPC's subnets"
        )
    if len(problems) > before:
        return None
    layout = subnet_layout(vpc.cidr, azs)
    return NewNetwork(
        cidr=vpc.cidr,
        azs=azs,
        private_cidrs=layout.private,
        public_cidrs=layout.public,
        nat_per_az=vpc.nat_gateways == "perAz",
    )


def _existing_network(
    vpc: ExistingVpc, facts: AwsFacts, problems: list[Problem], warnings: list[str]
) -> ExistingNetwork | None:
    before = len(problems)
    by_az: dict[str, list[str]] = {}
    for field, ids in (("privateSubnetIds", vpc.private_subnet_ids), ("publicSubnetIds", vpc.public_subnet_ids)):
        for i, sid in enumerate(ids):
            subnet = facts.subnets.get(sid)
            if subnet is None:
                problems.append(Problem(key_path("vpc", field, i), f"'{sid}' is not a subnet of {vpc.id}"))
            elif field == "privateSubnetIds":
                by_az.setdefault(subnet.availability_zone, []).append(sid)
                if not (subnet.default_route or "").startswith(("nat-", "tgw-", "eni-")):
                    warnings.append(
                        f"{key_path('vpc', field, i)}: '{sid}' has no default route through a NAT gateway "
                        f"(it goes to {subnet.default_route or 'nowhere'}); nodes there join only with VPC "
                        "endpoints for EKS, ECR, S3, EC2 and STS"
                    )
    if len(problems) == before and len(by_az) < 2:
        problems.append(
            Problem(
                key_path("vpc", "privateSubnetIds"),
                f"all in {', '.join(by_az)}: EKS needs private subnets in at least two AZs",
            )
        )
    if len(problems) > before:
        return None
    return ExistingNetwork(
        vpc_id=vpc.id,
        private_subnets={az: tuple(ids) for az, ids in sorted(by_az.items())},
        public_subnet_ids=vpc.public_subnet_ids,
    )
