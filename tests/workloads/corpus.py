"""The corpus: GPU workloads as users write them (``corpus/<name>.yaml``), what each needs of the
network, and their placement on a pool the way a user does it, from the stack outputs."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .resources import JsonDict

CORPUS = Path(__file__).parent / "corpus"
MARKER = "# workload: "
"""First line of every corpus file, and of every README block that shows one: ``# workload: <name>``."""
GPU = "nvidia.com/gpu"
EFA = "vpc.amazonaws.com/efa"
Port = tuple[str, int]
"""(protocol, port)."""


@dataclass(frozen=True)
class Workload:
    """One corpus file and how a user runs it."""

    name: str
    whole_node: bool = False
    """Each pod takes every GPU (and, with ``efa``, every EFA interface) of its node."""
    efa: bool = False
    """Runs on EFA pools only."""
    peer_ports: Sequence[Port] = ()
    """Opened by each of its pods to the others: torchrun's rendezvous, and NCCL's bootstrap and socket
    transport, which listen on ephemeral ports (40000 stands for them)."""
    served_ports: Sequence[Port] = ()
    """Reached by other pods of the namespace."""

    @property
    def path(self) -> Path:
        return CORPUS / f"{self.name}.yaml"

    def manifests(self) -> list[JsonDict]:
        return [m for m in yaml.safe_load_all(self.path.read_text()) if m]


DISTRIBUTED: Sequence[Port] = (("TCP", 29500), ("TCP", 40000))
WORKLOADS = (
    Workload("single-gpu"),
    Workload("ddp", whole_node=True, peer_ports=DISTRIBUTED),
    Workload("vllm", served_ports=(("TCP", 8000),)),
    Workload("notebook", served_ports=(("TCP", 8888),)),
    Workload("efa", whole_node=True, efa=True, peer_ports=DISTRIBUTED),
)
README_REQUIRED = ("single-gpu", "ddp", "efa")
"""The examples README.md must show (issue 20: single GPU, multi-node DDP, EFA job)."""


def marked_blocks(markdown: str) -> list[tuple[str, str]]:
    """(name, text) of every fenced ``yaml`` block of ``markdown`` whose first line is the marker."""
    blocks = re.findall(r"^```yaml\n(.*?)^```$", markdown, flags=re.MULTILINE | re.DOTALL)
    return [(b[len(MARKER) : b.index("\n")], b) for b in blocks if b.startswith(MARKER)]


@dataclass(frozen=True)
class Placement:
    """What a user copies from the stack outputs to run on one pool."""

    namespace: str
    node_selector: Mapping[str, str]
    tolerations: Sequence[Mapping[str, Any]]
    gpus_per_node: int
    efa_interfaces: int


def _pod_spec(manifest: JsonDict) -> JsonDict | None:
    if manifest["kind"] == "Pod":
        spec: JsonDict = manifest["spec"]
        return spec
    if manifest["kind"] in ("Job", "Deployment"):
        template: JsonDict = manifest["spec"]["template"]["spec"]
        return template
    return None


def place(workload: Workload, where: Placement) -> list[JsonDict]:
    """The workload's manifests with the pool's namespace, node selector and tolerations, and for a
    whole-node workload the node's GPU (and EFA) count in every container that asks for some."""
    out = []
    for manifest in copy.deepcopy(workload.manifests()):
        manifest["metadata"]["namespace"] = where.namespace
        spec = _pod_spec(manifest)
        if spec is not None:
            spec["nodeSelector"] = dict(where.node_selector)
            spec["tolerations"] = [dict(t) for t in where.tolerations]
            for c in spec["containers"] if workload.whole_node else []:
                for kind in ("limits", "requests"):
                    amounts = c.get("resources", {}).get(kind, {})
                    for name, count in ((GPU, where.gpus_per_node), (EFA, where.efa_interfaces)):
                        if name in amounts:
                            amounts[name] = str(count)
        out.append(manifest)
    return out


@dataclass(frozen=True)
class PodInstance:
    """A pod its controller would create."""

    name: str
    namespace: str
    metadata: JsonDict
    spec: JsonDict


def pods(manifests: Sequence[JsonDict]) -> list[PodInstance]:
    """The pods of a workload: a Pod itself, a Job's ``parallelism`` (with the labels the Job
    controller adds: ``job-name``, ``batch.kubernetes.io/job-name``, and the completion index for an
    Indexed Job), a Deployment's ``replicas``."""
    out = []
    for m in manifests:
        name, ns = m["metadata"]["name"], m["metadata"]["namespace"]
        if m["kind"] == "Pod":
            out.append(PodInstance(name, ns, m["metadata"], m["spec"]))
        elif m["kind"] in ("Job", "Deployment"):
            count = m["spec"].get("parallelism" if m["kind"] == "Job" else "replicas", 1)
            template = m["spec"]["template"]
            for i in range(count):
                labels = dict(template.get("metadata", {}).get("labels", {}))
                if m["kind"] == "Job":
                    labels |= {"job-name": name, "batch.kubernetes.io/job-name": name}
                    if m["spec"].get("completionMode") == "Indexed":
                        labels["batch.kubernetes.io/job-completion-index"] = str(i)
                meta = {**template.get("metadata", {}), "labels": labels}
                out.append(PodInstance(f"{name}-{i}", ns, meta, template["spec"]))
    return out


def claims(manifests: Sequence[JsonDict]) -> list[JsonDict]:
    """The workload's PersistentVolumeClaims."""
    return [m for m in manifests if m["kind"] == "PersistentVolumeClaim"]
