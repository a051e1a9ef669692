"""The stack's budget as policy: its cost per hour at every node group's maxSize (and every Karpenter
NodePool's ``limits.nodes`` of its dearest allowed type), against ``eks-gpu:budget.maxUsdPerHour``.

Stack policies judge the whole stack at once (CrossGuard ``StackValidationPolicy``). The budget and
the region come from the stack component's inputs (``eks-gpu:stack:EksGpuStack``: ``budgetUsdPerHour``,
``region``); the cost is :mod:`eks_gpu.policy.cost`'s, the same model ``make plan`` prints. Over the budget is
mandatory, and so is a stack the bundled prices cannot price in full: an item without a price makes
the total a floor, and a floor cannot show that a budget holds. Over 80 % of the budget, and the list
of what the prices lack, are advisory. A budget is never passed silently.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from eks_gpu.policy.cost import line_items, totals, unpriced
from eks_gpu.policy.pricing import price_table
from eks_gpu.policy.validators import Level, Props, Violation

STACK_COMPONENT = "eks-gpu:stack:EksGpuStack"
HEADROOM = 0.8
"""Past this share of the budget, the advisory policy speaks."""

StackResource = tuple[str, Props, str]
"""(type, inputs, URN) of one resource of the stack."""
StackCheck = Callable[[Sequence[StackResource], date], list[tuple[str, str]]]


@dataclass(frozen=True)
class StackPolicy:
    """A CrossGuard stack policy: what it requires of the whole stack, how hard."""

    name: str
    description: str
    enforcement_level: Level
    check: StackCheck
    """(message, URN of the resource it is reported on) per violation."""


@dataclass(frozen=True)
class _Cost:
    budget: float
    max_usd_per_hour: float
    unpriced: list[str]
    region: str
    urn: str


def _cost(resources: Sequence[StackResource], today: date) -> _Cost | None:
    """The stack's max cost beside its budget; None when it has no budget."""
    stack = next(((props, urn) for type_, props, urn in resources if type_ == STACK_COMPONENT), None)
    if stack is None or stack[0].get("budgetUsdPerHour") is None:
        return None
    props, urn = stack
    region = str(props.get("region") or "")
    items = line_items(((t, p) for t, p, _ in resources), region, price_table(), today)
    return _Cost(float(props["budgetUsdPerHour"]), totals(items)["max"], unpriced(items), region, urn)


def _over_budget(resources: Sequence[StackResource], today: date) -> list[tuple[str, str]]:
    cost = _cost(resources, today)
    if cost is None:
        return []
    if cost.max_usd_per_hour > cost.budget:
        floor = " at least" if cost.unpriced else ""
        return [
            (
                f"at every node group's maxSize (and NodePool's node limit) the stack costs{floor} "
                f"${cost.max_usd_per_hour:.2f} per hour, over "
                f"eks-gpu:budget.maxUsdPerHour ${cost.budget:.2f}: lower maxSize, or raise the budget",
                cost.urn,
            )
        ]
    if cost.unpriced:
        return [
            (
                f"eks-gpu:budget.maxUsdPerHour ${cost.budget:.2f} cannot be shown to hold: the bundled prices have "
                f"none for {', '.join(cost.unpriced)} in {cost.region}, so the total is incomplete (the priced "
                f"items alone cost ${cost.max_usd_per_hour:.2f} per hour at maxSize); the budget cannot be "
                f"checked in {cost.region} until the bundled table has prices for those items: deploy "
                "without the budget here (remove it), or in a region the table prices completely",
                cost.urn,
            )
        ]
    return []


def _near_budget(resources: Sequence[StackResource], today: date) -> list[tuple[str, str]]:
    cost = _cost(resources, today)
    if cost is None:
        return []
    if cost.unpriced:  # stack-budget fails it (mandatory); this says what the prices lack
        return [
            (
                f"the plan's totals are floors: the bundled prices have none for {', '.join(cost.unpriced)} in "
                f"{cost.region} (priced: ${cost.max_usd_per_hour:.2f} per hour at maxSize)",
                cost.urn,
            )
        ]
    share = cost.max_usd_per_hour / cost.budget
    if HEADROOM * cost.budget < cost.max_usd_per_hour <= cost.budget:
        return [
            (
                f"at every node group's maxSize the stack costs ${cost.max_usd_per_hour:.2f} per hour, {share:.0%} "
                f"of eks-gpu:budget.maxUsdPerHour ${cost.budget:.2f}",
                cost.urn,
            )
        ]
    return []


STACK_BUDGET = StackPolicy(
    name="stack-budget",
    description=(
        "The stack's cost per hour at every node group's maxSize, priced in full, stays within "
        "eks-gpu:budget.maxUsdPerHour."
    ),
    enforcement_level="mandatory",
    check=_over_budget,
)
STACK_BUDGET_HEADROOM = StackPolicy(
    name="stack-budget-headroom",
    description="The stack's max cost per hour is under 80 % of its budget, and the bundled prices can price it.",
    enforcement_level="advisory",
    check=_near_budget,
)
STACK_POLICIES: tuple[StackPolicy, ...] = (STACK_BUDGET, STACK_BUDGET_HEADROOM)
"""Every stack policy of the pack."""


def evaluate_stack(
    resources: Sequence[tuple[str, Mapping[str, Any], str]], today: date | None = None
) -> list[Violation]:
    """Every stack-policy violation of ``resources`` ((type, inputs, URN) of each), as the pack reports them."""
    day = today or date.today()
    return [
        Violation(policy.name, policy.enforcement_level, message, urn)
        for policy in STACK_POLICIES
        for message, urn in policy.check(resources, day)
    ]
