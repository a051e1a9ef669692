"""What a program run sent, as a user of its cluster meets it: the GPU namespace and its objects, the
GPU pools with their stack outputs, node groups and ASG tags, and the EKS add-ons it installs with the
DaemonSets they run on every node (``tests/data/eks_addon_daemonsets.json``)."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path
from typing import Any

from eks_gpu.offline import ProgramRun

from tests import aws_data
from tests.charts import render
from tests.helpers import integral
from tests.test_charts import pod_spec

from .resources import JsonDict

NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
ASG_TAG = "aws:autoscaling/tag:Tag"
NAMESPACE = "kubernetes:core/v1:Namespace"
NAME_LABEL = "kubernetes.io/metadata.name"
"""Set on every namespace by the API server (immutable, GA since 1.22)."""
K8S_EFFECT = {"NO_SCHEDULE": "NoSchedule", "NO_EXECUTE": "NoExecute", "PREFER_NO_SCHEDULE": "PreferNoSchedule"}
ADDON = "aws:eks/addon:Addon"
RELEASE = "kubernetes:helm.sh/v3:Release"
EKS_CLUSTER = "eks:index:Cluster"
ADDON_DAEMONSETS = Path(__file__).resolve().parent.parent / "data" / "eks_addon_daemonsets.json"
"""The EKS add-ons' DaemonSets: per add-on, each DaemonSet's default pod spec and its sources, or
``unknown`` with what was searched."""


@cache
def addon_daemonsets() -> dict[str, Any]:
    """EKS add-on name -> its entry of :data:`ADDON_DAEMONSETS`."""
    addons: dict[str, Any] = json.loads(ADDON_DAEMONSETS.read_text())["addons"]
    return addons


def _at(values: Mapping[str, Any], path: str | None) -> Any:
    """The value at a dotted ``path`` of an add-on's configuration values, or None."""
    if not path:
        return None
    found: Any = values
    for key in path.split("."):
        found = found.get(key) if isinstance(found, Mapping) else None
    return found


def addon_daemon_specs(installed: Mapping[str, Mapping[str, Any]]) -> list[JsonDict]:
    """Pod specs of the DaemonSets of the ``installed`` add-ons (name -> the configuration values sent),
    each with what the values override (an entry's ``configured``: ``tolerations`` and ``affinity``
    replace the field; ``tolerateAllTaints`` true makes it ``[{operator: Exists}]``, the EBS CSI chart's
    ``templates/_node.tpl``). An installed add-on without an entry, or marked ``unknown``, is an error
    (LookupError): its DaemonSets' requests would be silently missing and every fit optimistic."""
    out = []
    for name, values in installed.items():
        entry = addon_daemonsets().get(name)
        if entry is None or entry.get("unknown"):
            raise LookupError(
                f"add-on {name}: its DaemonSets' requests are not known (tests/data/eks_addon_daemonsets.json)"
            )
        for ds in entry.get("daemonSets", []):
            spec = copy.deepcopy(ds["podSpec"])
            configured = ds.get("configured", {})
            for field in ("tolerations", "affinity"):
                if (value := _at(values, configured.get(field))) is not None:
                    spec[field] = value
            if _at(values, configured.get("tolerateAllTaints")) is True:
                spec["tolerations"] = [{"operator": "Exists"}]
            out.append(spec)
    return out


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
    def addons(self) -> dict[str, dict[str, Any]]:
        """EKS add-on name -> its configuration values, for every add-on the run installs: the
        ``aws:eks/addon:Addon`` resources, and the two pulumi-eks creates inside ``eks:index:Cluster``
        (where :data:`eks_gpu.offline.plan.CLUSTER_ADDON_INPUTS` reads their versions): the VPC CNI, always
        (pulumi/pulumi-eks ``nodejs/eks/addons/cni-addon.ts``; its ``vpcCniOptions`` become environment
        variables, nothing that moves its pods), and kube-proxy unless ``kubeProxyAddonOptions.enabled`` is
        false. None with ``existingCluster``: the cluster's own add-ons are not the run's."""
        out: dict[str, dict[str, Any]] = {}
        for addon in self.run.of_type(ADDON):
            raw = addon.inputs.get("configurationValues")
            out[str(addon.inputs["addonName"])] = json.loads(raw) if raw else {}
        for cluster in self.run.of_type(EKS_CLUSTER):
            out["vpc-cni"] = {}
            if (cluster.inputs.get("kubeProxyAddonOptions") or {}).get("enabled", True):
                out["kube-proxy"] = {}
        return out

    @cached_property
    def addon_daemon_specs(self) -> list[JsonDict]:
        """Pod specs of the DaemonSets of the EKS add-ons the run installs (:func:`addon_daemon_specs`)."""
        return addon_daemon_specs(self.addons)

    @cached_property
    def helm_daemon_specs(self) -> list[JsonDict]:
        """Pod specs of the DaemonSets the run's Helm releases install (rendered offline, tests/charts.py)."""
        return [pod_spec(o) for r in self.run.of_type(RELEASE) for o in render(r) if o["kind"] == "DaemonSet"]

    @cached_property
    def daemon_specs(self) -> list[JsonDict]:
        """Every DaemonSet pod spec a new node gets one pod of: the Helm releases' and the EKS add-ons'."""
        return [*self.helm_daemon_specs, *self.addon_daemon_specs]

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
