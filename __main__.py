"""eks-gpu: EKS with GPU managed node groups, sized by stack config.

The program is one consumer of the ``eks_gpu`` package (components/eks_gpu): it reads the stack's
``eks-gpu:*`` keys, builds the stack and exports its outputs. README "Using it from your own program"
does the same inside a larger program.
"""

import eks_gpu
import pulumi

stack = eks_gpu.build_stack("eks-gpu", eks_gpu.read_stack_config())
for key, value in stack.outputs().items():
    pulumi.export(key, value)
