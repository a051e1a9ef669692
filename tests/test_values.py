"""Values that differ from their defaults reach AWS as set, and what the engine makes up is followed.

The shipped stacks start every pool at ``desiredSize == minSize`` and every launch template at one
version, so a program that sent ``minSize`` as the desired size, or version ``"1"`` instead of the
template's own, would pass every test built on them. These tests use values that tell them apart:

- a pool (and the system group) whose ``desiredSize`` is neither its ``minSize`` nor its ``maxSize``;
- launch template version numbers, which the offline engine makes up from what makes a new version
  (EC2 starts a template at 1 and adds one per ``CreateLaunchTemplateVersion``; botocore's ec2
  ``examples-1.json`` shows ``LatestVersionNumber`` 1 for a new template and 2 after one more): they
  differ between pools, so a node group naming the wrong one, or a literal, is caught;
- Auto Scaling group names, which EKS makes up as ``eks-<node group name>-<uuid>`` (a real one,
  ``eks-{nodegroup-name}-58c776863-98-...``, is quoted in terraform-aws-modules/terraform-aws-eks
  issue 3007): the engine derives them from the node group's name, so each pool's tags must go to
  its own group;
- pulumi-eks's options that stop it from building what the program builds itself.
"""

from __future__ import annotations

import pytest
from eks_gpu.offline import ProgramRun

from tests.helpers import (
    CLUSTER,
    LAUNCH_TEMPLATE,
    NODE_GROUP,
    config,
    gpu_pool,
    launch_template,
    node_group,
    program_scope,
    run,
)

ADDON = "aws:eks/addon:Addon"
TAG = "aws:autoscaling/tag:Tag"
POOLS = {
    "inference": gpu_pool(minSize=1, desiredSize=3, maxSize=5),
    "training": gpu_pool("g6.xlarge", diskSizeGiB=300),
}
SYSTEM = {"minSize": 2, "desiredSize": 3, "maxSize": 4}


@pytest.fixture(scope=program_scope)
def sized() -> ProgramRun:
    return run(config(POOLS, systemNodeGroup=SYSTEM))


# --- desiredSize -------------------------------------------------------------------------


def test_a_desired_size_between_min_and_max_reaches_the_node_group(sized: ProgramRun) -> None:
    assert node_group(sized, "inference")["scalingConfig"] == {"minSize": 1, "desiredSize": 3, "maxSize": 5}
    assert node_group(sized, "system")["scalingConfig"] == {"minSize": 2, "desiredSize": 3, "maxSize": 4}
    # unset, it is minSize
    assert node_group(sized, "training")["scalingConfig"] == {"minSize": 0, "desiredSize": 0, "maxSize": 2}
    # and after create it is the autoscaler's: a later pulumi up does not scale the group back
    assert {r.name: r.ignore_changes for r in sized.of_type(NODE_GROUP)} == {
        f"eks-gpu-{key}-ng": ("scalingConfig.desiredSize",) for key in ("inference", "training", "system")
    }


# --- launch template versions --------------------------------------------------------------


def _version(result: ProgramRun, key: str) -> str:
    return str(result.one(LAUNCH_TEMPLATE, f"-{key}-lt").outputs["latestVersion"])


def test_each_node_group_names_its_own_templates_latest_version(sized: ProgramRun) -> None:
    versions = {key: _version(sized, key) for key in ("inference", "training", "system")}
    assert len(set(versions.values())) == 3, versions  # else this test could not tell them apart
    for key, version in versions.items():
        lt = sized.one(LAUNCH_TEMPLATE, f"-{key}-lt")
        assert node_group(sized, key)["launchTemplate"] == {"id": lt.id, "version": version}
    # the version comes from the template itself, so the node group waits for it
    ng = sized.one(NODE_GROUP, "-inference-ng")
    assert ng.property_dependencies["launchTemplate"] == (sized.one(LAUNCH_TEMPLATE, "-inference-lt").urn,)


def test_a_new_template_version_is_followed_and_a_tags_edit_makes_none(sized: ProgramRun) -> None:
    bigger = run(config({**POOLS, "inference": {**POOLS["inference"], "diskSizeGiB": 400}}, systemNodeGroup=SYSTEM))
    assert (
        launch_template(bigger, "inference")["blockDeviceMappings"]
        != launch_template(sized, "inference")["blockDeviceMappings"]
    )
    assert _version(bigger, "inference") != _version(sized, "inference")
    assert node_group(bigger, "inference")["launchTemplate"]["version"] == _version(bigger, "inference")
    assert _version(bigger, "training") == _version(sized, "training")
    # tags are the template's own, updated in place (terraform-provider-aws launch_template.go): no version
    retagged = run(config(POOLS, systemNodeGroup=SYSTEM, tags={"team": "vision"}))
    assert launch_template(retagged, "inference")["tags"] != launch_template(sized, "inference")["tags"]
    assert {k: _version(retagged, k) for k in ("inference", "training", "system")} == {
        k: _version(sized, k) for k in ("inference", "training", "system")
    }


# --- Auto Scaling group names -------------------------------------------------------------


def _asg_of(result: ProgramRun, key: str) -> str:
    groups = result.one(NODE_GROUP, f"-{key}-ng").outputs["resources"][0]["autoscalingGroups"]
    assert len(groups) == 1
    return str(groups[0]["name"])


def test_each_pools_asg_tags_go_to_the_group_eks_made_for_it(sized: ProgramRun) -> None:
    asgs = {key: _asg_of(sized, key) for key in ("inference", "training")}
    assert len(set(asgs.values())) == 2
    for key, asg in asgs.items():
        name = sized.one(NODE_GROUP, f"-{key}-ng").outputs["nodeGroupName"]
        assert asg.startswith(f"eks-{name}-")  # the format EKS uses, so the engine's stand-in varies with it
        tags = [t for t in sized.of_type(TAG) if t.name.startswith(f"eks-gpu-{key}-asg-")]
        keys = {t.inputs["tag"]["key"] for t in tags}
        # discovery and the scale-from-zero template: without them the autoscaler ignores the pool
        assert {"k8s.io/cluster-autoscaler/enabled", "k8s.io/cluster-autoscaler/eks-gpu-dev"} <= keys
        assert "k8s.io/cluster-autoscaler/node-template/label/eks-gpu/node-group" in keys
        assert {t.inputs["autoscalingGroupName"] for t in tags} == {asg}
    assert sized.outputs["gpuNodeGroups"]["training"]["asgName"] == asgs["training"]


# --- pulumi-eks must not build what the program builds ------------------------------------


def test_pulumi_eks_builds_no_coredns_node_group_or_security_groups_of_its_own(sized: ProgramRun) -> None:
    inputs = sized.one(CLUSTER).inputs
    # pulumi-eks (nodejs/eks/cluster.ts) adds a CoreDNS add-on unless enabled is false or it has no
    # node group of its own; the program's add-on carries the system group's tolerations instead.
    assert inputs["corednsAddonOptions"] == {"enabled": False}
    # its default node group (an ASG of t3.medium with its own role) and its cluster and node
    # security groups: the managed node groups use EKS's cluster security group
    assert inputs["skipDefaultNodeGroup"] is True
    assert inputs["skipDefaultSecurityGroups"] is True
    # the add-ons it does manage: kube-proxy, and the VPC CNI with NetworkPolicy enforcement on
    # (with the versions tests/test_pinning.py holds)
    kube_proxy = inputs["kubeProxyAddonOptions"]
    assert kube_proxy.keys() == {"enabled", "version"} and kube_proxy["enabled"] is True
    assert inputs["vpcCniOptions"].keys() == {"enableNetworkPolicy", "addonVersion"}
    assert inputs["vpcCniOptions"]["enableNetworkPolicy"] is True
    # so CoreDNS exists once, the program's
    (coredns,) = [a for a in sized.of_type(ADDON) if a.inputs["addonName"] == "coredns"]
    assert coredns.name == "eks-gpu-coredns"
    # and the node groups' launch templates name no security group pulumi-eks would have made
    for key in ("inference", "training", "system"):
        assert "vpcSecurityGroupIds" not in launch_template(sized, key)
        assert "networkInterfaces" not in launch_template(sized, key)
