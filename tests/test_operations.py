"""GPU operations: node health for auto-repair, EBS volumes, fast GPU node start."""

from __future__ import annotations

import base64
import itertools
import json
from typing import Any

import pytest
import yaml
from eks_gpu.offline import ProgramRun

from tests.helpers import (
    DEV_CLUSTER_ARN,
    config,
    gpu_pool,
    iam_document,
    launch_template,
    pod_identity_trust,
    problems_of,
    program_scope,
    run,
)

ADDON = "aws:eks/addon:Addon"
STORAGE_CLASS = "kubernetes:storage.k8s.io/v1:StorageClass"
K8S_EFFECT = {"NO_SCHEDULE": "NoSchedule", "NO_EXECUTE": "NoExecute", "PREFER_NO_SCHEDULE": "PreferNoSchedule"}
POOLS = {
    "al": gpu_pool(),
    "br": gpu_pool(amiType="BOTTLEROCKET_x86_64_NVIDIA", diskSizeGiB=200, volumeIops=4000, volumeThroughputMiBps=1000),
    "spot": gpu_pool(
        taints=[
            {"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"},
            {"key": "spot", "effect": "PREFER_NO_SCHEDULE"},
        ],
        fastImagePull=False,
    ),
}


@pytest.fixture(scope=program_scope)
def ops() -> ProgramRun:
    return run(config(POOLS))


def addon(result: ProgramRun, name: str) -> Any:
    (found,) = [a for a in result.of_type(ADDON) if a.inputs["addonName"] == name]
    return found


def test_node_monitoring_agent_runs_its_dcgm_server_on_every_tainted_gpu_node(ops: ProgramRun) -> None:
    nma = addon(ops, "eks-node-monitoring-agent")
    values = json.loads(nma.inputs["configurationValues"])
    expected = {
        (t["key"], "Equal", t.get("value", ""), K8S_EFFECT[t["effect"]])
        for pool in POOLS.values()
        for t in pool.get("taints", [{"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}])
    }
    tolerations = values["dcgmAgent"]["tolerations"]
    assert {(t["key"], t["operator"], t["value"], t["effect"]) for t in tolerations} == expected
    assert len(tolerations) == len(expected)
    system = ops.one("aws:eks/nodeGroup:NodeGroup", "-system-ng")
    assert system.urn in nma.dependencies
    # every add-on waits for the system nodes and CoreDNS: their pods must run, and resolve AWS's names
    # (but the Pod Identity agent, on the host network: tests/test_ordering.py)
    assert sorted(a.inputs["addonName"] for a in ops.of_type(ADDON)) == [
        "aws-ebs-csi-driver",
        "coredns",
        "eks-node-monitoring-agent",
        "eks-pod-identity-agent",
    ]
    for a in ops.of_type(ADDON):
        if a.inputs["addonName"] not in ("coredns", "eks-pod-identity-agent"):
            assert {system.urn, addon(ops, "coredns").urn} <= set(a.dependencies), a.inputs["addonName"]
    assert [
        a
        for a in run(config(nodeMonitoring={"enabled": False})).of_type(ADDON)
        if a.inputs["addonName"] == "eks-node-monitoring-agent"
    ] == []


def test_ebs_csi_driver_gets_its_rights_by_pod_identity_and_runs_on_gpu_nodes(ops: ProgramRun) -> None:
    driver = addon(ops, "aws-ebs-csi-driver")
    (association,) = driver.inputs["podIdentityAssociations"]
    assert association["serviceAccount"] == "ebs-csi-controller-sa"
    (role,) = [r for r in ops.of_type("aws:iam/role:Role") if r.outputs["arn"] == association["roleArn"]]
    assert iam_document(role.inputs["assumeRolePolicy"]) == pod_identity_trust(
        DEV_CLUSTER_ARN, "kube-system", "ebs-csi-controller-sa"
    )
    # EKS User Guide, "ebs-csi": the driver's role gets the AWS managed AmazonEBSCSIDriverPolicy
    attached = [
        a.inputs["policyArn"]
        for a in ops.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if a.inputs["role"] == role.outputs["name"]
    ]
    assert attached == ["arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"]
    assert json.loads(driver.inputs["configurationValues"]) == {"node": {"tolerateAllTaints": True}}
    agent = addon(ops, "eks-pod-identity-agent")
    assert agent.urn in driver.dependencies


def test_the_pod_identity_agent_is_installed_once_whoever_needs_it() -> None:
    for autoscaler, ebs, metrics in itertools.product((True, False), (True, False), ("cloudwatch", "none")):
        storage = {"ebsCsiDriver": ebs, "defaultStorageClass": ebs}
        # the CloudWatch add-on runs its own DCGM: only without the node monitoring agent's
        no_agent = {"enabled": False}
        result = run(
            config(
                autoscaler={"enabled": autoscaler},
                storage=storage,
                gpuMetrics={"exporter": metrics},
                nodeMonitoring=no_agent,
            )
        )
        agents = [a for a in result.of_type(ADDON) if a.inputs["addonName"] == "eks-pod-identity-agent"]
        wanted = autoscaler or ebs or metrics == "cloudwatch"
        assert len(agents) == (1 if wanted else 0), (autoscaler, ebs, metrics)


def test_the_default_storage_class_is_encrypted_gp3_that_follows_its_pod(ops: ProgramRun) -> None:
    sc = ops.one(STORAGE_CLASS).inputs
    assert sc["metadata"] == {
        "name": "gp3-encrypted",
        "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
    }
    assert sc["provisioner"] == "ebs.csi.aws.com"
    assert sc["parameters"] == {"type": "gp3", "encrypted": "true"}
    assert (sc["volumeBindingMode"], sc["reclaimPolicy"], sc["allowVolumeExpansion"]) == (
        "WaitForFirstConsumer",
        "Delete",
        True,
    )
    assert addon(ops, "aws-ebs-csi-driver").urn in ops.one(STORAGE_CLASS).dependencies
    kept = run(config(storage={"reclaimPolicy": "Retain"})).one(STORAGE_CLASS).inputs
    assert kept["reclaimPolicy"] == "Retain"


def test_a_storage_class_without_its_driver_is_refused() -> None:
    found = problems_of(config(storage={"ebsCsiDriver": False}))
    assert found == {
        "eks-gpu:storage.defaultStorageClass": (
            "needs eks-gpu:storage.ebsCsiDriver: the StorageClass's provisioner is the EBS CSI driver"
        )
    }
    off = run(config(storage={"ebsCsiDriver": False, "defaultStorageClass": False}))
    assert off.of_type(STORAGE_CLASS) == [] and "aws-ebs-csi-driver" not in [
        a.inputs["addonName"] for a in off.of_type(ADDON)
    ]


# --- faster GPU node start -------------------------------------------------------------------


def test_gpu_pools_provision_their_image_volume_and_the_system_group_keeps_the_baseline(ops: ProgramRun) -> None:
    al = launch_template(ops, "al")["blockDeviceMappings"]
    assert [(d["deviceName"], d["ebs"]["iops"], d["ebs"]["throughput"]) for d in al] == [("/dev/xvda", 3000, 500)]
    br = {d["deviceName"]: d["ebs"] for d in launch_template(ops, "br")["blockDeviceMappings"]}
    assert "iops" not in br["/dev/xvda"] and "throughput" not in br["/dev/xvda"]  # Bottlerocket's OS volume
    assert (br["/dev/xvdb"]["iops"], br["/dev/xvdb"]["throughput"]) == (4000, 1000)
    system = launch_template(ops, "system")["blockDeviceMappings"][0]["ebs"]
    assert "iops" not in system and "throughput" not in system


@pytest.mark.parametrize(
    ("pool", "key", "message"),
    [
        ({"volumeThroughputMiBps": 800}, "volumeThroughputMiBps", "at 3000 IOPS at most 750"),
        ({"diskSizeGiB": 20, "volumeIops": 12000}, "volumeIops", "a 20 GiB volume takes at most 10000"),
        ({"volumeIops": 2000}, "volumeIops", "greater than or equal to 3000"),
        ({"volumeThroughputMiBps": 2001}, "volumeThroughputMiBps", "less than or equal to 2000"),
    ],
)
def test_gp3_limits_are_checked(pool: dict[str, Any], key: str, message: str) -> None:
    found = problems_of(config({"p": gpu_pool(**pool)}))
    assert message in found[f"eks-gpu:gpuNodeGroups.p.{key}"]


def _node_config(user_data: str) -> dict[str, Any]:
    text = base64.b64decode(user_data).decode()
    (part,) = [p for p in text.split("--==EKSGPU==") if "application/node.eks.aws" in p]
    return dict(yaml.safe_load(part.split("---", 1)[1]))


def test_al2023_gpu_pools_turn_on_nodeadms_fast_image_pull(ops: ProgramRun) -> None:
    config_doc = _node_config(launch_template(ops, "al")["userData"])
    assert config_doc == {
        "apiVersion": "node.eks.aws/v1alpha1",
        "kind": "NodeConfig",
        "spec": {"featureGates": {"FastImagePull": True}},
    }
    text = base64.b64decode(launch_template(ops, "al")["userData"]).decode()
    assert text.startswith('MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="==EKSGPU=="')
    assert text.rstrip().endswith("--==EKSGPU==--")
    for key in ("br", "spot", "system"):  # Bottlerocket, switched off, the system group
        assert "userData" not in launch_template(ops, key), key


# --- GPU metrics -----------------------------------------------------------------------------


def test_cloudwatch_gpu_metrics_get_the_agents_own_role() -> None:
    ops = run(config(POOLS, gpuMetrics={"exporter": "cloudwatch"}, nodeMonitoring={"enabled": False}))
    cloudwatch = addon(ops, "amazon-cloudwatch-observability")
    (association,) = cloudwatch.inputs["podIdentityAssociations"]
    assert association["serviceAccount"] == "cloudwatch-agent"
    (role,) = [r for r in ops.of_type("aws:iam/role:Role") if r.outputs["arn"] == association["roleArn"]]
    assert iam_document(role.inputs["assumeRolePolicy"]) == pod_identity_trust(
        DEV_CLUSTER_ARN, "amazon-cloudwatch", "cloudwatch-agent"
    )
    # EKS User Guide, "install-CloudWatch-Observability-EKS-addon": the agent's role gets CloudWatchAgentServerPolicy
    attached = [
        a.inputs["policyArn"]
        for a in ops.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if a.inputs["role"] == role.outputs["name"]
    ]
    assert attached == ["arn:aws:iam::aws:policy/CloudWatchAgentServerPolicy"]
    assert addon(ops, "eks-pod-identity-agent").urn in cloudwatch.dependencies
    assert [r for r in ops.of_type("kubernetes:helm.sh/v3:Release") if r.inputs["chart"] == "dcgm-exporter"] == []


def test_no_gpu_metrics_when_asked_or_without_gpu_pools() -> None:
    for cfg in (config(gpuMetrics={"exporter": "none"}), config({})):
        result = run(cfg)
        assert "amazon-cloudwatch-observability" not in [a.inputs["addonName"] for a in result.of_type(ADDON)]
        assert [
            r for r in result.of_type("kubernetes:helm.sh/v3:Release") if r.inputs["chart"] == "dcgm-exporter"
        ] == []


def test_dcgm_exporter_is_nvidias_chart_at_its_pinned_version_after_the_host_engine() -> None:
    result = run(config(gpuMetrics={"exporter": "dcgm-exporter", "serviceMonitor": True}))
    (release,) = [r for r in result.of_type("kubernetes:helm.sh/v3:Release") if r.inputs["chart"] == "dcgm-exporter"]
    assert release.inputs["version"] == "4.8.2"
    assert release.inputs["repositoryOpts"] == {"repo": "https://nvidia.github.io/dcgm-exporter/helm-charts"}
    assert release.inputs["values"]["serviceMonitor"] == {"enabled": True}
    assert addon(result, "eks-node-monitoring-agent").urn in release.dependencies
    # the default exporter, beside the node monitoring agent by default
    (default,) = [
        r for r in run(config()).of_type("kubernetes:helm.sh/v3:Release") if r.inputs["chart"] == "dcgm-exporter"
    ]
    assert default.inputs["values"]["arguments"][-2:] == ["-r", "$(NODE_IP):5555"]


def test_prod_runs_every_operations_part_and_dev_keeps_idle_under_twenty_cents() -> None:
    from eks_gpu.offline import plan

    from tests.helpers import ROOT, run_stack_file

    prod = run_stack_file("prod")
    assert {"eks-node-monitoring-agent", "aws-ebs-csi-driver"} <= {a.inputs["addonName"] for a in prod.of_type(ADDON)}
    # GPU metrics from NVIDIA's exporter reading the agent's DCGM (tests/test_gpu_health.py), not CloudWatch's
    assert [r.inputs["chart"] for r in prod.of_type("kubernetes:helm.sh/v3:Release")].count("dcgm-exporter") == 1
    assert prod.one(STORAGE_CLASS).inputs["reclaimPolicy"] == "Retain"
    assert plan.build(ROOT / "Pulumi.dev.yaml")["cost"]["idleUsdPerHour"] <= 0.20


def test_every_addon_overwrites_conflicts_on_create_and_update(ops: ProgramRun) -> None:
    """Without it an add-on's version bump can fail on a field EKS manages that differs (botocore eks
    ``UpdateAddonRequest.resolveConflicts``: with None "the update might fail"), so each says OVERWRITE."""
    names = sorted(a.inputs["addonName"] for a in ops.of_type(ADDON))
    assert "coredns" in names and "aws-ebs-csi-driver" in names
    for a in ops.of_type(ADDON):
        assert (a.inputs["resolveConflictsOnCreate"], a.inputs["resolveConflictsOnUpdate"]) == (
            "OVERWRITE",
            "OVERWRITE",
        ), a.inputs["addonName"]
