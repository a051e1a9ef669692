"""Limits and lists AWS documents, each with its source: checked before any resource exists.

Bounds live here as data next to where they come from (cdk-eks-blueprints' habit), so a reviewer
can check each one against its source and a test can hold it against an independent copy
(botocore's API models) where one ships.
"""

from __future__ import annotations

UNSUPPORTED_CONTROL_PLANE_AZ_IDS: frozenset[str] = frozenset({"use1-az3", "usw1-az2", "cac1-az3"})
"""AZ ids where EKS cannot place a cluster's control-plane network interfaces, so no subnet of
the cluster may be there. Source: EKS User Guide, "View Amazon EKS networking requirements for VPC
and subnets" (awsdocs/amazon-eks-user-guide, latest/ug/networking/network-reqs.adoc): "us-east-1
use1-az3, us-west-1 usw1-az2, ca-central-1 cac1-az3". By id, not name: names map to ids per
account."""

LOG_RETENTION_DAYS: tuple[int, ...] = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip
"""Retention periods CloudWatch Logs accepts, in days. Source: the CloudWatch Logs API reference,
``PutRetentionPolicy`` ``retentionInDays`` (botocore ``logs`` model, shape ``Days``)."""

ASG_MAX_TAGS = 50
"""Tags one Auto Scaling group can hold. Source: Amazon EC2 Auto Scaling User Guide, "Tag Auto
Scaling groups and instances" ("You can add up to 50 tags to each Auto Scaling group"); the
Cluster Autoscaler's AWS README repeats it for its node-template tags."""

EKS_OWNED_ASG_TAGS = ("eks:cluster-name", "eks:nodegroup-name", "kubernetes.io/cluster/<cluster>")
"""Tags EKS itself puts on a managed node group's Auto Scaling group besides the two autoscaler
discovery tags (which the program sets too, so they count once): they use up part of the 50."""

GP3_IOPS = (3000, 80000)
"""IOPS a gp3 volume can be provisioned with. Source: the EC2 API reference,
``LaunchTemplateEbsBlockDeviceRequest.Iops`` ("gp3: 3,000 - 80,000 IOPS"; botocore ``ec2`` model)."""
GP3_THROUGHPUT_MIBPS = (125, 2000)
"""Throughput a gp3 volume can be provisioned with, MiB/s. Source: the EC2 API reference,
``LaunchTemplateEbsBlockDeviceRequest.Throughput`` ("Minimum value of 125. Maximum value of 2,000")."""
GP3_MAX_IOPS_PER_GIB = 500
"""gp3: at most 500 provisioned IOPS per GiB of volume size (Amazon EBS User Guide, "General Purpose
SSD volumes")."""
GP3_MAX_MIBPS_PER_IOPS = 0.25
"""gp3: at most 0.25 MiB/s of provisioned throughput per provisioned IOPS (Amazon EBS User Guide,
"General Purpose SSD volumes")."""

EFA_DRIVER_HUGEPAGES_2MI = 5128
"""2 MiB huge pages an instance with the EFA driver installed pre-allocates, which pods request as
``hugepages-2Mi`` (libfabric's EFA provider puts its bounce buffers there). Source: EKS User Guide,
"Machine learning training using Elastic Fabric Adapter" (awsdocs/amazon-eks-user-guide,
``node-efa``): "Amazon EC2 instances with the EFA driver installed pre-allocate 5128 2M Huge Pages".
The EKS AL2023 NVIDIA AMIs carry the driver ("Manage EFA devices on Amazon EKS": "EKS-optimized
AL2023 accelerated AMIs (NVIDIA and Neuron) and all Bottlerocket AMIs include the host-level
components needed to use EFA"; awslabs/amazon-eks-ami ``templates/al2023/provisioners/install-efa.sh``
runs ``efa_installer.sh --minimal``), so the program sets nothing on the node for it. Bottlerocket
sizes its own pool when it finds an EFA device (bottlerocket-core-kit PR #141, ``corndog
generate-hugepages-setting``), a number no source here gives."""
