"""The EKS API's enums as the program spells them, the AMI defaults, and the labels the program owns."""

from __future__ import annotations

from enum import StrEnum

# --- enums, spelled exactly as the EKS API spells them --------------------------------------


class TaintEffect(StrEnum):
    """A node group taint's effect as the EKS API spells it (botocore ``eks`` shape ``TaintEffect``)."""

    NO_SCHEDULE = "NO_SCHEDULE"
    NO_EXECUTE = "NO_EXECUTE"
    PREFER_NO_SCHEDULE = "PREFER_NO_SCHEDULE"

    @property
    def kubernetes(self) -> str:
        """The same effect as Kubernetes spells it in a taint or toleration (``NoSchedule``).

        This is the one place where the EKS spelling becomes the Kubernetes one.
        """
        return KUBERNETES_EFFECT[self]


KUBERNETES_EFFECT = {
    TaintEffect.NO_SCHEDULE: "NoSchedule",
    TaintEffect.NO_EXECUTE: "NoExecute",
    TaintEffect.PREFER_NO_SCHEDULE: "PreferNoSchedule",
}


class CapacityType(StrEnum):
    """How a node group buys its instances (botocore ``eks`` shape ``CapacityTypes``)."""

    ON_DEMAND = "ON_DEMAND"
    SPOT = "SPOT"
    CAPACITY_BLOCK = "CAPACITY_BLOCK"


class Architecture(StrEnum):
    """A CPU architecture as EC2 reports it in ``ProcessorInfo.SupportedArchitectures``."""

    X86_64 = "x86_64"
    ARM64 = "arm64"


class AmiType(StrEnum):
    """EKS-optimized AMI types this program builds node groups from (botocore ``eks`` ``AMITypes``)."""

    AL2023_x86_64_NVIDIA = "AL2023_x86_64_NVIDIA"
    AL2023_ARM_64_NVIDIA = "AL2023_ARM_64_NVIDIA"
    BOTTLEROCKET_x86_64_NVIDIA = "BOTTLEROCKET_x86_64_NVIDIA"
    BOTTLEROCKET_ARM_64_NVIDIA = "BOTTLEROCKET_ARM_64_NVIDIA"
    BOTTLEROCKET_x86_64_NVIDIA_FIPS = "BOTTLEROCKET_x86_64_NVIDIA_FIPS"
    BOTTLEROCKET_ARM_64_NVIDIA_FIPS = "BOTTLEROCKET_ARM_64_NVIDIA_FIPS"
    AL2023_x86_64_STANDARD = "AL2023_x86_64_STANDARD"
    AL2023_ARM_64_STANDARD = "AL2023_ARM_64_STANDARD"
    BOTTLEROCKET_x86_64 = "BOTTLEROCKET_x86_64"
    BOTTLEROCKET_ARM_64 = "BOTTLEROCKET_ARM_64"

    @property
    def architecture(self) -> Architecture:
        """The CPU architecture the AMI runs on."""
        return Architecture.ARM64 if "_ARM_64" in self.value else Architecture.X86_64

    @property
    def bottlerocket(self) -> bool:
        """Bottlerocket (two volumes, NVIDIA device plugin built in) rather than AL2023."""
        return self.value.startswith("BOTTLEROCKET")

    @property
    def nvidia(self) -> bool:
        """The AMI carries NVIDIA drivers and the container toolkit."""
        return "NVIDIA" in self.value


GPU_AMI_TYPES = tuple(t for t in AmiType if t.nvidia)
SYSTEM_AMI_TYPES = tuple(t for t in AmiType if not t.nvidia)

DEFAULT_GPU_AMI = {Architecture.X86_64: AmiType.AL2023_x86_64_NVIDIA, Architecture.ARM64: AmiType.AL2023_ARM_64_NVIDIA}
"""The GPU AMI type a pool gets when ``amiType`` is omitted, by the architecture of its instance types."""

DEFAULT_SYSTEM_AMI = {
    Architecture.X86_64: AmiType.AL2023_x86_64_STANDARD,
    Architecture.ARM64: AmiType.AL2023_ARM_64_STANDARD,
}
"""The AMI type of the system node group when ``amiType`` is omitted, by architecture."""

END_OF_LIFE_AMI_TYPES = {
    "AL2_x86_64_GPU": "AL2023_x86_64_NVIDIA or BOTTLEROCKET_x86_64_NVIDIA",
    "AL2_x86_64": "AL2023_x86_64_STANDARD",
    "AL2_ARM_64": "AL2023_ARM_64_STANDARD",
}
"""Amazon Linux 2 AMI types: EKS stopped publishing AL2 AMIs on 2025-11-26 (1.32 was the last version)."""


POOL_LABEL = "eks-gpu/node-group"
"""Label on every node naming its node group key (``system`` or the pool key): pods select pools by it."""
GPU_PRESENT_LABEL = "nvidia.com/gpu.present"
"""Label on every GPU node (``true``), the device plugin's and the pod's node affinity."""
ACCELERATOR_LABEL = "k8s.amazonaws.com/accelerator"
"""Label with the GPU model (``nvidia-a10g``): the Cluster Autoscaler waits for the device plugin on it."""
EFA_LABEL = "eks-gpu/efa"
"""Label (``true``) on the nodes of EFA pools: the EFA device plugin selects them by it."""
RESERVED_LABELS = (POOL_LABEL, GPU_PRESENT_LABEL, ACCELERATOR_LABEL, EFA_LABEL)
