"""Day 1 on a real account: what the program does so a first ``pulumi up`` finishes and later ones work.

Reaching the API, administering the cluster, control-plane AZs by id, pools the autoscaler can
describe, the control-plane log group. Each rule runs the real program under the offline engine,
with the AWS facts moto's account reports.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pytest
from eks_gpu.build.cluster import no_creator_admin
from eks_gpu.config import ConfigError
from eks_gpu.facts.aws_limits import ASG_MAX_TAGS, EKS_OWNED_ASG_TAGS, UNSUPPORTED_CONTROL_PLANE_AZ_IDS
from eks_gpu.offline import AwsAccount, ProgramRun, offline_account, run_program
from moto.core import DEFAULT_ACCOUNT_ID

from tests import aws_data
from tests.helpers import CLIENT_CIDR, CLUSTER, REGION, config, gpu_pool, node_group, problems_of, run

INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
ACCESS_ENTRY = "aws:eks/accessEntry:AccessEntry"
ASSOCIATION = "aws:eks/accessPolicyAssociation:AccessPolicyAssociation"
K8S_PROVIDER = "pulumi:providers:kubernetes"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
PRIVATE_ONLY: dict[str, Any] = {"eks-gpu:endpointPublicAccessCidrs": []}
EAST = "us-east-1"
NO_CONTROL_PLANE_ID = "use1-az3"
NO_CONTROL_PLANE_AZ = aws_data.az_of_zone_id(EAST, NO_CONTROL_PLANE_ID)
"""The AZ name moto's account gives the us-east-1 zone id EKS cannot host a control plane in."""
ASG_TAG_LIMIT = 50
"""Amazon EC2 Auto Scaling User Guide, "Tag Auto Scaling groups and instances": "You can add up to 50
tags to each Auto Scaling group"."""
EKS_ASG_TAGS = ("eks:cluster-name", "eks:nodegroup-name", "kubernetes.io/cluster/<cluster>")
"""The tags EKS itself puts on a managed node group's Auto Scaling group besides the autoscaler's two, as
a real one lists them (DescribeTags, e.g. https://pastebin.com/FG8hZS4Y; its ``aws:`` tags are AWS's own
and do not count toward the 50)."""


def cluster_security_group(result: ProgramRun) -> str:
    """The security group EKS creates for the cluster, as the cluster reports it."""
    return str(result.one(CLUSTER).outputs["clusterSecurityGroupId"])


def control_plane_group(result: ProgramRun) -> str:
    """The security group the program gives the control plane alone: pulumi-eks's
    ``clusterSecurityGroup``, which it sends as the cluster's ``vpcConfig.securityGroupIds``."""
    group = result.one("aws:ec2/securityGroup:SecurityGroup", "-cluster-api")
    assert result.one(CLUSTER).inputs["clusterSecurityGroup"] == group.id
    return str(group.id)


def provider_needs(result: ProgramRun) -> set[str]:
    (provider,) = result.of_type(K8S_PROVIDER)
    return set(provider.dependencies)


# --- 1. the API is reachable from where pulumi runs ---------------------------------------


def test_a_public_cidr_opens_the_public_endpoint_and_no_security_group() -> None:
    result = run(config())
    cluster = result.one(CLUSTER).inputs
    assert (cluster["endpointPublicAccess"], cluster["publicAccessCidrs"]) == (True, [CLIENT_CIDR])
    assert result.of_type(INGRESS) == []


def test_a_private_cidr_gets_tcp_443_into_the_control_planes_own_security_group() -> None:
    result = run(config(endpointPrivateAccessCidrs=["10.20.0.0/16"]) | PRIVATE_ONLY)
    assert result.one(CLUSTER).inputs["endpointPublicAccess"] is False
    (rule,) = result.of_type(INGRESS)
    assert rule.inputs["cidrIpv4"] == "10.20.0.0/16" and "referencedSecurityGroupId" not in rule.inputs
    assert (rule.inputs["ipProtocol"], rule.inputs["fromPort"], rule.inputs["toPort"]) == ("tcp", 443, 443)
    # on the control plane's interfaces only: EKS's cluster group is on every managed node too
    assert rule.inputs["securityGroupId"] == control_plane_group(result) != cluster_security_group(result)
    assert rule.urn in provider_needs(result)


def test_a_security_group_id_gets_tcp_443_into_the_control_planes_own_security_group() -> None:
    runners = "sg-0123456789abcdef0"
    result = run(config(endpointPrivateAccessSecurityGroupIds=[runners]) | PRIVATE_ONLY)
    (rule,) = result.of_type(INGRESS)
    assert rule.inputs["referencedSecurityGroupId"] == runners and "cidrIpv4" not in rule.inputs
    assert (rule.inputs["ipProtocol"], rule.inputs["fromPort"], rule.inputs["toPort"]) == ("tcp", 443, 443)
    assert rule.inputs["securityGroupId"] == control_plane_group(result) != cluster_security_group(result)
    assert rule.urn in provider_needs(result)


def test_private_access_opens_no_nodes_443() -> None:
    # A managed node whose launch template names no security group gets EKS's cluster group (EKS User
    # Guide, "sec-group-reqs"), and pods' addresses are on its interfaces: a 443 rule there would reach
    # every node and pod. The control plane's group is on no launch template, EFA interfaces included.
    result = run(config({"train": gpu_pool("p5.48xlarge", efa=True)}, endpointPrivateAccessCidrs=["10.20.0.0/16"]))
    group = control_plane_group(result)
    ingress_groups = {r.inputs["securityGroupId"] for r in result.of_type(INGRESS) if r.inputs.get("cidrIpv4")}
    assert ingress_groups == {group}
    for template in result.of_type("aws:ec2/launchTemplate:LaunchTemplate"):
        named = [*template.inputs.get("vpcSecurityGroupIds", [])]
        named += [g for nic in template.inputs.get("networkInterfaces", []) for g in nic.get("securityGroups", [])]
        assert group not in named, template.name


def test_without_private_access_the_cluster_gets_no_group_of_its_own() -> None:
    result = run(config())
    assert "clusterSecurityGroup" not in result.one(CLUSTER).inputs


def test_nothing_configured_is_refused_before_any_resource() -> None:
    found = problems_of(config() | PRIVATE_ONLY)
    assert list(found) == ["eks-gpu:endpointPublicAccessCidrs"]
    assert "pulumi config set --path 'endpointPublicAccessCidrs[0]'" in found["eks-gpu:endpointPublicAccessCidrs"]


# --- 2. more than one person administers the cluster -------------------------------------


def test_each_admin_gets_an_access_entry_with_the_cluster_admin_policy() -> None:
    admins = ["arn:aws:iam::111122223333:role/ml-admins", "arn:aws:iam::111122223333:user/alice"]
    result = run(config(clusterAdmins=admins))
    entries = {e.inputs["principalArn"]: e for e in result.of_type(ACCESS_ENTRY)}
    assert sorted(entries) == sorted(admins)
    assert {e.inputs["type"] for e in entries.values()} == {"STANDARD"}
    assert {e.inputs["clusterName"] for e in entries.values()} == {"eks-gpu-dev"}
    associations = result.of_type(ASSOCIATION)
    assert sorted(a.inputs["principalArn"] for a in associations) == sorted(admins)
    for association in associations:
        # EKS User Guide, "access-policy-permissions": cluster-admin on every namespace
        assert association.inputs["policyArn"] == "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
        assert association.inputs["accessScope"] == {"type": "cluster"}
        # the policy is attached to the entry, so it waits for it
        entry = entries[association.inputs["principalArn"]]
        assert entry.urn in association.property_dependencies["principalArn"]
        assert association.urn in provider_needs(result)
    # named by the ARN: reordering the list replaces nothing
    swapped = run(config(clusterAdmins=admins[::-1]))
    assert sorted(e.urn for e in swapped.of_type(ACCESS_ENTRY)) == sorted(e.urn for e in entries.values())


def test_an_admin_of_another_partition_is_refused() -> None:
    found = problems_of(config(clusterAdmins=["arn:aws-cn:iam::111122223333:role/ml-admins"]))
    assert found["eks-gpu:clusterAdmins[0]"] == (
        "'arn:aws-cn:iam::111122223333:role/ml-admins' is an ARN of partition aws-cn, but us-west-2 is in aws"
    )


def test_the_creator_keeps_its_bootstrap_admin_by_default() -> None:
    assert run(config()).one(CLUSTER).transforms == 0


def _as_deployer(account: AwsAccount) -> str:
    return account.sign_in_as_role("ml-deployer")


def test_a_creator_without_admin_must_list_the_identity_running_pulumi() -> None:
    deployer = f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:role/ml-deployer"
    other = f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:role/someone-else"
    off = {"eks-gpu:clusterCreatorAdmin": False}
    with pytest.raises(ConfigError) as err:
        run_program(config(clusterAdmins=[other]) | off, account_setup=_as_deployer)
    session = f"arn:aws:sts::{DEFAULT_ACCOUNT_ID}:assumed-role/ml-deployer/deployer"
    assert f"does not list the identity running pulumi ({session})" in str(err.value)
    result = run_program(config(clusterAdmins=[other, deployer]) | off, account_setup=_as_deployer)
    assert result.account_data == session  # STS's own answer for the assumed role
    assert result.one(CLUSTER).transforms == 1
    assert result.warnings == []
    warned = run_program(config(clusterAdmins=[deployer]), account_setup=_as_deployer)
    (warning,) = warned.warnings
    assert warning.startswith(f"eks-gpu:clusterAdmins: lists the identity running pulumi ({session})")
    assert "creating a second one fails (ResourceInUseException)" in warning


def test_the_creator_admin_transform_turns_bootstrap_access_off() -> None:
    # what pulumi-eks 4.4 registers for its aws:eks/cluster:Cluster (nodejs/eks/cluster/cluster.ts)
    props = {
        "name": "c",
        "accessConfig": {"authenticationMode": "API", "bootstrapClusterCreatorAdminPermissions": True},
    }
    opts = pulumi.ResourceOptions()
    result = no_creator_admin(
        pulumi.ResourceTransformArgs(False, "aws:eks/cluster:Cluster", "c-eksCluster", props, opts)
    )
    assert result is not None
    assert result.props["accessConfig"] == {
        "authenticationMode": "API",
        "bootstrapClusterCreatorAdminPermissions": False,
    }
    assert result.props["name"] == "c"
    other = pulumi.ResourceTransformArgs(False, "aws:iam/role:Role", "c-eksRole", {"name": "r"}, opts)
    assert no_creator_admin(other) is None


# --- 3. control-plane AZs by zone id ------------------------------------------------------


def test_the_unsupported_list_names_zone_ids_the_offline_account_has() -> None:
    # EKS User Guide, "network-reqs": "us-east-1 use1-az3, us-west-1 usw1-az2, ca-central-1 cac1-az3"
    assert sorted(UNSUPPORTED_CONTROL_PLANE_AZ_IDS) == ["cac1-az3", "use1-az3", "usw1-az2"]
    # ... and the id is one of the AZs AWS's offerings data has for the region
    assert NO_CONTROL_PLANE_AZ in {az for zones in aws_data.offerings(EAST).values() for az in zones}


def test_a_pinned_az_where_eks_cannot_run_is_refused_by_its_id() -> None:
    others = sorted(aws_data.offerings(EAST)["g5.xlarge"] - {NO_CONTROL_PLANE_AZ})[:1]
    pinned = [others[0], NO_CONTROL_PLANE_AZ]
    found = problems_of(config(vpc={"cidr": "10.0.0.0/16", "availabilityZones": pinned}) | {"aws:region": EAST})
    message = found["eks-gpu:vpc.availabilityZones[1]"]
    assert f"'{NO_CONTROL_PLANE_AZ}' is AZ id {NO_CONTROL_PLANE_ID}" in message
    assert "cannot run a cluster's control plane" in message


def test_chosen_azs_skip_zone_ids_eks_cannot_use() -> None:
    every = {az for zones in aws_data.offerings(EAST).values() for az in zones}
    assert NO_CONTROL_PLANE_AZ in every
    result = run(config(vpc={"cidr": "10.0.0.0/16", "azCount": len(every) - 1}) | {"aws:region": EAST})
    used = {s.inputs["availabilityZone"] for s in result.of_type("aws:ec2/subnet:Subnet")}
    assert used == every - {NO_CONTROL_PLANE_AZ}
    # asking for every AZ of the region is then one too many
    found = problems_of(config(vpc={"cidr": "10.0.0.0/16", "azCount": len(every)}) | {"aws:region": EAST})
    assert found == {
        "eks-gpu:vpc.azCount": (
            f"{len(every)} AZs asked, but {EAST} has {len(every) - 1} available where EKS can run a control plane "
            f"({', '.join(sorted(every - {NO_CONTROL_PLANE_AZ}))})"
        )
    }


def test_an_existing_vpc_subnet_where_eks_cannot_run_is_refused() -> None:
    good = sorted(aws_data.offerings(EAST)["g5.xlarge"] - {NO_CONTROL_PLANE_AZ})[:2]
    with offline_account(EAST) as account:
        vpc = account.create_existing_vpc(
            "10.50.0.0/16",
            [
                ("10.50.0.0/20", good[0], False),
                ("10.50.16.0/20", good[1], False),
                ("10.50.32.0/20", NO_CONTROL_PLANE_AZ, False),
                ("10.50.48.0/24", good[0], True),
            ],
        )
        ids = list(vpc.private_subnet_ids)
        with pytest.raises(ConfigError) as err:
            run_program(config(vpc={"id": vpc.vpc_id, "privateSubnetIds": ids}) | {"aws:region": EAST}, account=account)
    problems = {p.key: p.message for p in err.value.problems}
    assert list(problems) == ["eks-gpu:vpc.privateSubnetIds[2]"]
    assert (
        f"'{ids[2]}': '{NO_CONTROL_PLANE_AZ}' is AZ id {NO_CONTROL_PLANE_ID}"
        in problems["eks-gpu:vpc.privateSubnetIds[2]"]
    )


# --- 4. pools the autoscaler and EKS can serve --------------------------------------------


def _pool_asg_tags(result: ProgramRun, key: str) -> dict[str, str]:
    group = node_group(result, key)
    tags = [t for t in result.of_type("aws:autoscaling/tag:Tag") if f"-{key}-" in t.name]
    assert tags, f"no ASG tags for {key} ({group['nodeGroupName']})"
    return {t.inputs["tag"]["key"]: t.inputs["tag"]["value"] for t in tags}


def test_a_pool_within_the_asg_tag_limit_builds_and_one_more_label_is_refused() -> None:
    # the program's limits are the documented ones
    assert (ASG_MAX_TAGS, EKS_OWNED_ASG_TAGS) == (ASG_TAG_LIMIT, EKS_ASG_TAGS)
    base = _pool_asg_tags(run(config()), "inference")
    assert base["k8s.io/cluster-autoscaler/enabled"] == "true"
    room = ASG_TAG_LIMIT - len(EKS_ASG_TAGS) - len(base)
    labels = {f"team.example.com/l{i}": "x" for i in range(room)}
    full = _pool_asg_tags(run(config({"inference": gpu_pool(labels=labels)})), "inference")
    assert len(full) + len(EKS_ASG_TAGS) == ASG_TAG_LIMIT
    over = {**labels, "team.example.com/one-more": "x"}
    message = problems_of(config({"inference": gpu_pool(labels=over)}))["eks-gpu:gpuNodeGroups.inference"]
    assert f"needs {ASG_TAG_LIMIT + 1} tags on its Auto Scaling group" in message
    assert "drop 1 of its labels" in message and "team.example.com/one-more" in message


def test_a_pinned_pool_az_must_be_in_the_vpc_and_offer_its_types() -> None:
    azs = sorted(aws_data.offerings(REGION)["g5.xlarge"])
    vpc = {"cidr": "10.0.0.0/16", "availabilityZones": azs[:2]}
    outside = azs[2]
    found = problems_of(config({"a": gpu_pool(availabilityZone=outside)}, vpc=vpc))
    assert found["eks-gpu:gpuNodeGroups.a.availabilityZone"].startswith(f"'{outside}' is not one of the VPC's AZs")
    scarce, only = aws_data.single_az_type(REGION)
    other = sorted(set(azs) - {only})[0]
    found = problems_of(
        config({"a": gpu_pool(scarce, availabilityZone=other)}, vpc=vpc | {"availabilityZones": [only, other]})
    )
    assert found["eks-gpu:gpuNodeGroups.a.availabilityZone"] == (
        f"'{other}' does not offer all the pool's instance types (they are in: {only})"
    )
    pinned = run(config({"a": gpu_pool(availabilityZone=azs[1])}, vpc=vpc))
    subnets = {s.id: s.inputs["availabilityZone"] for s in pinned.of_type("aws:ec2/subnet:Subnet")}
    assert {subnets[i] for i in node_group(pinned, "a")["subnetIds"]} == {azs[1]}


# --- 6. housekeeping -----------------------------------------------------------------------


def test_the_control_plane_log_group_exists_first_with_its_retention() -> None:
    result = run(config(logRetentionDays=30))
    log_group = result.one(LOG_GROUP)
    # EKS User Guide, "control-plane-logs": /aws/eks/<cluster name>/cluster
    assert log_group.inputs["name"] == "/aws/eks/eks-gpu-dev/cluster"
    assert log_group.inputs["retentionInDays"] == 30
    assert log_group.urn in result.one(CLUSTER).dependencies
    assert run(config()).one(LOG_GROUP).inputs["retentionInDays"] == 90


def test_no_unused_default_security_groups_and_a_readable_name_tag() -> None:
    cluster: dict[str, Any] = run(config()).one(CLUSTER).inputs
    assert cluster["skipDefaultSecurityGroups"] is True
    assert cluster["clusterTags"] == {"Name": cluster["name"]}
