"""Stack configuration: the user interface of the program, parsed once into frozen typed objects.

Every key lives in the ``eks-gpu`` namespace (``eks-gpu:gpuNodeGroups``). Parsing never stops at the
first problem: every problem of the stack file is collected as a :class:`Problem` naming its full key
(``eks-gpu:gpuNodeGroups.inference.minSize``) and what is allowed, and raised together as one
:class:`ConfigError` before any resource is registered. Facts that only AWS knows (does an instance
type exist, how many GPUs has it, where is it offered) are checked later, in :mod:`eks_gpu.design`,
and reported in the same error.
"""

from eks_gpu.config.enums import (
    ACCELERATOR_LABEL,
    DEFAULT_GPU_AMI,
    DEFAULT_SYSTEM_AMI,
    EFA_LABEL,
    GPU_PRESENT_LABEL,
    POOL_LABEL,
    AmiType,
    Architecture,
    CapacityType,
    TaintEffect,
)
from eks_gpu.config.models import (
    CUDA_IMAGE,
    DEFAULT_GPU_TAINTS,
    DEFAULT_KUBERNETES_VERSION,
    DEVICE_PLUGIN_CHART_VERSION,
    GPU_TAINT_KEY,
    ExistingVpc,
    GpuPool,
    NewVpc,
    StackConfig,
    SystemNodeGroup,
    Taint,
)
from eks_gpu.config.parse import ParsedConfig, parse_config, read_pulumi_config
from eks_gpu.config.problems import NAMESPACE, ConfigError, Problem, key_path

__all__ = [
    "ACCELERATOR_LABEL",
    "CUDA_IMAGE",
    "DEFAULT_GPU_AMI",
    "DEFAULT_GPU_TAINTS",
    "DEFAULT_KUBERNETES_VERSION",
    "DEFAULT_SYSTEM_AMI",
    "DEVICE_PLUGIN_CHART_VERSION",
    "EFA_LABEL",
    "GPU_PRESENT_LABEL",
    "GPU_TAINT_KEY",
    "NAMESPACE",
    "POOL_LABEL",
    "AmiType",
    "Architecture",
    "CapacityType",
    "ConfigError",
    "ExistingVpc",
    "GpuPool",
    "NewVpc",
    "ParsedConfig",
    "Problem",
    "StackConfig",
    "SystemNodeGroup",
    "Taint",
    "TaintEffect",
    "key_path",
    "parse_config",
    "read_pulumi_config",
]
