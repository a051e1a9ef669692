"""AZ choice and subnet layout, on AWS's own offerings data."""

from __future__ import annotations

import ipaddress
import itertools

import pytest
from eks_gpu.design.placement import choose_azs, subnet_layout

from tests import aws_data

REGIONS = ("us-west-2", "us-east-1", "eu-west-1")


def needs(region: str, *pools: tuple[str, ...]) -> dict[str, frozenset[str]]:
    """Pool name -> AZs offering all its types, from AWS's data."""
    offers = aws_data.offerings(region)
    return {"+".join(p): frozenset.intersection(*(offers[t] for t in p)) for p in pools}


def available(region: str) -> list[str]:
    return sorted({az for azs in aws_data.offerings(region).values() for az in azs})


@pytest.mark.parametrize("region", REGIONS)
def test_every_pool_that_can_be_served_is_served(region: str) -> None:
    offers = aws_data.offerings(region)
    pools = [(t,) for t in ("g5.xlarge", "g6.xlarge", "p5.48xlarge", "p5e.48xlarge", "g6e.xlarge") if t in offers]
    want = needs(region, *pools)
    assert want and all(want.values())  # each pool is offered somewhere in the region
    assert len(available(region)) >= 3
    for count in range(2, len(available(region)) + 1):
        chosen = choose_azs(available(region), want, count)
        assert len(chosen) == count and list(chosen) == sorted(chosen)
        # each greedy step serves at least one more pool: with as many AZs as pools, all are served
        served = [name for name, azs in want.items() if set(chosen) & azs]
        assert len(served) >= min(count, len(want)), (region, count, chosen)


def test_scarce_type_pulls_its_only_az_in() -> None:
    offers = aws_data.offerings("us-west-2")
    scarce = sorted(t for t, azs in offers.items() if len(azs) == 1 and t.startswith("p"))[0]
    want = needs("us-west-2", (scarce,), ("g5.xlarge",))
    chosen = choose_azs(available("us-west-2"), want, 2)
    assert offers[scarce] <= set(chosen)
    assert set(chosen) & offers["g5.xlarge"]


def test_choice_is_stable_whatever_the_order_of_inputs() -> None:
    want = needs("us-west-2", ("g5.xlarge",), ("p5.48xlarge",), ("g6.xlarge",))
    azs = available("us-west-2")
    results = {choose_azs(list(order), want, 2) for order in itertools.permutations(azs)}
    assert len(results) == 1


@pytest.mark.parametrize(
    ("cidr", "region"), [("10.0.0.0/16", "us-west-2"), ("172.16.0.0/20", "us-east-1"), ("192.168.0.0/18", "eu-west-1")]
)
def test_subnet_layout_fits_the_vpc_without_overlap(cidr: str, region: str) -> None:
    azs = available(region)
    layout = subnet_layout(cidr, azs)
    vpc = ipaddress.IPv4Network(cidr)
    subnets = [ipaddress.IPv4Network(s) for s in (*layout.private, *layout.public)]
    assert len(layout.private) == len(layout.public) == len(azs)
    assert all(s.subnet_of(vpc) for s in subnets)
    assert not any(a.overlaps(b) for a, b in itertools.combinations(subnets, 2))
    assert all(s.prefixlen <= 28 for s in subnets)  # AWS's smallest subnet is a /28


@pytest.mark.parametrize("region", REGIONS)
def test_an_az_keeps_its_cidrs_whichever_azs_the_vpc_spans(region: str) -> None:
    azs = available(region)
    whole = subnet_layout("10.0.0.0/16", azs)
    slots = dict(zip(azs, zip(whole.private, whole.public, strict=True), strict=True))
    for count in range(2, len(azs) + 1):
        for subset in itertools.combinations(azs, count):
            layout = subnet_layout("10.0.0.0/16", subset)
            assert list(zip(layout.private, layout.public, strict=True)) == [slots[az] for az in subset]
