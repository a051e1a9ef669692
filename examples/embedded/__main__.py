"""A platform team's program with eks-gpu inside it: a bucket for training data, the GPU stack, and a
role that lets the GPU namespace's jobs read the bucket through EKS Pod Identity.

The GPU stack's config is typed Python (``eks_gpu.StackArgs``, the stack file's keys with their Python
names); ``build_stack`` checks it with the same parser and messages as a stack file
(``eks-gpu:gpuNodeGroups.train.maxSize: ...``). ``eks_gpu.read_stack_config()`` would read the
``eks-gpu:*`` keys of this program's stack file instead.
"""

import json

import eks_gpu
import pulumi
import pulumi_aws as aws
from eks_gpu import StackArgs

config = pulumi.Config()
team = config.require("team")

datasets = aws.s3.Bucket("datasets", force_destroy=False, tags={"team": team})

# Typed: mypy checks the keys and value types; build_stack checks the rest as it checks a stack file.
gpu_config: StackArgs = {
    "cluster_name": f"{team}-gpu",
    "endpoint_public_access_cidrs": config.require_object("apiCidrs"),
    "tags": {"team": team},
    "vpc": {"availability_zones": ["us-east-1a", "us-east-1b"], "nat_gateways": "single"},
    "gpu_node_groups": {
        "train": {"instance_types": ["g6.12xlarge"], "min_size": 0, "max_size": 2, "disk_size_gib": 200},
    },
}
gpu = eks_gpu.build_stack("gpu", gpu_config)
outputs = gpu.outputs()

# The jobs' service account in the GPU namespace reads the bucket (Pod Identity, which the stack installs).
reader = aws.iam.Role(
    "dataset-reader",
    assume_role_policy=json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "pods.eks.amazonaws.com"},
                    "Action": ["sts:AssumeRole", "sts:TagSession"],
                }
            ],
        }
    ),
)
aws.iam.RolePolicy(
    "dataset-reader-read",
    role=reader.id,
    policy=datasets.arn.apply(
        lambda arn: json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": arn},
                    {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": f"{arn}/*"},
                ],
            }
        )
    ),
)
aws.eks.PodIdentityAssociation(
    "dataset-reader",
    cluster_name=outputs["clusterName"],
    namespace=outputs["gpuNamespace"],
    service_account="trainer",
    role_arn=reader.arn,
)

pulumi.export("datasetsBucket", datasets.id)
pulumi.export("kubeconfig", outputs["kubeconfig"])
pulumi.export("gpuNodeGroups", outputs["gpuNodeGroups"])
