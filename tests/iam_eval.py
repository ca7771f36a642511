"""A small evaluator of IAM identity policies, enough for the template's: Allow and Deny, actions and resources with
wildcards, and the condition operators the template uses (StringEquals, StringLike, Bool) on a request context."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any

from cfn import Evaluator, as_list

# AWS's managed policy AmazonSSMManagedInstanceCore, attached to the master and worker roles (as published by AWS).
SSM_MANAGED_INSTANCE_CORE = [
    {
        "Effect": "Allow",
        "Action": [
            "ssm:DescribeAssociation",
            "ssm:GetDeployablePatchSnapshotForInstance",
            "ssm:GetDocument",
            "ssm:DescribeDocument",
            "ssm:GetManifest",
            "ssm:GetParameter",
            "ssm:GetParameters",
            "ssm:ListAssociations",
            "ssm:ListInstanceAssociations",
            "ssm:PutInventory",
            "ssm:PutComplianceItems",
            "ssm:PutConfigurePackageResult",
            "ssm:UpdateAssociationStatus",
            "ssm:UpdateInstanceAssociationStatus",
            "ssm:UpdateInstanceInformation",
        ],
        "Resource": "*",
    },
    {
        "Effect": "Allow",
        "Action": [
            "ssmmessages:CreateControlChannel",
            "ssmmessages:CreateDataChannel",
            "ssmmessages:OpenControlChannel",
            "ssmmessages:OpenDataChannel",
        ],
        "Resource": "*",
    },
    {
        "Effect": "Allow",
        "Action": [
            "ec2messages:AcknowledgeMessage",
            "ec2messages:DeleteMessage",
            "ec2messages:FailMessage",
            "ec2messages:GetEndpoint",
            "ec2messages:GetMessages",
            "ec2messages:SendReply",
        ],
        "Resource": "*",
    },
]
MANAGED = {"arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore": SSM_MANAGED_INSTANCE_CORE}


@dataclass
class Request:
    action: str
    resource: str
    context: dict[str, str] = field(default_factory=dict)


def _matches(pattern: str, value: str, *, case_sensitive: bool = True) -> bool:
    if not case_sensitive:
        pattern, value = pattern.lower(), value.lower()
    return fnmatch.fnmatchcase(value, pattern)


def _condition_holds(condition: dict[str, dict[str, Any]], context: dict[str, str]) -> bool:
    for operator, pairs in condition.items():
        for key, expected in pairs.items():
            if key not in context:
                return False
            wanted = [str(v) for v in as_list(expected)]
            if operator == "StringEquals" and context[key] not in wanted:
                return False
            if operator == "StringLike" and not any(_matches(w, context[key]) for w in wanted):
                return False
            if operator == "Bool" and context[key].lower() not in [w.lower() for w in wanted]:
                return False
            if operator not in ("StringEquals", "StringLike", "Bool"):
                raise ValueError(f"operator {operator} is not evaluated here")
    return True


def _applies(statement: dict, request: Request) -> bool:
    return (
        any(_matches(a, request.action, case_sensitive=False) for a in as_list(statement["Action"]))
        and any(_matches(r, request.resource) for r in as_list(statement["Resource"]))
        and _condition_holds(statement.get("Condition", {}), request.context)
    )


def role_statements(template: dict, role: str, evaluate: Evaluator) -> list[dict]:
    """Every statement the role's inline and managed policies grant, intrinsic functions evaluated."""
    properties = template["Resources"][role]["Properties"]
    statements = [evaluate(s) for p in properties.get("Policies", []) for s in p["PolicyDocument"]["Statement"]]
    for arn in properties.get("ManagedPolicyArns", []):
        statements += MANAGED[evaluate(arn)]
    return statements


def allowed(statements: list[dict], request: Request) -> bool:
    if any(s["Effect"] == "Deny" and _applies(s, request) for s in statements):
        return False
    return any(s["Effect"] == "Allow" and _applies(s, request) for s in statements)
