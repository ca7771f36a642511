#!/bin/bash
# Boot script of a Valohai worker ("peon"), as in Valohai's installer (Module/Workers/ASG/peon/userdata).
#
# CloudFormation renders this file with Fn::Sub: ${Queue} is the group's queue (<region>-<type>, or
# <region>-<type>-spot) and ${QueueUrl} the Redis URL (rediss:// when QueueTransitEncryption is on).
# Neither is a secret, and nothing else is read. No `set -x`: cloud-init logs are readable by operators.
set -euo pipefail

env "QUEUES=${Queue}" CLOUD=ec2 INSTALLATION_TYPE=private-worker "REDIS_URL=${QueueUrl}" \
  'PEON_EXTRA_CONFIG={"ALLOW_MOUNTS":"true"}' /home/ubuntu/bup.pex --only=configure_peon
systemctl restart peon
# Session Manager is how operators reach a worker (no SSH unless a key pair and a rule are added).
snap start amazon-ssm-agent || systemctl start amazon-ssm-agent
