"""The CrossGuard policy pack ``eks-gpu``: ``pulumi preview --policy-pack policy``.

Only the assembly: each policy of :data:`validators.POLICIES` becomes a ``ResourceValidationPolicy``
and each of :data:`budget.STACK_POLICIES` a ``StackValidationPolicy``. Constructing the
``PolicyPack`` serves the policies to the Pulumi CLI over gRPC and never returns, so nothing imports
this module; tests and the offline plan use :mod:`validators` and :mod:`budget`.
"""

import sys
from pathlib import Path

# The pack runs from eks_gpu.policy/ with its own virtualenv; the cost model reads the project's bundled
# facts (components/facts: the EKS version calendar), so the project root goes on the path.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from eks_gpu.policy.budget import STACK_POLICIES, StackPolicy
from eks_gpu.policy.validators import POLICIES, Policy
from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    PolicyPack,
    ReportViolation,
    ResourceValidation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidation,
    StackValidationArgs,
    StackValidationPolicy,
)


def _validate(policy: Policy) -> ResourceValidation:
    """CrossGuard's callback for ``policy``: it reports each violation message against the resource."""

    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        for message in policy.violations(args.resource_type, args.props, args.urn, args.get_config()):
            report_violation(message, None)

    return validate


def _validate_stack(policy: StackPolicy) -> StackValidation:
    """CrossGuard's callback for a stack policy: every resource of the stack, judged at once."""

    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        from datetime import date

        resources = [(r.resource_type, r.props, r.urn) for r in args.resources]
        for message, urn in policy.check(resources, date.today()):
            report_violation(message, urn)

    return validate


PolicyPack(
    name="eks-gpu",
    policies=[
        *(
            ResourceValidationPolicy(
                name=policy.name,
                description=policy.description,
                enforcement_level=EnforcementLevel(policy.enforcement_level),
                config_schema=(
                    PolicyConfigSchema(properties={key: dict(schema) for key, schema in policy.config_schema.items()})
                    if policy.config_schema
                    else None
                ),
                validate=_validate(policy),
            )
            for policy in POLICIES
        ),
        *(
            StackValidationPolicy(
                name=policy.name,
                description=policy.description,
                enforcement_level=EnforcementLevel(policy.enforcement_level),
                validate=_validate_stack(policy),
            )
            for policy in STACK_POLICIES
        ),
    ],
)
