"""The bundled price table (policy/pricing.py, policy/data/prices.json).

Prices are checked against things the table does not contain: AWS's instance catalogue and
per-region offerings shipped in moto (which GPU types exist where, and how many GPUs, vCPUs and
GiB each has), the stored source files the bundle is generated from, and the dev stack's config.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import re
import time
from collections.abc import Mapping
from datetime import date, datetime
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import moto
import pytest
from eks_gpu.offline import load_stack_file
from eks_gpu.policy.pricing import PRICES_FILE, PriceTable, load, price_table

ROOT = Path(__file__).resolve().parent.parent
MOTO_EC2 = Path(moto.__file__).resolve().parent / "ec2" / "resources"
CONTROL_PLANE_USD_PER_HOUR = 0.10
"""EKS pricing: a cluster's control plane in standard support."""

# The families the cluster runs its system nodes on (the GPU families come from moto's catalogue).
SYSTEM_FAMILIES = ("t3", "t3a", "t4g", "m5", "m6i", "m7i", "m6g", "m7g", "c5", "c6i", "c7i", "r5")

# NVIDIA types moto's catalogue offers in us-east-1 that Karpenter's table of 2026-02-09 does not
# list: the estimate prints "price unknown" for them until the table is refreshed.
UNPRICED_NVIDIA_US_EAST_1 = frozenset(
    {f"g7.{size}" for size in ("2xlarge", "4xlarge", "8xlarge", "12xlarge", "24xlarge", "48xlarge")}
    | {"p6-b300.48xlarge"}
)


@cache
def catalogue() -> Mapping[str, Any]:
    """moto's copy of EC2 DescribeInstanceTypes, by instance type."""
    with gzip.open(MOTO_EC2 / "instance_types.json.gz") as f:
        result: Mapping[str, Any] = json.load(f)
    return result


@cache
def offered(region: str) -> frozenset[str]:
    """The instance types moto's copy of DescribeInstanceTypeOfferings lists in `region`."""
    with gzip.open(MOTO_EC2 / "instance_type_offerings" / "region" / f"{region}.json.gz") as f:
        return frozenset(o["InstanceType"] for o in json.load(f))


def moto_regions() -> list[str]:
    return sorted(p.name.removesuffix(".json.gz") for p in (MOTO_EC2 / "instance_type_offerings" / "region").iterdir())


def gpus(instance_type: str, manufacturer: str = "NVIDIA") -> int | None:
    """GPUs of `manufacturer` in `instance_type` (0 for a fractional GPU), None if it has none."""
    found = [
        g for g in catalogue()[instance_type].get("GpuInfo", {}).get("Gpus", []) if g["Manufacturer"] == manufacturer
    ]
    return sum(g["Count"] for g in found) if found else None


def nvidia_types() -> frozenset[str]:
    return frozenset(t for t in catalogue() if gpus(t) is not None)


def resources(instance_type: str) -> tuple[int, int, int]:
    """(GPUs, vCPUs, MiB of memory) of an instance type, from moto's catalogue."""
    info = catalogue()[instance_type]
    return gpus(instance_type) or 0, info["VCpuInfo"]["DefaultVCpus"], info["MemoryInfo"]["SizeInMiB"]


def generator() -> ModuleType:
    """policy/data/generate_prices.py, imported from its path (policy/data is not a package)."""
    spec = importlib.util.spec_from_file_location(
        "generate_prices", ROOT / "components/eks_gpu/policy/data/generate_prices.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------------------------ provenance


def test_each_part_states_its_own_source_and_date() -> None:
    table = price_table()
    assert "aws/karpenter-provider-aws" in table.source
    assert "zz_generated.pricing_aws.go" in table.source
    assert "NAT" in table.nat_source
    assert table.source != table.nat_source
    for text in (table.source, table.nat_source):
        commits = [word for word in text.replace(",", " ").split() if len(word) == 40]
        assert len(commits) == 1 and re.fullmatch(r"[0-9a-f]{40}", commits[0]), f"no commit in {text!r}"
    generated = datetime.fromisoformat(table.date)
    assert generated.tzinfo is not None
    assert date.fromisoformat(table.nat_date) > date(2025, 1, 1)


def test_the_bundle_is_what_the_stored_sources_generate() -> None:
    """prices.json is not edited by hand: regenerating it from eks_gpu.policy/data/sources gives it back."""
    gen = generator()
    assert gen.render(gen.build()) == PRICES_FILE.read_text()
    assert gen.OUTPUT == PRICES_FILE


def test_the_generator_refuses_a_damaged_source() -> None:
    gen = generator()
    text = gen.KARPENTER_FILE.read_text()
    with pytest.raises(ValueError, match="parsed entries"):
        gen.parse_karpenter(text.replace('"t3.medium": 0.041600,', '"t3.medium": 0,041600,'))
    with pytest.raises(ValueError, match="appears twice"):
        gen.parse_karpenter(text.replace('"t3.micro":', '"t3.medium":'))


# ------------------------------------------------------------------------------ coverage


def test_on_demand_prices_cover_the_stack_files_regions() -> None:
    table = price_table()
    for stack in ("dev", "prod"):
        region = load_stack_file(ROOT / f"Pulumi.{stack}.yaml")["aws:region"]
        assert region in table.on_demand_regions, f"Pulumi.{stack}.yaml is in {region}, which the table lacks"


@pytest.mark.parametrize("region", sorted(price_table().on_demand_regions))
def test_every_nvidia_type_offered_in_the_region_has_a_price(region: str) -> None:
    table = price_table()
    wanted = nvidia_types() & offered(region)
    assert len(wanted) > 40  # the catalogue really lists GPU types here
    missing = {t for t in wanted if table.on_demand(region, t) is None}
    expected_gap = UNPRICED_NVIDIA_US_EAST_1 if region == "us-east-1" else frozenset()
    assert missing <= expected_gap, f"no price for {sorted(missing - expected_gap)} in {region}"


def test_the_system_node_types_have_prices() -> None:
    table = price_table()
    for region in table.on_demand_regions:
        for family in SYSTEM_FAMILIES:
            types = {t for t in offered(region) if t.split(".")[0] == family}
            assert types, family
            assert {t for t in types if table.on_demand(region, t) is None} == set(), (region, family)


def test_nat_gateway_prices_are_for_real_regions_and_plausible() -> None:
    table = price_table()
    regions = set(moto_regions())
    assert {"us-east-1", "us-west-2"} <= set(table.nat_gateway_usd_per_hour)
    for region, price in table.nat_gateway_usd_per_hour.items():
        assert region in regions, region
        assert 0.03 < price < 0.15, (region, price)  # a misplaced digit shows up here
    # no region is cheaper than us-east-1, the baseline of AWS list prices
    cheapest = min(table.nat_gateway_usd_per_hour.values())
    assert table.nat_gateway("us-east-1") == cheapest


# ------------------------------------------------------------------------------ consistency


def _families(region: str) -> list[str]:
    table = price_table()
    gpu_families = {t.split(".")[0] for t in nvidia_types() if table.on_demand(region, t) is not None}
    sizes = {f: [t for t in catalogue() if t.split(".")[0] == f and table.on_demand(region, t)] for f in gpu_families}
    # a family with one priced size (p4d, p5en, ...) has nothing to compare
    return sorted({f for f, types in sizes.items() if len(types) > 1} | set(SYSTEM_FAMILIES))


@pytest.mark.parametrize("family", _families("us-east-1"))
def test_within_a_family_more_of_everything_costs_more(family: str) -> None:
    """If one size has at least as many GPUs, vCPUs and GiB as another and more of one of them,
    it costs more (g5.24xlarge > g5.16xlarge; no constraint between g5.12xlarge, with 4 GPUs,
    and g5.16xlarge, with more vCPUs)."""
    region = "us-east-1"
    table = price_table()
    sizes = {t: table.on_demand(region, t) for t in catalogue() if t.split(".")[0] == family}
    priced = {t: p for t, p in sizes.items() if p is not None}
    assert len(priced) >= 2, family
    compared = 0
    for small, small_price in priced.items():
        for big, big_price in priced.items():
            a, b = resources(small), resources(big)
            if a != b and all(x <= y for x, y in zip(a, b, strict=True)):
                assert small_price < big_price, f"{small} {a} ${small_price} vs {big} {b} ${big_price}"
                compared += 1
    assert compared >= 1, family  # some size of the family has more of everything than another


def test_named_size_ladders() -> None:
    table = price_table()

    def price(instance_type: str) -> float:
        value = table.on_demand("us-east-1", instance_type)
        assert value is not None, instance_type
        return value

    ladders = [
        ["g5.xlarge", "g5.2xlarge", "g5.4xlarge", "g5.8xlarge", "g5.16xlarge"],
        ["g5.12xlarge", "g5.24xlarge", "g5.48xlarge"],
        ["g6.xlarge", "g6.2xlarge", "g6.4xlarge", "g6.8xlarge", "g6.16xlarge"],
        ["g4dn.xlarge", "g4dn.2xlarge", "g4dn.4xlarge", "g4dn.8xlarge", "g4dn.16xlarge"],
        ["t3.micro", "t3.small", "t3.medium", "t3.large", "t3.xlarge", "t3.2xlarge"],
        ["m5.large", "m5.xlarge", "m5.2xlarge", "m5.4xlarge"],
    ]
    for ladder in ladders:
        prices = [price(t) for t in ladder]
        assert prices == sorted(prices) and len(set(prices)) == len(prices), list(zip(ladder, prices, strict=True))
    assert price("p5.48xlarge") > price("g5.xlarge")
    assert price("p5.48xlarge") > price("p5.4xlarge")
    assert price("g6.xlarge") < price("g5.xlarge")  # an L4 rents for less than an A10G


# ------------------------------------------------------------------------------ the dev stack


def idle_cost(table: PriceTable, config: Mapping[str, Any], region: str) -> tuple[list[str], float | None]:
    """The hourly cost of a stack at rest in `region`: every node group at its minimum size,
    its NAT gateways and the EKS control plane; None if a part has no price."""
    parts = [f"control plane ${CONTROL_PLANE_USD_PER_HOUR}"]
    total: float | None = CONTROL_PLANE_USD_PER_HOUR
    vpc = config["eks-gpu:vpc"]
    nat_count = 1 if vpc.get("natGateways", "single") == "single" else len(vpc["availabilityZones"])
    groups = [config["eks-gpu:systemNodeGroup"], *config.get("eks-gpu:gpuNodeGroups", {}).values()]
    items = [("NAT gateway", nat_count, table.nat_gateway(region))]
    items += [
        (g["instanceTypes"][0], int(g["minSize"]), table.on_demand(region, g["instanceTypes"][0])) for g in groups
    ]
    for name, count, price in items:
        if count == 0:
            continue
        parts.append(f"{count} x {name} " + (f"${price}" if price is not None else "price unknown"))
        total = None if total is None or price is None else total + count * price
    return parts, total


def test_the_dev_stack_idles_at_or_under_twenty_cents_an_hour() -> None:
    config = load_stack_file(ROOT / "Pulumi.dev.yaml")
    region = config["aws:region"]
    parts, total = idle_cost(price_table(), config, region)
    assert total is not None, f"{region}: {' + '.join(parts)}"
    assert total <= 0.20, f"{region}: {' + '.join(parts)} = ${total:.4f}/h"


# ------------------------------------------------------------------------------ the API


def test_unknown_region_or_type_gives_none() -> None:
    table = price_table()
    assert table.on_demand("us-east-1", "t3.medium") is not None
    assert table.on_demand("us-east-1", "t3.gigantic") is None
    assert table.on_demand("mars-north-1", "t3.medium") is None
    assert table.on_demand("US-EAST-1", "t3.medium") is None
    assert table.nat_gateway("mars-north-1") is None
    unpriced = [region for region in moto_regions() if region not in table.on_demand_regions]
    assert len(unpriced) == len(moto_regions()) - len(table.on_demand_regions)  # the table lists only real regions
    assert unpriced  # the table covers fewer regions than AWS has: the loop below checks something
    for region in unpriced:
        assert table.on_demand(region, "t3.medium") is None, region


def test_the_table_is_read_only() -> None:
    table = price_table()
    with pytest.raises(TypeError):
        table.on_demand_usd_per_hour["us-east-1"]["t3.medium"] = 0.0  # type: ignore[index]
    with pytest.raises(TypeError):
        table.nat_gateway_usd_per_hour["us-east-1"] = 0.0  # type: ignore[index]


def test_load_is_fast_and_cached() -> None:
    timings = []
    for _ in range(5):
        start = time.perf_counter()
        load()
        timings.append(time.perf_counter() - start)
    assert max(timings) < 0.1, timings
    assert price_table() is price_table()


def test_load_refuses_a_file_that_is_not_a_price_table(tmp_path: Path) -> None:
    good = json.loads(PRICES_FILE.read_text())
    missing = dict(good)
    del missing["natGatewayUsdPerHour"]
    negative = json.loads(PRICES_FILE.read_text())
    negative["onDemandUsdPerHour"]["us-east-1"]["t3.medium"] = -1
    text = json.loads(PRICES_FILE.read_text())
    text["natGatewayUsdPerHour"]["us-east-1"] = "0.045"
    reasons = {
        "missing": r"not a price table \(KeyError\('natGatewayUsdPerHour'\)\)",
        "negative": "every price must be a positive number",
        "text": "every price must be a positive number",
    }
    for name, content in {"missing": missing, "negative": negative, "text": text}.items():
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(content))
        with pytest.raises(ValueError, match=reasons[name]):
            load(path)
