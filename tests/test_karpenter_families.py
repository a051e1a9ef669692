"""Issue 24: Karpenter pools chosen by instance family and GPU (``karpenter.instanceFamilies``, ``gpuName``,
``gpuCount``). The types a pool gets are computed here from moto's catalogue and AZ offerings (AWS's own
data, tests/aws_data.py), never typed in; the program reads the same data through the offline engine's
invokes."""

from __future__ import annotations

import itertools
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from eks_gpu.policy.cost import line_items
from eks_gpu.policy.pricing import price_table

from tests import aws_data, crds
from tests.helpers import REGION, config, gpu_pool, problems_of, run
from tests.test_karpenter_config import design_of, karpenter_config, karpenter_pool

NODE_POOL = "kubernetes:karpenter.sh/v1:NodePool"
TYPE_KEY = "node.kubernetes.io/instance-type"
ZONE_KEY = "topology.kubernetes.io/zone"
KEY = "eks-gpu:gpuNodeGroups.inference.karpenter"


def family_pool(**karpenter: Any) -> dict[str, Any]:
    """A Karpenter pool naming families (no ``instanceTypes``)."""
    pool = karpenter_pool(**({"efa": karpenter.pop("efa")} if "efa" in karpenter else {}))
    pool.pop("instanceTypes")
    pool["karpenter"] = karpenter
    return pool


def expected_types(
    region: str, families: set[str], count: int | None = None, name: str | None = None, arch: str = "x86_64"
) -> set[str]:
    """Every type of ``families`` offered in an AZ of ``region`` with NVIDIA GPUs of ``count`` and ``name``
    (Karpenter's label spelling: lower case, spaces as dashes)."""
    out = set()
    for itype in aws_data.offerings(region):
        record = aws_data.catalogue()[itype]
        gpus = record.get("GpuInfo", {}).get("Gpus", [])
        if itype.split(".")[0] not in families or len(gpus) != 1 or gpus[0]["Manufacturer"] != "NVIDIA":
            continue
        if gpus[0]["Count"] == 0 or arch not in record["ProcessorInfo"]["SupportedArchitectures"]:
            continue
        if (count is None or gpus[0]["Count"] == count) and (
            name is None or gpus[0]["Name"].lower().replace(" ", "-") == name
        ):
            out.add(itype)
    return out


def node_pool(cfg: dict[str, Any]) -> dict[str, Any]:
    (pool,) = run(cfg).of_type(NODE_POOL)
    return dict(pool.inputs)


def requirement(pool: dict[str, Any], key: str) -> list[str]:
    (values,) = [r["values"] for r in pool["spec"]["template"]["spec"]["requirements"] if r["key"] == key]
    return list(values)


@pytest.mark.parametrize("region", ["us-east-1", REGION])
def test_families_become_the_regions_types_of_one_gpu_shape(region: str) -> None:
    cfg = karpenter_config({"inference": family_pool(instanceFamilies=["g6", "gr6"], gpuCount=1)})
    cfg["aws:region"] = region
    pool = node_pool(cfg)
    types = requirement(pool, TYPE_KEY)
    assert set(types) == expected_types(region, {"g6", "gr6"}, count=1)
    assert len(types) >= 5  # not vacuous: g6 alone has five one-GPU sizes
    vcpus = [aws_data.catalogue()[t]["VCpuInfo"]["DefaultVCpus"] for t in types]
    assert vcpus == sorted(vcpus)  # smallest first, as a reviewer reads them
    assert crds.validate(pool) == []


def test_a_gpu_name_narrows_families_that_mix_models() -> None:
    cfg = karpenter_config({"inference": family_pool(instanceFamilies=["g6", "g6e"], gpuName="l40s", gpuCount=1)})
    types = requirement(node_pool(cfg), TYPE_KEY)
    assert set(types) == expected_types(REGION, {"g6", "g6e"}, count=1, name="l40s")
    assert {t.split(".")[0] for t in types} == {"g6e"}


def test_the_outputs_and_limits_of_a_family_pool_are_its_types() -> None:
    ran = run(karpenter_config({"inference": family_pool(instanceFamilies=["g6"], gpuCount=1)}))
    types = expected_types(REGION, {"g6"}, count=1)
    out = ran.outputs["gpuNodeGroups"]["inference"]
    assert (out["gpusPerNode"], out["gpuModel"]) == (1, "L4")
    (pool,) = ran.of_type(NODE_POOL)
    most_vcpus = max(aws_data.catalogue()[t]["VCpuInfo"]["DefaultVCpus"] for t in types)
    assert pool.inputs["spec"]["limits"] == {"nodes": "2", "nvidia.com/gpu": "2", "cpu": str(2 * most_vcpus)}


def test_an_efa_pool_keeps_only_types_with_efa() -> None:
    cfg = karpenter_config({"inference": family_pool(instanceFamilies=["g6"], gpuCount=1, efa=True)})
    types = requirement(node_pool(cfg), TYPE_KEY)
    with_efa = {
        t for t in expected_types(REGION, {"g6"}, count=1) if aws_data.catalogue()[t]["NetworkInfo"]["EfaSupported"]
    }
    assert set(types) == with_efa
    assert with_efa < expected_types(REGION, {"g6"}, count=1)  # the small sizes have no EFA: something was dropped


def test_a_pools_zones_are_those_offering_any_of_its_types() -> None:
    """Karpenter launches a type only in a zone that offers it (aws/karpenter-provider-aws
    ``pkg/providers/instancetype/offering/provider.go``, ``createOfferings``), so a pool is not confined to the
    zones offering every one of its types, as a managed node group is."""
    region = "us-east-1"
    offers = aws_data.offerings(region)
    types = expected_types(region, {"g6", "gr6", "g6e"}, count=1, name="l4")
    union = set().union(*(offers[t] for t in types))
    every = set.intersection(*(set(offers[t]) for t in types))
    assert every < union  # the catalogue has such a pool: gr6 is not offered in every zone g6 is
    azs = sorted(union - every)[:1] + sorted(every)[:1]
    cfg = karpenter_config({"inference": family_pool(instanceFamilies=["g6", "gr6"], gpuName="l4", gpuCount=1)})
    cfg["aws:region"] = region
    cfg["eks-gpu:vpc"] = {"cidr": "10.0.0.0/16", "availabilityZones": azs, "natGateways": "single"}
    assert requirement(node_pool(cfg), ZONE_KEY) == sorted(azs)


# --- refusals --------------------------------------------------------------------------------------


def shapes(region: str, families: set[str]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for t in expected_types(region, families):
        out.setdefault(aws_data.gpus(t)[0], []).append(t)
    return out


def test_families_of_several_gpu_counts_are_refused_with_each_shape() -> None:
    found = problems_of(karpenter_config({"inference": family_pool(instanceFamilies=["g6"])}))
    assert list(found) == [f"{KEY}.instanceFamilies"]
    message = found[f"{KEY}.instanceFamilies"]
    by_count = shapes(REGION, {"g6"})
    assert len(by_count) > 1
    for count, types in by_count.items():
        assert f"{count}x l4" in message
        assert all(t in message for t in types)
    assert "karpenter.gpuCount" in message


def test_families_of_several_gpu_models_are_refused() -> None:
    found = problems_of(karpenter_config({"inference": family_pool(instanceFamilies=["g6", "g6e"], gpuCount=1)}))
    message = found[f"{KEY}.instanceFamilies"]
    assert "1x l4 " in message and "1x l40s " in message and "gpuName" in message


def test_every_family_mistake_at_once_with_its_key() -> None:
    pools = {
        "typo": family_pool(instanceFamilies=["g4dnn"]),
        "nothing": family_pool(instanceFamilies=["g6"], gpuCount=3),
        "inferentia": family_pool(instanceFamilies=["inf2"]),
        "both": karpenter_pool(karpenter={"instanceFamilies": ["g6"], "gpuCount": 1}),
        "loose": karpenter_pool(karpenter={"gpuName": "l4"}),
        "none": {k: v for k, v in karpenter_pool().items() if k != "instanceTypes"},
    }
    found = problems_of(karpenter_config(pools))
    at = "eks-gpu:gpuNodeGroups"
    assert found[f"{at}.typo.karpenter.instanceFamilies[0]"].endswith("did you mean g4dn?")
    assert "no type left after karpenter.gpuCount" in found[f"{at}.nothing.karpenter.instanceFamilies"]
    assert found[f"{at}.inferentia.karpenter.instanceFamilies[0]"] == (
        f"'inf2' has no type with NVIDIA GPUs in {REGION}; a GPU pool needs them"
    )
    assert "give one" in found[f"{at}.both.karpenter.instanceFamilies"]
    assert "applies only with it" in found[f"{at}.loose.karpenter.gpuName"]
    assert found[f"{at}.none.instanceTypes"].startswith("is required (or karpenter.instanceFamilies")


def test_families_are_karpenters_only() -> None:
    found = problems_of(config({"inference": gpu_pool(karpenter={"instanceFamilies": ["g6"]})}))
    assert found["eks-gpu:gpuNodeGroups.inference.karpenter"] == "applies only with eks-gpu:provisioner: karpenter"
    pool = gpu_pool()
    pool.pop("instanceTypes")
    assert problems_of(config({"inference": pool}))["eks-gpu:gpuNodeGroups.inference.instanceTypes"] == "is required"


# --- cost at max: the dearest fleet within every limit -------------------------------------------


def test_cost_at_max_is_the_dearest_fleet_the_limits_allow() -> None:
    """docs/design-karpenter.md §6: Karpenter may fill a NodePool with any mix of its types within
    ``limits`` (nodes, ``nvidia.com/gpu``, ``cpu``: a type whose node would overrun one is dropped). The
    plan prices ``limits.nodes`` of the dearest type; a brute force over every mix within the limits the
    program sent finds nothing dearer (and reaches it: the limits never stop that fleet)."""
    region = "us-east-1"
    cfg = karpenter_config({"inference": family_pool(instanceFamilies=["g6", "gr6"], gpuCount=1) | {"maxSize": 3}})
    cfg["aws:region"] = region
    pool = node_pool(cfg)
    limits = pool["spec"]["limits"]
    prices = price_table()
    types = requirement(pool, TYPE_KEY)
    best = 0.0
    for n in range(int(limits["nodes"]) + 1):
        for fleet in itertools.combinations_with_replacement(types, n):
            gpus = sum(aws_data.gpus(t)[0] for t in fleet)
            cpus = sum(aws_data.catalogue()[t]["VCpuInfo"]["DefaultVCpus"] for t in fleet)
            if gpus <= int(limits["nvidia.com/gpu"]) and cpus <= int(limits["cpu"]):
                best = max(best, sum(prices.on_demand(region, t) or 0.0 for t in fleet))
    (item,) = [i for i in line_items([(NODE_POOL, pool)], region, prices, date(2026, 12, 5)) if "NodePool" in i.item]
    assert item.unit_usd_per_hour is not None
    assert item.unit_usd_per_hour * item.counts["max"] == pytest.approx(best)
    assert best > 3 * min(prices.on_demand(region, t) or 0.0 for t in types)  # the dearest, not any type


# --- zones: a type none of the pool's zones offers ---------------------------------------------------


def _pool_with_a_type_outside(region: str) -> tuple[str, str, list[str]]:
    """From the catalogue: two NVIDIA types of one GPU shape and family pair, and two AZs of ``region``
    that offer the first but never the second (so a NodePool there could never launch the second)."""
    offers = aws_data.offerings(region)
    azs = sorted({az for zones in offers.values() for az in zones})
    for a in sorted(expected_types(region, {"p5e", "p5en", "g6", "g6e", "gr6", "g5"})):
        for b in sorted(expected_types(region, {"p5e", "p5en", "g6", "g6e", "gr6", "g5"})):
            if a == b or aws_data.shape(a)[2:] != aws_data.shape(b)[2:]:
                continue
            without_b = [az for az in azs if az not in offers[b]]
            with_a = [az for az in without_b if az in offers[a]]
            if with_a and len(without_b) >= 2:
                return a, b, sorted({with_a[0], *[az for az in without_b if az != with_a[0]][:1]})
    raise AssertionError(f"no such pair in {region}")


def test_a_listed_type_offered_in_none_of_the_pools_zones_is_refused() -> None:
    a, b, azs = _pool_with_a_type_outside(REGION)
    cfg = karpenter_config({"inference": karpenter_pool(a, b)})
    cfg["eks-gpu:vpc"] = {"cidr": "10.0.0.0/16", "availabilityZones": azs, "natGateways": "single"}
    found = problems_of(cfg)
    assert list(found) == ["eks-gpu:gpuNodeGroups.inference.instanceTypes[1]"]
    zones = sorted(set(azs) & aws_data.offerings(REGION)[a])  # the VPC's AZs that offer a type of the pool
    assert found["eks-gpu:gpuNodeGroups.inference.instanceTypes[1]"].startswith(
        f"'{b}' is offered in none of the pool's AZs ({', '.join(zones)})"
    )


def test_a_familys_type_offered_in_none_of_the_pools_zones_is_left_out_with_a_note(tmp_path: Path) -> None:
    a, b, azs = _pool_with_a_type_outside(REGION)
    families = sorted({a.split(".")[0], b.split(".")[0]})
    count, model = aws_data.gpus(a)
    pool = family_pool(instanceFamilies=families, gpuCount=count, gpuName=model.lower().replace(" ", "-"))
    cfg = karpenter_config({"inference": pool})
    cfg["eks-gpu:vpc"] = {"cidr": "10.0.0.0/16", "availabilityZones": azs, "natGateways": "single"}
    types = requirement(node_pool(cfg), TYPE_KEY)
    offers = aws_data.offerings(REGION)
    assert a in types and b not in types
    assert all(offers[t] & set(azs) for t in types)
    notes = design_of(tmp_path, cfg)["notes"]
    assert any(b in note and "left out" in note for note in notes), notes


def test_family_mistakes_in_the_values_themselves() -> None:
    pools = {
        "typed": family_pool(instanceFamilies=["g6.xlarge"]),
        "upper": family_pool(instanceFamilies=["g6"], gpuName="L40S"),
        "efa": family_pool(instanceFamilies=["p5e", "p5en"], efa=True),
    }
    found = problems_of(karpenter_config(pools))
    at = "eks-gpu:gpuNodeGroups"
    assert "is an instance type, not a family" in found[f"{at}.typed.karpenter.instanceFamilies"]
    assert found[f"{at}.upper.karpenter.gpuName"].endswith("write l40s")
    # both have 8 H200s; their EFA layouts differ (one interface per network card), which an EFA pool cannot mix
    layouts = {
        t: aws_data.catalogue()[t]["NetworkInfo"]["EfaInfo"]["MaximumEfaInterfaces"]
        for t in ("p5e.48xlarge", "p5en.48xlarge")
    }
    assert len(set(layouts.values())) == 2
    message = found[f"{at}.efa.karpenter.instanceFamilies"]
    assert all(f"{n} EFA" in message for n in layouts.values()) and "one EFA layout" in message


def test_family_messages_name_each_family_and_what_narrowed_them() -> None:
    """Mutation testing found these unchecked: a family with no near name, a good family before a bad one,
    the message's list of families, and which keys left no type."""
    pools = {
        "far": family_pool(instanceFamilies=["g6", "zz9"]),
        "left": family_pool(instanceFamilies=["g6"], gpuCount=1, efa=True) | {"amiType": "AL2023_ARM_64_NVIDIA"},
        "two": family_pool(instanceFamilies=["g6", "g6e"]),
    }
    found = problems_of(karpenter_config(pools))
    at = "eks-gpu:gpuNodeGroups"
    assert found[f"{at}.far.karpenter.instanceFamilies[1]"] == f"'zz9' is no instance family {REGION} offers"
    assert found[f"{at}.left.karpenter.instanceFamilies"].startswith(
        f"g6 in {REGION}: no type left after amiType, efa, karpenter.gpuCount; their NVIDIA types are 1x l4 x86_64: "
    )
    assert found[f"{at}.two.karpenter.instanceFamilies"].startswith(f"g6, g6e in {REGION} give types of several")


def test_an_ami_type_keeps_the_families_types_of_its_architecture() -> None:
    """g5 (x86_64, A10G) and g5g (arm64, T4G): amiType AL2023_ARM_64_NVIDIA keeps g5g's one-GPU sizes."""
    pool = family_pool(instanceFamilies=["g5", "g5g"], gpuCount=1)
    pool["amiType"] = "AL2023_ARM_64_NVIDIA"
    types = requirement(node_pool(karpenter_config({"inference": pool})), TYPE_KEY)
    assert set(types) == expected_types(REGION, {"g5", "g5g"}, count=1, arch="arm64")
    assert {t.split(".")[0] for t in types} == {"g5g"}
