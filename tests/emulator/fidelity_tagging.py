"""The Resource Groups Tagging API's GetResources with ResourceARNList: moto 5.2.1 ignores the
parameter and answers for every tagged resource (a page at a time), so a client asking for
the tags of a hundred tables it knows would get others' and miss its own. Imported by
fidelity.py.

AWS (API reference, GetResources): ResourceARNList names 1 to 100 resources whose tags are
wanted, and the answer lists those of them that exist and are tagged, on one page (an ARN
that names nothing is no error). It cannot be sent with any of the pagination parameters
(ResourcesPerPage, TagsPerPage, PaginationToken): InvalidParameterException. More than 100
ARNs: InvalidParameterException. Without ResourceARNList moto's behaviour is unchanged.
"""

import json

from moto.core.exceptions import JsonRESTError
from moto.resourcegroupstaggingapi.responses import ResourceGroupsTaggingAPIResponse

MAX_ARNS = 100
PAGINATION = ("ResourcesPerPage", "TagsPerPage", "PaginationToken")

_get_resources = ResourceGroupsTaggingAPIResponse.get_resources


def get_resources(self) -> str:
    arns = self._get_param("ResourceARNList")
    if arns is None:
        return _get_resources(self)
    if any(self._get_param(name) is not None for name in PAGINATION):
        raise JsonRESTError(
            "InvalidParameterException",
            "ResourceARNList cannot be specified together with ResourcesPerPage, "
            "TagsPerPage or PaginationToken",
        )
    if not 1 <= len(arns) <= MAX_ARNS:
        raise JsonRESTError(
            "InvalidParameterException",
            f"ResourceARNList must contain between 1 and {MAX_ARNS} ARNs",
        )
    wanted = set(arns)
    found = [
        mapping
        for mapping in self.backend._get_resources_generator(
            tag_filters=self._get_param("TagFilters", []),
            resource_type_filters=self._get_param("ResourceTypeFilters", []),
        )
        if mapping["ResourceARN"] in wanted
    ]
    return json.dumps({"ResourceTagMappingList": found, "PaginationToken": ""})


ResourceGroupsTaggingAPIResponse.get_resources = get_resources
