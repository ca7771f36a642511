"""A local AWS to try the template on and to test against: moto in server mode plays the services, and this
package plays CloudFormation on top of them.

The rule: every operation the local AWS accepts ends in the state CloudFormation would reach, read back
through each service's own API — or it is refused with a CloudFormation-shaped error ("not supported by
the local AWS: …"). Never an HTTP 500, never a COMPLETE for what did not happen.

What it does as CloudFormation does, where moto alone does not:
- templates (`template`, `intrinsics`): the AWS::LanguageExtensions transform (Fn::ForEach) for CreateStack,
  UpdateStack and change sets (moto runs none: its CreateStack answered HTTP 500); the capabilities a
  template needs (CAPABILITY_IAM / CAPABILITY_NAMED_IAM, and CAPABILITY_AUTO_EXPAND for a transform outside
  a change set: InsufficientCapabilitiesException); parameter constraints and AWS-specific types (VPC,
  subnet, security group and key pair ids that exist); a name that is both a parameter and a resource
  refused; conditions; Fn::Join and lists without the AWS::NoValue items (moto wrote the text "None");
  Fn::Sub evaluating only the variables its text uses; each intrinsic function's arguments as
  CloudFormation's reference has them (a literal list of the right length, a string delimiter, a
  whole-number index within the list, a list of strings to join), refused in its words ("Template error:
  …"); dynamic references ({{resolve:secretsmanager:…}}, {{resolve:ssm:…}}) resolved only when the
  properties go to the service (moto kept them as text), an SSM parameter that does not exist refused
  with the template ("Parameters: [ssm:…] cannot be found."); a resource's top-level properties checked
  against its schema's string/array/object kinds ("Properties validation failed for resource …").
  GetTemplateSummary and ValidateTemplate read a template as CloudFormation does, loops included
  (parameters, resource types, the IAM capability and why, declared transforms; moto: HTTP 500 on
  Fn::ForEach, and no parameters or capabilities); a TemplateURL or stack policy URL is read from S3
  (path-style, virtual-hosted, or the local endpoint), refused in CloudFormation's words when it names no
  object.
- change sets (`changesets`): each resource's properties evaluated for the new values and compared with
  what was applied, so a parameter reached through Fn::Sub or a condition is a change (moto compared
  Refs); Replacement True / Conditional / False and Details with RequiresRecreation (create-only properties
  from the resource provider schemas cfn-lint ships), Dynamic where a value is known only while executing;
  property values (IncludePropertyValues); a stack's own change sets; "no changes" in CloudFormation's
  words; GetTemplate of a stack or a change set, Original or Processed; a second CREATE change set joins
  the stack under review, and a CREATE of a stack that exists is AlreadyExistsException.
- operations (`operations`, `api`): create in dependency order, update in place, replace (the new physical
  resource first, the old one removed in the cleanup phase under its UpdateReplacePolicy), remove; an event
  per resource with the request's ClientRequestToken, DescribeStackEvents a page at a time; a failure
  reported against the resource that failed, then a rollback (the updated resources changed back, the new
  ones removed), or *_FAILED with rollback disabled, which RollbackStack then rolls back to the last
  stable state; an undo the service refuses (RDS storage does not shrink back) is UPDATE_ROLLBACK_FAILED,
  and ContinueUpdateRollback resumes it, its ResourcesToSkip left as the update made them; DeleteStack
  under each DeletionPolicy (Retain keeps, Snapshot has the service take a final snapshot as part of a
  delete it accepts — none when it refuses), DELETE_FAILED naming what a service refused to delete (a
  protected database); ListStackResources with each resource's status and reason; DescribeStackResources by a
  physical id alone (the stack that holds it); ListExports of the stacks' outputs; one operation at a time.
- the API (`api`): every action of CloudFormation's API (botocore's service model) answered: by the local
  AWS (StackSets by `stacksets`), by moto where it answers right (DescribeStacks, ListStacks,
  GetStackPolicy, DescribeStackSet, ListStackSets), or refused in CloudFormation's error shape
  (StopStackSetOperation, EstimateTemplateCost, the registry, resource scans, generated templates,
  refactors, hooks…: "not supported by the local AWS: …"); an error nobody foresaw is answered
  in the same shape without Python's internals (moto: an HTML 500 page); a request parameter it would
  drop (ResourceTypes, RetainExceptOnCreate) refused. CancelUpdateStack and SignalResource are refused
  as CloudFormation refuses them for a stack or resource that is not in progress, which here none is.
- rules (`rules`, where to add one): termination protection on DeleteStack; the stack policy on every
  Update:Modify, Update:Replace and Update:Delete; a custom-named resource cannot be replaced under its
  name; ElastiCache offers the engine versions DescribeCacheEngineVersions lists, upgrades them and never
  downgrades, and turns in-transit encryption on or off only through TransitEncryptionMode preferred;
  RDS creates the versions DescribeDBEngineVersions lists in the classes orderable for them, never
  downgrades, takes a new major version only with AllowMajorVersionUpgrade, and its storage does not
  shrink; EC2 takes only its characters in security group and rule descriptions; stack tags as
  CloudFormation takes them (no aws: prefix, its lengths and count).
- resources (`models`, `updates`): ElastiCache, Secrets Manager, S3 bucket policies and ACM certificates,
  which moto's CloudFormation lacks; EC2 instances, RDS instances, ingress rules, SSM parameters and Auto
  Scaling groups with every property the template sets (moto's models dropped some); each property applied
  once, when the resource is made and changed in place through the service's API, or refused — nested
  parts too (a bucket's lifecycle rule with ObjectSizeGreaterThan, a volume's NoDevice, an IPv6 rule);
  S3 buckets' encryption (BucketKeyEnabled), lifecycle (expiration, transitions, filters), ownership
  controls, CORS, versioning and public access block as the S3 API reads them back; instance volumes
  with their type, size, IOPS, throughput, encryption, KMS key and snapshot as EC2 reads them back (moto
  dropped IOPS and throughput, and refused io1/io2); DNS-validated certificates issued once the record
  ACM asks for is written in the DomainValidationOptions' hosted zone (Route 53 refuses a zone that
  cannot hold it); what a service needs before a delete (a role's policies detached); AWS managed IAM
  policies, which moto loads only on request; Route 53 hosted zone ids that start with Z; EC2 resources
  tagged aws:cloudformation:*.
- the services' own calls moto lacks or answers untruly (`services`): ElastiCache DescribeCacheEngineVersions
  and DescribeReservedCacheNodesOfferings, RDS DescribeDBEngineVersions and DescribeOrderableDBInstanceOptions
  (cfn-lint's catalogues of AWS's versions, classes and node types; moto: HTTP 500 or nothing); CreateSecret
  of a name scheduled for deletion refused; RegisterImage keeping the architecture and root size; an Auto
  Scaling instance keeping the launch template version it was launched from; EC2's description characters
  through the API; DescribeImages listing the images another account shares with the caller; EC2
  RunInstances refusing a key pair that does not exist (InvalidKeyPair.NotFound); ACM issuing a
  DNS-validated certificate on its validation records, not after a minute whatever DNS holds; Auto Scaling
  UpdateAutoScalingGroup keeping a MixedInstancesPolicy the call does not repeat; any operation of any service
  moto has not implemented, has no route for or fails on answered in the service's error shape, HTTP 501
  NotImplemented, naming it (`server`; moto: an HTML 500 or 404 page, which botocore could not parse and, for
  the 500, retried); request bodies read as moto's werkzeug reads them (chunked to the end, a Content-Length it
  cannot read as 0, one over 5 GiB refused unread: EntityTooLarge).
- StackSets (`stacksets`): each stack instance a stack of this package's CloudFormation in its account and
  region (StackSet-<name>-<id>), made, updated and deleted by the StackSet's operations; instances and
  operations report CURRENT / SUCCEEDED, or OUTDATED / FAILED with the stack's reason, and CANCELLED past the
  failure tolerance; the capabilities, no transform with service-managed permissions, accounts or
  organizational units as targets by permission model (INTERSECTION, DIFFERENCE, UNION), and the execution
  role in each target account (self-managed). moto made every instance with its own CloudFormation (or none)
  and reported SUCCEEDED / CURRENT whatever happened.
- drift (`drift`): DetectStackDrift, DetectStackResourceDrift, DescribeStackDriftDetectionStatus and
  DescribeStackResourceDrifts for security groups and ingress rules, SSM parameters and Auto Scaling groups
  (spot worker groups' MixedInstancesPolicy too, a service's defaults for what the template does not set
  being no drift; other types NOT_CHECKED, as CloudFormation reports an unsupported one); a live state it
  cannot read is that resource's DETECTION_FAILED, not a failed call; moto answered a 500 page.

Where it still differs from AWS:
- an operation runs to its end inside the API call: no *_IN_PROGRESS state is seen between two calls;
- nothing boots: the app instance's user data never runs, so its CreationPolicy signal is not awaited
  (and SignalResource is refused); an Auto Scaling group launching from a launch template with a key pair
  that does not exist fails its create or update (AWS's API accepts the group, and its launches fail);
- stack tags are not copied onto the resources, and only EC2 resources get the aws:cloudformation:* tags;
- a change of VpcId alone is applied (AWS refuses it: the subnets stay in the old VPC); the local AWS does
  not check that a resource's subnets and security groups share a VPC (`NOT_APPLIED`);
- a type or property it cannot make or change is refused when the change set is made, as are transforms
  other than AWS::LanguageExtensions, nested stacks, imports, Fn::ImportValue, Fn::Cidr and the other
  functions it does not evaluate, AWS::NoValue where a function needs a value (CloudFormation's handling
  of it there is not known), changing a resource's type, and DeletionPolicy Snapshot on types other than
  RDS instances and ElastiCache replication groups; a certificate whose validation records CloudFormation
  would not write (no HostedZoneId, email validation) is refused rather than waited for;
- where CloudFormation's exact wording of a refusal is not known here, the message says the same in
  words of its own (the code says which); GetTemplateSummary gives no ResourceIdentifierSummaries, and
  an export name two stacks share is not refused;
- permissions are not evaluated: a RoleARN is accepted and not used, any access key works (another account
  is reached through STS AssumeRole, whose credentials act in the role's account, whatever its trust says);
  a StackSet's administration role is not checked, nor an execution role's trust;
- the services' own limits and checks are moto's (no quotas) plus the rules, catalogues and fixes above;
  stack tags are not copied onto resources, so a tag character a service refuses is not refused here
  (valohai-cfn refuses it before CreateStack);
- the catalogues are cfn-lint's, the same for every account: no account is refused a class or version for
  its own reasons, and every zone of the region offers every orderable class.

This package is the only code that knows moto (the optional `local` extra); only the command line's
`local-aws` and the tests import it.
"""

from .server import NOT_APPLIED, LocalAws, create_demo_network

__all__ = ["NOT_APPLIED", "LocalAws", "create_demo_network"]
