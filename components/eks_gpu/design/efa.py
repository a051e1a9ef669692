"""EFA for multi-node training pools: how many interfaces, on which network cards, in one AZ.

What ``pulumi up`` can ask AWS about a type (``aws.ec2.get_instance_type``): whether it supports EFA,
how many EFA interfaces it takes and how many network cards it has. The layout the program builds is
terraform-aws-eks's (``enable_efa_support`` with ``enable_efa_only``, its default): one interface per
network card, card 0 an EFA with an ENA (the node's IP address), every other card ``efa-only``
(RDMA only, no IP address to spend; needs VPC CNI 1.18.4 or later). That fits the types whose EFA
interfaces equal their network cards (p4d: 4 of 4, p5: 32 of 32, p5en: 16 of 16, g5.48xlarge: 1
of 1). A type whose first card has no EFA (p6-b300: 16 EFA on 17 cards) needs a layout the program
does not build, and is refused rather than guessed.
"""

from __future__ import annotations

from collections.abc import Sequence

from eks_gpu.config import CapacityType, GpuPool, Problem, key_path
from eks_gpu.design.lookup import InstanceFacts
from eks_gpu.design.model import EfaDesign


def efa_design(
    prefix: tuple[str, ...], pool: GpuPool, instances: Sequence[InstanceFacts], problems: list[Problem]
) -> EfaDesign | None:
    """The pool's EFA layout, or None (no ``efa``); problems name the pool's keys."""
    if not pool.efa:
        return None
    before = len(problems)
    for i, info in enumerate(instances):
        if not info.efa_supported:
            problems.append(
                Problem(
                    key_path(*prefix, "instanceTypes", i),
                    f"'{info.instance_type}' has no EFA, and eks-gpu:{'.'.join(prefix)}.efa is true: use a type "
                    "with EFA (p4d, p5, p5en, g5.48xlarge, g6e.48xlarge, ...) or set efa to false",
                )
            )
    layouts = {(i.efa_max_interfaces, i.network_cards) for i in instances if i.efa_supported}
    if len(layouts) > 1:
        shown = ", ".join(
            f"{i.instance_type}: {i.efa_max_interfaces} EFA on {i.network_cards} cards" for i in instances
        )
        problems.append(
            Problem(key_path(*prefix, "instanceTypes"), f"mixes EFA layouts ({shown}); an EFA pool has one")
        )
    for info in instances:
        if info.efa_supported and info.efa_max_interfaces != info.network_cards:
            problems.append(
                Problem(
                    key_path(*prefix, "instanceTypes"),
                    f"'{info.instance_type}' takes {info.efa_max_interfaces} EFA interfaces on {info.network_cards} "
                    "network cards: not every card has one, a layout this program does not build",
                )
            )
    if len(problems) > before:
        return None
    first = instances[0]
    return EfaDesign(
        interfaces=first.efa_max_interfaces,
        # A reservation (a Capacity Block, an On-Demand Capacity Reservation) already decides where its
        # instances are: a reservation serves launches into a cluster placement group only if it was
        # made in that group (EC2 User Guide, "Capacity Reservations in cluster placement groups"), and
        # this group is new, so forcing it would make the reserved launches fail (terraform-aws-eks PR
        # #3730). Such a pool gets no placement group; under Karpenter, a pool naming reservations
        # (karpenter.capacityReservationIds) neither, as its EC2NodeClass's group would hold every launch.
        placement_group=pool.capacity_type != CapacityType.CAPACITY_BLOCK
        and pool.capacity_reservation is None
        and not (pool.karpenter is not None and pool.karpenter.capacity_reservation_ids),
    )


def efa_az(prefix: tuple[str, ...], usable: tuple[str, ...], notes: list[str]) -> tuple[str, ...]:
    """An EFA pool lives in one AZ (EFA traffic does not cross AZs): the first of ``usable`` by name,
    said in a note, unless ``availabilityZone`` pinned it already."""
    if len(usable) <= 1:
        return usable
    notes.append(
        f"{key_path(*prefix)}: EFA pool placed in {usable[0]} (of {', '.join(usable)}); pin it with "
        f"{key_path(*prefix, 'availabilityZone')}"
    )
    return usable[:1]
