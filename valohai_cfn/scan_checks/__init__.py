"""checkov checks of this project's own, loaded by `make scan` with --external-checks-dir.

checkov's built-in CloudFormation checks pass a bucket with no encryption block (S3 encrypts by
default) and have no RDS deletion-protection check; this installation asks for both explicitly.
Only checkov imports these modules.
"""
