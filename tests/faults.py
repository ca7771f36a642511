"""botocore event hooks on a client pointed at the local AWS: a call refused with an error shaped like
CloudFormation's, Ctrl-C (a real SIGINT) just before or just after a call, and the rules of CloudFormation the
local AWS does not enforce yet (DeleteStack refused while termination protection is on) or states it cannot
reach (a failed first create, ROLLBACK_COMPLETE). A hook that answers at `before-call` replaces the request, as
botocore's own Stubber does; the rest of the calls reach the local AWS.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.awsrequest import AWSResponse

from valohai_cfn.stack.policy import stack_policy


def error_response(code: str, message: str, status: int = 400) -> tuple[AWSResponse, dict]:
    """What botocore makes of CloudFormation's <ErrorResponse> (the query protocol's error shape)."""
    parsed = {
        "Error": {"Type": "Sender", "Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status, "RequestId": "fault-injected"},
    }
    return AWSResponse("https://cloudformation.amazonaws.com/", status, {}, None), parsed


def ctrl_c() -> None:
    """Ctrl-C as the process receives it: SIGINT, handled by whatever handler is installed at that moment."""
    signal.raise_signal(signal.SIGINT)


def api_params(params: dict) -> dict:
    """The call's parameters as the query protocol serialised them (before-call sees the request dict)."""
    body = params.get("body")
    return body if isinstance(body, dict) else {}


def enforce_termination_protection(cfn: Any, reader: Any) -> None:
    """DeleteStack refused while the stack's termination protection is on, with CloudFormation's error
    (ValidationError, "Stack [name] cannot be deleted while TerminationProtection is enabled"). `reader` is a
    plain client of the same local AWS, to look the stack up without going through these hooks."""

    def refuse(params: dict, **_kwargs: Any) -> tuple[AWSResponse, dict] | None:
        name = api_params(params).get("StackName", "")
        try:
            (stack,) = reader.describe_stacks(StackName=name)["Stacks"]
        except Exception:
            return None
        if stack.get("EnableTerminationProtection"):
            message = f"Stack [{stack['StackName']}] cannot be deleted while TerminationProtection is enabled"
            return error_response("ValidationError", message)
        return None

    cfn.meta.events.register("before-call.cloudformation.DeleteStack", refuse)


def rolled_back_first_create(cfn: Any, reader: Any, stack_ids: set[str]) -> None:
    """The stacks in `stack_ids` (a set the caller may add to later) read as ROLLBACK_COMPLETE (a first create
    that failed and was rolled back) until they are deleted: DescribeStacks says so, and ListStackResources lists
    their resources as deleted, as CloudFormation does. A stack made again under such a name is left as it is."""

    def status(parsed: dict, **_kwargs: Any) -> None:
        for stack in parsed.get("Stacks", []):
            if stack["StackId"] in stack_ids and stack["StackStatus"] in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
                stack["StackStatus"] = "ROLLBACK_COMPLETE"

    def remember(params: dict, context: dict, **_kwargs: Any) -> None:
        context["fault-stack"] = api_params(params).get("StackName", "")

    def resources(parsed: dict, context: dict, **_kwargs: Any) -> None:
        try:
            (stack,) = reader.describe_stacks(StackName=context.get("fault-stack", ""))["Stacks"]
        except Exception:
            return
        if stack["StackId"] not in stack_ids or stack["StackStatus"].startswith("DELETE"):
            return
        for resource in parsed.get("StackResourceSummaries", []):
            resource["ResourceStatus"] = "DELETE_COMPLETE"

    cfn.meta.events.register("after-call.cloudformation.DescribeStacks", status)
    cfn.meta.events.register("before-call.cloudformation.ListStackResources", remember)
    cfn.meta.events.register("after-call.cloudformation.ListStackResources", resources)


def operation_under_way(cfn: Any, stack_name: str) -> None:
    """The stack reads as its operation going on (CREATE_IN_PROGRESS for CREATE_COMPLETE, DELETE_IN_PROGRESS for
    DELETE_FAILED…), as AWS shows it for minutes: the local AWS runs an operation to its end inside the call."""

    def status(parsed: dict, **_kwargs: Any) -> None:
        for stack in parsed.get("Stacks", []):
            if stack["StackName"] == stack_name and stack["StackStatus"].endswith(("_COMPLETE", "_FAILED")):
                stack["StackStatus"] = stack["StackStatus"].rsplit("_", 1)[0] + "_IN_PROGRESS"

    cfn.meta.events.register("after-call.cloudformation.DescribeStacks", status)


@dataclass
class Fault:
    """One fault: at the `index`-th call (0-based, any operation), "fail" it, or Ctrl-C "before" or "after" it."""

    index: int
    kind: str  # "fail", "before", "after"


@dataclass
class Recorder:
    """Every CloudFormation call a client made (operation, its parameters, whether it succeeded), and one fault."""

    fault: Fault | None = None
    calls: list[tuple[str, dict]] = field(default_factory=list)
    succeeded: list[tuple[str, dict, dict]] = field(default_factory=list)  # (operation, parameters, response)
    fired: bool = False

    def reset(self, fault: Fault | None) -> None:
        """For the next run: no call recorded, this fault to come."""
        self.fault, self.calls, self.succeeded, self.fired = fault, [], [], False

    def attach(self, cfn: Any) -> None:
        cfn.meta.events.register_first("before-call.cloudformation.*", self._before)
        cfn.meta.events.register_last("after-call.cloudformation.*", self._after)

    def _before(self, model: Any, params: dict, **_kwargs: Any) -> tuple[AWSResponse, dict] | None:
        index = len(self.calls)
        self.calls.append((model.name, api_params(params)))
        if self.fault and self.fault.index == index:
            self.fired = True
            if self.fault.kind == "before":
                ctrl_c()
            elif self.fault.kind == "fail":
                return error_response("InternalFailure", f"{model.name} failed (injected)", 500)
        return None

    def _after(self, model: Any, http_response: AWSResponse, parsed: dict, **_kwargs: Any) -> None:
        if http_response.status_code < 300:
            self.succeeded.append((model.name, self.calls[-1][1], parsed))
        if self.fault and self.fault.kind == "after" and self.fault.index == len(self.calls) - 1:
            ctrl_c()

    def operations(self) -> list[str]:
        return [name for name, _ in self.calls]


def on_calls(cfn: Any, operation: str, action: Callable[[], Any], *, when: str = "after") -> None:
    """Run `action` just before or just after every call of `operation`."""

    def hook(**_kwargs: Any) -> None:
        action()

    cfn.meta.events.register(f"{'before' if when == 'before' else 'after'}-call.cloudformation.{operation}", hook)


# Small templates for the lifecycle's tests (cfn-lint clean, as --template requires): one with data (a bucket,
# a secret) and a setting, one without any data.
WITH_DATA = {
    "AWSTemplateFormatVersion": "2010-09-09",
    "Description": "A stack with data, for lifecycle tests",
    "Parameters": {"Setting": {"Type": "String", "Default": "one"}},
    "Resources": {
        "Data": {"Type": "AWS::S3::Bucket", "DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"},
        "Secret": {
            "Type": "AWS::SecretsManager::Secret",
            "DeletionPolicy": "Delete",
            "UpdateReplacePolicy": "Delete",
            "Properties": {"GenerateSecretString": {"PasswordLength": 32}},
        },
        "Value": {
            "Type": "AWS::SSM::Parameter",
            "Properties": {
                "Name": {"Fn::Sub": "/${AWS::StackName}/setting"},
                "Type": "String",
                "Value": {"Ref": "Setting"},
            },
        },
    },
}
# Another template: no database, bucket or secret at all.
NO_DATA = {
    "AWSTemplateFormatVersion": "2010-09-09",
    "Description": "Another stack's template, without data",
    "Resources": {
        "Value": {
            "Type": "AWS::SSM::Parameter",
            "Properties": {"Name": {"Fn::Sub": "/${AWS::StackName}/setting"}, "Type": "String", "Value": "other"},
        }
    },
}


# The same with more data (a second bucket), and with its bucket named (a new name replaces it).
WITH_MORE_DATA = {
    **WITH_DATA,
    "Resources": {**WITH_DATA["Resources"], "Extra": {"Type": "AWS::S3::Bucket", "DeletionPolicy": "Retain"}},
}


def with_bucket_named(name: str, template: dict = WITH_DATA) -> dict:
    data = template["Resources"]["Data"]
    return {**template, "Resources": {**template["Resources"], "Data": {**data, "Properties": {"BucketName": name}}}}


# A stack whose delete fails: its database has deletion protection, which RDS (and the local AWS) enforce.
UNDELETABLE = {
    "AWSTemplateFormatVersion": "2010-09-09",
    "Description": "A stack whose delete fails, for lifecycle tests",
    "Resources": {
        "Database": {
            "Type": "AWS::RDS::DBInstance",
            "DeletionPolicy": "Delete",
            "UpdateReplacePolicy": "Delete",
            "Properties": {
                "DBInstanceClass": "db.t4g.micro",
                "Engine": "postgres",
                "AllocatedStorage": "20",
                "MasterUsername": "valohai",
                "MasterUserPassword": "only-a-test-0",  # never deployed anywhere but the local AWS
                "DeletionProtection": True,
            },
        }
    },
}


def deployed(cfn: Any, name: str, template: dict = WITH_DATA) -> str:
    """A stack as `valohai-cfn deploy` leaves it (tagged valohai=1, termination protection, the template's stack
    policy), made directly with CreateStack: the deploy itself is tested in test_deploy_local.py. Its id."""
    return cfn.create_stack(
        StackName=name,
        TemplateBody=json.dumps(template),
        Tags=[{"Key": "valohai", "Value": "1"}],
        EnableTerminationProtection=True,
        StackPolicyBody=stack_policy(template),
    )["StackId"]
