"""How Karpenter provisions the GPU pools of a ``provisioner: karpenter`` stack: pure decisions.

Per pool a :class:`KarpenterPoolDesign` (the NodePool and its EC2NodeClass, decided): capacity order,
reservations, the pinned AMI alias, the limits, disruption; for the stack a :class:`KarpenterDesign`
(chart, replicas, interruption queue). docs/design-karpenter.md gives the sources.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence

from eks_gpu.config import AmiType, GpuPool, StackConfig
from eks_gpu.config.models import AL2023_RELEASE, KarpenterPool, is_bottlerocket_release
from eks_gpu.config.problems import Problem, key_path
from eks_gpu.design.lookup import SPOT_ROLE, AwsFacts, InstanceFacts, family_of, pool_instance_types
from eks_gpu.design.model import KarpenterDesign, KarpenterPoolDesign
from eks_gpu.facts.karpenter import CHART_VERSION


def ami_alias(release: str, ami_type: AmiType) -> str:
    """The EC2NodeClass ``amiSelectorTerms[].alias`` pinned at an EKS AMI release.

    The CRD's description of ``alias`` (``karpenter-crd-1.14.1/templates/karpenter.k8s.aws_ec2nodeclasses.yaml``):
    "family@version", "pinned to a specific AMI release, with that AMIs version format (ex:
    "al2023@v20240625" or "bottlerocket@v1.10.0")". So AL2023 ``1.35.2-20260304`` is ``al2023@v20260304``
    (the build date; the Kubernetes minor is the cluster's) and Bottlerocket ``1.58.0-c5c37032`` is
    ``bottlerocket@v1.58.0``. Raises ValueError for a release not of the AMI type's family (the config
    layer reports that under its key first).
    """
    if ami_type.bottlerocket:
        if not is_bottlerocket_release(release):
            raise ValueError(f"{release} is not a Bottlerocket release")
        return f"bottlerocket@v{release.split('-', 1)[0]}"
    match = AL2023_RELEASE.match(release)
    if match is None:
        raise ValueError(f"{release} is not an AL2023 release")
    return f"al2023@v{match['date']}"


def gpu_label_name(model: str) -> str:
    """A GPU model as Karpenter's ``karpenter.k8s.aws/instance-gpu-name`` label spells it: lower case,
    spaces to dashes (``lowerKabobCase`` in aws/karpenter-provider-aws ``pkg/providers/instancetype/types.go``):
    ``L40S`` -> ``l40s``, ``RTX PRO 4500`` -> ``rtx-pro-4500``."""
    return model.lower().replace(" ", "-")


def family_instances(
    prefix: tuple[str, ...], pool: GpuPool, facts: AwsFacts, problems: list[Problem]
) -> list[InstanceFacts]:
    """The types a ``karpenter.instanceFamilies`` pool gets: those of its families offered in an available
    AZ with NVIDIA GPUs, of the pool's AMI architecture (when ``amiType`` is set), with EFA for an EFA pool,
    narrowed by ``gpuName`` and ``gpuCount``; they must share one GPU model and count and one architecture
    (what the pool's labels and outputs say, what workloads select by). Problems name the keys."""
    own = pool.karpenter or KarpenterPool()
    key = (*prefix, "karpenter")
    known = sorted({family_of(t) for t in facts.region_types})
    listed = sorted(
        (facts.instances[t] for t in pool_instance_types(pool, facts.region_types) if t in facts.instances),
        key=lambda i: (i.vcpus, i.instance_type),
    )
    nvidia = [i for i in listed if _nvidia(i)]
    for i, name in enumerate(own.instance_families):
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
            meant = f"; did you mean {close[0]}?" if close else ""
            why = f"is no instance family {facts.region} offers{meant}"
        elif not any(family_of(t.instance_type) == name for t in nvidia):
            why = f"has no type with NVIDIA GPUs in {facts.region}; a GPU pool needs them"
        else:
            continue
        problems.append(Problem(key_path(*key, "instanceFamilies", i), f"'{name}' {why}"))
    if not nvidia:
        return []
    where = f"{', '.join(own.instance_families)} in {facts.region}"
    chosen = nvidia
    if pool.ami_type is not None:
        chosen = [i for i in chosen if pool.ami_type.architecture in i.architectures]
    if pool.efa:
        chosen = [i for i in chosen if i.efa_supported]
    if own.gpu_name is not None:
        chosen = [i for i in chosen if gpu_label_name(i.gpu_model or "") == own.gpu_name]
    if own.gpu_count is not None:
        chosen = [i for i in chosen if i.gpu_count == own.gpu_count]
    shapes = _shapes(chosen, efa=pool.efa)
    if not chosen:
        narrowed = [
            name
            for name, on in (
                ("amiType", pool.ami_type is not None),
                ("efa", pool.efa),
                ("karpenter.gpuName", own.gpu_name is not None),
                ("karpenter.gpuCount", own.gpu_count is not None),
            )
            if on
        ]
        problems.append(
            Problem(
                key_path(*key, "instanceFamilies"),
                f"{where}: no type left after {', '.join(narrowed)}; their NVIDIA types are {_shown(_shapes(nvidia))}",
            )
        )
    elif len(shapes) > 1:
        problems.append(
            Problem(
                key_path(*key, "instanceFamilies"),
                f"{where} give types of several GPU shapes ({_shown(shapes)}): a pool's nodes carry one GPU model "
                "and count, which workloads select and request by (a job sized for one model's memory must not "
                "land on another), and an EFA pool one EFA layout; narrow them with karpenter.gpuName and "
                "karpenter.gpuCount, or split the pool",
            )
        )
    return chosen


def _nvidia(info: InstanceFacts) -> bool:
    """A type with NVIDIA GPUs that EKS AMIs run on."""
    return bool(info.gpu_count and (info.gpu_manufacturer or "").upper() == "NVIDIA" and info.architectures)


def _shapes(instances: Sequence[InstanceFacts], efa: bool = False) -> dict[str, list[str]]:
    """``"1x l4 x86_64"`` -> its types: what a pool's types must share (with ``efa``, the EFA layout too:
    an EFA pool's nodes all get one interface per network card)."""
    out: dict[str, list[str]] = {}
    for i in instances:
        shape = f"{i.gpu_count}x {gpu_label_name(i.gpu_model or '')} {'/'.join(a.value for a in i.architectures)}"
        if efa:
            shape += f" {i.efa_max_interfaces} EFA on {i.network_cards} cards"
        out.setdefault(shape, []).append(i.instance_type)
    return out


def _shown(shapes: Mapping[str, Sequence[str]]) -> str:
    return "; ".join(f"{shape}: {', '.join(types)}" for shape, types in shapes.items())


def design_pool(
    cfg: KarpenterPool | None,
    max_size: int,
    instances: Sequence[InstanceFacts],
    release: str,
    ami_type: AmiType,
) -> KarpenterPoolDesign:
    """One pool's NodePool and EC2NodeClass, decided: ``maxSize`` nodes is the limit, and the GPU and
    CPU limits are that many nodes of the allowed type with the most GPUs, and with the most vCPUs
    (Karpenter drops a type whose node would overrun a limit, so these never refuse a node the
    node limit allows)."""
    own = cfg or KarpenterPool()
    return KarpenterPoolDesign(
        capacity_types=own.capacity_types,
        capacity_reservation_ids=own.capacity_reservation_ids,
        ami_alias=ami_alias(release, ami_type),
        node_limit=max_size,
        gpu_limit=max_size * max(i.gpu_count for i in instances),
        cpu_limit=max_size * max(i.vcpus for i in instances),
        consolidation_policy=own.consolidation_policy,
        consolidate_after=own.consolidate_after,
        disruption_budget_nodes=own.disruption_budget,
        expire_after=own.expire_after,
        termination_grace_period=own.termination_grace_period,
    )


def design_karpenter(config: StackConfig) -> KarpenterDesign:
    """Karpenter itself: the pinned chart, the replicas, the interruption queue named after the cluster
    (as Karpenter's getting-started CloudFormation names it, ``QueueName: ${ClusterName}``)."""
    return KarpenterDesign(
        chart_version=CHART_VERSION,
        replicas=config.karpenter.replicas,
        interruption_queue=config.cluster_name,
    )


SPOT_ROLE_COMMAND = "aws iam create-service-linked-role --aws-service-name spot.amazonaws.com"
"""What creates :data:`~eks_gpu.design.lookup.SPOT_ROLE` (Karpenter's getting-started guide, once per account).

The program does not create it (``aws.iam.ServiceLinkedRole``): the role is account-wide and outlives the
stack, other stacks and tools launch spot with it, and a stack that created it would delete it on ``pulumi
destroy`` (or fail to, while any spot instance runs)."""


def spot_role_problems(pools: Mapping[str, GpuPool], facts: AwsFacts, warnings: list[str]) -> list[Problem]:
    """A problem under each Karpenter pool's ``capacityTypes`` that lists ``spot`` when the account lacks the
    spot service-linked role (Karpenter's spot launches would fail with
    ``AuthFailure.ServiceLinkedRoleCreationNotPermitted``: its controller policy cannot create the role); a
    warning when the role could not be read. ``pools`` as parsed, so this comes with the stack's other problems."""
    spot = [key for key, pool in pools.items() if "spot" in (pool.karpenter or KarpenterPool()).capacity_types]
    if not spot or facts.spot_role is True:
        return []
    if facts.spot_role is None:
        if facts.spot_role_error is not None:
            warnings.append(
                f"{key_path('gpuNodeGroups', spot[0], 'karpenter', 'capacityTypes')}: could not read whether the "
                f"account has {SPOT_ROLE} ({facts.spot_role_error}); spot launches fail without it "
                f"(create it once with: {SPOT_ROLE_COMMAND})"
            )
        return []
    return [
        Problem(
            key_path("gpuNodeGroups", key, "karpenter", "capacityTypes"),
            f"lists spot, but the account has no {SPOT_ROLE} service-linked role, which EC2 needs for every spot "
            f"launch and Karpenter's policy cannot create; create it once for the account with: {SPOT_ROLE_COMMAND} "
            "(or drop spot)",
        )
        for key in spot
    ]
