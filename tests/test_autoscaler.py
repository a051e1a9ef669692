"""Autoscaling: the Cluster Autoscaler, its least-privilege role, and the ASG tags for scale from zero."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from eks_gpu.facts.releases import autoscaler_releases
from eks_gpu.facts.versions import calendar
from eks_gpu.offline import AwsAccount, ProgramRun

from tests import aws_data
from tests.helpers import (
    DEV_CLUSTER_ARN,
    NODE_GROUP,
    REGION,
    config,
    gpu_pool,
    iam_document,
    node_group,
    pod_identity_trust,
    problems_of,
    program_scope,
    run,
)
from tests.workloads.autoscaler import template_node
from tests.workloads.resources import quantity

TAG = "aws:autoscaling/tag:Tag"
RELEASE = "kubernetes:helm.sh/v3:Release"
CA = "k8s.io/cluster-autoscaler"
K8S_EFFECT = {"NO_SCHEDULE": "NoSchedule", "NO_EXECUTE": "NoExecute", "PREFER_NO_SCHEDULE": "PreferNoSchedule"}
POOLS = {
    "one": gpu_pool("g5.xlarge", labels={"workload": "inference"}),
    "four": gpu_pool(
        "g5.12xlarge",
        taints=[
            {"key": "nvidia.com/gpu", "value": "true", "effect": "NO_EXECUTE"},
            {"key": "dedicated", "value": "batch", "effect": "NO_EXECUTE"},
        ],
    ),
    "eight": gpu_pool(
        "p5.48xlarge",
        capacityType="SPOT",
        labels={"workload": "training", "team": "research"},
        taints=[
            {"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"},
            {"key": "spot", "value": "", "effect": "PREFER_NO_SCHEDULE"},
        ],
    ),
}


@pytest.fixture(scope=program_scope)
def scaled() -> ProgramRun:
    return run(config(POOLS, vpc={"azCount": 3}))


def asg_tags(result: ProgramRun, key: str, *, propagated: bool = False) -> dict[str, str]:
    """The tags the program put on the ASG of node group ``key``, checked to target that ASG: the
    autoscaler's (kept on the ASG), or with ``propagated`` the ones copied to its instances."""
    ng = result.one(NODE_GROUP, f"-{key}-ng")
    asg = ng.outputs["resources"][0]["autoscalingGroups"][0]["name"]
    tags = {}
    for t in result.of_type(TAG):
        if t.name.startswith(f"eks-gpu-{key}-asg-") and t.inputs["tag"]["propagateAtLaunch"] is propagated:
            assert t.inputs["autoscalingGroupName"] == asg
            tags[t.inputs["tag"]["key"]] = t.inputs["tag"]["value"]
    return tags


def test_the_stack_tags_reach_instances_through_the_asg_and_nothing_of_the_autoscalers_does(
    scaled: ProgramRun,
) -> None:
    for key in [*POOLS, "system"]:
        assert asg_tags(scaled, key, propagated=True) == {"team": "ml-platform", "Environment": "dev"}
        assert not any(k.startswith(CA) for k in asg_tags(scaled, key, propagated=True))


@pytest.mark.parametrize("key", sorted(POOLS))
def test_gpu_pool_asg_tags_for_scale_from_zero(scaled: ProgramRun, key: str) -> None:
    pool = POOLS[key]
    (itype,) = pool["instanceTypes"]
    count, model = aws_data.gpus(itype)
    taints = pool.get("taints", [{"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}])
    labels = {
        "eks-gpu/node-group": key,
        "nvidia.com/gpu.present": "true",
        "k8s.amazonaws.com/accelerator": f"nvidia-{model.lower()}",
        **pool.get("labels", {}),
    }
    assert asg_tags(scaled, key) == {
        f"{CA}/enabled": "true",
        f"{CA}/eks-gpu-dev": "owned",
        f"{CA}/node-template/resources/nvidia.com/gpu": str(count),
        **{
            f"{CA}/node-template/resources/{r}": allocatable(scaled, key)[r]
            for r in ("cpu", "memory", "ephemeral-storage", "pods")
        },
        **{f"{CA}/node-template/label/{k}": v for k, v in labels.items()},
        **{f"{CA}/node-template/taint/{t['key']}": f"{t.get('value', '')}:{K8S_EFFECT[t['effect']]}" for t in taints},
    }
    # the tags describe exactly what the node group carries
    ng = node_group(scaled, key)
    assert {f"{CA}/node-template/label/{k}": v for k, v in ng["labels"].items()}.items() <= asg_tags(
        scaled, key
    ).items()


def allocatable(result: ProgramRun, key: str) -> dict[str, str]:
    """The stack output's allocatable of pool ``key``: Kubernetes resource name -> quantity."""
    out: dict[str, str] = result.outputs["gpuNodeGroups"][key]["allocatable"]
    return out


@pytest.mark.parametrize("key", sorted(POOLS))
def test_the_template_node_offers_what_a_node_does_not_its_nominal_size(scaled: ProgramRun, key: str) -> None:
    """Without the cpu, memory and ephemeral-storage tags the autoscaler's template node has the type's
    nominal CPU and memory and no ephemeral storage: a pod sized between allocatable and nominal scales
    the pool up and never fits; a pod asking for scratch space never scales it from zero."""
    (itype,) = POOLS[key]["instanceTypes"]
    info = aws_data.catalogue()[itype]
    tags = asg_tags(scaled, key)
    node = template_node(info, tags, REGION, "z").allocatable
    real = {name: quantity(v) for name, v in allocatable(scaled, key).items()}
    for name in ("cpu", "memory", "ephemeral-storage", "pods"):
        assert node[name] == real[name], name
    untagged = template_node(info, {k: v for k, v in tags.items() if "/resources/" not in k}, REGION, "z")
    assert untagged.allocatable["cpu"] == info["VCpuInfo"]["DefaultVCpus"] > node["cpu"]
    assert untagged.allocatable["memory"] == info["MemoryInfo"]["SizeInMiB"] * 2**20 > node["memory"]
    assert "ephemeral-storage" not in untagged.allocatable


def test_the_allocatable_output_is_a_map_of_kubernetes_quantities(scaled: ProgramRun) -> None:
    for key, pool in POOLS.items():
        (itype,) = pool["instanceTypes"]
        out = allocatable(scaled, key)
        assert {"cpu", "memory", "ephemeral-storage", "pods", "nvidia.com/gpu"} <= set(out)
        assert all(isinstance(v, str) and re.fullmatch(r"[0-9]+(m|Mi)?", v) for v in out.values()), out
        assert out["nvidia.com/gpu"] == str(aws_data.gpus(itype)[0])
        net = aws_data.catalogue()[itype]["NetworkInfo"]
        # the lookup reads the default network card's interfaces, as the AMIs' max-pods formula does
        (card,) = [c for c in net["NetworkCards"] if c["NetworkCardIndex"] == net.get("DefaultNetworkCardIndex", 0)]
        vcpus = aws_data.catalogue()[itype]["VCpuInfo"]["DefaultVCpus"]
        eni = card["MaximumNetworkInterfaces"] * (net["Ipv4AddressesPerInterface"] - 1) + 2
        assert out["pods"] == str(min(eni, 110 if vcpus <= 30 else 250))


def test_gpu_counts_differ_by_type(scaled: ProgramRun) -> None:
    counts = {k: asg_tags(scaled, k)[f"{CA}/node-template/resources/nvidia.com/gpu"] for k in POOLS}
    assert counts == {k: str(aws_data.gpus(POOLS[k]["instanceTypes"][0])[0]) for k in POOLS}
    assert len(set(counts.values())) == 3


def test_taint_tag_value_format(scaled: ProgramRun) -> None:
    taint_tags = {
        key: {tag: value for tag, value in asg_tags(scaled, key).items() if "/node-template/taint/" in tag}
        for key in POOLS
    }
    assert {key: sorted(tags) for key, tags in taint_tags.items()} == {
        "one": [f"{CA}/node-template/taint/nvidia.com/gpu"],
        "four": [f"{CA}/node-template/taint/dedicated", f"{CA}/node-template/taint/nvidia.com/gpu"],
        "eight": [f"{CA}/node-template/taint/nvidia.com/gpu", f"{CA}/node-template/taint/spot"],
    }
    for tags in taint_tags.values():
        for tag, value in tags.items():
            assert re.fullmatch(r"[^:]*:(NoSchedule|NoExecute|PreferNoSchedule)", value), (tag, value)
    assert asg_tags(scaled, "eight")[f"{CA}/node-template/taint/spot"] == ":PreferNoSchedule"


def test_system_group_gets_discovery_tags_only(scaled: ProgramRun) -> None:
    assert asg_tags(scaled, "system") == {f"{CA}/enabled": "true", f"{CA}/eks-gpu-dev": "owned"}


def test_policy_reads_everywhere_writes_only_on_own_asgs(scaled: ProgramRun) -> None:
    policy = iam_document(scaled.one("aws:iam/rolePolicy:RolePolicy", "-cluster-autoscaler").inputs["policy"])
    # terraform-aws-eks-blueprints-addons' cluster_autoscaler policy document (main.tf), which shared/FACTS.md
    # names: its reads on every resource, its three writes under a condition on the ASG's cluster tag. The
    # autoscaler's own AWS README lists a smaller minimal set (no DescribeScalingActivities, no
    # UpdateAutoScalingGroup) with DescribeTags and DescribeLaunchTemplateVersions added for auto-discovery of
    # launch-template ASGs.
    assert policy == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Read",
                "Effect": "Allow",
                "Action": [
                    "autoscaling:DescribeAutoScalingGroups",
                    "autoscaling:DescribeAutoScalingInstances",
                    "autoscaling:DescribeLaunchConfigurations",
                    "autoscaling:DescribeScalingActivities",
                    "autoscaling:DescribeTags",
                    "ec2:DescribeImages",
                    "ec2:DescribeInstanceTypes",
                    "ec2:DescribeLaunchTemplateVersions",
                    "ec2:GetInstanceTypesFromInstanceRequirements",
                    "eks:DescribeNodegroup",
                ],
                "Resource": "*",
            },
            {
                "Sid": "ResizeOwnAsgs",
                "Effect": "Allow",
                "Action": [
                    "autoscaling:SetDesiredCapacity",
                    "autoscaling:TerminateInstanceInAutoScalingGroup",
                    "autoscaling:UpdateAutoScalingGroup",
                ],
                "Resource": "*",
                "Condition": {"StringEquals": {f"autoscaling:ResourceTag/{CA}/eks-gpu-dev": "owned"}},
            },
        ],
    }
    # the condition's tag is the one the ASGs carry
    assert asg_tags(scaled, "one")[f"{CA}/eks-gpu-dev"] == "owned"


def test_every_policy_of_the_stack_is_without_wildcard_actions(scaled: ProgramRun) -> None:
    policies = scaled.of_type("aws:iam/rolePolicy:RolePolicy")
    assert sorted(r.name for r in policies) == [
        "eks-gpu-autoscaler-iam-cluster-autoscaler",
        "eks-gpu-cluster-service-secrets-kms",
    ]
    for r in policies:
        for s in iam_document(r.inputs["policy"])["Statement"]:
            actions = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
            assert all("*" not in a for a in actions), r.name


def test_role_reaches_the_pod_through_pod_identity(scaled: ProgramRun) -> None:
    role = scaled.one("aws:iam/role:Role", "-autoscaler-iam-role")
    assert iam_document(role.inputs["assumeRolePolicy"]) == pod_identity_trust(
        DEV_CLUSTER_ARN, "kube-system", "cluster-autoscaler"
    )
    association = scaled.one("aws:eks/podIdentityAssociation:PodIdentityAssociation").inputs
    assert association["namespace"] == "kube-system" and association["serviceAccount"] == "cluster-autoscaler"
    assert association["roleArn"] == role.outputs["arn"] == scaled.outputs["autoscalerRoleArn"]
    agent = scaled.one("aws:eks/addon:Addon", "-pod-identity-agent")
    assert agent.inputs["addonName"] == "eks-pod-identity-agent"
    values = scaled.one(RELEASE, "-autoscaler-release").inputs["values"]
    assert values["rbac"]["serviceAccount"] == {"create": True, "name": "cluster-autoscaler"}


def test_helm_values(scaled: ProgramRun) -> None:
    release = scaled.one(RELEASE, "-autoscaler-release")
    i = release.inputs
    assert i["chart"] == "cluster-autoscaler"
    assert i["repositoryOpts"] == {"repo": "https://kubernetes.github.io/autoscaler"}
    assert i["namespace"] == "kube-system"
    assert scaled.outputs["autoscalerChartVersion"] == i["version"]
    v = i["values"]
    assert v["autoDiscovery"] == {"clusterName": "eks-gpu-dev"}
    assert v["awsRegion"] == "us-west-2" and v["cloudProvider"] == "aws"
    version = scaled.one("eks:index:Cluster").inputs["version"]
    assert v["image"]["tag"].startswith(f"v{version}.")
    assert v["nodeSelector"] == {"eks-gpu/node-group": "system"}
    assert v["fullnameOverride"] == "cluster-autoscaler"
    assert v["extraArgs"] == {
        "skip-nodes-with-local-storage": False,
        "expander": "least-waste",
        "scale-down-unneeded-time": "10m",
    }
    assert "expanderPriorities" not in v
    assert scaled.one("aws:eks/podIdentityAssociation:PodIdentityAssociation").urn in release.dependencies


def test_priority_expander_prefers_spot_pools() -> None:
    pools = {"spot": gpu_pool("g5.xlarge", capacityType="SPOT"), "ondemand": gpu_pool("g5.xlarge")}
    result = run(config(pools, autoscaler={"expander": "priority", "priorities": {"spot": 20, "ondemand": 10}}))
    values = result.one(RELEASE, "-autoscaler-release").inputs["values"]
    assert values["extraArgs"]["expander"] == "priority"
    names = {k: result.one(NODE_GROUP, f"-{k}-ng").outputs["nodeGroupName"] for k in pools}
    asgs = {
        k: result.one(NODE_GROUP, f"-{k}-ng").outputs["resources"][0]["autoscalingGroups"][0]["name"] for k in pools
    }
    assert values["expanderPriorities"] == {
        "10": [f"^eks-{re.escape(names['ondemand'])}-"],
        "20": [f"^eks-{re.escape(names['spot'])}-"],
    }
    for key, other in (("spot", "ondemand"), ("ondemand", "spot")):
        (pattern,) = values["expanderPriorities"]["20" if key == "spot" else "10"]
        assert re.match(pattern, asgs[key]) and not re.match(pattern, asgs[other])


def test_extra_args_may_not_take_over_dedicated_keys() -> None:
    found = problems_of(config(autoscaler={"extraArgs": {"expander": "priority", "--scale-down-unneeded-time": "1m"}}))
    assert found == {
        "eks-gpu:autoscaler.extraArgs.expander": "is set by eks-gpu:autoscaler.expander; set it there instead",
        "eks-gpu:autoscaler.extraArgs.--scale-down-unneeded-time": (
            "is set by eks-gpu:autoscaler.scaleDownUnneededTime; set it there instead"
        ),
    }


def test_priority_patterns_match_eks_asg_names() -> None:
    from eks_gpu.build.autoscaler import asg_name_pattern

    pattern = asg_name_pattern("eks-gpu-spot-ng-1a2b3c4")
    # ASG names as EKS makes them for managed node groups: eks-<node group name>-<node group uuid>.
    assert re.match(pattern, "eks-eks-gpu-spot-ng-1a2b3c4-5ec6e1c2-9c3f-4d0b-8f2e-1b7e7a9c0d11")
    assert not re.match(pattern, "eks-eks-gpu-spot-ng-9f8e7d6-5ec6e1c2-9c3f-4d0b-8f2e-1b7e7a9c0d11")
    assert not re.match(pattern, "eks-eks-gpu-spot-ng-1a2b3c4x-5ec6e1c2")


def test_extra_args_and_scale_down_time() -> None:
    result = run(config(autoscaler={"scaleDownUnneededTime": "5m", "extraArgs": {"scale-down-delay-after-add": "2m"}}))
    args = result.one(RELEASE, "-autoscaler-release").inputs["values"]["extraArgs"]
    assert args["scale-down-unneeded-time"] == "5m" and args["scale-down-delay-after-add"] == "2m"


def test_desired_size_is_still_ignored(scaled: ProgramRun) -> None:
    assert len(scaled.of_type(NODE_GROUP)) == len(POOLS) + 1  # and the system group
    for ng in scaled.of_type(NODE_GROUP):
        assert ng.ignore_changes == ("scalingConfig.desiredSize",)


def test_disabled_means_no_chart_no_role_no_autoscaler_tags() -> None:
    result = run(config(autoscaler={"enabled": False}))
    # only the stack's tags, for the instances
    assert {t.inputs["tag"]["key"] for t in result.of_type(TAG)} == {"team", "Environment"}
    assert {t.inputs["tag"]["propagateAtLaunch"] for t in result.of_type(TAG)} == {True}
    assert [r.name for r in result.of_type(RELEASE) if "autoscaler" in r.name] == []
    assert result.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation") == []
    assert [r.name for r in result.of_type("aws:iam/role:Role") if "autoscaler" in r.name] == []
    assert "autoscalerRoleArn" not in result.outputs
    (warning,) = result.warnings
    assert warning.startswith("eks-gpu:gpuNodeGroups.inference.minSize: 0 with eks-gpu:autoscaler disabled")


def test_pod_at_zero_nodes_waits_for_the_autoscaler() -> None:
    result = run(config({"inference": gpu_pool(desiredSize=0)}, gpuPod={"enabled": True}))
    job = result.one("kubernetes:batch/v1:Job")
    assert result.one(RELEASE, "-autoscaler-release").urn in job.dependencies
    pool_tags = {t.urn for t in result.of_type(TAG) if t.name.startswith("eks-gpu-inference-asg-")}
    assert pool_tags and pool_tags <= set(job.dependencies)


def test_autoscaler_validation() -> None:
    assert problems_of(config(autoscaler={"expander": "priority"})) == {
        "eks-gpu:autoscaler.priorities": "is required with expander priority"
    }
    assert (
        "only applies to expander priority"
        in problems_of(config(autoscaler={"priorities": {"inference": 1}}))["eks-gpu:autoscaler.priorities"]
    )
    found = problems_of(config(autoscaler={"expander": "priority", "priorities": {"nope": 1}}))
    assert found == {
        "eks-gpu:autoscaler.priorities.nope": "is not a node group; the node groups are: inference, system"
    }
    assert (
        "use one of least-waste, priority"
        in problems_of(config(autoscaler={"expander": "price"}))["eks-gpu:autoscaler.expander"]
    )
    assert (
        "not a duration"
        in problems_of(config(autoscaler={"scaleDownUnneededTime": "ten"}))["eks-gpu:autoscaler.scaleDownUnneededTime"]
    )


def offers(version: str) -> Callable[[AwsAccount], None]:
    """An account where EKS offers ``version`` already, with the add-on builds of the newest version
    the bundled snapshot knows (what EKS answers for a version it offers is not known offline)."""

    def setup(account: AwsAccount) -> None:
        account.offers_like[version] = calendar().newest()

    return setup


def test_image_follows_the_cluster_version_or_config() -> None:
    older = run(config(kubernetesVersion="1.34")).one(RELEASE, "-autoscaler-release").inputs["values"]["image"]["tag"]
    assert older.startswith("v1.34.")
    pinned = run(config(kubernetesVersion="1.99", autoscaler={"imageTag": "v1.99.3"}), account_setup=offers("1.99"))
    assert pinned.one(RELEASE, "-autoscaler-release").inputs["values"]["image"]["tag"] == "v1.99.3"
    assert not [w for w in pinned.warnings if w.startswith("eks-gpu:autoscaler.imageTag")]


def test_kubernetes_1_36_has_its_autoscaler_release() -> None:
    # cluster-autoscaler-1.36.1 (kubernetes/autoscaler releases, 2026-07-23) on the bundled chart
    result = run(config(kubernetesVersion="1.36"))
    release = result.one(RELEASE, "-autoscaler-release").inputs
    assert (release["values"]["image"]["tag"], release["version"]) == ("v1.36.1", autoscaler_releases().chart_version)
    assert not [w for w in result.warnings if "kubernetesVersion" in w or "autoscaler.imageTag" in w]


def test_a_version_newer_than_the_bundled_data_is_accepted_with_what_is_assumed() -> None:
    cal, releases = calendar(), autoscaler_releases()
    newest = max(int(cal.newest().split(".")[1]), int(releases.newest().split(".")[1]))
    newer = f"1.{newest + 1}"
    result = run(config(kubernetesVersion=newer), account_setup=offers(newer))
    release = result.one(RELEASE, "-autoscaler-release").inputs
    # the project's first release of every minor (cluster-autoscaler-1.N.0), on the newest bundled chart
    assert (release["values"]["image"]["tag"], release["version"]) == (f"v{newer}.0", releases.chart_version)
    (image,) = [w for w in result.warnings if w.startswith("eks-gpu:autoscaler.imageTag")]
    assert f"assuming v{newer}.0" in image and f"releases checked {releases.updated}" in image
    (version,) = [w for w in result.warnings if w.startswith("eks-gpu:kubernetesVersion")]
    assert f"updated {cal.updated}" in version
    assert f"assuming it is in standard support (control plane at ${cal.standard_usd_per_hour:.2f}/h)" in version
