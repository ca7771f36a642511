"""The package stands outside the repository: the wheel and sdist carry the license (and the sdist the tests
and what they read), and the wheel installed in a fresh virtual environment runs build, lint, params init
and diagram from an unrelated directory, writing where it says."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest
from cfn import REPO

IGNORED = shutil.ignore_patterns(".git", ".venv*", "build", "dist", "*.egg-info", "__pycache__", ".*_cache")


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    """Wheel and sdist built from a copy of the repository (building writes beside the sources)."""
    root = tmp_path_factory.mktemp("package")
    source = root / "source"
    shutil.copytree(REPO, source, ignore=IGNORED)
    out = root / "dist"
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(source)],
        check=True,
        capture_output=True,
    )
    return out


def test_wheel_and_sdist_carry_the_license_and_the_sdist_its_tests(dist):
    (wheel,) = dist.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read(next(n for n in names if n.endswith("METADATA"))).decode()
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert "valohai_cfn/py.typed" in names and "valohai_cfn/userdata/roi.sh" in names
    assert "valohai_cfn/parameter_specs.json" in names
    assert "License-Expression: MIT" in metadata and "Classifier: Typing :: Typed" in metadata
    (sdist,) = dist.glob("*.tar.gz")
    with tarfile.open(sdist) as archive:
        members = {m.split("/", 1)[1] for m in archive.getnames() if "/" in m}
    assert {"LICENSE", "CHANGELOG.md", "tests/conftest.py", "tests/cfn.py", "params/example.json"} <= members
    assert "templates/valohai-self-hosted.json" in members


def fresh_environment(root: Path, wheel: Path) -> Path:
    """A new virtual environment with the wheel installed in it. Its dependencies are found in this test
    environment's site-packages (a path entry, which activates nothing installed there), so the test takes
    seconds rather than downloading boto3 and cfn-lint again; valohai_cfn itself comes from the wheel."""
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = Path(
        subprocess.run(
            [venv / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", "--target", str(site), wheel],
        check=True,
    )
    (site / "zz_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv / "bin"


def test_the_wheel_works_from_another_directory(dist, tmp_path):
    (wheel,) = dist.glob("*.whl")
    bin_dir = fresh_environment(tmp_path, wheel)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    def valohai_cfn(*args: str) -> str:
        # A console script made by --target has no shebang to rely on; the module entry point is the same code.
        result = subprocess.run(
            [bin_dir / "python", "-m", "valohai_cfn", *args], cwd=elsewhere, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    where = subprocess.run(
        [bin_dir / "python", "-c", "import valohai_cfn; print(valohai_cfn.__file__)"],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert str(tmp_path) in where and str(REPO) not in where, "valohai_cfn comes from the wheel"

    built = valohai_cfn("build")
    written = elsewhere / "templates" / "valohai-self-hosted.json"
    assert f"wrote {written}" in built, "says where, in full"
    assert written.read_bytes() == (REPO / "templates" / "valohai-self-hosted.json").read_bytes()
    assert "no findings" in valohai_cfn("lint")
    required = [
        "OrganizationName=acme",
        "VpcId=vpc-12345678",
        "LoadBalancerSubnetIds=subnet-12345678,subnet-87654321",
        "RoiSubnetId=subnet-12345678",
        "DatabaseSubnetIds=subnet-12345678,subnet-87654321",
        "CacheSubnetIds=subnet-12345678,subnet-87654321",
        "WorkerSubnetIds=subnet-12345678,subnet-87654321",
        "Domain=valohai.example.com",
        "RoiAmiId=ami-12345678",
        "WorkerAmiId=ami-87654321",
    ]
    valohai_cfn("params", "init", "-o", "prod.json", *[a for value in required for a in ("--set", value)])
    assert '"ParameterKey": "VpcId", "ParameterValue": "vpc-12345678"' in (elsewhere / "prod.json").read_text()
    valohai_cfn("diagram", "-o", "architecture.md")
    assert (elsewhere / "architecture.md").read_text().startswith("flowchart")
