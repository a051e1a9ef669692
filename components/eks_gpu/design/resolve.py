"""Where the config meets AWS: :func:`load` and :func:`resolve` decide the :class:`StackDesign`."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from eks_gpu.config import (
    ACCELERATOR_LABEL,
    DEFAULT_GPU_AMI,
    DEFAULT_SYSTEM_AMI,
    EFA_LABEL,
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
    key_path,
    parse_config,
)
from eks_gpu.config.models import KarpenterPool
from eks_gpu.design.access import design_access
from eks_gpu.design.allocatable import node_allocatable
from eks_gpu.design.autoscaler import design_autoscaler
from eks_gpu.design.efa import efa_az, efa_design
from eks_gpu.design.existing import ClusterFacts, adopt, existing_design, renamed, subnet_key
from eks_gpu.design.karpenter import design_karpenter, design_pool, family_instances, spot_role_problems
from eks_gpu.design.kubernetes import design_kubernetes
from eks_gpu.design.lookup import AwsFacts, InstanceFacts, lookup
from eks_gpu.design.model import (
    SYSTEM_KEY,
    EfaDesign,
    ExistingNetwork,
    GpuMetricsDesign,
    GpuSpec,
    KubernetesDesign,
    NewNetwork,
    NodeGroupDesign,
    StackDesign,
    StorageClassDesign,
    VolumePerformance,
)
from eks_gpu.design.network import existing_network, new_network
from eks_gpu.design.pinning import design_addon_versions, family, release_problem, stack_release_problems
from eks_gpu.design.quotas import QuotaUse, check_quotas, karpenter_markets
from eks_gpu.design.tags import check_asg_tag_budget, node_group_asg_tags
from eks_gpu.facts.node_monitoring import runs_dcgm_server
from eks_gpu.facts.registries import addon_registries


def load(
    raw: Mapping[str, Any], stack: str, region: str | None, today: date, profile: str | None = None
) -> StackDesign:
    """Parse the stack config, ask AWS, and decide everything; raise every problem at once.

    ``profile`` is ``aws:profile``, if set: the kubeconfig authenticates with it too.
    """
    parsed = parse_config(raw, stack, today)
    wrong_region = region_problem(region)
    if wrong_region is not None:
        # before any invoke: every invoke would go to the region's endpoints, which do not exist
        raise ConfigError([*parsed.problems, wrong_region])
    assert region is not None  # region_problem's None says so
    parsed, cluster = adopt(parsed, today)
    return resolve(parsed, lookup(parsed, region), stack, profile, cluster)


def region_problem(region: str | None) -> Problem | None:
    """``aws:region``'s problem when it is unset or EKS does not run in ``region`` (naming the regions
    it runs in); None when the region is one EKS runs in.

    The regions are the bundled table of EKS add-on image registries (one per region EKS serves, from
    the EKS User Guide; :mod:`eks_gpu.facts.registries`): a region missing from it could not pull the
    add-on images the program installs from there either.
    """
    if not region:
        return Problem("aws:region", "is required: the AWS region to build in, e.g. us-west-2")
    table = addon_registries()
    regions = sorted(table.registries)
    if region in regions:
        return None
    close = difflib.get_close_matches(region, regions, n=1, cutoff=0.9)
    meant = f" (did you mean {close[0]}?)" if close else ""
    return Problem(
        "aws:region",
        f"'{region}' is not a region EKS runs in{meant}; it runs in {', '.join(regions)} "
        f"({table.source}, checked {table.updated})",
    )


def resolve(
    parsed: ParsedConfig,
    facts: AwsFacts,
    stack: str,
    profile: str | None = None,
    cluster: ClusterFacts | None = None,
) -> StackDesign:
    """Join ``parsed`` with ``facts`` (and, with ``existingCluster``, the ``cluster`` read by
    :func:`eks_gpu.design.existing.adopt`) into a :class:`StackDesign`, or raise every problem found."""
    problems = list(parsed.problems)
    notes: list[str] = []
    warnings = list(parsed.warnings)
    pools: dict[str, _Group] = {}
    for key, pool in parsed.pools.items():
        group = _group(("gpuNodeGroups", key), pool, facts, problems, karpenter=parsed.karpenter)
        if group is not None:
            pools[key] = group
    system = _group(("systemNodeGroup",), parsed.system, facts, problems) if parsed.system else None

    # a Karpenter pool is served best where all its types are offered, else where any is
    needs = {g.key: g.offered_all or g.offered for g in [*pools.values(), *([system] if system else [])]}
    network: NewNetwork | ExistingNetwork | None = None
    if isinstance(parsed.vpc, NewVpc):
        network = new_network(parsed.vpc, facts, needs, problems, notes)
    elif isinstance(parsed.vpc, ExistingVpc) and cluster is not None:
        found: list[Problem] = []
        network = existing_network(parsed.vpc, facts, found, warnings)
        problems += renamed(found)
        warnings = [subnet_key(w) for w in warnings]
    elif isinstance(parsed.vpc, ExistingVpc):
        network = existing_network(parsed.vpc, facts, problems, warnings)

    azs = frozenset(network.azs) if network else frozenset()
    designs: dict[str, NodeGroupDesign] = {}
    for group in [*pools.values(), *([system] if system else [])]:
        usable = tuple(sorted(group.offered & azs))
        pinned = group.config.availability_zone if isinstance(group.config, GpuPool) else None
        if network is not None and pinned is not None:
            usable = _pinned_az(group, pinned, network.azs, facts, problems)
        elif network is not None and not usable:
            problems.append(Problem(key_path(*group.prefix), _nowhere(group, facts, network.azs)))
        elif group.efa is not None:
            usable = efa_az(group.prefix, usable, notes)
        if group.karpenter and usable:
            group = pools[group.key] = _in_zones(group, usable, facts, problems, notes)
        designs[group.key] = group.design(usable)

    config = parsed.config
    if config is not None:
        problems.extend(stack_release_problems(config))
        groups = {**{g.key: g.config for g in pools.values()}, **({SYSTEM_KEY: system.config} if system else {})}
        for key, node_group in designs.items():
            cfg = groups[key]
            budget = (
                (cfg.karpenter or KarpenterPool()).disruption_budget
                if parsed.karpenter and isinstance(cfg, GpuPool)
                else None
            )
            designs[key] = _with_release(node_group, cfg, config, facts, problems, notes, budget)
        if parsed.karpenter:
            for key, group in pools.items():
                designs[key] = _with_karpenter(designs[key], group)
    addon_versions = (
        design_addon_versions(
            config, facts.addon_defaults, facts.addon_errors, problems, warnings, notes, facts.addons_running
        )
        if config
        else {}
    )
    if config is not None:
        user_env = config.tags.get("Environment")
        if user_env is not None and user_env != config.environment:
            problems.append(
                Problem(key_path("tags", "Environment"), "is set from eks-gpu:environment; set that key instead")
            )
    karpenter = config is not None and parsed.karpenter
    autoscaler = (
        design_autoscaler(config, designs, problems, warnings) if config is not None and not karpenter else None
    )
    if config is not None:
        stack_tags = {**config.tags, "Environment": config.environment}
        user_labels = {key: pool.labels for key, pool in config.gpu_node_groups.items()} | {SYSTEM_KEY: {}}
        for key, node_group in designs.items():
            if node_group.karpenter is not None:
                continue  # a NodePool: no Auto Scaling group, no tags
            # an existing cluster's own autoscaler discovers the pools by the same tags
            discovered = (config.autoscaler.enabled and not karpenter) or cluster is not None
            tags = node_group_asg_tags(node_group, config.cluster_name, stack_tags, discovered)
            prefix = ("systemNodeGroup",) if key == SYSTEM_KEY else ("gpuNodeGroups", key)
            over = check_asg_tag_budget(prefix, node_group, tags, user_labels.get(key, {}))
            if over is not None:
                problems.append(over)
    storage_class = _storage_class(config, problems) if config is not None and cluster is None else None
    existing = None
    if config is not None and cluster is not None:
        running = facts.addons_running
        # what the cluster runs is used, never created: no version to decide, none of its problems
        addon_versions = {n: v for n, v in addon_versions.items() if n not in running}
        problems = [p for p in problems if not any(p.key.startswith(key_path("addons", n)) for n in running)]
        gpu_designs = {k: d for k, d in designs.items() if k in config.gpu_node_groups}
        existing = existing_design(
            cluster,
            running,
            config.addons.pins(),
            gpu_designs,
            problems,
            warnings,
            notes,
            karpenter=karpenter,
        )
    gpu_metrics = _gpu_metrics(config, designs, problems) if config is not None else None
    access = design_access(config, facts, profile, problems, warnings) if config is not None else None
    kubernetes = design_kubernetes(config, designs, problems, warnings) if config is not None else None
    if kubernetes is not None:
        _check_quotas(designs, _test_nodes(kubernetes), facts, problems, warnings)
    if parsed.karpenter:  # from the pools as parsed: with the stack's other problems, even when config failed
        problems += spot_role_problems(parsed.pools, facts, warnings)
    if problems or config is None or network is None or kubernetes is None or access is None:
        raise ConfigError(problems)

    return StackDesign(
        stack=stack,
        cluster_name=config.cluster_name,
        kubernetes_version=config.kubernetes_version,
        region=facts.region,
        partition=facts.partition,
        tags=stack_tags,
        access=access,
        log_retention_days=config.log_retention_days,
        protect=config.protect,
        budget_usd_per_hour=config.budget.max_usd_per_hour,
        node_monitoring=config.node_monitoring.enabled,
        ebs_csi_driver=config.storage.ebs_csi_driver,
        storage_class=storage_class,
        gpu_metrics=gpu_metrics,
        network=network,
        system=designs[SYSTEM_KEY],
        gpu_pools={k: designs[k] for k in config.gpu_node_groups},
        kubernetes=kubernetes,
        autoscaler=autoscaler,
        warnings=tuple(warnings),
        notes=tuple(notes),
        addon_versions=addon_versions,
        existing_cluster=existing,
        karpenter=design_karpenter(config) if karpenter else None,
    )


def _with_karpenter(node_group: NodeGroupDesign, group: _Group) -> NodeGroupDesign:
    """A GPU pool provisioned by Karpenter: its NodePool's design, from the pinned AMI release (required
    by the config checks; without one, their problem is already reported and the pool is left as it is)."""
    assert isinstance(group.config, GpuPool)
    if node_group.release_version is None:
        return node_group
    pool = design_pool(
        group.config.karpenter, node_group.max_size, group.instances, node_group.release_version, node_group.ami_type
    )
    return replace(node_group, karpenter=pool)


def _with_release(
    group: NodeGroupDesign,
    cfg: GpuPool | SystemNodeGroup,
    config: StackConfig,
    facts: AwsFacts,
    problems: list[Problem],
    notes: list[str],
    karpenter_budget: str | None = None,
) -> NodeGroupDesign:
    """The group's AMI release (its own, else the stack's for its AMI family, else none) and the latest
    AWS publishes (:mod:`eks_gpu.design.pinning` says why none is the default). ``karpenter_budget``:
    a Karpenter pool's ``disruptionBudget``, which bounds how its nodes move to a new release (drift);
    None for a managed node group, which EKS replaces one node at a time."""
    prefix = ("systemNodeGroup",) if group.key == SYSTEM_KEY else ("gpuNodeGroups", group.key)
    own_key = key_path(*prefix, "amiReleaseVersion")
    stack_key = key_path("amiReleaseVersion", family(group.ami_type))
    release = cfg.ami_release_version or getattr(config.ami_release_version, family(group.ami_type))
    latest = facts.latest_releases.get(group.ami_type)
    kubernetes = config.kubernetes_version
    if release is not None:
        why = release_problem(release, group.ami_type, kubernetes)
        if why is not None:
            if cfg.ami_release_version is not None:  # the stack's own is checked once, under its key
                problems.append(Problem(own_key, why))
            return group
        if latest is not None and latest != release:
            # a changed EC2NodeClass alias is drift: Karpenter replaces each drifted node, draining it, no more
            # at once than the NodePool's budget (karpenter-provider-aws v1.14 concepts/disruption.md, "Drift")
            move = (
                "a rolling replacement of every node, one at a time"
                if karpenter_budget is None
                else "Karpenter drift: it replaces every node of the pool, draining each, at most "
                f"{karpenter_budget} at a time ({key_path(*prefix, 'karpenter', 'disruptionBudget')})"
            )
            notes.append(
                f"{key_path(*prefix)}: AMI release {release}; AWS publishes {latest} for {group.ami_type.value} "
                f"on Kubernetes {kubernetes}: set {own_key} (or {stack_key}) to it to move, {move}"
            )
    else:
        offered = latest or f"unknown: {facts.release_errors.get(group.ami_type, 'not read')}"
        notes.append(
            f"{key_path(*prefix)}: no AMI release set: EKS creates the group with its latest for "
            f"{group.ami_type.value} on Kubernetes {kubernetes} (now {offered}) and keeps it until a Kubernetes "
            f"upgrade; set {own_key} or {stack_key} to choose and review each move"
        )
    return replace(group, release_version=release, latest_release=latest)


def _gpu_metrics(
    config: StackConfig, designs: Mapping[str, NodeGroupDesign], problems: list[Problem]
) -> GpuMetricsDesign | None:
    """The exporter chosen, and which node types' DCGM host engine it reads: one engine per GPU node.

    With the node monitoring agent, its ``dcgm-server`` is the host engine of the node types its chart
    places it on (:mod:`eks_gpu.facts.node_monitoring`), and the one the agent's health verdicts come
    from: dcgm-exporter reads it there and embeds its own DCGM on the other GPU node types. The CloudWatch
    add-on's own DCGM exporter cannot be pointed at the agent's engine (its chart templates no remote
    host engine), so it is refused where the agent runs one rather than run as a second engine.
    """
    metrics = config.gpu_metrics
    if metrics.exporter == "none" or not config.gpu_node_groups:
        return None
    agent = config.node_monitoring.enabled
    shared: dict[str, tuple[str, ...]] = {}
    own: dict[str, tuple[str, ...]] = {}
    for key in config.gpu_node_groups:
        pool = designs.get(key)
        if pool is None:
            continue
        arch = pool.ami_type.architecture
        served = tuple(t for t in pool.instance_types if agent and runs_dcgm_server(t, arch))
        rest = tuple(t for t in pool.instance_types if t not in served)
        if served:
            shared[key] = served
        if rest:
            own[key] = rest
    if metrics.exporter == "cloudwatch" and shared:
        where = "; ".join(f"{key}: {', '.join(types)}" for key, types in shared.items())
        problems.append(
            Problem(
                key_path("gpuMetrics", "exporter"),
                "'cloudwatch' runs the CloudWatch Observability add-on's own DCGM exporter, a DCGM host engine, on "
                "every GPU node, and the node monitoring agent (eks-gpu:nodeMonitoring.enabled) runs its own on the "
                f"nodes of {where}: with a second DCGM engine the agent reports AcceleratedHardwareReady=False and "
                "auto-repair replaces healthy nodes, and the add-on has no setting to read the agent's engine. "
                "Use dcgm-exporter (the default: it reads the agent's engine there) or none, or set "
                "eks-gpu:nodeMonitoring.enabled to false",
            )
        )
    return GpuMetricsDesign(
        exporter=metrics.exporter,
        chart_version=metrics.chart_version,
        service_monitor=metrics.service_monitor,
        shared_engine=shared,
        own_engine=own,
    )


def _storage_class(config: StackConfig, problems: list[Problem]) -> StorageClassDesign | None:
    """The default StorageClass, which needs the EBS CSI driver as its provisioner."""
    storage = config.storage
    if not storage.default_storage_class:
        return None
    if not storage.ebs_csi_driver:
        problems.append(
            Problem(
                key_path("storage", "defaultStorageClass"),
                "needs eks-gpu:storage.ebsCsiDriver: the StorageClass's provisioner is the EBS CSI driver",
            )
        )
    return StorageClassDesign(reclaim_policy=storage.reclaim_policy)


def _test_nodes(kubernetes: KubernetesDesign) -> dict[str, dict[str, int]]:
    """Pool -> test config key -> the nodes of the pool that test needs while ``pulumi up`` waits for it:
    the smoke test's pod one, the NCCL test's workers one each."""
    tests: dict[str, dict[str, int]] = {}
    if kubernetes.gpu_pod is not None:
        tests.setdefault(kubernetes.gpu_pod.pool, {})["gpuPod"] = 1
    if kubernetes.nccl_test is not None:
        tests.setdefault(kubernetes.nccl_test.pool, {})["ncclTest"] = kubernetes.nccl_test.workers
    return tests


def _check_quotas(
    designs: Mapping[str, NodeGroupDesign],
    tests: Mapping[str, Mapping[str, int]],
    facts: AwsFacts,
    problems: list[Problem],
    warnings: list[str],
) -> None:
    """The node groups, and the nodes the stack's tests start on them, against the account's EC2 vCPU
    quotas (read by :func:`lookup.read_quotas`)."""
    for code, error in sorted(facts.quota_errors.items()):
        warnings.append(f"EC2 vCPU quota {code} could not be read ({error}): the node groups' quotas are not checked")
    uses = [
        QuotaUse(
            key=key,
            prefix=("systemNodeGroup",) if key == SYSTEM_KEY else ("gpuNodeGroups", key),
            instance_types=group.instance_types,
            capacity_type=capacity_type,
            vcpus_per_node=max(facts.instances[t].vcpus for t in group.instance_types),
            desired=group.desired_size,
            # a Karpenter pool: up to its node limit of its largest type, as maxSize nodes of a node group
            max=group.karpenter.node_limit if group.karpenter else group.max_size,
            # tests on one pool may run at once (pulumi creates them in parallel): their nodes add up
            test_nodes=sum(tests.get(key, {}).values()),
            tests=tuple(tests.get(key, {})),
            karpenter_types=group.karpenter.capacity_types if group.karpenter else (),
        )
        for key, group in designs.items()
        if group.instance_types and all(t in facts.instances for t in group.instance_types)
        for capacity_type in _markets(group)
    ]
    check_quotas(uses, facts.quotas, facts.region, problems, warnings)


def _markets(group: NodeGroupDesign) -> tuple[CapacityType, ...]:
    """The capacity types a group's nodes may launch as: its one, or each a Karpenter pool lists (each
    checked for the whole pool: Karpenter may fill the limit from any of them)."""
    if group.karpenter is None:
        return (group.capacity_type,)
    return karpenter_markets(group.karpenter.capacity_types)


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
    """The AZs the group may use: those offering every one of its types (a managed node group launches any of
    them in any of its subnets; an EFA pool's placement group holds one zone), or for a Karpenter pool those
    offering any (Karpenter launches a type only in a zone that offers it: aws/karpenter-provider-aws
    ``pkg/providers/instancetype/offering/provider.go`` ``createOfferings``, an offering of a type in a zone is
    available only if the type is offered there and a subnet is)."""
    offered_all: frozenset[str] = frozenset()
    """The AZs offering every one of its types: where a new VPC's AZs are best placed for it."""
    efa: EfaDesign | None = None
    karpenter: bool = False
    """A GPU pool Karpenter provisions (``provisioner: karpenter``)."""

    def design(self, azs: tuple[str, ...]) -> NodeGroupDesign:
        cfg = self.config
        labels = {POOL_LABEL: self.key}
        if isinstance(cfg, GpuPool) and self.gpu is not None:
            labels |= {GPU_PRESENT_LABEL: "true", ACCELERATOR_LABEL: self.gpu.accelerator, **cfg.labels}
        if self.efa is not None:
            labels[EFA_LABEL] = "true"
        return NodeGroupDesign(
            key=self.key,
            instance_types=tuple(i.instance_type for i in self.instances),
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
            capacity_reservation=cfg.capacity_reservation if isinstance(cfg, GpuPool) else None,
            volume=VolumePerformance(cfg.volume_iops, cfg.volume_throughput_mib_ps)
            if isinstance(cfg, GpuPool)
            else None,
            fast_image_pull=isinstance(cfg, GpuPool) and cfg.fast_image_pull and not self.ami_type.bottlerocket,
            efa=self.efa,
            allocatable=node_allocatable(
                self.instances,
                self.ami_type,
                cfg.disk_size_gib,
                gpus=self.gpu.count if self.gpu else 0,
                efa=self.efa.interfaces if self.efa else 0,
                karpenter=self.karpenter,
            ),
        )


_SHAPE: dict[str, Callable[[InstanceFacts], object]] = {
    "vCPUs": lambda i: i.vcpus,
    "memory MiB": lambda i: i.memory_mib,
    "GPU model": lambda i: i.gpu_model,
    "GPUs": lambda i: i.gpu_count,
}
"""What every instance type of one GPU pool must share (Cluster Autoscaler AWS README: a node
group's template comes from its first instance type)."""
_GPU_SHAPE = ("GPU model", "GPUs")
"""What every instance type of a Karpenter pool must share: what its labels and GPU spec say."""


def _pinned_az(
    group: _Group, az: str, vpc_azs: tuple[str, ...], facts: AwsFacts, problems: list[Problem]
) -> tuple[str, ...]:
    """The one AZ of a pool pinned by ``availabilityZone``: one of the VPC's, offering its types."""
    key = key_path(*group.prefix, "availabilityZone")
    if az not in vpc_azs:
        problems.append(Problem(key, f"'{az}' is not one of the VPC's AZs ({', '.join(vpc_azs)})"))
        return ()
    if az not in group.offered:
        where = ", ".join(sorted(group.offered)) or "none"
        which = "any of" if group.karpenter and group.efa is None else "all"
        problems.append(Problem(key, f"'{az}' does not offer {which} the pool's instance types (they are in: {where})"))
        return ()
    return (az,)


def _in_zones(
    group: _Group, zones: tuple[str, ...], facts: AwsFacts, problems: list[Problem], notes: list[str]
) -> _Group:
    """A Karpenter pool keeps only the types offered in one of its ``zones``: Karpenter would never launch
    another (:attr:`_Group.offered`), yet the plan would list, price and count it. A listed type is a problem
    under its ``instanceTypes`` key; a family's is left out, with a note."""
    dropped = [i.instance_type for i in group.instances if not facts.offerings[i.instance_type] & set(zones)]
    if not dropped:
        return group
    cfg = group.config
    shown = ", ".join(zones)
    if cfg.instance_types:
        for i, itype in enumerate(cfg.instance_types):
            if itype in dropped:
                elsewhere = ", ".join(sorted(facts.offerings[itype]))
                problems.append(
                    Problem(
                        key_path(*group.prefix, "instanceTypes", i),
                        f"'{itype}' is offered in none of the pool's AZs ({shown}), only in {elsewhere}: Karpenter "
                        "would never launch it; drop it, or give the VPC one of those AZs",
                    )
                )
        return group
    notes.append(
        f"{key_path(*group.prefix, 'karpenter', 'instanceFamilies')}: {', '.join(dropped)} left out, offered in "
        f"none of the pool's AZs ({shown})"
    )
    return replace(group, instances=tuple(i for i in group.instances if i.instance_type not in dropped))


def _group(
    prefix: tuple[str, ...],
    cfg: GpuPool | SystemNodeGroup,
    facts: AwsFacts,
    problems: list[Problem],
    karpenter: bool = False,
) -> _Group | None:
    gpu_pool = isinstance(cfg, GpuPool)
    before = len(problems)
    found: list[InstanceFacts] = []
    if isinstance(cfg, GpuPool) and not cfg.instance_types:
        # a Karpenter pool of karpenter.instanceFamilies (else instanceTypes is reported missing)
        families = karpenter and cfg.karpenter is not None and cfg.karpenter.instance_families
        found = family_instances(prefix, cfg, facts, problems) if families else []
        if not found or len(problems) > before:
            return None
    for i, itype in enumerate(cfg.instance_types):
        info = facts.instances.get(itype)
        if info is None and itype in facts.existing_types:
            # a real type: a near name offered here (p5.48xlarge -> g5.48xlarge) is not what was meant
            problems.append(
                Problem(
                    key_path(*prefix, "instanceTypes", i),
                    f"'{itype}' exists but is not offered in any available AZ of {facts.region}; "
                    "choose a type the region offers, or another aws:region",
                )
            )
        elif info is None:
            close = difflib.get_close_matches(itype, facts.region_types, n=1, cutoff=0.8)
            meant = f"; did you mean {close[0]}?" if close else ""
            problems.append(
                Problem(
                    key_path(*prefix, "instanceTypes", i),
                    f"'{itype}' is not offered in any available AZ of {facts.region} (or does not exist){meant}",
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
        # Karpenter sizes each node for its pods, so only the GPU model and count (the pool's labels) must agree
        shape = _GPU_SHAPE if karpenter else _SHAPE
        differing = [name for name in shape if len({_SHAPE[name](i) for i in found}) != 1]
        if differing and karpenter:
            shown = "; ".join(
                f"{i.instance_type}: " + ", ".join(f"{name} {_SHAPE[name](i)}" for name in differing) for i in found
            )
            problems.append(
                Problem(
                    key_path(*prefix, "instanceTypes"),
                    f"mixes GPUs ({shown}): a pool's nodes carry one accelerator label and one GPU count, which "
                    "workloads select and request by; split them into pools (vCPUs and memory may differ)",
                )
            )
        elif differing:
            shown = "; ".join(
                f"{i.instance_type}: " + ", ".join(f"{name} {_SHAPE[name](i)}" for name in differing) for i in found
            )
            problems.append(
                Problem(
                    key_path(*prefix, "instanceTypes"),
                    f"mixes node shapes ({shown}): the Cluster Autoscaler builds a pool's scale-from-zero template "
                    "from its first type, and the accelerator label names one GPU model, so every type of a pool "
                    "needs the same vCPUs, memory, GPU model and GPU count; split them into pools",
                )
            )
        first = found[0]
        gpu = GpuSpec(first.gpu_count, first.gpu_model or "", first.gpu_manufacturer or "")
    zones = [facts.offerings[i.instance_type] for i in found]
    every, union = frozenset.intersection(*zones), frozenset.union(*zones)
    return _Group(
        key=prefix[-1] if gpu_pool else SYSTEM_KEY,
        prefix=prefix,
        config=cfg,
        instances=tuple(found),
        ami_type=ami,
        gpu=gpu,
        offered=union if karpenter and gpu_pool and not (isinstance(cfg, GpuPool) and cfg.efa) else every,
        offered_all=every,
        efa=efa_design(prefix, cfg, found, problems) if isinstance(cfg, GpuPool) else None,
        karpenter=karpenter and gpu_pool,
    )


def _nowhere(group: _Group, facts: AwsFacts, vpc_azs: tuple[str, ...]) -> str:
    where = "; ".join(
        f"{i.instance_type} in {', '.join(sorted(facts.offerings[i.instance_type]))}" for i in group.instances
    )
    if not group.offered:
        return f"no AZ of {facts.region} offers all its instance types ({where}): split them into pools"
    if group.karpenter and group.efa is None:
        return f"the VPC's AZs ({', '.join(vpc_azs)}) offer none of its instance types ({where})"
    return (
        f"the VPC's AZs ({', '.join(vpc_azs)}) offer not all its instance types ({where}); "
        f"they are all offered together in {', '.join(sorted(group.offered))}"
    )
