"""Valohai's images for RoiAmiId and WorkerAmiId: `latest` resolved to the newest one shared with the account.

Valohai shares its images with each customer account, per region: `valohai-roi-*` (the app instance) and
`valohai-peon-*` (the workers), owned by Valohai's account 635691382966. Valohai's installer finds the worker
image the same way (valohai/valohai-self-hosted-aws-tf at f60087b, Module/Workers/ASG/main.tf: an aws_ami
data source with most_recent, name valohai-peon-*, virtualization-type hvm, owners 635691382966), as the CDK
app did. The template takes plain image ids; the command line resolves `latest` before it sends anything.

No heavy import here: `params check` reads LATEST and IMAGE_NAMES without loading boto3.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

VALOHAI_ACCOUNT = "635691382966"
LATEST = "latest"
# The image parameters, and the name pattern of the images each one takes.
IMAGE_NAMES = {"RoiAmiId": "valohai-roi-*", "WorkerAmiId": "valohai-peon-*"}


class ImageNotShared(Exception):
    """No image of the name is shared with the account in the region; the message is one line that says
    which account and region to ask Valohai to share the images with."""


class ImageDowngrade(Exception):
    """`latest` would replace the deployed image with an older one (Valohai stopped sharing the newer, or
    disabled it): an older app on a database the newer one migrated. One line with the way forward."""


@dataclass(frozen=True)
class ResolvedImage:
    """What `latest` became for one parameter."""

    parameter: str  # RoiAmiId or WorkerAmiId
    image_id: str  # ami-…
    name: str  # the image's name, e.g. valohai-roi-20260301
    created: str  # its CreationDate as EC2 gives it (ISO 8601, UTC)


def wants_latest(name: str, value: str) -> bool:
    """Whether a parameter's value is one the command line resolves: `latest` for RoiAmiId or WorkerAmiId."""
    return name in IMAGE_NAMES and value == LATEST


def _age(image: dict[str, Any]) -> tuple[str, str]:
    """What orders images in time: CreationDate (ISO 8601 strings sort as dates), then the name (Valohai's
    names carry the build date) between two of the same second."""
    return image.get("CreationDate", ""), image.get("Name", "")


def newest(images: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The image with the latest CreationDate, as Terraform's most_recent chooses (_age)."""
    return max(images, key=_age, default=None)


def newest_shared_image(ec2: Any, pattern: str) -> dict[str, Any] | None:
    """The newest available hvm image named `pattern` (an EC2 name filter such as valohai-roi-*) that Valohai's
    account owns and this account may launch, in the client's region; None when there is none.
    DescribeImages with Owners lists only the owner's images the caller can use (shared with it, or public)."""
    pages = ec2.get_paginator("describe_images").paginate(
        Owners=[VALOHAI_ACCOUNT],
        Filters=[
            {"Name": "name", "Values": [pattern]},
            {"Name": "state", "Values": ["available"]},
            {"Name": "virtualization-type", "Values": ["hvm"]},
        ],
    )
    return newest([image for page in pages for image in page["Images"]])


def not_shared(parameter: str, pattern: str, account: str, region: str) -> str:
    """The one line that says no image for `parameter` is shared, and whom to ask for what."""
    return (
        f"{parameter}=latest: no {pattern} image of Valohai's account {VALOHAI_ACCOUNT} is shared with this account; "
        f"ask Valohai to share the images with account {account} in region {region}"
    )


def resolve_images(
    ec2: Any, sts: Any, parameters: dict[str, str], deployed: dict[str, str] | None = None
) -> tuple[dict[str, str], list[ResolvedImage]]:
    """The parameters with each `latest` of RoiAmiId / WorkerAmiId replaced by the newest image Valohai shares
    with the account in `ec2`'s region, and what was resolved (empty when nothing was `latest`, and then no
    AWS call is made). `parameters` maps names to values as a parameter file gives them; it is not changed.
    `deployed`: the stack's current values, for an update.

    `ec2` and `sts` are boto3 clients of the account and region the stack is deployed to. Raises ImageNotShared
    (one line naming the account, from STS GetCallerIdentity, and the region) when no such image is shared,
    ImageDowngrade when the image chosen is older than the deployed one, and botocore's ClientError when
    DescribeImages itself fails."""
    resolved_parameters = dict(parameters)
    resolved: list[ResolvedImage] = []
    for parameter, pattern in IMAGE_NAMES.items():
        if not wants_latest(parameter, parameters.get(parameter, "")):
            continue
        image = newest_shared_image(ec2, pattern)
        if image is None:
            account = sts.get_caller_identity()["Account"]
            raise ImageNotShared(not_shared(parameter, pattern, account, ec2.meta.region_name))
        _refuse_downgrade(ec2, parameter, image, (deployed or {}).get(parameter, ""))
        resolved_parameters[parameter] = image["ImageId"]
        resolved.append(ResolvedImage(parameter, image["ImageId"], image.get("Name", ""), image["CreationDate"]))
    return resolved_parameters, resolved


def _refuse_downgrade(ec2: Any, parameter: str, chosen: dict[str, Any], deployed_id: str) -> None:
    """ImageDowngrade when the deployed image is newer than the one chosen. A deployed image EC2 no longer
    describes (deregistered) cannot be compared: the review shows the change."""
    if not deployed_id.startswith("ami-") or deployed_id == chosen["ImageId"]:
        return
    try:
        images = ec2.describe_images(ImageIds=[deployed_id])["Images"]
    except ClientError:
        return
    if not images or _age(images[0]) <= _age(chosen):
        return
    current = images[0]
    raise ImageDowngrade(
        f"{parameter}=latest: the newest image Valohai shares now, {chosen['ImageId']} ({chosen.get('Name', '')}, "
        f"made {chosen['CreationDate']}), is older than the deployed {deployed_id} ({current.get('Name', '')}, made "
        f"{current['CreationDate']}): an older app would run on a database the newer one migrated. Keep "
        f"{parameter}={deployed_id} (or UsePreviousValue), or ask Valohai why the newer image is no longer shared"
    )
