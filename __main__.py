"""eks-gpu: EKS with GPU managed node groups, sized by stack config.

Reads the stack config, asks AWS what it needs to know, builds the stack, exports its outputs.
"""

from datetime import date

import pulumi
import pulumi_aws as aws
from eks_gpu.build.stack import EksGpuStack
from eks_gpu.config import read_pulumi_config
from eks_gpu.design import load

design = load(
    read_pulumi_config(),
    stack=pulumi.get_stack(),
    region=aws.config.region,
    today=date.today(),
    profile=aws.config.profile,
)
for warning in design.warnings:
    pulumi.log.warn(warning)
for note in design.notes:
    pulumi.log.info(note)

stack = EksGpuStack("eks-gpu", design)
for key, value in stack.outputs().items():
    pulumi.export(key, value)
