"""Ordering that only ``depends_on`` gives: what AWS or Kubernetes need to exist first, where no input
carries the dependency. Each test names the resource that must come first and fails if the program
stops waiting for it (the recorded dependencies are ``depends_on`` plus input references; every
resource below is checked against one that none of its inputs reference)."""

from __future__ import annotations

import pytest

from offline import ProgramRun
from tests.helpers import NODE_GROUP, config, run

RELEASE = "kubernetes:helm.sh/v3:Release"
ADDON = "aws:eks/addon:Addon"


@pytest.fixture(scope="module")
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
        "kubernetes:networking.k8s.io/v1:NetworkPolicy",
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
