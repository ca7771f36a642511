from checkov.cloudformation.checks.resource.base_resource_value_check import BaseResourceValueCheck
from checkov.common.models.enums import CheckCategories


class BucketEncryptionDeclared(BaseResourceValueCheck):
    """The data bucket states its encryption, rather than leaning on S3's default."""

    def __init__(self) -> None:
        super().__init__(
            name="Ensure the S3 bucket declares server-side encryption explicitly",
            id="CKV_VALOHAI_1",
            categories=[CheckCategories.ENCRYPTION],
            supported_resources=["AWS::S3::Bucket"],
        )

    def get_inspected_key(self) -> str:
        configuration = "Properties/BucketEncryption/ServerSideEncryptionConfiguration"
        return f"{configuration}/[0]/ServerSideEncryptionByDefault/SSEAlgorithm"

    def get_expected_values(self) -> list:
        return ["AES256", "aws:kms", "aws:kms:dsse"]


check = BucketEncryptionDeclared()
