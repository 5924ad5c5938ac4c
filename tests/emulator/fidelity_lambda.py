"""Lambda corrections: where moto 5.2.1 differs from Lambda so that plinth's end-to-end
checks of event source mappings could not be honest. Imported by fidelity.py.
"""

from moto.awslambda.models import LambdaBackend
from moto.core.exceptions import JsonRESTError as RESTError


# --- 1. One event source mapping per function and stream ----------------------------------
# Lambda refuses a second mapping of the same DynamoDB or Kinesis stream to the same
# function (ResourceConflictException: "The event source arn (…) and function (…) provided
# mapping already exists. Please update or delete the existing mapping with UUID …"), so a
# create the SDK sends again after a lost answer never makes a second one. moto makes it.
_create_event_source_mapping = LambdaBackend.create_event_source_mapping


def _create_mapping_once(self, spec):
    function = self._lambdas.get_function_by_name_or_arn_with_qualifier(spec.get("FunctionName", ""))
    for mapping in self._event_source_mappings.values():
        if (mapping.event_source_arn == spec.get("EventSourceArn")
                and mapping.function_arn == function.function_arn
                and ":sqs:" not in mapping.event_source_arn):
            raise RESTError(
                "ResourceConflictException",
                f"The event source arn ({mapping.event_source_arn}) and function "
                f"({function.function_name}) provided mapping already exists. Please update or "
                f"delete the existing mapping with UUID {mapping.uuid}")
    return _create_event_source_mapping(self, spec)


LambdaBackend.create_event_source_mapping = _create_mapping_once
