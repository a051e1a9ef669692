"""The CrossGuard policy pack ``eks-gpu``: ``pulumi preview --policy-pack policy``.

Only the assembly: each policy of :data:`validators.POLICIES` becomes a ``ResourceValidationPolicy``.
Constructing the ``PolicyPack`` serves the policies to the Pulumi CLI over gRPC and never returns, so
nothing imports this module; tests and the offline plan use :mod:`validators`.
"""

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    PolicyPack,
    ReportViolation,
    ResourceValidation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)
from validators import POLICIES, Policy


def _validate(policy: Policy) -> ResourceValidation:
    """CrossGuard's callback for ``policy``: it reports each violation message against the resource."""

    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        for message in policy.violations(args.resource_type, args.props, args.urn, args.get_config()):
            report_violation(message, None)

    return validate


PolicyPack(
    name="eks-gpu",
    policies=[
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
    ],
)
