"""The package installs: a wheel of the checkout and a git tag, each into a fresh virtualenv, offline.

One wheel is built per test session from a copy of the checkout (the files git tracks or would track,
so a build never writes ``build/`` or ``*.egg-info`` into the working tree), with the project venv's
setuptools (``--no-build-isolation``: no network). Fresh venvs are made with ``python -m venv
--without-pip`` and filled by the project venv's pip (``pip --python <fresh python>``), which is the
same ``pip install`` without copying pip into each venv.

The fresh venvs have no dependencies of their own: a ``.pth`` file appends the project venv's
site-packages to their ``sys.path`` (pulumi, pydantic... without network). A path listed in a ``.pth``
is appended to ``sys.path`` only, its own ``.pth`` files are not read (``site.addpackage``), so the
project venv's editable install of ``eks_gpu`` is not active there, and the fresh site-packages comes
first anyway; the tests assert where ``eks_gpu`` was imported from.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from collections.abc import Iterator
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import Any

import pytest
from eks_gpu.facts.versions import calendar
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

# Under mutmut the tree is its mutants/ copy (no git checkout) and mutants change no packaging.
pytestmark = pytest.mark.skipif("MUTANT_UNDER_TEST" in os.environ, reason="packaging is not mutated code")

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
VERSION = PYPROJECT["project"]["version"]
SOURCE_ROOT = "components/"
PACKAGE = "components/eks_gpu/"

# What the fresh interpreter reports: where eks_gpu came from, its metadata, and the bundled facts.
PROBE = """
import json, importlib.metadata as md
import eks_gpu
from eks_gpu.facts.versions import calendar
meta = md.metadata("eks-gpu")
print(json.dumps({
    "file": eks_gpu.__file__,
    "version": md.version("eks-gpu"),
    "license": meta["License-Expression"],
    "requires": sorted(r for r in md.requires("eks-gpu") or [] if "extra ==" not in r),
    "calendar": calendar().updated.isoformat(),
}))
"""


def sh(*args: str | Path, cwd: Path | None = None) -> str:
    done = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{' '.join(map(str, args))} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def checkout_files(under: str = "") -> list[str]:
    """Files of the checkout as git sees them: tracked plus untracked-not-ignored, that exist."""
    listed = sh("git", "-C", ROOT, "ls-files", "--cached", "--others", "--exclude-standard", "-z", "--", under or ".")
    return sorted(f for f in set(listed.split("\0")) if f and (ROOT / f).is_file())


def fresh_venv(path: Path) -> Path:
    """A new venv at ``path`` that sees the project venv's packages (appended, see the module doc);
    returns its python."""
    sh(sys.executable, "-m", "venv", "--without-pip", path)
    python = path / "bin" / "python"
    purelib = sh(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").strip()
    # No network: the dependencies are the project venv's, made visible by this .pth file.
    (Path(purelib) / "project_venv_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def pip_install(python: Path, *args: str | Path, cwd: Path) -> None:
    sh(
        sys.executable,
        "-m",
        "pip",
        "--python",
        python,
        "install",
        "--quiet",
        "--disable-pip-version-check",
        *args,
        cwd=cwd,
    )


def probe(python: Path, cwd: Path) -> dict[str, Any]:
    # -I: neither the working directory nor PYTHONPATH on sys.path; only the venv decides.
    result: dict[str, Any] = json.loads(sh(python, "-I", "-c", PROBE, cwd=cwd))
    result["purelib"] = sh(python, "-I", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").strip()
    return result


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("packaging")


@pytest.fixture(scope="module")
def wheel(workdir: Path) -> Path:
    build_requires = [Requirement(r) for r in PYPROJECT["build-system"]["requires"]]
    for requirement in build_requires:
        have = installed_version(requirement.name)
        assert requirement.specifier.contains(have, prereleases=True), (
            f"the project venv has {requirement.name} {have}; pyproject's [build-system] needs {requirement}"
            " (pip install -r requirements-dev.txt)"
        )
    source = workdir / "checkout"
    for name in checkout_files():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_bytes((ROOT / name).read_bytes())
    dist = workdir / "dist"
    sh(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--quiet",
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
        "-w",
        dist,
        source,
    )
    (built,) = dist.glob("*.whl")
    return built


@pytest.fixture(scope="module")
def from_wheel(wheel: Path, workdir: Path) -> dict[str, Any]:
    python = fresh_venv(workdir / "venv-wheel")
    pip_install(python, "--no-deps", "--no-index", wheel, cwd=workdir)
    return probe(python, workdir)


@pytest.fixture(scope="module")
def from_tag(workdir: Path) -> Iterator[dict[str, Any]]:
    clone = workdir / "clone"
    sh("git", "clone", "--quiet", "--no-local", ROOT, clone)
    tag_version = tomllib.loads((clone / "pyproject.toml").read_text())["project"]["version"]
    sh("git", "-C", clone, "-c", "user.name=test", "-c", "user.email=test@example.invalid", "tag", f"v{tag_version}")
    python = fresh_venv(workdir / "venv-tag")
    pip_install(
        python, "--no-deps", "--no-build-isolation", "--no-index", f"git+file://{clone}@v{tag_version}", cwd=workdir
    )
    yield probe(python, workdir) | {"tag_version": tag_version}


def test_the_wheel_holds_every_module_and_data_file_of_the_package(wheel: Path) -> None:
    package_files = {f.removeprefix(SOURCE_ROOT) for f in checkout_files(PACKAGE)}
    with zipfile.ZipFile(wheel) as archive:
        in_wheel = {n for n in archive.namelist() if not n.split("/")[0].endswith(".dist-info")}
    assert any(f.endswith(".json") for f in package_files) and any(f.endswith(".py") for f in package_files)
    assert sorted(package_files - in_wheel) == [], "files of the package missing from the wheel"
    assert sorted(in_wheel - package_files) == [], "files in the wheel that are not the package's"


def test_the_wheel_is_named_for_the_version(wheel: Path) -> None:
    assert wheel.name == f"eks_gpu-{VERSION}-py3-none-any.whl"


@pytest.mark.parametrize("installed", ["from_wheel", "from_tag"])
def test_a_fresh_venv_imports_the_installed_package(installed: str, request: pytest.FixtureRequest) -> None:
    found: dict[str, Any] = request.getfixturevalue(installed)
    assert Path(found["file"]).is_relative_to(found["purelib"]), found["file"]
    assert not Path(found["file"]).is_relative_to(ROOT)
    assert found["version"] == VERSION == "1.0.0"
    assert found["license"] == PYPROJECT["project"]["license"] == "Apache-2.0"
    assert found["requires"] == sorted(str(Requirement(r)) for r in PYPROJECT["project"]["dependencies"])
    assert found["calendar"] == calendar().updated.isoformat()


def test_the_tag_is_the_version(from_tag: dict[str, Any]) -> None:
    assert from_tag["tag_version"] == VERSION


def _pins(requirements: str) -> dict[str, str]:
    """``name: version`` of the ``name==version`` lines of a requirements file (not following ``-r``)."""
    pins: dict[str, str] = {}
    for line in (ROOT / requirements).read_text().splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):
            requirement = Requirement(line)
            (spec,) = requirement.specifier
            assert spec.operator == "==", f"{requirements}: {line} is not pinned"
            pins[canonicalize_name(requirement.name)] = spec.version
    return pins


def test_the_runtime_dependencies_admit_exactly_the_programs_pins() -> None:
    runtime: dict[str, Requirement] = {
        canonicalize_name(r.name): r for r in map(Requirement, PYPROJECT["project"]["dependencies"])
    }
    pins = _pins("requirements.txt")
    assert set(runtime) == set(pins)
    for name, pinned in pins.items():
        assert runtime[name].specifier.contains(pinned), f"{name}=={pinned} outside {runtime[name].specifier}"


def test_the_extras_admit_the_dev_pins() -> None:
    pins = _pins("requirements-dev.txt")
    for extra, requirements in PYPROJECT["project"]["optional-dependencies"].items():
        for requirement in map(Requirement, requirements):
            pinned = pins[canonicalize_name(requirement.name)]
            assert requirement.specifier.contains(pinned), f"[{extra}] {requirement} excludes {pinned}"


def test_the_test_tools_are_not_runtime_dependencies() -> None:
    tools = set(_pins("requirements-dev.txt")) | set(_pins("requirements-mutation.txt"))
    tools -= set(_pins("requirements.txt"))
    assert {"pytest", "moto", "ruff", "mypy", "mutmut"} <= tools
    runtime = {canonicalize_name(Requirement(r).name) for r in PYPROJECT["project"]["dependencies"]}
    assert runtime & tools == set()
