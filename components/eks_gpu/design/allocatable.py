"""What a real node of a pool offers the scheduler: allocatable, not the instance type's nominal size.

The Cluster Autoscaler's template node for a group at zero has allocatable = capacity = the
instance type's vCPUs and ``MemoryMb`` and no ephemeral storage, unless a
``node-template/resources/<name>`` tag overrides it (kubernetes/autoscaler
``cluster-autoscaler/cloudprovider/aws/aws_manager.go``, ``buildNodeFromTemplate``, tag
cluster-autoscaler-1.35.0). A pod sized between a real node's allocatable and the nominal size
then scales a pool up and never fits; one asking for ephemeral storage never scales it at all.
This module computes what the kubelet of a node of the pool will report, from the same inputs its
AMI uses, so the tags can say that instead. Where a source leaves a margin (the kernel's share of
memory, filesystem overhead) it errs low: a pod that fits the template must fit the node; one that
would have fit by a few hundred MiB waits for a node that is already up.

Pure functions, no Pulumi: the design calls :func:`node_allocatable` once per node group.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from eks_gpu.config import AmiType, Architecture
from eks_gpu.facts.aws_limits import EFA_DRIVER_HUGEPAGES_2MI

if TYPE_CHECKING:
    from eks_gpu.design.lookup import InstanceFacts

MNG_MAX_PODS = (110, 250)
"""The ``maxPods`` a managed node group without a custom AMI writes into a node's user data at most:
110 below 30 vCPUs, 250 from there (EKS User Guide, "choosing-instance-type", "How maxPods is
determined": "Managed node group enforcement ... takes precedence over any other maxPods
configuration"; the AL2 ``max-pods-calculator.sh`` it follows switches at ``CPU_COUNT > 30``)."""
MNG_MAX_PODS_VCPUS = 30
HOST_NETWORK_PODS = 2
"""Pods that take no VPC address (the VPC CNI and kube-proxy): the ``+ 2`` of the max-pods formula."""
KUBE_RESERVED_MEMORY_MIB = (255, 11)
"""kube-reserved memory = 255 MiB + 11 MiB per pod of ``maxPods`` (awslabs/amazon-eks-ami
``nodeadm/internal/kubelet/config.go`` ``GetMemoryMebibytesToReserve``; Bottlerocket's
``kube_reserve_memory``, bottlerocket-core-kit ``sources/api/schnauzer/src/helpers/mod.rs``, takes
it from there: amazon-eks-ami PR #419)."""
KUBE_RESERVED_CPU = ((1, 600), (1, 100), (2, 50), (None, 25))
"""kube-reserved CPU: (cores, ten-thousandths of a millicore per millicore) per band: 6 % of the first
core, 1 % of the second, 0.5 % of the next two, 0.25 % of the rest (nodeadm ``config.go``
``getCPUMillicoresToReserve``, integer arithmetic per band; Bottlerocket ``kube_cpu_helper``: the
same bands, floored)."""
KUBE_RESERVED_EPHEMERAL_MIB = 1024
"""kube-reserved ephemeral-storage ``1Gi`` (nodeadm ``withDefaultReservedResources``; Bottlerocket
``packages/kubernetes-1.*/kubelet-config``: ``default "1Gi"``)."""
EVICTION_MEMORY_MIB = 100
"""Hard eviction at ``memory.available<100Mi``: nodeadm's ``evictionHard``, and the kubelet's default,
which Bottlerocket keeps (Kubernetes docs, "Node-pressure Eviction": default hard eviction thresholds)."""
EVICTION_NODEFS_FRACTION = 0.10
"""Hard eviction at ``nodefs.available<10%`` (same two sources). The kubelet takes the hard memory and
nodefs thresholds out of allocatable memory and ephemeral storage, and pre-allocated huge pages out of
allocatable memory (kubernetes ``pkg/kubelet/nodestatus/setters.go``, ``MachineInfo``: "for every huge
page reservation, we need to remove it from allocatable memory")."""
VM_MEMORY_OVERHEAD_FRACTION = 0.075
"""The share of a type's nominal memory the guest kernel never sees (Karpenter's
``VM_MEMORY_OVERHEAD_PERCENT`` default, aws/karpenter-provider-aws ``pkg/operator/options/options.go``;
applied as ``ceil(MiB * 0.075)`` in ``pkg/providers/instancetype/types.go`` ``memory``)."""
ARM64_CMA_MIB = 64
"""Graviton types reserve 64 MiB of contiguous memory the kernel keeps (Karpenter ``types.go`` ``memory``)."""
FILESYSTEM_OVERHEAD = (0.03, 1024)
"""What a volume's filesystem keeps of its size: (fraction, MiB). No source gives the AMIs' numbers;
ext4's inode tables take about 1.6 % and its journal up to 1 GiB, XFS's log and headers less. Chosen
above both, so the template never promises storage the node lacks."""
BOTTLEROCKET_EFA_HUGEPAGES_PER_VCPU = 110
"""2 MiB huge pages Bottlerocket reserves per vCPU when it finds an EFA device (bottlerocket-core-kit
``sources/api/corndog/src/main.rs``, ``compute_hugepages_for_efa``: ``num_cpus::get() * 110``)."""

GPU_RESOURCE = "nvidia.com/gpu"
"""The extended resource the NVIDIA device plugin advertises, one per GPU."""
EFA_RESOURCE = "vpc.amazonaws.com/efa"
"""The extended resource the EFA device plugin advertises, one per EFA interface."""
HUGEPAGES_RESOURCE = "hugepages-2Mi"
"""The resource the kubelet advertises for 2 MiB huge pages, which EFA jobs request."""


@dataclass(frozen=True)
class Allocatable:
    """What the kubelet of a node of a pool reports as allocatable, for every instance type of the pool
    (the least of them, resource by resource)."""

    cpu_millicores: int
    memory_mib: int
    """Memory for pods: after the kernel's share, kube-reserved, hard eviction and huge pages."""
    ephemeral_storage_mib: int
    """Of the image volume (AL2023's root volume, Bottlerocket's data volume: ``diskSizeGiB``)."""
    pods: int
    gpus: int = 0
    efa: int = 0
    hugepages_2mi_mib: int = 0
    """Huge pages pods can request (AL2023 EFA pools; 0 where no source the program trusts says)."""

    def quantities(self) -> dict[str, str]:
        """Kubernetes resource name -> quantity, as a node's ``status.allocatable`` would say it."""
        out = {
            "cpu": f"{self.cpu_millicores}m",
            "memory": f"{self.memory_mib}Mi",
            "ephemeral-storage": f"{self.ephemeral_storage_mib}Mi",
            "pods": str(self.pods),
        }
        if self.gpus:
            out[GPU_RESOURCE] = str(self.gpus)
        if self.efa:
            out[EFA_RESOURCE] = str(self.efa)
        if self.hugepages_2mi_mib:
            out[HUGEPAGES_RESOURCE] = f"{self.hugepages_2mi_mib}Mi"
        return out


def eni_max_pods(default_card_interfaces: int, ipv4_per_interface: int) -> int:
    """``maxPods`` from the ENI limits: interfaces of the default network card * (addresses per
    interface - 1) + 2 (nodeadm ``eni_max_pods.go`` ``calculateStandardMaxPods``; ``eni-max-pods.txt``:
    "For multi-card instance types (p5.48xlarge) the max limits is calculated only against the
    default network card at index (0)")."""
    return default_card_interfaces * max(ipv4_per_interface - 1, 0) + HOST_NETWORK_PODS


def managed_max_pods(eni_pods: int, vcpus: int) -> int:
    """The ``maxPods`` a managed node group gives a node: the ENI value under its cap (no prefix
    delegation: the program does not turn it on in the VPC CNI)."""
    small, large = MNG_MAX_PODS
    return min(eni_pods, small if vcpus <= MNG_MAX_PODS_VCPUS else large)


def kube_reserved_cpu_millicores(vcpus: int) -> int:
    total = vcpus * 1000
    reserved, start = 0, 0
    for cores, rate in KUBE_RESERVED_CPU:
        end = total if cores is None else start + cores * 1000
        if total > start:
            reserved += (min(total, end) - start) * rate // 10000
        start = end
    return reserved


def kube_reserved_memory_mib(max_pods: int) -> int:
    base, per_pod = KUBE_RESERVED_MEMORY_MIB
    return base + per_pod * max_pods


def memory_capacity_mib(nominal_mib: int, architecture: Architecture) -> int:
    """The memory the kubelet will see (``MemTotal``), estimated from the nominal size as Karpenter does."""
    mib = nominal_mib - (ARM64_CMA_MIB if architecture is Architecture.ARM64 else 0)
    return mib - math.ceil(mib * VM_MEMORY_OVERHEAD_FRACTION)


def ephemeral_capacity_mib(disk_size_gib: int) -> int:
    """The filesystem on a volume of ``disk_size_gib``, at least (see :data:`FILESYSTEM_OVERHEAD`)."""
    fraction, fixed = FILESYSTEM_OVERHEAD
    return math.floor(disk_size_gib * 1024 * (1 - fraction)) - fixed


def _one(info: InstanceFacts, ami: AmiType, disk_size_gib: int, gpus: int, efa: int, karpenter: bool) -> Allocatable:
    eni_pods = eni_max_pods(info.default_card_interfaces or info.max_network_interfaces, info.ipv4_per_interface)
    # Karpenter writes the ENI-limited maxPods into the node's user data, uncapped (docs/design-karpenter.md §5)
    pods = eni_pods if karpenter else managed_max_pods(eni_pods, info.vcpus)
    if ami.bottlerocket:
        # its kube-reserved memory follows settings.kubernetes.max-pods, which the node group sets
        reserved_memory = kube_reserved_memory_mib(pods)
        # pre-allocated when it finds an EFA device, so out of allocatable memory (the kubelet takes
        # huge pages out of it); not offered to pods: the program claims none of them (efa_hugepages)
        hugepages_held = info.vcpus * BOTTLEROCKET_EFA_HUGEPAGES_PER_VCPU * 2 if efa else 0
        hugepages = 0
    else:
        # nodeadm reserves for its own ENI maxPods, not the node group's (amazon-eks-ami#1698)
        reserved_memory = kube_reserved_memory_mib(eni_pods)
        hugepages_held = hugepages = EFA_DRIVER_HUGEPAGES_2MI * 2 if efa else 0
    memory = memory_capacity_mib(info.memory_mib, ami.architecture)
    disk = ephemeral_capacity_mib(disk_size_gib)
    return Allocatable(
        cpu_millicores=info.vcpus * 1000 - kube_reserved_cpu_millicores(info.vcpus),
        memory_mib=memory - reserved_memory - EVICTION_MEMORY_MIB - hugepages_held,
        ephemeral_storage_mib=math.floor(disk * (1 - EVICTION_NODEFS_FRACTION)) - KUBE_RESERVED_EPHEMERAL_MIB,
        pods=pods,
        gpus=gpus,
        efa=efa,
        hugepages_2mi_mib=hugepages,
    )


def node_allocatable(
    instances: Sequence[InstanceFacts],
    ami: AmiType,
    disk_size_gib: int,
    *,
    gpus: int = 0,
    efa: int = 0,
    karpenter: bool = False,
) -> Allocatable:
    """What any node of a group of ``instances`` brings, with ``gpus`` GPUs and ``efa`` EFA interfaces
    (the device plugins' resources) and its ``ami``'s reservations, on a ``disk_size_gib`` image volume.

    ``karpenter``: a node Karpenter launched, not a managed node group's. Its ``maxPods`` is the ENI
    limit without the managed node groups' 110/250 cap: Karpenter sets ``kubelet.maxPods`` from
    ``default card ENIs x (IPv4 per ENI - 1) + 2`` for AL2023 and Bottlerocket alike (aws/karpenter-provider-aws
    ``pkg/providers/instancetype/types.go``, ``pods``; ``pkg/providers/amifamily/resolver.go``,
    ``bottlerocket.go``: ``SupportsENILimitedPodDensity``), so more pods fit and, on Bottlerocket, kube-reserved
    memory (11 MiB per pod) grows with it. Everything else is the same model."""
    each = [_one(info, ami, disk_size_gib, gpus, efa, karpenter) for info in instances]
    return Allocatable(
        cpu_millicores=min(a.cpu_millicores for a in each),
        memory_mib=min(a.memory_mib for a in each),
        ephemeral_storage_mib=min(a.ephemeral_storage_mib for a in each),
        pods=min(a.pods for a in each),
        gpus=gpus,
        efa=efa,
        hugepages_2mi_mib=min(a.hugepages_2mi_mib for a in each),
    )
