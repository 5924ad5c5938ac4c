"""CloudFront Functions: moto 5.2.1 has none of the API (CreateFunction, DescribeFunction,
GetFunction, UpdateFunction, PublishFunction, DeleteFunction, ListFunctions), so this adds
it as CloudFront documents it. Imported by fidelity.py.

What CloudFront does, and this does:
- A function has two stages. CreateFunction and UpdateFunction change DEVELOPMENT (status
  UNPUBLISHED); PublishFunction copies DEVELOPMENT to LIVE. Distributions run LIVE.
- Every change and the delete take the DEVELOPMENT stage's ETag as If-Match: none is
  InvalidIfMatchVersion, a stale one PreconditionFailed. UpdateFunction answers the new
  ETag in a header named `ETtag` (sic).
- Names are unique in the account (FunctionAlreadyExists); code is at most 10 KB
  (FunctionSizeLimitExceeded); the runtime is cloudfront-js-1.0 or cloudfront-js-2.0.
- A function a distribution's behavior associates cannot be deleted (FunctionInUse); a
  distribution can only associate a function whose LIVE stage exists
  (InvalidFunctionAssociation).
- The stage asked for that does not exist (LIVE before a publish) is NoSuchFunctionExists.
"""

import base64
import re
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from xml.sax.saxutils import escape

from moto.cloudfront import models, responses, urls
from moto.core.exceptions import ServiceException

import fidelity_cloudfront as cf

NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
RUNTIMES = ("cloudfront-js-1.0", "cloudfront-js-2.0")
MAX_CODE = 10 * 1024


class NoSuchFunctionExists(ServiceException):
    code = "NoSuchFunctionExists"
    message = "The function does not exist."


class FunctionAlreadyExists(ServiceException):
    code = "FunctionAlreadyExists"
    message = "A function with the same name already exists in this AWS account."


class FunctionInUse(ServiceException):
    code = "FunctionInUse"
    message = "Cannot delete the function because it's attached to one or more cache behaviors."


class FunctionSizeLimitExceeded(ServiceException):
    code = "FunctionSizeLimitExceeded"
    message = "The function is too large. The maximum size is 10 KB."


class InvalidFunctionAssociation(ServiceException):
    code = "InvalidFunctionAssociation"


def _functions(backend) -> dict:
    if not hasattr(backend, "plinth_functions"):
        backend.plinth_functions = {}
    return backend.plinth_functions


def _arn(backend, name: str) -> str:
    return f"arn:aws:cloudfront::{backend.account_id}:function/{name}"


def _request(body) -> dict:
    """The request's Name, Comment, Runtime and FunctionCode (decoded)."""
    text = body.decode("utf-8") if isinstance(body, bytes) else (body or "")
    try:
        root = ET.fromstring(re.sub(r"^\s*<\?xml[^>]*\?>", "", text).strip())
    except ET.ParseError as err:
        raise cf.InvalidArgument(f"The XML you provided was not well-formed: {err}") from None

    def find(path: str):
        node = root.find("/".join(f"{{{cf.NAMESPACE}}}{p}" for p in path.split("/")))
        if node is None:
            node = root.find(path)
        return None if node is None else (node.text or "")

    code = find("FunctionCode")
    if code is None:
        raise cf.InvalidArgument("FunctionCode is required.")
    try:
        decoded = base64.b64decode(code)
    except ValueError:
        raise cf.InvalidArgument("FunctionCode is not valid base64.") from None
    runtime = find("FunctionConfig/Runtime")
    if runtime not in RUNTIMES:
        raise cf.InvalidArgument(f"Runtime must be one of {', '.join(RUNTIMES)}.")
    if len(decoded) > MAX_CODE:
        raise FunctionSizeLimitExceeded()
    return {"name": find("Name"), "comment": find("FunctionConfig/Comment") or "",
            "runtime": runtime, "code": decoded}


def _time(moment: datetime) -> str:
    return cf._time(moment)


def _summary(backend, function: dict, stage: str) -> str:
    data = function["live"] if stage == "LIVE" else function
    status = "UNPUBLISHED" if stage == "DEVELOPMENT" and function["dirty"] else "UNASSOCIATED"
    return (f"<FunctionSummary><Name>{escape(function['name'])}</Name><Status>{status}</Status>"
            f"<FunctionConfig><Comment>{escape(data['comment'])}</Comment>"
            f"<Runtime>{data['runtime']}</Runtime></FunctionConfig>"
            f"<FunctionMetadata><FunctionARN>{_arn(backend, function['name'])}</FunctionARN>"
            f"<Stage>{stage}</Stage><CreatedTime>{_time(function['created'])}</CreatedTime>"
            f"<LastModifiedTime>{_time(data['modified'])}</LastModifiedTime></FunctionMetadata>"
            "</FunctionSummary>")


def _function(self, stage: str = "DEVELOPMENT") -> dict:
    function = _functions(self.backend).get(self._get_param("Name"))
    if function is None or (stage == "LIVE" and function["live"] is None):
        raise NoSuchFunctionExists()
    return function


def _stage(self) -> str:
    stage = self._get_param("Stage") or "LIVE"
    if stage not in ("DEVELOPMENT", "LIVE"):
        raise cf.InvalidArgument("Stage must be DEVELOPMENT or LIVE.")
    return stage


def _etag(function: dict, stage: str) -> str:
    return function["live"]["etag"] if stage == "LIVE" else function["etag"]


def _create_function(self):
    request = _request(self.body)
    if not NAME.match(request["name"] or ""):
        raise cf.InvalidArgument("The function name must be 1-64 letters, digits, hyphens or underscores.")
    functions = _functions(self.backend)
    if request["name"] in functions:
        raise FunctionAlreadyExists()
    now = datetime.now(timezone.utc)
    function = dict(request, created=now, modified=now, etag=cf._new_etag(), dirty=True, live=None)
    functions[request["name"]] = function
    return cf._answer(201, cf._document(cf._rooted(_summary(self.backend, function, "DEVELOPMENT"))),
                      ETag=function["etag"],
                      Location=f"{cf.API}/function/{_arn(self.backend, function['name'])}")


def _describe_function(self):
    stage = _stage(self)
    function = _function(self, stage)
    return cf._answer(200, cf._document(cf._rooted(_summary(self.backend, function, stage))),
                      ETag=_etag(function, stage))


def _get_function(self):
    stage = _stage(self)
    function = _function(self, stage)
    code = function["live"]["code"] if stage == "LIVE" else function["code"]
    return 200, {"status": 200, "Content-Type": "application/octet-stream",
                 "ETag": _etag(function, stage)}, code


def _update_function(self):
    function = _function(self)
    cf._check_if_match(self._get_param("IfMatch"), function["etag"])
    request = _request(self.body)
    function.update(comment=request["comment"], runtime=request["runtime"], code=request["code"],
                    modified=datetime.now(timezone.utc), etag=cf._new_etag(), dirty=True)
    # CloudFront names this one header `ETtag` (sic), as its API reference and SDKs do.
    return cf._answer(200, cf._document(cf._rooted(_summary(self.backend, function, "DEVELOPMENT"))),
                      ETtag=function["etag"])


def _publish_function(self):
    function = _function(self)
    cf._check_if_match(self._get_param("IfMatch"), function["etag"])
    function["live"] = {"comment": function["comment"], "runtime": function["runtime"],
                        "code": function["code"], "modified": datetime.now(timezone.utc),
                        "etag": cf._new_etag()}
    function["dirty"] = False
    return cf._answer(200, cf._document(cf._rooted(_summary(self.backend, function, "LIVE"))))


def _associated_arns(config) -> set:
    behaviours = [config.DefaultCacheBehavior] + list(config.CacheBehaviors.get("Items") or [])
    return {item.get("FunctionARN")
            for b in behaviours
            for item in (getattr(b, "function_associations", None) or {}).get("Items") or []}


def _delete_function(self):
    function = _function(self)
    cf._check_if_match(self._get_param("IfMatch"), function["etag"])
    arn = _arn(self.backend, function["name"])
    if any(arn in _associated_arns(d.distribution_config) for d in self.backend.distributions.values()):
        raise FunctionInUse()
    del _functions(self.backend)[function["name"]]
    return 204, {"status": 204}, ""


def _list_functions(self):
    stage = self._get_param("Stage")
    functions = [f for f in _functions(self.backend).values()
                 if stage != "LIVE" or f["live"] is not None]
    max_items = int(self._get_param("MaxItems") or 100)
    marker = self._get_param("Marker")
    if marker:
        names = [f["name"] for f in functions]
        functions = functions[names.index(marker):] if marker in names else []
    page, rest = functions[:max_items], functions[max_items:]
    items = "".join(_summary(self.backend, f, stage or "DEVELOPMENT") for f in page)
    body = (f'<FunctionList xmlns="{cf.NAMESPACE}">'
            + (f"<NextMarker>{escape(rest[0]['name'])}</NextMarker>" if rest else "")
            + f"<MaxItems>{max_items}</MaxItems><Quantity>{len(page)}</Quantity>"
            + (f"<Items>{items}</Items>" if page else "")
            + "</FunctionList>")
    return cf._answer(200, cf._document(body))


for _name, _fn in {
    "create_function": _create_function,
    "describe_function": _describe_function,
    "get_function": _get_function,
    "update_function": _update_function,
    "publish_function": _publish_function,
    "delete_function": _delete_function,
    "list_functions": _list_functions,
}.items():
    setattr(responses.CloudFrontResponse, _name, _fn)

urls.url_paths.update({
    "{0}/2020-05-31/function$": responses.CloudFrontResponse.dispatch,
    "{0}/2020-05-31/function/(?P<name>[^/]+)$": responses.CloudFrontResponse.dispatch,
    "{0}/2020-05-31/function/(?P<name>[^/]+)/describe$": responses.CloudFrontResponse.dispatch,
    "{0}/2020-05-31/function/(?P<name>[^/]+)/publish$": responses.CloudFrontResponse.dispatch,
})


# A distribution associates only functions published to LIVE.
def _check_functions(backend, config: dict) -> None:
    behaviours = [(config or {}).get("DefaultCacheBehavior") or {}]
    behaviours += ((config or {}).get("CacheBehaviors") or {}).get("Items") or []
    published = {_arn(backend, f["name"]) for f in _functions(backend).values() if f["live"]}
    for b in behaviours:
        for item in (b.get("FunctionAssociations") or {}).get("Items") or []:
            arn = item.get("FunctionARN") or ""
            if arn not in published:
                raise InvalidFunctionAssociation(
                    f"The function ARN doesn't exist or isn't published to LIVE: {arn}")


_original_check_references = cf._check_references


def _check_references(backend, config: dict) -> None:
    _original_check_references(backend, config)
    _check_functions(backend, config)


cf._check_references = _check_references
