"""CloudFront fidelity corrections: where moto (5.2.1) differs from what CloudFront really
does in a way that makes an honest end-to-end check impossible, these patches make it
behave like AWS. Each says what moto does and what AWS does. Imported by fidelity.py;
checked by check_fidelity.py.

1. Distribution configs. AWS keeps every field it was sent; moto drops or rewrites some:
   - an origin's `OriginAccessControlId` and its whole `S3OriginConfig` are dropped;
   - every cache behavior's `LambdaFunctionAssociations` and `FunctionAssociations` come
     back as `Quantity: 0`;
   - `Compress` defaults to true (AWS: false when not sent);
   - a behavior that uses a cache policy gets `ForwardedValues` and `MinTTL`/`DefaultTTL`/
     `MaxTTL` made up (AWS returns none of them: they are the legacy alternative to a
     cache policy, and sending them back together with `CachePolicyId` is an error);
     policy ids that were not sent come back as "" instead of being absent;
   - `ViewerCertificate` with an ACM certificate says `CloudFrontDefaultCertificate: true`
     unless told otherwise, and `CertificateSource: cloudfront` (AWS: false, and `acm` with
     `Certificate` = the ARN);
   - the ARN lacks the empty region field (`arn:aws:cloudfront:ACCOUNT:distribution/ID`;
     AWS: `arn:aws:cloudfront::ACCOUNT:distribution/ID`), so tags given at creation are
     filed under an ARN nobody else uses;
   - `LastModifiedTime` is a constant from 2021 (AWS: the time of the last change);
   - ListDistributions' summaries lack everything but Id/ARN/Status/DomainName (AWS: the
     summary carries Comment, Enabled, Aliases, Origins, behaviors, ...).
   Fields moto already keeps as sent: Aliases, DefaultRootObject, PriceClass, HttpVersion,
   IsIPV6Enabled, CustomErrorResponses, Restrictions/GeoRestriction, Comment, Enabled,
   OriginPath, CustomHeaders, ConnectionAttempts/ConnectionTimeout, CustomOriginConfig,
   ViewerProtocolPolicy, AllowedMethods/CachedMethods, the three policy ids, and the
   certificate's ARN, SSLSupportMethod and MinimumProtocolVersion.
2. ETags and deletion. AWS issues a new ETag on every change, answers PreconditionFailed
   (412) to an If-Match that is not the current one and InvalidIfMatchVersion (400) to a
   missing one, refuses to delete a distribution that is enabled or whose last change is
   not yet deployed (409 DistributionNotDisabled), refuses to change a distribution's
   CallerReference (IllegalUpdate), answers NoSuchCachePolicy when a behavior names a cache
   policy that does not exist, and reports an updated distribution `InProgress` until it
   is deployed again. moto keeps one ETag forever, accepts any If-Match, deletes enabled
   distributions, accepts any policy id and stays `Deployed` across updates.
3. Cache policies: AWS has Create/Get/GetConfig/Update/Delete/ListCachePolicies; moto 5.2.1
   has none (404). Here they exist for custom policies, echo the config XML as it was sent,
   and enforce unique names (CachePolicyAlreadyExists), If-Match (InvalidIfMatchVersion,
   PreconditionFailed) and CachePolicyInUse on delete while a distribution uses the policy.
   AWS-managed policies are not listed or readable here (their ids are accepted in
   distributions). The paths are AWS's: UpdateCachePolicy is PUT /2020-05-31/cache-policy/{Id}
   (the /config path only answers GET).
4. Origin access controls: AWS answers OriginAccessControlInUse (409) to deleting one an
   origin still uses, NoSuchOriginAccessControl (404) to deleting one that does not exist,
   OriginAccessControlAlreadyExists (409) to a second one with the same name, enforces
   If-Match on update and delete, issues a new ETag per update and sends a Location header
   on create. moto does none of this (deleting an unknown id is an HTTP 500).
5. What a distribution refers to must exist, in us-east-1. AWS answers InvalidViewerCertificate
   to an ACM certificate that does not exist, is not in us-east-1 or is not ISSUED yet, and
   InvalidLambdaFunctionAssociation to a Lambda@Edge ARN that is not a published version
   (unqualified or $LATEST) of an existing us-east-1 function; ACM lists the distributions
   using a certificate in InUseBy and refuses to delete it meanwhile (ResourceInUseException).
   moto accepts any ARN, and deletes a certificate a distribution uses.
6. Lambda@Edge replicas. CloudFront copies an associated function version to its edge
   locations; AWS refuses to delete the function while a distribution uses it and for a
   while after the last one lets go (hours, while the replicas are removed), answering
   InvalidParameterValueException "Lambda was unable to delete ARN because it is a
   replicated function. ...". moto deletes it at once. Here it refuses while a
   distribution uses the function and for PLINTH_EMULATOR_REPLICA_SECONDS (default 3)
   after the last one stopped using it or was deleted.
7. Origin groups (failover). A behavior may target an origin group as well as an origin;
   moto answers NoSuchOrigin when the default behavior targets a group, and checks no other
   behavior's target at all. AWS answers NoSuchOrigin (404) to any behavior targeting an id
   that is neither, and to a group member that is not an origin, and InvalidArgument (400)
   to a group without exactly two members, to failover status codes outside 400, 403, 404,
   416, 500, 502, 503, 504, and to a behavior targeting a group whose AllowedMethods
   include POST, PUT, PATCH or DELETE (CloudFront fails over only GET, HEAD and OPTIONS).
"""

import os
import re
import time
import uuid
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from xml.sax.saxutils import escape

from moto.acm import models as acm_models
from moto.awslambda.exceptions import InvalidParameterValueException
from moto.awslambda.models import LambdaBackend, lambda_backends
from moto.cloudfront import models, responses, urls
from moto.cloudfront.exceptions import InvalidIfMatchVersion, NoSuchDistribution, NoSuchOriginAccessControl
from moto.core.exceptions import AWSError, ServiceException
from moto.core.responses import ActionResult, EmptyResult

NAMESPACE = "http://cloudfront.amazonaws.com/doc/2020-05-31/"
# The status codes an origin group can fail over on.
FAILOVER_STATUS_CODES = {400, 403, 404, 416, 500, 502, 503, 504}
API = "https://cloudfront.amazonaws.com/2020-05-31"

# The ids of AWS-managed cache policies: the same in every account, usable in any
# distribution without being created.
MANAGED_CACHE_POLICY_IDS = {
    "2e54312d-136d-493c-8eb9-b001f22f67d2",  # Amplify
    "4135ea2d-6df8-44a3-9df3-4b5a84be39ad",  # CachingDisabled
    "658327ea-f89d-4fab-a63d-7e88639e58f6",  # CachingOptimized
    "b2884449-e4de-46a7-ac36-70bc7f1ddd6d",  # CachingOptimizedForUncompressedObjects
    "08627262-05a9-4f76-9ded-b50ca2e3a84f",  # Elemental-MediaPackage
    "83da9c7e-98b4-4e11-a168-04f0df8e2c65",  # UseOriginCacheControlHeaders
    "4cc15a8a-d715-48a4-82b8-cc0b614638fe",  # UseOriginCacheControlHeaders-QueryStrings
}


class PreconditionFailed(ServiceException):
    code = "PreconditionFailed"
    message = "The precondition given in one or more of the request-header fields evaluated to false."


class DistributionNotDisabled(ServiceException):
    code = "DistributionNotDisabled"
    message = "The distribution you are trying to delete has not been disabled."


class IllegalUpdate(ServiceException):
    code = "IllegalUpdate"
    message = "Origin and CallerReference cannot be updated."


class NoSuchCachePolicy(ServiceException):
    code = "NoSuchCachePolicy"
    message = "The cache policy does not exist."


class CachePolicyAlreadyExists(ServiceException):
    code = "CachePolicyAlreadyExists"
    message = "A cache policy with this name already exists. You must provide a unique name."


class CachePolicyInUse(ServiceException):
    code = "CachePolicyInUse"
    message = "Cannot delete the cache policy because it is attached to one or more cache behaviors."


class InvalidArgument(ServiceException):
    code = "InvalidArgument"


class OriginAccessControlInUse(ServiceException):
    code = "OriginAccessControlInUse"
    message = "Cannot delete the origin access control because it's in use by one or more origins."


class OriginAccessControlAlreadyExists(ServiceException):
    code = "OriginAccessControlAlreadyExists"
    message = "An origin access control with the same name already exists."


class InvalidViewerCertificate(ServiceException):
    code = "InvalidViewerCertificate"
    message = ("The specified SSL certificate doesn't exist, isn't in us-east-1 region, isn't valid, "
               "or doesn't include a valid certificate chain.")


class InvalidLambdaFunctionAssociation(ServiceException):
    code = "InvalidLambdaFunctionAssociation"


class CertificateInUse(AWSError):
    TYPE = "ResourceInUseException"


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _new_etag() -> str:
    return models.random_id()


def _check_if_match(if_match, etag: str) -> None:
    if not if_match:
        raise InvalidIfMatchVersion()
    if if_match != etag:
        raise PreconditionFailed()


# --- 1. what a distribution config keeps ------------------------------------------------

def _associations(block, item) -> dict:
    items = [item(i) for i in ((block or {}).get("Items") or [])]
    return {"Quantity": len(items), "Items": items} if items else {"Quantity": 0}


def _lambda_association(i: dict) -> dict:
    return {"LambdaFunctionARN": i.get("LambdaFunctionARN"), "EventType": i.get("EventType"),
            "IncludeBody": bool(i.get("IncludeBody", False))}


def _function_association(i: dict) -> dict:
    return {"FunctionARN": i.get("FunctionARN"), "EventType": i.get("EventType")}


def _faithful_behaviour(self, config: dict) -> None:
    self.compress = bool(config.get("Compress", False))
    self.lambda_function_associations = _associations(config.get("LambdaFunctionAssociations"),
                                                      _lambda_association)
    self.function_associations = _associations(config.get("FunctionAssociations"), _function_association)
    self.cache_policy_id = config.get("CachePolicyId") or None
    self.origin_request_policy_id = config.get("OriginRequestPolicyId") or None
    self.response_headers_policy_id = config.get("ResponseHeadersPolicyId") or None
    if self.cache_policy_id:
        if "ForwardedValues" not in config:
            self.forwarded_values = None
        for attr, key in (("min_ttl", "MinTTL"), ("default_ttl", "DefaultTTL"), ("max_ttl", "MaxTTL")):
            if key not in config:
                setattr(self, attr, None)


_original_default_behaviour_init = models.DefaultCacheBehaviour.__init__
_original_behaviour_init = models.CacheBehaviour.__init__


def _default_behaviour_init(self, config):
    _original_default_behaviour_init(self, config)
    _faithful_behaviour(self, config)


def _behaviour_init(self, config):
    _original_behaviour_init(self, config)  # resets the policy ids after the base __init__
    _faithful_behaviour(self, config)


models.DefaultCacheBehaviour.__init__ = _default_behaviour_init
models.CacheBehaviour.__init__ = _behaviour_init

_original_origin_init = models.Origin.__init__


def _origin_init(self, origin):
    _original_origin_init(self, origin)
    # AWS returns the element, empty for an origin without one.
    self.origin_access_control_id = origin.get("OriginAccessControlId") or ""
    if "S3OriginConfig" in origin:
        s3 = dict(origin["S3OriginConfig"] or {})
        s3["OriginAccessIdentity"] = s3.get("OriginAccessIdentity") or ""
        self.s3_origin_config = s3
    if not (self.custom_headers or {}).get("Items"):
        self.custom_headers = {"Quantity": 0}


models.Origin.__init__ = _origin_init

_original_certificate_init = models.ViewerCertificate.__init__


def _certificate_init(self, config):
    _original_certificate_init(self, config)
    own = config.get("ACMCertificateArn") or config.get("IAMCertificateId")
    if "CloudFrontDefaultCertificate" not in config:
        self.cloud_front_default_certificate = not own
    if config.get("ACMCertificateArn"):
        self.certificate = config["ACMCertificateArn"]
        self.certificate_source = "acm"
    elif config.get("IAMCertificateId"):
        self.certificate = config["IAMCertificateId"]
        self.certificate_source = "iam"


models.ViewerCertificate.__init__ = _certificate_init

_original_distribution_init = models.Distribution.__init__


def _distribution_init(self, account_id, region_name, config):
    _original_distribution_init(self, account_id, region_name, config)
    partition = self.arn.split(":")[1]
    self.arn = f"arn:{partition}:cloudfront::{account_id}:distribution/{self.distribution_id}"
    self.last_modified_time = _now()


models.Distribution.__init__ = _distribution_init

_original_distribution_config_init = models.DistributionConfig.__init__


def _distribution_config_init(self, config):
    # moto checks the default behavior's target against the origins only; a group is as
    # good (_check_origin_groups has checked every target already).
    behaviour = config.get("DefaultCacheBehavior") or {}
    target = behaviour.get("TargetOriginId")
    group_ids = {g.get("Id") for g in _items(config.get("OriginGroups"))}
    if target in group_ids:
        behaviour["TargetOriginId"] = _items(config.get("Origins"))[0]["Id"]
    _original_distribution_config_init(self, config)
    if target in group_ids:
        self.DefaultCacheBehavior.target_origin_id = target


models.DistributionConfig.__init__ = _distribution_config_init


def _from_config(name: str):
    return property(lambda self: getattr(self.distribution_config, name))


# What ListDistributions' DistributionSummary carries, read from the config.
for _attr, _key in {
    "aliases": "Aliases", "origins": "Origins", "default_cache_behavior": "DefaultCacheBehavior",
    "cache_behaviors": "CacheBehaviors", "custom_error_responses": "CustomErrorResponses",
    "comment": "Comment", "price_class": "PriceClass", "enabled": "Enabled",
    "viewer_certificate": "ViewerCertificate", "restrictions": "Restrictions",
    "web_acl_id": "WebACLId", "http_version": "HttpVersion", "is_ipv6_enabled": "IsIPV6Enabled",
}.items():
    setattr(models.Distribution, _attr, _from_config(_key))
models.Distribution.origin_groups = property(lambda self: self.distribution_config.OriginGroups,
                                             lambda self, value: None)
models.Distribution.e_tag = property(lambda self: self.etag)
models.Distribution.staging = False


# --- 2. ETags, deletion, policy references ----------------------------------------------

def _cache_policy_ids(config: dict) -> list[str]:
    behaviours = [config.get("DefaultCacheBehavior") or {}]
    behaviours += (config.get("CacheBehaviors") or {}).get("Items") or []
    return [b.get("CachePolicyId") for b in behaviours if isinstance(b, dict) and b.get("CachePolicyId")]


def _check_cache_policies(backend, config: dict) -> None:
    for policy_id in _cache_policy_ids(config or {}):
        if policy_id not in MANAGED_CACHE_POLICY_IDS and policy_id not in _policies(backend):
            raise NoSuchCachePolicy()


def _check_certificate(backend, config: dict) -> None:
    arn = ((config or {}).get("ViewerCertificate") or {}).get("ACMCertificateArn")
    if not arn:
        return
    parts = arn.split(":")
    if len(parts) < 6 or parts[3] != "us-east-1" or parts[4] != backend.account_id:
        raise InvalidViewerCertificate()
    bundle = acm_models.acm_backends[backend.account_id]["us-east-1"]._certificates.get(arn)
    if bundle is None:
        raise InvalidViewerCertificate()
    bundle.check()  # moto's own PENDING_VALIDATION -> ISSUED after MOTO_ACM_VALIDATION_WAIT
    if bundle.status != "ISSUED":
        raise InvalidViewerCertificate()


def _check_lambdas(backend, config: dict) -> None:
    behaviours = [(config or {}).get("DefaultCacheBehavior") or {}]
    behaviours += ((config or {}).get("CacheBehaviors") or {}).get("Items") or []
    for b in behaviours:
        for item in (b.get("LambdaFunctionAssociations") or {}).get("Items") or []:
            arn = item.get("LambdaFunctionARN") or ""
            parts = arn.split(":")
            if len(parts) != 8 or not parts[7].isdigit():
                raise InvalidLambdaFunctionAssociation(
                    "The function ARN must reference a specific function version. (The ARN must end "
                    f"with the version number.) ARN: {arn}")
            if parts[3] != "us-east-1":
                raise InvalidLambdaFunctionAssociation(
                    f"The function must be in region 'us-east-1'. ARN: {arn}")
            try:
                lambda_backends[parts[4]]["us-east-1"].get_function(parts[6], parts[7])
            except Exception:  # noqa: BLE001 - whatever moto raises for "no such function/version"
                raise InvalidLambdaFunctionAssociation(
                    f"The function does not exist or is not accessible. ARN: {arn}") from None


def _items(block) -> list:
    return (block or {}).get("Items") or []


def _check_origin_groups(config: dict) -> None:
    origins = {o.get("Id") for o in _items(config.get("Origins"))}
    groups = _items(config.get("OriginGroups"))
    for group in groups:
        members = [m.get("OriginId") for m in _items(group.get("Members"))]
        if len(members) != 2:
            raise InvalidArgument("An origin group must have exactly two origins.")
        if any(m not in origins for m in members):
            raise models.OriginDoesNotExist()
        codes = [int(c) for c in _items((group.get("FailoverCriteria") or {}).get("StatusCodes"))]
        if not codes or any(c not in FAILOVER_STATUS_CODES for c in codes):
            raise InvalidArgument("The parameter FailoverCriteria StatusCodes is invalid.")
    group_ids = {g.get("Id") for g in groups}
    behaviours = [config.get("DefaultCacheBehavior") or {}] + _items(config.get("CacheBehaviors"))
    for behaviour in behaviours:
        target = behaviour.get("TargetOriginId")
        if target not in origins | group_ids:
            raise models.OriginDoesNotExist()
        methods = set(_items(behaviour.get("AllowedMethods")))
        if target in group_ids and methods - {"GET", "HEAD", "OPTIONS"}:
            raise InvalidArgument("The parameter AllowedMethods cannot include POST, PUT, PATCH, or DELETE "
                                  "for a cached behavior associated with an origin group.")


def _check_references(backend, config: dict) -> None:
    _check_origin_groups(config or {})
    _check_cache_policies(backend, config)
    _check_certificate(backend, config)
    _check_lambdas(backend, config)


_original_create = models.CloudFrontBackend.create_distribution_with_tags
_original_update = models.CloudFrontBackend.update_distribution


def _create_distribution_with_tags(self, distribution_config, tags):
    _check_references(self, distribution_config)
    used = _edge_arns(distribution_config)  # before moto's model takes the config apart
    dist, location, etag = _original_create(self, distribution_config, tags)
    _edge_functions_used(dist.distribution_id, used)
    return dist, location, etag


def _update_distribution(self, dist_config, _id, if_match):
    dist = self.distributions.get(_id)
    if dist is None:
        raise NoSuchDistribution()
    _check_if_match(if_match, dist.etag)
    if dist_config and dist_config.get("CallerReference") != dist.distribution_config.caller_reference:
        raise IllegalUpdate()
    _check_references(self, dist_config)
    used = _edge_arns(dist_config)
    dist, location, _ = _original_update(self, dist_config, _id, if_match)
    _edge_functions_used(_id, used)
    dist.etag = _new_etag()
    dist.last_modified_time = _now()
    dist.status = "InProgress"  # deployed again after the next read, like moto's creation
    dist._tick = 0
    return dist, location, dist.etag


def _delete_distribution(self, distribution_id, if_match):
    dist = self.distributions.get(distribution_id)
    if dist is None:
        raise NoSuchDistribution()
    _check_if_match(if_match, dist.etag)
    if dist.distribution_config.Enabled or dist.status != "Deployed":
        raise DistributionNotDisabled()
    del self.distributions[distribution_id]
    _edge_functions_used(distribution_id, set())
    self.invalidations.pop(distribution_id, None)
    self.tagger.delete_all_tags_for_resource(dist.arn)


models.CloudFrontBackend.create_distribution_with_tags = _create_distribution_with_tags
models.CloudFrontBackend.update_distribution = _update_distribution
models.CloudFrontBackend.delete_distribution = _delete_distribution


def _users(backend, predicate) -> bool:
    return any(predicate(d.distribution_config) for d in backend.distributions.values())


def _uses_cache_policy(policy_id: str):
    def check(config) -> bool:
        behaviours = [config.DefaultCacheBehavior] + list(config.CacheBehaviors.get("Items") or [])
        return any(getattr(b, "cache_policy_id", None) == policy_id for b in behaviours)
    return check


def _uses_origin_access_control(control_id: str):
    def check(config) -> bool:
        return any(getattr(o, "origin_access_control_id", "") == control_id for o in config.Origins["Items"])
    return check


# --- 3. cache policies -------------------------------------------------------------------

def _policies(backend) -> dict:
    if not hasattr(backend, "plinth_cache_policies"):
        backend.plinth_cache_policies = {}
    return backend.plinth_cache_policies


def _config_xml(body) -> tuple[str, str]:
    """The <CachePolicyConfig> element exactly as the client sent it, and its Name."""
    text = body.decode("utf-8") if isinstance(body, bytes) else (body or "")
    text = re.sub(r"^\s*<\?xml[^>]*\?>", "", text).strip()
    try:
        root = ET.fromstring(text)
    except ET.ParseError as err:
        raise InvalidArgument(f"The XML you provided was not well-formed: {err}") from None
    if root.tag.rsplit("}", 1)[-1] != "CachePolicyConfig":
        raise InvalidArgument("The request body must be a CachePolicyConfig.")
    children = {child.tag.rsplit("}", 1)[-1]: child for child in root}
    for required in ("Name", "MinTTL", "ParametersInCacheKeyAndForwardedToOrigin"):
        if required not in children:
            raise InvalidArgument(f"CachePolicyConfig.{required} is required.")
    return text, (children["Name"].text or "").strip()


def _with_namespace(element: str) -> str:
    start = re.match(r"<CachePolicyConfig\b[^>]*>", element)
    if start and "xmlns=" not in start.group(0):
        element = element.replace("<CachePolicyConfig", f'<CachePolicyConfig xmlns="{NAMESPACE}"', 1)
    return element


def _time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _policy_xml(policy: dict) -> str:
    return (f"<CachePolicy><Id>{policy['id']}</Id><LastModifiedTime>{_time(policy['modified'])}"
            f"</LastModifiedTime>{policy['config']}</CachePolicy>")


def _document(element: str) -> str:
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + element


def _rooted(element: str) -> str:
    """`element` as a document root: the CloudFront namespace on its start tag."""
    return re.sub(r"^<(\w+)", rf'<\1 xmlns="{NAMESPACE}"', element, count=1)


def _answer(status: int, body: str, **headers):
    out = {"status": status, "Content-Type": "text/xml"}
    out.update(headers)
    return status, out, body


def _policy(self) -> dict:
    policy = _policies(self.backend).get(self._get_param("Id"))
    if policy is None:
        raise NoSuchCachePolicy()
    return policy


def _name_taken(self, name: str, except_id: str | None = None) -> None:
    for policy in _policies(self.backend).values():
        if policy["name"] == name and policy["id"] != except_id:
            raise CachePolicyAlreadyExists()


def _create_cache_policy(self):
    config, name = _config_xml(self.body)
    _name_taken(self, name)
    policy = {"id": str(uuid.uuid4()), "name": name, "config": config, "modified": _now(),
              "etag": _new_etag()}
    _policies(self.backend)[policy["id"]] = policy
    return _answer(201, _document(_rooted(_policy_xml(policy))),
                   ETag=policy["etag"], Location=f"{API}/cache-policy/{policy['id']}")


def _get_cache_policy(self):
    policy = _policy(self)
    return _answer(200, _document(_rooted(_policy_xml(policy))), ETag=policy["etag"])


def _get_cache_policy_config(self):
    policy = _policy(self)
    return _answer(200, _document(_with_namespace(policy["config"])), ETag=policy["etag"])


def _update_cache_policy(self):
    policy = _policy(self)
    _check_if_match(self._get_param("IfMatch"), policy["etag"])
    config, name = _config_xml(self.body)
    _name_taken(self, name, except_id=policy["id"])
    policy.update(config=config, name=name, modified=_now(), etag=_new_etag())
    return _answer(200, _document(_rooted(_policy_xml(policy))), ETag=policy["etag"])


def _delete_cache_policy(self):
    policy = _policy(self)
    _check_if_match(self._get_param("IfMatch"), policy["etag"])
    if _users(self.backend, _uses_cache_policy(policy["id"])):
        raise CachePolicyInUse()
    del _policies(self.backend)[policy["id"]]
    return 204, {"status": 204}, ""


def _list_cache_policies(self):
    kind = self._get_param("Type")
    policies = [] if kind == "managed" else list(_policies(self.backend).values())
    max_items = int(self._get_param("MaxItems") or 100)
    marker = self._get_param("Marker")
    if marker:
        ids = [p["id"] for p in policies]
        policies = policies[ids.index(marker):] if marker in ids else []
    page, rest = policies[:max_items], policies[max_items:]
    items = "".join(f"<CachePolicySummary><Type>custom</Type>{_policy_xml(p)}</CachePolicySummary>"
                    for p in page)
    body = (f'<CachePolicyList xmlns="{NAMESPACE}">'
            + (f"<NextMarker>{escape(rest[0]['id'])}</NextMarker>" if rest else "")
            + f"<MaxItems>{max_items}</MaxItems><Quantity>{len(page)}</Quantity>"
            + (f"<Items>{items}</Items>" if page else "")
            + "</CachePolicyList>")
    return _answer(200, _document(body))


for _name, _fn in {
    "create_cache_policy": _create_cache_policy,
    "get_cache_policy": _get_cache_policy,
    "get_cache_policy_config": _get_cache_policy_config,
    "update_cache_policy": _update_cache_policy,
    "delete_cache_policy": _delete_cache_policy,
    "list_cache_policies": _list_cache_policies,
}.items():
    setattr(responses.CloudFrontResponse, _name, _fn)

# moto's server builds its CloudFront routes from this map when the first CloudFront
# request arrives; the operation itself is found from botocore's model (method + path).
urls.url_paths.update({
    "{0}/2020-05-31/cache-policy$": responses.CloudFrontResponse.dispatch,
    "{0}/2020-05-31/cache-policy/(?P<cache_policy_id>[^/]+)$": responses.CloudFrontResponse.dispatch,
    "{0}/2020-05-31/cache-policy/(?P<cache_policy_id>[^/]+)/config$": responses.CloudFrontResponse.dispatch,
})


# --- 4. origin access controls ----------------------------------------------------------

def _oac_name_taken(backend, name, except_id=None) -> None:
    for control in backend.origin_access_controls.values():
        if control.name == name and control.id != except_id:
            raise OriginAccessControlAlreadyExists()


def _oac_result(control, **extra) -> ActionResult:
    return ActionResult({"OriginAccessControl": {"Id": control.id, "OriginAccessControlConfig": control},
                         "ETag": control.etag, **extra})


def _create_origin_access_control(self):
    config = self._get_param("OriginAccessControlConfig", {})
    _oac_name_taken(self.backend, config.get("Name"))
    control = self.backend.create_origin_access_control(config)
    return _oac_result(control, Location=f"{API}/origin-access-control/{control.id}")


def _update_origin_access_control(self):
    control = self.backend.get_origin_access_control(self._get_param("Id"))
    _check_if_match(self._get_param("IfMatch"), control.etag)
    config = self._get_param("OriginAccessControlConfig", {})
    if "Name" in config:
        _oac_name_taken(self.backend, config["Name"], except_id=control.id)
    control.update(config)
    control.etag = _new_etag()
    return _oac_result(control)


def _delete_origin_access_control(self):
    control_id = self._get_param("Id")
    if control_id not in self.backend.origin_access_controls:
        raise NoSuchOriginAccessControl()
    control = self.backend.origin_access_controls[control_id]
    _check_if_match(self._get_param("IfMatch"), control.etag)
    if _users(self.backend, _uses_origin_access_control(control_id)):
        raise OriginAccessControlInUse()
    del self.backend.origin_access_controls[control_id]
    return EmptyResult()


responses.CloudFrontResponse.create_origin_access_control = _create_origin_access_control
responses.CloudFrontResponse.update_origin_access_control = _update_origin_access_control
responses.CloudFrontResponse.delete_origin_access_control = _delete_origin_access_control


# --- 5. certificates in use --------------------------------------------------------------

def _certificate_users(arn: str) -> list[str]:
    parts = arn.split(":")
    if len(parts) < 6:
        return []
    backend = models.cloudfront_backends[parts[4]][parts[1]]
    return sorted(d.arn for d in backend.distributions.values()
                  if d.distribution_config.ViewerCertificate.acm_certificate_arn == arn)


_original_certificate_describe = acm_models.CertBundle.describe


def _certificate_describe(self):
    out = _original_certificate_describe(self)
    certificate = out["Certificate"]
    certificate["InUseBy"] = sorted(set(certificate.get("InUseBy") or []) | set(_certificate_users(self.arn)))
    return out


_original_delete_certificate = acm_models.AWSCertificateManagerBackend.delete_certificate


def _delete_certificate(self, arn):
    if arn in self._certificates and _certificate_users(arn):
        raise CertificateInUse(f"Certificate {arn} in account {self.account_id} is in use.")
    return _original_delete_certificate(self, arn)


acm_models.CertBundle.describe = _certificate_describe
acm_models.AWSCertificateManagerBackend.delete_certificate = _delete_certificate


# --- 6. Lambda@Edge replicas ----------------------------------------------------------------

REPLICA_SECONDS = float(os.environ.get("PLINTH_EMULATOR_REPLICA_SECONDS", "3"))
# Distribution id -> the function ARNs (version-qualified) it associates.
_edge_users: dict = {}
# Unqualified function ARN -> (when the last distribution stopped using it, which version).
_released_at: dict = {}


def _unqualified(arn: str) -> str:
    return ":".join(arn.split(":")[:7])


def _edge_arns(config) -> set:
    behaviours = [(config or {}).get("DefaultCacheBehavior") or {}]
    behaviours += ((config or {}).get("CacheBehaviors") or {}).get("Items") or []
    return {item.get("LambdaFunctionARN") or ""
            for b in behaviours
            for item in (b.get("LambdaFunctionAssociations") or {}).get("Items") or []}


def _edge_functions_used(distribution_id: str, now_used: set) -> None:
    before = _edge_users.pop(distribution_id, set())
    if now_used:
        _edge_users[distribution_id] = now_used
    for arn in before - now_used:
        _released_at[_unqualified(arn)] = (time.monotonic(), arn)


def _replicated_version(function_arn: str):
    """The version CloudFront still holds replicas of, if any."""
    for used in _edge_users.values():
        for arn in used:
            if _unqualified(arn) == function_arn:
                return arn
    released, version = _released_at.get(function_arn, (None, None))
    if released is not None and time.monotonic() - released < REPLICA_SECONDS:
        return version
    return None


_original_delete_function = LambdaBackend.delete_function


def _delete_function(self, function_name, qualifier=None):
    name = function_name.split(":")[6] if function_name.startswith("arn:") else function_name
    function_arn = f"arn:aws:lambda:{self.region_name}:{self.account_id}:function:{name}"
    replicated = _replicated_version(function_arn)
    if replicated:
        raise InvalidParameterValueException(
            f"Lambda was unable to delete {replicated} because it is a replicated function. "
            "Please see our documentation for Deleting Lambda@Edge Functions and Replicas.")
    return _original_delete_function(self, function_name, qualifier)


LambdaBackend.delete_function = _delete_function
