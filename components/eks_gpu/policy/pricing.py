"""Bundled AWS prices for an offline cost estimate: on-demand EC2 and NAT gateway, USD per hour.

The table is `policy/data/prices.json`, built by `policy/data/generate_prices.py` from source
files stored verbatim in `policy/data/sources/`. It has two parts with their own source and date:

- on-demand Linux prices per region and instance type, from Karpenter's generated table
  (`source`, `date`); that table is generated for us-east-1 only, so other regions have none;
- the hourly price of a NAT gateway per region, from a snapshot of the AWS Price List
  (`nat_source`, `nat_date`).

A price the table does not hold is `None`, never a guess: the caller says "price unknown".

    from eks_gpu.policy.pricing import price_table
    table = price_table()
    table.on_demand("us-east-1", "g5.xlarge")  # 1.006
    table.nat_gateway("us-west-2")             # 0.045
    table.on_demand("us-west-2", "t3.medium")  # None: no us-west-2 on-demand data bundled
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

PRICES_FILE = Path(__file__).resolve().parent / "data" / "prices.json"


@dataclass(frozen=True)
class PriceTable:
    """Hourly USD list prices, read-only, each part labelled with where and when it comes from.

    `source` and `date` describe the on-demand instance prices (`date` is the generation time
    written in the source file); `nat_source` and `nat_date` describe the NAT gateway prices.
    Prices exclude tax, data transfer, NAT data processing and the public IPv4 address charge.
    """

    source: str
    date: str
    nat_source: str
    nat_date: str
    on_demand_usd_per_hour: Mapping[str, Mapping[str, float]] = field(repr=False)
    nat_gateway_usd_per_hour: Mapping[str, float] = field(repr=False)

    @property
    def on_demand_regions(self) -> frozenset[str]:
        """The regions with on-demand instance prices (elsewhere every `on_demand` is None)."""
        return frozenset(self.on_demand_usd_per_hour)

    def on_demand(self, region: str, instance_type: str) -> float | None:
        """USD per hour of one on-demand Linux instance of `instance_type` in `region`,
        or None if the table has no price for that pair (unknown region, or a type the
        source did not list there)."""
        return self.on_demand_usd_per_hour.get(region, {}).get(instance_type)

    def nat_gateway(self, region: str) -> float | None:
        """USD per hour of one NAT gateway provisioned in `region` (the hourly charge only,
        not the per-GB data processing), or None if the table has no price for the region."""
        return self.nat_gateway_usd_per_hour.get(region)


def load(path: Path = PRICES_FILE) -> PriceTable:
    """Read a price table file (the format `generate_prices.py` writes), uncached.

    Raises ValueError if the file lacks a part or holds a price that is not a positive number.
    """
    raw = json.loads(path.read_text())
    try:
        on_demand = raw["onDemandUsdPerHour"]
        nat = raw["natGatewayUsdPerHour"]
        table = PriceTable(
            source=str(raw["source"]),
            date=str(raw["date"]),
            nat_source=str(raw["natSource"]),
            nat_date=str(raw["natDate"]),
            on_demand_usd_per_hour=MappingProxyType(
                {region: MappingProxyType(dict(types)) for region, types in on_demand.items()}
            ),
            nat_gateway_usd_per_hour=MappingProxyType(dict(nat)),
        )
    except (KeyError, AttributeError, TypeError) as error:
        raise ValueError(f"{path}: not a price table ({error!r})") from error
    prices = [*table.nat_gateway_usd_per_hour.values()]
    for types in table.on_demand_usd_per_hour.values():
        prices.extend(types.values())
    if not all(isinstance(p, int | float) and not isinstance(p, bool) and p > 0 for p in prices):
        raise ValueError(f"{path}: every price must be a positive number")
    return table


@functools.cache
def price_table() -> PriceTable:
    """The bundled price table, read from `policy/data/prices.json` once per process."""
    return load()
