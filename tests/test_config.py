"""The stack file parser: every rule, its key and its message, all problems reported together."""

from __future__ import annotations

from datetime import date
from typing import Any

import botocore.session
import pytest
from eks_gpu.config import (
    AmiType,
    CapacityType,
    TaintEffect,
    parse_config,
)

TODAY = date(2026, 12, 1)
CLIENT = "198.18.0.20/32"
"""A deployer address (RFC 2544): every stack must let someone reach the API."""
REACH = {"endpointPublicAccessCidrs": [CLIENT]}


def pool(**overrides: Any) -> dict[str, Any]:
    return {"instanceTypes": ["g5.xlarge"], "minSize": 0, "desiredSize": 0, "maxSize": 2, **overrides}


def problems(raw: dict[str, Any], stack: str = "dev", today: date = TODAY) -> dict[str, str]:
    parsed = parse_config({**REACH, "kubernetesVersion": "1.35", **REACH, **raw}, stack, today)
    return {p.key: p.message for p in parsed.problems}


def test_minimal_config_takes_documented_defaults() -> None:
    parsed = parse_config({**REACH, "kubernetesVersion": "1.35", "gpuNodeGroups": {"a": pool()}}, "dev", TODAY)
    assert parsed.problems == ()
    cfg = parsed.config
    assert cfg is not None
    assert cfg.cluster_name == "eks-gpu-dev"
    assert cfg.environment == "dev"
    assert cfg.vpc.az_count == 3  # type: ignore[union-attr]
    assert cfg.vpc.nat_gateways == "single"  # type: ignore[union-attr]
    assert cfg.endpoint_public_access_cidrs == (CLIENT,)
    assert (cfg.endpoint_private_access_cidrs, cfg.endpoint_private_access_security_group_ids) == ((), ())
    assert (cfg.cluster_admins, cfg.cluster_creator_admin, cfg.log_retention_days) == ((), True, 90)
    assert cfg.gpu_node_groups["a"].availability_zone is None
    # the default docs/configuration.md documents for gpuNodeGroups.<pool>.taints, in the EKS API spelling
    assert [t.model_dump(mode="json") for t in cfg.gpu_node_groups["a"].taints] == [
        {"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}
    ]
    assert cfg.gpu_node_groups["a"].capacity_type == "ON_DEMAND"
    assert cfg.system_node_group.min_size == 1


def test_empty_strings_from_pulumi_yaml_mean_derive_from_stack() -> None:
    parsed = parse_config({**REACH, "kubernetesVersion": "1.35", "clusterName": "", "environment": ""}, "prod", TODAY)
    assert parsed.config is not None
    assert (parsed.config.cluster_name, parsed.config.environment) == ("eks-gpu-prod", "prod")


def test_zero_stays_zero() -> None:
    parsed = parse_config(
        {**REACH, "kubernetesVersion": "1.35", "gpuNodeGroups": {"a": pool(minSize=0, desiredSize=0, maxSize=3)}},
        "dev",
        TODAY,
    )
    assert parsed.config is not None
    a = parsed.config.gpu_node_groups["a"]
    assert (a.min_size, a.desired, a.max_size) == (0, 0, 3)


def test_desired_size_defaults_to_min_size() -> None:
    parsed = parse_config(
        {
            "kubernetesVersion": "1.35",
            **REACH,
            "gpuNodeGroups": {"a": {"instanceTypes": ["g5.xlarge"], "minSize": 2, "maxSize": 3}},
        },
        "dev",
        TODAY,
    )
    assert parsed.config is not None
    assert parsed.config.gpu_node_groups["a"].desired == 2


@pytest.mark.parametrize(
    ("sizes", "key", "message"),
    [
        ({"minSize": 3, "desiredSize": 2, "maxSize": 4}, "desiredSize", "2 is below minSize 3"),
        ({"minSize": 0, "desiredSize": 5, "maxSize": 4}, "maxSize", "4 is below desiredSize 5"),
        ({"minSize": 0, "desiredSize": 0, "maxSize": 0}, "maxSize", "must be at least 1"),
        ({"minSize": -1, "desiredSize": 0, "maxSize": 1}, "minSize", "greater than or equal to 0"),
    ],
)
def test_size_rules(sizes: dict[str, int], key: str, message: str) -> None:
    found = problems({"gpuNodeGroups": {"training": pool(**sizes)}})
    assert message in found[f"eks-gpu:gpuNodeGroups.training.{key}"]


def test_kubernetes_spelling_of_a_taint_effect_names_the_eks_spelling() -> None:
    found = problems({"gpuNodeGroups": {"a": pool(taints=[{"key": "nvidia.com/gpu", "effect": "NoSchedule"}])}})
    message = "'NoSchedule' is the Kubernetes spelling; the EKS API wants NO_SCHEDULE"
    assert found == {"eks-gpu:gpuNodeGroups.a.taints[0].effect": message}


def test_unknown_effect_lists_allowed_values() -> None:
    found = problems({"gpuNodeGroups": {"a": pool(taints=[{"key": "k", "effect": "NEVER"}])}})
    assert "use one of NO_SCHEDULE, NO_EXECUTE, PREFER_NO_SCHEDULE" in found["eks-gpu:gpuNodeGroups.a.taints[0].effect"]


def test_end_of_life_ami_type_is_an_error_with_the_replacement() -> None:
    found = problems({"gpuNodeGroups": {"a": pool(amiType="AL2_x86_64_GPU")}})
    message = found["eks-gpu:gpuNodeGroups.a.amiType"]
    assert "end of life" in message and "AL2023_x86_64_NVIDIA" in message


def test_standard_ami_type_is_not_a_gpu_ami() -> None:
    found = problems({"gpuNodeGroups": {"a": pool(amiType="AL2023_x86_64_STANDARD")}})
    assert "not a GPU AMI type" in found["eks-gpu:gpuNodeGroups.a.amiType"]


def test_gpu_ami_type_on_system_group_is_refused() -> None:
    found = problems({"systemNodeGroup": {"amiType": "AL2023_x86_64_NVIDIA"}})
    assert "system node group runs a standard AMI" in found["eks-gpu:systemNodeGroup.amiType"]


def test_unknown_keys_are_named_with_the_allowed_ones() -> None:
    found = problems({"gpuNodeGroups": {"a": pool(minsize=1)}, "vpc": {"azcount": 2}})
    assert found["eks-gpu:gpuNodeGroups.a.minsize"].startswith("unknown key; allowed keys: amiReleaseVersion, amiType,")
    assert found["eks-gpu:vpc.azcount"] == "unknown key; allowed keys: availabilityZones, azCount, cidr, natGateways"


def test_every_problem_of_the_file_is_reported_together() -> None:
    found = problems(
        {
            "vpc": {"cidr": "10.0.0.1/16", "azCount": 9, "natGateways": "one"},
            "endpointPublicAccessCidrs": ["nope"],
            "systemNodeGroup": {"minSize": 0},
            "gpuNodeGroups": {
                "a": pool(instanceTypes=[], amiType="AL2_x86_64_GPU", minSize=3, desiredSize=1),
                "Bad_Name": pool(),
            },
            "tags": {"aws:owner": "me"},
        }
    )
    assert set(found) == {
        "eks-gpu:vpc.cidr",
        "eks-gpu:vpc.azCount",
        "eks-gpu:vpc.natGateways",
        "eks-gpu:endpointPublicAccessCidrs[0]",
        "eks-gpu:systemNodeGroup.minSize",
        "eks-gpu:gpuNodeGroups.a.instanceTypes",
        "eks-gpu:gpuNodeGroups.a.amiType",
        "eks-gpu:gpuNodeGroups.a.desiredSize",
        "eks-gpu:gpuNodeGroups.a.maxSize",
        "eks-gpu:gpuNodeGroups.Bad_Name",
        "eks-gpu:tags.aws:owner",
    }


@pytest.mark.parametrize(
    ("vpc", "key", "message"),
    [
        ({"cidr": "10.0.0.0/24"}, "cidr", "from /16 to /20"),
        ({"cidr": "8.8.0.0/16"}, "cidr", "private IPv4 range"),
        ({"cidr": "10.0.0.1/16"}, "cidr", "zero host bits"),
        ({"azCount": 1}, "azCount", "greater than or equal to 2"),
        ({"azCount": 7}, "azCount", "less than or equal to 6"),
        ({"natGateways": "none"}, "natGateways", "use one of single, perAz"),
    ],
)
def test_vpc_rules(vpc: dict[str, Any], key: str, message: str) -> None:
    assert message in problems({"vpc": vpc})[f"eks-gpu:vpc.{key}"]


def test_existing_vpc_needs_two_private_subnets() -> None:
    found = problems({"vpc": {"id": "vpc-0123456789abcdef0", "privateSubnetIds": ["subnet-0123456789abcdef0"]}})
    assert found == {"eks-gpu:vpc.privateSubnetIds": "must list at least 2 items (got 1)"}


def test_existing_vpc_subnet_ids_are_checked() -> None:
    found = problems({"vpc": {"id": "vpc-0123456789abcdef0", "privateSubnetIds": ["subnet-0123456789abcdef0", "sn-1"]}})
    assert found == {"eks-gpu:vpc.privateSubnetIds[1]": "'sn-1' is not a subnet id (subnet-...)"}


def test_kubernetes_version_must_be_quoted_minor() -> None:
    found = problems({"kubernetesVersion": "1.3"})
    assert "quote it in YAML" in found["eks-gpu:kubernetesVersion"]


def test_version_past_extended_support_is_an_error() -> None:
    found = problems({"kubernetesVersion": "1.31"}, today=TODAY)
    assert "left EKS extended support on 2026-11-26" in found["eks-gpu:kubernetesVersion"]


def test_version_in_extended_support_warns_about_six_times_the_cost() -> None:
    parsed = parse_config({**REACH, "kubernetesVersion": "1.32"}, "dev", TODAY)
    assert parsed.problems == ()
    assert parsed.extended_support
    (warning,) = parsed.warnings
    assert "$0.60/h instead of $0.10/h (6x)" in warning and warning.startswith("eks-gpu:kubernetesVersion")


def test_version_in_standard_support_is_quiet() -> None:
    parsed = parse_config({**REACH, "kubernetesVersion": "1.35"}, "dev", TODAY)
    assert (parsed.problems, parsed.warnings, parsed.extended_support) == ((), (), False)


def test_version_newer_than_calendar_warns() -> None:
    parsed = parse_config({**REACH, "kubernetesVersion": "1.99"}, "dev", TODAY)
    assert parsed.problems == ()
    assert "newer than the bundled EKS calendar" in parsed.warnings[0]


def test_capacity_block_needs_reservation_and_one_type() -> None:
    found = problems(
        {"gpuNodeGroups": {"cb": pool(capacityType="CAPACITY_BLOCK", instanceTypes=["p5.48xlarge", "p4d.24xlarge"])}}
    )
    assert "required with capacityType CAPACITY_BLOCK" in found["eks-gpu:gpuNodeGroups.cb.capacityReservationId"]
    assert "exactly one instance type" in found["eks-gpu:gpuNodeGroups.cb.instanceTypes"]


def test_reservation_without_capacity_block_is_refused() -> None:
    found = problems({"gpuNodeGroups": {"a": pool(capacityReservationId="cr-0123456789abcdef0")}})
    assert "only applies to capacityType CAPACITY_BLOCK" in found["eks-gpu:gpuNodeGroups.a.capacityReservationId"]


def test_duplicate_taint_and_reserved_label() -> None:
    taint = {"key": "dedicated", "value": "x", "effect": "NO_EXECUTE"}
    found = problems({"gpuNodeGroups": {"a": pool(taints=[taint, taint], labels={"nvidia.com/gpu.present": "no"})}})
    assert "repeats the taint key dedicated" in found["eks-gpu:gpuNodeGroups.a.taints[1]"]
    assert "set by the program itself" in found["eks-gpu:gpuNodeGroups.a.labels.nvidia.com/gpu.present"]


def test_one_taint_per_key_even_with_other_effects() -> None:
    gpu = {"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}
    same_key = {"key": "nvidia.com/gpu", "value": "true", "effect": "NO_EXECUTE"}
    found = problems({"gpuNodeGroups": {"a": pool(taints=[gpu, same_key])}})
    assert list(found) == ["eks-gpu:gpuNodeGroups.a.taints[1]"]
    assert "one taint per key" in found["eks-gpu:gpuNodeGroups.a.taints[1]"]
    assert "one tag per key" in found["eks-gpu:gpuNodeGroups.a.taints[1]"]
    other = {"key": "team", "value": "x", "effect": "NO_EXECUTE"}
    assert problems({"gpuNodeGroups": {"a": pool(taints=[gpu, other])}}) == {}


@pytest.mark.parametrize("bad", ["-x", "a" * 64, "UPPER.case/x", "x/"])
def test_taint_and_label_keys_follow_kubernetes(bad: str) -> None:
    found = problems({"gpuNodeGroups": {"a": pool(taints=[{"key": bad, "effect": "NO_SCHEDULE"}])}})
    assert "eks-gpu:gpuNodeGroups.a.taints[0].key" in found


def test_too_many_taints() -> None:
    taints = [{"key": f"k{i}", "effect": "NO_SCHEDULE"} for i in range(51)]
    found = problems({"gpuNodeGroups": {"a": pool(taints=taints)}})
    assert "eks-gpu:gpuNodeGroups.a.taints" in found


def test_invalid_default_cluster_name_points_at_cluster_name() -> None:
    found = problems({}, stack="dev.eu")
    assert "derived from the stack name: set eks-gpu:clusterName" in found["eks-gpu:clusterName"]


def test_parsed_config_is_frozen() -> None:
    parsed = parse_config({**REACH, "kubernetesVersion": "1.35", "gpuNodeGroups": {"a": pool()}}, "dev", TODAY)
    assert parsed.config is not None
    with pytest.raises(ValueError, match="frozen"):
        parsed.config.gpu_node_groups["a"].min_size = 3


def test_kubernetes_spelling_of_effects_is_derived_from_the_eks_one() -> None:
    assert [e.kubernetes for e in TaintEffect] == ["NoSchedule", "NoExecute", "PreferNoSchedule"]


def test_every_enum_value_is_one_the_eks_api_accepts() -> None:
    model = botocore.session.get_session().get_service_model("eks")
    assert {e.value for e in TaintEffect} == set(model.shape_for("TaintEffect").enum)
    assert {e.value for e in CapacityType} == set(model.shape_for("CapacityTypes").enum)
    assert {e.value for e in AmiType} <= set(model.shape_for("AMITypes").enum)


@pytest.mark.parametrize(
    ("raw", "key", "message"),
    [
        (
            {"gpuNodeGroups": {"a": pool(instanceTypes=["g5.xlarge", "g5.xlarge"])}},
            "gpuNodeGroups.a.instanceTypes",
            "twice",
        ),
        (
            {"gpuNodeGroups": {"a": pool(instanceTypes=["G5 XLARGE"])}},
            "gpuNodeGroups.a.instanceTypes",
            "not an EC2 instance type",
        ),
        ({"gpuNodeGroups": {"a": pool(labels={"-bad": "x"})}}, "gpuNodeGroups.a.labels", "the name must be"),
        ({"gpuNodeGroups": {"a": pool(labels={"k" * 64: "x"})}}, "gpuNodeGroups.a.labels", "longer than 63"),
        ({"gpuNodeGroups": {"a": pool(labels={"team": ""})}}, "gpuNodeGroups.a.labels", "needs a value"),
        ({"gpuNodeGroups": {"a": pool(labels={"team": "a b"})}}, "gpuNodeGroups.a.labels", "must be empty or"),
        ({"tags": {"owner": "x" * 257}}, "tags.owner", "at most 256"),
        ({"endpointPublicAccessCidrs": ["203.0.113.10/32"]}, "endpointPublicAccessCidrs[0]", "documentation address"),
        (
            {"vpc": {"id": "vpc-0123456789abcdef0", "privateSubnetIds": ["subnet-0123456789abcdef0"] * 2}},
            "vpc.privateSubnetIds",
            "lists a subnet twice",
        ),
        ({"vpc": {"availabilityZones": ["us-west-2a"]}}, "vpc.availabilityZones", "at least 2"),
        ({"devicePlugin": {"chartVersion": "latest"}}, "devicePlugin.chartVersion", "should match pattern"),
        ({"gpuNamespace": {"name": "GPU_Work"}}, "gpuNamespace.name", "should match pattern"),
        ({"gpuPod": {"image": "nvidia/cuda"}}, "gpuPod.image", "is not pinned"),
        ({"gpuPod": {"gpus": 0}}, "gpuPod.gpus", "greater than or equal to 1"),
        ({"gpuPod": {"command": []}}, "gpuPod.command", "at least 1 item"),
        ({"gpuPod": {"enable": True}}, "gpuPod.enable", "unknown key; allowed keys: command, enabled, gpus"),
    ],
)
def test_more_rules(raw: dict[str, Any], key: str, message: str) -> None:
    found = problems(raw)
    assert message in found[f"eks-gpu:{key}"], found


def test_label_limits_are_the_eks_apis() -> None:
    model = botocore.session.get_session().get_service_model("eks")
    key, value = model.shape_for("labelKey").metadata, model.shape_for("labelValue").metadata
    assert problems({"gpuNodeGroups": {"a": pool(labels={"k" * key["max"]: "v" * value["max"]})}}) == {}
    assert "eks-gpu:gpuNodeGroups.a.labels" in problems(
        {"gpuNodeGroups": {"a": pool(labels={"k" * (key["max"] + 1): "v"})}}
    )
    assert "eks-gpu:gpuNodeGroups.a.labels" in problems(
        {"gpuNodeGroups": {"a": pool(labels={"k": "v" * (value["max"] + 1)})}}
    )
    assert value["min"] == 1


# --- reaching and administering the API ----------------------------------------------------


def test_a_stack_nobody_can_reach_is_refused_with_the_line_that_fixes_it() -> None:
    parsed = parse_config({"kubernetesVersion": "1.35"}, "dev", TODAY)
    found = {p.key: p.message for p in parsed.problems}
    assert list(found) == ["eks-gpu:endpointPublicAccessCidrs"]
    message = found["eks-gpu:endpointPublicAccessCidrs"]
    assert "pulumi config set --path 'endpointPublicAccessCidrs[0]'" in message
    assert "eks-gpu:endpointPrivateAccessCidrs" in message
    assert "eks-gpu:endpointPrivateAccessSecurityGroupIds" in message
    assert parsed.config is None


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("endpointPublicAccessCidrs", ["198.18.0.20/32"]),
        ("endpointPrivateAccessCidrs", ["10.20.0.0/16"]),
        ("endpointPrivateAccessSecurityGroupIds", ["sg-0123456789abcdef0"]),
    ],
)
def test_any_one_way_in_is_enough(key: str, value: list[str]) -> None:
    parsed = parse_config({"kubernetesVersion": "1.35", key: value}, "dev", TODAY)
    assert parsed.problems == ()
    assert parsed.config is not None


@pytest.mark.parametrize("key", ["endpointPublicAccessCidrs", "endpointPrivateAccessCidrs"])
def test_an_api_open_to_every_address_is_refused(key: str) -> None:
    found = problems({key: ["0.0.0.0/0"]})
    assert "admits every address" in found[f"eks-gpu:{key}[0]"]


@pytest.mark.parametrize("key", ["endpointPublicAccessCidrs", "endpointPrivateAccessCidrs"])
def test_documentation_addresses_are_refused_for_both_endpoints(key: str) -> None:
    found = problems({key: ["203.0.113.7/32"]})
    assert "documentation address" in found[f"eks-gpu:{key}[0]"]


@pytest.mark.parametrize("bad", ["sg-123", "sg-0123456789ABCDEF0", "0123456789abcdef0", "subnet-0123456789abcdef0"])
def test_security_group_ids_are_well_formed(bad: str) -> None:
    found = problems({"endpointPrivateAccessSecurityGroupIds": [bad]})
    assert (
        found["eks-gpu:endpointPrivateAccessSecurityGroupIds[0]"]
        == f"'{bad}' is not a security group id (sg- and 8 or 17 hex digits)"
    )


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:iam::111122223333:role/ml-admins",
        "arn:aws:iam::111122223333:role/teams/ml/admins",
        "arn:aws:iam::111122223333:user/alice",
    ],
)
def test_cluster_admins_take_role_and_user_arns(arn: str) -> None:
    parsed = parse_config({"kubernetesVersion": "1.35", **REACH, "clusterAdmins": [arn]}, "dev", TODAY)
    assert parsed.problems == ()
    assert parsed.config is not None and parsed.config.cluster_admins == (arn,)


def test_a_role_session_is_refused_with_its_role() -> None:
    found = problems({"clusterAdmins": ["arn:aws:sts::111122223333:assumed-role/Deployer/ci-run-7"]})
    message = found["eks-gpu:clusterAdmins[0]"]
    assert "session of a role" in message
    assert "role/Deployer" in message


@pytest.mark.parametrize("bad", ["arn:aws:iam::111122223333:group/admins", "arn:aws:iam::1111:role/x", "ml-admins"])
def test_other_principals_are_refused(bad: str) -> None:
    assert "is not an IAM role or user ARN" in problems({"clusterAdmins": [bad]})["eks-gpu:clusterAdmins[0]"]


def test_creator_admin_off_needs_someone_else() -> None:
    found = problems({"clusterCreatorAdmin": False})
    assert "no administrator" in found["eks-gpu:clusterCreatorAdmin"]
    assert problems({"clusterCreatorAdmin": False, "clusterAdmins": ["arn:aws:iam::111122223333:role/a"]}) == {}


def _botocore_retention_days() -> tuple[int, ...]:
    doc = botocore.session.get_session().get_service_model("logs").shape_for("Days").documentation
    values = doc.split("Possible values are:")[1].split(".")[0]
    return tuple(int(v) for v in values.replace("and", "").replace(",", " ").split())


def test_log_retention_takes_what_cloudwatch_takes() -> None:
    allowed = _botocore_retention_days()
    assert len(allowed) > 10 and 90 in allowed
    for days in allowed:
        assert problems({"logRetentionDays": days}) == {}, days
    for bad in (0, 2, 91, 10000, True, "90"):
        message = problems({"logRetentionDays": bad})["eks-gpu:logRetentionDays"]
        assert "is not a retention CloudWatch Logs accepts" in message
        assert ", ".join(map(str, allowed)) in message


def test_capacity_block_pool_names_its_availability_zone() -> None:
    block = pool(capacityType="CAPACITY_BLOCK", capacityReservationId="cr-0123456789abcdef0")
    found = problems({"gpuNodeGroups": {"a": block}})
    assert list(found) == ["eks-gpu:gpuNodeGroups.a.availabilityZone"]
    assert "a Capacity Block lives in one AZ" in found["eks-gpu:gpuNodeGroups.a.availabilityZone"]
    assert problems({"gpuNodeGroups": {"a": {**block, "availabilityZone": "us-west-2a"}}}) == {}


def test_a_budget_is_a_positive_number_of_dollars_per_hour() -> None:
    parsed = parse_config({"kubernetesVersion": "1.35", **REACH, "budget": {"maxUsdPerHour": 12.5}}, "dev", TODAY)
    assert parsed.config is not None and parsed.config.budget.max_usd_per_hour == 12.5
    for bad in (0, -1, True, "12", float("inf")):
        assert "eks-gpu:budget.maxUsdPerHour" in problems({"budget": {"maxUsdPerHour": bad}}), bad
    assert "unknown key" in problems({"budget": {"maxUsd": 1}})["eks-gpu:budget.maxUsd"]
