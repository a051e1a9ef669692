"""What the program puts in the cluster: namespace quota, device plugin pools, the smoke test."""

from __future__ import annotations

from collections.abc import Mapping

from components.config import (
    Problem,
    StackConfig,
    key_path,
)
from components.design.model import GpuPodDesign, KubernetesDesign, NodeGroupDesign


def design_kubernetes(
    config: StackConfig, groups: Mapping[str, NodeGroupDesign], problems: list[Problem], warnings: list[str]
) -> KubernetesDesign:
    pools = {key: groups[key] for key in config.gpu_node_groups if key in groups}
    plugin_pools = tuple(k for k, p in pools.items() if not p.ami_type.bottlerocket)
    quota = config.gpu_namespace.gpu_quota
    if quota is None:
        quota = sum(p.max_size * (p.gpu.count if p.gpu else 0) for p in pools.values())
    pod = config.gpu_pod
    pod_design = None
    if pod.enabled:
        key = pod.node_group or (next(iter(config.gpu_node_groups)) if len(config.gpu_node_groups) == 1 else None)
        if key is None or key not in config.gpu_node_groups:
            shown = ", ".join(config.gpu_node_groups) or "none"
            problems.append(
                Problem(
                    key_path("gpuPod", "nodeGroup"),
                    f"{'is required with several pools' if key is None else repr(key) + ' is not a pool'}; "
                    f"the pools are: {shown}",
                )
            )
        elif key in pools:
            target = pools[key]
            per_node = target.gpu.count if target.gpu else 0
            if pod.gpus > per_node:
                problems.append(
                    Problem(
                        key_path("gpuPod", "gpus"),
                        f"{pod.gpus} GPUs do not fit on one node of pool {key} ({per_node} per node)",
                    )
                )
            if target.desired_size == 0 and not config.autoscaler.enabled:
                problems.append(
                    Problem(
                        key_path("gpuNodeGroups", key, "desiredSize"),
                        "is 0 while eks-gpu:gpuPod runs on this pool and the autoscaler is disabled: nothing "
                        "would start a node, so the pod would stay Pending and pulumi up would wait for it "
                        "until its timeout; set desiredSize to 1, enable eks-gpu:autoscaler, or disable the pod",
                    )
                )
            if pod.gpus > quota:
                problems.append(
                    Problem(key_path("gpuNamespace", "gpuQuota"), f"{quota} is below the pod's {pod.gpus} GPUs")
                )
            pod_design = GpuPodDesign(pool=key, image=pod.image, gpus=pod.gpus, command=pod.command)
    return KubernetesDesign(
        namespace=config.gpu_namespace.name,
        gpu_quota=quota,
        device_plugin_version=config.device_plugin.chart_version if plugin_pools else None,
        device_plugin_pools=plugin_pools,
        gpu_pod=pod_design,
    )
