"""Ordering that only ``depends_on`` gives: what AWS or Kubernetes need to exist first, where no input
carries the dependency. Each test names the resource that must come first and fails if the program
stops waiting for it (the recorded dependencies are ``depends_on`` plus input references; every
resource below is checked against one that none of its inputs reference)."""

from __future__ import annotations

import pytest

from offline import ProgramRun
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
