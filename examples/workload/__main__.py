"""A GPU Job placed on an eks-gpu pool from another project: everything it needs to land comes from
the eks-gpu stack's outputs, read through a StackReference.

- ``kubeconfig``: the cluster to talk to (a secret output, it stays one here);
- ``gpuNamespace``: where GPU work is admitted (its quota, defaults and network policies);
- ``gpuNodeGroups.<pool>``: ``nodeSelector`` and ``tolerations`` to copy, ``gpusPerNode`` to size by.

Config: ``gpu-job:gpuStack`` (the stack, ``org/project/stack``) and ``gpu-job:pool`` (a pool's key).
"""

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

config = pulumi.Config()
platform = pulumi.StackReference(config.require("gpuStack"))
pool_key = config.require("pool")


def pool_of(pools: dict[str, Any]) -> dict[str, Any]:
    if pool_key not in pools:
        raise pulumi.RunError(f"gpu-job:pool: '{pool_key}' is not a GPU pool of the stack; its pools: {sorted(pools)}")
    return pools[pool_key]


pool = platform.require_output("gpuNodeGroups").apply(pool_of)
provider = k8s.Provider("gpu-cluster", kubeconfig=platform.require_output("kubeconfig"))

container: k8s.core.v1.ContainerArgsDict = {
    "name": "cuda",
    "image": "nvidia/cuda:13.0.2-base-ubuntu24.04",
    "command": ["nvidia-smi"],
    # Every GPU of one node; the namespace's LimitRange fills in CPU and memory requests.
    "resources": {"limits": {"nvidia.com/gpu": pool.apply(lambda p: str(p["gpusPerNode"]))}},
    # What the namespace's Pod Security level (restricted by default) asks of every container.
    "security_context": {
        "allow_privilege_escalation": False,
        "run_as_non_root": True,
        "run_as_user": 1000,
        "capabilities": {"drop": ["ALL"]},
        "seccomp_profile": {"type": "RuntimeDefault"},
    },
}
spec: k8s.batch.v1.JobSpecArgsDict = {
    "backoff_limit": 0,
    "ttl_seconds_after_finished": 3600,
    "template": {
        "spec": {
            "restart_policy": "Never",
            "node_selector": pool.apply(lambda p: p["nodeSelector"]),
            "tolerations": pool.apply(lambda p: p["tolerations"]),
            "containers": [container],
        }
    },
}
metadata: k8s.meta.v1.ObjectMetaArgsDict = {"namespace": platform.require_output("gpuNamespace")}
job = k8s.batch.v1.Job("gpu-check", metadata=metadata, spec=spec, opts=pulumi.ResourceOptions(provider=provider))

pulumi.export("job", job.metadata["name"])
