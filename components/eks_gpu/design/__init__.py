"""The design of one stack: the parsed config joined with AWS's facts, every choice made.

:func:`resolve` is where the config meets AWS: instance types must exist in the region and carry
NVIDIA GPUs, a pool's types share one architecture, GPU model and count, the AMI type fits the
architecture, and every pool gets AZs that offer all its types. Every problem, from the stack file
or from AWS's answers, is raised together in one :class:`~eks_gpu.config.ConfigError`.
"""

from eks_gpu.design.model import (
    SYSTEM_KEY,
    ApiAccess,
    AutoscalerDesign,
    EfaDesign,
    ExistingNetwork,
    GpuMetricsDesign,
    GpuPodDesign,
    GpuSpec,
    KubernetesDesign,
    NcclTestDesign,
    NewNetwork,
    NodeGroupDesign,
    StackDesign,
    StorageClassDesign,
    VolumePerformance,
)
from eks_gpu.design.resolve import load, resolve

__all__ = [
    "SYSTEM_KEY",
    "ApiAccess",
    "AutoscalerDesign",
    "EfaDesign",
    "ExistingNetwork",
    "GpuMetricsDesign",
    "GpuPodDesign",
    "GpuSpec",
    "KubernetesDesign",
    "NcclTestDesign",
    "NewNetwork",
    "NodeGroupDesign",
    "StackDesign",
    "StorageClassDesign",
    "VolumePerformance",
    "load",
    "resolve",
]
