"""AWS's own rules that the schema and cfn-lint do not check, in one place: the product checks them before AWS
would refuse, and the local AWS (valohai_cfn.local_aws.rules) refuses what they refuse, as AWS does.

- EC2's characters of security group and rule descriptions;
- stack tags: CloudFormation's lengths and count (botocore's model of the API), the `aws:` prefix AWS
  reserves, and the characters the services the tags propagate to accept (SSM's pattern, as botocore has it);
- CloudFormation's quotas on a processed template: resources, outputs and size (cfn-lint's LIMITS).
"""

from __future__ import annotations

import functools
import json
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

# EC2: "Constraints: Up to 255 characters in length. Constraints for EC2-VPC: a-z, A-Z, 0-9, spaces, and
# ._-:/()#,@[]+=&;{}!$*" (CreateSecurityGroup GroupDescription; IpRange/UserIdGroupPair Description).
EC2_DESCRIPTION = re.compile(r"[a-zA-Z0-9 ._\-:/()#,@\[\]+=&;{}!$*]{0,255}")
EC2_DESCRIPTION_CHARACTERS = "letters, digits, spaces and ._-:/()#,@[]+=&;{}!$*"


def ec2_description_problem(text: str) -> str | None:
    """Why EC2 refuses `text` as a security group's or a rule's description, or None."""
    if len(text) > 255:
        return f"{len(text)} characters: EC2 takes at most 255"
    bad = sorted({c for c in text if not EC2_DESCRIPTION.fullmatch(c)})
    if bad:
        return f"{''.join(bad)!r} not allowed: EC2 takes only {EC2_DESCRIPTION_CHARACTERS}"
    return None


# -- stack tags ----------------------------------------------------------------------------------

RESERVED_TAG_PREFIX = "aws:"
# SSM's (and IAM's, ACM's, ELB's) tag pattern [\p{L}\p{Z}\p{N}_.:/=+\-@]: Unicode letters, separators (spaces)
# and numbers, and these. Stack tags propagate to the SSM parameters and the load balancer.
TAG_PUNCTUATION = "_.:/=+-@"


@functools.cache
def _stack_tag_limits() -> dict[str, int]:
    """CloudFormation's limits on stack tags, from botocore's model of CreateStack (TagKey, TagValue, Tags)."""
    import botocore.session

    model = botocore.session.get_session().get_service_model("cloudformation")
    key, value, tags = (model.shape_for(n).metadata for n in ("TagKey", "TagValue", "Tags"))
    return {"key": key["max"], "value_min": value["min"], "value": value["max"], "count": tags["max"]}


def _tag_character_ok(c: str) -> bool:
    return unicodedata.category(c)[0] in "LZN" or c in TAG_PUNCTUATION


# The stack tag valohai-cfn adds to every stack it makes (deploy.VALOHAI_TAG).
OWN_TAG = ("valohai", "1")


def tag_problems(tags: dict[str, str], *, propagated: bool = True) -> list[str]:
    """Every reason AWS refuses these stack tags (with the tags valohai-cfn adds), one line each; empty when
    it takes them. `propagated`: also the characters the services refuse when CloudFormation copies the tags
    onto their resources (CloudFormation's own CreateStack takes them, the resource's create then fails)."""
    limits = _stack_tag_limits()
    problems = []
    # valohai-cfn adds its own tag to every stack it makes: it counts, and it is not the user's to set.
    if tags.get(OWN_TAG[0], OWN_TAG[1]) != OWN_TAG[1]:
        problems.append(f"tag {OWN_TAG[0]}: valohai-cfn's own ({OWN_TAG[0]}={OWN_TAG[1]} marks the stacks it made)")
    count = len({**tags, OWN_TAG[0]: OWN_TAG[1]})
    if count > limits["count"]:
        problems.append(
            f"{count} tags with valohai-cfn's {OWN_TAG[0]}={OWN_TAG[1]}: a stack takes at most {limits['count']}"
        )
    for key, value in tags.items():
        shown = key if len(key) <= 40 else key[:37] + "..."
        if key.lower().startswith(RESERVED_TAG_PREFIX):
            problems.append(f"tag {shown}: the prefix aws: is reserved for AWS's own tags")
        if not 1 <= len(key) <= limits["key"]:
            problems.append(f"tag {shown}: a key is 1 to {limits['key']} characters, not {len(key)}")
        if not limits["value_min"] <= len(value) <= limits["value"]:
            problems.append(
                f"tag {shown}: a value is {limits['value_min']} to {limits['value']} characters, not {len(value)}"
            )
        bad = sorted({c for c in key + value if not _tag_character_ok(c)})
        if bad and propagated:
            problems.append(
                f"tag {shown}: {''.join(bad)!r} not allowed: tags take letters, digits, spaces and {TAG_PUNCTUATION} "
                "(the services the stack's tags reach refuse others)"
            )
    return problems


# -- CloudFormation's quotas on a template, after its transform ------------------------------------


@dataclass(frozen=True)
class Quotas:
    resources: int
    outputs: int
    body_bytes: int


@functools.cache
def quotas() -> Quotas:
    """CloudFormation's quotas (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/cloudformation-limits.html)
    as cfn-lint keeps them: 500 resources, 200 outputs, 1,000,000 bytes of template."""
    from cfnlint.helpers import LIMITS

    return Quotas(LIMITS["Resources"]["number"], LIMITS["Outputs"]["number"], LIMITS["template"]["body"])


def processed_size(document: dict[str, Any]) -> int:
    """A processed template's size in bytes, as compact JSON (GetTemplate's Processed stage is JSON)."""
    return len(json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode())
