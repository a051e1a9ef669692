"""What a program run sent, as a user of its cluster meets it: the GPU namespace and its objects, the
GPU pools with their stack outputs, node groups and ASG tags."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from eks_gpu.offline import ProgramRun

from tests import aws_data
from tests.helpers import integral

from .resources import JsonDict

NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
ASG_TAG = "aws:autoscaling/tag:Tag"
NAMESPACE = "kubernetes:core/v1:Namespace"
NAME_LABEL = "kubernetes.io/metadata.name"
"""Set on every namespace by the API server (immutable, GA since 1.22)."""
K8S_EFFECT = {"NO_SCHEDULE": "NoSchedule", "NO_EXECUTE": "NoExecute", "PREFER_NO_SCHEDULE": "PreferNoSchedule"}


@dataclass(frozen=True)
class Pool:
    """One GPU pool of a stack."""

    key: str
    outputs: Mapping[str, Any]
    """``gpuNodeGroups.<key>`` of the stack outputs."""
    node_group: Mapping[str, Any]
    """The inputs of its ``aws.eks.NodeGroup``."""
    asg_tags: Mapping[str, str]
    """Every tag the program put on its Auto Scaling group."""
    efa: bool
    region: str

    @property
    def instance(self) -> Mapping[str, Any]:
        """The catalogue record of its first instance type (the one the autoscaler's template uses)."""
        record: Mapping[str, Any] = aws_data.catalogue()[self.node_group["instanceTypes"][0]]
        return record

    @property
    def gpus_per_node(self) -> int:
        return int(self.outputs["gpusPerNode"])

    @property
    def efa_interfaces(self) -> int:
        """EFA interfaces of a node: one per network card (AWS's catalogue)."""
        return int(self.instance["NetworkInfo"]["EfaInfo"]["MaximumEfaInterfaces"]) if self.efa else 0

    @property
    def real_taints(self) -> list[dict[str, str]]:
        """The taints EKS puts on the pool's nodes, in Kubernetes spelling."""
        return [
            {"key": t["key"], "value": t.get("value", ""), "effect": K8S_EFFECT[t["effect"]]}
            for t in self.node_group.get("taints", [])
        ]


@dataclass(frozen=True)
class Stack:
    """A program run, seen from the GPU namespace."""

    label: str
    """How messages name it: ``dev``, ``prod``, ``every-feature``."""
    run: ProgramRun

    @cached_property
    def namespace(self) -> str:
        """The GPU namespace (stack output ``gpuNamespace``)."""
        return str(self.run.outputs["gpuNamespace"])

    def objects(self, type_token: str, namespace: str | None = None) -> list[JsonDict]:
        """Manifests of ``type_token`` the program sent (in ``namespace`` if given), numbers made whole."""
        found = [integral(r.inputs) for r in self.run.of_type(type_token)]
        return [o for o in found if namespace is None or o["metadata"].get("namespace") == namespace]

    @cached_property
    def namespaces(self) -> dict[str, dict[str, str]]:
        """Namespace -> labels, the API server's name label included, ``default`` and ``kube-system`` too."""
        out = {name: {NAME_LABEL: name} for name in ("default", "kube-system")}
        for ns in self.objects(NAMESPACE):
            name = ns["metadata"]["name"]
            out[name] = {**ns["metadata"].get("labels", {}), NAME_LABEL: name}
        return out

    @cached_property
    def pools(self) -> dict[str, Pool]:
        """The GPU pools, by key."""
        pools_config = json.loads(self.run.config["eks-gpu:gpuNodeGroups"])
        tags: dict[str, dict[str, str]] = {}
        for t in self.run.of_type(ASG_TAG):
            tags.setdefault(t.inputs["autoscalingGroupName"], {})[t.inputs["tag"]["key"]] = t.inputs["tag"]["value"]
        out = {}
        for key, outputs in self.run.outputs["gpuNodeGroups"].items():
            out[key] = Pool(
                key=key,
                outputs=outputs,
                node_group=integral(self.run.one(NODE_GROUP, f"-{key}-ng").inputs),
                asg_tags=tags.get(outputs["asgName"], {}),
                efa=bool(pools_config[key].get("efa", False)),
                region=self.run.config["aws:region"],
            )
        return out
