"""Bundled AWS prices for an offline cost estimate: on-demand EC2 and NAT gateway, USD per hour.

The table is `policy/data/prices.json`, built by `policy/data/generate_prices.py` from source
files stored in `policy/data/sources/`. Each part has its own source and date:

- on-demand Linux prices of every instance type in us-east-1, from Karpenter's generated table
  (`source`, `date`), which is generated from the AWS Price List for that one region;
- on-demand Linux prices of GPU instance types in every commercial region, from a weekly snapshot
  of the ec2instances.info dataset (`gpu_source`, `gpu_date`); it agrees with Karpenter's table on
  every us-east-1 price the two share (the generator refuses to build otherwise);
- the hourly price of a NAT gateway per region, from a snapshot of the AWS Price List
  (`nat_source`, `nat_date`).

A price the table does not hold is `None`, never a guess: the caller says "price unknown" and the
total that needs it is incomplete. Outside us-east-1 that is the case for every non-GPU type.

    from eks_gpu.policy.pricing import price_table
    table = price_table()
    table.on_demand("us-east-1", "g5.xlarge")       # 1.006 (Karpenter)
    table.on_demand("eu-west-2", "g6.xlarge")       # 1.0216 (GPU table)
    table.on_demand("eu-west-2", "m6i.large")       # None: no non-GPU prices outside us-east-1
    table.on_demand_source("eu-west-2", "g6.xlarge")  # "<gpu_source> (<gpu_date>)"
    table.nat_gateway("us-west-2")                  # 0.045
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

PRICES_FILE = Path(__file__).resolve().parent / "data" / "prices.json"
HOURS_PER_MONTH = 730
"""The month AWS's price pages and calculator use (8,760 hours a year / 12)."""


@dataclass(frozen=True)
class PriceTable:
    """Hourly USD list prices, read-only, each part labelled with where and when it comes from.

    `source` and `date` describe Karpenter's us-east-1 on-demand prices (`date` is the generation
    time written in the source file); `gpu_source` and `gpu_date` the per-region GPU prices;
    `nat_source` and `nat_date` the NAT gateway prices. Prices exclude tax, data transfer, NAT data
    processing and the public IPv4 address charge.
    """

    source: str
    date: str
    nat_source: str
    nat_date: str
    on_demand_usd_per_hour: Mapping[str, Mapping[str, float]] = field(repr=False)
    nat_gateway_usd_per_hour: Mapping[str, float] = field(repr=False)
    gpu_source: str = ""
    gpu_date: str = ""
    gpu_on_demand_usd_per_hour: Mapping[str, Mapping[str, float]] = field(
        default_factory=lambda: MappingProxyType({}), repr=False
    )

    @property
    def on_demand_regions(self) -> frozenset[str]:
        """The regions with some on-demand instance price (elsewhere every `on_demand` is None)."""
        return frozenset(self.on_demand_usd_per_hour) | frozenset(self.gpu_on_demand_usd_per_hour)

    def on_demand(self, region: str, instance_type: str) -> float | None:
        """USD per hour of one on-demand Linux instance of `instance_type` in `region`, or None if
        no part of the table prices that pair (unknown region, or a type its sources do not list
        there). Karpenter's table answers first, the GPU table second."""
        price = self.on_demand_usd_per_hour.get(region, {}).get(instance_type)
        return price if price is not None else self.gpu_on_demand_usd_per_hour.get(region, {}).get(instance_type)

    def on_demand_source(self, region: str, instance_type: str) -> str | None:
        """Where `on_demand(region, instance_type)` comes from, "<source> (<date>)"; None if unpriced."""
        if instance_type in self.on_demand_usd_per_hour.get(region, {}):
            return f"{self.source} ({self.date})"
        if instance_type in self.gpu_on_demand_usd_per_hour.get(region, {}):
            return f"{self.gpu_source} ({self.gpu_date})"
        return None

    def nat_gateway(self, region: str) -> float | None:
        """USD per hour of one NAT gateway provisioned in `region` (the hourly charge only,
        not the per-GB data processing), or None if the table has no price for the region."""
        return self.nat_gateway_usd_per_hour.get(region)


def _frozen(table: Mapping[str, Mapping[str, float]]) -> Mapping[str, Mapping[str, float]]:
    return MappingProxyType({region: MappingProxyType(dict(types)) for region, types in table.items()})


def load(path: Path = PRICES_FILE) -> PriceTable:
    """Read a price table file (the format `generate_prices.py` writes), uncached.

    Raises ValueError if the file lacks a part or holds a price that is not a positive number.
    """
    raw = json.loads(path.read_text())
    try:
        table = PriceTable(
            source=str(raw["source"]),
            date=str(raw["date"]),
            nat_source=str(raw["natSource"]),
            nat_date=str(raw["natDate"]),
            on_demand_usd_per_hour=_frozen(raw["onDemandUsdPerHour"]),
            nat_gateway_usd_per_hour=MappingProxyType(dict(raw["natGatewayUsdPerHour"])),
            gpu_source=str(raw["gpuSource"]),
            gpu_date=str(raw["gpuDate"]),
            gpu_on_demand_usd_per_hour=_frozen(raw["gpuOnDemandUsdPerHour"]),
        )
    except (KeyError, AttributeError, TypeError) as error:
        raise ValueError(f"{path}: not a price table ({error!r})") from error
    prices = [*table.nat_gateway_usd_per_hour.values()]
    for part in (table.on_demand_usd_per_hour, table.gpu_on_demand_usd_per_hour):
        for types in part.values():
            prices.extend(types.values())
    if not all(isinstance(p, int | float) and not isinstance(p, bool) and p > 0 for p in prices):
        raise ValueError(f"{path}: every price must be a positive number")
    return table


@functools.cache
def price_table() -> PriceTable:
    """The bundled price table, read from `policy/data/prices.json` once per process."""
    return load()
