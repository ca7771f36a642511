"""The stack policy: updates may not replace or delete the resources that hold data.

Generated from the template itself (every database, bucket and secret in it), written beside it as
templates/stack-policy.json, and applied by `valohai-cfn deploy` to new stacks.
"""

from __future__ import annotations

import json

from troposphere import Template

from valohai_cfn.language_extensions import expand

PROTECTED_TYPES = ("AWS::RDS::DBInstance", "AWS::S3::Bucket", "AWS::SecretsManager::Secret")


def protected_resources(t: Template) -> list[str]:
    """The data resources' logical ids, loops expanded (the secrets are made by one)."""
    resources = expand(json.loads(json.dumps(t.to_dict())), {})["Resources"]
    return sorted(name for name, r in resources.items() if r["Type"] in PROTECTED_TYPES)


def stack_policy_document(t: Template) -> dict:
    return {
        "Statement": [
            {"Effect": "Allow", "Action": "Update:*", "Principal": "*", "Resource": "*"},
            {
                "Effect": "Deny",
                "Action": ["Update:Replace", "Update:Delete"],
                "Principal": "*",
                "Resource": [f"LogicalResourceId/{name}" for name in protected_resources(t)],
            },
        ]
    }


def stack_policy(t: Template) -> str:
    return json.dumps(stack_policy_document(t), indent=2, sort_keys=True) + "\n"
