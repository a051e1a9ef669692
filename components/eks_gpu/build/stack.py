"""The whole stack as one component: network, roles, cluster, system and GPU node groups, and in the
cluster the GPU namespace, the NVIDIA device plugin, the Cluster Autoscaler and the smoke test."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from eks_gpu.build.addons import Addons, AddonsArgs, default_storage_class
from eks_gpu.build.autoscaler import ClusterAutoscaler, ClusterAutoscalerArgs
from eks_gpu.build.cluster import Cluster, ClusterArgs
from eks_gpu.build.device_plugin import DevicePlugin, DevicePluginArgs
from eks_gpu.build.efa_device_plugin import EfaDevicePlugin, EfaDevicePluginArgs
from eks_gpu.build.existing import AdoptedCluster
from eks_gpu.build.gpu_metrics import DcgmExporter, DcgmExporterArgs
from eks_gpu.build.iam import NODE_POLICIES, ServiceRole, ServiceRoleArgs
from eks_gpu.build.karpenter import Karpenter, KarpenterArgs
from eks_gpu.facts.karpenter import DISCOVERY_TAG
from eks_gpu.build.nccl_test import NcclTest, NcclTestArgs
from eks_gpu.build.network import Network, NetworkArgs
from eks_gpu.build.nodegroups import NodeGroup, NodeGroupArgs
from eks_gpu.build.scheduling import pool_selector, tolerations
from eks_gpu.build.smoke_test import GpuSmokeTest, GpuSmokeTestArgs
from eks_gpu.build.tagging import tags_for
from eks_gpu.build.workloads import GpuNamespace, GpuNamespaceArgs
from eks_gpu.config import Taint
from eks_gpu.design import NodeGroupDesign, StackDesign
from eks_gpu.design.tags import launch_tags, node_group_asg_tags


class EksGpuStack(pulumi.ComponentResource):
    """EKS with GPU managed node groups, built from a :class:`~eks_gpu.design.StackDesign`."""

    network: Network
    cluster: Cluster | AdoptedCluster
    """The cluster built, or with ``existingCluster`` the one read (never changed)."""
    node_role: ServiceRole
    system: NodeGroup
    gpu_pools: dict[str, NodeGroup]
    """The GPU pools' managed node groups: every pool, except those Karpenter provisions."""
    provider: k8s.Provider
    """The one Kubernetes provider, from the cluster's kubeconfig: no object falls back to ~/.kube/config."""
    namespace: GpuNamespace
    device_plugin: DevicePlugin | None
    smoke_test: GpuSmokeTest | None
    autoscaler: ClusterAutoscaler | None
    karpenter: Karpenter | None
    """Karpenter and the NodePools of its pools (``provisioner: karpenter``); None otherwise."""
    coredns: aws.eks.Addon | None
    """The CoreDNS add-on; None on an existing cluster, which runs its own."""
    addons: Addons
    dcgm_exporter: DcgmExporter | None
    efa_device_plugin: EfaDevicePlugin | None
    nccl_test: NcclTest | None
    storage_class: k8s.storage.v1.StorageClass | None

    def __init__(self, name: str, design: StackDesign, opts: pulumi.ResourceOptions | None = None):
        # What the policy pack's stack-budget policy reads: the stack's budget and where it is priced.
        policy_inputs = {"region": design.region, "budgetUsdPerHour": design.budget_usd_per_hour}
        # eks-gpu:protect protects every resource of the stack, not only the cluster: a destroy deletes
        # dependents first and refuses a protected resource only when it reaches it (pulumi/pulumi
        # pkg/resource/deploy: step_generator.go ScheduleDeletes, step.go DeleteStep.Apply), so the node
        # groups, add-ons and charts under a protected cluster would go first. Every child inherits it
        # from its parent (pulumi sdk/python/lib/pulumi/resource.py; pulumi-eks's children through
        # Construct and sdk/nodejs/resource.ts): tests/test_recovery.py.
        # Only ever set to True: protect=False would override a protect the caller (a parent, the
        # component package's consumer) gives this component.
        if design.protect:
            opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(protect=True))
        super().__init__("eks-gpu:stack:EksGpuStack", name, policy_inputs, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.design = design
        self.network = Network(
            f"{name}-network",
            NetworkArgs(
                network=design.network,
                cluster_name=design.cluster_name,
                tags=design.tags,
                # for the EC2NodeClasses a platform team adds; the program's select subnets by id
                private_subnet_tags={DISCOVERY_TAG: design.cluster_name} if design.karpenter else {},
            ),
            opts=child,
        )
        self.node_role = ServiceRole(
            f"{name}-node",
            ServiceRoleArgs(
                service="ec2.amazonaws.com",
                managed_policies=NODE_POLICIES,
                partition=design.partition,
                tags=tags_for(design.tags, f"{design.cluster_name}-node"),
            ),
            opts=child,
        )
        self.cluster = (
            AdoptedCluster(design.existing_cluster, design.region, design.access.profile)
            if design.existing_cluster is not None
            else self._cluster(name, design)
        )
        self.system = self._node_group(name, design.system)
        self.coredns = None
        if design.existing_cluster is None:
            self.coredns = aws.eks.Addon(
                f"{name}-coredns",
                cluster_name=self.cluster.name,
                addon_name="coredns",
                addon_version=design.addon_versions["coredns"].version,
                resolve_conflicts_on_create="OVERWRITE",
                resolve_conflicts_on_update="OVERWRITE",
                tags=tags_for(design.tags, f"{design.cluster_name}-coredns"),
                # CoreDNS goes Degraded, and its creation waits until it times out, without a node to run on.
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.system]),
            )
        # What waits for cluster DNS: CoreDNS, or on an existing cluster (whose CoreDNS runs) the system nodes.
        self.dns: pulumi.Resource = self.coredns or self.system
        self.gpu_pools = {
            key: self._node_group(name, pool)
            for key, pool in design.gpu_pools.items()
            if design.karpenter is None or pool.karpenter is None
        }
        self.addons = Addons(
            f"{name}-addons",
            AddonsArgs(
                cluster=self.cluster.name,
                cluster_name=design.cluster_name,
                partition=design.partition,
                system_nodes=self.system,
                dns=self.dns,
                gpu_taints=self._gpu_taints(),
                tags=design.tags,
                cluster_arn=self.cluster.arn,
                log_retention_days=design.log_retention_days,
                versions={name: v.version for name, v in design.addon_versions.items()},
                existing_cluster=design.existing_cluster is not None,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self._in_cluster(name)
        # Stack policies see a component's outputs (its inputs, too, in a preview): both carry the budget.
        self.register_outputs({"clusterName": self.cluster.name, **policy_inputs})

    def _cluster(self, name: str, design: StackDesign) -> Cluster:
        """The control plane, in the stack's network."""
        return Cluster(
            f"{name}-cluster",
            ClusterArgs(
                cluster_name=design.cluster_name,
                kubernetes_version=design.kubernetes_version,
                partition=design.partition,
                vpc_id=self.network.vpc_id,
                private_subnet_ids=self.network.all_private_subnet_ids(),
                public_subnet_ids=self.network.public_subnet_ids,
                access=design.access,
                region=design.region,
                log_retention_days=design.log_retention_days,
                tags=design.tags,
                addon_versions={name: v.version for name, v in design.addon_versions.items()},
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _in_cluster(self, name: str) -> None:
        """The Kubernetes side: one explicit provider, the namespace, the device plugin, the pod."""
        design, kube = self.design, self.design.kubernetes
        self.provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=self.cluster.provider_kubeconfig,
            # Every object waits for the way in: the 443 rules and, without creator access, the admin entries.
            opts=pulumi.ResourceOptions(parent=self, depends_on=self.cluster.api_access),
        )
        child = pulumi.ResourceOptions(parent=self)
        self.storage_class = None
        if design.storage_class is not None and self.addons.ebs_csi_driver is not None:
            self.storage_class = default_storage_class(
                name, design.storage_class, self.addons.ebs_csi_driver, self.provider, self
            )
        self.namespace = GpuNamespace(
            f"{name}-workloads",
            GpuNamespaceArgs(
                name=kube.namespace,
                gpu_quota=kube.gpu_quota,
                kubernetes_version=design.kubernetes_version,
                pod_security=kube.pod_security,
                egress_cidrs=kube.egress_cidrs,
                provider=self.provider,
                # Deleted while the EBS CSI driver still runs: its claims' volumes are the driver's to delete.
                depends_on=[r for r in (self.addons.ebs_csi_driver, self.storage_class) if r is not None],
            ),
            opts=child,
        )
        self.device_plugin = None
        if kube.device_plugin_version is not None:
            self.device_plugin = DevicePlugin(
                f"{name}-nvidia",
                DevicePluginArgs(
                    chart_version=kube.device_plugin_version,
                    pools=kube.device_plugin_pools,
                    # exactly the nodes it runs on: Bottlerocket pools' taints are none of its business
                    taints=[t for key in kube.device_plugin_pools for t in design.gpu_pools[key].taints],
                    provider=self.provider,
                ),
                opts=child,
            )
        efa_pools = [pool for pool in design.gpu_pools.values() if pool.efa is not None]
        self.efa_device_plugin = None
        if efa_pools:
            self.efa_device_plugin = EfaDevicePlugin(
                f"{name}-efa",
                EfaDevicePluginArgs(
                    taints=[t for pool in efa_pools for t in pool.taints], region=design.region, provider=self.provider
                ),
                opts=child,
            )
        self.dcgm_exporter = None
        if design.gpu_metrics is not None and design.gpu_metrics.exporter == "dcgm-exporter":
            self.dcgm_exporter = DcgmExporter(
                f"{name}-dcgm-exporter",
                DcgmExporterArgs(
                    design=design.gpu_metrics,
                    taints={key: pool.taints for key, pool in design.gpu_pools.items()},
                    provider=self.provider,
                    depends_on=list(filter(None, [self.addons.node_monitoring])),  # its host engine first
                ),
                opts=child,
            )
        self.karpenter = None
        karpenter_pools = {k: p for k, p in design.gpu_pools.items() if p.karpenter is not None}
        if design.karpenter is not None:
            self.karpenter = Karpenter(
                f"{name}-karpenter",
                KarpenterArgs(
                    design=design.karpenter,
                    pools=karpenter_pools,
                    cluster_name=design.cluster_name,
                    cluster=self.cluster.name,
                    cluster_arn=self.cluster.arn,
                    cluster_security_group_id=self.cluster.security_group_id,
                    tag_security_group=design.existing_cluster is None,
                    vpc_id=self.network.vpc_id,
                    subnet_ids={
                        key: [s for az in p.availability_zones for s in self.network.private_subnet_ids[az]]
                        for key, p in karpenter_pools.items()
                    },
                    region=design.region,
                    partition=design.partition,
                    stack_tags=design.tags,
                    pod_identity_agent=self.addons.pod_identity_agent,
                    system_nodes=self.system,
                    dns=self.dns,
                    node_depends_on=[
                        r
                        for p in karpenter_pools.values()
                        for az in p.availability_zones
                        for r in self.network.egress.get(az, [])
                    ],
                    provider=self.provider,
                ),
                opts=child,
            )
        self.autoscaler = None
        if design.autoscaler is not None:
            groups = {design.system.key: self.system, **self.gpu_pools}
            self.autoscaler = ClusterAutoscaler(
                f"{name}-autoscaler",
                ClusterAutoscalerArgs(
                    design=design.autoscaler,
                    cluster_name=design.cluster_name,
                    cluster=self.cluster.name,
                    cluster_arn=self.cluster.arn,
                    region=design.region,
                    partition=design.partition,
                    node_group_names={key: group.name for key, group in groups.items()},
                    pod_identity_agent=self.addons.pod_identity_agent,
                    system_nodes=self.system,
                    dns=self.dns,
                    tags=tags_for(design.tags, f"{design.cluster_name}-autoscaler"),
                    provider=self.provider,
                    # on an existing cluster: only this stack's node groups, under names of its own
                    scoped=design.existing_cluster is not None,
                ),
                opts=child,
            )
        self.smoke_test = None
        if kube.gpu_pod is not None:
            pool = design.gpu_pools[kube.gpu_pod.pool]
            # The pod needs a node of its pool (its ASG's tags, for the autoscaler to find it), the
            # namespace's quota, defaults and policies (admission checks only pods created after them)
            # and, on AL2023, the plugin that advertises its GPUs.
            # Under Karpenter the node comes from the pool's NodePool (which waits for the controller).
            provisioned = self.karpenter.node_pools.get(pool.key) if self.karpenter is not None else None
            waits_for: list[pulumi.Resource] = [provisioned or self.gpu_pools[pool.key], self.namespace]
            if not pool.ami_type.bottlerocket and self.device_plugin is not None:
                waits_for.append(self.device_plugin)
            if self.autoscaler is not None:
                # A pool at zero nodes gets its node from the autoscaler, which must be there first.
                waits_for.append(self.autoscaler)
            self.smoke_test = GpuSmokeTest(
                f"{name}-smoke-test",
                GpuSmokeTestArgs(
                    pod=kube.gpu_pod,
                    taints=pool.taints,
                    namespace=self.namespace.name,
                    provider=self.provider,
                    depends_on=waits_for,
                ),
                opts=child,
            )

        self.nccl_test = None
        if kube.nccl_test is not None:
            # its pods need the plugins that advertise GPUs and EFA, and the autoscaler to start nodes
            waits: list[pulumi.Resource | None] = [self.device_plugin, self.efa_device_plugin, self.autoscaler]
            if self.karpenter is not None:
                waits.extend(self.karpenter.node_pools.values())
            self.nccl_test = NcclTest(
                f"{name}-nccl-test",
                NcclTestArgs(
                    design=kube.nccl_test,
                    taints=design.gpu_pools[kube.nccl_test.pool].taints,
                    kubernetes_version=design.kubernetes_version,
                    provider=self.provider,
                    operator_depends_on=[self.system],
                    job_depends_on=[r for r in waits if r is not None],
                ),
                opts=child,
            )

    def _gpu_taints(self) -> list[Taint]:
        """Every taint of every GPU pool: what a DaemonSet on every GPU node tolerates."""
        return [t for pool in self.design.gpu_pools.values() for t in pool.taints]

    def _node_group(self, name: str, group: NodeGroupDesign) -> NodeGroup:
        design = self.design
        key = group.key
        azs = group.availability_zones
        return NodeGroup(
            f"{name}-{key}",
            NodeGroupArgs(
                design=group,
                cluster_name=self.cluster.name,
                kubernetes_version=design.kubernetes_version,
                node_role_arn=self.node_role.role.arn,
                subnet_ids=[s for az in azs for s in self.network.private_subnet_ids[az]],
                tags=tags_for(design.tags, f"{design.cluster_name}-{key}"),
                # Nodes join only with the role's policies and pull images only through the NAT routes;
                # the policies are deleted after the group, not under its nodes.
                depends_on=[*self.node_role.attachments, *(r for az in azs for r in self.network.egress.get(az, []))],
                launch_tags=launch_tags(design.cluster_name, key),
                vpc_id=self.network.vpc_id,
                cluster_security_group_id=self.cluster.security_group_id,
                # an existing cluster's own autoscaler discovers the pools by the same tags
                asg_tags=node_group_asg_tags(
                    group,
                    design.cluster_name,
                    design.tags,
                    design.autoscaler is not None or design.existing_cluster is not None,
                    scoped=design.autoscaler is not None and design.existing_cluster is not None,
                ),
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _pool_outputs(self, key: str) -> dict[str, Any]:
        design = self.design.gpu_pools[key]
        pool = self.gpu_pools.get(key)
        if pool is not None:
            group_name, asg_name = pool.name, pool.asg_name
        else:  # a Karpenter pool: its NodePool, and no Auto Scaling group
            assert self.karpenter is not None
            group_name, asg_name = self.karpenter.node_pool_names[key], None
        return {
            "nodeGroupName": group_name,
            "asgName": asg_name,
            "gpusPerNode": design.gpu.count if design.gpu else 0,
            "gpuModel": design.gpu.model if design.gpu else None,
            "availabilityZones": list(design.availability_zones),
            "singleAz": design.single_az,
            # What a workload copies to run on this pool (docs/workloads.md).
            "nodeSelector": pool_selector(key),
            "tolerations": tolerations(design.taints),
            # Kubernetes resource name -> quantity a node offers pods (what scale-from-zero assumes)
            "allocatable": design.allocatable.quantities() if design.allocatable else None,
        }

    def outputs(self) -> dict[str, Any]:
        """The stack outputs: what a user needs to reach and size the cluster."""
        net = self.network
        return {
            "clusterName": self.cluster.name,
            "kubeconfig": pulumi.Output.secret(self.cluster.kubeconfig_json),
            "vpcId": net.vpc_id,
            "privateSubnetIds": net.all_private_subnet_ids(),
            "publicSubnetIds": net.public_subnet_ids,
            "nodeRoleArn": self.node_role.role.arn,
            "systemNodeGroup": {"nodeGroupName": self.system.name, "asgName": self.system.asg_name},
            "gpuNodeGroups": {key: self._pool_outputs(key) for key in self.design.gpu_pools},
            "gpuNamespace": self.namespace.name,
            "gpuSmokeTestJob": self.smoke_test.job_name if self.smoke_test else None,
            "gpuSmokeTestUrn": self.smoke_test.job_urn if self.smoke_test else None,
            "ncclTestJob": self.nccl_test.job_name if self.nccl_test else None,
            "ncclTestUrn": self.nccl_test.job_urn if self.nccl_test else None,
            "devicePluginChartVersion": self.design.kubernetes.device_plugin_version,
            "autoscalerRoleArn": self.autoscaler.role.role.arn if self.autoscaler else None,
            "autoscalerChartVersion": self.design.autoscaler.chart_version if self.design.autoscaler else None,
            # what a team's own EC2NodeClass names in `role` (docs/karpenter.md, "Your own NodePools")
            "karpenterNodeRoleName": self.karpenter.node_role.role.name if self.karpenter else None,
        }
