"""Torn down cleanly, and least privilege: what ``pulumi destroy`` leaves behind, and what the stack's
roles, rules and images reach beyond the stack.

- The CloudWatch add-on's log groups are the program's, with ``logRetentionDays``, made before the
  add-on (so deleted after it, with the stack).
- Nothing the stack creates, besides the GPU namespace (ordered in tests/test_ordering.py), is turned
  into AWS resources by a controller: no LoadBalancer Service, no claim, no Ingress.
- Pod Identity roles trust one service account of one cluster (tests/helpers.py ``pod_identity_trust``).
- The EFA device plugin's image comes from the stack's own region's EKS registry.
"""

from __future__ import annotations

from typing import Any

import pytest
from eks_gpu.offline import ProgramRun

from tests.charts import render
from tests.helpers import DEV_CLUSTER_ARN, config, every_feature, gpu_pool, iam_document, pod_identity_trust, run

ADDON = "aws:eks/addon:Addon"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
RELEASE = "kubernetes:helm.sh/v3:Release"
ROLE = "aws:iam/role:Role"
CLOUDWATCH: dict[str, Any] = {"gpuMetrics": {"exporter": "cloudwatch"}, "nodeMonitoring": {"enabled": False}}
"""The CloudWatch exporter (only without the node monitoring agent's DCGM on the same nodes)."""


def _addon(result: ProgramRun, addon_name: str) -> Any:
    (found,) = [a for a in result.of_type(ADDON) if a.inputs["addonName"] == addon_name]
    return found


# --- the CloudWatch add-on's log groups --------------------------------------------------------


def test_the_cloudwatch_addons_log_groups_are_the_stacks_with_retention() -> None:
    result = run(config(logRetentionDays=30, **CLOUDWATCH))
    groups = {g.inputs["name"]: g for g in result.of_type(LOG_GROUP)}
    # Fluent Bit's three outputs (aws-observability/helm-charts, amazon-cloudwatch-observability values.yaml)
    # and the CloudWatch agent's performance log events (CloudWatch User Guide, Container Insights reference)
    wanted = [f"/aws/containerinsights/eks-gpu-dev/{kind}" for kind in ("application", "dataplane", "host")]
    wanted.append("/aws/containerinsights/eks-gpu-dev/performance")
    assert set(wanted) <= set(groups)
    addon = _addon(result, "amazon-cloudwatch-observability")
    for name in wanted:
        assert groups[name].inputs["retentionInDays"] == 30, name
        # made before the add-on, so its writers never create it themselves, and deleted after it
        assert groups[name].urn in addon.dependencies, name


def test_without_the_cloudwatch_addon_no_container_insights_log_group() -> None:
    result = run(config())
    assert [g.inputs["name"] for g in result.of_type(LOG_GROUP)] == ["/aws/eks/eks-gpu-dev/cluster"]


# --- nothing else a controller turns into AWS resources ------------------------------------------


def _pod_specs(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """Every pod spec in a manifest: a Pod's, a workload's template, an MPIJob's replicas'."""
    spec = manifest.get("spec") or {}
    found = [spec] if manifest.get("kind") == "Pod" else []
    if "template" in spec:
        found.append(spec["template"].get("spec") or {})
    for replica in (spec.get("mpiReplicaSpecs") or {}).values():
        found.append(replica["template"].get("spec") or {})
    if "jobTemplate" in spec:
        found.append(spec["jobTemplate"]["spec"]["template"].get("spec") or {})
    return found


def _aws_backed(manifest: dict[str, Any]) -> list[str]:
    """What in ``manifest`` a controller of this cluster turns into an AWS resource: a load balancer
    (a Service of type LoadBalancer, an Ingress: AWS Load Balancer Controller or the in-tree cloud
    provider), an EBS volume (a claim, a StatefulSet's claim templates, a generic ephemeral volume)."""
    kind, spec = manifest.get("kind"), manifest.get("spec") or {}
    found: list[str] = []
    if kind == "Service" and spec.get("type") == "LoadBalancer":
        found.append("LoadBalancer Service")
    if kind in ("Ingress", "PersistentVolumeClaim", "PersistentVolume"):
        found.append(str(kind))
    if spec.get("volumeClaimTemplates"):
        found.append("volumeClaimTemplates")
    for pod in _pod_specs(manifest):
        for volume in pod.get("volumes") or []:
            if "ephemeral" in volume or "persistentVolumeClaim" in volume:
                found.append(f"volume {volume['name']}")
    return found


@pytest.mark.parametrize(
    "cfg",
    [
        every_feature(),
        config({"serve": gpu_pool()}, gpuMetrics={"exporter": "dcgm-exporter"}, nodeMonitoring={"enabled": False}),
        config(**CLOUDWATCH),
    ],
    ids=["every-feature", "dcgm-exporter-own-engine", "cloudwatch"],
)
def test_nothing_the_stack_creates_makes_load_balancers_or_volumes(cfg: dict[str, Any]) -> None:
    # Only the GPU namespace holds what a controller turns into AWS resources (users' claims), and it
    # is ordered before the EBS CSI driver. The MPI operator's release manifest is fetched by URL at
    # deploy time and not rendered here: its objects are a CRD, RBAC and one Deployment.
    result = run(cfg)
    manifests: list[tuple[str, dict[str, Any]]] = []
    for release in result.of_type(RELEASE):
        manifests += [(release.name, m) for m in render(release)]
    for resource in result.resources:
        if resource.type.startswith("kubernetes:") and resource.type != RELEASE and "/" in resource.type:
            _, kind = resource.type.split(":", 1)[1].rsplit(":", 1)
            manifests.append((resource.name, {"kind": kind, **resource.inputs}))
    assert manifests, "nothing rendered"
    assert [(name, found) for name, m in manifests if (found := _aws_backed(m))] == []


# --- Pod Identity roles: one service account of one cluster -------------------------------------


def _role_of(result: ProgramRun, role_arn: str) -> Any:
    (role,) = [r for r in result.of_type(ROLE) if r.outputs["arn"] == role_arn]
    return role


@pytest.mark.parametrize(
    ("addon_name", "namespace", "service_account"),
    [
        ("aws-ebs-csi-driver", "kube-system", "ebs-csi-controller-sa"),
        ("amazon-cloudwatch-observability", "amazon-cloudwatch", "cloudwatch-agent"),
    ],
)
def test_an_addons_role_trusts_its_service_account_on_this_cluster_only(
    addon_name: str, namespace: str, service_account: str
) -> None:
    result = run(config(**CLOUDWATCH))
    (association,) = _addon(result, addon_name).inputs["podIdentityAssociations"]
    assert association["serviceAccount"] == service_account
    role = _role_of(result, association["roleArn"])
    assert iam_document(role.inputs["assumeRolePolicy"]) == pod_identity_trust(
        DEV_CLUSTER_ARN, namespace, service_account
    )


def test_the_autoscalers_role_trusts_its_service_account_on_this_cluster_only() -> None:
    result = run(config())
    association = result.one("aws:eks/podIdentityAssociation:PodIdentityAssociation").inputs
    role = _role_of(result, association["roleArn"])
    assert iam_document(role.inputs["assumeRolePolicy"]) == pod_identity_trust(
        DEV_CLUSTER_ARN, "kube-system", "cluster-autoscaler"
    )


# --- images from the stack's own region -----------------------------------------------------------


@pytest.mark.parametrize(
    ("region", "pool", "registry"),
    [
        # EKS User Guide, "add-ons-images": each region's registry, and its own account in some
        ("ap-east-1", "g5.48xlarge", "800184023465.dkr.ecr.ap-east-1.amazonaws.com"),
        ("eu-south-1", "g4dn.8xlarge", "590381155156.dkr.ecr.eu-south-1.amazonaws.com"),
        ("eu-west-1", "g5.48xlarge", "602401143452.dkr.ecr.eu-west-1.amazonaws.com"),
    ],
)
def test_the_efa_plugins_image_comes_from_the_stacks_region(region: str, pool: str, registry: str) -> None:
    result = run(config({"train": gpu_pool(pool, efa=True)}, **{"aws:region": region}))
    release = result.one(RELEASE, "-efa-release")
    (daemonset,) = [m for m in render(release) if m["kind"] == "DaemonSet"]
    (container,) = daemonset["spec"]["template"]["spec"]["containers"]
    repository, tag = container["image"].rsplit(":", 1)
    assert repository == f"{registry}/eks/aws-efa-k8s-device-plugin"
    assert tag.startswith("v")  # the chart's own tag (its appVersion)
