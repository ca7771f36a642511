"""The stack policy: updates may not replace or delete the resources that hold data.

Generated from the template itself (every database, bucket and secret in it), written beside it as
templates/stack-policy.json, and applied by `valohai-cfn deploy` as soon as a stack exists (and again on
every deploy, should anyone have changed it). Takes the template as a document (a dict), so a reviewed
template file given with --template gets the policy its own resources need — for the stack's own parameter
values: a loop over a parameter (Fn::ForEach) makes one data resource per item the stack has, not per item
of the default.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from valohai_cfn.language_extensions import expand

PROTECTED_TYPES = ("AWS::RDS::DBInstance", "AWS::S3::Bucket", "AWS::SecretsManager::Secret")
# Resources whose removal or replacement loses data; a deploy refuses those without --allow-replace.
# The stack policy's protected types plus the queue, whose in-flight jobs a replacement would drop.
DATA_RESOURCE_TYPES = frozenset({*PROTECTED_TYPES, "AWS::ElastiCache::ReplicationGroup"})
ALLOW_ALL = {"Effect": "Allow", "Action": "Update:*", "Principal": "*", "Resource": "*"}
DENIED_ACTIONS = ["Update:Replace", "Update:Delete"]


def protected_resources(template: dict[str, Any], parameters: dict[str, str] | None = None) -> list[str]:
    """The data resources' logical ids, loops expanded for these parameter values (the template's defaults
    fill the rest; the secrets are made by one). Raises language_extensions.TransformError for a loop the
    transform would refuse."""
    resources = expand(template, dict(parameters or {}))["Resources"]
    return sorted(name for name, r in resources.items() if isinstance(r, dict) and r.get("Type") in PROTECTED_TYPES)


def policy_document(denied: Iterable[str]) -> dict:
    """A policy that allows every update but replacing or deleting the resources named."""
    names = sorted(set(denied))
    deny = {
        "Effect": "Deny",
        "Action": DENIED_ACTIONS,
        "Principal": "*",
        "Resource": [f"LogicalResourceId/{n}" for n in names],
    }
    return {"Statement": [ALLOW_ALL, deny] if names else [ALLOW_ALL]}


def policy_body(denied: Iterable[str]) -> str:
    return json.dumps(policy_document(denied), indent=2, sort_keys=True) + "\n"


def stack_policy_document(
    template: dict[str, Any], *, parameters: dict[str, str] | None = None, replaceable: frozenset[str] = frozenset()
) -> dict:
    """The policy; `replaceable` names data resources an approved update may replace or remove this once."""
    return policy_document(n for n in protected_resources(template, parameters) if n not in replaceable)


def stack_policy(
    template: dict[str, Any], *, parameters: dict[str, str] | None = None, replaceable: frozenset[str] = frozenset()
) -> str:
    return (
        json.dumps(
            stack_policy_document(template, parameters=parameters, replaceable=replaceable), indent=2, sort_keys=True
        )
        + "\n"
    )
