"""eks-gpu: GPU worker groups on Amazon EKS, as a Pulumi component (docs/contract.md is the public API).

    import eks_gpu
    stack = eks_gpu.build_stack("gpu", eks_gpu.read_stack_config())

The names below are the public Python API. They are imported on first use, so that the policy pack,
which runs with only ``pulumi`` and ``pulumi-policy`` installed, can import ``eks_gpu.policy``.
"""

from __future__ import annotations

import importlib
from importlib import metadata
from typing import TYPE_CHECKING, Any

try:
    __version__ = metadata.version("eks-gpu")
except metadata.PackageNotFoundError:  # the source tree on sys.path, not installed
    __version__ = "0+unknown"

_PUBLIC = {
    "build_stack": "eks_gpu.api",
    "design_stack": "eks_gpu.api",
    "read_stack_config": "eks_gpu.api",
    "EksGpuStack": "eks_gpu.build.stack",
    "StackDesign": "eks_gpu.design",
    "StackConfig": "eks_gpu.config",
    "StackArgs": "eks_gpu.args",
    "GpuPool": "eks_gpu.config",
    "SystemNodeGroup": "eks_gpu.config",
    "Taint": "eks_gpu.config",
    "ConfigError": "eks_gpu.config",
    "Problem": "eks_gpu.config",
}

__all__ = [
    "ConfigError",
    "EksGpuStack",
    "GpuPool",
    "Problem",
    "StackArgs",
    "StackConfig",
    "StackDesign",
    "SystemNodeGroup",
    "Taint",
    "__version__",
    "build_stack",
    "design_stack",
    "read_stack_config",
]

if TYPE_CHECKING:
    from eks_gpu.api import build_stack, design_stack, read_stack_config
    from eks_gpu.args import StackArgs
    from eks_gpu.build.stack import EksGpuStack
    from eks_gpu.config import ConfigError, GpuPool, Problem, StackConfig, SystemNodeGroup, Taint
    from eks_gpu.design import StackDesign


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'eks_gpu' has no attribute {name!r}")
    return getattr(importlib.import_module(_PUBLIC[name]), name)
