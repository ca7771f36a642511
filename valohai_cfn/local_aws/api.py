"""The CloudFormation API as the local AWS answers it, on moto's CloudFormation service: stacks, change sets,
resources, events, templates and their summaries, stack policies, exports, termination protection, drift,
and the operations on a stack that stopped (RollbackStack, ContinueUpdateRollback). `install()` is the one
place the package changes moto: every action of CloudFormation's API (botocore's service model) gets a
handler — the local AWS's, moto's where it answers right for these stacks (DescribeStacks reads the local
state through the Stack properties set here; ListStacks, GetStackPolicy), or a refusal in
CloudFormation's error shape for what the local AWS does not model.

Every call runs under one lock: the server answers requests in threads, and CloudFormation runs one
operation on a stack at a time (of two deploys of one new stack, the second finds its change set gone or
the stack made: ChangeSetNotFound, AlreadyExistsException).
An error the local AWS did not foresee is still answered in CloudFormation's shape, without Python's
internals, never as a 500.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urlsplit

import botocore.session
from botocore import xform_name
from moto.cloudformation.exceptions import AlreadyExistsException, CloudFormationError, ValidationError
from moto.cloudformation.models import CloudFormationBackend, Stack
from moto.cloudformation.responses import CloudFormationResponse
from moto.cloudformation.utils import generate_changeset_id, generate_stack_id, validate_create_change_set
from moto.core.exceptions import ServiceException
from moto.core.responses import ActionResult, EmptyResult
from moto.ec2.models import ec2_backends
from moto.moto_api._internal import mock_random
from moto.route53.models import ROUTE53_ID_CHOICE, HostedZoneIdentifier
from moto.s3.models import s3_backends
from moto.utilities.id_generator import moto_id_manager

from valohai_cfn.aws_rules import tag_problems

from . import drift, operations, rules, services
from .changesets import NO_CHANGES, ChangeSet, ChangeSetNotFound, InvalidChangeSetStatus, plan
from .stacks import Resource, StackState, outputs, stack_event, state
from .template import Processed, process, summary

LOCK = threading.RLock()
logger = logging.getLogger(__name__)

UPDATABLE = (
    "CREATE_COMPLETE",
    "UPDATE_COMPLETE",
    "UPDATE_ROLLBACK_COMPLETE",
    "IMPORT_COMPLETE",
    "IMPORT_ROLLBACK_COMPLETE",
    # Failed with rollback disabled: an update retries what failed.
    "CREATE_FAILED",
    "UPDATE_FAILED",
)


# The drift detections run, by id: DescribeStackDriftDetectionStatus reads them back.
DETECTIONS: dict[str, drift.Detection] = {}


def _unforeseen(action: str) -> ValidationError:
    """An error the local AWS did not foresee, in CloudFormation's shape: no 500, no Python internals (the
    server's log has the traceback)."""
    return rules.not_supported(f"{action} met what the local AWS does not model (its log says what)")


def _answered(handler: Callable[[CloudFormationResponse], Any]) -> Callable[..., Any]:
    @functools.wraps(handler)
    def answer(self: CloudFormationResponse) -> Any:
        with LOCK:
            try:
                return handler(self)
            except (CloudFormationError, ServiceException):
                raise
            except Exception as e:  # an error the local AWS did not foresee: CloudFormation's shape, not a 500
                logger.exception("the local AWS failed to answer %s", self._get_action())
                raise _unforeseen(self._get_action()) from e

    answer.local_aws = True  # type: ignore[attr-defined]
    return answer


# -- helpers ---------------------------------------------------------------------------------------


def _bool(self: CloudFormationResponse, name: str) -> bool:
    return bool(self._get_bool_param(name, False))


def _tags(self: CloudFormationResponse) -> dict[str, str] | None:
    """The stack tags asked for, refused as CloudFormation refuses them (the aws: prefix, lengths, count)."""
    given = self._get_param("Tags")
    if given is None:
        return None
    tags = {t["Key"]: t.get("Value", "") for t in given}
    refused = tag_problems(tags, propagated=False)
    if refused:
        raise ValidationError(message="; ".join(refused))
    return tags


def _live_stack(backend: CloudFormationBackend, name: str) -> Stack | None:
    for stack in backend.stacks.values():
        if name in (stack.name, stack.stack_id):
            return stack
    return None


def _stack(backend: CloudFormationBackend, name: str) -> Stack:
    """A stack by name (live only) or id (deleted ones too), or CloudFormation's error."""
    stack = _live_stack(backend, name) or backend.deleted_stacks.get(name)
    if stack is None:
        raise ValidationError(message=f"Stack with id {name} does not exist")
    return stack


def _body(self: CloudFormationResponse, stack: Stack | None) -> str:
    body = self._get_param("TemplateBody")
    url = self._get_param("TemplateURL")
    previous = _bool(self, "UsePreviousTemplate")
    if previous and (body or url):
        raise ValidationError(message="You cannot specify both usePreviousTemplate and Template Body/Template URL.")
    if previous:
        if stack is None or not stack.template:
            raise ValidationError(message="The stack has no previous template")
        return stack.template
    if url:
        return _s3_object(self, url, "TemplateURL")
    if not body:
        raise ValidationError(message="Either Template URL or Template Body must be specified.")
    return body


def _s3_object(self: CloudFormationResponse, url: str, parameter: str) -> str:
    """The text of the S3 object an HTTPS URL names, path-style or virtual-hosted (or path-style on the local
    AWS's own endpoint); CloudFormation's refusal when it names none (moto: AttributeError on a missing key)."""
    refused = ValidationError(message=f"{parameter} must reference a valid S3 object to which you have access.")
    parts = urlsplit(url)
    host, path = parts.hostname or "", unquote(parts.path.lstrip("/"))
    if host in ("127.0.0.1", "localhost") or host.startswith(("s3.", "s3-")):
        bucket, _, key = path.partition("/")
    elif ".s3." in host or ".s3-" in host:
        bucket, key = host.split(".s3", 1)[0], path
    else:
        raise refused
    try:
        found = s3_backends[self.current_account][self.partition].get_object(bucket, key)
    except ServiceException:  # no such bucket
        raise refused from None
    if found is None:
        raise refused
    return found.value.decode("utf-8")


def _stack_policy(self: CloudFormationResponse, body_parameter: str, url_parameter: str) -> str | None:
    """A stack policy given as a body or a URL (None: neither), checked to be one: the update that reads it
    must not be the first to find it is not."""
    body, url = self._get_param(body_parameter), self._get_param(url_parameter)
    if body and url:
        raise ValidationError(message=f"You cannot specify both {url_parameter} and {body_parameter}")
    text = body or (_s3_object(self, url, url_parameter) if url else None)
    if text is None:
        return None
    try:
        statements = json.loads(text)["Statement"]
        if not isinstance(statements, (list, dict)):
            raise TypeError(statements)
        # Evaluating it once: the update that reads it later must not be the first to fail on it.
        rules.stack_policy_denial(text, "Update:Modify", "Check", "AWS::CloudFormation::Stack")
    except (ValueError, KeyError, TypeError, AttributeError):
        # CloudFormation's exact words for a malformed policy are not known here.
        raise ValidationError(message="The stack policy is not a JSON policy document with a Statement") from None
    return text


def _refuse_unmodelled(self: CloudFormationResponse, *names: str) -> None:
    """A request parameter that changes what CloudFormation does, which the local AWS would otherwise drop:
    ResourceTypes (a template with other types is refused), RetainExceptOnCreate (a rollback keeps what it
    made)."""
    for name in names:
        value = self._get_param(name)
        if value not in (None, "", []) and str(value).lower() != "false":
            raise rules.not_supported(f"{self._get_action()} with {name}")


def _given_parameters(self: CloudFormationResponse, stack: Stack | None) -> dict[str, str]:
    given = {}
    for entry in self._get_param("Parameters", []) or []:
        key = entry["ParameterKey"]
        if str(entry.get("UsePreviousValue", "")).lower() == "true":
            if entry.get("ParameterValue"):
                raise ValidationError(
                    message=f"Invalid input for parameter key {key}. Cannot specify usePreviousValue as true and "
                    "non empty value for a parameter"
                )
            previous = state(stack).processed if stack is not None else None
            if previous is None or key not in previous.values:
                raise ValidationError(
                    message=f"Invalid input for parameter key {key}. Cannot specify usePreviousValue as true for a "
                    "parameter key not in the previous template"
                )
            given[key] = previous.values[key]
        else:
            given[key] = str(entry.get("ParameterValue", ""))
    return given


def _processed(self: CloudFormationResponse, stack: Stack, body: str, *, direct: bool) -> Processed:
    return process(
        body,
        _given_parameters(self, stack),
        region=stack.region_name,
        account_id=stack.account_id,
        stack_name=stack.name,
        capabilities=self._get_param("Capabilities", []) or [],
        direct=direct,
        ec2=ec2_backends[stack.account_id][stack.region_name],
    )


def _check_updatable(stack: Stack) -> None:
    if stack.status not in UPDATABLE:
        raise ValidationError(message=f"Stack:{stack.stack_id} is in {stack.status} state and can not be updated.")


def _new_stack(self: CloudFormationResponse, backend: CloudFormationBackend, name: str) -> Stack:
    return new_stack(
        backend,
        name,
        tags=_tags(self) or {},
        role_arn=self._get_param("RoleARN"),
        notification_arns=self._get_param("NotificationARNs", []),
    )


def new_stack(
    backend: CloudFormationBackend,
    name: str,
    *,
    tags: dict[str, str],
    role_arn: str | None = None,
    notification_arns: list[str] | None = None,
) -> Stack:
    """A stack of this package's CloudFormation, not yet in the backend (nothing made)."""
    stack = Stack(
        stack_id=generate_stack_id(name, backend.region_name, backend.account_id),
        name=name,
        template={},
        parameters={},
        account_id=backend.account_id,
        region_name=backend.region_name,
        notification_arns=notification_arns or [],
        tags=tags,
        role_arn=role_arn,
    )
    stack.local = StackState()
    return stack


def create(
    backend: CloudFormationBackend, stack: Stack, processed: Processed, token: str | None, *, rollback: bool
) -> None:
    """CreateStack's operation on a new stack: made in the backend, run to CREATE_COMPLETE, or to the failed
    resource's event and a rollback (CREATE_FAILED without)."""
    _snapshot_policies(processed)
    changes = plan(stack, state(stack), processed)
    backend.stacks[stack.stack_id] = stack
    change_set = ChangeSet("", "", stack, "CREATE", processed, changes, None, stack.tags, [], stack.role_arn, [])
    operations.execute(backend, change_set, token, disable_rollback=not rollback)


def update(
    backend: CloudFormationBackend, stack: Stack, processed: Processed, token: str | None, **options: Any
) -> bool:
    """UpdateStack's operation: False (nothing run) when nothing would change, as CloudFormation's "No updates
    are to be performed"; `options` as operations.execute takes them."""
    _check_updatable(stack)
    _snapshot_policies(processed)
    changes = plan(stack, state(stack), processed)
    if _unchanged(stack, processed, changes, None):
        return False
    change_set = ChangeSet("", "", stack, "UPDATE", processed, changes, None, stack.tags, [], stack.role_arn, [])
    operations.execute(backend, change_set, token, **options)
    return True


def _unchanged(stack: Stack, processed: Processed, changes: list, tags: dict[str, str] | None) -> bool:
    previous = state(stack).processed
    return (
        not changes
        and previous is not None
        and previous.document == processed.document
        and previous.values == processed.values
        and (tags is None or tags == stack.tags)
    )


def _snapshot_policies(processed: Processed) -> None:
    for name, resource in processed.resources.items():
        for policy in ("DeletionPolicy", "UpdateReplacePolicy"):
            if resource.get(policy) == "Snapshot" and resource["Type"] not in operations.SNAPSHOT_TYPES:
                raise rules.not_supported(f"{policy} Snapshot of {resource['Type']} (resource {name})")


def _change_set(backend: CloudFormationBackend, name: str, stack_name: str | None) -> ChangeSet:
    found = backend.change_sets.get(name)
    if found is None:
        for change_set in backend.change_sets.values():
            if change_set.change_set_name == name and (
                stack_name is None or stack_name in (change_set.stack.name, change_set.stack_id)
            ):
                found = change_set
    if found is None:
        raise ChangeSetNotFound(name)
    return found


# -- stacks ------------------------------------------------------------------------------------------


@_answered
def create_stack(self: CloudFormationResponse) -> ActionResult:
    _refuse_unmodelled(self, "ResourceTypes", "RetainExceptOnCreate")
    backend = self.cloudformation_backend
    name = self._get_param("StackName")
    if _live_stack(backend, name) is not None:
        raise AlreadyExistsException(f"Stack [{name}] already exists")
    stack = _new_stack(self, backend, name)
    processed = _processed(self, stack, _body(self, None), direct=True)
    stack.enable_termination_protection = _bool(self, "EnableTerminationProtection")
    stack.policy = _stack_policy(self, "StackPolicyBody", "StackPolicyURL") or ""
    stack.timeout_in_minutes = self._get_param("TimeoutInMinutes")
    on_failure = self._get_param("OnFailure") or ("DO_NOTHING" if _bool(self, "DisableRollback") else "ROLLBACK")
    stack.disable_rollback = on_failure == "DO_NOTHING"
    token = self._get_param("ClientRequestToken")
    create(backend, stack, processed, token, rollback=not stack.disable_rollback)
    if on_failure == "DELETE" and stack.status == "ROLLBACK_COMPLETE":
        operations.delete(backend, stack, token)
    return ActionResult({"StackId": stack.stack_id})


@_answered
def update_stack(self: CloudFormationResponse) -> ActionResult:
    _refuse_unmodelled(self, "ResourceTypes", "RetainExceptOnCreate")
    backend = self.cloudformation_backend
    stack = _stack(backend, self._get_param("StackName"))
    _check_updatable(stack)
    processed = _processed(self, stack, _body(self, stack), direct=True)
    _snapshot_policies(processed)
    changes = plan(stack, state(stack), processed)
    during = _stack_policy(self, "StackPolicyDuringUpdateBody", "StackPolicyDuringUpdateURL")
    policy = _stack_policy(self, "StackPolicyBody", "StackPolicyURL")
    tags = _tags(self)
    if _unchanged(stack, processed, changes, tags):
        raise ValidationError(message="No updates are to be performed.")
    if tags is not None:
        stack.tags = tags
    change_set = ChangeSet("", "", stack, "UPDATE", processed, changes, None, stack.tags, [], stack.role_arn, [])
    operations.execute(
        backend,
        change_set,
        self._get_param("ClientRequestToken"),
        disable_rollback=_bool(self, "DisableRollback"),
        policy_during_update=during,
    )
    if policy is not None:
        stack.policy = policy
    return ActionResult({"StackId": stack.stack_id})


@_answered
def delete_stack(self: CloudFormationResponse) -> ActionResult:
    backend = self.cloudformation_backend
    name = self._get_param("StackName")
    stack = _live_stack(backend, name)
    if stack is None:
        return EmptyResult()  # CloudFormation answers a stack that is not there with success
    rules.check_termination_protection(stack)
    if self._get_param("RetainResources"):
        raise rules.not_supported("DeleteStack with RetainResources")
    operations.delete(backend, stack, self._get_param("ClientRequestToken"))
    return EmptyResult()


@_answered
def update_termination_protection(self: CloudFormationResponse) -> ActionResult:
    stack = _stack(self.cloudformation_backend, self._get_param("StackName"))
    stack.enable_termination_protection = _bool(self, "EnableTerminationProtection")
    return ActionResult({"StackId": stack.stack_id})


# -- change sets -------------------------------------------------------------------------------------


@_answered
def create_change_set(self: CloudFormationResponse) -> ActionResult:
    _refuse_unmodelled(self, "ResourceTypes", "RetainExceptOnCreate")
    backend = self.cloudformation_backend
    name = self._get_param("ChangeSetName")
    validate_create_change_set(name)
    stack_name = self._get_param("StackName")
    kind = self._get_param("ChangeSetType") or "UPDATE"
    existing = _live_stack(backend, stack_name)
    if kind == "CREATE":
        if existing is not None and existing.status != "REVIEW_IN_PROGRESS":
            raise AlreadyExistsException(
                f"Stack [{stack_name}] already exists and cannot be created again with the changeSet [{name}]."
            )
        stack = existing or _new_stack(self, backend, stack_name)
    elif kind == "UPDATE":
        if existing is None:
            raise ValidationError(message=f"Stack [{stack_name}] does not exist")
        stack = existing
        _check_updatable(stack)
    else:
        raise rules.not_supported(f"change sets of type {kind}")
    processed = _processed(self, stack, _body(self, stack if kind == "UPDATE" else None), direct=False)
    _snapshot_policies(processed)
    changes = plan(stack, state(stack), processed)
    tags = _tags(self)
    change_set = ChangeSet(
        change_set_id=generate_changeset_id(name, backend.region_name, backend.account_id),
        change_set_name=name,
        stack=stack,
        kind=kind,
        processed=processed,
        changes=changes,
        description=self._get_param("Description"),
        tags=tags if tags is not None else dict(stack.tags),
        capabilities=self._get_param("Capabilities", []) or [],
        role_arn=self._get_param("RoleARN"),
        notification_arns=self._get_param("NotificationARNs", []) or [],
    )
    change_set.on_failure = self._get_param("OnStackFailure") or "ROLLBACK"
    if kind == "UPDATE" and _unchanged(stack, processed, changes, tags):
        change_set.status, change_set.execution_status, change_set.status_reason = "FAILED", "UNAVAILABLE", NO_CHANGES
    if existing is None:
        backend.stacks[stack.stack_id] = stack
        stack_event(stack, "REVIEW_IN_PROGRESS", None, "User Initiated")
    backend.change_sets[change_set.change_set_id] = change_set
    return ActionResult({"Id": change_set.change_set_id, "StackId": stack.stack_id})


@_answered
def describe_change_set(self: CloudFormationResponse) -> ActionResult:
    change_set = _change_set(
        self.cloudformation_backend, self._get_param("ChangeSetName"), self._get_param("StackName")
    )
    return ActionResult(change_set.described(_bool(self, "IncludePropertyValues")))


@_answered
def delete_change_set(self: CloudFormationResponse) -> ActionResult:
    backend = self.cloudformation_backend
    change_set = _change_set(backend, self._get_param("ChangeSetName"), self._get_param("StackName"))
    del backend.change_sets[change_set.change_set_id]
    return EmptyResult()


@_answered
def list_change_sets(self: CloudFormationResponse) -> ActionResult:
    """The stack's change sets (moto lists every stack's)."""
    backend = self.cloudformation_backend
    stack = _stack(backend, self._get_param("StackName"))
    return ActionResult(
        {"Summaries": [c.summary() for c in backend.change_sets.values() if c.stack_id == stack.stack_id]}
    )


@_answered
def execute_change_set(self: CloudFormationResponse) -> ActionResult:
    _refuse_unmodelled(self, "RetainExceptOnCreate")
    backend = self.cloudformation_backend
    change_set = _change_set(backend, self._get_param("ChangeSetName"), self._get_param("StackName"))
    if change_set.status != "CREATE_COMPLETE" or change_set.execution_status != "AVAILABLE":
        raise InvalidChangeSetStatus(
            f"ChangeSet [{change_set.change_set_id}] cannot be executed in its current status of [{change_set.status}]"
        )
    stack = change_set.stack
    if change_set.kind == "UPDATE":
        _check_updatable(stack)
    stack.tags = dict(change_set.tags)
    stack.disable_rollback = _bool(self, "DisableRollback")
    operations.execute(
        backend, change_set, self._get_param("ClientRequestToken"), disable_rollback=stack.disable_rollback
    )
    return EmptyResult()


# -- resources and templates -------------------------------------------------------------------------


def _summary(resource: Resource, local: StackState) -> dict[str, Any]:
    drifted = local.drift_by_resource.get(resource.logical_id)
    summary: dict[str, Any] = {
        "LogicalResourceId": resource.logical_id,
        "ResourceType": resource.resource_type,
        "LastUpdatedTimestamp": resource.updated,
        "ResourceStatus": resource.status,
        "DriftInformation": {
            "StackResourceDriftStatus": drifted["StackResourceDriftStatus"] if drifted else "NOT_CHECKED",
            **({"LastCheckTimestamp": drifted["Timestamp"]} if drifted else {}),
        },
    }
    if resource.physical_id or resource.reason is None:
        summary["PhysicalResourceId"] = resource.physical_id
    if resource.reason:
        summary["ResourceStatusReason"] = resource.reason
    return summary


@_answered
def list_stack_resources(self: CloudFormationResponse) -> ActionResult:
    stack = _stack(self.cloudformation_backend, self._get_param("StackName"))
    local = state(stack)
    return ActionResult({"StackResourceSummaries": [_summary(r, local) for r in local.resources.values()]})


def _detail(stack: Stack, resource: Resource) -> dict[str, Any]:
    detail = _summary(resource, state(stack))
    detail.pop("LastUpdatedTimestamp")
    return {**detail, "StackName": stack.name, "StackId": stack.stack_id, "Timestamp": resource.updated}


def _holding(backend: CloudFormationBackend, physical_id: str) -> Stack:
    """The live stack one of whose resources has this physical id (DescribeStackResources without a name)."""
    for stack in backend.stacks.values():
        local = getattr(stack, "local", None)  # not state(): a stack of moto's own stays moto's
        if local is not None and any(r.physical_id == physical_id for r in local.resources.values()):
            return stack
    raise ValidationError(message=f"Stack for {physical_id} does not exist")


@_answered
def describe_stack_resources(self: CloudFormationResponse) -> ActionResult:
    logical, physical = self._get_param("LogicalResourceId"), self._get_param("PhysicalResourceId")
    name = self._get_param("StackName")
    if name is None and physical is None:
        raise ValidationError(message="Either StackName or PhysicalResourceId must be specified")
    stack = _stack(self.cloudformation_backend, name) if name else _holding(self.cloudformation_backend, physical)
    chosen = [
        r
        for r in state(stack).resources.values()
        if (logical is None or r.logical_id == logical) and (physical is None or r.physical_id == physical)
    ]
    return ActionResult({"StackResources": [_detail(stack, r) for r in chosen]})


@_answered
def describe_stack_resource(self: CloudFormationResponse) -> ActionResult:
    stack = _stack(self.cloudformation_backend, self._get_param("StackName"))
    logical = self._get_param("LogicalResourceId")
    resource = state(stack).resources.get(logical)
    if resource is None:
        raise ValidationError(message=f"Resource {logical} does not exist for stack {stack.name}")
    detail = {**_detail(stack, resource), "LastUpdatedTimestamp": resource.updated}
    detail.pop("Timestamp")
    # cfn-init and cfn-hup read the resource's Metadata from here.
    detail["Metadata"] = json.dumps(resource.metadata or {})
    return ActionResult({"StackResourceDetail": detail})


@_answered
def get_template(self: CloudFormationResponse) -> ActionResult:
    backend = self.cloudformation_backend
    stage = self._get_param("TemplateStage") or "Original"
    change_set_name = self._get_param("ChangeSetName")
    if change_set_name:
        processed = _change_set(backend, change_set_name, self._get_param("StackName")).processed
    else:
        stack = _stack(backend, self._get_param("StackName"))
        processed = state(stack).processed
        if processed is None:
            raise ValidationError(message=f"Stack {stack.name} has no template yet: it is {stack.status}")
    body = processed.body if stage == "Original" else json.dumps(processed.document)
    return ActionResult({"TemplateBody": body, "StagesAvailable": ["Original", "Processed"]})


EVENTS_PER_PAGE = 100


@_answered
def describe_stack_events(self: CloudFormationResponse) -> ActionResult:
    """Newest first, a page at a time as CloudFormation gives them (moto gives every event of the stack in
    one answer, which grows with every operation)."""
    stack = _stack(self.cloudformation_backend, self._get_param("StackName"))
    newest_first = stack.events[::-1]
    start = int(self._get_param("NextToken") or 0)
    page = newest_first[start : start + EVENTS_PER_PAGE]
    more = start + EVENTS_PER_PAGE < len(newest_first)
    return ActionResult({"StackEvents": page, **({"NextToken": str(start + EVENTS_PER_PAGE)} if more else {})})


# -- drift -------------------------------------------------------------------------------------------


def _drift_ready(stack: Stack) -> None:
    if stack.status.endswith("_IN_PROGRESS") or stack.status in ("REVIEW_IN_PROGRESS", "DELETE_COMPLETE"):
        raise ValidationError(message=f"Stack [{stack.name}] is in {stack.status} state and drift cannot be detected")


@_answered
def detect_stack_drift(self: CloudFormationResponse) -> ActionResult:
    stack = _stack(self.cloudformation_backend, self._get_param("StackName"))
    _drift_ready(stack)
    detection = drift.detect(stack)
    DETECTIONS[detection.detection_id] = detection
    return ActionResult({"StackDriftDetectionId": detection.detection_id})


@_answered
def describe_stack_drift_detection_status(self: CloudFormationResponse) -> ActionResult:
    detection_id = self._get_param("StackDriftDetectionId")
    detection = DETECTIONS.get(detection_id)
    if detection is None:
        raise ValidationError(message=f"Drift detection [{detection_id}] does not exist")
    return ActionResult(detection.status())


@_answered
def describe_stack_resource_drifts(self: CloudFormationResponse) -> ActionResult:
    stack = _stack(self.cloudformation_backend, self._get_param("StackName"))
    wanted = set(self._get_param("StackResourceDriftStatusFilters", []) or [])
    drifts = list(state(stack).drift_by_resource.values())
    return ActionResult(
        {"StackResourceDrifts": [d for d in drifts if not wanted or d["StackResourceDriftStatus"] in wanted]}
    )


@_answered
def detect_stack_resource_drift(self: CloudFormationResponse) -> ActionResult:
    stack = _stack(self.cloudformation_backend, self._get_param("StackName"))
    _drift_ready(stack)
    logical = self._get_param("LogicalResourceId")
    detection = drift.detect(stack, only=logical)
    if detection.failed:
        raise rules.not_supported(f"reading the live state of {logical} for drift (the local AWS's log says why)")
    (found,) = detection.drifts or [None]
    if found is None:
        raise ValidationError(message=f"Resource {logical} does not exist for stack {stack.name}")
    return ActionResult({"StackResourceDrift": found})


# -- templates, policies, exports -----------------------------------------------------------------------


def _summarised_body(self: CloudFormationResponse) -> str:
    stack_name = self._get_param("StackName")
    if stack_name:
        stack = _stack(self.cloudformation_backend, stack_name)
        processed = state(stack).processed
        if processed is None:
            raise ValidationError(message="GetTemplateSummary cannot be called on REVIEW_IN_PROGRESS stacks.")
        return processed.body
    return _body(self, None)


@_answered
def get_template_summary(self: CloudFormationResponse) -> ActionResult:
    """A template's summary, as CloudFormation reads it (moto's answered HTTP 500 on Fn::ForEach); a stack
    set's is refused, as StackSets are."""
    if self._get_param("StackSetName"):
        raise rules.not_supported("GetTemplateSummary of a stack set (the local AWS does not model StackSets)")
    return ActionResult(summary(_summarised_body(self)))


@_answered
def validate_template(self: CloudFormationResponse) -> ActionResult:
    """Parameters, Capabilities and DeclaredTransforms as CloudFormation lists them (moto's: none of them)."""
    found = summary(_body(self, None))
    validated = {
        k: found[k] for k in ("Description", "Capabilities", "CapabilitiesReason", "DeclaredTransforms") if k in found
    }
    validated["Parameters"] = [
        {k: p[k] for k in ("ParameterKey", "DefaultValue", "NoEcho", "Description") if k in p}
        for p in found["Parameters"]
    ]
    return ActionResult(validated)


@_answered
def set_stack_policy(self: CloudFormationResponse) -> ActionResult:
    stack = _stack(self.cloudformation_backend, self._get_param("StackName"))
    policy = _stack_policy(self, "StackPolicyBody", "StackPolicyURL")
    if policy is None:
        raise ValidationError(message="Either StackPolicyBody or StackPolicyURL must be specified.")
    stack.policy = policy
    return EmptyResult()


def _exports(backend: CloudFormationBackend) -> list[dict[str, str]]:
    return [
        {"ExportingStackId": stack.stack_id, "Name": output["ExportName"], "Value": output["OutputValue"]}
        for stack in backend.stacks.values()
        if getattr(stack, "local", None) is not None
        for output in outputs(stack) or []
        if "ExportName" in output
    ]


@_answered
def list_exports(self: CloudFormationResponse) -> ActionResult:
    """The exports of the stacks' outputs as they are now (moto's listed those of its own stacks only)."""
    return ActionResult({"Exports": _exports(self.cloudformation_backend)})


@_answered
def list_imports(self: CloudFormationResponse) -> ActionResult:
    """No stack here imports anything (the local AWS refuses Fn::ImportValue), so CloudFormation's answer for
    an export nobody imports; whether it words a missing export the same way is not known here."""
    name = self._get_param("ExportName")
    raise ValidationError(message=f"Export '{name}' is not imported by any stack.")


# -- operations on a stack that stopped -------------------------------------------------------------------


@_answered
def continue_update_rollback(self: CloudFormationResponse) -> ActionResult:
    """Resume a rollback a service stopped (UPDATE_ROLLBACK_FAILED), the ResourcesToSkip left as the update
    made them."""
    stack = _stack(self.cloudformation_backend, self._get_param("StackName"))
    unfinished = state(stack).unfinished
    if stack.status != "UPDATE_ROLLBACK_FAILED" or unfinished is None:
        # CloudFormation refuses any other status; its exact words are not known here.
        raise ValidationError(
            message=f"Stack [{stack.name}] is in {stack.status} state: ContinueUpdateRollback continues only an "
            "UPDATE_ROLLBACK_FAILED rollback"
        )
    token = self._get_param("ClientRequestToken")
    operations.skip_in_rollback(stack, unfinished, self._get_param("ResourcesToSkip", []) or [], token)
    operations.roll_back(stack, unfinished, token, "User Initiated")
    return EmptyResult()


@_answered
def rollback_stack(self: CloudFormationResponse) -> ActionResult:
    """A stack left CREATE_FAILED or UPDATE_FAILED (rollback disabled) back to its last stable state: a first
    create's resources removed, an update's changes undone."""
    stack = _stack(self.cloudformation_backend, self._get_param("StackName"))
    unfinished = state(stack).unfinished
    if stack.status not in ("CREATE_FAILED", "UPDATE_FAILED") or unfinished is None:
        # CloudFormation refuses any other status; its exact words are not known here.
        raise ValidationError(
            message=f"Stack [{stack.name}] is in {stack.status} state: RollbackStack rolls back only a "
            "CREATE_FAILED or UPDATE_FAILED stack"
        )
    if _bool(self, "RetainExceptOnCreate"):
        raise rules.not_supported("RollbackStack with RetainExceptOnCreate")
    operations.roll_back(stack, unfinished, self._get_param("ClientRequestToken"), "User Initiated")
    return ActionResult({"StackId": stack.stack_id})


@_answered
def cancel_update_stack(self: CloudFormationResponse) -> ActionResult:
    """An update here ends inside the call that starts it: no stack is ever UPDATE_IN_PROGRESS to cancel."""
    _stack(self.cloudformation_backend, self._get_param("StackName"))
    raise ValidationError(message="CancelUpdateStack cannot be called from current stack status")


@_answered
def signal_resource(self: CloudFormationResponse) -> ActionResult:
    stack = _stack(self.cloudformation_backend, self._get_param("StackName"))
    logical = self._get_param("LogicalResourceId")
    if logical not in state(stack).resources:
        raise ValidationError(message=f"Resource {logical} does not exist for stack {stack.name}")
    raise rules.not_supported(
        "SignalResource: no resource here waits for a signal (an operation ends inside the call that starts it, "
        "and a CreationPolicy is not awaited)"
    )


@_answered
def estimate_template_cost(self: CloudFormationResponse) -> ActionResult:
    _body(self, None)
    raise rules.not_supported("EstimateTemplateCost (CloudFormation answers with an AWS Pricing Calculator link)")


# -- what DescribeStacks reads from a stack ----------------------------------------------------------


def _parameter_list(stack: Stack) -> list[dict[str, Any]]:
    processed = state(stack).processed
    if processed is None:
        return []
    hidden = processed.no_echo()
    return [{"ParameterKey": k, "ParameterValue": "****" if k in hidden else v} for k, v in processed.values.items()]


def _drift_information(stack: Stack) -> dict[str, Any]:
    local = state(stack)
    information: dict[str, Any] = {"StackDriftStatus": local.drift_status}
    if local.drift_checked:
        information["LastCheckTimestamp"] = local.drift_checked
    return information


HANDLERS = {
    "create_stack": create_stack,
    "update_stack": update_stack,
    "delete_stack": delete_stack,
    "update_termination_protection": update_termination_protection,
    "create_change_set": create_change_set,
    "describe_change_set": describe_change_set,
    "delete_change_set": delete_change_set,
    "list_change_sets": list_change_sets,
    "execute_change_set": execute_change_set,
    "list_stack_resources": list_stack_resources,
    "describe_stack_resources": describe_stack_resources,
    "describe_stack_resource": describe_stack_resource,
    "get_template": get_template,
    "describe_stack_events": describe_stack_events,
    "detect_stack_drift": detect_stack_drift,
    "describe_stack_drift_detection_status": describe_stack_drift_detection_status,
    "describe_stack_resource_drifts": describe_stack_resource_drifts,
    "detect_stack_resource_drift": detect_stack_resource_drift,
    "get_template_summary": get_template_summary,
    "validate_template": validate_template,
    "set_stack_policy": set_stack_policy,
    "list_exports": list_exports,
    "list_imports": list_imports,
    "continue_update_rollback": continue_update_rollback,
    "rollback_stack": rollback_stack,
    "cancel_update_stack": cancel_update_stack,
    "signal_resource": signal_resource,
    "estimate_template_cost": estimate_template_cost,
}

MOTO_KEPT = frozenset({"describe_stacks", "list_stacks", "get_stack_policy", "describe_stack_set", "list_stack_sets"})
"""moto's own handlers that answer right for the local AWS's stacks (they read what `install` makes the
Stack properties give), and its reads of the StackSets' bookkeeping, which `stacksets` keeps. moto's other
StackSet handlers are not kept (they made each instance with moto's own CloudFormation, left a stack
CREATE_IN_PROGRESS behind a refusal, and reported every instance CURRENT whatever happened): `stacksets`
answers them, and StopStackSetOperation is refused (an operation ends inside its call here)."""

# moto's handlers as moto defines them, before `install` replaces any (it runs once per LocalAws).
_MOTO_HANDLERS: dict[str, Callable[[CloudFormationResponse], Any]] = {
    name: handler
    for name, handler in vars(CloudFormationResponse).items()
    if callable(handler) and not name.startswith("_") and not getattr(handler, "local_aws", False)
}


@functools.cache
def cloudformation_actions() -> dict[str, str]:
    """Every action of CloudFormation's API (botocore's service model), by handler name: CreateStack is
    create_stack."""
    model = botocore.session.get_session().get_service_model("cloudformation")
    return {xform_name(action): action for action in model.operation_names}


def _not_modelled(action: str) -> Callable[[CloudFormationResponse], Any]:
    def refuse(self: CloudFormationResponse) -> Any:
        raise rules.not_supported(f"{action} (the local AWS does not model it)")

    refuse.__name__ = xform_name(action)
    return _answered(refuse)


def _handler(name: str, action: str) -> Callable[[CloudFormationResponse], Any]:
    if name in HANDLERS:
        return HANDLERS[name]
    moto_handler = _MOTO_HANDLERS.get(name)
    if moto_handler is not None and name in MOTO_KEPT:
        return _answered(moto_handler)
    return _not_modelled(action)


_moto_call_action = CloudFormationResponse.call_action


def _call_action(self: CloudFormationResponse) -> Any:
    """Every CloudFormation request, under the lock; an error a handler let through (one installed without
    `_answered`) in CloudFormation's error shape, never a 500."""
    with LOCK:
        try:
            return _moto_call_action(self)
        except Exception:  # whatever escaped: the answer is still CloudFormation's shape
            logger.exception("the local AWS failed to answer %s", self._get_action())
            status, headers, body = self.serialized(ActionResult(_unforeseen(self._get_action())))
            headers["status"] = status
            status, headers, body = self._transform_response(self.response_headers, (body, headers))
            headers, body = self._enrich_response(headers, body)
            return status, headers, body


def _for_ours(ours: Callable[[Stack], Any], moto_property: Any) -> property:
    """A Stack property read from the local state for the stacks this package made, from moto's own for the
    rest (a StackSet's instances are moto's)."""
    if isinstance(moto_property, property) and getattr(moto_property.fget, "local_aws", False):
        moto_property = moto_property.fget.moto_property  # installed before: keep moto's original

    def read(stack: Stack) -> Any:
        return ours(stack) if getattr(stack, "local", None) is not None else moto_property.fget(stack)

    read.local_aws = True  # type: ignore[attr-defined]
    read.moto_property = moto_property  # type: ignore[attr-defined]
    return property(read)


def _hosted_zone_id(context: Any) -> str | None:
    """Route 53's hosted zone ids start with Z (templates check for it, this one's HostedZoneId among them);
    moto's are any 22 capitals and digits."""
    if not isinstance(context.get("resource_identifier"), HostedZoneIdentifier):
        return None
    while True:
        zone = "Z" + "".join(mock_random.choice(ROUTE53_ID_CHOICE) for _ in range(20))
        if zone not in (context.get("existing_ids") or []):
            return zone


def install() -> None:
    """Answer these calls, and DescribeStacks from the local state; the services' calls moto lacks; hosted
    zone ids as Route 53's; StackSets through this package's CloudFormation."""
    from . import stacksets

    services.install()
    if _hosted_zone_id not in moto_id_manager._id_sources:
        moto_id_manager.add_id_source(_hosted_zone_id)
    # Every action of CloudFormation's API: the local AWS's handler, moto's where it answers right, else a
    # refusal in CloudFormation's shape (moto answered the actions it lacks with an HTML 500 page).
    for name, action in cloudformation_actions().items():
        setattr(CloudFormationResponse, name, _handler(name, action))
    # After the loop, which would put moto's StackSet calls back: StackSets are this package's.
    stacksets.install()
    CloudFormationResponse.call_action = _call_action  # type: ignore[method-assign]
    # DescribeChangeSet's answer is given in its final shape; moto's reshaping of its own is not wanted.
    CloudFormationResponse.RESPONSE_KEY_PATH_TO_TRANSFORMER = {
        path: transform
        for path, transform in CloudFormationResponse.RESPONSE_KEY_PATH_TO_TRANSFORMER.items()
        if not path.startswith("DescribeChangeSetOutput.")
    }
    Stack.parameter_list = _for_ours(_parameter_list, Stack.parameter_list)  # type: ignore[assignment]
    Stack.outputs = _for_ours(outputs, Stack.outputs)  # type: ignore[assignment]
    Stack.stack_status_reason = property(lambda s: state(s).status_reason)  # type: ignore[attr-defined]
    Stack.last_updated_time = property(lambda s: state(s).updated)  # type: ignore[attr-defined]
    Stack.drift_information = property(_drift_information)  # type: ignore[attr-defined]
