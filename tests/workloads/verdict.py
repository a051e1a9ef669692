"""The four questions of issue 20 part 6, asked of one corpus workload placed on one pool of a stack.
Each answer is a list of problems, empty when the workload passes, every one a sentence that names
the workload, the stack and pool, the check and the reason."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from . import admission, corpus, psa
from .autoscaler import ARCHITECTURE, PREFIX, template_node_info
from .corpus import PodInstance, Workload
from .karpenter import daemon_overhead, less
from .netpol import Address, Cluster, Endpoint, Pod
from .resources import ResourceList, pod_total, quantity, with_api_defaults
from .scheduling import Node, nodes_needed, unfit
from .stack import Pool, Stack

LIMIT_RANGE = "kubernetes:core/v1:LimitRange"
QUOTA = "kubernetes:core/v1:ResourceQuota"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
INTERNET = "52.216.8.54"
"""A public address: Amazon S3 in us-east-1 (52.216.0.0/15 in AWS's published ranges), where weights
and datasets come from."""
KUBE_DNS = Pod(
    "kube-system",
    {"k8s-app": "kube-dns", "eks.amazonaws.com/component": "coredns"},
    "coredns",
    {"dns": ("UDP", 53), "dns-tcp": ("TCP", 53), "metrics": ("TCP", 9153)},
)
"""A CoreDNS pod of the EKS add-on, with its labels and container ports."""
CLIENT_LABELS = {"app.kubernetes.io/name": "client"}


@dataclass(frozen=True)
class Case:
    """One workload on one pool of one stack."""

    stack: Stack
    pool: Pool
    workload: Workload

    def __str__(self) -> str:
        return f"{self.workload.name} on {self.stack.label}/{self.pool.key}"

    @cached_property
    def manifests(self) -> list[dict]:
        where = corpus.Placement(
            namespace=self.stack.namespace,
            node_selector=self.pool.outputs["nodeSelector"],
            tolerations=self.pool.outputs["tolerations"],
            gpus_per_node=self.pool.gpus_per_node,
            efa_interfaces=self.pool.efa_interfaces,
        )
        return corpus.place(self.workload, where)

    @cached_property
    def pods(self) -> list[PodInstance]:
        return corpus.pods(self.manifests)

    @cached_property
    def admitted(self) -> list[admission.Admitted]:
        """Each pod after API defaulting and LimitRanger's mutation."""
        ranges = self.stack.objects(LIMIT_RANGE, self.stack.namespace)
        return [admission.mutate(ranges, with_api_defaults(p.spec)) for p in self.pods]

    @cached_property
    def requests(self) -> list[ResourceList]:
        return [pod_total(a.spec) for a in self.admitted]

    def problem(self, check: str, message: str) -> str:
        return f"{self}: {check}: {message}"


def admitted(case: Case) -> list[str]:
    """1. The API server creates every pod and claim: LimitRange defaults and bounds, resource
    validation, Pod Security at the namespace's enforce level, the namespace's quotas."""
    stack, problems = case.stack, []
    labels = stack.namespaces[stack.namespace]
    level = labels.get("pod-security.kubernetes.io/enforce", "privileged")
    version = labels.get("pod-security.kubernetes.io/enforce-version", "latest")
    ranges = stack.objects(LIMIT_RANGE, stack.namespace)
    for pod, adm in zip(case.pods, case.admitted, strict=True):
        for e in admission.validate_resources(adm):
            check = "LimitRange" if "LimitRange's default" in e else "resource validation"
            problems.append(case.problem(check, f"pod {pod.name}, {e}"))
        for e in admission.validate_limits(ranges, adm.spec):
            problems.append(case.problem("LimitRange", f"pod {pod.name}, {e}"))
        for e in psa.violations(level, version, pod.metadata, adm.spec):
            problems.append(case.problem(f"Pod Security {level}:{version}", f"pod {pod.name} violates {e}"))
    for claim in corpus.claims(case.manifests):
        for e in admission.validate_claim(ranges, claim["spec"]):
            problems.append(case.problem("LimitRange", f"claim {claim['metadata']['name']}, {e}"))
    quotas = stack.objects(QUOTA, stack.namespace)
    problems += [
        case.problem("ResourceQuota", e) for e in admission.within_quotas(quotas, [a.spec for a in case.admitted])
    ]
    return problems


def _netpol_pod(pod: PodInstance) -> Pod:
    named = {
        p["name"]: (p.get("protocol", "TCP"), int(p["containerPort"]))
        for c in pod.spec.get("containers", [])
        for p in c.get("ports", [])
        if "name" in p
    }
    return Pod(pod.namespace, pod.metadata.get("labels", {}), pod.name, named)


def connected(case: Case) -> list[str]:
    """2. The namespace's NetworkPolicies let the workload resolve names, reach the internet over
    HTTPS, talk between its pods and serve its namespace, and keep other namespaces out."""
    stack = case.stack
    cluster = Cluster(stack.namespaces, stack.objects(NETWORK_POLICY))
    pods = [_netpol_pod(p) for p in case.pods]
    client = Pod(stack.namespace, CLIENT_LABELS, "client")
    needs: list[tuple[str, Endpoint, Endpoint, str, int]] = []
    for pod in pods:
        needs += [("DNS", pod, KUBE_DNS, proto, 53) for proto in ("UDP", "TCP")]
        needs.append(("HTTPS to the internet", pod, Address(INTERNET), "TCP", 443))
        needs += [
            ("peer traffic", pod, peer, *port) for peer in pods if peer != pod for port in case.workload.peer_ports
        ]
        needs += [("traffic from its namespace", client, pod, *port) for port in case.workload.served_ports]
    problems = [
        case.problem("NetworkPolicy", f"{what} from {src} to {dst} ({proto}/{port}) is denied: {why}")
        for what, src, dst, proto, port in needs
        if (why := cluster.denial(src, dst, proto, port))
    ]
    foreign = Pod("default", CLIENT_LABELS, "client")
    for pod in pods:
        for proto, port in [*case.workload.served_ports, *case.workload.peer_ports] or [("TCP", 8080)]:
            if cluster.denial(foreign, pod, proto, port) is None:
                what = f"ingress from another namespace ({foreign} to {pod}, {proto}/{port})"
                problems.append(case.problem("NetworkPolicy", f"{what} is allowed; it must be denied"))
    return problems


def scales_from_zero(case: Case) -> list[str]:
    """3. The Cluster Autoscaler, looking at the pool's ASG from zero nodes, sees a node every pod fits
    on once a pod of each DaemonSet that lands there is on it (:func:`tests.workloads.autoscaler.template_node_info`),
    and the pool may grow to as many as the pods fill."""
    pool, problems = case.pool, []
    zone = pool.outputs["availabilityZones"][0]
    node = template_node_info(pool.instance, pool.asg_tags, pool.region, zone, case.stack.daemon_specs)
    for pod, adm, requests in zip(case.pods, case.admitted, case.requests, strict=True):
        for reason in unfit(adm.spec, requests, node):
            resource = reason.removeprefix("Insufficient ").split(":")[0]
            if reason.startswith("Insufficient") and f"{PREFIX}resources/{resource}" not in pool.asg_tags:
                reason += f" (no {PREFIX}resources/{resource} tag on the ASG)"
            problems.append(
                case.problem(
                    "Cluster Autoscaler",
                    f"pod {pod.name} does not fit the template node: {reason}",
                )
            )
    if not problems:
        needed, most = nodes_needed(case.requests, node), int(pool.node_group["scalingConfig"]["maxSize"])
        if needed > most:
            problems.append(
                case.problem("Cluster Autoscaler", f"the pods fill {needed} nodes, the pool's maxSize is {most}")
            )
    return problems


def real_node(pool: Pool, allocatable: ResourceList) -> Node:
    """A node of ``pool`` as it joins: its node group's labels and the kubelet's well-known ones (arch, os,
    instance type, region, zone: kubernetes.io's "Well-Known Labels"), its taints, ``allocatable``."""
    labels = {
        **pool.node_group.get("labels", {}),
        "kubernetes.io/arch": ARCHITECTURE[pool.instance["ProcessorInfo"]["SupportedArchitectures"][0]],
        "kubernetes.io/os": "linux",
        "node.kubernetes.io/instance-type": pool.instance["InstanceType"],
        "topology.kubernetes.io/region": pool.region,
        "topology.kubernetes.io/zone": pool.outputs["availabilityZones"][0],
    }
    return Node(labels, pool.real_taints, allocatable)


def fits_real_node(case: Case) -> list[str]:
    """4. Every pod fits the node that arrives: the pool's allocatable (stack output
    ``gpuNodeGroups.<pool>.allocatable``), labels and taints, less a pod of each DaemonSet that lands
    there (the Helm releases' and the EKS add-ons', as the scheduler sees them bound to the node)."""
    pool = case.pool
    published = pool.outputs.get("allocatable")
    where = f"gpuNodeGroups.{pool.key}.allocatable"
    if not published:
        return [case.problem("real node", f"the stack output {where} is missing: nothing says what a node offers")]
    allocatable = {name: quantity(value) for name, value in published.items()}
    asked = {name for r in case.requests for name, v in r.items() if v > 0} | {"pods"}
    if missing := sorted(asked - set(allocatable)):
        return [case.problem("real node", f"the stack output {where} names no {', '.join(missing)}")]
    node = real_node(pool, allocatable)
    node = Node(node.labels, node.taints, less(allocatable, daemon_overhead(case.stack.daemon_specs, node)))
    return [
        case.problem("real node", f"pod {pod.name} does not fit: {reason}")
        for pod, adm, requests in zip(case.pods, case.admitted, case.requests, strict=True)
        for reason in unfit(adm.spec, requests, node)
    ]
