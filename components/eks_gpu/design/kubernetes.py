"""What the program puts in the cluster: namespace quota, device plugin pools, the smoke test, the
NCCL test."""

from __future__ import annotations

from collections.abc import Mapping

from eks_gpu.config import (
    Problem,
    StackConfig,
    key_path,
)
from eks_gpu.design.model import GpuPodDesign, KubernetesDesign, NcclTestDesign, NodeGroupDesign

NCCL_WORKERS = 2
"""Nodes the NCCL test spans: two is the fewest that puts traffic on EFA."""


def design_kubernetes(
    config: StackConfig, groups: Mapping[str, NodeGroupDesign], problems: list[Problem], warnings: list[str]
) -> KubernetesDesign:
    pools = {key: groups[key] for key in config.gpu_node_groups if key in groups}
    # Bottlerocket's NVIDIA variants carry the plugin; devicePlugin.enabled false leaves the AL2023 pools to
    # one the cluster runs
    needs_plugin = tuple(k for k, p in pools.items() if not p.ami_type.bottlerocket)
    plugin_pools = needs_plugin if config.device_plugin.enabled else ()
    if needs_plugin and not plugin_pools:
        warnings.append(
            f"{key_path('devicePlugin', 'enabled')}: false: nothing this stack installs advertises nvidia.com/gpu "
            f"on {', '.join(needs_plugin)} (AL2023 NVIDIA); a device plugin the cluster runs (NVIDIA's, or the GPU "
            "Operator's) must run on these pools and tolerate their taints, or GPU pods there "
            f"{'(eks-gpu:gpuPod too) ' if config.gpu_pod.enabled else ''}stay Pending"
        )
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
        pod_security=config.gpu_namespace.pod_security,
        egress_cidrs=config.gpu_namespace.egress_cidrs,
        device_plugin_version=config.device_plugin.chart_version if plugin_pools else None,
        device_plugin_pools=plugin_pools,
        gpu_pod=pod_design,
        nccl_test=_nccl_test(config, pools, problems),
    )


def _nccl_test(
    config: StackConfig, pools: Mapping[str, NodeGroupDesign], problems: list[Problem]
) -> NcclTestDesign | None:
    """The NCCL test on its EFA pool; problems name the key to change."""
    test = config.nccl_test
    if not test.enabled:
        return None
    efa_pools = [key for key, pool in config.gpu_node_groups.items() if pool.efa]
    key = test.node_group or (efa_pools[0] if len(efa_pools) == 1 else None)
    if key is None or key not in efa_pools:
        shown = ", ".join(efa_pools) or "none (set efa: true on a pool)"
        if key is not None:
            why = f"'{key}' is not a pool with efa: true"
        elif efa_pools:
            why = "is required with several EFA pools"
        else:
            why = "names no EFA pool"
        problems.append(Problem(key_path("ncclTest", "nodeGroup"), f"{why}; the EFA pools are: {shown}"))
        return None
    pool = pools.get(key)
    if pool is None or pool.efa is None or pool.gpu is None:
        return None  # the pool's own problems are reported already
    prefix = ("gpuNodeGroups", key)
    if pool.ami_type.bottlerocket:
        problems.append(
            Problem(
                key_path(*prefix, "amiType"),
                f"is {pool.ami_type.value} while eks-gpu:ncclTest runs on this pool: the test asks for the "
                "2 MiB huge pages the AL2023 NVIDIA AMI's EFA driver pre-allocates, and how many Bottlerocket "
                "sets aside is not known here; use an AL2023 NVIDIA AMI or disable the test",
            )
        )
    if pool.max_size < NCCL_WORKERS:
        problems.append(
            Problem(
                key_path(*prefix, "maxSize"),
                f"is {pool.max_size} while eks-gpu:ncclTest needs {NCCL_WORKERS} nodes of this pool; "
                f"set it to {NCCL_WORKERS} or more, or disable the test",
            )
        )
    elif pool.desired_size < NCCL_WORKERS and not config.autoscaler.enabled:
        problems.append(
            Problem(
                key_path(*prefix, "desiredSize"),
                f"is {pool.desired_size} while eks-gpu:ncclTest needs {NCCL_WORKERS} nodes and the autoscaler is "
                "disabled: nothing would start them; enable eks-gpu:autoscaler, raise desiredSize, or disable the test",
            )
        )
    return NcclTestDesign(
        pool=key,
        image=test.image,
        workers=NCCL_WORKERS,
        gpus_per_worker=pool.gpu.count,
        efa_per_worker=pool.efa.interfaces,
    )
