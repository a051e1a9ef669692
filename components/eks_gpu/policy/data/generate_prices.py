"""Build `prices.json` (the bundled price table read by `eks_gpu.policy.pricing`) from the source
files kept next to it in `sources/`, so the bundle can be regenerated and audited offline.

    .venv/bin/python policy/data/generate_prices.py          # rewrite prices.json
    .venv/bin/python policy/data/generate_prices.py --check  # exit 1 if prices.json is stale
    .venv/bin/python policy/data/generate_prices.py --gpu-excerpt-from all_gpu_instances.js
        # rewrite the GPU excerpt from a fresh copy of its raw file (store that copy as
        # sources/tsaol-aws-gpu-all_gpu_instances.js.txt, update GPU_RAW_SHA256, then rerun without arguments)

Sources (stored verbatim, or as an excerpt made by a stated rule; no price is typed in from elsewhere):

- `sources/karpenter-zz_generated.pricing_aws.go.txt`: Karpenter's generated table of on-demand
  Linux prices (`InitialOnDemandPricesAWS`), USD per instance-hour, the whole file as read. Its
  generator (hack/code/prices_gen/main.go) queries the AWS Price List for the `aws` partition in
  us-east-1 only, so the table has one region.
- `sources/tsaol-aws-gpu-nvidia-on-demand.jsonl`: on-demand Linux prices of GPU instance types in
  every region, USD per instance-hour, excerpted from `data/all_gpu_instances.js` of
  github.com/tsaol/aws-gpu, a table regenerated weekly by that repository's CI from
  instances.vantage.sh (the ec2instances.info dataset, itself built from the AWS Price List). The
  raw file is 164,623 characters; the excerpt keeps, by the rule in its first line, the entries of
  the NVIDIA types moto's EC2 catalogue knows and their per-region on-demand price
  (`excerpt_gpu` applies that rule to a raw copy; the raw file is stored beside it,
  `sources/tsaol-aws-gpu-all_gpu_instances.js.txt`, with its sha256, and `build` checks the
  excerpt is what the rule makes of it). Where Karpenter's table and this one both price
  a type in us-east-1 they must agree to the digit (`build` checks it): the derivative is checked
  against the AWS Price List's own rows wherever the two overlap. GovCloud keys are dropped (not a
  commercial region).
- `sources/togen-aws-nat-gateway-hours.jsonl`: the NAT gateway rows of a snapshot of the AWS Price
  List bulk offer files (AmazonEC2, usagetype `<prefix>-NatGateway-Hours`, OnDemand), one region a
  row, USD per NAT gateway-hour; its first line carries the snapshot's own header fields.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUTPUT = HERE / "prices.json"
KARPENTER_FILE = HERE / "sources" / "karpenter-zz_generated.pricing_aws.go.txt"
NAT_FILE = HERE / "sources" / "togen-aws-nat-gateway-hours.jsonl"
GPU_FILE = HERE / "sources" / "tsaol-aws-gpu-nvidia-on-demand.jsonl"
GPU_RAW_FILE = HERE / "sources" / "tsaol-aws-gpu-all_gpu_instances.js.txt"

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

GPU_SOURCE = (
    "github.com/tsaol/aws-gpu, data/all_gpu_instances.js at commit 18aebd1d72819fea767dd5b5f835114120b2ad39 "
    "(regenerated weekly from instances.vantage.sh, the ec2instances.info dataset built from the AWS Price "
    "List: on-demand Linux, USD per instance-hour; GPU instance types only)"
)
GPU_RAW_CHARS = 164_623
"""Length of the raw file the excerpt was taken from."""
GPU_RAW_SHA256 = "592076d8dc3745ab7604fa9245111c071907cb2908296f457cd6ba1bd4624490"
"""sha256 of the stored raw file's UTF-8 bytes (``GPU_RAW_FILE``). It was read page by page through a
public code index (no direct download here); two independent copies made that way give this file and
the same excerpt byte for byte. A maintainer with web access replaces it by a fresh download."""

_REGION_KEY = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-[0-9]+$")
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


def excerpt_gpu(raw: str, wanted: frozenset[str], header: dict[str, Any]) -> str:
    """The GPU excerpt (JSON lines) of a raw copy of `all_gpu_instances.js`, by the rule in `header`:
    the entries whose apiName is in `wanted`, in the file's order, with apiName, gpu, source (when
    present) and each region key's onDemand price."""
    start, end = raw.index("["), raw.rindex("]")
    lines = [json.dumps(header)]
    for entry in json.loads(raw[start : end + 1]):
        name = entry.get("apiName")
        if name not in wanted:
            continue
        row: dict[str, Any] = {"apiName": name, "gpu": entry["gpu"]}
        if "source" in entry:
            row["source"] = entry["source"]
        row["onDemand"] = {
            key: value["onDemand"]
            for key, value in entry["pricing"].items()
            if _REGION_KEY.match(key) and "onDemand" in value
        }
        lines.append(json.dumps(row, separators=(",", ":")))
    return "\n".join(lines) + "\n"


def parse_gpu(lines: list[str]) -> tuple[str, dict[str, dict[str, float]]]:
    """The date and `{commercial region: {instance type: USD/hour}}` of the GPU excerpt.

    Strict: the header must name the raw file this generator describes, every row must be an
    excerpt row (apiName, gpu, optional source, onDemand), a type may appear once, a key must name
    a region and a price must be a positive number.
    """
    header = json.loads(lines[0])
    if not header.get("_excerpt_of", "").endswith(GPU_SOURCE.split(" at commit ")[1].split(" ")[0]):
        raise ValueError(f"the GPU excerpt is not of the commit this generator names: {header.get('_excerpt_of')}")
    if header.get("_raw_chars") != GPU_RAW_CHARS:
        raise ValueError(f"the GPU excerpt's raw file has {header.get('_raw_chars')} characters, not {GPU_RAW_CHARS}")
    regions: dict[str, dict[str, float]] = {}
    seen: set[str] = set()
    for line in lines[1:]:
        if not line.strip():
            continue
        row = json.loads(line)
        if set(row) - {"apiName", "gpu", "source", "onDemand"} or not {"apiName", "gpu", "onDemand"} <= set(row):
            raise ValueError(f"not a GPU excerpt row: {line}")
        name = row["apiName"]
        if name in seen:
            raise ValueError(f"{name} appears twice")
        seen.add(name)
        for region, price in row["onDemand"].items():
            if not _REGION_KEY.match(region):
                raise ValueError(f"{name}: {region!r} is not a region")
            if isinstance(price, bool) or not isinstance(price, int | float) or price <= 0:
                raise ValueError(f"{name} in {region}: {price!r} is not a price")
            if region.startswith("us-gov-"):
                continue  # the aws-us-gov partition: not a commercial region
            regions.setdefault(region, {})[name] = float(price)
    return str(header["lastUpdated"]), {r: dict(sorted(t.items())) for r, t in sorted(regions.items())}


def check_overlap(karpenter: dict[str, dict[str, float]], gpu: dict[str, dict[str, float]]) -> int:
    """How many (region, type) pairs both tables price; ValueError if any two prices differ."""
    both = [(r, t) for r, types in gpu.items() for t in types if t in karpenter.get(r, {})]
    differ = [(r, t, karpenter[r][t], gpu[r][t]) for r, t in both if karpenter[r][t] != gpu[r][t]]
    if differ:
        raise ValueError(f"Karpenter's table and the GPU table disagree: {differ}")
    return len(both)


def check_gpu_excerpt() -> None:
    """The stored GPU excerpt is what the rule makes of the stored raw file, which is the one recorded."""
    raw_bytes = GPU_RAW_FILE.read_bytes()
    if hashlib.sha256(raw_bytes).hexdigest() != GPU_RAW_SHA256:
        raise ValueError(f"{GPU_RAW_FILE.name} is not the recorded raw file (sha256 differs)")
    raw = raw_bytes.decode()
    stored = GPU_FILE.read_text()
    header = json.loads(stored.splitlines()[0]) | {"_raw_chars": len(raw)}
    if excerpt_gpu(raw, _nvidia_types(), header) != stored:
        raise ValueError(f"{GPU_FILE.name} is not the excerpt of {GPU_RAW_FILE.name}: rerun --gpu-excerpt-from")


def build() -> dict[str, Any]:
    """The content of prices.json, from the source files."""
    date, on_demand = parse_karpenter(KARPENTER_FILE.read_text())
    check_gpu_excerpt()
    gpu_date, gpu = parse_gpu(GPU_FILE.read_text().splitlines())
    check_overlap(on_demand, gpu)
    nat_date, nat = parse_nat(NAT_FILE.read_text().splitlines())
    return {
        "source": KARPENTER_SOURCE,
        "date": date,
        "gpuSource": GPU_SOURCE,
        "gpuDate": gpu_date,
        "natSource": NAT_SOURCE,
        "natDate": nat_date,
        "onDemandUsdPerHour": on_demand,
        "gpuOnDemandUsdPerHour": gpu,
        "natGatewayUsdPerHour": nat,
    }


def render(table: dict[str, Any]) -> str:
    """prices.json as text: one price a line, so a refresh reads as a diff of prices."""
    return json.dumps(table, indent=1) + "\n"


def _nvidia_types() -> frozenset[str]:
    """The instance types moto's copy of EC2 DescribeInstanceTypes lists with an NVIDIA GPU."""
    import gzip

    import moto

    path = Path(moto.__file__).resolve().parent / "ec2" / "resources" / "instance_types.json.gz"
    with gzip.open(path) as f:
        types = json.load(f)
    return frozenset(
        name
        for name, info in types.items()
        if any(g.get("Manufacturer") == "NVIDIA" for g in (info.get("GpuInfo") or {}).get("Gpus", []))
    )


def main(argv: list[str]) -> int:
    if "--gpu-excerpt-from" in argv:
        raw = Path(argv[argv.index("--gpu-excerpt-from") + 1]).read_text()
        header = json.loads(GPU_FILE.read_text().splitlines()[0]) | {"_raw_chars": len(raw)}
        GPU_FILE.write_text(excerpt_gpu(raw, _nvidia_types(), header))
        print(f"wrote {GPU_FILE}: update GPU_SOURCE (commit), GPU_RAW_CHARS and the header's date, then rerun")
        return 0
    text = render(build())
    if "--check" in argv:
        if not OUTPUT.exists() or OUTPUT.read_text() != text:
            print(f"{OUTPUT} is stale: run {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text)
    table = json.loads(text)
    count = sum(len(types) for types in table["onDemandUsdPerHour"].values())
    gpu = sum(len(types) for types in table["gpuOnDemandUsdPerHour"].values())
    print(
        f"wrote {OUTPUT} ({OUTPUT.stat().st_size} bytes): {count} on-demand prices in "
        f"{sorted(table['onDemandUsdPerHour'])}, {gpu} GPU prices in {len(table['gpuOnDemandUsdPerHour'])} "
        f"regions, NAT prices in {len(table['natGatewayUsdPerHour'])} regions"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
