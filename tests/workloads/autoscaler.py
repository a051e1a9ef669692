"""The Cluster Autoscaler's template node for an AWS Auto Scaling group it scales up from zero.

Reproduces kubernetes/autoscaler ``cluster-autoscaler/cloudprovider/aws/aws_manager.go``
``buildNodeFromTemplate`` (tag cluster-autoscaler-1.35.0) for an ASG without an instance-requirements
mixed instances policy:

* capacity: ``pods`` 110, ``cpu`` = the type's vCPUs, ``nvidia.com/gpu`` = its GPUs, ``memory`` =
  MemoryMb MiB (the first instance type, per the AWS README); then every
  ``k8s.io/cluster-autoscaler/node-template/resources/<name>`` tag sets ``<name>`` (an unparsable
  value is skipped); allocatable = capacity ("TODO: use proper allocatable!!");
* labels: the generic ones (``buildGenericLabels``), then ``node-template/label/<key>`` and ``eks:<key>``
  tags (``extractLabelsFromAsg``);
* taints: ``node-template/taint/<key>`` tags whose value matches ``(.*):(NoSchedule|NoExecute|
  PreferNoSchedule)``, split at the first colon (``extractTaintsFromAsg``).

With the cluster's DaemonSets (:func:`template_node_info`): the template node CA simulates scheduling on
carries a pod of every DaemonSet that would run there (kubernetes/autoscaler
``cluster-autoscaler/simulator/node_info_utils.go``: ``TemplateNodeInfoFromNodeGroupTemplate`` ->
``TemplateNodeInfoFromExampleNodeInfo(..., forceDaemonSets=true)`` -> ``podsExpectedOnFreshNode``, which adds
``daemonset.GetDaemonSetPodsForNode``'s pods, one per DaemonSet whose pod the node takes (its stored
version ddf6e9c45bf87d6ddd34b0a88827f4e111fa0e9b of ``cluster-autoscaler/utils/daemonset/daemonset.go``
checks each with the scheduler's predicates; here taints, node selector and required affinity, as
:func:`tests.workloads.karpenter.daemon_overhead` does: the daemons' requests are small), so a pending
pod fits only in what they leave: the Helm releases' DaemonSets and the EKS add-ons'
(:attr:`tests.workloads.stack.Stack.addon_daemon_specs`).

Left out on purpose: for an EKS managed node group CA also adds the labels, taints and resource tags
that ``eks:DescribeNodegroup`` returns, but only while the group has never had a node
(kubernetes/autoscaler#8799); a template that relies on it scales from zero once. The ASG tags are
what must hold.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from .karpenter import daemon_overhead, less
from .resources import quantity
from .scheduling import Node

PREFIX = "k8s.io/cluster-autoscaler/node-template/"
TAINT_VALUE = re.compile(r"(.*):(?:NoSchedule|NoExecute|PreferNoSchedule)")
ARCHITECTURE = {"x86_64": "amd64", "arm64": "arm64", "i386": "amd64"}


def _after(key: str, marker: str) -> str:
    """Go's ``strings.Split(key, marker)[1]`` when there is one, else ``""``."""
    parts = key.split(marker)
    return parts[1] if len(parts) > 1 else ""


def capacity(instance: Mapping[str, Any], tags: Mapping[str, str]) -> dict[str, Decimal]:
    """The template's capacity (= allocatable) for an instance type record of DescribeInstanceTypes."""
    gpus = sum(g["Count"] for g in instance.get("GpuInfo", {}).get("Gpus", []))
    out = {
        "pods": Decimal(110),
        "cpu": Decimal(instance["VCpuInfo"]["DefaultVCpus"]),
        "nvidia.com/gpu": Decimal(gpus),
        "memory": Decimal(instance["MemoryInfo"]["SizeInMiB"]) * 2**20,
    }
    for key, value in tags.items():
        name = _after(key, PREFIX + "resources/")
        if name:
            try:
                out[name] = quantity(value)
            except ValueError:
                continue
    return out


def labels(instance: Mapping[str, Any], tags: Mapping[str, str], region: str, zone: str) -> dict[str, str]:
    """Generic labels, then the label tags."""
    out = {
        "kubernetes.io/arch": ARCHITECTURE[instance["ProcessorInfo"]["SupportedArchitectures"][0]],
        "kubernetes.io/os": "linux",
        "node.kubernetes.io/instance-type": instance["InstanceType"],
        "topology.kubernetes.io/region": region,
        "topology.kubernetes.io/zone": zone,
        "kubernetes.io/hostname": "template-node",
    }
    for key, value in tags.items():
        label = _after(key, PREFIX + "label/") or _after(key, "eks:")
        if label:
            out[label] = value
    return out


def taints(tags: Mapping[str, str]) -> list[dict[str, str]]:
    """The taint tags."""
    out = []
    for key, value in tags.items():
        name = _after(key, PREFIX + "taint/")
        if TAINT_VALUE.search(value) and name:
            taint_value, effect = value.split(":", 1)
            out.append({"key": name, "value": taint_value, "effect": effect})
    return out


def template_node(instance: Mapping[str, Any], tags: Mapping[str, str], region: str, zone: str) -> Node:
    """The node CA imagines when it considers adding one to the ASG."""
    return Node(labels(instance, tags, region, zone), taints(tags), capacity(instance, tags))


def template_node_info(
    instance: Mapping[str, Any], tags: Mapping[str, str], region: str, zone: str, daemon_specs: Sequence[Any]
) -> Node:
    """The template node with a pod of each DaemonSet that lands on it: what is left for pending pods."""
    node = template_node(instance, tags, region, zone)
    return Node(node.labels, node.taints, less(node.allocatable, daemon_overhead(daemon_specs, node)))
