from __future__ import annotations

import json

import pytest

from valohai_cfn.render import render_json
from valohai_cfn.template import build_template


@pytest.fixture(scope="session")
def template_json() -> str:
    return render_json(build_template())


@pytest.fixture(scope="session")
def template(template_json: str) -> dict:
    return json.loads(template_json)
