"""The security gate can fail: checkov, as `make scan` runs it, reports each deliberately broken
variant of the template, and nothing in the real one. Runs where checkov is installed (`make scan`
installs it in .venv-scan and runs this file)."""

from __future__ import annotations

import copy
import json
import os
import subprocess
from pathlib import Path

import pytest
from cfn import REPO

CHECKOV = os.environ.get("CHECKOV_BIN") or str(REPO / ".venv-scan" / "bin" / "checkov")
pytestmark = pytest.mark.skipif(not Path(CHECKOV).exists(), reason="checkov is not installed (make scan installs it)")


def _ssh_from_the_world(t: dict) -> None:
    t["Resources"]["MasterSshIngress"]["Properties"]["CidrIp"] = "0.0.0.0/0"


def _unencrypted_bucket(t: dict) -> None:
    del t["Resources"]["DataBucket"]["Properties"]["BucketEncryption"]


def _iam_action_star(t: dict) -> None:
    (policy,) = t["Resources"]["MasterRole"]["Properties"]["Policies"]
    policy["PolicyDocument"]["Statement"].append({"Effect": "Allow", "Action": "*", "Resource": "*"})


def _database_unprotected(t: dict) -> None:
    t["Resources"]["Database"]["Properties"]["DeletionProtection"] = False


# variant -> (how it is broken, the check that must report it, on which resource); of the installation's
# template, but those in SSH_VARIANTS, which break the SSH template (templates/valohai-ssh.*).
VARIANTS = {
    "ssh-open": (_ssh_from_the_world, "CKV_AWS_24", "AWS::EC2::SecurityGroupIngress.MasterSshIngress"),
    "unencrypted-bucket": (_unencrypted_bucket, "CKV_VALOHAI_1", "AWS::S3::Bucket.DataBucket"),
    "iam-star": (_iam_action_star, "CKV_AWS_62", "AWS::IAM::Role.MasterRole"),
    "unprotected-database": (_database_unprotected, "CKV_VALOHAI_2", "AWS::RDS::DBInstance.Database"),
}


SSH_VARIANTS = {"ssh-open"}
REAL = ("real", "real-ssh")


@pytest.fixture(scope="module")
def failures(tmp_path_factory, template, ssh_template) -> dict[str, set[tuple[str, str]]]:
    """Scan the real templates and every variant in one checkov run: {file stem: {(check, resource)}}."""
    directory = tmp_path_factory.mktemp("variants")
    (directory / "real.json").write_text(json.dumps(template, indent=1))
    (directory / "real-ssh.json").write_text(json.dumps(ssh_template, indent=1))
    for name, (break_it, _, _) in VARIANTS.items():
        variant = copy.deepcopy(ssh_template if name in SSH_VARIANTS else template)
        break_it(variant)
        (directory / f"{name}.json").write_text(json.dumps(variant, indent=1))
    result = subprocess.run(
        [CHECKOV, "-d", str(directory), "--external-checks-dir", str(REPO / "valohai_cfn" / "scan_checks"),
         "--framework", "cloudformation", "--skip-download", "--quiet", "-o", "json"],
        capture_output=True, text=True, env={**os.environ, "BC_SKIP_MAPPING": "TRUE"}, timeout=300,
    )  # fmt: skip
    assert result.returncode in (0, 1), result.stderr[-2000:]
    reports = json.loads(result.stdout)
    found: dict[str, set[tuple[str, str]]] = {}
    for report in reports if isinstance(reports, list) else [reports]:
        for check in report["results"]["failed_checks"]:
            found.setdefault(Path(check["file_path"]).stem, set()).add((check["check_id"], check["resource"]))
    return found


@pytest.mark.parametrize("real", REAL)
def test_the_real_templates_pass(failures, real):
    assert failures.get(real, set()) == set()


@pytest.mark.parametrize("variant", VARIANTS)
def test_each_broken_variant_is_reported(failures, variant):
    _, check, resource = VARIANTS[variant]
    assert (check, resource) in failures.get(variant, set()), failures.get(variant)
