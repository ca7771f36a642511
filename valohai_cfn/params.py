"""Parameter files: read the formats people already have, check them offline, write CloudFormation's list.

Accepted (as JSON, or the same structures as YAML):
  * CloudFormation's list, as `create-stack --parameters file://` takes:
    [{"ParameterKey": "VpcId", "ParameterValue": "vpc-…"}, …]
  * `aws cloudformation deploy --parameter-overrides file://`'s list: ["VpcId=vpc-…", …]
  * CodePipeline's template configuration: {"Parameters": {"VpcId": "vpc-…"}}
Values may be lists (joined with commas, as CloudFormation expects for List<…> parameters).
The original CDK app's config.yaml can be imported (`import_cdk_config`).
"""

from __future__ import annotations

import difflib
import functools
import importlib.util
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from valohai_cfn.images import wants_latest
from valohai_cfn.language_extensions import comma_delimited


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


# A parameter file is a few kilobytes; anything much larger is the wrong file (or an attack on the parser).
MAX_BYTES = 1_000_000
MAX_DEPTH = 32


def read_text(path: Path, *, what: str = "parameter file") -> str:
    """A parameter file's text (or a template's: `what` names it in the errors); ParamsError for what cannot be."""
    try:
        if path.stat().st_size > MAX_BYTES:
            raise ParamsError(f"{path}: {path.stat().st_size:,} bytes, too large for a {what}")
        raw = path.read_bytes()
    except IsADirectoryError:
        raise ParamsError(f"{path}: is a directory, not a file") from None
    except FileNotFoundError:
        raise ParamsError(f"{path}: no such file") from None
    except OSError as e:
        raise ParamsError(f"{path}: cannot read: {e.strerror}") from None
    if b"\0" in raw:
        raise ParamsError(f"{path}: a binary file, not a {what}")
    try:
        text = raw.decode("utf-8-sig")  # a byte order mark, as some Windows editors write, is accepted
    except UnicodeDecodeError:
        raise ParamsError(f"{path}: not a text file (it is not UTF-8)") from None
    if not text.strip():
        raise ParamsError(f"{path}: the file is empty")
    return text


class _AsWrittenLoader(yaml.SafeLoader):
    """YAML whose scalars stay as written: 16.10 is "16.10" (not 16.1), 0755 is "0755" (not 493), yes is
    "yes" (not true), a date is its text. CloudFormation takes every parameter value as a string, so YAML's
    guesses could only change what was meant. A key given twice is an error, not the last one winning."""

    depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        # Refused as soon as it is deeper than any parameter file is (PyYAML recurses until Python stops it).
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise RecursionError
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen = set()
        for key_node, _value_node in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"{key!r} is given twice", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_AsWrittenLoader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag == "tag:yaml.org,2002:null"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _parse_yaml(path: Path, text: str) -> Any:
    try:
        return yaml.load(text, Loader=_AsWrittenLoader)  # a SafeLoader
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ParamsError(f"{path}: {where}invalid YAML: {getattr(e, 'problem', None) or e}") from None
    except RecursionError:
        raise ParamsError(f"{path}: nested too deeply to be a parameter file") from None


def _no_duplicate_keys(path: Path):
    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [k for k, _ in items]
        twice = sorted({k for k in keys if keys.count(k) > 1})
        if twice:
            raise ParamsError(f"{path}: {', '.join(twice)} given twice in one object")
        return dict(items)

    return pairs


def read_structured(path: Path) -> Any:
    """The file's JSON, or YAML for .yaml/.yml files; a syntax error names the file and line."""
    text = read_text(path)
    if path.suffix.lower() in (".yaml", ".yml"):
        return _parse_yaml(path, text)
    try:
        return json.loads(text, object_pairs_hook=_no_duplicate_keys(path))
    except json.JSONDecodeError as e:
        raise ParamsError(f"{path}: line {e.lineno}, column {e.colno}: invalid JSON: {e.msg}") from None
    except RecursionError:
        raise ParamsError(f"{path}: nested too deeply to be a parameter file") from None


def load_parameters(path: Path) -> dict[str, str]:
    """The parameters of a file in any of the accepted formats."""
    return parse_parameters(path, read_structured(path))


def dump_parameters(parameters: dict[str, str]) -> str:
    """CloudFormation's list format, in the template's parameter order as given, one entry per line."""
    lines = [json.dumps({"ParameterKey": k, "ParameterValue": v}, ensure_ascii=False) for k, v in parameters.items()]
    return "[\n  " + ",\n  ".join(lines) + "\n]\n"


# -- the original CDK app's config.yaml -------------------------------------------------------------

CDK_CONFIG_KEYS = {
    "vpc_id": "VpcId",
    "lb_subnet_ids": "LoadBalancerSubnetIds",
    "roi_subnet_id": "RoiSubnetId",
    "db_subnet_ids": "DatabaseSubnetIds",
    "cache_subnet_ids": "CacheSubnetIds",
    "worker_subnet_ids": "WorkerSubnetIds",
    "environment_name": "EnvironmentName",
    "domain": "Domain",
    "certificate_arn": "CertificateArn",
}
# Known to the CDK app but not template parameters: the template reads them from the stack itself.
CDK_CONFIG_IGNORED = ("aws_region", "aws_account_id")


def import_cdk_config(path: Path) -> dict[str, str]:
    """The template parameters of an installation made with valohai-cdk-self-hosted's config.yaml."""
    data = yaml_mapping(path)
    unknown = sorted(set(data) - set(CDK_CONFIG_KEYS) - set(CDK_CONFIG_IGNORED))
    if unknown:
        raise ParamsError(f"{path}: not keys of the CDK app's config.yaml: {', '.join(unknown)}")
    parameters = {}
    for key, parameter in CDK_CONFIG_KEYS.items():
        value = data.get(key)
        if value is None:
            continue
        parameters[parameter] = _value(path, key, value)
    if "Domain" in parameters:
        parameters["Domain"] = _host_name(path, parameters["Domain"])
    return parameters


def _host_name(path: Path, domain: str) -> str:
    """The CDK app took a URL (https://valohai.example.com); the template takes the host name alone. A port,
    a path or another scheme would be lost silently, so they are refused."""
    if "://" not in domain:
        domain = f"https://{domain}"
    parts = urlsplit(domain)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme.lower() not in ("http", "https") or port is not None or parts.path not in ("", "/"):
        raise ParamsError(f"{path}: domain {domain!r}: give the host name only (no port, path or other scheme)")
    if parts.query or parts.fragment or parts.username or not parts.hostname:
        raise ParamsError(f"{path}: domain {domain!r}: give the host name only")
    return parts.hostname


def yaml_mapping(path: Path) -> dict:
    data = _parse_yaml(path, read_text(path))
    if not isinstance(data, dict):
        raise ParamsError(f"{path}: expected a mapping of keys to values")
    return data


# -- checking a parameter file against the template, offline -----------------------------------------

# What CloudFormation's AWS-specific parameter types accept, by their id formats.
AWS_ID_FORMATS = {
    "AWS::EC2::VPC::Id": r"vpc-[0-9a-f]{8}([0-9a-f]{9})?",
    "AWS::EC2::Subnet::Id": r"subnet-[0-9a-f]{8}([0-9a-f]{9})?",
    "AWS::EC2::Image::Id": r"ami-[0-9a-f]{8}([0-9a-f]{9})?",
    "AWS::EC2::SecurityGroup::Id": r"sg-[0-9a-f]{8}([0-9a-f]{9})?",
}


@dataclass(frozen=True)
class Problem:
    parameter: str
    value: str | None
    rule: str

    def __str__(self) -> str:
        shown = "" if self.value is None else f" = {_shown(self.value)}"
        return f"{self.parameter}{shown}: {self.rule}"


def _shown(value: str) -> str:
    # repr() keeps control characters and newlines on the one line of the report.
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# What CloudFormation takes for a Number: digits, a sign, a decimal point. Python's float() would also take
# " 80 ", "8_0", "1e3" and "nan".
NUMBER = re.compile(r"-?(\d+(\.\d*)?|\.\d+)")


def _number_problems(name: str, value: str, spec: dict) -> list[Problem]:
    if not NUMBER.fullmatch(value):
        return [Problem(name, value, "not a number (digits, an optional sign and decimal point, no spaces)")]
    number = float(value)
    problems = []
    if "MinValue" in spec and number < float(spec["MinValue"]):
        problems.append(Problem(name, value, f"below MinValue {spec['MinValue']}"))
    if "MaxValue" in spec and number > float(spec["MaxValue"]):
        problems.append(Problem(name, value, f"above MaxValue {spec['MaxValue']}"))
    return problems


def _string_problems(name: str, value: str, spec: dict) -> list[Problem]:
    problems = []
    if "AllowedValues" in spec and value not in spec["AllowedValues"]:
        problems.append(Problem(name, value, f"not one of {', '.join(spec['AllowedValues'])}"))
    if "AllowedPattern" in spec and not re.fullmatch(spec["AllowedPattern"], value):
        why = spec.get("ConstraintDescription", f"does not match {spec['AllowedPattern']}")
        problems.append(Problem(name, value, f"AllowedPattern: must be {why}"))
    if "MinLength" in spec and len(value) < int(spec["MinLength"]):
        problems.append(Problem(name, value, f"shorter than MinLength {spec['MinLength']}"))
    if "MaxLength" in spec and len(value) > int(spec["MaxLength"]):
        problems.append(Problem(name, value, f"longer than MaxLength {spec['MaxLength']}"))
    return problems


def _comma_delimited_problems(name: str, value: str, spec: dict) -> list[Problem]:
    """CloudFormation applies a CommaDelimitedList's AllowedPattern to each item; an empty list is one empty
    item, which the template may allow, but an empty item beside others is a mistake (a stray comma)."""
    items = comma_delimited(value)
    if len(items) > 1 and "" in items:
        return [Problem(name, value, "an empty item (a stray comma?)")]
    return [p for item in items for p in _string_problems(name, item, spec)]


def check_value(name: str, value: str, spec: dict) -> list[Problem]:
    """Why CloudFormation would refuse `value` for the parameter `spec` (empty when it accepts it, or when the
    command line replaces it before CloudFormation sees it: `latest` for RoiAmiId and WorkerAmiId)."""
    if wants_latest(name, value):
        return []
    kind = spec["Type"]
    if kind == "Number":
        return _number_problems(name, value, spec)
    if kind == "CommaDelimitedList":
        return _comma_delimited_problems(name, value, spec)
    if kind.startswith("List<"):
        item_kind = kind[len("List<") : -1]
        items = value.split(",")
        if value == "" or any(item.strip() == "" for item in items):
            return [Problem(name, value, f"a comma-separated list of {item_kind} with no empty items")]
        return [p for item in items for p in check_value(name, item.strip(), {"Type": item_kind})]
    if kind in AWS_ID_FORMATS and not re.fullmatch(AWS_ID_FORMATS[kind], value):
        prefix = AWS_ID_FORMATS[kind].split("-")[0]
        return [Problem(name, value, f"not a {kind} ({prefix}- and 8 or 17 hex digits)")]
    return _string_problems(name, value, spec)


# -- the worker types: what no parameter constraint can say ----------------------------------------------

WORKER_TYPE_PARAMETERS = ("WorkerInstanceTypes", "WorkerSpotInstanceTypes")


# cfn-lint's list of instance types per region, read as a file: importing cfnlint to reach it costs half a
# second, a third of a whole deploy to the local AWS.
INSTANCE_TYPES_DATA = ("data", "schemas", "extensions", "aws_ec2_instance", "instancetype_enum.json")


@functools.cache
def known_instance_types() -> frozenset[str]:
    """Every EC2 instance type of any region, from cfn-lint's data (offline; preflight asks the account's zones)."""
    spec = importlib.util.find_spec("cfnlint")  # finds the package without running it
    if spec is None or not spec.submodule_search_locations:
        raise ParamsError("cfn-lint is not installed: it is a dependency of valohai-cfn")
    data = Path(next(iter(spec.submodule_search_locations)), *INSTANCE_TYPES_DATA)
    by_region = json.loads(data.read_text(encoding="utf-8"))
    return frozenset(t for region in by_region.values() if isinstance(region, dict) for t in region.get("enum", []))


def _unknown_type(name: str, value: str, instance_type: str) -> Problem:
    close = difflib.get_close_matches(instance_type, known_instance_types(), n=1)
    hint = f"; did you mean {close[0]}?" if close else ""
    return Problem(name, value, f"{instance_type} is not an EC2 instance type{hint}")


def worker_type_problems(values: dict[str, str]) -> list[Problem]:
    """Worker types that would fail late: unknown ones (the launch fails), one listed twice (the transform fails
    the deploy), and no type at all in either list (an installation that can run no job)."""
    problems = []
    lists = {name: [t for t in comma_delimited(values.get(name, "")) if t] for name in WORKER_TYPE_PARAMETERS}
    for name, types in lists.items():
        value = values.get(name, "")
        problems += [_unknown_type(name, value, t) for t in types if t not in known_instance_types()]
        twice = sorted({t for t in types if types.count(t) > 1})
        problems += [Problem(name, value, f"{t} is listed twice (one group per type)") for t in twice]
    if not any(lists.values()):
        problems.append(Problem(" and ".join(WORKER_TYPE_PARAMETERS), None, "no worker type at all: give at least one"))
    return problems


def check_parameters(template_parameters: dict[str, dict], given: dict[str, str]) -> list[Problem]:
    """Every problem of a parameter file against the template's Parameters section, in order, then what the
    template's constraints cannot say about the worker types."""
    problems = []
    for name in given:
        if name not in template_parameters:
            close = difflib.get_close_matches(name, template_parameters, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]}?" if close else ""
            problems.append(Problem(name, None, f"not a parameter of the template{hint}"))
    for name, spec in template_parameters.items():
        if name in given:
            problems.extend(check_value(name, given[name], spec))
        elif "Default" not in spec:
            problems.append(Problem(name, None, "required: the template has no default"))
    if set(WORKER_TYPE_PARAMETERS) <= set(template_parameters):
        defaults = {n: template_parameters[n].get("Default", "") for n in WORKER_TYPE_PARAMETERS}
        values = {**defaults, **{n: given[n] for n in WORKER_TYPE_PARAMETERS if n in given}}
        if not any(p.parameter in WORKER_TYPE_PARAMETERS for p in problems):
            problems += worker_type_problems(values)
    return problems
