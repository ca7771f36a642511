"""Parameter files: read the formats people already have, check them offline, write CloudFormation's list.

Accepted (as JSON, or the same structures as YAML):
  * CloudFormation's list, as `create-stack --parameters file://` takes:
    [{"ParameterKey": "VpcId", "ParameterValue": "vpc-…"}, …]
  * `aws cloudformation deploy --parameter-overrides file://`'s list: ["VpcId=vpc-…", …]
  * CodePipeline's template configuration: {"Parameters": {"VpcId": "vpc-…"}}
Values may be lists (joined with commas, as CloudFormation expects for List<…> parameters).
In CloudFormation's list, {"ParameterKey": X, "UsePreviousValue": true} keeps a deployed stack's value (a
PreviousValue; refused on a create, as CloudFormation refuses it). CodePipeline's file may carry `Tags`
(the stack's tags, `load_parameter_file`); its `StackPolicy` is refused: valohai-cfn sets the stack policy.
The original CDK app's config.yaml can be imported (`import_cdk_config`).
"""

from __future__ import annotations

import difflib
import functools
import importlib.util
import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from valohai_cfn.images import wants_latest
from valohai_cfn.language_extensions import comma_delimited


class ParamsError(Exception):
    """A parameter file that cannot be read; the message names the file and the problem."""


class PreviousValue(str):
    """A parameter given as {"ParameterKey": X, "UsePreviousValue": true}: the deployed stack's value is kept.
    Its text is empty; whatever sends or checks a value replaces it first (lifecycle.parameters_to_send), and
    a create refuses it."""

    def __new__(cls) -> PreviousValue:
        return super().__new__(cls, "")

    def __repr__(self) -> str:
        return "UsePreviousValue"


def previous_values(parameters: dict[str, str]) -> list[str]:
    """The names of the parameters given as UsePreviousValue."""
    return [name for name, value in parameters.items() if isinstance(value, PreviousValue)]


@dataclass(frozen=True)
class ParameterFile:
    """What a parameter file gives: the parameters, and the stack tags CodePipeline's format may carry."""

    values: dict[str, str]
    tags: dict[str, str] = field(default_factory=dict)


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
            value = _list_entry_value(path, i, key, entry)
        elif isinstance(entry, str) and "=" in entry:
            key, value = entry.split("=", 1)
        else:
            raise ParamsError(f'{path}: entry {i + 1} is neither {{"ParameterKey", "ParameterValue"}} nor "Key=Value"')
        if key in parameters:
            raise ParamsError(f"{path}: {key} is given twice")
        parameters[key] = value
    return parameters


def _list_entry_value(path: Path, i: int, key: str, entry: dict) -> str:
    """An entry's value; UsePreviousValue true is a PreviousValue (CloudFormation refuses it beside a value)."""
    previous = entry.get("UsePreviousValue", False)
    if not isinstance(previous, bool):
        raise ParamsError(f"{path}: entry {i + 1} ({key}): UsePreviousValue is true or false, not {previous!r}")
    if previous:
        if entry.get("ParameterValue") not in (None, ""):
            raise ParamsError(f"{path}: entry {i + 1} ({key}): UsePreviousValue true and a ParameterValue: give one")
        return PreviousValue()
    if "ParameterValue" not in entry:
        raise ParamsError(f"{path}: entry {i + 1} ({key}) has no ParameterValue (nor UsePreviousValue: true)")
    return _value(path, key, entry["ParameterValue"])


# CodePipeline's template configuration file: {"Parameters": {...}, "Tags": {...}, "StackPolicy": {...}}.
CODEPIPELINE_KEYS = ("Parameters", "Tags", "StackPolicy")


def _codepipeline(path: Path, data: dict) -> ParameterFile:
    unknown = sorted(str(k) for k in data if k not in CODEPIPELINE_KEYS)
    if unknown:
        raise ParamsError(f"{path}: {', '.join(unknown)}: not a key of a template configuration file")
    if "StackPolicy" in data:
        raise ParamsError(
            f"{path}: StackPolicy is not applied: valohai-cfn sets the stack policy from the template (every "
            "database, bucket and secret denied replacement and deletion; --allow-replace lifts it for one "
            "update). Remove StackPolicy from the file"
        )
    tags = data.get("Tags", {})
    if not isinstance(tags, dict):
        raise ParamsError(f"{path}: Tags: expected an object of keys to values")
    values = {str(k): _value(path, str(k), v) for k, v in data["Parameters"].items()}
    return ParameterFile(values, {str(k): _value(path, f"Tags.{k}", v) for k, v in tags.items()})


def parse_parameter_file(path: Path, data: Any) -> ParameterFile:
    if isinstance(data, list):
        return ParameterFile(_from_list(path, data))
    if isinstance(data, dict) and isinstance(data.get("Parameters"), dict):
        return _codepipeline(path, data)
    raise ParamsError(
        f"{path}: not a parameter file: expected a list of ParameterKey/ParameterValue objects, "
        'a list of "Key=Value" strings, or {"Parameters": {...}}'
    )


def parse_parameters(path: Path, data: Any) -> dict[str, str]:
    return parse_parameter_file(path, data).values


# A parameter file is a few kilobytes; anything much larger is the wrong file (or an attack on the parser).
MAX_BYTES = 1_000_000
MAX_DEPTH = 32


def read_text(path: Path, *, what: str = "parameter file") -> str:
    """A parameter file's text (or a template's: `what` names it in the errors); ParamsError for what cannot be."""
    try:
        # Read to one byte past the limit, never more: a stream (/dev/zero, <(yes)) has no size to stat.
        with path.open("rb") as file:
            raw = file.read(MAX_BYTES + 1)
        if len(raw) > MAX_BYTES:
            size = path.stat().st_size
            shown = f"{size:,} bytes" if size > MAX_BYTES else f"over {MAX_BYTES:,} bytes"
            raise ParamsError(f"{path}: {shown}, too large for a {what}")
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


def load_parameter_file(path: Path) -> ParameterFile:
    """The parameters of a file in any of the accepted formats, and the stack tags it carries."""
    return parse_parameter_file(path, read_structured(path))


def load_parameters(path: Path) -> dict[str, str]:
    """The parameters of a file in any of the accepted formats."""
    return load_parameter_file(path).values


def _entry(key: str, value: str) -> dict[str, Any]:
    if isinstance(value, PreviousValue):
        return {"ParameterKey": key, "UsePreviousValue": True}
    return {"ParameterKey": key, "ParameterValue": value}


def dump_parameters(parameters: dict[str, str]) -> str:
    """CloudFormation's list format, in the template's parameter order as given, one entry per line."""
    lines = [json.dumps(_entry(k, v), ensure_ascii=False) for k, v in parameters.items()]
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
    masked: bool = False  # a NoEcho parameter's: its value is never shown

    def __str__(self) -> str:
        shown = "" if self.value is None else " = ****" if self.masked else f" = {_shown(self.value)}"
        return f"{self.parameter}{shown}: {self.rule}"


def _shown(value: str) -> str:
    # repr() keeps control characters and newlines on the one line of the report.
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# What CloudFormation takes for a Number: digits, a sign, a decimal point. Python's float() would also take
# " 80 ", "8_0", "1e3" and "nan".
NUMBER = re.compile(r"-?(\d+(\.\d*)?|\.\d+)")


# The installation's Number parameters, each of which reaches a property its service takes as a whole number
# (EBS VolumeSize, RDS AllocatedStorage, an Auto Scaling group's MaxSize): CloudFormation's Number takes 80.5,
# and the service refuses it only at deploy, after the database is made. tests/test_params.py holds every Number
# parameter of the template to this list.
WHOLE_NUMBER_PARAMETERS = frozenset({"RoiVolumeSize", "DatabaseAllocatedStorage", "WorkerVolumeSize", "WorkerMaxSize"})


def _number_problems(name: str, value: str, spec: dict) -> list[Problem]:
    if not NUMBER.fullmatch(value):
        return [Problem(name, value, "not a number (digits, an optional sign and decimal point, no spaces)")]
    number = float(value)
    if name in WHOLE_NUMBER_PARAMETERS and not number.is_integer():
        return [Problem(name, value, "not a whole number (AWS takes whole GiB and instance counts)")]
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
        if "ConstraintDescription" in spec:
            problems.append(Problem(name, value, f"AllowedPattern: must be {spec['ConstraintDescription']}"))
        else:
            problems.append(Problem(name, value, f"AllowedPattern: does not match {spec['AllowedPattern']}"))
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
    command line replaces it before CloudFormation sees it: `latest` for RoiAmiId and WorkerAmiId, and
    UsePreviousValue, the deployed stack's value)."""
    if wants_latest(name, value) or isinstance(value, PreviousValue):
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
        return [Problem(name, value, f"not an {kind} ({prefix}- and 8 or 17 hex digits)")]
    return _string_problems(name, value, spec)


# -- the worker types: what no parameter constraint can say ----------------------------------------------

WORKER_TYPE_PARAMETERS = ("WorkerInstanceTypes", "WorkerSpotInstanceTypes")


# cfn-lint's list of instance types per region, read as a file: importing cfnlint to reach it costs half a
# second, a third of a whole deploy to the local AWS.
INSTANCE_TYPES_DATA = ("data", "schemas", "extensions", "aws_ec2_instance", "instancetype_enum.json")


@functools.cache
def known_instance_types() -> frozenset[str]:
    """Every EC2 instance type of any region (offline; preflight asks the account's zones): cfn-lint's list per
    region, and botocore's InstanceType enum of the EC2 API (each has types the other lacks yet)."""
    import botocore.session

    spec = importlib.util.find_spec("cfnlint")  # finds the package without running it
    if spec is None or not spec.submodule_search_locations:
        raise ParamsError("cfn-lint is not installed: it is a dependency of valohai-cfn")
    data = Path(next(iter(spec.submodule_search_locations)), *INSTANCE_TYPES_DATA)
    by_region = json.loads(data.read_text(encoding="utf-8"))
    linted = {t for region in by_region.values() if isinstance(region, dict) for t in region.get("enum", [])}
    api = botocore.session.get_session().get_service_model("ec2").shape_for("InstanceType").enum
    return frozenset(linted | set(api))


def _unknown_type(name: str, value: str, instance_type: str) -> Problem:
    close = difflib.get_close_matches(instance_type, known_instance_types(), n=1)
    hint = f"; did you mean {close[0]}?" if close else ""
    return Problem(name, value, f"{instance_type} is not an EC2 instance type{hint}")


def _worker_list_problems(name: str, value: str) -> list[Problem]:
    """One list's problems, every one of them: a stray comma, unknown types, a type listed twice."""
    items = comma_delimited(value)
    problems = []
    if len(items) > 1 and "" in items:
        problems.append(Problem(name, value, "an empty item (a stray comma?)"))
    types = [t for t in items if t]
    problems += [_unknown_type(name, value, t) for t in types if t not in known_instance_types()]
    twice = sorted({t for t in types if types.count(t) > 1})
    problems += [Problem(name, value, f"{t} is listed twice (one group per type)") for t in twice]
    return problems


def worker_type_problems(values: dict[str, str]) -> list[Problem]:
    """Worker types that would fail late, in each list (a problem in one never hides the other's): a stray
    comma, unknown types (the launch fails), one listed twice (the transform fails the deploy), and no type at
    all in either list (an installation that can run no job)."""
    problems = [p for name in WORKER_TYPE_PARAMETERS for p in _worker_list_problems(name, values.get(name, ""))]
    if not any(t for name in WORKER_TYPE_PARAMETERS for t in comma_delimited(values.get(name, ""))):
        problems.append(Problem(" and ".join(WORKER_TYPE_PARAMETERS), None, "no worker type at all: give at least one"))
    return problems


# Parameters the installation had and another template has now: what to do instead of "not a parameter".
MOVED_PARAMETERS = {
    "SshIngressCidr": "SSH access is its own template now: remove it here and deploy templates/valohai-ssh.yaml "
    "with AppSecurityGroupId=<output AppSecurityGroupId>",
    "AppSecurityGroupId": "the SSH template's parameter (templates/valohai-ssh.yaml), not this template's: keep it "
    "in the SSH stack's own parameter file",
}


def check_parameters(template_parameters: dict[str, dict], given: dict[str, str]) -> list[Problem]:
    """Every problem of a parameter file against the template's Parameters section, in order, then what the
    template's constraints cannot say about the worker types."""
    problems = []
    for name in given:
        if name not in template_parameters and name in MOVED_PARAMETERS:
            problems.append(Problem(name, None, MOVED_PARAMETERS[name]))
        elif name not in template_parameters:
            close = difflib.get_close_matches(name, template_parameters, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]}?" if close else ""
            problems.append(Problem(name, None, f"not a parameter of the template{hint}"))
    worker_lists = set(WORKER_TYPE_PARAMETERS) <= set(template_parameters)
    for name, spec in template_parameters.items():
        if name in given:
            if worker_lists and name in WORKER_TYPE_PARAMETERS:
                continue  # below, with every problem of the list at once
            problems.extend(check_value(name, given[name], spec))
        elif "Default" not in spec:
            problems.append(Problem(name, None, "required: the template has no default"))
    if worker_lists and previous_values({n: given[n] for n in WORKER_TYPE_PARAMETERS if n in given}):
        # A list kept from the deployed stack is known only there: each given list is checked on its own.
        problems += [p for n in WORKER_TYPE_PARAMETERS if n in given for p in _worker_list_problems(n, given[n])]
    elif worker_lists:
        values = {n: str(given.get(n, template_parameters[n].get("Default", ""))) for n in WORKER_TYPE_PARAMETERS}
        problems += worker_type_problems(values)
    if worker_lists:
        for name in WORKER_TYPE_PARAMETERS:
            # What the template's own pattern says beyond that (a --template with another pattern).
            if name in given and not _worker_list_problems(name, given[name]):
                problems += check_value(name, given[name], template_parameters[name])
    # A NoEcho parameter's value is a secret: never in a message (CloudFormation shows it as ****).
    secret = {n for n, spec in template_parameters.items() if str(spec.get("NoEcho", "false")).lower() == "true"}
    return [replace(p, masked=True) if p.parameter in secret else p for p in problems]


# -- CloudFormation's quotas, which the worker types use up ----------------------------------------


@dataclass(frozen=True)
class Footprint:
    """How much of CloudFormation's quotas a template uses after its transform, as a function of the worker
    type lists: each list's loops make `per_type` resources, outputs and bytes per type (bytes: `per_type`
    plus `per_character` per character of the type's name), on top of `fixed`. An empty list makes what one
    type makes (the loops run once for its one empty item, behind a condition). Bytes are an upper bound: a
    name with more than a dot is counted as if logical ids (&{}) kept its other hyphens. `quotas`: CloudFormation's
    (aws_rules.quotas), kept beside it so that checking needs neither cfn-lint nor the template."""

    fixed: dict[str, int]  # "resources", "outputs", "bytes"
    per_type: dict[str, dict[str, int]]  # list parameter → "resources", "outputs", "bytes"
    per_character: dict[str, int]  # list parameter → bytes per character of a type's name
    quotas: dict[str, int]  # "resources", "outputs", "bytes"

    def used(self, lists: dict[str, list[str]]) -> dict[str, int]:
        """What the template uses for these type lists (each a list of types)."""
        used = dict(self.fixed)
        for name, types in lists.items():
            counted = types or ["-"]  # the empty item: no dot for &{} to drop, as if one character more
            for what in used:
                used[what] += self.per_type[name][what] * len(counted)
            used["bytes"] += self.per_character[name] * sum(len(t) for t in counted)
        return used

    def most_types(self, lists: dict[str, list[str]]) -> int:
        """The largest number of types, in the lists that are given (an empty list stays empty), that fits every
        quota; each further type as costly as the costliest given."""
        given = [name for name, types in lists.items() if types] or list(lists)
        longest = max((len(t) for types in lists.values() for t in types), default=0)
        base = self.used({name: ([] if name in given else lists[name]) for name in lists})
        fits = []
        for what, quota in self.quotas.items():
            each = max(
                self.per_type[n][what] + (self.per_character[n] * longest if what == "bytes" else 0) for n in given
            )
            # `base` counts an empty type in each list: in the given ones, the types take its place.
            room = quota - base[what] + sum(self.per_type[n][what] for n in given)
            fits.append(room // each if each else quota)
        return max(min(fits), 0)


def template_footprint(template: dict[str, Any]) -> Footprint | None:
    """The template's footprint, measured by expanding its loops for made-up types (None for a template
    without both worker lists)."""
    from valohai_cfn import aws_rules
    from valohai_cfn.language_extensions import expand

    specs = template.get("Parameters", {})
    if not set(WORKER_TYPE_PARAMETERS) <= set(specs):
        return None

    def measure(**lists: list[str]) -> dict[str, int]:
        values = {n: ",".join(lists.get(n, ["x1.large"])) for n in WORKER_TYPE_PARAMETERS}
        processed = expand(template, values)
        return {
            "resources": len(processed.get("Resources", {})),
            "outputs": len(processed.get("Outputs", {})),
            "bytes": aws_rules.processed_size(processed),
        }

    one = measure()
    per_type, per_character = {}, {}
    for name in WORKER_TYPE_PARAMETERS:
        two = measure(**{name: ["x1.large", "x2.large"]})
        longer = measure(**{name: ["x1.large", "x2.larger"]})
        per_character[name] = longer["bytes"] - two["bytes"]
        per_type[name] = {
            k: two[k] - one[k] - (per_character[name] * len("x2.large") if k == "bytes" else 0) for k in one
        }
    fixed = {k: one[k] - sum(per_type[n][k] for n in WORKER_TYPE_PARAMETERS) for k in one}
    fixed["bytes"] -= sum(per_character[n] * len("x1.large") for n in WORKER_TYPE_PARAMETERS)
    q = aws_rules.quotas()
    return Footprint(
        fixed, per_type, per_character, {"resources": q.resources, "outputs": q.outputs, "bytes": q.body_bytes}
    )


QUOTA_WORDS = {"resources": "resources", "outputs": "outputs", "bytes": "bytes of processed template"}


def quota_problems(
    footprint: Footprint | None, template_parameters: dict[str, dict], given: dict[str, str]
) -> list[Problem]:
    """CloudFormation's quotas (500 resources, 200 outputs, 1 MB) on the template its transform makes for
    these worker types: one problem naming each quota exceeded and the largest number of types that fits."""
    if footprint is None or any(isinstance(given.get(n), PreviousValue) for n in WORKER_TYPE_PARAMETERS):
        return []
    lists = {
        n: [t for t in comma_delimited(str(given.get(n, template_parameters[n].get("Default", "")))) if t]
        for n in WORKER_TYPE_PARAMETERS
    }
    used = footprint.used(lists)
    over = [
        f"{used[k]:,} {QUOTA_WORDS[k]} (CloudFormation's quota: {q:,})"
        for k, q in footprint.quotas.items()
        if used[k] > q
    ]
    if not over:
        return []
    count = sum(len(types) for types in lists.values())
    named = " and ".join(n for n in WORKER_TYPE_PARAMETERS if lists[n]) or " and ".join(WORKER_TYPE_PARAMETERS)
    return [
        Problem(
            named,
            None,
            f"{count} worker types make {', '.join(over)}: at most {footprint.most_types(lists)} types fit",
        )
    ]
