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
from eks_gpu.facts.versions import calendar
from eks_gpu.offline import load_stack_file, plan
from eks_gpu.policy.cost import NODE_GROUP, POOL_LABEL, complete, line_items, monthly, totals, unpriced
from eks_gpu.policy.pricing import HOURS_PER_MONTH, PRICES_FILE, load, price_table

from tests.helpers import PACKAGE_DIR

ROOT = Path(__file__).resolve().parent.parent
MOTO_EC2 = Path(moto.__file__).resolve().parent / "ec2" / "resources"

# The families the cluster runs its system nodes on (the GPU families come from moto's catalogue).
SYSTEM_FAMILIES = ("t3", "t3a", "t4g", "m5", "m6i", "m7i", "m6g", "m7g", "c5", "c6i", "c7i", "r5")

# NVIDIA types moto's catalogue offers in us-east-1 that Karpenter's table of 2026-02-09 does not
# list: the GPU table prices them there.
KARPENTER_LACKS_US_EAST_1 = frozenset(
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
    spec = importlib.util.spec_from_file_location("generate_prices", PACKAGE_DIR / "policy/data/generate_prices.py")
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
    assert "tsaol/aws-gpu" in table.gpu_source and "instances.vantage.sh" in table.gpu_source
    assert len({table.source, table.nat_source, table.gpu_source}) == 3
    for text in (table.source, table.nat_source, table.gpu_source):
        commits = [word for word in text.replace(",", " ").split() if len(word) == 40]
        assert len(commits) == 1 and re.fullmatch(r"[0-9a-f]{40}", commits[0]), f"no commit in {text!r}"
    generated = datetime.fromisoformat(table.date)
    assert generated.tzinfo is not None
    assert date.fromisoformat(table.nat_date) > date(2025, 1, 1)
    assert date.fromisoformat(table.gpu_date) > date(2025, 1, 1)
    # every price says where it comes from: Karpenter's table first, the GPU table where it lacks one
    assert table.on_demand_source("us-east-1", "g5.xlarge") == f"{table.source} ({table.date})"
    assert table.on_demand_source("us-east-1", "g7.2xlarge") == f"{table.gpu_source} ({table.gpu_date})"
    assert table.on_demand_source("eu-west-2", "g6.xlarge") == f"{table.gpu_source} ({table.gpu_date})"
    assert table.on_demand_source("eu-west-2", "m6i.large") is None


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
    lines = gen.GPU_FILE.read_text().splitlines()
    g5 = next(i for i, line in enumerate(lines) if '"apiName":"g5.xlarge"' in line)
    damaged = {
        "appears twice": [*lines, lines[g5]],
        "is not a region": [*lines[:g5], lines[g5].replace('"eu-west-2":', '"eu-west-2-wl1-lon1":'), *lines[g5 + 1 :]],
        "is not a price": [
            *lines[:g5],
            lines[g5].replace('"eu-west-2":1.277', '"eu-west-2":"1.277"'),
            *lines[g5 + 1 :],
        ],
        "not of the commit": [lines[0].replace("18aebd1d", "28aebd1d"), *lines[1:]],
        "not a GPU excerpt row": [*lines[:g5], lines[g5].replace('"gpu":', '"reserved":'), *lines[g5 + 1 :]],
    }
    for reason, changed in damaged.items():
        with pytest.raises(ValueError, match=reason):
            gen.parse_gpu(changed)
    _, karpenter = gen.parse_karpenter(text)
    _, gpu = gen.parse_gpu(lines)
    assert gen.check_overlap(karpenter, gpu) > 50  # the two tables share most us-east-1 GPU prices...
    off = {**gpu, "us-east-1": {**gpu["us-east-1"], "g5.xlarge": 1.007}}
    with pytest.raises(ValueError, match="disagree"):
        gen.check_overlap(karpenter, off)  # ...and a derivative that drifts from the Price List is refused


# The g5.4xlarge entry of the raw file, as stored (reserved prices and a Local Zone key included).
RAW_G5_4XLARGE = """{
    "name": "g5.4xlarge",
    "apiName": "g5.4xlarge",
    "gpu": "NVIDIA A10G",
    "gpuCount": 1,
    "gpuMemory": "24 GB GDDR6",
    "vcpu": 16,
    "memory": "64 GB",
    "network": "Up to 25 Gigabit",
    "storage": "600 GB SSD",
    "pricing": {
      "ap-east-1": {"onDemand": 2.50025, "reserved": 1.57516},
      "ap-northeast-1": {"onDemand": 2.35528, "reserved": 1.48383},
      "ap-northeast-2": {"onDemand": 1.99691, "reserved": 1.25805},
      "ap-south-1": {"onDemand": 1.95009, "reserved": 1.22856},
      "ap-southeast-2": {"onDemand": 2.11152, "reserved": 1.33026},
      "ap-southeast-3": {"onDemand": 2.27295, "reserved": 1.43196},
      "ca-central-1": {"onDemand": 1.80319, "reserved": 1.13601},
      "eu-central-1": {"onDemand": 2.03081, "reserved": 1.27941},
      "eu-north-1": {"onDemand": 1.72247, "reserved": 1.08516},
      "eu-south-2": {"onDemand": 1.71117},
      "eu-west-1": {"onDemand": 1.81287, "reserved": 1.14211},
      "eu-west-2": {"onDemand": 2.06148, "reserved": 1.29873},
      "eu-west-3": {"onDemand": 2.06148},
      "il-central-1": {"onDemand": 1.90352, "reserved": 1.19922},
      "me-central-1": {"onDemand": 1.99206, "reserved": 1.255},
      "sa-east-1": {"onDemand": 2.76048, "reserved": 1.7391},
      "us-east-1": {"onDemand": 1.624, "reserved": 1.02312},
      "us-east-2": {"onDemand": 1.624, "reserved": 1.02312},
      "us-west-2": {"onDemand": 1.624, "reserved": 1.02312},
      "us-west-2-lax-1": {"onDemand": 2.23098}
    },
    "generation": "current",
    "family": "GPU instance"
  }"""


def test_the_excerpt_rule_applied_to_a_raw_entry_gives_the_stored_row() -> None:
    """`excerpt_gpu` (what a maintainer runs on a fresh raw copy) gives back the stored row; types it
    is not asked for are left out."""
    gen = generator()
    lines = gen.GPU_FILE.read_text().splitlines()
    raw = "// Auto-generated\nconst allGPUInstances = [\n  " + RAW_G5_4XLARGE + "\n];\n"
    header = json.loads(lines[0])
    assert gen.excerpt_gpu(raw, frozenset({"g5.4xlarge"}), header).splitlines() == [
        lines[0],
        next(line for line in lines if '"apiName":"g5.4xlarge"' in line),
    ]
    assert gen.excerpt_gpu(raw, frozenset({"g5.xlarge"}), header).splitlines() == [lines[0]]


# ------------------------------------------------------------------------------ coverage


def test_on_demand_prices_cover_the_stack_files_regions() -> None:
    table = price_table()
    for stack in ("dev", "prod"):
        region = load_stack_file(ROOT / f"Pulumi.{stack}.yaml")["aws:region"]
        assert region in table.on_demand_regions, f"Pulumi.{stack}.yaml is in {region}, which the table lacks"


def test_every_nvidia_type_offered_in_us_east_1_has_a_price() -> None:
    table = price_table()
    wanted = nvidia_types() & offered("us-east-1")
    assert len(wanted) > 40  # the catalogue really lists GPU types here
    assert {t for t in wanted if table.on_demand("us-east-1", t) is None} == set()
    karpenter = table.on_demand_usd_per_hour["us-east-1"]
    assert {t for t in wanted if t not in karpenter} == KARPENTER_LACKS_US_EAST_1  # the GPU table fills these


def _pool(instance_type: str, capacity: str = "ON_DEMAND") -> tuple[str, dict[str, Any]]:
    """A node group as the program sends it, one node at every cost point."""
    props = {
        "labels": {POOL_LABEL: "pool"},
        "instanceTypes": [instance_type],
        "capacityType": capacity,
        "scalingConfig": {"minSize": 1, "desiredSize": 1, "maxSize": 1},
    }
    return NODE_GROUP, props


def test_every_nvidia_type_offered_in_every_region_is_priced_or_listed_unpriced() -> None:
    """moto's offerings in each of its commercial regions x the catalogue's NVIDIA types: the cost
    model prices the pair from the table, or says the total is incomplete and names it."""
    table = price_table()
    priced, listed = 0, []
    for region in moto_regions():
        for instance_type in sorted(nvidia_types() & offered(region)):
            (item,) = line_items([_pool(instance_type)], region, table, date(2026, 9, 1))
            price = table.on_demand(region, instance_type)
            assert item.unit_usd_per_hour == price
            if price is None:
                assert unpriced([item]) == [item.item] and not complete([item]) and instance_type in item.item
                listed.append((region, instance_type))
            else:
                assert complete([item]) and totals([item])["max"] == round(price, 4)
                priced += 1
    assert priced + len(listed) == sum(len(nvidia_types() & offered(r)) for r in moto_regions())
    # how far the bundled GPU table reaches (826 of 858 pairs with the 2026-08-26 snapshot)
    assert priced > 20 * len(listed), sorted(listed)
    assert len({r for r, _ in listed}) < len(moto_regions()) / 2


def test_the_system_node_types_have_prices_in_karpenters_region() -> None:
    table = price_table()
    for region in table.on_demand_usd_per_hour:
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


def test_the_dev_stack_idles_at_or_under_twenty_cents_an_hour() -> None:
    """The cost model (eks_gpu.policy.cost) over the resources the dev stack really registers:
    control plane, NAT gateway, system node and its volume, the GPU pool at zero; all priced."""
    done = plan.build(ROOT / "Pulumi.dev.yaml", today=calendar().updated)
    items = line_items(
        ((r["type"], r["inputs"]) for r in done["resources"]), done["region"], price_table(), calendar().updated
    )
    shown = ", ".join(f"{i.item} {i.usd_per_hour('idle')}" for i in items)
    assert complete(items), f"{done['region']}: no price for {unpriced(items)}"
    assert totals(items)["idle"] == done["cost"]["idleUsdPerHour"]  # what the plan prints
    assert totals(items)["idle"] <= 0.20, f"{done['region']}: {shown}"


# ------------------------------------------------------------------------------ the API


def test_unknown_region_or_type_gives_none() -> None:
    table = price_table()
    assert table.on_demand("us-east-1", "t3.medium") is not None
    assert table.on_demand("us-east-1", "t3.gigantic") is None
    assert table.on_demand("mars-north-1", "t3.medium") is None
    assert table.on_demand("US-EAST-1", "t3.medium") is None
    assert table.nat_gateway("mars-north-1") is None
    assert table.on_demand_regions <= set(moto_regions())  # the table lists only real commercial regions
    assert not any(r.startswith("us-gov-") for r in table.on_demand_regions)


def test_no_region_rents_a_gpu_type_for_less_than_us_east_1() -> None:
    """us-east-1 is the baseline of AWS list prices: a price under it is a misplaced digit."""
    table = price_table()
    compared = 0
    for region, types in table.gpu_on_demand_usd_per_hour.items():
        for instance_type, price in types.items():
            base = table.on_demand("us-east-1", instance_type)
            if base is not None and region != "us-east-1":
                assert round(price, 2) >= round(base, 2), (region, instance_type, price, base)
                assert price < 2 * base, (region, instance_type, price, base)
                compared += 1
    assert compared > 500


def test_monthly_is_730_hours() -> None:
    assert HOURS_PER_MONTH == 730
    assert monthly(1.0) == 730.0 and monthly(0.1) == 73.0 and monthly(21.957642) == 16029.08


def test_the_table_is_read_only() -> None:
    table = price_table()
    with pytest.raises(TypeError):
        table.on_demand_usd_per_hour["us-east-1"]["t3.medium"] = 0.0  # type: ignore[index]
    with pytest.raises(TypeError):
        table.nat_gateway_usd_per_hour["us-east-1"] = 0.0  # type: ignore[index]
    with pytest.raises(TypeError):
        table.gpu_on_demand_usd_per_hour["eu-west-2"]["g6.xlarge"] = 0.0  # type: ignore[index]


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
    zero = json.loads(PRICES_FILE.read_text())
    zero["gpuOnDemandUsdPerHour"]["eu-west-2"]["g6.xlarge"] = 0
    reasons = {
        "missing": r"not a price table \(KeyError\('natGatewayUsdPerHour'\)\)",
        "negative": "every price must be a positive number",
        "text": "every price must be a positive number",
        "zero": "every price must be a positive number",
    }
    for name, content in {"missing": missing, "negative": negative, "text": text, "zero": zero}.items():
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(content))
        with pytest.raises(ValueError, match=reasons[name]):
            load(path)


def test_the_gpu_excerpt_is_what_the_rule_makes_of_the_stored_raw_file(tmp_path: Path) -> None:
    """The raw file is the recorded one (sha256) and the excerpt is derived from it, not edited: a
    changed digit in either is refused."""
    gen = generator()
    gen.check_gpu_excerpt()  # as stored
    raw, excerpt = gen.GPU_RAW_FILE.read_text(), gen.GPU_FILE.read_text()
    price = next(m for m in re.finditer(r"\d+\.\d{3,}", excerpt.splitlines()[1]))
    edited = tmp_path / "excerpt.jsonl"
    line = excerpt.splitlines()[1]
    edited.write_text(excerpt.replace(line, line.replace(price.group(), price.group() + "1", 1), 1))
    vars(gen)["GPU_FILE"] = edited
    with pytest.raises(ValueError, match="is not the excerpt of"):
        gen.check_gpu_excerpt()
    changed = tmp_path / "raw.js"
    changed.write_text(raw.replace("0.", "1.", 1))
    vars(gen)["GPU_RAW_FILE"] = changed
    with pytest.raises(ValueError, match="is not the recorded raw file"):
        gen.check_gpu_excerpt()
