"""GPU pools on an EKS cluster that exists (``eks-gpu:existingCluster``): what the program reads from
the cluster, what it builds there, and what it refuses.

The cluster is real in the offline account: moto's EKS backend holds it (DescribeCluster answers
from it, an unknown name fails with AWS's ResourceNotFoundException), in a VPC made in moto's EC2
with public subnets routed to an internet gateway and private ones to a NAT gateway.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from eks_gpu.offline.aws import AwsAccount

from tests.helpers import NODE_GROUP, REGION, gpu_pool, iam_document, node_group, problems_of, run, run_plan

NAME = "platform-prod"
"""The existing cluster's name."""
FORBIDDEN = (
    "aws:eks/cluster:Cluster",
    "eks:index:Cluster",
    "aws:ec2/vpc:Vpc",
    "aws:ec2/subnet:Subnet",
    "aws:ec2/natGateway:NatGateway",
    "aws:ec2/internetGateway:InternetGateway",
    "aws:ec2/route:Route",
    "aws:ec2/routeTable:RouteTable",
    "aws:ec2/securityGroup:SecurityGroup",
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
    "aws:eks/accessEntry:AccessEntry",
    "aws:eks/accessPolicyAssociation:AccessPolicyAssociation",
    "aws:cloudwatch/logGroup:LogGroup",
    "aws:kms/key:Key",
    "kubernetes:storage.k8s.io/v1:StorageClass",
)
"""What the program must never create for an existing cluster: the cluster, its network, its API
access, its logs and key, a default StorageClass."""
SUBNETS = (
    ("10.20.0.0/20", "us-west-2a", True),
    ("10.20.16.0/20", "us-west-2b", True),
    ("10.20.32.0/20", "us-west-2a", False),
    ("10.20.48.0/20", "us-west-2b", False),
)


def existing(pools: dict[str, Any] | None = None, **keys: Any) -> dict[str, Any]:
    """A stack config that adds ``pools`` to the cluster :func:`make_cluster` makes, with the program's
    own autoscaler unless ``autoscaler`` says otherwise (existing mode requires the choice)."""
    return {
        "aws:region": REGION,
        "eks-gpu:existingCluster": {"name": NAME},
        "eks-gpu:gpuNodeGroups": pools if pools is not None else {"inference": gpu_pool()},
        "eks-gpu:autoscaler": {"enabled": True},
        **{k if ":" in k else f"eks-gpu:{k}": v for k, v in keys.items()},
    }


def make_cluster(version: str = "1.35", mode: str = "API_AND_CONFIG_MAP", addons: dict[str, str] | None = None) -> Any:
    """An ``account_setup``: a VPC and, in all four of its subnets, cluster :data:`NAME`. Returns what
    the cluster is, read back from the account (DescribeCluster, the subnets)."""

    def setup(account: AwsAccount) -> dict[str, Any]:
        vpc = account.create_existing_vpc("10.20.0.0/16", SUBNETS)
        account.create_existing_cluster(
            NAME,
            [*vpc.public_subnet_ids, *vpc.private_subnet_ids],
            version=version,
            authentication_mode=mode,
            addons=addons,
        )
        cluster = account._call("eks", "describe_cluster", name=NAME)["cluster"]
        return {
            "vpc": vpc,
            "arn": cluster["arn"],
            "endpoint": cluster["endpoint"],
            "ca": cluster["certificateAuthority"]["data"],
            "security_group": account.cluster_access[NAME]["clusterSecurityGroupId"],
        }

    return setup


def addon_names(result: Any) -> set[str]:
    return {r.inputs["addonName"] for r in result.of_type("aws:eks/addon:Addon")}


def asg_tag_keys(result: Any) -> set[str]:
    return {r.inputs["tag"]["key"] for r in result.of_type("aws:autoscaling/tag:Tag")}


# --- what it reads -----------------------------------------------------------------------------


def test_reads_version_vpc_and_private_subnets_from_the_cluster() -> None:
    result = run(existing(), account_setup=make_cluster(version="1.34"))
    made = result.account_data
    assert result.outputs["clusterName"] == NAME
    assert result.outputs["vpcId"] == made["vpc"].vpc_id
    # the cluster's public subnets (default route to the internet gateway) get no nodes
    assert sorted(result.outputs["privateSubnetIds"]) == sorted(made["vpc"].private_subnet_ids)
    assert result.outputs["publicSubnetIds"] == []
    for key in ("inference", "system"):
        group = node_group(result, key)
        assert group["clusterName"] == NAME
        assert group["version"] == "1.34"
        assert sorted(group["subnetIds"]) == sorted(made["vpc"].private_subnet_ids)
    assert ("aws:eks/getCluster:getCluster", {"name": NAME}) in [
        (token, {k: v for k, v in args.items() if v is not None}) for token, args in result.invokes
    ]


def test_kubernetes_provider_reaches_the_clusters_endpoint_with_get_token() -> None:
    result = run(existing(), account_setup=make_cluster())
    made = result.account_data
    kubeconfig = json.loads(result.one("pulumi:providers:kubernetes").inputs["kubeconfig"])
    cluster = kubeconfig["clusters"][0]["cluster"]
    assert cluster == {"server": made["endpoint"], "certificate-authority-data": made["ca"]}
    args = kubeconfig["users"][0]["user"]["exec"]["args"]
    assert args[args.index("--cluster-name") + 1] == NAME
    assert json.loads(result.outputs["kubeconfig"])["clusters"][0]["cluster"]["server"] == made["endpoint"]


def test_unknown_cluster_is_a_config_error_naming_the_key() -> None:
    problems = problems_of(existing())  # a fresh account: no cluster at all
    assert list(problems) == ["eks-gpu:existingCluster.name"]
    assert f"'{NAME}' is not an EKS cluster" in problems["eks-gpu:existingCluster.name"]
    assert "ResourceNotFoundException" in problems["eks-gpu:existingCluster.name"]


# --- what it builds ----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["API", "API_AND_CONFIG_MAP", "CONFIG_MAP"])
def test_builds_only_what_a_gpu_platform_adds(mode: str) -> None:
    result = run(existing(), account_setup=make_cluster(mode=mode))
    made = result.account_data
    types = {r.type for r in result.resources}
    assert not types & set(FORBIDDEN)
    assert not addon_names(result) & {"vpc-cni", "kube-proxy", "coredns"}
    assert {"aws:eks/nodeGroup:NodeGroup", "aws:ec2/launchTemplate:LaunchTemplate", "aws:iam/role:Role"} <= types
    assert result.one("kubernetes:core/v1:Namespace").inputs["metadata"]["name"] == "gpu-workloads"
    assert len(result.of_type("kubernetes:helm.sh/v3:Release")) == 3  # device plugin, autoscaler, dcgm-exporter
    # the ASG tags the autoscaler discovers the pools by, for this cluster
    assert {"k8s.io/cluster-autoscaler/enabled", f"k8s.io/cluster-autoscaler/{NAME}"} <= asg_tag_keys(result)
    # every Pod Identity role trusts this cluster only
    trusts = [
        iam_document(r.inputs["assumeRolePolicy"])
        for r in result.of_type("aws:iam/role:Role")
        if "pods.eks.amazonaws.com" in r.inputs["assumeRolePolicy"]
    ]
    assert trusts
    for trust in trusts:
        assert trust["Statement"][0]["Condition"]["StringEquals"]["aws:RequestTag/eks-cluster-arn"] == made["arn"]
    assert {
        r.inputs["clusterName"] for r in result.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")
    } == {NAME}


def test_efa_pool_lists_the_clusters_security_group() -> None:
    result = run(existing({"train": gpu_pool("p5.48xlarge", efa=True)}), account_setup=make_cluster())
    template = result.one("aws:ec2/launchTemplate:LaunchTemplate", "-train-lt").inputs
    groups = {g for nic in template["networkInterfaces"] for g in nic["securityGroups"]}
    assert result.account_data["security_group"] in groups


def test_addons_the_cluster_runs_are_used_not_created() -> None:
    running = {"eks-pod-identity-agent": "v1.3.8-eksbuild.2", "eks-node-monitoring-agent": "v1.4.0-eksbuild.2"}
    result = run(existing(), account_setup=make_cluster(addons=running))
    assert addon_names(result) == {"aws-ebs-csi-driver"}
    assert any("dcgmAgent.tolerations" in w and "inference" in w for w in result.warnings)
    without = run(existing(), account_setup=make_cluster())
    assert addon_names(without) == {"eks-pod-identity-agent", "eks-node-monitoring-agent", "aws-ebs-csi-driver"}


def test_the_clusters_own_autoscaler_still_finds_the_pools() -> None:
    result = run(existing(autoscaler={"enabled": False}), account_setup=make_cluster())
    assert "autoscalerRoleArn" not in result.outputs  # None outputs are not exported
    assert not [r for r in result.of_type("kubernetes:helm.sh/v3:Release") if "autoscaler" in r.name]
    assert {"k8s.io/cluster-autoscaler/enabled", f"k8s.io/cluster-autoscaler/{NAME}"} <= asg_tag_keys(result)
    assert any(k.startswith("k8s.io/cluster-autoscaler/node-template/resources/") for k in asg_tag_keys(result))


def test_chosen_subnets_are_used_and_checked_under_their_key() -> None:
    with AwsAccount(REGION) as account:
        made = make_cluster()(account)
        public = made["vpc"].public_subnet_ids
        result = run(existing(existingCluster={"name": NAME, "subnetIds": public}), account=account)
    assert sorted(node_group(result, "inference")["subnetIds"]) == sorted(public)
    # the public subnets route to the internet gateway: said, under the key that chose them
    assert any(w.startswith("eks-gpu:existingCluster.subnetIds[0]:") and "NAT" in w for w in result.warnings)


# --- what it refuses ---------------------------------------------------------------------------


def test_cluster_settings_are_refused_all_together() -> None:
    cfg = existing(
        clusterName="other",
        kubernetesVersion="1.34",
        vpc={"azCount": 2},
        endpointPublicAccessCidrs=["198.18.0.20/32"],
        endpointPrivateAccessCidrs=["10.20.0.0/16"],
        endpointPrivateAccessSecurityGroupIds=["sg-0123456789abcdef0"],
        clusterAdmins=["arn:aws:iam::123456789012:role/admin"],
        clusterCreatorAdmin=False,
        logRetentionDays=30,
        addons={"coredns": {"version": "v1.11.4-eksbuild.2"}, "vpc-cni": {"version": "v1.19.2-eksbuild.1"}},
        storage={"defaultStorageClass": True},
    )
    problems = problems_of(cfg)
    assert set(problems) == {
        "eks-gpu:clusterName",
        "eks-gpu:kubernetesVersion",
        "eks-gpu:vpc",
        "eks-gpu:endpointPublicAccessCidrs",
        "eks-gpu:endpointPrivateAccessCidrs",
        "eks-gpu:endpointPrivateAccessSecurityGroupIds",
        "eks-gpu:clusterAdmins",
        "eks-gpu:clusterCreatorAdmin",
        "eks-gpu:logRetentionDays",
        "eks-gpu:addons.coredns",
        "eks-gpu:addons.vpc-cni",
        "eks-gpu:storage.defaultStorageClass",
    }
    assert all("eks-gpu:existingCluster" in message for message in problems.values())


def test_no_endpoint_key_is_needed() -> None:
    """The reach check of a stack that builds its cluster does not apply: the endpoint is the cluster's."""
    result = run(existing(), account_setup=make_cluster())
    assert not [w for w in result.warnings if "endpointPublicAccessCidrs" in w]


def test_a_pin_of_an_addon_the_cluster_runs_is_refused() -> None:
    running = {"eks-pod-identity-agent": "v1.3.8-eksbuild.2"}
    problems = problems_of(
        existing(addons={"eks-pod-identity-agent": {"version": "v1.3.4-eksbuild.1"}}),
        account_setup=make_cluster(addons=running),
    )
    assert list(problems) == ["eks-gpu:addons.eks-pod-identity-agent.version"]
    assert (
        "runs eks-pod-identity-agent v1.3.8-eksbuild.2 already"
        in problems["eks-gpu:addons.eks-pod-identity-agent.version"]
    )


def test_node_subnets_outside_the_clusters_vpc_or_in_one_az_are_refused() -> None:
    with AwsAccount(REGION) as account:
        made = make_cluster()(account)
        other = account.create_existing_vpc("10.30.0.0/16", [("10.30.0.0/20", "us-west-2c", False)], egress=False)
        vpc = made["vpc"]
        foreign = other.private_subnet_ids[0]
        outside = problems_of(
            existing(existingCluster={"name": NAME, "subnetIds": [vpc.private_subnet_ids[0], foreign]}),
            account=account,
        )
        # SUBNETS order: the first public and the first private subnet are both in us-west-2a
        single = problems_of(
            existing(
                existingCluster={"name": NAME, "subnetIds": [vpc.private_subnet_ids[0], vpc.public_subnet_ids[0]]}
            ),
            account=account,
        )
    assert outside == {"eks-gpu:existingCluster.subnetIds[1]": f"'{foreign}' is not a subnet of {vpc.vpc_id}"}
    assert list(single) == ["eks-gpu:existingCluster.subnetIds"]
    assert "at least two AZs" in single["eks-gpu:existingCluster.subnetIds"]


def test_node_groups_have_the_clusters_name_not_a_derived_one() -> None:
    result = run(existing(), account_setup=make_cluster())
    assert {r.inputs["clusterName"] for r in result.of_type(NODE_GROUP)} == {NAME}


# --- make plan ---------------------------------------------------------------------------------


def test_make_plan_runs_against_a_stand_in_cluster(tmp_path: Any) -> None:
    stack_file = tmp_path / "Pulumi.gpu.yaml"
    stack_file.write_text(
        "config:\n"
        f"  aws:region: {REGION}\n"
        "  eks-gpu:existingCluster:\n"
        f"    name: {NAME}\n"
        "    subnetIds: [subnet-0123456789abcdef0, subnet-0123456789abcdef1]\n"
        "  eks-gpu:gpuNodeGroups:\n"
        "    inference: {instanceTypes: [g5.xlarge], minSize: 0, maxSize: 2}\n"
        "  eks-gpu:autoscaler: {enabled: true}\n"
    )
    done = run_plan("--stack-file", str(stack_file), "--json", "--diagram", str(tmp_path / "plan.md"))
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    types = {r["type"] for r in plan["resources"]}
    assert not types & set(FORBIDDEN)
    assert NODE_GROUP in types
    assert plan["deployNeeds"] is None  # no stand-in deployer CIDR: the endpoint is the cluster's
    assert any("stand-in" in w and NAME in w for w in plan["warnings"])
    assert any(w.startswith("eks-gpu:existingCluster.subnetIds: not planned") for w in plan["warnings"])
    assert "existing EKS cluster" in (tmp_path / "plan.md").read_text()


# --- review fixes: the autoscaler, add-on conflicts and reads, the device plugin -----------------


def autoscaler_values(result: Any) -> dict[str, Any]:
    (chart,) = [r for r in result.of_type("kubernetes:helm.sh/v3:Release") if r.inputs["chart"] == "cluster-autoscaler"]
    values: dict[str, Any] = chart.inputs["values"]
    return values


def tags_by_asg(result: Any) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for r in result.of_type("aws:autoscaling/tag:Tag"):
        out.setdefault(r.inputs["autoscalingGroupName"], {})[r.inputs["tag"]["key"]] = r.inputs["tag"]["value"]
    return out


def test_autoscaler_must_be_chosen_on_an_existing_cluster() -> None:
    config = existing()
    del config["eks-gpu:autoscaler"]
    problems = problems_of(config, account_setup=make_cluster())
    why = problems["eks-gpu:autoscaler.enabled"]
    assert "must be set with eks-gpu:existingCluster" in why and "false" in why and "true" in why


def test_own_autoscaler_discovers_and_resizes_only_this_stacks_asgs() -> None:
    result = run(existing(), account_setup=make_cluster())
    values = autoscaler_values(result)
    discovery = values["autoDiscovery"]["tags"]
    # EKS puts the first two on every managed node group's ASG, the owner's too: the third keeps it to ours
    assert discovery == ["k8s.io/cluster-autoscaler/enabled", f"k8s.io/cluster-autoscaler/{NAME}", "eks-gpu/autoscaler"]
    by_asg = tags_by_asg(result)
    assert len(by_asg) == 2  # the system node group and the pool
    for tags in by_asg.values():
        assert set(discovery) <= set(tags)
        assert tags["eks-gpu/autoscaler"] == NAME
    (role,) = [r for r in result.of_type("aws:iam/rolePolicy:RolePolicy") if "autoscaler" in r.name]
    (write,) = [s for s in iam_document(role.inputs["policy"])["Statement"] if s["Sid"] == "ResizeOwnAsgs"]
    assert write["Condition"]["StringEquals"] == {
        f"autoscaling:ResourceTag/k8s.io/cluster-autoscaler/{NAME}": "owned",
        "autoscaling:ResourceTag/eks-gpu/autoscaler": NAME,
    }


def test_own_autoscaler_has_names_beside_the_clusters_cluster_autoscaler() -> None:
    result = run(existing(), account_setup=make_cluster())
    values = autoscaler_values(result)
    assert values["fullnameOverride"] == "eks-gpu-cluster-autoscaler"
    assert values["rbac"]["serviceAccount"]["name"] == "eks-gpu-cluster-autoscaler"
    assert values["extraArgs"]["leader-elect-resource-name"] == "eks-gpu-cluster-autoscaler"
    assert values["extraArgs"]["status-config-map-name"] == "eks-gpu-cluster-autoscaler-status"
    associations = result.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")
    assert "eks-gpu-cluster-autoscaler" in {a.inputs["serviceAccount"] for a in associations}
    assert "cluster-autoscaler" not in {a.inputs["serviceAccount"] for a in associations}


def test_addons_are_created_without_overwriting_a_self_managed_install() -> None:
    result = run(existing(), account_setup=make_cluster())
    addons = result.of_type("aws:eks/addon:Addon")
    assert addons
    assert {a.inputs["resolveConflictsOnCreate"] for a in addons} == {"NONE"}


def test_an_addon_read_denied_is_a_problem_not_absent() -> None:
    denied = (
        "operation error EKS: DescribeAddon, https response error StatusCode: 403, api error "
        "AccessDeniedException: User: arn:aws:sts::123456789012:assumed-role/ci/deployer is not authorized "
        "to perform: eks:DescribeAddon"
    )
    cluster = make_cluster()

    def setup(account: AwsAccount) -> Any:
        made = cluster(account)
        account.addon_read_error = denied
        return made

    problems = problems_of(existing(), account_setup=setup)
    assert list(problems) == ["eks-gpu:existingCluster.name"]
    why = problems["eks-gpu:existingCluster.name"]
    assert "eks-pod-identity-agent" in why and "AccessDeniedException" in why and "eks:DescribeAddon" in why


def test_device_plugin_can_be_left_to_the_clusters_own() -> None:
    result = run(existing(devicePlugin={"enabled": False}), account_setup=make_cluster())
    charts = {r.inputs["chart"] for r in result.of_type("kubernetes:helm.sh/v3:Release")}
    assert "nvidia-device-plugin" not in charts
    assert "devicePluginChartVersion" not in result.outputs
    assert any(w.startswith("eks-gpu:devicePlugin.enabled: false") and "inference" in w for w in result.warnings)


def test_the_scope_tag_counts_in_the_asg_tag_budget() -> None:
    import re

    from tests.helpers import config

    def pool(labels: int) -> dict[str, Any]:
        return {"inference": gpu_pool(labels={f"team.example.com/l{i}": "x" for i in range(labels)})}

    key = "eks-gpu:gpuNodeGroups.inference"
    # the program's own count of a pool far over the limit, without the scope tag (the cluster's autoscaler)
    over = problems_of(existing(pool(60), autoscaler={"enabled": False}), account_setup=make_cluster())[key]
    used, limit = (int(n) for n in re.search(r"needs (\d+) tags .* at most (\d+)", over).groups())  # type: ignore[union-attr]
    fits = 60 - (used - limit)  # labels that fill the ASG exactly
    run(existing(pool(fits), autoscaler={"enabled": False}), account_setup=make_cluster())
    # the program's own autoscaler adds eks-gpu/autoscaler: one over
    problems = problems_of(existing(pool(fits)), account_setup=make_cluster())
    assert f"needs {limit + 1} tags" in problems[key]
    # a stack that builds its cluster sends what it always did: no scope tag, the chart's names, OVERWRITE
    own = run(config({"inference": gpu_pool()}))
    assert "eks-gpu/autoscaler" not in {r.inputs["tag"]["key"] for r in own.of_type("aws:autoscaling/tag:Tag")}
    assert autoscaler_values(own)["fullnameOverride"] == "cluster-autoscaler"
    assert {a.inputs["resolveConflictsOnCreate"] for a in own.of_type("aws:eks/addon:Addon")} == {"OVERWRITE"}
