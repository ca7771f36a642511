"""The stack policy: updates may not replace or delete the resources that hold data.

Generated from the template itself (every database, bucket and secret in it), written beside it as
templates/stack-policy.json, and applied by `valohai-cfn deploy` as soon as a stack exists (and again on
every deploy, should anyone have changed it). Takes the template as a document (a dict), so a reviewed
template file given with --template gets the policy its own resources need.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from valohai_cfn.language_extensions import expand

PROTECTED_TYPES = ("AWS::RDS::DBInstance", "AWS::S3::Bucket", "AWS::SecretsManager::Secret")
# Resources whose removal or replacement loses data; a deploy refuses those without --allow-replace.
# The stack policy's protected types plus the queue, whose in-flight jobs a replacement would drop.
DATA_RESOURCE_TYPES = frozenset({*PROTECTED_TYPES, "AWS::ElastiCache::ReplicationGroup"})


def protected_resources(template: dict[str, Any]) -> list[str]:
    """The data resources' logical ids, loops expanded (the secrets are made by one)."""
    resources = expand(copy.deepcopy(template), {})["Resources"]
    return sorted(name for name, r in resources.items() if r["Type"] in PROTECTED_TYPES)


def stack_policy_document(template: dict[str, Any], *, replaceable: frozenset[str] = frozenset()) -> dict:
    """The policy; `replaceable` names data resources an approved update may replace or remove this once."""
    denied = [name for name in protected_resources(template) if name not in replaceable]
    allow = {"Effect": "Allow", "Action": "Update:*", "Principal": "*", "Resource": "*"}
    deny = {
        "Effect": "Deny",
        "Action": ["Update:Replace", "Update:Delete"],
        "Principal": "*",
        "Resource": [f"LogicalResourceId/{name}" for name in denied],
    }
    return {"Statement": [allow, deny] if denied else [allow]}


def stack_policy(template: dict[str, Any], *, replaceable: frozenset[str] = frozenset()) -> str:
    return json.dumps(stack_policy_document(template, replaceable=replaceable), indent=2, sort_keys=True) + "\n"
