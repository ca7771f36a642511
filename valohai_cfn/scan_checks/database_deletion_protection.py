from checkov.cloudformation.checks.resource.base_resource_value_check import BaseResourceValueCheck
from checkov.common.models.enums import CheckCategories


class DatabaseDeletionProtection(BaseResourceValueCheck):
    """The database refuses deletion unless an operator lifts the protection first."""

    def __init__(self) -> None:
        super().__init__(
            name="Ensure the RDS instance has deletion protection enabled",
            id="CKV_VALOHAI_2",
            categories=[CheckCategories.BACKUP_AND_RECOVERY],
            supported_resources=["AWS::RDS::DBInstance"],
        )

    def get_inspected_key(self) -> str:
        return "Properties/DeletionProtection"

    def get_expected_values(self) -> list:
        # checkov renders a Ref to a parameter as the parameter's default ("true" here).
        return [True, "true", "True"]


check = DatabaseDeletionProtection()
