"""A local AWS to try the template on and to test against: moto in server mode, with CloudFormation
answered by this package.

The rule: every operation the local AWS accepts ends in the state CloudFormation would reach, read back
through each service's own API — or it is refused with a CloudFormation-shaped error ("not supported by
the local AWS: …"). Never an HTTP 500, never a COMPLETE for what did not happen.

What it does as CloudFormation does (moto alone does not):
- templates: the AWS::LanguageExtensions transform (Fn::ForEach) for CreateStack, UpdateStack and change
  sets; capabilities (CAPABILITY_IAM / CAPABILITY_NAMED_IAM always, CAPABILITY_AUTO_EXPAND for a
  transform outside a change set: InsufficientCapabilitiesException); parameter constraints and
  AWS-specific parameter types (VPC, subnet, security group, key pair ids that exist); conditions;
  Fn::Join and lists without AWS::NoValue items; Fn::Sub evaluating only the variables its text uses;
  dynamic references ({{resolve:secretsmanager:…}}, {{resolve:ssm:…}}) resolved when properties go to the
  service. `template`, `intrinsics`.
- change sets: each resource's properties evaluated for the new values and compared with what was applied
  (a parameter reached through Fn::Sub or a condition is a change), Replacement and Details (create-only
  properties from the resource provider schemas cfn-lint ships; Dynamic for values known only while
  executing), property values (IncludePropertyValues), the stack's own change sets, "no changes" as
  CloudFormation words it, GetTemplate of a change set (Original and Processed). `changesets`.
- operations: create, update in place, replace (new physical resource first, the old one removed in the
  cleanup phase under its UpdateReplacePolicy), remove; an event per resource with the request's token;
  a failure reported against the resource that failed, then a rollback (or *_FAILED with rollback
  disabled); DeleteStack under each DeletionPolicy (a final snapshot for Snapshot); a failed delete is
  DELETE_FAILED naming the resource; a second CREATE of a stack that exists is AlreadyExistsException; one
  operation at a time. `operations`, `api`.
- the rules AWS enforces: termination protection on DeleteStack; the stack policy on every update;
  a custom-named resource cannot be replaced; ElastiCache turns in-transit encryption on or off only
  through TransitEncryptionMode preferred; RDS storage does not shrink. `rules` (add one there).
- resources: ElastiCache, Secrets Manager, S3 bucket policies and ACM certificates, which moto's
  CloudFormation lacks; EC2 instances, RDS instances, ingress rules, SSM parameters and Auto Scaling
  groups made with every property the template sets; every property applied at create and changed in
  place through the service's API, or refused. `models`, `updates`.
- drift: DetectStackDrift, DetectStackResourceDrift, DescribeStackDriftDetectionStatus,
  DescribeStackResourceDrifts for security groups and ingress rules, SSM parameters and Auto Scaling
  groups (other types NOT_CHECKED). `drift`.

Where it still differs from AWS:
- operations run to their end inside the API call (no *_IN_PROGRESS state is ever seen between calls);
  nothing boots: the app instance's user data never runs, so CreationPolicy signals are not awaited;
- stack tags are not copied onto the resources (CloudFormation tags each one); EC2 resources get the
  aws:cloudformation:* tags, other services' resources do not;
- a type or property the local AWS cannot make or change is refused when the change set is made
  ("not supported by the local AWS: …"), as are transforms other than AWS::LanguageExtensions, nested
  stacks, macros, imports and change sets of type IMPORT;
- services' own limits and checks are moto's (no quotas, no real certificate validation, no engine
  version catalogue) plus the rules above.

This package is the only code that knows moto (the optional `local` extra); only the command line's
`local-aws` and the tests import it.
"""

from .server import NOT_APPLIED, LocalAws, create_demo_network

__all__ = ["NOT_APPLIED", "LocalAws", "create_demo_network"]
