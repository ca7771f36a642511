#!/bin/bash
# Boot script of a Valohai worker ("peon"), as in Valohai's installer (Module/Workers/ASG/peon/userdata).
#
# The build writes the group's queue in place of ${Queue} (<region>-<type>, or <region>-<type>-spot) and the
# Redis URL in place of ${QueueUrl} (rediss:// when QueueTransitEncryption is preferred or true), as Fn::Sub
# expressions CloudFormation fills in. Neither is a secret, and nothing else is read. No `set -x`: cloud-init logs are
# readable by operators.
set -euo pipefail

env "QUEUES=${Queue}" CLOUD=ec2 INSTALLATION_TYPE=private-worker "REDIS_URL=${QueueUrl}" \
  'PEON_EXTRA_CONFIG={"ALLOW_MOUNTS":"true"}' /home/ubuntu/bup.pex --only=configure_peon
systemctl restart peon
# Session Manager is how operators reach a worker (no SSH unless a key pair and a rule are added).
snap start amazon-ssm-agent || systemctl start amazon-ssm-agent
