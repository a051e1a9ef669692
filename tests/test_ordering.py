"""Ordering that only ``depends_on`` gives: what AWS or Kubernetes need to exist first, where no input
carries the dependency. Each test names the resource that must come first and fails if the program
stops waiting for it (the recorded dependencies are ``depends_on`` plus input references; every
resource below is checked against one that none of its inputs reference)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from eks_gpu.offline import ProgramRun

from tests.helpers import NODE_GROUP, config, gpu_pool, program_scope, run

RELEASE = "kubernetes:helm.sh/v3:Release"
ADDON = "aws:eks/addon:Addon"
ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"


@pytest.fixture(scope=program_scope)
def stack() -> ProgramRun:
    return run(config())


def _addon(result: ProgramRun, addon_name: str) -> str:
    (found,) = [a.urn for a in result.of_type(ADDON) if a.inputs["addonName"] == addon_name]
    return found


def test_nat_gateways_wait_for_the_internet_route(stack: ProgramRun) -> None:
    # A NAT gateway in a public subnet without its route to the internet gateway comes up with no
    # way out; AWS documents the gateway route as a prerequisite of a working NAT gateway.
    route = stack.named("eks-gpu-network-public-default").urn
    nats = stack.of_type("aws:ec2/natGateway:NatGateway")
    assert len(nats) == 1  # natGateways: single
    assert route in nats[0].dependencies
    assert route not in nats[0].property_dependencies.get("subnetId", ())


def test_the_namespace_objects_wait_for_the_namespace(stack: ProgramRun) -> None:
    # They name the namespace by its string, not by an output: only depends_on orders them.
    namespace = stack.named("eks-gpu-workloads-ns").urn
    inside = [
        *stack.of_type("kubernetes:core/v1:ResourceQuota"),
        *stack.of_type("kubernetes:core/v1:LimitRange"),
        *stack.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy"),
    ]
    assert sorted(r.type for r in inside) == [
        "kubernetes:core/v1:LimitRange",
        "kubernetes:core/v1:ResourceQuota",
        *["kubernetes:networking.k8s.io/v1:NetworkPolicy"] * 5,  # the deny and its four allows
    ]
    for resource in inside:
        assert namespace in resource.dependencies, resource.name


def test_the_gpu_namespace_is_deleted_before_the_ebs_csi_driver_and_its_storage_class(stack: ProgramRun) -> None:
    # Deleting the namespace deletes its claims, and the driver's controller deletes their volumes
    # (reclaim policy Delete): deleted after the driver, the claims go and the EBS volumes stay,
    # billed, in no stack. Pulumi deletes in reverse dependency order; no input of the namespace
    # names the driver or the class.
    namespace = stack.named("eks-gpu-workloads-ns")
    driver = _addon(stack, "aws-ebs-csi-driver")
    storage_class = stack.one("kubernetes:storage.k8s.io/v1:StorageClass").urn
    assert {driver, storage_class} <= set(namespace.dependencies)
    assert {driver, storage_class}.isdisjoint(u for urns in namespace.property_dependencies.values() for u in urns)


def test_without_the_ebs_csi_driver_the_namespace_waits_for_no_driver() -> None:
    result = run(config(storage={"ebsCsiDriver": False, "defaultStorageClass": False}))
    namespace = result.named("eks-gpu-workloads-ns")
    assert [r for r in result.of_type(ADDON) if r.inputs["addonName"] == "aws-ebs-csi-driver"] == []
    assert not [u for u in namespace.dependencies if result.by_urn(u).type == ADDON]


def test_the_autoscaler_association_waits_for_the_role_policy(stack: ProgramRun) -> None:
    # The association hands out the role's credentials: before the inline policy lands the
    # autoscaler's first calls are denied and it backs off.
    association = stack.one("aws:eks/podIdentityAssociation:PodIdentityAssociation", "-autoscaler-identity")
    policy = stack.one("aws:iam/rolePolicy:RolePolicy", "-cluster-autoscaler")
    assert policy.urn in association.dependencies


def test_the_autoscaler_release_waits_for_identity_nodes_and_dns(stack: ProgramRun) -> None:
    # Its pod needs credentials (agent and association), a node to run on, and CoreDNS to resolve
    # the AWS API names; Helm's atomic install fails if the Deployment is not ready in time.
    release = stack.one(RELEASE, "-autoscaler-release")
    wanted = {
        _addon(stack, "eks-pod-identity-agent"),
        _addon(stack, "coredns"),
        stack.one("aws:eks/podIdentityAssociation:PodIdentityAssociation", "-autoscaler-identity").urn,
        stack.one(NODE_GROUP, "-system-ng").urn,
    }
    assert wanted <= set(release.dependencies)


@pytest.mark.parametrize("addon_name", ["aws-ebs-csi-driver", "amazon-cloudwatch-observability"])
def test_a_pod_identity_addon_waits_for_its_roles_policy(stack: ProgramRun, addon_name: str) -> None:
    # What uses a role depends on its policy attachments (ServiceRole): the add-on's association
    # hands out the role's credentials, and before the AWS managed policy is attached the
    # controller's first calls are denied. The association's input is the role, not the attachment.
    if addon_name == "amazon-cloudwatch-observability":  # not the default: only without the node monitoring agent
        stack = run(config(gpuMetrics={"exporter": "cloudwatch"}, nodeMonitoring={"enabled": False}))
    addon = stack.by_urn(_addon(stack, addon_name))
    role = stack.one("eks-gpu:iam:ServiceRole", f"-{addon_name}")
    (attachment,) = [r for r in stack.children_of(role.urn) if r.type == ATTACHMENT]
    assert attachment.urn in addon.dependencies
    assert attachment.urn not in addon.property_dependencies.get("podIdentityAssociations", ())


def test_the_smoke_test_waits_for_the_quota_and_limits_of_its_namespace() -> None:
    # The Job names the namespace by its output, which orders it after the Namespace alone; the
    # namespace's ResourceQuota and LimitRange are checked at admission only, on pods created after
    # them, so a smoke test created first would escape the GPU quota every other workload meets.
    result = run(config({"inference": gpu_pool(desiredSize=1)}, gpuPod={"enabled": True}))
    job = result.one("kubernetes:batch/v1:Job")
    for resource in [result.one("kubernetes:core/v1:ResourceQuota"), result.one("kubernetes:core/v1:LimitRange")]:
        assert resource.urn in job.dependencies, resource.name
        assert resource.urn not in job.property_dependencies.get("metadata", ())


# --- the path from `pulumi up` to the smoke test's pod running ------------------------------------

PATH_LABELS = [
    (r"-system-(ng|lt|asg-.*)$", "system node group"),
    (r"-inference-(ng|lt|asg-.*)$", "GPU pool"),
    (r"-smoke-test-job$", "smoke test"),
    (r"-workloads-ns$", "namespace"),
    (r"-workloads-", "namespace's objects"),
    (r"-nvidia-release$", "device plugin"),
    (r"-autoscaler-identity$", "autoscaler's association"),
    (r"-autoscaler-iam-cluster-autoscaler$", "autoscaler's role policy"),
    (r"-autoscaler-", "autoscaler"),
    (r"-addons-eks-pod-identity-agent$", "Pod Identity agent"),
    (r"-addons-aws-ebs-csi-driver$", "EBS CSI driver"),
    (r"-addons-aws-ebs-csi-driver-AmazonEBSCSIDriverPolicy$", "EBS CSI role's policy"),
    (r"-storage-class$", "default StorageClass"),
    (r"-coredns$", "CoreDNS"),
    (r"-node-Amazon", "node role's policies"),
    (r"-network-private-", "private subnets' NAT routes"),
    (r"-network-nat-", "NAT gateway"),
    (r"-network-public-default$", "internet route"),
    (r"-cluster-eks$", "cluster"),
    (r"-cluster-logs$", "control-plane log group"),
    (r"-cluster-service-", "cluster role's policies"),
    (r"-k8s$", "Kubernetes provider"),
]
"""Resource name pattern -> what it is on the path (first match wins)."""

PATH = {
    ("smoke test", "GPU pool"): "a node group (and its ASG's tags) for the autoscaler to start a node in",
    ("smoke test", "device plugin"): "AL2023: the plugin advertises nvidia.com/gpu, or the pod never schedules",
    ("smoke test", "autoscaler"): "the pool is at zero: the autoscaler starts its node",
    # (depends_on a component waits for all of it: the autoscaler's association and role too)
    ("smoke test", "autoscaler's association"): "as the autoscaler",
    ("smoke test", "autoscaler's role policy"): "as the autoscaler",
    ("smoke test", "namespace's objects"): "quota, defaults and policies apply only to pods created after them",
    ("namespace's objects", "namespace"): "they name the namespace by its string",
    # deleted before the driver: it deletes the volumes of the namespace's claims
    ("namespace", "EBS CSI driver"): "the driver deletes the namespace's claims' volumes, so it goes after",
    ("namespace", "default StorageClass"): "as the driver: the claims' class",
    ("default StorageClass", "EBS CSI driver"): "the class's provisioner",
    ("EBS CSI driver", "system node group"): "the add-on turns ACTIVE once its pods run",
    ("EBS CSI driver", "CoreDNS"): "its controller resolves AWS's API names",
    ("EBS CSI driver", "Pod Identity agent"): "its controller's credentials come from the agent",
    ("EBS CSI driver", "EBS CSI role's policy"): "credentials without the policy are denied",
    ("autoscaler", "Pod Identity agent"): "the autoscaler's credentials come from the agent",
    ("autoscaler", "autoscaler's association"): "and from its association",
    ("autoscaler", "system node group"): "its pod needs a node",
    ("autoscaler", "CoreDNS"): "it resolves AWS's API names through CoreDNS",
    ("autoscaler's association", "autoscaler's role policy"): "credentials without the policy are denied",
    ("Pod Identity agent", "system node group"): "the add-on turns ACTIVE once its pods run",
    ("CoreDNS", "system node group"): "CoreDNS goes Degraded without a node, and its creation times out",
    ("system node group", "node role's policies"): "nodes join only with the role's policies",
    ("system node group", "private subnets' NAT routes"): "nodes pull images through the NAT gateway",
    ("GPU pool", "node role's policies"): "as for the system group",
    ("GPU pool", "private subnets' NAT routes"): "as for the system group",
    ("NAT gateway", "internet route"): "a NAT gateway has no way out before the public route",
    ("cluster", "cluster role's policies"): "EKS checks the cluster role's policies at creation",
    ("cluster", "control-plane log group"): "else EKS creates the log group itself, unmanaged",
}
"""Every ``depends_on`` between the resources ``pulumi up`` creates before the smoke test's pod runs,
with its reason: an ordering no input reference gives (each has its comment at its ``depends_on``)."""


def _label(name: str) -> str:
    for pattern, label in PATH_LABELS:
        if re.search(pattern, name):
            return label
    raise AssertionError(f"{name} is on the smoke test's path but has no label here")


def _explicit(resource: Any) -> set[str]:
    """What a resource waits for through ``depends_on`` alone (no input of it references them)."""
    by_inputs = {u for urns in resource.property_dependencies.values() for u in urns}
    return set(resource.dependencies) - by_inputs


def test_every_depends_on_on_the_way_to_the_first_gpu_pod_has_its_reason() -> None:
    # dev's shape: a pool at zero, the smoke test on it, the autoscaler that starts its node
    result = run(config({"inference": gpu_pool()}, gpuPod={"enabled": True}))
    by_urn = {r.urn: r for r in result.resources}
    seen: set[str] = set()
    todo = [result.one("kubernetes:batch/v1:Job").urn]
    edges: set[tuple[str, str]] = set()
    while todo:
        urn = todo.pop()
        if urn in seen or urn not in by_urn:
            continue
        seen.add(urn)
        resource = by_urn[urn]
        provider = resource.provider.split("::")[0] if resource.provider.startswith("urn:") else ""
        for waited in _explicit(resource):
            edges.add((_label(resource.name), _label(by_urn[waited].name)))
        todo += [*resource.dependencies, *([provider] if provider in by_urn else [])]
    edges.discard(("Kubernetes provider", "cluster"))  # none here: the public endpoint needs no rule
    assert edges == set(PATH)


def test_the_pod_identity_agent_does_not_wait_for_coredns() -> None:
    # It runs on the host network with the default DNS policy (its chart's DaemonSet): the VPC's
    # resolver answers it, so it starts beside CoreDNS, not after it; the autoscaler needs both.
    result = run(config())
    agent = result.by_urn(_addon(result, "eks-pod-identity-agent"))
    assert _addon(result, "coredns") not in agent.dependencies
    assert result.one(NODE_GROUP, "-system-ng").urn in agent.dependencies
