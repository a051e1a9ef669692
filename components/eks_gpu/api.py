"""The Python API: build the eks-gpu stack inside any Pulumi program (README "Using it from your own program").

Three steps, each usable alone:

- :func:`read_stack_config`: the running stack's ``eks-gpu:*`` keys, as ``__main__.py`` reads them;
- :func:`design_stack`: a config (stack-file mapping, Python-named mapping or
  :class:`~eks_gpu.config.StackConfig`) checked and joined with what AWS says, every problem raised
  together as one :class:`~eks_gpu.config.ConfigError` naming its ``eks-gpu:`` key;
- :func:`build_stack`: the design built as one :class:`~eks_gpu.build.stack.EksGpuStack` component.

Whichever form the config takes, it goes through the same parser as a stack file, so the checks and
the error messages are the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

import pulumi
import pulumi_aws as aws

from eks_gpu.args import StackArgs
from eks_gpu.build.stack import EksGpuStack
from eks_gpu.config import StackConfig, read_pulumi_config
from eks_gpu.config.python_names import stack_file_form
from eks_gpu.design import StackDesign, load


def read_stack_config() -> dict[str, Any]:
    """Every ``eks-gpu:*`` key of the running stack (objects decoded from JSON), for :func:`build_stack`.

    Any Pulumi project can carry these keys in its stack file: the namespace is ``eks-gpu`` whatever
    the project is called (``pulumi config set --path 'eks-gpu:gpuNodeGroups.train.maxSize' 2``).
    """
    return read_pulumi_config()


def design_stack(
    config: StackArgs | StackConfig | Mapping[str, Any],
    *,
    stack: str | None = None,
    today: date | None = None,
) -> StackDesign:
    """Check ``config`` and decide everything the stack builds; raise every problem at once.

    ``config`` is a :class:`~eks_gpu.args.StackArgs` (the keys with their Python names, typed:
    ``{"gpu_node_groups": {...}}``), the stack file's keys without namespace (``{"gpuNodeGroups": {...}}``)
    or a :class:`StackConfig`. ``stack`` (default: the running stack) derives ``clusterName`` and
    ``environment`` when they are not set; ``today`` (default: today) dates the Kubernetes support check.

    The region and credentials are the default AWS provider's (``aws:region``, ``aws:profile``): the
    design's lookups (instance types, AZs, quotas, versions) run through it and the stack is built
    with it, so no parameter can make the two disagree.
    """
    return load(
        stack_file_form(config),
        stack=stack if stack is not None else pulumi.get_stack(),
        region=aws.config.region,
        today=today or date.today(),
        profile=aws.config.profile,
    )


def build_stack(
    name: str,
    config: StackArgs | StackConfig | Mapping[str, Any] | StackDesign,
    *,
    opts: pulumi.ResourceOptions | None = None,
    stack: str | None = None,
    today: date | None = None,
) -> EksGpuStack:
    """The whole eks-gpu stack as one component named ``name``, from ``config`` (see :func:`design_stack`).

    The design's warnings and notes go to the Pulumi log. Children are named ``f"{name}-..."``: keep
    ``name`` once resources exist (a new name is a new stack). ``opts`` apply to the component (a
    ``parent`` in your program, ``protect``, which every resource inherits). The stack is built with
    the default AWS provider, the one :func:`design_stack` looked through; a ``providers`` option is
    refused, as the design could not have asked the account it names. Its outputs are ``EksGpuStack.outputs()``, for
    ``pulumi.export`` or your own resources.
    """
    if opts is not None and (opts.provider is not None or opts.providers):
        raise pulumi.RunError(
            "build_stack: opts must not name providers: the stack is designed and built with the default "
            "AWS provider (aws:region, aws:profile) and makes its own Kubernetes provider"
        )
    design = config if isinstance(config, StackDesign) else design_stack(config, stack=stack, today=today)
    for warning in design.warnings:
        pulumi.log.warn(warning)
    for note in design.notes:
        pulumi.log.info(note)
    return EksGpuStack(name, design, opts)
