"""Parameter files: read the formats people already have, write CloudFormation's list format.

Accepted:
  * CloudFormation's list, as `create-stack --parameters file://` takes:
    [{"ParameterKey": "VpcId", "ParameterValue": "vpc-…"}, …]
  * `aws cloudformation deploy --parameter-overrides file://`'s list: ["VpcId=vpc-…", …]
  * CodePipeline's template configuration: {"Parameters": {"VpcId": "vpc-…"}}
Values may be lists (joined with commas, as CloudFormation expects for List<…> parameters).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class ParamsError(Exception):
    """A parameter file that cannot be read; the message names the file and the problem."""


def _value(path: Path, key: str, value: Any) -> str:
    if isinstance(value, list) and all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value):
        return ",".join(str(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise ParamsError(f"{path}: {key}: expected a string, number or list of strings, got {type(value).__name__}")


def _from_list(path: Path, entries: list) -> dict[str, str]:
    parameters: dict[str, str] = {}
    for i, entry in enumerate(entries):
        if isinstance(entry, dict) and "ParameterKey" in entry:
            key = str(entry["ParameterKey"])
            if "ParameterValue" not in entry:
                raise ParamsError(f"{path}: entry {i + 1} ({key}) has no ParameterValue")
            value = _value(path, key, entry["ParameterValue"])
        elif isinstance(entry, str) and "=" in entry:
            key, value = entry.split("=", 1)
        else:
            raise ParamsError(f'{path}: entry {i + 1} is neither {{"ParameterKey", "ParameterValue"}} nor "Key=Value"')
        if key in parameters:
            raise ParamsError(f"{path}: {key} is given twice")
        parameters[key] = value
    return parameters


def parse_parameters(path: Path, data: Any) -> dict[str, str]:
    if isinstance(data, list):
        return _from_list(path, data)
    if isinstance(data, dict) and isinstance(data.get("Parameters"), dict):
        return {str(k): _value(path, str(k), v) for k, v in data["Parameters"].items()}
    raise ParamsError(
        f"{path}: not a parameter file: expected a list of ParameterKey/ParameterValue objects, "
        'a list of "Key=Value" strings, or {"Parameters": {...}}'
    )


def read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except IsADirectoryError:
        raise ParamsError(f"{path}: is a directory, not a file") from None
    except FileNotFoundError:
        raise ParamsError(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise ParamsError(f"{path}: not a text file (it is not UTF-8)") from None
    except OSError as e:
        raise ParamsError(f"{path}: cannot read: {e.strerror}") from None
    if not text.strip():
        raise ParamsError(f"{path}: the file is empty")
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ParamsError(f"{path}: line {e.lineno}, column {e.colno}: invalid JSON: {e.msg}") from None


def load_parameters(path: Path) -> dict[str, str]:
    """The parameters of a file in any of the accepted formats."""
    return parse_parameters(path, read_json(path))


def dump_parameters(parameters: dict[str, str]) -> str:
    """CloudFormation's list format, in the template's parameter order as given, one entry per line."""
    lines = [json.dumps({"ParameterKey": k, "ParameterValue": v}, ensure_ascii=False) for k, v in parameters.items()]
    return "[\n  " + ",\n  ".join(lines) + "\n]\n"
