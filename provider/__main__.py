"""The eks-gpu component provider: serves ``eks-gpu:index:EksGpu`` (eks_gpu.component) to the Pulumi engine.

The language host runs this file with the engine's address as arguments; the schema it answers is
the one checked in beside it (schema.json, tests/test_component_package.py).
"""

import sys

from eks_gpu.component import EksGpuProvider
from pulumi.provider import main

if __name__ == "__main__":
    main(EksGpuProvider(), sys.argv[1:])
