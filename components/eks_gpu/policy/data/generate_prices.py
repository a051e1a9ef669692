"""Build `prices.json` (the bundled price table read by `eks_gpu.policy.pricing`) from the two source
files kept next to it in `sources/`, so the bundle can be regenerated and audited offline.

    .venv/bin/python policy/data/generate_prices.py          # rewrite prices.json
    .venv/bin/python policy/data/generate_prices.py --check  # exit 1 if prices.json is stale

Sources (stored verbatim, nothing typed by hand):

- `sources/karpenter-zz_generated.pricing_aws.go.txt`: Karpenter's generated table of on-demand
  Linux prices (`InitialOnDemandPricesAWS`), USD per instance-hour, the whole file as read. Its
  generator (hack/code/prices_gen/main.go) queries the AWS Price List for the `aws` partition in
  us-east-1 only, so the table has one region.
- `sources/togen-aws-nat-gateway-hours.jsonl`: the NAT gateway rows of a snapshot of the AWS Price
  List bulk offer files (AmazonEC2, usagetype `<prefix>-NatGateway-Hours`, OnDemand), one region a
  row, USD per NAT gateway-hour; its first line carries the snapshot's own header fields.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUTPUT = HERE / "prices.json"
KARPENTER_FILE = HERE / "sources" / "karpenter-zz_generated.pricing_aws.go.txt"
NAT_FILE = HERE / "sources" / "togen-aws-nat-gateway-hours.jsonl"

KARPENTER_SOURCE = (
    "github.com/aws/karpenter-provider-aws, pkg/providers/pricing/zz_generated.pricing_aws.go at commit "
    "265ee0ba5b8e337dec6b82dde965b03021ccb418 (InitialOnDemandPricesAWS: on-demand Linux, shared tenancy, "
    "USD per instance-hour, from the AWS Price List; the generator covers us-east-1 only)"
)
NAT_SOURCE = (
    "github.com/mooncitizen/togen, internal/cost/prices/aws.json at commit "
    "36c1abbf17c7cd190fb02627aefb401567190523 (AWS Price List bulk offer AmazonEC2 20260904231117, "
    "productFamily NAT Gateway, usagetype *NatGateway-Hours, OnDemand, USD per NAT gateway-hour)"
)

_GENERATED_AT = re.compile(r"^// generated at (\S+) for (\S+)$", re.MULTILINE)
_REGION_BLOCK = re.compile(r'^\t"([a-z0-9-]+)": \{\n(.*?)^\t\},$', re.MULTILINE | re.DOTALL)
_ENTRY = re.compile(r'"([a-z0-9-]+\.[a-z0-9-]+)": ([0-9]+\.[0-9]+),')


def parse_karpenter(text: str) -> tuple[str, dict[str, dict[str, float]]]:
    """The generation timestamp and `{region: {instance type: USD/hour}}` of Karpenter's file.

    Strict: every quoted key in a region block must parse as `"type": price,`, and no type may
    appear twice, so a damaged copy fails here instead of silently losing prices.
    """
    header = _GENERATED_AT.search(text)
    if header is None:
        raise ValueError("no '// generated at <time> for <region>' line")
    if "var InitialOnDemandPricesAWS = map[string]map[ec2types.InstanceType]float64{" not in text:
        raise ValueError("no InitialOnDemandPricesAWS map")
    regions: dict[str, dict[str, float]] = {}
    for region, body in _REGION_BLOCK.findall(text):
        entries = _ENTRY.findall(body)
        if len(entries) != body.count('"') // 2:
            raise ValueError(f"{region}: {body.count(chr(34)) // 2} quoted keys but {len(entries)} parsed entries")
        prices: dict[str, float] = {}
        for instance_type, price in entries:
            if instance_type in prices:
                raise ValueError(f"{region}: {instance_type} appears twice")
            prices[instance_type] = float(price)
        regions[region] = dict(sorted(prices.items()))
    if not regions:
        raise ValueError("no region blocks")
    return header.group(1), regions


def parse_nat(lines: list[str]) -> tuple[str, dict[str, float]]:
    """The snapshot date and `{region: USD per NAT gateway-hour}` of the NAT excerpt."""
    header = json.loads(lines[0])
    prices: dict[str, float] = {}
    for line in lines[1:]:
        if not line.strip():
            continue
        row = json.loads(line)
        attributes = row["attributes"]
        if (
            row["service"] != "AmazonEC2"
            or attributes["productFamily"] != "NAT Gateway"
            or attributes["termType"] != "OnDemand"
            or not attributes["usagetype"].endswith("NatGateway-Hours")
            or row["unit"] != "Hrs"
        ):
            raise ValueError(f"not an on-demand NAT gateway-hour row: {line}")
        region = attributes["regionCode"]
        if region in prices:
            raise ValueError(f"{region} appears twice")
        prices[region] = float(row["price"])
    return str(header["date"]), dict(sorted(prices.items()))


def build() -> dict[str, Any]:
    """The content of prices.json, from the source files."""
    date, on_demand = parse_karpenter(KARPENTER_FILE.read_text())
    nat_date, nat = parse_nat(NAT_FILE.read_text().splitlines())
    return {
        "source": KARPENTER_SOURCE,
        "date": date,
        "natSource": NAT_SOURCE,
        "natDate": nat_date,
        "onDemandUsdPerHour": on_demand,
        "natGatewayUsdPerHour": nat,
    }


def render(table: dict[str, Any]) -> str:
    """prices.json as text: one price a line, so a refresh reads as a diff of prices."""
    return json.dumps(table, indent=1) + "\n"


def main(argv: list[str]) -> int:
    text = render(build())
    if "--check" in argv:
        if not OUTPUT.exists() or OUTPUT.read_text() != text:
            print(f"{OUTPUT} is stale: run {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text)
    table = json.loads(text)
    count = sum(len(types) for types in table["onDemandUsdPerHour"].values())
    print(
        f"wrote {OUTPUT} ({OUTPUT.stat().st_size} bytes): {count} on-demand prices in "
        f"{sorted(table['onDemandUsdPerHour'])}, NAT prices in {len(table['natGatewayUsdPerHour'])} regions"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
