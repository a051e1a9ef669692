"""eks-gpu's CrossGuard policy pack: :mod:`eks_gpu.policy.validators` holds the policies, ``__main__.py`` serves them.

A package so that the project (tests, the offline plan) imports the policies as ``eks_gpu.policy.validators``;
the Pulumi CLI runs the folder itself, where ``__main__.py`` finds them as ``validators``.
"""
