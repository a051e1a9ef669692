"""EKS add-ons the GPU fleet runs on: Pod Identity, node health for auto-repair, EBS volumes.

Each is an EKS managed add-on (AWS keeps it compatible with the cluster version) whose AWS rights,
where it needs any, come from EKS Pod Identity: a role trusted by ``pods.eks.amazonaws.com`` with
the add-on's AWS managed policy, associated with the add-on's own service account.

- ``eks-pod-identity-agent``: hands those roles' credentials to pods (the autoscaler's too).
- ``eks-node-monitoring-agent``: sets node conditions (``AcceleratedHardwareReady`` for GPU faults)
  that node auto-repair acts on. Its agent tolerates every taint; its ``dcgm-server`` DaemonSet (the
  DCGM host engine the agent reads GPU health from) tolerates none by default, so it is given the GPU
  pools' taints, or a tainted GPU node reports nothing (its chart README, "DCGM host engine"); and its
  chart's placement, pinned (:mod:`eks_gpu.facts.node_monitoring`).
- ``amazon-cloudwatch-observability`` (``gpuMetrics.exporter: cloudwatch``, never on nodes where the
  node monitoring agent runs its DCGM: its DCGM exporter is a host engine of its own): Container
  Insights with NVIDIA GPU metrics, the CloudWatch agent's role with ``CloudWatchAgentServerPolicy``.
  Its log groups are the program's, made first with ``logRetentionDays`` (:func:`container_insights_log_groups`).
- ``aws-ebs-csi-driver`` and a default StorageClass of encrypted gp3, ``WaitForFirstConsumer`` (a
  volume is created in the AZ of the node its first pod lands on).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from eks_gpu.build.iam import POD_IDENTITY, POD_IDENTITY_ACTIONS, ServiceRole, ServiceRoleArgs, pod_identity_trust
from eks_gpu.build.scheduling import tolerations
from eks_gpu.config import Taint
from eks_gpu.design import StorageClassDesign
from eks_gpu.facts.node_monitoring import dcgm_server_affinity

EBS_CSI_SERVICE_ACCOUNT = "ebs-csi-controller-sa"
"""The EBS CSI controller's service account (the add-on's), in kube-system."""
EBS_CSI_NAMESPACE = "kube-system"
EBS_CSI_POLICY = "service-role/AmazonEBSCSIDriverPolicy"
"""The AWS managed policy the EBS CSI driver documents for its controller."""
EBS_CSI_PROVISIONER = "ebs.csi.aws.com"
CLOUDWATCH_SERVICE_ACCOUNT = "cloudwatch-agent"
"""The CloudWatch agent's service account (the add-on's, in amazon-cloudwatch)."""
CLOUDWATCH_NAMESPACE = "amazon-cloudwatch"
CONTAINER_INSIGHTS_LOGS = ("application", "dataplane", "host", "performance")
"""The log groups ``/aws/containerinsights/<cluster>/<kind>`` the CloudWatch add-on writes to, each
created by its writer when missing, with no retention: Fluent Bit's ``cloudwatch_logs`` outputs
(``auto_create_group true``) for ``application``, ``dataplane`` and ``host``
(aws-observability/helm-charts, ``charts/amazon-cloudwatch-observability/values.yaml``,
``containerLogs.fluentBit.config.extraFiles``), the CloudWatch agent for ``performance`` (CloudWatch
User Guide, "Container-Insights-reference-performance-logs-EKS"). A stack that ran the add-on before
the program made them has them already, made by the add-on: import them once
(``pulumi import aws:cloudwatch/logGroup:LogGroup <logical name> /aws/containerinsights/<cluster>/<kind>``)
or creating them fails with ``ResourceAlreadyExistsException``."""
CLOUDWATCH_POLICY = "CloudWatchAgentServerPolicy"
"""The AWS managed policy the CloudWatch agent documents for Container Insights."""
DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"


@dataclass(frozen=True)
class AddonsArgs:
    """What the add-ons need: the cluster, the nodes they run on, and which to install (those with a version)."""

    cluster: pulumi.Input[str]
    cluster_name: str
    partition: str
    system_nodes: pulumi.Resource
    """Add-ons become ACTIVE only once their pods run: the system nodes come first."""
    dns: pulumi.Resource
    """CoreDNS: the controllers resolve the AWS APIs' names before they turn ready."""
    gpu_taints: Sequence[Taint]
    """Every taint of every GPU pool: the node monitoring agent's DCGM server tolerates them."""
    tags: Mapping[str, str]
    cluster_arn: pulumi.Input[str]
    """The cluster's ARN: the add-ons' Pod Identity roles trust only this cluster."""
    log_retention_days: int
    """Retention of the CloudWatch add-on's log groups (``logRetentionDays``)."""
    versions: Mapping[str, str]
    """EKS add-on name -> the version to run, for each one to install: which are installed is decided
    once, by :func:`eks_gpu.design.pinning.installed_addons`."""
    existing_cluster: bool = False
    """The cluster is ``existingCluster``'s, not the stack's: an add-on is created with
    ``resolveConflicts`` ``NONE`` (:func:`resolve_conflicts_on_create`). Default False."""


def resolve_conflicts_on_create(existing_cluster: bool) -> str:
    """How EKS treats what it finds in the cluster when it creates an add-on (CreateAddon
    ``resolveConflicts``; terraform-provider-aws ``internal/service/eks/addon.go`` sends
    ``resolve_conflicts_on_create`` there). ``OVERWRITE`` on the stack's own cluster: nothing but the
    add-on's own objects can be there. ``NONE`` on an existing cluster: a self-managed install of the same
    component (a Helm EBS CSI driver, say) keeps its settings, and the creation fails with EKS's conflict
    error instead of overwriting them ("None - If the self-managed version of the add-on is installed on
    your cluster, Amazon EKS doesn't change the value. Creation of the add-on might fail": CreateAddon API
    reference)."""
    return "NONE" if existing_cluster else "OVERWRITE"


def container_insights_log_groups(cluster_name: str) -> list[str]:
    """The CloudWatch add-on's log groups for ``cluster_name``, in :data:`CONTAINER_INSIGHTS_LOGS` order."""
    return [f"/aws/containerinsights/{cluster_name}/{kind}" for kind in CONTAINER_INSIGHTS_LOGS]


def node_monitoring_values(gpu_taints: Sequence[Taint]) -> dict[str, object]:
    """The node monitoring agent's configuration values: its DCGM server on the tainted GPU nodes, and
    on exactly the node types its chart places it on, pinned (a later add-on version's default cannot
    move it under an exporter that embeds its own DCGM). Both keys are in the add-on's configuration
    schema; nothing else is sent (EKS refuses keys the schema lacks)."""
    return {"dcgmAgent": {"tolerations": tolerations(gpu_taints), "affinity": dcgm_server_affinity()}}


class Addons(pulumi.ComponentResource):
    """The Pod Identity agent, the node monitoring agent and the EBS CSI driver (each when enabled)."""

    pod_identity_agent: aws.eks.Addon | None
    node_monitoring: aws.eks.Addon | None
    ebs_csi_driver: aws.eks.Addon | None
    cloudwatch: aws.eks.Addon | None

    def __init__(self, name: str, args: AddonsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("eks-gpu:addons:Addons", name, None, opts)
        self._args = args
        # The agent runs on the host network with the default DNS policy, so it resolves the EKS Auth API
        # through the VPC's resolver (Kubernetes "DNS for Services and Pods": hostNetwork pods with
        # ClusterFirst fall back to Default): it needs nodes, not CoreDNS (aws/eks-pod-identity-agent
        # charts/eks-pod-identity-agent/templates/daemonset.yaml), and starts beside it.
        self.pod_identity_agent = None
        if "eks-pod-identity-agent" in args.versions:
            self.pod_identity_agent = self._addon(name, "eks-pod-identity-agent", needs_dns=False)
        self.node_monitoring = None
        if "eks-node-monitoring-agent" in args.versions:
            self.node_monitoring = self._addon(
                name, "eks-node-monitoring-agent", configuration_values=node_monitoring_values(args.gpu_taints)
            )
        self.ebs_csi_driver = (
            self._with_role(
                name,
                "aws-ebs-csi-driver",
                EBS_CSI_POLICY,
                (EBS_CSI_NAMESPACE, EBS_CSI_SERVICE_ACCOUNT),
                # Its node DaemonSet mounts volumes for pods on every node, the tainted GPU nodes too.
                configuration_values={"node": {"tolerateAllTaints": True}},
            )
            if "aws-ebs-csi-driver" in args.versions
            else None
        )
        self.cloudwatch = None
        if "amazon-cloudwatch-observability" in args.versions:
            # Created first, so deleted last: with the add-on gone nothing writes to them any more, and
            # none outlives the stack with its logs kept forever.
            logs = [
                aws.cloudwatch.LogGroup(
                    f"{name}-containerinsights-{kind}",
                    name=group,
                    retention_in_days=args.log_retention_days,
                    tags={**args.tags, "Name": f"{args.cluster_name}-containerinsights-{kind}"},
                    opts=pulumi.ResourceOptions(parent=self),
                )
                for kind, group in zip(
                    CONTAINER_INSIGHTS_LOGS, container_insights_log_groups(args.cluster_name), strict=True
                )
            ]
            self.cloudwatch = self._with_role(
                name,
                "amazon-cloudwatch-observability",
                CLOUDWATCH_POLICY,
                (CLOUDWATCH_NAMESPACE, CLOUDWATCH_SERVICE_ACCOUNT),
                depends_on=logs,
            )
        self.register_outputs({})

    def _with_role(
        self,
        name: str,
        addon: str,
        policy: str,
        identity: tuple[str, str],
        configuration_values: Mapping[str, object] | None = None,
        depends_on: Sequence[pulumi.Resource] = (),
    ) -> aws.eks.Addon:
        """An add-on whose service account (``identity``: namespace, name) gets a Pod Identity role with
        one AWS managed policy, trusted for that service account of this cluster only."""
        args = self._args
        namespace, service_account = identity
        role = ServiceRole(
            f"{name}-{addon}",
            ServiceRoleArgs(
                service=POD_IDENTITY,
                trust_actions=POD_IDENTITY_ACTIONS,
                trust_conditions=pod_identity_trust(args.cluster_arn, namespace, service_account),
                managed_policies=(policy,),
                partition=args.partition,
                tags={**args.tags, "Name": f"{args.cluster_name}-{addon}"},
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        return self._addon(
            name,
            addon,
            configuration_values=configuration_values,
            pod_identity_associations=[
                aws.eks.AddonPodIdentityAssociationArgs(role_arn=role.role.arn, service_account=service_account)
            ],
            depends_on=[*role.attachments, *filter(None, [self.pod_identity_agent]), *depends_on],
        )

    def _addon(
        self,
        name: str,
        addon: str,
        *,
        configuration_values: Mapping[str, object] | None = None,
        pod_identity_associations: Sequence[aws.eks.AddonPodIdentityAssociationArgs] | None = None,
        depends_on: Sequence[pulumi.Resource] = (),
        needs_dns: bool = True,
    ) -> aws.eks.Addon:
        """An add-on after the system nodes (it turns ACTIVE only once its pods run) and, unless
        ``needs_dns`` is false, after CoreDNS (its controllers resolve AWS's API names before they
        turn ready)."""
        args = self._args
        first = [args.system_nodes, *([args.dns] if needs_dns else []), *depends_on]
        return aws.eks.Addon(
            f"{name}-{addon}",
            cluster_name=args.cluster,
            addon_name=addon,
            addon_version=args.versions[addon],
            configuration_values=json.dumps(configuration_values) if configuration_values else None,
            pod_identity_associations=list(pod_identity_associations) if pod_identity_associations else None,
            resolve_conflicts_on_create=resolve_conflicts_on_create(args.existing_cluster),
            resolve_conflicts_on_update="OVERWRITE",
            tags={**args.tags, "Name": f"{args.cluster_name}-{addon}"},
            opts=pulumi.ResourceOptions(parent=self, depends_on=first),
        )


def default_storage_class(
    name: str, design: StorageClassDesign, driver: pulumi.Resource, provider: k8s.Provider, parent: pulumi.Resource
) -> k8s.storage.v1.StorageClass:
    """``gp3-encrypted``, the default StorageClass: encrypted gp3 (the account's default EBS key),
    created where its first pod is scheduled, expandable, reclaimed as configured."""
    return k8s.storage.v1.StorageClass(
        f"{name}-storage-class",
        metadata={"name": design.name, "annotations": {DEFAULT_CLASS_ANNOTATION: "true"}},
        provisioner=EBS_CSI_PROVISIONER,
        parameters={"type": "gp3", "encrypted": "true"},
        volume_binding_mode="WaitForFirstConsumer",
        reclaim_policy=design.reclaim_policy,
        allow_volume_expansion=True,
        opts=pulumi.ResourceOptions(parent=parent, provider=provider, depends_on=[driver]),
    )
