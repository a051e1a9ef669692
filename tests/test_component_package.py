"""The component package (provider/, eks_gpu.component): its args and schema come from the config
models and cannot drift; its provider builds the stack from what a YAML program sends."""

from __future__ import annotations

import json
import re
import types
import typing
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Literal

import pytest
import yaml
from eks_gpu import args_gen
from eks_gpu.component import schema, schema_path
from eks_gpu.config.models import StackConfig
from eks_gpu.offline import ProgramRun, run_program
from google.protobuf import struct_pb2
from pulumi.provider.experimental.util import camel_case
from pulumi.runtime import rpc
from pydantic import BaseModel

from tests.helpers import CLIENT_CIDR, PACKAGE_DIR, REGION, ROOT

SCHEMA = json.loads((ROOT / "provider" / "schema.json").read_text())
EKS_GPU = SCHEMA["resources"]["eks-gpu:index:EksGpu"]
EXAMPLE = yaml.safe_load((ROOT / "examples" / "yaml" / "Pulumi.yaml").read_text())


def test_args_are_generated_from_the_models() -> None:
    checked_in = (PACKAGE_DIR / "args.py").read_text()
    assert checked_in == args_gen.generate(), (
        "components/eks_gpu/args.py is stale: run .venv/bin/python -m eks_gpu.args_gen > components/eks_gpu/args.py"
    )


def test_schema_is_the_one_pulumi_generates() -> None:
    assert schema() == SCHEMA, (
        "provider/schema.json is stale: run .venv/bin/python -m eks_gpu.component > provider/schema.json"
    )


# --- every config key in the schema, with its type -------------------------------------------


def _type_ref(prop: dict[str, Any]) -> dict[str, Any]:
    """The schema type a property's ``$ref`` names."""
    return SCHEMA["types"][prop["$ref"].removeprefix("#/types/")]


def _expect(annotation: Any, prop: dict[str, Any], where: str) -> None:
    """``prop`` (a schema property) has the type the model's ``annotation`` allows."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Annotated:
        return _expect(args[0], prop, where)
    if origin in (typing.Union, types.UnionType):
        members = [a for a in args if a is not type(None)]
        models = [typing.get_args(a)[0] if typing.get_origin(a) is Annotated else a for a in members]
        if len(members) > 1 and all(isinstance(m, type) and issubclass(m, BaseModel) for m in models):
            # the VPC's two forms: one type with the keys of both
            _expect_object(models, _type_ref(prop), where)
            return None
        if len(members) > 1:
            assert prop.get("$ref") == "pulumi.json#/Any", where
            return None
        return _expect(members[0], prop, where)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        _expect_object([annotation], _type_ref(prop), where)
    elif (isinstance(annotation, type) and issubclass(annotation, Enum)) or origin is Literal or annotation is str:
        assert prop.get("type") == "string", where
    elif annotation in (int, float, bool):
        assert prop.get("type") == {int: "integer", float: "number", bool: "boolean"}[annotation], where
    elif origin in (tuple, list):
        assert prop.get("type") == "array", where
        _expect(args[0], prop["items"], f"{where}[]")
    elif origin is dict:
        assert prop.get("type") == "object" and args[0] is str, where
        _expect(args[1], prop["additionalProperties"], f"{where}.*")
    else:
        raise AssertionError(f"{where}: no schema type expected for {annotation!r}")
    return None


def _expect_object(models: list[type[BaseModel]], props: dict[str, Any], where: str) -> None:
    """The schema object has exactly the models' fields, each with the field's type."""
    properties = props.get("properties", props)
    fields = {camel_case(n): f for m in models for n, f in m.model_fields.items()}
    assert set(properties) == set(fields), where
    for name, field in fields.items():
        _expect(field.annotation, properties[name], f"{where}.{name}")
        assert properties[name].get("description"), f"{where}.{name} has no description"


def test_every_config_key_is_an_input_of_its_type() -> None:
    _expect_object([StackConfig], EKS_GPU["inputProperties"], "EksGpu")
    assert not EKS_GPU.get("requiredInputs"), "the parser, not the schema, says what is required"


def test_inputs_are_plain() -> None:
    """The stack is designed from plain values: no input takes an output of another resource."""
    assert all(p.get("plain") for p in EKS_GPU["inputProperties"].values())


def test_a_config_key_is_named_as_the_schema_names_it() -> None:
    assert schema_path("eks-gpu:gpuNodeGroups.train.diskSizeGiB") == "gpuNodeGroups.train.diskSizeGib"
    assert schema_path("eks-gpu:gpuNodeGroups.train.taints[1].effect") == "gpuNodeGroups.train.taints[1].effect"
    assert schema_path("eks-gpu:addons.vpc-cni.version") == "addons.vpcCni.version"
    assert schema_path("eks-gpu:vpc.privateSubnetIds") == "vpc.privateSubnetIds"


# --- the YAML example --------------------------------------------------------------------------


def _check_yaml(value: Any, prop: dict[str, Any], where: str) -> None:
    """A YAML value against its schema property: names and types."""
    if "$ref" in prop:
        assert isinstance(value, dict), where
        properties = _type_ref(prop)["properties"]
        for key, item in value.items():
            assert key in properties, f"{where}.{key} is not in the schema"
            _check_yaml(item, properties[key], f"{where}.{key}")
    elif prop["type"] == "array":
        assert isinstance(value, list), where
        for i, item in enumerate(value):
            _check_yaml(item, prop["items"], f"{where}[{i}]")
    elif prop["type"] == "object":
        assert isinstance(value, dict), where
        for key, item in value.items():
            _check_yaml(item, prop["additionalProperties"], f"{where}.{key}")
    else:
        python: dict[str, type | tuple[type, ...]] = {
            "string": str,
            "integer": int,
            "number": (int, float),
            "boolean": bool,
        }
        expected = python[prop["type"]]
        assert isinstance(value, expected) and not (prop["type"] == "integer" and isinstance(value, bool)), where


def _example_resource() -> dict[str, Any]:
    (resource,) = EXAMPLE["resources"].values()
    return resource


def test_the_yaml_example_uses_the_schema() -> None:
    resource = _example_resource()
    assert resource["type"] == "eks-gpu:index:EksGpu"
    assert EXAMPLE["packages"]["eks-gpu"] == "../../provider"
    assert (ROOT / "examples" / "yaml" / EXAMPLE["packages"]["eks-gpu"] / "PulumiPlugin.yaml").is_file()
    for key, value in resource["properties"].items():
        assert key in EKS_GPU["inputProperties"], f"{key} is not an input of EksGpu"
        _check_yaml(value, EKS_GPU["inputProperties"][key], key)
    for expression in EXAMPLE["outputs"].values():
        (output,) = re.fullmatch(r"\$\{gpu\.(\w+)\}", expression).groups()  # type: ignore[union-attr]
        assert output in EKS_GPU["properties"]


def test_the_plugin_pins_what_the_program_pins() -> None:
    def pins(path: Path) -> set[str]:
        return {line for line in path.read_text().splitlines() if "==" in line}

    assert pins(ROOT / "provider" / "requirements.txt") == pins(ROOT / "requirements.txt")


# --- the provider's construct, offline ---------------------------------------------------------


def _wire(properties: dict[str, Any]) -> dict[str, Any]:
    """``properties`` as a provider receives them: through a protobuf ``Struct`` (numbers become
    floats) and the SDK's deserialisation (pulumi ``provider/server.py`` _construct_inputs)."""
    struct = struct_pb2.Struct()
    struct.update(properties)
    return dict(rpc.deserialize_properties(struct, keep_unknowns=True))


CONSTRUCT = """
import json
import pulumi
from eks_gpu.build.stack import EksGpuStack
from eks_gpu.component import EksGpuProvider
from pulumi.errors import InputPropertiesError

# What the stack itself returned, to compare with what the provider answers.
stack_outputs = []
outputs = EksGpuStack.outputs
EksGpuStack.outputs = lambda self: stack_outputs.append(sorted(outputs(self))) or outputs(self)

try:
    result = EksGpuProvider().construct("gpu", "eks-gpu:index:EksGpu", json.loads({inputs!r}), None)
except InputPropertiesError as error:
    pulumi.export("error", {{"message": error.message, "errors": error.errors}})
else:
    pulumi.export("urn", result.urn)
    pulumi.export("state", result.state)
    pulumi.export("kubeconfig", result.state["kubeconfig"])
    pulumi.export("stackOutputs", stack_outputs[0])
"""


def _construct(tmp_path: Path, properties: dict[str, Any]) -> ProgramRun:
    program = tmp_path / "__main__.py"
    program.write_text(CONSTRUCT.format(inputs=json.dumps(_wire(properties))))
    return run_program({"aws:region": REGION}, project="eks-gpu-yaml", program=program, project_file=None)


def _example_properties() -> dict[str, Any]:
    text = json.dumps(_example_resource()["properties"]).replace("${deployerCidr}", CLIENT_CIDR)
    return typing.cast(dict[str, Any], json.loads(text))


@pytest.fixture(scope="module")
def example_run(tmp_path_factory: pytest.TempPathFactory) -> ProgramRun:
    return _construct(tmp_path_factory.mktemp("construct"), _example_properties())


def test_the_provider_builds_the_yaml_example(example_run: ProgramRun) -> None:
    component = example_run.one("eks-gpu:index:EksGpu")
    assert example_run.outputs["urn"] == component.urn
    (stack,) = example_run.of_type("eks-gpu:stack:EksGpuStack")
    assert stack.parent == component.urn and stack.urn.endswith("::gpu")
    pool = example_run.one("aws:eks/nodeGroup:NodeGroup", "-inference-ng").inputs
    assert pool["instanceTypes"] == ["g5.xlarge"]
    assert pool["scalingConfig"]["maxSize"] == 2
    templates = [r for r in example_run.of_type("aws:ec2/launchTemplate:LaunchTemplate") if "inference" in r.name]
    sizes = [m["ebs"]["volumeSize"] for t in templates for m in t.inputs.get("blockDeviceMappings", [])]
    assert sizes == [200], "diskSizeGib arrived as 200.0 and was built as the int the config model wants"
    assert example_run.one("eks:index:Cluster").inputs["tags"]["team"] == "ml-platform"


def test_the_provider_answers_the_stacks_outputs(example_run: ProgramRun) -> None:
    state = example_run.outputs["state"]
    assert set(EKS_GPU["properties"]) == set(example_run.outputs["stackOutputs"])
    assert set(EKS_GPU["required"]) <= set(state) <= set(EKS_GPU["properties"])
    assert state["gpuNodeGroups"]["inference"]["nodeSelector"] == {"eks-gpu/node-group": "inference"}
    assert set(state["gpuNodeGroups"]["inference"]) <= set(
        SCHEMA["types"]["eks-gpu:index:GpuPoolOutputs"]["properties"]
    )
    assert state["vpcId"] == example_run.one("aws:ec2/vpc:Vpc").id
    assert "kubeconfig" in example_run.secret_outputs


def test_a_config_error_is_an_input_error_naming_the_properties(tmp_path: Path) -> None:
    properties = _example_properties()
    pool = properties["gpuNodeGroups"]["inference"]
    pool["diskSizeGib"] = 5
    pool["taints"][0]["effect"] = "NoSchedule"
    run = _construct(tmp_path, properties)
    error = run.outputs["error"]
    assert error["message"] == "gpu: the eks-gpu configuration has 2 problems"
    reasons = {e["property_path"]: e["reason"] for e in error["errors"]}
    assert set(reasons) == {"gpuNodeGroups.inference.diskSizeGib", "gpuNodeGroups.inference.taints[0].effect"}
    assert "NO_SCHEDULE" in reasons["gpuNodeGroups.inference.taints[0].effect"]
    assert not [r for r in run.resources if r.type != "pulumi:pulumi:Stack"], "nothing is registered"
