"""What a node of a pool offers pods, held against the upstream sources' own vectors and AWS's catalogue."""

from __future__ import annotations

import math
import re

import pytest
from eks_gpu.config import AmiType, Architecture
from eks_gpu.design.allocatable import (
    BOTTLEROCKET_EFA_HUGEPAGES_PER_VCPU,
    EVICTION_MEMORY_MIB,
    Allocatable,
    eni_max_pods,
    kube_reserved_cpu_millicores,
    kube_reserved_memory_mib,
    managed_max_pods,
    node_allocatable,
)
from eks_gpu.design.lookup import InstanceFacts
from eks_gpu.facts.aws_limits import EFA_DRIVER_HUGEPAGES_2MI

from tests import aws_data
from tests.helpers import REGION

AL2023 = AmiType("AL2023_x86_64_NVIDIA")
BOTTLEROCKET = AmiType("BOTTLEROCKET_x86_64_NVIDIA")
QUANTITY = re.compile(r"^[0-9]+(m|Mi)?$")
"""The quantities the model writes: plain integers, millicores, MiB (all ``resource.ParseQuantity`` takes)."""


def facts(instance_type: str) -> InstanceFacts:
    """An instance type as ``lookup.instance_facts`` reads it, from moto's catalogue."""
    info = aws_data.catalogue()[instance_type]
    net = info["NetworkInfo"]
    cards = {c["NetworkCardIndex"]: c["MaximumNetworkInterfaces"] for c in net.get("NetworkCards", [])}
    gpus = info.get("GpuInfo", {}).get("Gpus", [{}])
    return InstanceFacts(
        instance_type,
        tuple(Architecture(a) for a in info["ProcessorInfo"]["SupportedArchitectures"]),
        sum(g.get("Count", 0) for g in gpus),
        gpus[0].get("Manufacturer"),
        gpus[0].get("Name"),
        info["VCpuInfo"]["DefaultVCpus"],
        info["MemoryInfo"]["SizeInMiB"],
        network_cards=net.get("MaximumNetworkCards", 1),
        max_network_interfaces=net["MaximumNetworkInterfaces"],
        default_card_interfaces=cards[net.get("DefaultNetworkCardIndex", 0)],
        ipv4_per_interface=net["Ipv4AddressesPerInterface"],
    )


def eni_pods(instance_type: str) -> int:
    f = facts(instance_type)
    return eni_max_pods(f.default_card_interfaces, f.ipv4_per_interface)


# --- the sources' own vectors ------------------------------------------------------------------


def test_max_pods_from_eni_limits_as_nodeadms_tests_have_it() -> None:
    # awslabs/amazon-eks-ami nodeadm/internal/kubelet/maxpods/maxpods_test.go, TestMaxPodsFromENIInfo:
    # "always allow 2 pods w/o needing any IPs"; 2 ENIs of 5 addresses -> 10
    assert eni_max_pods(0, 0) == 2
    assert eni_max_pods(2, 5) == 10


@pytest.mark.parametrize(
    ("instance_type", "listed"),
    [("g6.xlarge", 58), ("g5.xlarge", 58), ("g5.48xlarge", 345), ("p4d.24xlarge", 737), ("p5.48xlarge", 100)],
)
def test_max_pods_counts_the_default_network_card_only(instance_type: str, listed: int) -> None:
    """amazon-eks-ami ``eni-max-pods.txt`` (its values listed here): "For multi-card instance types
    (p5.48xlarge) the max limits is calculated only against the default network card"."""
    assert eni_pods(instance_type) == listed
    if facts(instance_type).max_network_interfaces != facts(instance_type).default_card_interfaces:
        total = eni_max_pods(facts(instance_type).max_network_interfaces, facts(instance_type).ipv4_per_interface)
        assert total > listed


def test_kube_reserved_memory_follows_nodeadm() -> None:
    # maxpods_test.go TestGetMemoryMebibytesToReserve (255 at 0 pods; 299 reservable -> 4 pods -> 299),
    # and the 100-pod case of config_test.go (amazon-eks-ami PR #1713): 1355Mi
    assert kube_reserved_memory_mib(0) == 255
    assert kube_reserved_memory_mib((299 - 255) // 11) == 299
    assert kube_reserved_memory_mib(100) == 1355


def test_kube_reserved_cpu_bands() -> None:
    # 6 % of the first core, 1 % of the second, 0.5 % of the next two, 0.25 % of the rest, floored
    # (nodeadm getCPUMillicoresToReserve; Bottlerocket KUBE_RESERVE_1_CORE .. KUBE_RESERVE_ADDITIONAL)
    assert [kube_reserved_cpu_millicores(n) for n in range(6)] == [0, 60, 70, 75, 80, 82]
    assert kube_reserved_cpu_millicores(12) == 80 + 8 * 25 // 10


def test_bottlerockets_rendered_kubelet_config_for_a_two_vcpu_graviton() -> None:
    """bottlerocket-os/bottlerocket PR #1472, testing on a c6g/m6g large: ``kubeReserved: cpu "70m",
    memory "574Mi"``: the same numbers from the catalogue's ENI limits and vCPUs."""
    f = facts("m6g.large")
    assert kube_reserved_cpu_millicores(f.vcpus) == 70
    assert kube_reserved_memory_mib(managed_max_pods(eni_pods("m6g.large"), f.vcpus)) == 574


def test_managed_node_groups_cap_max_pods_by_vcpus() -> None:
    # EKS User Guide, "How maxPods is determined": 110 below 30 vCPUs, 250 above
    assert managed_max_pods(737, 30) == 110 and managed_max_pods(737, 32) == 250
    assert managed_max_pods(58, 4) == 58


# --- a node of a pool, from the catalogue ------------------------------------------------------


@pytest.mark.parametrize("instance_type", ["g6.xlarge", "g5.xlarge", "p5.48xlarge"])
@pytest.mark.parametrize("ami", [AL2023, BOTTLEROCKET])
def test_a_node_offers_less_than_its_nominal_size(instance_type: str, ami: AmiType) -> None:
    f = facts(instance_type)
    disk = 100
    a = node_allocatable([f], ami, disk, gpus=f.gpu_count)
    pods = managed_max_pods(eni_pods(instance_type), f.vcpus)
    assert a.pods == pods
    assert a.cpu_millicores == f.vcpus * 1000 - kube_reserved_cpu_millicores(f.vcpus)
    # AL2023 reserves for nodeadm's own ENI maxPods; Bottlerocket for the max-pods the node group sets
    reserved = kube_reserved_memory_mib(pods if ami.bottlerocket else eni_pods(instance_type))
    assert a.memory_mib < f.memory_mib - reserved - EVICTION_MEMORY_MIB
    # the kernel keeps part of the nominal memory: Karpenter's 7.5 % default
    assert a.memory_mib == f.memory_mib - math.ceil(f.memory_mib * 0.075) - reserved - EVICTION_MEMORY_MIB
    # the kubelet's own arithmetic on the nominal volume is an upper bound
    assert a.ephemeral_storage_mib < disk * 1024 * 0.9 - 1024
    assert a.ephemeral_storage_mib > disk * 1024 * 0.8
    q = a.quantities()
    assert set(q) == {"cpu", "memory", "ephemeral-storage", "pods", "nvidia.com/gpu"}
    assert q["nvidia.com/gpu"] == str(aws_data.gpus(instance_type)[0])
    assert all(QUANTITY.match(v) for v in q.values()), q


def test_efa_huge_pages_come_out_of_memory() -> None:
    f = facts("p5.48xlarge")
    interfaces = f.network_cards
    plain = node_allocatable([f], AL2023, 100, gpus=f.gpu_count)
    efa = node_allocatable([f], AL2023, 100, gpus=f.gpu_count, efa=interfaces)
    assert plain.memory_mib - efa.memory_mib == EFA_DRIVER_HUGEPAGES_2MI * 2
    assert efa.quantities()["hugepages-2Mi"] == f"{EFA_DRIVER_HUGEPAGES_2MI * 2}Mi"
    assert efa.quantities()["vpc.amazonaws.com/efa"] == str(interfaces)
    # Bottlerocket pre-allocates 110 pages a vCPU (corndog); the program claims none of them for pods
    plain = node_allocatable([f], BOTTLEROCKET, 100, gpus=f.gpu_count)
    efa = node_allocatable([f], BOTTLEROCKET, 100, gpus=f.gpu_count, efa=interfaces)
    assert plain.memory_mib - efa.memory_mib == f.vcpus * BOTTLEROCKET_EFA_HUGEPAGES_PER_VCPU * 2
    assert "hugepages-2Mi" not in efa.quantities()


def test_the_disk_is_the_pools_disk_size() -> None:
    f = facts("g6.xlarge")
    small, large = (node_allocatable([f], AL2023, gib).ephemeral_storage_mib for gib in (50, 500))
    assert large - small > 0.8 * 450 * 1024


def test_a_pool_of_several_types_offers_the_least_of_them() -> None:
    a, b = aws_data.same_shape_pair(REGION)
    each = [node_allocatable([facts(t)], AL2023, 100) for t in (a, b)]
    both = node_allocatable([facts(a), facts(b)], AL2023, 100)
    assert both == Allocatable(
        cpu_millicores=min(x.cpu_millicores for x in each),
        memory_mib=min(x.memory_mib for x in each),
        ephemeral_storage_mib=min(x.ephemeral_storage_mib for x in each),
        pods=min(x.pods for x in each),
    )
