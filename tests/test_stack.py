"""The whole program under mocks: what it registers for the dev stack and for variations of it."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from eks_gpu import design
from eks_gpu.config import ConfigError
from eks_gpu.offline import load_stack_file, offline_account, run_program
from eks_gpu.offline.deployer import with_deployer

from tests import aws_data
from tests.helpers import (
    CLIENT_CIDR,
    CLUSTER,
    LAUNCH_TEMPLATE,
    NODE_GROUP,
    REGION,
    ROOT,
    config,
    every_feature,
    gpu_pool,
    iam_document,
    launch_template,
    node_group,
    problems_of,
    program_scope,
    run,
    run_stack_file,
)

DEV = load_stack_file(ROOT / "Pulumi.dev.yaml")
A100_PAIR = aws_data.same_shape_pair(REGION)
"""Two GPU types of one shape (vCPUs, memory, GPU model and count) from the catalogue."""
P5_AZ = sorted(aws_data.offerings(REGION)["p5.48xlarge"])[0]
AZS_WITH_P5 = sorted({P5_AZ, *sorted(aws_data.offerings(REGION)["g5.xlarge"] - {P5_AZ})[:1]})
GPU_TAINT = {"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}


@pytest.fixture(scope=program_scope)
def dev() -> Any:
    return run_stack_file("dev")


def test_dev_stack_builds_the_documented_tree(dev: Any) -> None:
    types = [r.type for r in dev.resources]
    azs = DEV["eks-gpu:vpc"]["availabilityZones"]
    assert types.count("aws:ec2/vpc:Vpc") == 1
    assert types.count("aws:ec2/subnet:Subnet") == 2 * len(azs)  # a public and a private subnet per AZ
    assert types.count("aws:ec2/natGateway:NatGateway") == (
        1 if DEV["eks-gpu:vpc"]["natGateways"] == "single" else len(azs)
    )
    assert types.count(CLUSTER) == 1
    assert types.count(NODE_GROUP) == 1 + len(DEV["eks-gpu:gpuNodeGroups"])
    assert sorted(a.inputs["addonName"] for a in dev.of_type("aws:eks/addon:Addon")) == [
        "aws-ebs-csi-driver",
        "coredns",
        "eks-node-monitoring-agent",
        "eks-pod-identity-agent",
    ]
    assert dev.warnings == []


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_shipped_stacks_name_no_deployer_and_are_refused_as_they_are(stack: str) -> None:
    shipped = load_stack_file(ROOT / f"Pulumi.{stack}.yaml")
    found = problems_of(shipped | {"aws:region": shipped["aws:region"]})
    assert list(found) == ["eks-gpu:endpointPublicAccessCidrs"]
    assert "pulumi config set --path 'endpointPublicAccessCidrs[0]'" in found["eks-gpu:endpointPublicAccessCidrs"]
    # ... and the one line the README asks for is all they need: the stand-in takes its place
    cfg, needs = with_deployer(shipped)
    assert needs is not None and "endpointPublicAccessCidrs[0]" in needs
    assert cfg["eks-gpu:endpointPublicAccessCidrs"] == ["198.18.0.10/32"]
    assert run_program(cfg, stack=stack).one(CLUSTER).inputs["publicAccessCidrs"] == ["198.18.0.10/32"]


def test_every_child_is_named_after_its_parent(dev: Any) -> None:
    for r in dev.resources:
        parent = (
            dev.by_urn(r.parent) if r.parent and not r.parent.endswith("pulumi:pulumi:Stack::eks-gpu-dev") else None
        )
        if parent is None:
            assert r.type == "eks-gpu:stack:EksGpuStack"
        else:
            assert r.name.startswith(f"{parent.name}-"), (r.name, parent.name)


def test_vpc_subnets_and_egress(dev: Any) -> None:
    vpc = dev.one("aws:ec2/vpc:Vpc").inputs
    assert (vpc["enableDnsSupport"], vpc["enableDnsHostnames"]) == (True, True)
    subnets = dev.of_type("aws:ec2/subnet:Subnet")
    public = [s.inputs for s in subnets if "-public-" in s.name]
    private = [s.inputs for s in subnets if "-private-" in s.name]
    assert len(public) == len(private) == len(DEV["eks-gpu:vpc"]["availabilityZones"])
    assert all(s["tags"]["kubernetes.io/role/elb"] == "1" for s in public)
    assert all(s["tags"]["kubernetes.io/role/internal-elb"] == "1" for s in private)
    assert sorted(s["availabilityZone"] for s in private) == DEV["eks-gpu:vpc"]["availabilityZones"]
    assert all(s["mapPublicIpOnLaunch"] is False for s in public)
    routes = {r.name: r.inputs for r in dev.of_type("aws:ec2/route:Route")}
    nat_id = dev.one("aws:ec2/natGateway:NatGateway").id
    private_routes = [r for n, r in routes.items() if "-private-" in n]
    assert len(private_routes) == len(private) and all(r["natGatewayId"] == nat_id for r in private_routes)
    assert (
        routes["eks-gpu-network-public-default"]["gatewayId"] == dev.one("aws:ec2/internetGateway:InternetGateway").id
    )


def test_per_az_nat_gateways() -> None:
    result = run(config(vpc={"cidr": "10.20.0.0/16", "azCount": 3, "natGateways": "perAz"}))
    nats = result.of_type("aws:ec2/natGateway:NatGateway")
    assert len(nats) == 3
    assert len({n.inputs["subnetId"] for n in nats}) == 3
    private_routes = [r.inputs["natGatewayId"] for r in result.of_type("aws:ec2/route:Route") if "-private-" in r.name]
    assert sorted(private_routes) == sorted(n.id for n in nats)


def test_node_role_trusts_ec2_and_has_the_three_policies(dev: Any) -> None:
    role = dev.one("aws:iam/role:Role", "eks-gpu-node-role")
    # EKS User Guide, "create-node-role": EC2 assumes the node role
    assert iam_document(role.inputs["assumeRolePolicy"]) == {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": "ec2.amazonaws.com"}}],
    }
    attached = sorted(
        a.inputs["policyArn"]
        for a in dev.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if a.parent == dev.named("eks-gpu-node").urn
    )
    assert attached == [
        "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryPullOnly",
        "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
        "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
    ]
    policy_docs = [args for token, args in dev.invokes if token == "aws:iam/getPolicyDocument:getPolicyDocument"]
    principals = [p for a in policy_docs for s in a["statements"] for p in s.get("principals", [])]
    assert {"type": "Service", "identifiers": ["ec2.amazonaws.com"]} in principals


def test_cluster_role_is_another_role_trusting_eks(dev: Any) -> None:
    cluster = dev.one(CLUSTER).inputs
    node_role = dev.one("aws:iam/role:Role", "eks-gpu-node-role")
    cluster_role = dev.one("aws:iam/role:Role", "eks-gpu-cluster-service-role")
    assert cluster_role.urn != node_role.urn
    assert cluster["serviceRole"] == cluster_role.id
    # EKS User Guide, "cluster-iam-role": EKS assumes the cluster role
    assert iam_document(cluster_role.inputs["assumeRolePolicy"]) == {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": "eks.amazonaws.com"}}],
    }
    attached = [
        a.inputs["policyArn"]
        for a in dev.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if a.parent == dev.named("eks-gpu-cluster-service").urn
    ]
    assert attached == ["arn:aws:iam::aws:policy/AmazonEKSClusterPolicy"]
    kms = dev.one("aws:iam/rolePolicy:RolePolicy", "-secrets-kms").inputs
    # what terraform-aws-eks's cluster_encryption policy grants the cluster role, on the secrets key only
    assert iam_document(kms["policy"]) == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:ListGrants"],
                "Resource": dev.one("aws:kms/key:Key").outputs["arn"],
            }
        ],
    }


def test_cluster_properties(dev: Any) -> None:
    c = dev.one(CLUSTER)
    i = c.inputs
    assert c.remote
    assert i["name"] == "eks-gpu-dev" and i["version"] == DEV["eks-gpu:kubernetesVersion"]
    assert i["skipDefaultNodeGroup"] is True
    assert i["authenticationMode"] == "API"
    assert i["enabledClusterLogTypes"] == ["api", "audit", "authenticator"]
    key = dev.one("aws:kms/key:Key")
    assert key.inputs["enableKeyRotation"] is True
    assert i["encryptionConfigKeyArn"] == key.outputs["arn"]
    assert i["kubeProxyAddonOptions"]["enabled"] is True
    assert "useDefaultVpcCni" not in i  # pulumi-eks manages the VPC CNI as an EKS add-on
    assert sorted(i["privateSubnetIds"]) == sorted(dev.outputs["privateSubnetIds"])
    cluster_role_attachment = dev.one("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "AmazonEKSClusterPolicy")
    assert cluster_role_attachment.urn in c.dependencies


def test_public_endpoint_only_for_the_configured_cidrs() -> None:
    i = run(config()).one(CLUSTER).inputs
    assert (i["endpointPrivateAccess"], i["endpointPublicAccess"]) == (True, True)
    assert i["publicAccessCidrs"] == [CLIENT_CIDR]


def test_private_only_endpoint_for_a_deployer_in_the_vpc() -> None:
    result = run(config(endpointPublicAccessCidrs=[], endpointPrivateAccessCidrs=["10.0.0.0/16"]))
    i = result.one(CLUSTER).inputs
    assert (i["endpointPrivateAccess"], i["endpointPublicAccess"]) == (True, False)
    assert "publicAccessCidrs" not in i


def test_coredns_addon_waits_for_the_system_nodes(dev: Any) -> None:
    addon = dev.one("aws:eks/addon:Addon", "-coredns")
    assert addon.inputs["addonName"] == "coredns"
    assert addon.inputs["clusterName"] == dev.one(CLUSTER).inputs["name"]
    # depends_on a component means on all of its resources
    assert dev.one(NODE_GROUP, "-system-ng").urn in addon.dependencies


def sizes(group: dict[str, Any]) -> dict[str, float]:
    """The scaling config the node group should get (numbers arrive as floats under mocks)."""
    return {k: float(group[k]) for k in ("minSize", "desiredSize", "maxSize")}


def test_system_node_group(dev: Any) -> None:
    ng = node_group(dev, "system")
    system = DEV["eks-gpu:systemNodeGroup"]
    assert ng["amiType"] == "AL2023_x86_64_STANDARD"
    assert ng["capacityType"] == "ON_DEMAND"
    assert ng["taints"] == []
    assert ng["instanceTypes"] == system["instanceTypes"]
    assert ng["scalingConfig"] == sizes(system)
    assert ng["labels"] == {"eks-gpu/node-group": "system"}


def test_gpu_node_group_properties(dev: Any) -> None:
    ng_res = dev.one(NODE_GROUP, "-inference-ng")
    ng = ng_res.inputs
    pool = DEV["eks-gpu:gpuNodeGroups"]["inference"]
    (itype,) = pool["instanceTypes"]
    count, model = aws_data.gpus(itype)
    assert ng["instanceTypes"] == [itype]
    assert ng["amiType"] == "AL2023_x86_64_NVIDIA"
    assert ng["capacityType"] == "ON_DEMAND"
    assert ng["scalingConfig"] == sizes(pool)
    assert ng["labels"] == {
        "eks-gpu/node-group": "inference",
        "nvidia.com/gpu.present": "true",
        "k8s.amazonaws.com/accelerator": f"nvidia-{model.lower()}",
        **pool["labels"],
    }
    assert ng["taints"] == [{"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}]
    assert ng["updateConfig"] == {"maxUnavailable": 1.0}
    assert ng["nodeRepairConfig"] == {"enabled": True}
    assert ng["version"] == DEV["eks-gpu:kubernetesVersion"]
    assert ng["clusterName"] == dev.one(CLUSTER).inputs["name"]
    assert ng["nodeRoleArn"] == dev.outputs["nodeRoleArn"]
    assert ng_res.ignore_changes == ("scalingConfig.desiredSize",)
    lt = dev.one(LAUNCH_TEMPLATE, "-inference-lt")
    assert ng["launchTemplate"]["id"] == lt.id
    assert dev.outputs["gpuNodeGroups"]["inference"]["gpusPerNode"] == count
    assert dev.outputs["gpuNodeGroups"]["inference"]["gpuModel"] == model
    assert (
        dev.outputs["gpuNodeGroups"]["inference"]["asgName"]
        == ng_res.outputs["resources"][0]["autoscalingGroups"][0]["name"]
    )


def test_node_groups_wait_for_policies_and_nat_routes(dev: Any) -> None:
    attachments = {
        a.urn for a in dev.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment") if "-node-" in a.name
    }
    assert len(attachments) == 3  # the node role's three policies
    for key in ("system", "inference"):
        deps = set(dev.one(NODE_GROUP, f"-{key}-ng").dependencies)
        assert attachments <= deps
        subnets = set(node_group(dev, key)["subnetIds"])
        routed = set()
        for az_route in [r for r in dev.of_type("aws:ec2/route:Route") if "-private-" in r.name]:
            rt = az_route.inputs["routeTableId"]
            assoc = next(
                a
                for a in dev.of_type("aws:ec2/routeTableAssociation:RouteTableAssociation")
                if a.inputs["routeTableId"] == rt
            )
            if assoc.inputs["subnetId"] in subnets:
                assert {az_route.urn, assoc.urn} <= deps
                routed.add(assoc.inputs["subnetId"])
        assert routed == subnets, key  # every subnet of the group had its route checked


def test_launch_template_imdsv2_and_encrypted_gp3(dev: Any) -> None:
    lt = launch_template(dev, "inference")
    assert lt["metadataOptions"] == {
        "httpEndpoint": "enabled",
        "httpTokens": "required",
        "httpPutResponseHopLimit": 1.0,
    }
    assert lt["blockDeviceMappings"] == [
        {
            "deviceName": "/dev/xvda",
            "ebs": {
                "volumeType": "gp3",
                "volumeSize": float(DEV["eks-gpu:gpuNodeGroups"]["inference"]["diskSizeGiB"]),
                # the pool's defaults (docs/configuration.md): gp3 baseline IOPS, 500 MiB/s for image pulls
                "iops": 3000.0,
                "throughput": 500.0,
                "encrypted": "true",
                "deleteOnTermination": "true",
            },
        }
    ]
    assert {t["resourceType"] for t in lt["tagSpecifications"]} == {"instance", "volume", "network-interface"}
    # what it launches is tagged with the node group's identity only (docs/review.md, "Tags and node rolls")
    identity = {"Name": "eks-gpu-dev-inference", "eks-gpu/cluster": "eks-gpu-dev", "eks-gpu/node-group": "inference"}
    assert all(t["tags"] == identity for t in lt["tagSpecifications"])


def test_bottlerocket_pool_encrypts_both_volumes_and_sizes_the_data_volume() -> None:
    result = run(config({"br": gpu_pool(amiType="BOTTLEROCKET_x86_64_NVIDIA", diskSizeGiB=300)}))
    devices = {d["deviceName"]: d["ebs"] for d in launch_template(result, "br")["blockDeviceMappings"]}
    assert devices["/dev/xvdb"]["volumeSize"] == 300.0
    assert "volumeSize" not in devices["/dev/xvda"]
    assert all(d["encrypted"] == "true" and d["volumeType"] == "gp3" for d in devices.values())
    assert node_group(result, "br")["amiType"] == "BOTTLEROCKET_x86_64_NVIDIA"


def test_multi_pool_stack() -> None:
    pools = {
        "inference": gpu_pool("g5.xlarge", maxSize=4, labels={"workload": "inference"}),
        "a100": gpu_pool(*A100_PAIR),
        "training": gpu_pool(
            "p5.48xlarge",
            capacityType="SPOT",
            taints=[
                {"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"},
                {"key": "workload", "value": "training", "effect": "NO_EXECUTE"},
            ],
        ),
        "arm": gpu_pool("g5g.xlarge"),
        "quad": gpu_pool("g5.12xlarge"),
    }
    result = run(config(pools, vpc={"azCount": 3}))
    groups = result.outputs["gpuNodeGroups"]
    for key, types in (
        ("inference", "g5.xlarge"),
        ("training", "p5.48xlarge"),
        ("arm", "g5g.xlarge"),
        ("quad", "g5.12xlarge"),
    ):
        count, model = aws_data.gpus(types)
        assert (groups[key]["gpusPerNode"], groups[key]["gpuModel"]) == (count, model)
        assert node_group(result, key)["labels"]["k8s.amazonaws.com/accelerator"] == f"nvidia-{model.lower()}"
    assert node_group(result, "arm")["amiType"] == "AL2023_ARM_64_NVIDIA"
    assert node_group(result, "training")["capacityType"] == "SPOT"
    assert node_group(result, "training")["taints"][1] == {
        "key": "workload",
        "value": "training",
        "effect": "NO_EXECUTE",
    }
    assert node_group(result, "a100")["instanceTypes"] == list(A100_PAIR)
    assert groups["a100"]["gpusPerNode"] == aws_data.shape(A100_PAIR[0])[3]
    assert len(result.of_type(NODE_GROUP)) == 6


def test_every_enum_value_sent_is_one_the_aws_api_accepts() -> None:
    pools = {
        "a": gpu_pool(
            "g5.xlarge", capacityType="SPOT", taints=[GPU_TAINT, {"key": "x", "effect": "PREFER_NO_SCHEDULE"}]
        ),
        "b": gpu_pool(
            "g5g.xlarge", amiType="BOTTLEROCKET_ARM_64_NVIDIA", taints=[{**GPU_TAINT, "effect": "NO_EXECUTE"}]
        ),
        "c": gpu_pool(
            "p5.48xlarge",
            capacityType="CAPACITY_BLOCK",
            capacityReservationId="cr-0123456789abcdef0",
            availabilityZone=P5_AZ,
        ),
    }
    result = run(config(pools))
    ami_types, capacity, effects = (
        aws_data.eks_enum("AMITypes"),
        aws_data.eks_enum("CapacityTypes"),
        aws_data.eks_enum("TaintEffect"),
    )
    instance_types = aws_data.ec2_instance_types()
    assert len(result.of_type(NODE_GROUP)) == len(pools) + 1  # and the system group
    with_type = [lt.name for lt in result.of_type(LAUNCH_TEMPLATE) if "instanceType" in lt.inputs]
    assert with_type == ["eks-gpu-c-lt"]  # only the Capacity Block's template names its type
    for ng in result.of_type(NODE_GROUP):
        assert ng.inputs["amiType"] in ami_types
        assert ng.inputs["capacityType"] in capacity
        assert all(t["effect"] in effects for t in ng.inputs.get("taints", []))
        assert set(ng.inputs.get("instanceTypes", [])) <= instance_types
    for lt in result.of_type(LAUNCH_TEMPLATE):
        if "instanceType" in lt.inputs:
            assert lt.inputs["instanceType"] in instance_types


def test_capacity_block_pool_puts_type_and_reservation_in_the_launch_template() -> None:
    block = gpu_pool(
        "p5.48xlarge",
        capacityType="CAPACITY_BLOCK",
        capacityReservationId="cr-0123456789abcdef0",
        availabilityZone=P5_AZ,
    )
    result = run(config({"cb": block}, vpc={"availabilityZones": AZS_WITH_P5}))
    lt = launch_template(result, "cb")
    assert lt["instanceType"] == "p5.48xlarge"
    assert lt["instanceMarketOptions"] == {"marketType": "capacity-block"}
    assert lt["capacityReservationSpecification"] == {
        "capacityReservationTarget": {"capacityReservationId": "cr-0123456789abcdef0"}
    }
    ng = node_group(result, "cb")
    assert "instanceTypes" not in ng and ng["capacityType"] == "CAPACITY_BLOCK"
    # only the reservation's AZ: its private subnet, nothing else
    (subnet,) = ng["subnetIds"]
    (private,) = [s for s in result.of_type("aws:ec2/subnet:Subnet") if s.id == subnet]
    assert private.inputs["availabilityZone"] == P5_AZ and "-private-" in private.name
    assert result.outputs["gpuNodeGroups"]["cb"]["availabilityZones"] == [P5_AZ]


def test_tags_on_every_taggable_resource(dev: Any) -> None:
    taggable = [r for r in dev.resources if r.custom and r.type.startswith("aws:") and "tags" in r.inputs]
    assert {r.type for r in taggable} >= {
        "aws:ec2/vpc:Vpc",
        "aws:ec2/subnet:Subnet",
        "aws:iam/role:Role",
        "aws:kms/key:Key",
        NODE_GROUP,
        LAUNCH_TEMPLATE,
    }
    for r in taggable:
        assert r.inputs["tags"]["Environment"] == "dev", r.name
        assert r.inputs["tags"]["team"] == "ml-platform", r.name
    assert dev.one(CLUSTER).inputs["tags"] == {"team": "ml-platform", "Environment": "dev"}
    untagged = {r.type for r in dev.resources if r.custom and r.type.startswith("aws:") and "tags" not in r.inputs}
    assert untagged <= {
        "aws:ec2/route:Route",
        "aws:ec2/routeTableAssociation:RouteTableAssociation",
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
        "aws:iam/rolePolicy:RolePolicy",
        "aws:autoscaling/tag:Tag",  # a tag itself
    }


def test_outputs(dev: Any) -> None:
    out = dev.outputs
    assert out["clusterName"] == "eks-gpu-dev"
    assert "kubeconfig" in dev.secret_outputs
    assert out["kubeconfig"] == dev.one(CLUSTER).outputs["kubeconfigJson"]
    assert out["vpcId"] == dev.one("aws:ec2/vpc:Vpc").id
    subnets = dev.of_type("aws:ec2/subnet:Subnet")
    assert sorted(out["privateSubnetIds"]) == sorted(s.id for s in subnets if "-private-" in s.name)
    assert sorted(out["publicSubnetIds"]) == sorted(s.id for s in subnets if "-public-" in s.name)
    assert (
        out["gpuNodeGroups"]["inference"]["nodeGroupName"]
        == dev.one(NODE_GROUP, "-inference-ng").outputs["nodeGroupName"]
    )
    assert out["gpuNodeGroups"]["inference"]["singleAz"] is False
    system = dev.one(NODE_GROUP, "-system-ng").outputs
    assert out["systemNodeGroup"] == {
        "nodeGroupName": system["nodeGroupName"],
        "asgName": system["resources"][0]["autoscalingGroups"][0]["name"],
    }


def test_runs_are_deterministic() -> None:
    first, second = run(config()), run(config())
    assert first.resources == second.resources
    assert first.outputs == second.outputs


# --- AZ selection ---------------------------------------------------------------------------


def test_vpc_azs_include_the_only_az_of_a_scarce_gpu_type() -> None:
    itype, az = aws_data.single_az_type(REGION)
    result = run(config({"scarce": gpu_pool(itype), "common": gpu_pool("g6.xlarge")}))
    private_azs = {
        s.inputs["availabilityZone"] for s in result.of_type("aws:ec2/subnet:Subnet") if "-private-" in s.name
    }
    assert az in private_azs and len(private_azs) == 2
    scarce = result.outputs["gpuNodeGroups"]["scarce"]
    assert scarce["availabilityZones"] == [az] and scarce["singleAz"] is True
    subnet_azs = {
        s.inputs["availabilityZone"]
        for s in result.of_type("aws:ec2/subnet:Subnet")
        if s.id in node_group(result, "scarce")["subnetIds"]
    }
    assert subnet_azs == {az}
    common = result.outputs["gpuNodeGroups"]["common"]
    assert set(common["availabilityZones"]) == private_azs & aws_data.offerings(REGION)["g6.xlarge"]


def test_a_pool_whose_types_share_no_az_is_an_error_naming_where_they_are() -> None:
    offers = aws_data.offerings(REGION)
    cat = aws_data.catalogue()
    nvidia = sorted(
        t for t in offers if cat.get(t, {}).get("GpuInfo", {}).get("Gpus", [{}])[0].get("Manufacturer") == "NVIDIA"
    )
    a, b = next((a, b) for a in nvidia for b in nvidia if a < b and not offers[a] & offers[b])
    with pytest.raises(ConfigError) as err:
        run(config({"split": gpu_pool(a, b)}))
    messages = {p.key: p.message for p in err.value.problems}
    message = messages["eks-gpu:gpuNodeGroups.split"]
    assert f"no AZ of {REGION} offers all its instance types" in message
    assert f"{a} in {', '.join(sorted(offers[a]))}" in message and f"{b} in {', '.join(sorted(offers[b]))}" in message


def test_more_azs_than_the_region_has() -> None:
    azs = {az for zones in aws_data.offerings(REGION).values() for az in zones}
    with pytest.raises(ConfigError) as err:
        run(config(vpc={"azCount": 6}))
    (problem,) = err.value.problems
    assert problem.key == "eks-gpu:vpc.azCount"
    assert f"{REGION} has {len(azs)} available" in problem.message


# --- instance facts ---------------------------------------------------------------------------


def test_instance_type_errors_come_from_aws_facts() -> None:
    found = problems_of(
        config(
            {
                "nogpu": gpu_pool("t3.large"),
                "typo": gpu_pool("g5.xlarg"),
                "mixedarch": gpu_pool("g5.xlarge", "g5g.xlarge"),
                "mixedgpu": gpu_pool("g5.xlarge", "g5.12xlarge"),
                "wrongami": gpu_pool("g5g.xlarge", amiType="AL2023_x86_64_NVIDIA"),
            }
        )
    )
    assert (
        found["eks-gpu:gpuNodeGroups.nogpu.instanceTypes[0]"] == "'t3.large' has no GPU; a GPU pool needs NVIDIA GPUs"
    )
    assert "not offered in any available AZ of us-west-2" in found["eks-gpu:gpuNodeGroups.typo.instanceTypes[0]"]
    assert "mixes CPU architectures" in found["eks-gpu:gpuNodeGroups.mixedarch.instanceTypes"]
    small, large = aws_data.shape("g5.xlarge"), aws_data.shape("g5.12xlarge")
    assert small[2] == large[2]  # one GPU model: only vCPUs, memory and GPU count differ, and are named
    assert found["eks-gpu:gpuNodeGroups.mixedgpu.instanceTypes"].startswith(
        f"mixes node shapes (g5.xlarge: vCPUs {small[0]}, memory MiB {small[1]}, GPUs {small[3]}; "
        f"g5.12xlarge: vCPUs {large[0]}, memory MiB {large[1]}, GPUs {large[3]}): "
    )
    assert found["eks-gpu:gpuNodeGroups.wrongami.amiType"] == (
        "AL2023_x86_64_NVIDIA is for x86_64 but the instance types are arm64; use AL2023_ARM_64_NVIDIA"
    )


@pytest.mark.parametrize(
    ("first", "second", "differs"),
    [
        ("g5.xlarge", "g5.2xlarge", "vCPUs"),  # same GPU, twice the vCPUs and memory
        ("g5.xlarge", "g6.xlarge", "GPU model"),  # A10G and L4
    ],
)
def test_one_pool_one_node_shape(first: str, second: str, differs: str) -> None:
    a, b = aws_data.shape(first), aws_data.shape(second)
    names = ("vCPUs", "memory MiB", "GPU model", "GPUs")
    expected = [n for n, x, y in zip(names, a, b, strict=True) if x != y]
    assert differs in expected
    message = problems_of(config({"p": gpu_pool(first, second)}))["eks-gpu:gpuNodeGroups.p.instanceTypes"]
    for name in names:
        assert (f"{name} " in message.split("):")[0]) == (name in expected), name
    assert "the Cluster Autoscaler builds a pool's scale-from-zero template from its first type" in message


def test_config_and_aws_problems_are_reported_together() -> None:
    found = problems_of(
        config(
            {
                "bad": gpu_pool("t3.large"),
                "eol": gpu_pool(amiType="AL2_x86_64_GPU"),
            },
            kubernetesVersion="1.31",
        )
    )
    assert set(found) == {
        "eks-gpu:gpuNodeGroups.bad.instanceTypes[0]",
        "eks-gpu:gpuNodeGroups.eol.amiType",
        "eks-gpu:kubernetesVersion",
    }


def test_errors_come_before_any_resource() -> None:
    with pytest.raises(ConfigError) as err:
        run(config({"bad": gpu_pool("t3.large")}, vpc={"azCount": 9}))
    assert err.value.registered == ()  # type: ignore[attr-defined]
    assert len(err.value.problems) == 2


def test_extended_support_version_warns() -> None:
    result = run(config(kubernetesVersion="1.32"))
    (warning,) = result.warnings
    assert warning.startswith("eks-gpu:kubernetesVersion: Kubernetes 1.32 left EKS standard support on ")
    assert "bills extended support at $0.60/h instead of $0.10/h (6x)" in warning


def test_missing_region_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as err:
        design.load(
            {"endpointPublicAccessCidrs": [CLIENT_CIDR], "gpuNodeGroups": {"a": gpu_pool(amiType="AL2_x86_64_GPU")}},
            "dev",
            None,
            date(2026, 12, 1),
        )
    assert {p.key for p in err.value.problems} == {"aws:region", "eks-gpu:gpuNodeGroups.a.amiType"}


# --- bring your own VPC ------------------------------------------------------------------------


def test_existing_vpc() -> None:
    with offline_account(REGION) as account:
        azs = sorted(aws_data.offerings(REGION)["g5.xlarge"])[:2]
        vpc = account.create_existing_vpc(
            "10.50.0.0/16",
            [("10.50.0.0/20", azs[0], False), ("10.50.16.0/20", azs[1], False), ("10.50.32.0/24", azs[0], True)],
        )
        result = run_program(
            config(
                vpc={
                    "id": vpc.vpc_id,
                    "privateSubnetIds": list(vpc.private_subnet_ids),
                    "publicSubnetIds": list(vpc.public_subnet_ids),
                }
            ),
            account=account,
        )
    assert result.of_type("aws:ec2/vpc:Vpc") == [] and result.of_type("aws:ec2/subnet:Subnet") == []
    cluster = result.one(CLUSTER).inputs
    assert cluster["vpcId"] == vpc.vpc_id
    assert sorted(cluster["privateSubnetIds"]) == sorted(vpc.private_subnet_ids)
    assert sorted(node_group(result, "inference")["subnetIds"]) == sorted(vpc.private_subnet_ids)
    assert result.outputs["vpcId"] == vpc.vpc_id
    assert result.warnings == []  # its private subnets route through a NAT gateway


def test_existing_vpc_private_subnets_in_one_az_is_an_error() -> None:
    with offline_account(REGION) as account:
        az = sorted(aws_data.offerings(REGION)["g5.xlarge"])[0]
        vpc = account.create_existing_vpc(
            "10.60.0.0/16", [("10.60.0.0/20", az, False), ("10.60.16.0/20", az, False), ("10.60.32.0/24", az, True)]
        )
        with pytest.raises(ConfigError) as err:
            run_program(
                config(vpc={"id": vpc.vpc_id, "privateSubnetIds": list(vpc.private_subnet_ids)}), account=account
            )
    (problem,) = err.value.problems
    assert problem.key == "eks-gpu:vpc.privateSubnetIds"
    assert "at least two AZs" in problem.message


def test_existing_vpc_foreign_subnet_is_an_error() -> None:
    with offline_account(REGION) as account:
        azs = sorted(aws_data.offerings(REGION)["g5.xlarge"])[:2]
        mine = account.create_existing_vpc(
            "10.70.0.0/16",
            [("10.70.0.0/20", azs[0], False), ("10.70.16.0/20", azs[1], False), ("10.70.32.0/24", azs[0], True)],
        )
        other = account.create_existing_vpc(
            "10.80.0.0/16",
            [("10.80.0.0/20", azs[0], False), ("10.80.16.0/20", azs[1], False), ("10.80.32.0/24", azs[0], True)],
        )
        ids = [mine.private_subnet_ids[0], other.private_subnet_ids[0]]
        with pytest.raises(ConfigError) as err:
            run_program(config(vpc={"id": mine.vpc_id, "privateSubnetIds": ids}), account=account)
    messages = {p.key: p.message for p in err.value.problems}
    assert messages["eks-gpu:vpc.privateSubnetIds[1]"] == f"'{ids[1]}' is not a subnet of {mine.vpc_id}"


def test_existing_vpc_that_misses_a_pool_az() -> None:
    itype, az = aws_data.single_az_type(REGION)
    with offline_account(REGION) as account:
        others = sorted({a for zones in aws_data.offerings(REGION).values() for a in zones} - {az})[:2]
        vpc = account.create_existing_vpc(
            "10.90.0.0/16",
            [
                ("10.90.0.0/20", others[0], False),
                ("10.90.16.0/20", others[1], False),
                ("10.90.32.0/24", others[0], True),
            ],
        )
        with pytest.raises(ConfigError) as err:
            run_program(
                config(
                    {"scarce": gpu_pool(itype)},
                    vpc={"id": vpc.vpc_id, "privateSubnetIds": list(vpc.private_subnet_ids)},
                ),
                account=account,
            )
    message = {p.key: p.message for p in err.value.problems}["eks-gpu:gpuNodeGroups.scarce"]
    assert f"they are all offered together in {az}" in message


def test_environment_tag_comes_from_its_own_key() -> None:
    found = problems_of(config(tags={"Environment": "prod"}))
    assert found == {"eks-gpu:tags.Environment": "is set from eks-gpu:environment; set that key instead"}


def test_system_instance_type_must_be_offered() -> None:
    found = problems_of(config(systemNodeGroup={"instanceTypes": ["t3.nope"]}))
    assert "not offered in any available AZ" in found["eks-gpu:systemNodeGroup.instanceTypes[0]"]


def test_pinned_azs_are_checked_against_the_region() -> None:
    found = problems_of(config(vpc={"availabilityZones": ["us-west-2a", "us-west-2z"], "azCount": 3}))
    assert "'us-west-2z' is not an available AZ of us-west-2" in found["eks-gpu:vpc.availabilityZones[1]"]
    assert "disagrees with the 2 availabilityZones" in found["eks-gpu:vpc.azCount"]


def private_subnets(result: Any) -> dict[str, str]:
    """Logical name -> CIDR of the private subnets."""
    return {s.name: s.inputs["cidrBlock"] for s in result.of_type("aws:ec2/subnet:Subnet") if "-private-" in s.name}


def test_adding_a_pool_never_moves_pinned_subnets() -> None:
    itype, az = aws_data.single_az_type(REGION)
    pinned = sorted({*sorted(aws_data.offerings(REGION)["g6.xlarge"] - {az})[:1], az})
    before = run(config({"common": gpu_pool("g6.xlarge")}, vpc={"availabilityZones": pinned}))
    after = run(config({"common": gpu_pool("g6.xlarge"), "scarce": gpu_pool(itype)}, vpc={"availabilityZones": pinned}))
    assert private_subnets(before) == private_subnets(after)
    assert node_group(before, "common") == node_group(after, "common")


def test_an_az_keeps_its_cidr_when_the_chosen_azs_change() -> None:
    itype, _ = aws_data.single_az_type(REGION)
    before = private_subnets(run(config({"common": gpu_pool("g6.xlarge")})))
    after = private_subnets(run(config({"common": gpu_pool("g6.xlarge"), "scarce": gpu_pool(itype)})))
    assert before != after  # the scarce type pulled another AZ in
    assert len(before.keys() & after.keys()) == 1  # it took the place of one AZ of two; the other stayed
    for name in before.keys() & after.keys():
        assert before[name] == after[name]


def test_existing_vpc_without_nat_route_warns() -> None:
    with offline_account(REGION) as account:
        azs = sorted(aws_data.offerings(REGION)["g5.xlarge"])[:2]
        vpc = account.create_existing_vpc(
            "10.40.0.0/16", [("10.40.0.0/20", azs[0], False), ("10.40.16.0/20", azs[1], False)], egress=False
        )
        result = run_program(
            config(vpc={"id": vpc.vpc_id, "privateSubnetIds": list(vpc.private_subnet_ids)}), account=account
        )
    assert len(result.warnings) == 2
    assert all("has no default route through a NAT gateway" in w for w in result.warnings)


def test_prod_stack_differs_where_production_should() -> None:
    prod_cfg = load_stack_file(ROOT / "Pulumi.prod.yaml")
    prod = run_stack_file("prod")
    azs = prod_cfg["eks-gpu:vpc"]["availabilityZones"]
    assert len(prod.of_type("aws:ec2/natGateway:NatGateway")) == len(azs) >= 3  # natGateways: perAz
    assert prod.one(CLUSTER).protect and prod.one("aws:kms/key:Key").protect
    assert not dev_run_protects()
    training = prod.outputs["gpuNodeGroups"]["training"]
    assert (
        training["gpusPerNode"] == aws_data.gpus(prod_cfg["eks-gpu:gpuNodeGroups"]["training"]["instanceTypes"][0])[0]
    )
    assert node_group(prod, "training")["scalingConfig"]["minSize"] == 0
    assert "eks-gpu:endpointPublicAccessCidrs" not in prod_cfg  # the runner's address is the deployer's to set


def dev_run_protects() -> bool:
    dev = run_stack_file("dev")
    return dev.one(CLUSTER).protect or dev.one("aws:kms/key:Key").protect


def test_component_type_tokens_stay_as_documented() -> None:
    """A component's type token is part of every child's URN: renaming one makes `pulumi up` replace
    everything under it (the VPC, the cluster). The tokens are docs/design.md's, written out here."""
    tokens = [
        "eks-gpu:addons:Addons",
        "eks-gpu:autoscaler:ClusterAutoscaler",
        "eks-gpu:cluster:Cluster",
        "eks-gpu:device_plugin:DevicePlugin",
        "eks-gpu:efa_device_plugin:EfaDevicePlugin",
        "eks-gpu:gpu_metrics:DcgmExporter",
        "eks-gpu:iam:ServiceRole",
        "eks-gpu:nccl_test:NcclTest",
        "eks-gpu:network:Network",
        "eks-gpu:nodegroups:NodeGroup",
        "eks-gpu:smoke_test:GpuSmokeTest",
        "eks-gpu:stack:EksGpuStack",
        "eks-gpu:workloads:GpuNamespace",
    ]
    result = run(every_feature())
    assert sorted({r.type for r in result.resources if r.type.startswith("eks-gpu:")}) == tokens
    design = (ROOT / "docs" / "design.md").read_text()
    assert [t for t in tokens if f"| `{t}`" not in design] == []
