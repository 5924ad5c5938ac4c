#!/usr/bin/env python3
"""Checks that the emulator's fidelity corrections hold: starts moto_server.py on a free port,
drives it with boto3 the way a real client drives AWS, and asserts each correction (what AWS
does, as documented in fidelity.py and the fidelity_*.py modules it imports), and that its
fault injection (faults.py) answers in each service's own protocol. Exits non-zero when one
does not hold.

    python3 tests/emulator/check_fidelity.py [-v]
"""

import copy
import io
import json
import os
import re
import socket
import subprocess
import sys
import time
import zipfile

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

HERE = os.path.dirname(os.path.abspath(__file__))
NAMESPACE = "http://cloudfront.amazonaws.com/doc/2020-05-31/"
CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"
CORS_S3_ORIGIN = "88a5eaf4-2fd4-4709-b370-b4c650ea3fcf"
SECURITY_HEADERS = "67f7725c-6f97-4210-82d7-5512b31e9d03"
VERBOSE = "-v" in sys.argv
REPLICA_SECONDS = 1.0
os.environ["PLINTH_EMULATOR_REPLICA_SECONDS"] = str(REPLICA_SECONDS)

failures: list[str] = []


def check(what: str, ok: bool, detail: object = "") -> None:
    if ok:
        if VERBOSE:
            print(f"ok    {what}")
    else:
        failures.append(what)
        print(f"FAIL  {what}" + (f": {detail}" if detail != "" else ""))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(*extra: str) -> tuple[subprocess.Popen, str]:
    server, endpoint, _ = start_server_with_clean_port(*extra)
    return server, endpoint


def start_server_with_clean_port(*extra: str) -> tuple[subprocess.Popen, str, str]:
    """moto_server.py with `extra` arguments: (process, endpoint, clean endpoint)."""
    port, clean = free_port(), free_port()
    server = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "moto_server.py"), "--port", str(port),
         "--clean-port", str(clean), "--parent-pid", str(os.getpid()), *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 30
    for p in (port, clean):
        while True:
            try:
                socket.create_connection(("127.0.0.1", p), timeout=0.2).close()
                break
            except OSError:
                if server.poll() is not None:
                    raise SystemExit("moto_server.py exited before it listened")
                if time.time() > deadline:
                    server.kill()
                    raise SystemExit("moto_server.py did not listen within 30s")
                time.sleep(0.1)
    return server, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{clean}"


def stop(server: subprocess.Popen) -> None:
    server.terminate()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()


class Wire:
    """The last raw request body and response (status, body) of a client."""

    def __init__(self, client):
        self.request = b""
        self.status = 0
        self.body = ""
        client.meta.events.register("before-send", self._sent)
        client.meta.events.register("after-call", self._answered)

    def _sent(self, request, **_):
        self.request = request.body or b""

    def _answered(self, http_response, **_):
        self.status = http_response.status_code
        self.body = http_response.content.decode("utf-8", "replace")


def fails(call, *args, **kwargs) -> tuple[str, int]:
    """The error code and HTTP status `call` fails with; ("", 200) when it succeeds."""
    try:
        call(*args, **kwargs)
    except ClientError as err:
        return err.response["Error"]["Code"], err.response["ResponseMetadata"]["HTTPStatusCode"]
    return "", 200


def lost(sent, got, path="") -> list[str]:
    """Everything in `sent` that `got` dropped or changed."""
    if isinstance(sent, dict):
        if not isinstance(got, dict):
            return [f"{path or '.'}: sent a structure, got {got!r}"]
        out = []
        for key, value in sent.items():
            if key not in got:
                out.append(f"{path}.{key} dropped")
            else:
                out += lost(value, got[key], f"{path}.{key}")
        return out
    if isinstance(sent, list):
        if not isinstance(got, list) or len(got) != len(sent):
            return [f"{path}: sent {sent!r}, got {got!r}"]
        return [m for i, (s, g) in enumerate(zip(sent, got)) for m in lost(s, g, f"{path}[{i}]")]
    return [] if sent == got else [f"{path}: sent {sent!r}, got {got!r}"]


def behaviour(target: str, cache_policy: str, edge: dict, **extra) -> dict:
    return {
        "TargetOriginId": target,
        "ViewerProtocolPolicy": "redirect-to-https",
        "AllowedMethods": {"Quantity": 3, "Items": ["GET", "HEAD", "OPTIONS"],
                           "CachedMethods": {"Quantity": 2, "Items": ["GET", "HEAD"]}},
        "Compress": True,
        "CachePolicyId": cache_policy,
        "OriginRequestPolicyId": CORS_S3_ORIGIN,
        "ResponseHeadersPolicyId": SECURITY_HEADERS,
        "LambdaFunctionAssociations": {"Quantity": 1, "Items": [{
            "LambdaFunctionARN": edge["version_arn"],
            "EventType": "origin-request", "IncludeBody": True}]},
        "FunctionAssociations": {"Quantity": 1, "Items": [{
            "FunctionARN": "arn:aws:cloudfront::123456789012:function/rewrite",
            "EventType": "viewer-request"}]},
        **extra,
    }


def distribution_config(reference: str, oac_id: str, cache_policy: str, edge: dict) -> dict:
    return {
        "CallerReference": reference,
        "Comment": "fidelity check",
        "Enabled": True,
        "Aliases": {"Quantity": 1, "Items": ["www.example.com"]},
        "DefaultRootObject": "index.html",
        "PriceClass": "PriceClass_100",
        "HttpVersion": "http2and3",
        "IsIPV6Enabled": False,
        "Origins": {"Quantity": 2, "Items": [
            {"Id": "site", "DomainName": "site-bucket.s3.us-east-1.amazonaws.com", "OriginPath": "/v1",
             "S3OriginConfig": {"OriginAccessIdentity": ""}, "OriginAccessControlId": oac_id,
             "ConnectionAttempts": 2, "ConnectionTimeout": 7,
             "CustomHeaders": {"Quantity": 1, "Items": [{"HeaderName": "X-Origin", "HeaderValue": "cf"}]}},
            {"Id": "api", "DomainName": "api.example.com",
             "CustomOriginConfig": {"HTTPPort": 8080, "HTTPSPort": 8443, "OriginProtocolPolicy": "https-only",
                                    "OriginSslProtocols": {"Quantity": 1, "Items": ["TLSv1.2"]},
                                    "OriginReadTimeout": 45, "OriginKeepaliveTimeout": 9}},
        ]},
        "DefaultCacheBehavior": behaviour("site", CACHING_OPTIMIZED, edge),
        "CacheBehaviors": {"Quantity": 1, "Items": [behaviour("api", cache_policy, edge, PathPattern="/api/*")]},
        "CustomErrorResponses": {"Quantity": 1, "Items": [
            {"ErrorCode": 404, "ResponsePagePath": "/404.html", "ResponseCode": "404", "ErrorCachingMinTTL": 30}]},
        "Restrictions": {"GeoRestriction": {"RestrictionType": "whitelist", "Quantity": 2, "Items": ["US", "DE"]}},
        "ViewerCertificate": {"ACMCertificateArn": edge["certificate_arn"],
                              "SSLSupportMethod": "sni-only", "MinimumProtocolVersion": "TLSv1.2_2021"},
    }


def cache_policy_config(name: str, comment: str = "first") -> dict:
    return {
        "Comment": comment,
        "Name": name,
        "DefaultTTL": 3600,
        "MaxTTL": 86400,
        "MinTTL": 1,
        "ParametersInCacheKeyAndForwardedToOrigin": {
            "EnableAcceptEncodingGzip": True,
            "EnableAcceptEncodingBrotli": False,
            "HeadersConfig": {"HeaderBehavior": "whitelist", "Headers": {"Quantity": 1, "Items": ["Origin"]}},
            "CookiesConfig": {"CookieBehavior": "none"},
            "QueryStringsConfig": {"QueryStringBehavior": "allExcept",
                                   "QueryStrings": {"Quantity": 2, "Items": ["utm_source", "fbclid"]}},
        },
    }


def sent_element(request_body: bytes, tag: str) -> str:
    text = request_body.decode("utf-8")
    return re.search(rf"<{tag}\b.*</{tag}>", text, re.S).group(0)


def check_error_body(wire: Wire, code: str) -> None:
    body = re.sub(r"^<\?xml[^>]*\?>\s*", "", wire.body)
    check(f"{code}: AWS's error document", re.match(
        rf'<ErrorResponse xmlns="{re.escape(NAMESPACE)}"><Error><Type>Sender</Type><Code>{code}</Code>'
        r"<Message>[^<]+</Message></Error><RequestId>[^<]+</RequestId></ErrorResponse>$", body.strip())
        is not None, body)


def section(name: str, run, *needs):
    """Runs one group of checks; a crash counts as a failure and does not stop the others."""
    if any(need is None for need in needs):
        print(f"SKIP  {name}: an earlier group it builds on failed")
        return None
    try:
        return run(*needs)
    except Exception as err:  # noqa: BLE001 - reported, counted
        check(f"{name}: ran to the end", False, f"{type(err).__name__}: {err}")
        return None


def edge_prerequisites(clients: dict) -> dict:
    """What a distribution refers to, made as plinth makes it: an issued us-east-1 certificate
    and a published version of a us-east-1 function."""
    acm, iam, lam = clients["acm"], clients["iam"], clients["lambda"]
    certificate_arn = acm.request_certificate(DomainName="www.example.com", ValidationMethod="DNS")["CertificateArn"]
    role = iam.create_role(RoleName="fidelity-edge", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {
            "Service": ["lambda.amazonaws.com", "edgelambda.amazonaws.com"]}}]}))["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("index.js", "exports.handler = async (event) => event.Records[0].cf.request;")
    function_arn = lam.create_function(FunctionName="fidelity-edge", Runtime="nodejs20.x", Role=role,
                                       Handler="index.handler", Code={"ZipFile": code.getvalue()})["FunctionArn"]
    version_arn = lam.publish_version(FunctionName="fidelity-edge")["FunctionArn"]
    deadline = time.time() + 10
    while acm.describe_certificate(CertificateArn=certificate_arn)["Certificate"]["Status"] != "ISSUED":
        if time.time() > deadline:
            raise AssertionError("the certificate was not ISSUED within 10s (MOTO_ACM_VALIDATION_WAIT)")
        time.sleep(0.2)
    # The CloudFront Function the behaviours associate, published to LIVE.
    cf = clients["cloudfront"]
    rewrite = cf.create_function(Name="rewrite", FunctionCode=b"function handler(e) { return e.request; }",
                                 FunctionConfig={"Comment": "", "Runtime": "cloudfront-js-2.0"})
    cf.publish_function(Name="rewrite", IfMatch=rewrite["ETag"])
    return {"certificate_arn": certificate_arn, "function_arn": function_arn, "version_arn": version_arn}


def create_origin_access_control(cf, wire) -> dict:
    oac_config = {"Name": "fidelity-oac", "Description": "site", "SigningProtocol": "sigv4",
                  "SigningBehavior": "always", "OriginAccessControlOriginType": "s3"}
    oac = cf.create_origin_access_control(OriginAccessControlConfig=oac_config)
    oac_id, oac_etag = oac["OriginAccessControl"]["Id"], oac["ETag"]
    check("CreateOriginAccessControl: 201 with a Location", wire.status == 201
          and oac.get("Location", "").endswith(f"/2020-05-31/origin-access-control/{oac_id}"), oac.get("Location"))
    check("CreateOriginAccessControl: a second with the same name is OriginAccessControlAlreadyExists (409)",
          fails(cf.create_origin_access_control, OriginAccessControlConfig=oac_config)
          == ("OriginAccessControlAlreadyExists", 409))
    return {"id": oac_id, "etag": oac_etag, "config": oac_config}


def cache_policies(cf, wire) -> dict:
    policy_config = cache_policy_config("fidelity-policy")
    created = cf.create_cache_policy(CachePolicyConfig=copy.deepcopy(policy_config))
    policy_id, policy_etag = created["CachePolicy"]["Id"], created["ETag"]
    check("CreateCachePolicy: 201 with Location and ETag", wire.status == 201 and policy_etag
          and created.get("Location", "").endswith(f"/2020-05-31/cache-policy/{policy_id}"), created)
    check("CreateCachePolicy: LastModifiedTime", "LastModifiedTime" in created["CachePolicy"])
    check("CreateCachePolicy: the config comes back as sent",
          created["CachePolicy"]["CachePolicyConfig"] == policy_config, created["CachePolicy"]["CachePolicyConfig"])
    sent_xml = sent_element(wire.request, "CachePolicyConfig")
    check("CreateCachePolicy: the config XML is echoed as sent", sent_xml in wire.body, wire.body)
    check("CreateCachePolicy: a duplicate name is CachePolicyAlreadyExists (409)",
          fails(cf.create_cache_policy, CachePolicyConfig=cache_policy_config("fidelity-policy"))
          == ("CachePolicyAlreadyExists", 409))
    check_error_body(wire, "CachePolicyAlreadyExists")
    got = cf.get_cache_policy(Id=policy_id)
    check("GetCachePolicy: config and ETag", got["CachePolicy"]["CachePolicyConfig"] == policy_config
          and got["ETag"] == policy_etag, got)
    got = cf.get_cache_policy_config(Id=policy_id)
    check("GetCachePolicyConfig: config and ETag", got["CachePolicyConfig"] == policy_config
          and got["ETag"] == policy_etag, got)
    check("GetCachePolicyConfig: the XML as sent, in the CloudFront namespace",
          re.sub(r"^<\?xml[^>]*\?>\s*", "", wire.body).startswith(f'<CachePolicyConfig xmlns="{NAMESPACE}"')
          and sent_xml.split(">", 1)[1] in wire.body, wire.body)
    other = cf.create_cache_policy(CachePolicyConfig=cache_policy_config("fidelity-other"))
    other_id = other["CachePolicy"]["Id"]

    renamed = cache_policy_config("fidelity-policy", comment="second")
    check("UpdateCachePolicy: without If-Match is InvalidIfMatchVersion (400)",
          fails(cf.update_cache_policy, Id=policy_id, CachePolicyConfig=renamed) == ("InvalidIfMatchVersion", 400))
    check("UpdateCachePolicy: a stale If-Match is PreconditionFailed (412)",
          fails(cf.update_cache_policy, Id=policy_id, IfMatch="STALE", CachePolicyConfig=renamed)
          == ("PreconditionFailed", 412))
    check("UpdateCachePolicy: another policy's name is CachePolicyAlreadyExists (409)",
          fails(cf.update_cache_policy, Id=other_id, IfMatch=other["ETag"],
                CachePolicyConfig=cache_policy_config("fidelity-policy")) == ("CachePolicyAlreadyExists", 409))
    updated = cf.update_cache_policy(Id=policy_id, IfMatch=policy_etag, CachePolicyConfig=copy.deepcopy(renamed))
    check("UpdateCachePolicy: a new ETag", updated["ETag"] != policy_etag)
    check("UpdateCachePolicy: the new config", updated["CachePolicy"]["CachePolicyConfig"] == renamed)
    policy_etag = updated["ETag"]
    check("GetCachePolicy after an update: the new config and ETag",
          cf.get_cache_policy(Id=policy_id)["ETag"] == policy_etag
          and cf.get_cache_policy_config(Id=policy_id)["CachePolicyConfig"] == renamed)

    listed = cf.list_cache_policies(Type="custom")["CachePolicyList"]
    ids = [item["CachePolicy"]["Id"] for item in listed.get("Items", [])]
    check("ListCachePolicies: the custom policies", listed["Quantity"] == 2 and set(ids) == {policy_id, other_id}
          and all(item["Type"] == "custom" for item in listed["Items"]), listed)
    page = cf.list_cache_policies(Type="custom", MaxItems="1")["CachePolicyList"]
    rest = cf.list_cache_policies(Type="custom", MaxItems="1", Marker=page.get("NextMarker", ""))["CachePolicyList"]
    check("ListCachePolicies: pages by MaxItems and NextMarker",
          page["Quantity"] == 1 and "NextMarker" in page and rest["Quantity"] == 1 and "NextMarker" not in rest
          and rest["Items"][0]["CachePolicy"]["Id"] != page["Items"][0]["CachePolicy"]["Id"], (page, rest))
    check("GetCachePolicy: an unknown id is NoSuchCachePolicy (404)",
          fails(cf.get_cache_policy, Id="00000000-0000-0000-0000-000000000000") == ("NoSuchCachePolicy", 404))
    check_error_body(wire, "NoSuchCachePolicy")
    return {"id": policy_id, "etag": policy_etag, "first_etag": created["ETag"]}


def distribution_configs(cf, wire, clients: dict, edge: dict, oac: dict, policy: dict) -> dict:
    oac_id, policy_id = oac["id"], policy["id"]
    config = distribution_config("fidelity-1", oac_id, policy_id, edge)
    bogus = distribution_config("fidelity-0", oac_id, "11111111-2222-3333-4444-555555555555", edge)
    check("CreateDistribution: an unknown cache policy is NoSuchCachePolicy (404)",
          fails(cf.create_distribution, DistributionConfig=bogus) == ("NoSuchCachePolicy", 404))
    pending = clients["acm"].request_certificate(DomainName="pending.example.com",
                                                 ValidationMethod="DNS")["CertificateArn"]
    for what, certificate in (("a certificate not yet ISSUED", pending),
                              ("an unknown certificate", pending[:-4] + "0000"),
                              ("a certificate outside us-east-1", pending.replace("us-east-1", "eu-west-1"))):
        bogus = distribution_config("fidelity-0", oac_id, policy_id, edge)
        bogus["ViewerCertificate"]["ACMCertificateArn"] = certificate
        check(f"CreateDistribution: {what} is InvalidViewerCertificate (400)",
              fails(cf.create_distribution, DistributionConfig=bogus) == ("InvalidViewerCertificate", 400))
    for what, function in (("an unqualified function ARN", edge["function_arn"]),
                           ("$LATEST", edge["function_arn"] + ":$LATEST"),
                           ("a version that does not exist", edge["function_arn"] + ":99"),
                           ("a function outside us-east-1", edge["version_arn"].replace("us-east-1", "eu-west-1"))):
        bogus = distribution_config("fidelity-0", oac_id, policy_id, edge)
        bogus["DefaultCacheBehavior"]["LambdaFunctionAssociations"]["Items"][0]["LambdaFunctionARN"] = function
        check(f"CreateDistribution: Lambda@Edge with {what} is InvalidLambdaFunctionAssociation (400)",
              fails(cf.create_distribution, DistributionConfig=bogus) == ("InvalidLambdaFunctionAssociation", 400))
    created = cf.create_distribution_with_tags(DistributionConfigWithTags={
        "DistributionConfig": copy.deepcopy(config), "Tags": {"Items": [{"Key": "team", "Value": "edge"}]}})
    dist = created["Distribution"]
    dist_id, etag = dist["Id"], created["ETag"]
    arn = f"arn:aws:cloudfront::123456789012:distribution/{dist_id}"
    check("CreateDistributionWithTags: nothing sent is lost", not lost(config, dist["DistributionConfig"]),
          lost(config, dist["DistributionConfig"]))
    check("Distribution ARN: arn:aws:cloudfront::ACCOUNT:distribution/ID", dist["ARN"] == arn, dist["ARN"])
    check("CreateDistributionWithTags: the tags are on the distribution's ARN",
          cf.list_tags_for_resource(Resource=arn)["Tags"].get("Items") == [{"Key": "team", "Value": "edge"}])
    for name, behaviour_out in (("default", dist["DistributionConfig"]["DefaultCacheBehavior"]),
                                ("path", dist["DistributionConfig"]["CacheBehaviors"]["Items"][0])):
        made_up = [k for k in ("ForwardedValues", "MinTTL", "DefaultTTL", "MaxTTL") if k in behaviour_out]
        check(f"{name} behavior with a cache policy: no legacy ForwardedValues/TTLs made up", not made_up, made_up)
    origin = dist["DistributionConfig"]["Origins"]["Items"][1]
    check("custom origin: OriginAccessControlId empty, no S3OriginConfig",
          origin.get("OriginAccessControlId") == "" and "S3OriginConfig" not in origin, origin)
    certificate = dist["DistributionConfig"]["ViewerCertificate"]
    check("ACM ViewerCertificate: not the default certificate, source acm",
          certificate.get("CloudFrontDefaultCertificate") is False and certificate.get("CertificateSource") == "acm"
          and certificate.get("Certificate") == config["ViewerCertificate"]["ACMCertificateArn"], certificate)
    check("CreateDistribution: InProgress", dist["Status"] == "InProgress", dist["Status"])
    certificate = clients["acm"].describe_certificate(CertificateArn=edge["certificate_arn"])["Certificate"]
    check("ACM DescribeCertificate: InUseBy names the distribution", certificate.get("InUseBy") == [arn],
          certificate.get("InUseBy"))
    try:
        clients["acm"].delete_certificate(CertificateArn=edge["certificate_arn"])
        refused = ""
    except ClientError as err:
        refused = err.response["Error"]["Code"]
    check("ACM DeleteCertificate: in use by a distribution is ResourceInUseException",
          refused == "ResourceInUseException", refused)

    minimal = {"CallerReference": "fidelity-2", "Comment": "", "Enabled": False,
               "Origins": {"Quantity": 1, "Items": [{"Id": "o", "DomainName": "example.com",
                                                     "CustomOriginConfig": {"HTTPPort": 80, "HTTPSPort": 443,
                                                                            "OriginProtocolPolicy": "https-only"}}]},
               "DefaultCacheBehavior": {"TargetOriginId": "o", "ViewerProtocolPolicy": "allow-all",
                                        "ForwardedValues": {"QueryString": False, "Cookies": {"Forward": "none"}},
                                        "MinTTL": 0}}
    plain = cf.create_distribution(DistributionConfig=copy.deepcopy(minimal))["Distribution"]
    behaviour_out = plain["DistributionConfig"]["DefaultCacheBehavior"]
    check("CreateDistribution: nothing sent is lost", not lost(minimal, plain["DistributionConfig"]),
          lost(minimal, plain["DistributionConfig"]))
    check("Compress not sent: false", behaviour_out.get("Compress") is False, behaviour_out.get("Compress"))
    policy_keys = ("CachePolicyId", "OriginRequestPolicyId", "ResponseHeadersPolicyId")
    check("policy ids not sent: absent", not any(k in behaviour_out for k in policy_keys), behaviour_out)
    check("no associations: Quantity 0", behaviour_out["LambdaFunctionAssociations"] == {"Quantity": 0}
          and behaviour_out["FunctionAssociations"] == {"Quantity": 0}, behaviour_out)

    got = cf.get_distribution(Id=dist_id)
    check("GetDistribution: nothing sent is lost", not lost(config, got["Distribution"]["DistributionConfig"]),
          lost(config, got["Distribution"]["DistributionConfig"]))
    check("GetDistribution: the creation ETag, Deployed", got["ETag"] == etag
          and got["Distribution"]["Status"] == "Deployed", (got["ETag"], got["Distribution"]["Status"]))
    got = cf.get_distribution_config(Id=dist_id)
    check("GetDistributionConfig: nothing sent is lost", not lost(config, got["DistributionConfig"]),
          lost(config, got["DistributionConfig"]))
    check("GetDistributionConfig: the same ETag", got["ETag"] == etag)
    summaries = {s["Id"]: s for s in cf.list_distributions()["DistributionList"].get("Items", [])}
    summary = summaries.get(dist_id, {})
    check("ListDistributions: the summary carries the config",
          summary.get("Comment") == "fidelity check" and summary.get("Enabled") is True
          and summary.get("Aliases") == config["Aliases"] and summary.get("ETag") == etag
          and summary.get("ARN") == arn
          and summary.get("Origins", {}).get("Items", [{}])[0].get("OriginAccessControlId") == oac_id, summary)
    return {"id": dist_id, "etag": etag, "config": config}


def distribution_lifecycle(cf, wire, dist: dict, oac: dict, policy: dict) -> bool:
    dist_id, etag, config = dist["id"], dist["etag"], dist["config"]
    oac_id, oac_etag = oac["id"], oac["etag"]
    policy_id, policy_etag = policy["id"], policy["etag"]
    check("DeleteDistribution: an enabled one is DistributionNotDisabled (409)",
          fails(cf.delete_distribution, Id=dist_id, IfMatch=etag) == ("DistributionNotDisabled", 409))
    check_error_body(wire, "DistributionNotDisabled")
    check("DeleteDistribution refused: the distribution is still there",
          cf.get_distribution(Id=dist_id)["ETag"] == etag)
    check("UpdateDistribution: without If-Match is InvalidIfMatchVersion (400)",
          fails(cf.update_distribution, Id=dist_id, DistributionConfig=copy.deepcopy(config))
          == ("InvalidIfMatchVersion", 400))
    check("UpdateDistribution: a stale If-Match is PreconditionFailed (412)",
          fails(cf.update_distribution, Id=dist_id, IfMatch="STALE", DistributionConfig=copy.deepcopy(config))
          == ("PreconditionFailed", 412))
    check_error_body(wire, "PreconditionFailed")
    moved = dict(copy.deepcopy(config), CallerReference="another")
    check("UpdateDistribution: a new CallerReference is IllegalUpdate (400)",
          fails(cf.update_distribution, Id=dist_id, IfMatch=etag, DistributionConfig=moved) == ("IllegalUpdate", 400))
    check("CachePolicy in use: DeleteCachePolicy is CachePolicyInUse (409)",
          fails(cf.delete_cache_policy, Id=policy_id, IfMatch=policy_etag) == ("CachePolicyInUse", 409))
    check("OAC in use: DeleteOriginAccessControl is OriginAccessControlInUse (409)",
          fails(cf.delete_origin_access_control, Id=oac_id, IfMatch=oac_etag) == ("OriginAccessControlInUse", 409))

    disabled = copy.deepcopy(config)
    disabled["Enabled"] = False
    disabled["Comment"] = "disabled"
    disabled["CacheBehaviors"]["Items"][0]["LambdaFunctionAssociations"] = {"Quantity": 0}
    updated = cf.update_distribution(Id=dist_id, IfMatch=etag, DistributionConfig=copy.deepcopy(disabled))
    check("UpdateDistribution: a new ETag", updated["ETag"] != etag, updated["ETag"])
    dropped = lost(disabled, updated["Distribution"]["DistributionConfig"])
    check("UpdateDistribution: nothing sent is lost", not dropped, dropped)
    check("UpdateDistribution: InProgress until deployed", updated["Distribution"]["Status"] == "InProgress",
          updated["Distribution"]["Status"])
    stale, etag = etag, updated["ETag"]
    check("DeleteDistribution: disabled but not yet deployed is DistributionNotDisabled (409)",
          fails(cf.delete_distribution, Id=dist_id, IfMatch=etag) == ("DistributionNotDisabled", 409))
    got = cf.get_distribution(Id=dist_id)
    check("GetDistribution after an update: the new ETag, Deployed, the new config",
          got["ETag"] == etag and got["Distribution"]["Status"] == "Deployed"
          and not lost(disabled, got["Distribution"]["DistributionConfig"]), got["ETag"])
    check("DeleteDistribution: a stale If-Match is PreconditionFailed (412)",
          fails(cf.delete_distribution, Id=dist_id, IfMatch=stale) == ("PreconditionFailed", 412))
    check("DeleteDistribution: without If-Match is InvalidIfMatchVersion (400)",
          fails(cf.delete_distribution, Id=dist_id) == ("InvalidIfMatchVersion", 400))
    check("DeleteDistribution: disabled and deployed, current If-Match: deleted",
          fails(cf.delete_distribution, Id=dist_id, IfMatch=etag) == ("", 200))
    check("DeleteDistribution: gone after", fails(cf.get_distribution, Id=dist_id) == ("NoSuchDistribution", 404))
    return True


def release_certificate(clients: dict, edge: dict, _dist_gone: bool) -> None:
    acm = clients["acm"]
    check("ACM DescribeCertificate: InUseBy empty once the distribution is gone",
          acm.describe_certificate(CertificateArn=edge["certificate_arn"])["Certificate"].get("InUseBy") == [])
    acm.delete_certificate(CertificateArn=edge["certificate_arn"])


def release_edge_function(clients: dict, edge: dict, _dist_gone: bool) -> None:
    lam = clients["lambda"]
    code, status = fails(lam.delete_function, FunctionName="fidelity-edge")
    check("DeleteFunction right after the distribution let go: the replicated-function refusal",
          (code, status) == ("InvalidParameterValueException", 400), (code, status))
    time.sleep(REPLICA_SECONDS + 0.5)
    code, _ = fails(lam.delete_function, FunctionName="fidelity-edge")
    check("DeleteFunction once the replicas are gone: deleted", code == "", code)


def delete_cache_policy(cf, wire, policy: dict, _dist_gone: bool) -> None:
    policy_id, policy_etag = policy["id"], policy["etag"]
    check("DeleteCachePolicy: without If-Match is InvalidIfMatchVersion (400)",
          fails(cf.delete_cache_policy, Id=policy_id) == ("InvalidIfMatchVersion", 400))
    check("DeleteCachePolicy: a stale If-Match is PreconditionFailed (412)",
          fails(cf.delete_cache_policy, Id=policy_id, IfMatch=policy["first_etag"]) == ("PreconditionFailed", 412))
    check("DeleteCachePolicy: no longer used: deleted (204)",
          fails(cf.delete_cache_policy, Id=policy_id, IfMatch=policy_etag) == ("", 200) and wire.status == 204)
    check("DeleteCachePolicy: gone after", fails(cf.get_cache_policy, Id=policy_id) == ("NoSuchCachePolicy", 404))
    check("DeleteCachePolicy: an unknown id is NoSuchCachePolicy (404)",
          fails(cf.delete_cache_policy, Id=policy_id, IfMatch=policy_etag) == ("NoSuchCachePolicy", 404))


def origin_access_control_lifecycle(cf, wire, oac: dict, _dist_gone: bool) -> None:
    oac_id, oac_etag = oac["id"], oac["etag"]
    changed = dict(oac["config"], Description="changed")
    check("UpdateOriginAccessControl: without If-Match is InvalidIfMatchVersion (400)",
          fails(cf.update_origin_access_control, Id=oac_id, OriginAccessControlConfig=changed)
          == ("InvalidIfMatchVersion", 400))
    check("UpdateOriginAccessControl: a stale If-Match is PreconditionFailed (412)",
          fails(cf.update_origin_access_control, Id=oac_id, IfMatch="STALE", OriginAccessControlConfig=changed)
          == ("PreconditionFailed", 412))
    updated = cf.update_origin_access_control(Id=oac_id, IfMatch=oac_etag, OriginAccessControlConfig=changed)
    check("UpdateOriginAccessControl: a new ETag and the new config", updated["ETag"] != oac_etag
          and updated["OriginAccessControl"]["OriginAccessControlConfig"]["Description"] == "changed", updated)
    check("GetOriginAccessControl: the new ETag",
          cf.get_origin_access_control(Id=oac_id)["ETag"] == updated["ETag"])
    check("DeleteOriginAccessControl: a stale If-Match is PreconditionFailed (412)",
          fails(cf.delete_origin_access_control, Id=oac_id, IfMatch=oac_etag) == ("PreconditionFailed", 412))
    check("DeleteOriginAccessControl: no longer used: deleted",
          fails(cf.delete_origin_access_control, Id=oac_id, IfMatch=updated["ETag"]) == ("", 200))
    check("DeleteOriginAccessControl: an unknown id is NoSuchOriginAccessControl (404)",
          fails(cf.delete_origin_access_control, Id=oac_id, IfMatch=updated["ETag"])
          == ("NoSuchOriginAccessControl", 404))


def check_cloudfront(endpoint: str) -> None:
    clients = {name: boto3.client(name, endpoint_url=endpoint, region_name="us-east-1",
                                  aws_access_key_id="testing", aws_secret_access_key="testing",
                                  config=Config(retries={"max_attempts": 1}))
               for name in ("cloudfront", "acm", "iam", "lambda")}
    cf = clients["cloudfront"]
    wire = Wire(cf)
    edge = section("certificate and Lambda@Edge version", edge_prerequisites, clients)
    oac = section("CloudFront origin access controls", create_origin_access_control, cf, wire)
    policy = section("CloudFront cache policies", cache_policies, cf, wire)
    dist = section("CloudFront distribution configs", distribution_configs, cf, wire, clients, edge, oac, policy)
    gone = section("CloudFront ETags and deletion", distribution_lifecycle, cf, wire, dist, oac, policy)
    section("ACM certificate released", release_certificate, clients, edge, gone)
    section("Lambda@Edge replicas", release_edge_function, clients, edge, gone)
    section("CloudFront cache policy deletion", delete_cache_policy, cf, wire, policy, gone)
    section("CloudFront origin access control changes", origin_access_control_lifecycle, cf, wire, oac, gone)
    # A client of its own: the wire recorder reads every answer, GetFunction's stream too.
    section("CloudFront Functions", cloudfront_functions, _client("cloudfront", endpoint))
    section("CloudFront origin request policies", origin_request_policies, _client("cloudfront", endpoint))
    section("CloudFront response headers policies", response_headers_policies, _client("cloudfront", endpoint))
    section("CloudFront origin groups", origin_groups, _client("cloudfront", endpoint))


def s3_buckets(s3) -> None:
    s3.create_bucket(Bucket="fidelity-versioning")
    raw = {}
    s3.meta.events.register("after-call.s3.GetBucketVersioning",
                            lambda http_response, **_: raw.update(body=http_response.text))
    s3.get_bucket_versioning(Bucket="fidelity-versioning")
    check("GetBucketVersioning: S3's <VersioningConfiguration> root, empty before it was set",
          "<VersioningConfiguration" in raw.get("body", "") and "<Status>" not in raw["body"], raw)
    s3.put_bucket_versioning(Bucket="fidelity-versioning",
                             VersioningConfiguration={"Status": "Suspended"})
    status = s3.get_bucket_versioning(Bucket="fidelity-versioning").get("Status")
    check("GetBucketVersioning: the status once set", status == "Suspended", status)
    s3.put_bucket_tagging(Bucket="fidelity-versioning",
                          Tagging={"TagSet": [{"Key": "plinth:stack", "Value": "old"}]})
    s3.delete_bucket(Bucket="fidelity-versioning")
    s3.create_bucket(Bucket="fidelity-versioning")
    code, _ = fails(s3.get_bucket_tagging, Bucket="fidelity-versioning")
    check("a re-created bucket starts without the deleted one's tags (NoSuchTagSet)",
          code == "NoSuchTagSet", code)
    s3.create_bucket(Bucket="fidelity-defaults")
    ownership = s3.get_bucket_ownership_controls(Bucket="fidelity-defaults")
    rules = ownership["OwnershipControls"]["Rules"]
    check("a new bucket has object ownership BucketOwnerEnforced",
          rules == [{"ObjectOwnership": "BucketOwnerEnforced"}], rules)
    sse = s3.get_bucket_encryption(Bucket="fidelity-defaults")["ServerSideEncryptionConfiguration"]
    default = sse["Rules"][0]["ApplyServerSideEncryptionByDefault"]
    check("a new bucket is encrypted with SSE-S3", default == {"SSEAlgorithm": "AES256"}, sse)
    s3.put_bucket_encryption(Bucket="fidelity-defaults", ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]})
    s3.delete_bucket_encryption(Bucket="fidelity-defaults")
    sse = s3.get_bucket_encryption(Bucket="fidelity-defaults")["ServerSideEncryptionConfiguration"]
    default = sse["Rules"][0]["ApplyServerSideEncryptionByDefault"]
    check("DeleteBucketEncryption goes back to SSE-S3", default == {"SSEAlgorithm": "AES256"}, sse)
    s3.create_bucket(Bucket="fidelity-writer", ObjectOwnership="ObjectWriter")
    rules = s3.get_bucket_ownership_controls(Bucket="fidelity-writer")["OwnershipControls"]["Rules"]
    check("CreateBucket's ObjectOwnership is kept", rules == [{"ObjectOwnership": "ObjectWriter"}], rules)
    s3.create_bucket(Bucket="fidelity-lock", ObjectLockEnabledForBucket=True)
    s3.put_object_lock_configuration(Bucket="fidelity-lock", ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}}})
    retention = s3.get_object_lock_configuration(Bucket="fidelity-lock")[
        "ObjectLockConfiguration"]["Rule"]["DefaultRetention"]
    check("a default retention of days reports no years", retention == {"Mode": "GOVERNANCE", "Days": 1},
          retention)


def check_s3(endpoint: str) -> None:
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing",
                      config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}))
    section("S3 buckets", s3_buckets, s3)


def ec2_networks(ec2) -> None:
    vpc = ec2.create_vpc(CidrBlock="10.99.0.0/16")["Vpc"]["VpcId"]
    first = ec2.create_route_table(VpcId=vpc, ClientToken="fidelity-token")["RouteTable"]
    again = ec2.create_route_table(VpcId=vpc, ClientToken="fidelity-token")["RouteTable"]
    check("CreateRouteTable with a ClientToken already used returns the same table",
          first["RouteTableId"] == again["RouteTableId"], (first["RouteTableId"], again["RouteTableId"]))
    second = ec2.create_vpc(CidrBlock="10.98.0.0/16")["Vpc"]["VpcId"]
    code, _ = fails(ec2.create_route_table, VpcId=second, ClientToken="fidelity-token")
    check("the same ClientToken with other parameters is IdempotentParameterMismatch",
          code == "IdempotentParameterMismatch", code)
    ec2.delete_vpc(VpcId=second)
    other = ec2.create_route_table(VpcId=vpc, ClientToken="fidelity-other")["RouteTable"]
    check("another token makes another table", other["RouteTableId"] != first["RouteTableId"])
    for table in (first, other):
        ec2.delete_route_table(RouteTableId=table["RouteTableId"])
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    code, _ = fails(ec2.delete_vpc, VpcId=vpc)
    check("DeleteVpc with an internet gateway attached is DependencyViolation",
          code == "DependencyViolation", code)
    ec2.detach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    ec2.delete_internet_gateway(InternetGatewayId=igw)
    group = ec2.create_security_group(GroupName="fidelity", Description="f", VpcId=vpc)["GroupId"]
    code, _ = fails(ec2.delete_vpc, VpcId=vpc)
    check("DeleteVpc with a security group in it is DependencyViolation",
          code == "DependencyViolation", code)
    ec2.delete_security_group(GroupId=group)
    table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    endpoint = ec2.create_vpc_endpoint(VpcId=vpc, ServiceName="com.amazonaws.us-east-1.s3",
                                       RouteTableIds=[table], ClientToken="vpce-token",
                                       VpcEndpointType="Gateway")["VpcEndpoint"]
    again = ec2.create_vpc_endpoint(VpcId=vpc, ServiceName="com.amazonaws.us-east-1.s3",
                                    RouteTableIds=[table], ClientToken="vpce-token",
                                       VpcEndpointType="Gateway")["VpcEndpoint"]
    check("CreateVpcEndpoint with a ClientToken already used returns the same endpoint",
          endpoint["VpcEndpointId"] == again["VpcEndpointId"], (endpoint, again))
    code, _ = fails(ec2.delete_vpc, VpcId=vpc)
    check("DeleteVpc with an endpoint in it is DependencyViolation",
          code == "DependencyViolation", code)
    later = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.modify_vpc_endpoint(VpcEndpointId=endpoint["VpcEndpointId"], AddRouteTableIds=[later])
    routes = ec2.describe_route_tables(RouteTableIds=[later])["RouteTables"][0]["Routes"]
    check("a table ModifyVpcEndpoint adds gets the service's route",
          any(r.get("DestinationPrefixListId") for r in routes), routes)
    gone = ec2.delete_vpc_endpoints(VpcEndpointIds=[endpoint["VpcEndpointId"]])
    check("DeleteVpcEndpoints of an endpoint that gained a table succeeds",
          gone.get("Unsuccessful") == [], gone)
    code, _ = fails(ec2.delete_vpc_endpoints, VpcEndpointIds=[endpoint["VpcEndpointId"]])
    check("DeleteVpcEndpoints of an endpoint already deleted does not fail", code == "", code)
    ec2.delete_route_table(RouteTableId=later)
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.99.2.0/24")["Subnet"]["SubnetId"]
    other = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    association = ec2.associate_route_table(RouteTableId=table, SubnetId=subnet)["AssociationId"]
    code, _ = fails(ec2.associate_route_table, RouteTableId=other, SubnetId=subnet)
    check("AssociateRouteTable of a subnet already associated is Resource.AlreadyAssociated",
          code == "Resource.AlreadyAssociated", code)
    ec2.replace_route_table_association(AssociationId=association, RouteTableId=other)
    moved = ec2.describe_route_tables(RouteTableIds=[other])["RouteTables"][0]["Associations"]
    check("ReplaceRouteTableAssociation moves it", any(a.get("SubnetId") == subnet for a in moved), moved)
    for a in moved:
        if a.get("SubnetId") == subnet:
            ec2.disassociate_route_table(AssociationId=a["RouteTableAssociationId"])
    ec2.delete_subnet(SubnetId=subnet)
    ec2.delete_route_table(RouteTableId=other)
    ec2.delete_route_table(RouteTableId=table)
    nat_gateways(ec2, vpc)
    ec2.delete_vpc(VpcId=vpc)
    vpcs = [v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"]]
    check("an empty VPC is deleted", vpc not in vpcs, vpcs)


def nat_gateways(ec2, vpc: str) -> None:
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.99.1.0/24")["Subnet"]["SubnetId"]
    eip = ec2.allocate_address(Domain="vpc")["AllocationId"]
    tags = [{"ResourceType": "natgateway", "Tags": [{"Key": "plinth:stack", "Value": "fidelity"}]}]
    first = ec2.create_nat_gateway(SubnetId=subnet, AllocationId=eip, ClientToken="nat-token",
                                   TagSpecifications=tags)["NatGateway"]["NatGatewayId"]
    again = ec2.create_nat_gateway(SubnetId=subnet, AllocationId=eip, ClientToken="nat-token",
                                   TagSpecifications=tags)["NatGateway"]["NatGatewayId"]
    check("CreateNatGateway with a ClientToken already used returns the same gateway",
          first == again, (first, again))
    by_tag = ec2.describe_nat_gateways(Filters=[{"Name": "tag:plinth:stack", "Values": ["other"]}])
    check("DescribeNatGateways applies tag filters", by_tag["NatGateways"] == [], by_tag["NatGateways"])
    code, _ = fails(ec2.release_address, AllocationId=eip)
    check("ReleaseAddress of an address a gateway holds is InvalidIPAddress.InUse",
          code == "InvalidIPAddress.InUse", code)
    ec2.delete_nat_gateway(NatGatewayId=first)
    ec2.release_address(AllocationId=eip)
    left = [a["AllocationId"] for a in ec2.describe_addresses()["Addresses"]]
    check("once the gateway is deleted its address is released", eip not in left, left)
    ec2.delete_subnet(SubnetId=subnet)


def instances(ec2) -> None:
    asked = dict(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, InstanceType="t3.micro",
                 ClientToken="launch-token")
    first = ec2.run_instances(**asked)["Instances"][0]["InstanceId"]
    again = ec2.run_instances(**asked)["Instances"][0]["InstanceId"]
    check("RunInstances with a ClientToken already used returns the same instance",
          first == again, (first, again))
    code, _ = fails(ec2.run_instances, **{**asked, "InstanceType": "t3.small"})
    check("RunInstances reusing a ClientToken with other parameters is IdempotentParameterMismatch",
          code == "IdempotentParameterMismatch", code)
    ec2.terminate_instances(InstanceIds=[first])
    again = fails(ec2.terminate_instances, InstanceIds=[first])
    check("TerminateInstances of a terminated instance succeeds", again == ("", 200), again)


def check_ec2(endpoint: str) -> None:
    section("EC2 networks", ec2_networks, _client("ec2", endpoint))
    section("EC2 instances", instances, _client("ec2", endpoint))


def dns_validation(acm, route53) -> None:
    zone = route53.create_hosted_zone(Name="validated.example.com", CallerReference="zone-token")
    zone_id = zone["HostedZone"]["Id"].split("/")[-1]
    code, _ = fails(route53.create_hosted_zone, Name="validated.example.com",
                    CallerReference="zone-token")
    check("CreateHostedZone with a CallerReference already used is HostedZoneAlreadyExists",
          code == "HostedZoneAlreadyExists", code)
    arn = acm.request_certificate(DomainName="www.validated.example.com",
                                  ValidationMethod="DNS")["CertificateArn"]
    time.sleep(1.5)  # past MOTO_ACM_VALIDATION_WAIT
    cert = acm.describe_certificate(CertificateArn=arn)["Certificate"]
    check("a certificate whose zone lacks its validation record stays PENDING_VALIDATION",
          cert["Status"] == "PENDING_VALIDATION", cert["Status"])
    record = cert["DomainValidationOptions"][0]["ResourceRecord"]
    route53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": [{
        "Action": "UPSERT", "ResourceRecordSet": {
            "Name": record["Name"], "Type": "CNAME", "TTL": 300,
            "ResourceRecords": [{"Value": record["Value"]}]}}]})
    status = acm.describe_certificate(CertificateArn=arn)["Certificate"]["Status"]
    check("once the validation record is in the zone the certificate is ISSUED",
          status == "ISSUED", status)
    acm.delete_certificate(CertificateArn=arn)


def stream_mappings(lam, iam, dynamodb) -> None:
    table = dynamodb.create_table(
        TableName="fidelity-stream", BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"})
    stream = table["TableDescription"]["LatestStreamArn"]
    role = iam.create_role(RoleName="fidelity-stream-role", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                "Principal": {"Service": "lambda.amazonaws.com"}}]}))
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as z:
        z.writestr("index.js", "exports.handler = async () => {};")
    lam.create_function(FunctionName="fidelity-stream-fn", Runtime="nodejs20.x",
                        Role=role["Role"]["Arn"], Handler="index.handler",
                        Code={"ZipFile": code.getvalue()})
    first = lam.create_event_source_mapping(FunctionName="fidelity-stream-fn",
                                            EventSourceArn=stream, StartingPosition="LATEST")
    code, _ = fails(lam.create_event_source_mapping, FunctionName="fidelity-stream-fn",
                    EventSourceArn=stream, StartingPosition="LATEST")
    check("a second mapping of the same stream and function is ResourceConflictException",
          code == "ResourceConflictException", code)
    lam.delete_event_source_mapping(UUID=first["UUID"])


def instance_profiles(iam) -> None:
    iam.create_role(RoleName="fidelity-profile-role", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                "Principal": {"Service": "ec2.amazonaws.com"}}]}))
    iam.create_instance_profile(InstanceProfileName="fidelity-profile")
    iam.add_role_to_instance_profile(InstanceProfileName="fidelity-profile",
                                     RoleName="fidelity-profile-role")
    iam.remove_role_from_instance_profile(InstanceProfileName="fidelity-profile",
                                          RoleName="fidelity-profile-role")
    code, status = fails(iam.remove_role_from_instance_profile,
                         InstanceProfileName="fidelity-profile", RoleName="fidelity-profile-role")
    check("RemoveRoleFromInstanceProfile of a role not in the profile is NoSuchEntity",
          (code, status) == ("NoSuchEntity", 404), (code, status))
    iam.delete_instance_profile(InstanceProfileName="fidelity-profile")


def check_dns(endpoint: str) -> None:
    section("IAM instance profiles", instance_profiles, _client("iam", endpoint))
    section("Lambda event source mappings", stream_mappings, _client("lambda", endpoint),
            _client("iam", endpoint), _client("dynamodb", endpoint))
    section("ACM validation in Route 53", dns_validation, _client("acm", endpoint),
            _client("route53", endpoint))


def table_encryption(dynamodb, kms) -> None:
    key = kms.create_key(Description="fidelity")["KeyMetadata"]
    dynamodb.create_table(TableName="fidelity-sse", BillingMode="PAY_PER_REQUEST",
                          AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
                          KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
                          SSESpecification={"Enabled": True, "SSEType": "KMS"})
    sse = dynamodb.describe_table(TableName="fidelity-sse")["Table"].get("SSEDescription", {})
    check("the AWS managed key of a table is reported by its ARN",
          sse.get("KMSMasterKeyArn", "").startswith("arn:aws:kms:"), sse)
    dynamodb.update_table(TableName="fidelity-sse", SSESpecification={
        "Enabled": True, "SSEType": "KMS", "KMSMasterKeyId": key["KeyId"]})
    sse = dynamodb.describe_table(TableName="fidelity-sse")["Table"].get("SSEDescription", {})
    check("UpdateTable moves the table to the given key, reported by its ARN",
          sse.get("KMSMasterKeyArn") == key["Arn"], sse)
    dynamodb.update_table(TableName="fidelity-sse", SSESpecification={"Enabled": False})
    table = dynamodb.describe_table(TableName="fidelity-sse")["Table"]
    check("UpdateTable with Enabled false goes back to the AWS owned key",
          "SSEDescription" not in table, table.get("SSEDescription"))
    dynamodb.delete_table(TableName="fidelity-sse")
    kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    code, _ = fails(kms.schedule_key_deletion, KeyId=key["KeyId"], PendingWindowInDays=7)
    check("ScheduleKeyDeletion of a key pending deletion is KMSInvalidStateException",
          code == "KMSInvalidStateException", code)


def log_group_keys(logs, kms) -> None:
    key = kms.create_key(Description="fidelity-logs")["KeyMetadata"]["Arn"]
    logs.create_log_group(logGroupName="/fidelity/keys")
    logs.associate_kms_key(logGroupName="/fidelity/keys", kmsKeyId=key)
    group = logs.describe_log_groups(logGroupNamePrefix="/fidelity/keys")["logGroups"][0]
    check("AssociateKmsKey sets a log group's key", group.get("kmsKeyId") == key, group)
    logs.disassociate_kms_key(logGroupName="/fidelity/keys")
    group = logs.describe_log_groups(logGroupNamePrefix="/fidelity/keys")["logGroups"][0]
    check("DisassociateKmsKey clears it", "kmsKeyId" not in group, group)
    code, _ = fails(logs.associate_kms_key, logGroupName="/fidelity/missing", kmsKeyId=key)
    check("AssociateKmsKey of a missing group is ResourceNotFoundException",
          code == "ResourceNotFoundException", code)
    logs.delete_log_group(logGroupName="/fidelity/keys")


def cloudfront_functions(cf) -> None:
    code = b"function handler(event) { return event.request; }"
    config = {"Comment": "rewrite", "Runtime": "cloudfront-js-2.0"}
    made = cf.create_function(Name="fidelity-rewrite", FunctionConfig=config, FunctionCode=code)
    summary = made["FunctionSummary"]
    check("CreateFunction: DEVELOPMENT, UNPUBLISHED, with an ETag",
          summary["Status"] == "UNPUBLISHED" and summary["FunctionMetadata"]["Stage"] == "DEVELOPMENT"
          and made.get("ETag"), summary)
    code_, _ = fails(cf.describe_function, Name="fidelity-rewrite", Stage="LIVE")
    check("LIVE before a publish is NoSuchFunctionExists", code_ == "NoSuchFunctionExists", code_)
    code_, _ = fails(cf.create_function, Name="fidelity-rewrite", FunctionConfig=config, FunctionCode=code)
    check("a second function of the name is FunctionAlreadyExists", code_ == "FunctionAlreadyExists", code_)
    code_, status = fails(cf.publish_function, Name="fidelity-rewrite", IfMatch="stale")
    check("PublishFunction with a stale ETag is PreconditionFailed (412)",
          (code_, status) == ("PreconditionFailed", 412), (code_, status))
    cf.publish_function(Name="fidelity-rewrite", IfMatch=made["ETag"])
    live = cf.get_function(Name="fidelity-rewrite", Stage="LIVE")
    check("GetFunction of LIVE answers the published code", live["FunctionCode"].read() == code, live)
    dev = cf.describe_function(Name="fidelity-rewrite", Stage="DEVELOPMENT")
    updated = cf.update_function(Name="fidelity-rewrite", IfMatch=dev["ETag"], FunctionConfig=config,
                                 FunctionCode=b"function handler(event) { return event.response; }")
    check("UpdateFunction answers its new ETag (in the ETtag header)", bool(updated.get("ETag")), updated)
    live = cf.get_function(Name="fidelity-rewrite", Stage="LIVE")
    check("UpdateFunction changes DEVELOPMENT only", live["FunctionCode"].read() == code, live)
    code_, _ = fails(cf.create_function, Name="fidelity-big", FunctionConfig=config,
                     FunctionCode=b"x" * (10 * 1024 + 1))
    check("code over 10 KB is FunctionSizeLimitExceeded", code_ == "FunctionSizeLimitExceeded", code_)
    dev = cf.describe_function(Name="fidelity-rewrite", Stage="DEVELOPMENT")
    cf.delete_function(Name="fidelity-rewrite", IfMatch=dev["ETag"])
    code_, _ = fails(cf.describe_function, Name="fidelity-rewrite", Stage="DEVELOPMENT")
    check("then it is gone", code_ == "NoSuchFunctionExists", code_)


def origin_request_policies(cf) -> None:
    config = {"Name": "fidelity-orp", "Comment": "api",
              "HeadersConfig": {"HeaderBehavior": "whitelist",
                                "Headers": {"Quantity": 1, "Items": ["Origin"]}},
              "CookiesConfig": {"CookieBehavior": "none"},
              "QueryStringsConfig": {"QueryStringBehavior": "all"}}
    made = cf.create_origin_request_policy(OriginRequestPolicyConfig=config)
    policy_id = made["OriginRequestPolicy"]["Id"]
    got = cf.get_origin_request_policy(Id=policy_id)
    headers = got["OriginRequestPolicy"]["OriginRequestPolicyConfig"]["HeadersConfig"]
    check("an origin request policy is kept as sent", headers["Headers"]["Items"] == ["Origin"], got)
    refused = dict(config, Name="fidelity-auth", HeadersConfig={
        "HeaderBehavior": "whitelist", "Headers": {"Quantity": 1, "Items": ["Authorization"]}})
    code, _ = fails(cf.create_origin_request_policy, OriginRequestPolicyConfig=refused)
    check("an origin request policy forwarding Authorization is InvalidArgument", code == "InvalidArgument", code)
    code, _ = fails(cf.create_origin_request_policy, OriginRequestPolicyConfig=config)
    check("a second policy of the name is OriginRequestPolicyAlreadyExists",
          code == "OriginRequestPolicyAlreadyExists", code)
    code, status = fails(cf.update_origin_request_policy, Id=policy_id, IfMatch="stale",
                         OriginRequestPolicyConfig=config)
    check("UpdateOriginRequestPolicy with a stale ETag is PreconditionFailed (412)",
          (code, status) == ("PreconditionFailed", 412), (code, status))
    listed = cf.list_origin_request_policies(Type="custom")["OriginRequestPolicyList"]
    check("ListOriginRequestPolicies lists it", listed["Quantity"] == 1, listed)
    cf.delete_origin_request_policy(Id=policy_id, IfMatch=got["ETag"])
    code, _ = fails(cf.get_origin_request_policy, Id=policy_id)
    check("then it is NoSuchOriginRequestPolicy", code == "NoSuchOriginRequestPolicy", code)


def origin_groups(cf) -> None:
    def origin(name: str) -> dict:
        return {"Id": name, "DomainName": f"{name}.s3.us-east-1.amazonaws.com",
                "S3OriginConfig": {"OriginAccessIdentity": ""}}

    def config(reference: str, members=("primary", "secondary"), codes=(500, 503),
               methods=("GET", "HEAD"), path_target="group") -> dict:
        def to(target: str, **extra) -> dict:
            return {"TargetOriginId": target, "ViewerProtocolPolicy": "allow-all",
                    "CachePolicyId": CACHING_OPTIMIZED,
                    "AllowedMethods": {"Quantity": len(methods), "Items": list(methods)}, **extra}
        return {
            "CallerReference": reference, "Comment": "", "Enabled": True,
            "Origins": {"Quantity": 2, "Items": [origin("primary"), origin("secondary")]},
            "OriginGroups": {"Quantity": 1, "Items": [{
                "Id": "group",
                "FailoverCriteria": {"StatusCodes": {"Quantity": len(codes), "Items": list(codes)}},
                "Members": {"Quantity": len(members), "Items": [{"OriginId": m} for m in members]}}]},
            "DefaultCacheBehavior": to("group"),
            "CacheBehaviors": {"Quantity": 1, "Items": [to(path_target, PathPattern="/img/*")]},
        }

    sent = config("fidelity-groups")
    made = cf.create_distribution(DistributionConfig=copy.deepcopy(sent))["Distribution"]
    kept = cf.get_distribution_config(Id=made["Id"])["DistributionConfig"]
    check("a default behavior may target an origin group, kept as sent",
          not lost(sent["OriginGroups"], kept["OriginGroups"])
          and kept["DefaultCacheBehavior"]["TargetOriginId"] == "group", kept.get("OriginGroups"))
    for what, bogus, expected in (
            ("a path behavior targeting an unknown id", config("g1", path_target="nowhere"), ("NoSuchOrigin", 404)),
            ("a group member that is not an origin", config("g2", members=("primary", "other")),
             ("NoSuchOrigin", 404)),
            ("failover on 501", config("g4", codes=(500, 501)), ("InvalidArgument", 400)),
            ("a group behind a behavior allowing POST",
             config("g5", methods=("GET", "HEAD", "OPTIONS", "PUT", "PATCH", "POST", "DELETE")),
             ("InvalidArgument", 400))):
        got = fails(cf.create_distribution, DistributionConfig=bogus)
        check(f"CreateDistribution: {what} is {expected[0]} ({expected[1]})", got == expected, got)
    # boto3 checks the member count itself; the Rust SDK sends what it is given.
    unchecked = boto3.client("cloudfront", endpoint_url=cf.meta.endpoint_url, region_name="us-east-1",
                             aws_access_key_id="testing", aws_secret_access_key="testing",
                             config=Config(parameter_validation=False, retries={"total_max_attempts": 1}))
    got = fails(unchecked.create_distribution, DistributionConfig=config("g3", members=("primary",)))
    check("CreateDistribution: a group of one origin is InvalidArgument (400)", got == ("InvalidArgument", 400), got)


def response_headers_policies(cf) -> None:
    config = {"Name": "fidelity-rhp", "Comment": "",
              "SecurityHeadersConfig": {"ContentTypeOptions": {"Override": True},
                                        "FrameOptions": {"Override": True, "FrameOption": "DENY"}},
              "RemoveHeadersConfig": {"Quantity": 1, "Items": [{"Header": "Server"}]}}
    made = cf.create_response_headers_policy(ResponseHeadersPolicyConfig=config)
    policy_id = made["ResponseHeadersPolicy"]["Id"]
    got = cf.get_response_headers_policy(Id=policy_id)
    kept = got["ResponseHeadersPolicy"]["ResponseHeadersPolicyConfig"]
    check("a response headers policy is kept as sent",
          kept["SecurityHeadersConfig"]["FrameOptions"]["FrameOption"] == "DENY"
          and kept["RemoveHeadersConfig"]["Items"] == [{"Header": "Server"}], kept)
    code, _ = fails(cf.create_response_headers_policy, ResponseHeadersPolicyConfig=config)
    check("a second policy of the name is ResponseHeadersPolicyAlreadyExists",
          code == "ResponseHeadersPolicyAlreadyExists", code)
    cf.delete_response_headers_policy(Id=policy_id, IfMatch=got["ETag"])
    code, _ = fails(cf.get_response_headers_policy, Id=policy_id)
    check("then it is NoSuchResponseHeadersPolicy", code == "NoSuchResponseHeadersPolicy", code)


def check_encryption(endpoint: str) -> None:
    section("DynamoDB table encryption and KMS key deletion", table_encryption,
            _client("dynamodb", endpoint), _client("kms", endpoint))
    section("CloudWatch Logs keys", log_group_keys, _client("logs", endpoint),
            _client("kms", endpoint))


def member_clusters(ec, tagging) -> None:
    tags = [{"Key": "plinth:stack", "Value": "fidelity"}, {"Key": "plinth:resource", "Value": "rg"}]
    ec.create_replication_group(ReplicationGroupId="fidelity-rg", ReplicationGroupDescription="f",
                                Engine="redis", CacheNodeType="cache.t4g.micro",
                                NumCacheClusters=2, Tags=tags)
    members = ec.describe_replication_groups(ReplicationGroupId="fidelity-rg")[
        "ReplicationGroups"][0]["MemberClusters"]
    check("a replication group of 2 has 2 member clusters", len(members) == 2, members)
    listed = {c["CacheClusterId"]: c.get("ReplicationGroupId")
              for c in ec.describe_cache_clusters()["CacheClusters"]}
    check("DescribeCacheClusters lists the members with their ReplicationGroupId",
          all(listed.get(m) == "fidelity-rg" for m in members), listed)
    found = tagging.get_resources(TagFilters=[{"Key": "plinth:stack", "Values": ["fidelity"]}])
    arns = sorted(m["ResourceARN"] for m in found["ResourceTagMappingList"])
    check("the members carry the group's tags and the tagging API finds them",
          sum(":cluster:" in a for a in arns) == 2 and any(":replicationgroup:" in a for a in arns), arns)
    ec.delete_replication_group(ReplicationGroupId="fidelity-rg")
    status = {c["CacheClusterId"]: c["CacheClusterStatus"]
              for c in ec.describe_cache_clusters()["CacheClusters"] if c["CacheClusterId"] in members}
    check("the members are deleting with their group", set(status.values()) == {"deleting"}, status)
    time.sleep(float(os.environ.get("PLINTH_EMULATOR_DELETING_SECONDS", "2")) + 0.5)
    left = [c["CacheClusterId"] for c in ec.describe_cache_clusters()["CacheClusters"]]
    check("then they are gone", not any(m in left for m in members), left)


def modify_cluster(ec) -> None:
    ec.create_cache_cluster(CacheClusterId="fidelity-modify", Engine="redis",
                            CacheNodeType="cache.t3.micro", NumCacheNodes=1,
                            SecurityGroupIds=["sg-0old"])
    ec.modify_cache_cluster(CacheClusterId="fidelity-modify", SecurityGroupIds=["sg-0new"],
                            CacheNodeType="cache.t3.small", ApplyImmediately=True)
    cluster = ec.describe_cache_clusters(CacheClusterId="fidelity-modify")["CacheClusters"][0]
    groups = [g["SecurityGroupId"] for g in cluster.get("SecurityGroups", [])]
    check("ModifyCacheCluster changes the security groups and the node type in place",
          groups == ["sg-0new"] and cluster["CacheNodeType"] == "cache.t3.small", cluster)
    code, _ = fails(ec.modify_cache_cluster, CacheClusterId="fidelity-missing", NumCacheNodes=2)
    check("ModifyCacheCluster of a missing cluster is CacheClusterNotFound",
          code == "CacheClusterNotFound", code)
    ec.delete_cache_cluster(CacheClusterId="fidelity-modify")


ELASTICACHE_NAMESPACE = "http://elasticache.amazonaws.com/doc/2015-02-02/"
RBAC_SETTLE_SECONDS = float(os.environ.get("PLINTH_EMULATOR_RBAC_SETTLE_SECONDS", "2"))
PASSWORD = "fidelity-password-1"


def refused(what: str, wire: Wire, call, code: str, status: int, message: str | None = None,
            **kwargs) -> None:
    """`call` fails with `code` and `status` in AWS's query-protocol error document."""
    got = fails(call, **kwargs)
    check(f"{what}: {code} ({status})", got == (code, status), got)
    if got[0] != code:
        return
    body = re.sub(r"^<\?xml[^>]*\?>\s*", "", wire.body).strip()
    doc = re.match(
        rf'<ErrorResponse xmlns="{re.escape(ELASTICACHE_NAMESPACE)}"><Error><Type>Sender</Type>'
        rf"<Code>{code}</Code><Message>([^<]+)</Message></Error><RequestId>[^<]+</RequestId>"
        r"</ErrorResponse>$", body)
    check(f"{what}: AWS's error document", doc is not None, body)
    if doc is not None and message is not None:
        check(f"{what}: says {message!r}", doc.group(1) == message, doc.group(1))


def user_of(ec, user_id: str) -> dict:
    return ec.describe_users(UserId=user_id)["Users"][0]


def group_of(ec, group_id: str) -> dict:
    return ec.describe_user_groups(UserGroupId=group_id)["UserGroups"][0]


def settled(describe, *ids: str, ready: str = "active") -> None:
    """Describes each thing until it is `ready` (as a client waiting for it does)."""
    for thing in ids:
        for _ in range(4):
            if describe(thing)["Status"] == ready:
                break
        else:
            raise AssertionError(f"{thing} did not become {ready}")


def make_user(ec, user_id: str, user_name: str, **auth) -> None:
    ec.create_user(UserId=user_id, UserName=user_name, Engine="redis", AccessString="on ~* +@all",
                   **(auth or {"Passwords": [PASSWORD]}))
    settled(lambda u: user_of(ec, u), user_id)


def make_user_group(ec, group_id: str, users=("default",)) -> None:
    ec.create_user_group(UserGroupId=group_id, Engine="redis", UserIds=list(users))
    settled(lambda g: group_of(ec, g), group_id)


def elasticache_users(ec, wire) -> None:
    tags = [{"Key": "plinth:stack", "Value": "fidelity-users"}]
    made = ec.create_user(UserId="fid-user", UserName="fid-user", Engine="redis",
                          AccessString="on ~* +@all", Passwords=[PASSWORD], Tags=tags)
    check("CreateUser answers the new user creating", made["Status"] == "creating", made)
    seen = [user_of(ec, "fid-user")["Status"] for _ in range(2)]
    check("the first DescribeUsers says creating, the next active", seen == ["creating", "active"], seen)
    check("a user's ARN is arn:aws:elasticache:REGION:ACCOUNT:user:ID",
          made["ARN"] == "arn:aws:elasticache:us-east-1:123456789012:user:fid-user", made["ARN"])
    listed = ec.list_tags_for_resource(ResourceName=made["ARN"])["TagList"]
    check("the tags given to CreateUser are read from the user's ARN", listed == tags, listed)
    auth = user_of(ec, "fid-user")["Authentication"]
    check("Passwords: Authentication password with PasswordCount 1",
          auth == {"Type": "password", "PasswordCount": 1}, auth)

    ec.create_user(UserId="fid-two", UserName="two", Engine="valkey", AccessString="on ~* +@all",
                   AuthenticationMode={"Type": "password", "Passwords": [PASSWORD, PASSWORD + "x"]})
    ec.create_user(UserId="fid-nopass", UserName="nopass", Engine="redis", AccessString="off -@all",
                   AuthenticationMode={"Type": "no-password-required"})
    ec.create_user(UserId="fid-iam", UserName="fid-iam", Engine="redis", AccessString="on ~* +@all",
                   AuthenticationMode={"Type": "iam"})
    auths = {u["UserId"]: u["Authentication"] for u in ec.describe_users()["Users"]}
    check("AuthenticationMode password with two passwords: PasswordCount 2",
          auths.get("fid-two") == {"Type": "password", "PasswordCount": 2}, auths)
    check("AuthenticationMode no-password-required is reported as Authentication no-password",
          auths.get("fid-nopass", {}).get("Type") == "no-password", auths)
    check("AuthenticationMode iam is reported as Authentication iam",
          auths.get("fid-iam", {}).get("Type") == "iam", auths)
    settled(lambda u: user_of(ec, u), "fid-two", "fid-nopass", "fid-iam")

    def create(user_id="fid-refused", user_name="fid-refused", **auth):
        return lambda: ec.create_user(UserId=user_id, UserName=user_name, Engine="redis",
                                      AccessString="on ~* +@all", **auth)

    refused("CreateUser iam with a UserName other than the UserId", wire,
            create(user_name="other", AuthenticationMode={"Type": "iam"}), "InvalidParameterValue", 400)
    got = fails(create(AuthenticationMode={"Type": "iam", "Passwords": [PASSWORD]}))
    check("CreateUser iam takes no passwords", got[1] == 400, got)
    for what, passwords in (("three passwords", [PASSWORD, PASSWORD + "1", PASSWORD + "2"]),
                            ("a password of 15 characters", ["a" * 15]),
                            ("a password of 129 characters", ["a" * 129]),
                            ("a password with a tab", ["fidelity\tpassword-1"]),
                            ("a password with an @", ["fidelity@password-1"])):
        refused(f"CreateUser with {what}", wire, create(Passwords=passwords), "InvalidParameterValue", 400)
    refused("CreateUser with AuthenticationMode Passwords of 15 characters", wire,
            create(AuthenticationMode={"Type": "password", "Passwords": ["a" * 15]}),
            "InvalidParameterValue", 400)
    refused("a refused CreateUser made no user", wire, ec.describe_users, "UserNotFound", 404,
            UserId="fid-refused")
    refused("CreateUser of a taken id", wire, create(user_id="fid-user", Passwords=[PASSWORD]),
            "UserAlreadyExists", 400, "User fid-user already exists.")

    changed = ec.modify_user(UserId="fid-user", AccessString="on ~app:* +@read",
                             AppendAccessString="+@write")
    check("ModifyUser answers the user modifying", changed["Status"] == "modifying", changed)
    refused("ModifyUser of a user still modifying", wire, ec.modify_user, "InvalidUserState", 400,
            UserId="fid-user", AccessString="on ~* +@all")
    user = user_of(ec, "fid-user")
    check("the next DescribeUsers: active, with the new access string",
          user["Status"] == "active" and user["AccessString"] == "on ~app:* +@read +@write", user)
    ec.modify_user(UserId="fid-user", AuthenticationMode={"Type": "password",
                                                          "Passwords": [PASSWORD, PASSWORD + "2"]})
    auth = user_of(ec, "fid-user")["Authentication"]
    check("ModifyUser AuthenticationMode: two passwords", auth == {"Type": "password", "PasswordCount": 2}, auth)
    ec.modify_user(UserId="fid-user", NoPasswordRequired=True)
    auth = user_of(ec, "fid-user")["Authentication"]
    check("ModifyUser NoPasswordRequired: no-password", auth.get("Type") == "no-password", auth)
    refused("ModifyUser with a password of 15 characters", wire, ec.modify_user,
            "InvalidParameterValue", 400, UserId="fid-user", Passwords=["a" * 15])
    refused("ModifyUser to iam with a UserName other than the UserId", wire, ec.modify_user,
            "InvalidParameterValue", 400, UserId="fid-two", AuthenticationMode={"Type": "iam"})
    refused("ModifyUser of an unknown user", wire, ec.modify_user, "UserNotFound", 404,
            UserId="fid-nobody", AccessString="on ~* +@all")
    ec.create_user(UserId="fid-fresh", UserName="fresh", Engine="redis", AccessString="on ~* +@all",
                   Passwords=[PASSWORD])
    refused("ModifyUser of a user still creating", wire, ec.modify_user, "InvalidUserState", 400,
            UserId="fid-fresh", AccessString="off")
    refused("DeleteUser of a user still creating", wire, ec.delete_user, "InvalidUserState", 400,
            UserId="fid-fresh")
    refused("ModifyUser of the built-in default user", wire, ec.modify_user,
            "InvalidParameterValue", 400, UserId="default", AccessString="off -@all")
    refused("DeleteUser of the built-in default user", wire, ec.delete_user,
            "InvalidParameterValue", 400, UserId="default")

    gone = ec.delete_user(UserId="fid-iam")
    check("DeleteUser answers the user deleting", gone["Status"] == "deleting", gone)
    first = {u["UserId"]: u["Status"] for u in ec.describe_users()["Users"]}
    second = {u["UserId"]: u["Status"] for u in ec.describe_users()["Users"]}
    check("DescribeUsers lists it deleting once, then no more",
          first.get("fid-iam") == "deleting" and "fid-iam" not in second, (first, second))
    ec.delete_user(UserId="fid-nopass")
    status = user_of(ec, "fid-nopass")["Status"]
    check("DescribeUsers of its id: deleting once", status == "deleting", status)
    refused("then DescribeUsers of a deleted user", wire, ec.describe_users, "UserNotFound", 404,
            UserId="fid-nopass")

    ec.create_user(UserId="fid-slow", UserName="slow", Engine="redis", AccessString="on ~* +@all",
                   Passwords=[PASSWORD])
    time.sleep(RBAC_SETTLE_SECONDS + 0.3)
    got = fails(ec.modify_user, UserId="fid-slow", AccessString="off")
    check("a user nobody described is active anyway after a while", got == ("", 200), got)


def elasticache_user_groups(ec, wire) -> None:
    make_user(ec, "fid-g-app", "app")
    make_user(ec, "fid-g-default", "default", NoPasswordRequired=True)
    make_user(ec, "fid-g-other", "other")
    tags = [{"Key": "plinth:stack", "Value": "fidelity-groups"}]
    made = ec.create_user_group(UserGroupId="fid-group", Engine="redis",
                                UserIds=["default", "fid-g-app"], Tags=tags)
    made.pop("ResponseMetadata", None)
    check("CreateUserGroup answers AWS's UserGroup, creating", made == {
        "UserGroupId": "fid-group", "Status": "creating", "Engine": "redis",
        "UserIds": ["default", "fid-g-app"], "MinimumEngineVersion": "6.0",
        "ReplicationGroups": [], "ServerlessCaches": [],
        "ARN": "arn:aws:elasticache:us-east-1:123456789012:usergroup:fid-group"}, made)
    seen = [group_of(ec, "fid-group")["Status"] for _ in range(2)]
    check("the first DescribeUserGroups says creating, the next active",
          seen == ["creating", "active"], seen)
    listed = ec.list_tags_for_resource(ResourceName=made["ARN"])["TagList"]
    check("the tags given to CreateUserGroup are read from the group's ARN", listed == tags, listed)
    member = user_of(ec, "fid-g-app")["UserGroupIds"]
    check("a member's UserGroupIds lists the group", member == ["fid-group"], member)
    every = [g["UserGroupId"] for g in ec.describe_user_groups()["UserGroups"]]
    check("DescribeUserGroups without an id lists the group", "fid-group" in every, every)

    def create(group_id="fid-refused", users=("default",)):
        return lambda: ec.create_user_group(UserGroupId=group_id, Engine="redis", UserIds=list(users))

    refused("CreateUserGroup of a taken id", wire, create("fid-group"), "UserGroupAlreadyExists", 400)
    refused("CreateUserGroup with an unknown user", wire, create(users=("default", "fid-nobody")),
            "UserNotFound", 404)
    refused("CreateUserGroup without a user named default", wire, create(users=("fid-g-app",)),
            "DefaultUserRequired", 400)
    refused("CreateUserGroup with two users named default", wire,
            create(users=("default", "fid-g-default")), "DuplicateUserName", 400)
    refused("a refused CreateUserGroup made no group", wire, ec.describe_user_groups,
            "UserGroupNotFound", 404, UserGroupId="fid-refused")
    refused("ModifyUserGroup of an unknown group", wire, ec.modify_user_group, "UserGroupNotFound",
            404, UserGroupId="fid-nogroup", UserIdsToAdd=["fid-g-app"])
    refused("DeleteUserGroup of an unknown group", wire, ec.delete_user_group, "UserGroupNotFound",
            404, UserGroupId="fid-nogroup")
    ec.create_user_group(UserGroupId="fid-group-new", Engine="redis", UserIds=["default"])
    refused("ModifyUserGroup of a group still creating", wire, ec.modify_user_group,
            "InvalidUserGroupState", 400, UserGroupId="fid-group-new", UserIdsToAdd=["fid-g-app"])
    refused("DeleteUserGroup of a group still creating", wire, ec.delete_user_group,
            "InvalidUserGroupState", 400, UserGroupId="fid-group-new")

    refused("ModifyUserGroup adding an unknown user", wire, ec.modify_user_group, "UserNotFound",
            404, UserGroupId="fid-group", UserIdsToAdd=["fid-nobody"])
    refused("ModifyUserGroup removing a user that is not a member", wire, ec.modify_user_group,
            "InvalidParameterValue", 400, "User fid-g-other is not a member of user group fid-group",
            UserGroupId="fid-group", UserIdsToRemove=["fid-g-other"])
    refused("ModifyUserGroup removing the only user named default", wire, ec.modify_user_group,
            "DefaultUserRequired", 400, UserGroupId="fid-group", UserIdsToRemove=["default"])
    refused("ModifyUserGroup adding a second user named default", wire, ec.modify_user_group,
            "DuplicateUserName", 400, UserGroupId="fid-group", UserIdsToAdd=["fid-g-default"])
    changed = ec.modify_user_group(UserGroupId="fid-group", UserIdsToAdd=["fid-g-default", "fid-g-other"],
                                   UserIdsToRemove=["default"])
    check("ModifyUserGroup answers modifying, its members as they were and PendingChanges",
          changed["Status"] == "modifying" and changed["UserIds"] == ["default", "fid-g-app"]
          and changed.get("PendingChanges") == {"UserIdsToAdd": ["fid-g-default", "fid-g-other"],
                                                "UserIdsToRemove": ["default"]}, changed)
    refused("ModifyUserGroup of a group still modifying", wire, ec.modify_user_group,
            "InvalidUserGroupState", 400, UserGroupId="fid-group", UserIdsToRemove=["fid-g-app"])
    seen = [group_of(ec, "fid-group") for _ in range(2)]
    check("the next DescribeUserGroups says modifying, the one after active",
          [g["Status"] for g in seen] == ["modifying", "active"], seen)
    check("then the group has its new members and no PendingChanges",
          sorted(seen[1]["UserIds"]) == ["fid-g-app", "fid-g-default", "fid-g-other"]
          and "PendingChanges" not in seen[1], seen[1])
    groups = {u: user_of(ec, u)["UserGroupIds"] for u in ("fid-g-other", "default")}
    check("the members' UserGroupIds follow",
          groups["fid-g-other"] == ["fid-group"] and "fid-group" not in groups["default"], groups)

    refused("DeleteUser of the user named default that a group has", wire, ec.delete_user,
            "DefaultUserAssociatedToUserGroup", 400, UserId="fid-g-default")
    ec.delete_user(UserId="fid-g-other")
    members = group_of(ec, "fid-group")["UserIds"]
    check("DeleteUser takes the user out of its groups", "fid-g-other" not in members, members)

    gone = ec.delete_user_group(UserGroupId="fid-group")
    check("DeleteUserGroup answers deleting", gone["Status"] == "deleting", gone)
    status = group_of(ec, "fid-group")["Status"]
    check("DescribeUserGroups says deleting once", status == "deleting", status)
    refused("then DescribeUserGroups of the deleted group", wire, ec.describe_user_groups,
            "UserGroupNotFound", 404, UserGroupId="fid-group")
    member = user_of(ec, "fid-g-app")["UserGroupIds"]
    check("the deleted group's members no longer list it", member == [], member)


def elasticache_replication_user_groups(ec, wire) -> None:
    make_user_group(ec, "fid-rg-users")
    make_user_group(ec, "fid-rg-users2")
    rg = {"ReplicationGroupId": "fid-rbac-rg", "ReplicationGroupDescription": "f",
          "Engine": "redis", "CacheNodeType": "cache.t4g.micro"}
    refused("CreateReplicationGroup with an unknown user group", wire, ec.create_replication_group,
            "UserGroupNotFound", 404, UserGroupIds=["fid-nogroup"], TransitEncryptionEnabled=True, **rg)
    refused("CreateReplicationGroup with a user group, without in-transit encryption", wire,
            ec.create_replication_group, "InvalidParameterCombination", 400,
            UserGroupIds=["fid-rg-users"], **rg)
    refused("CreateReplicationGroup with a user group and an AuthToken", wire,
            ec.create_replication_group, "InvalidParameterCombination", 400,
            UserGroupIds=["fid-rg-users"], TransitEncryptionEnabled=True,
            AuthToken="fidelity-token-0123456789", **rg)
    ec.create_user_group(UserGroupId="fid-rg-fresh", Engine="redis", UserIds=["default"])
    refused("CreateReplicationGroup with a user group still creating", wire,
            ec.create_replication_group, "InvalidUserGroupState", 400,
            UserGroupIds=["fid-rg-fresh"], TransitEncryptionEnabled=True, **rg)
    refused("a refused CreateReplicationGroup made no group", wire, ec.describe_replication_groups,
            "ReplicationGroupNotFoundFault", 404, ReplicationGroupId="fid-rbac-rg")

    ec.create_replication_group(UserGroupIds=["fid-rg-users"], TransitEncryptionEnabled=True, **rg)
    ids = ec.describe_replication_groups(ReplicationGroupId="fid-rbac-rg")["ReplicationGroups"][0].get(
        "UserGroupIds")
    check("DescribeReplicationGroups shows the UserGroupIds", ids == ["fid-rg-users"], ids)
    using = group_of(ec, "fid-rg-users")["ReplicationGroups"]
    check("the user group's ReplicationGroups lists the replication group", using == ["fid-rbac-rg"], using)
    refused("DeleteUserGroup of a group a replication group uses", wire, ec.delete_user_group,
            "InvalidUserGroupState", 400, UserGroupId="fid-rg-users")

    refused("ModifyReplicationGroup of an unknown replication group", wire, ec.modify_replication_group,
            "ReplicationGroupNotFoundFault", 404, ReplicationGroupId="fid-norg",
            UserGroupIdsToAdd=["fid-rg-users2"])
    got = fails(ec.modify_replication_group, ReplicationGroupId="fid-rbac-rg",
                UserGroupIdsToAdd=["fid-rg-users2"], SnapshotRetentionLimit=1, ApplyImmediately=True)
    check("ModifyReplicationGroup with a parameter the patch does not implement: InvalidParameterValue",
          got == ("InvalidParameterValue", 400) and "SnapshotRetentionLimit" in wire.body
          and "not implemented" in wire.body, (got, wire.body))
    after = ec.describe_replication_groups(ReplicationGroupId="fid-rbac-rg")["ReplicationGroups"][0]
    check("and nothing was changed", after["Status"] == "available" and after["SnapshotRetentionLimit"] == 0
          and after.get("UserGroupIds") == ["fid-rg-users"], after)
    refused("ModifyReplicationGroup adding an unknown user group", wire, ec.modify_replication_group,
            "UserGroupNotFound", 404, ReplicationGroupId="fid-rbac-rg", UserGroupIdsToAdd=["fid-nogroup"])
    ec.create_user_group(UserGroupId="fid-rg-fresh2", Engine="redis", UserIds=["default"])
    refused("ModifyReplicationGroup adding a user group still creating", wire,
            ec.modify_replication_group, "InvalidUserGroupState", 400,
            ReplicationGroupId="fid-rbac-rg", UserGroupIdsToAdd=["fid-rg-fresh2"])
    refused("ModifyReplicationGroup removing a user group it does not have", wire,
            ec.modify_replication_group, "InvalidParameterValue", 400,
            ReplicationGroupId="fid-rbac-rg", UserGroupIdsToRemove=["fid-rg-users2"])
    changed = ec.modify_replication_group(ReplicationGroupId="fid-rbac-rg", ApplyImmediately=True,
                                          UserGroupIdsToAdd=["fid-rg-users2"],
                                          UserGroupIdsToRemove=["fid-rg-users"])["ReplicationGroup"]
    check("ModifyReplicationGroup answers modifying with the user groups pending",
          changed["Status"] == "modifying" and changed.get("PendingModifiedValues", {}).get("UserGroups")
          == {"UserGroupIdsToAdd": ["fid-rg-users2"], "UserGroupIdsToRemove": ["fid-rg-users"]}, changed)
    refused("ModifyReplicationGroup of a replication group still modifying", wire,
            ec.modify_replication_group, "InvalidReplicationGroupState", 400,
            ReplicationGroupId="fid-rbac-rg", UserGroupIdsToRemove=["fid-rg-users2"])
    refused("DeleteReplicationGroup of a replication group still modifying", wire,
            ec.delete_replication_group, "InvalidReplicationGroupState", 400,
            ReplicationGroupId="fid-rbac-rg")
    after = ec.describe_replication_groups(ReplicationGroupId="fid-rbac-rg")["ReplicationGroups"][0]
    check("the next DescribeReplicationGroups: available, with the new UserGroupIds",
          after["Status"] == "available" and after.get("UserGroupIds") == ["fid-rg-users2"]
          and "PendingModifiedValues" not in after, after)
    using = {g: group_of(ec, g)["ReplicationGroups"] for g in ("fid-rg-users", "fid-rg-users2")}
    check("the user groups' ReplicationGroups follow",
          using == {"fid-rg-users": [], "fid-rg-users2": ["fid-rbac-rg"]}, using)
    gone = ec.delete_user_group(UserGroupId="fid-rg-users")
    check("a user group no replication group uses any more can be deleted",
          gone["Status"] == "deleting", gone)

    ec.create_replication_group(ReplicationGroupId="fid-plain-rg", ReplicationGroupDescription="f",
                                Engine="redis", CacheNodeType="cache.t4g.micro")
    refused("ModifyReplicationGroup adding a user group without in-transit encryption", wire,
            ec.modify_replication_group, "InvalidParameterCombination", 400,
            ReplicationGroupId="fid-plain-rg", UserGroupIdsToAdd=["fid-rg-users2"])
    ec.delete_replication_group(ReplicationGroupId="fid-plain-rg")

    ec.delete_replication_group(ReplicationGroupId="fid-rbac-rg")
    using = group_of(ec, "fid-rg-users2")["ReplicationGroups"]
    check("a deleting replication group still uses its user group", using == ["fid-rbac-rg"], using)
    refused("DeleteUserGroup while its replication group is deleting", wire, ec.delete_user_group,
            "InvalidUserGroupState", 400, UserGroupId="fid-rg-users2")
    refused("ModifyReplicationGroup of a deleting replication group", wire,
            ec.modify_replication_group, "InvalidReplicationGroupState", 400,
            ReplicationGroupId="fid-rbac-rg", UserGroupIdsToRemove=["fid-rg-users2"])
    time.sleep(float(os.environ.get("PLINTH_EMULATOR_DELETING_SECONDS", "2")) + 0.5)
    using = group_of(ec, "fid-rg-users2")["ReplicationGroups"]
    check("once the replication group is gone, its user group's ReplicationGroups is empty",
          using == [], using)
    got = fails(ec.delete_user_group, UserGroupId="fid-rg-users2")
    check("and the user group can be deleted", got == ("", 200), got)


def cache_of(ec, name: str) -> dict:
    return ec.describe_serverless_caches(ServerlessCacheName=name)["ServerlessCaches"][0]


def elasticache_serverless(ec, ec2, wire) -> None:
    tags = [{"Key": "plinth:stack", "Value": "fidelity-serverless"}]
    limits = {"DataStorage": {"Maximum": 10, "Minimum": 1, "Unit": "GB"},
              "ECPUPerSecond": {"Maximum": 5000, "Minimum": 1000}}
    vpc = ec2.create_vpc(CidrBlock="10.91.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.91.{i}.0/24",
                                 AvailabilityZone=f"us-east-1{zone}")["Subnet"]["SubnetId"]
               for i, zone in enumerate("ab")]
    vpc_default_group = ec2.describe_security_groups(Filters=[
        {"Name": "vpc-id", "Values": [vpc]}, {"Name": "group-name", "Values": ["default"]}])[
        "SecurityGroups"][0]["GroupId"]
    made = ec.create_serverless_cache(
        ServerlessCacheName="fid-cache", Engine="valkey", CacheUsageLimits=limits,
        KmsKeyId="arn:aws:kms:us-east-1:123456789012:key/fidelity", SubnetIds=subnets,
        Tags=tags)["ServerlessCache"]
    check("CreateServerlessCache answers the cache creating", made["Status"] == "creating", made)
    seen = [cache_of(ec, "fid-cache")["Status"] for _ in range(2)]
    check("the first DescribeServerlessCaches says creating, the next available",
          seen == ["creating", "available"], seen)
    check("a serverless cache's ARN is arn:aws:elasticache:REGION:ACCOUNT:serverlesscache:NAME",
          made["ARN"] == "arn:aws:elasticache:us-east-1:123456789012:serverlesscache:fid-cache", made)
    check("valkey: MajorEngineVersion 8 by default, FullEngineVersion 8.0, Description empty",
          (made["MajorEngineVersion"], made["FullEngineVersion"], made["Description"]) == ("8", "8.0", ""),
          made)
    check("CacheUsageLimits, KmsKeyId and SubnetIds as sent",
          not lost(limits, made.get("CacheUsageLimits")) and made.get("SubnetIds") == subnets
          and made.get("KmsKeyId") == "arn:aws:kms:us-east-1:123456789012:key/fidelity",
          (lost(limits, made.get("CacheUsageLimits")), made))
    check("no SecurityGroupIds given: the default security group of the subnets' VPC",
          made.get("SecurityGroupIds") == [vpc_default_group], made.get("SecurityGroupIds"))
    endpoint, reader = made.get("Endpoint", {}), made.get("ReaderEndpoint", {})
    check("Endpoint NAME-XXXXXX.serverless.use1.cache.amazonaws.com:6379",
          re.match(r"^fid-cache-[a-z0-9]{6}\.serverless\.use1\.cache\.amazonaws\.com$",
                   endpoint.get("Address", "")) is not None and endpoint.get("Port") == 6379, endpoint)
    check("ReaderEndpoint: the same address, port 6380",
          reader == {"Address": endpoint.get("Address"), "Port": 6380}, reader)
    check("redis and valkey: SnapshotRetentionLimit 0 and DailySnapshotTime 04:00 by default",
          (made.get("SnapshotRetentionLimit"), made.get("DailySnapshotTime")) == (0, "04:00"), made)
    check("no UserGroupId when none is given", "UserGroupId" not in made, made)
    listed = ec.list_tags_for_resource(ResourceName=made["ARN"])["TagList"]
    check("the tags given to CreateServerlessCache are read from the cache's ARN", listed == tags, listed)
    ec.add_tags_to_resource(ResourceName=made["ARN"], Tags=[{"Key": "extra", "Value": "1"}])
    ec.remove_tags_from_resource(ResourceName=made["ARN"], TagKeys=["plinth:stack"])
    listed = ec.list_tags_for_resource(ResourceName=made["ARN"])["TagList"]
    check("AddTagsToResource and RemoveTagsFromResource change them",
          listed == [{"Key": "extra", "Value": "1"}], listed)
    refused("ListTagsForResource of a serverless cache that does not exist", wire,
            ec.list_tags_for_resource, "ServerlessCacheNotFoundFault", 404,
            ResourceName="arn:aws:elasticache:us-east-1:123456789012:serverlesscache:fid-none")

    default_vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    default_group = ec2.describe_security_groups(Filters=[
        {"Name": "vpc-id", "Values": [default_vpc]}, {"Name": "group-name", "Values": ["default"]}])[
        "SecurityGroups"][0]["GroupId"]
    default_subnets = {s["SubnetId"]: s["AvailabilityZone"] for s in ec2.describe_subnets(Filters=[
        {"Name": "vpc-id", "Values": [default_vpc]}, {"Name": "default-for-az", "Values": ["true"]}])["Subnets"]}
    plain = ec.create_serverless_cache(ServerlessCacheName="Fid-Redis", Engine="redis")["ServerlessCache"]
    check("the name is stored in lowercase", plain["ServerlessCacheName"] == "fid-redis", plain)
    check("redis: MajorEngineVersion 7, FullEngineVersion 7.1; no CacheUsageLimits when none are sent",
          (plain["MajorEngineVersion"], plain["FullEngineVersion"]) == ("7", "7.1")
          and "CacheUsageLimits" not in plain and "KmsKeyId" not in plain, plain)
    check("no SecurityGroupIds nor SubnetIds: the default VPC's default security group",
          plain.get("SecurityGroupIds") == [default_group], (plain.get("SecurityGroupIds"), default_group))
    zones = [default_subnets.get(s) for s in plain.get("SubnetIds", [])]
    check("and 3 of its default subnets, in different Availability Zones",
          len(zones) == 3 and None not in zones and len(set(zones)) == 3, (plain.get("SubnetIds"), zones))
    memcached = ec.create_serverless_cache(ServerlessCacheName="fid-memcached", Engine="memcached",
                                           SecurityGroupIds=["sg-0fidelity"])["ServerlessCache"]
    check("memcached: ports 11211 and 11212, MajorEngineVersion 1.6, no snapshot settings",
          memcached["Endpoint"]["Port"] == 11211 and memcached["ReaderEndpoint"]["Port"] == 11212
          and memcached["MajorEngineVersion"] == "1.6" and "SnapshotRetentionLimit" not in memcached
          and "DailySnapshotTime" not in memcached, memcached)
    check("SecurityGroupIds as sent", memcached.get("SecurityGroupIds") == ["sg-0fidelity"], memcached)

    def create(name="fid-refused", engine="redis", **extra):
        return lambda: ec.create_serverless_cache(ServerlessCacheName=name, Engine=engine, **extra)

    refused("CreateServerlessCache of a taken name", wire, create(name="fid-cache", engine="valkey"),
            "ServerlessCacheAlreadyExistsFault", 400)
    for what, name in (("beginning with a digit", "1fid"), ("with two hyphens in a row", "fid--cache"),
                       ("ending with a hyphen", "fid-cache-"), ("of 41 characters", "f" * 41),
                       ("with an underscore", "fid_cache")):
        refused(f"CreateServerlessCache with a name {what}", wire, create(name=name),
                "InvalidParameterValue", 400)
    for what, usage in (
            ("a DataStorage Minimum above its Maximum", {"DataStorage": {"Maximum": 5, "Minimum": 6, "Unit": "GB"}}),
            ("a DataStorage Maximum of 0 GB", {"DataStorage": {"Maximum": 0, "Unit": "GB"}}),
            ("a DataStorage Maximum of 5001 GB", {"DataStorage": {"Maximum": 5001, "Unit": "GB"}}),
            ("an ECPUPerSecond Maximum of 999", {"ECPUPerSecond": {"Maximum": 999}}),
            ("an ECPUPerSecond Maximum of 15000001", {"ECPUPerSecond": {"Maximum": 15000001}}),
            ("an ECPUPerSecond Minimum above its Maximum", {"ECPUPerSecond": {"Maximum": 2000, "Minimum": 3000}})):
        refused(f"CreateServerlessCache with {what}", wire, create(CacheUsageLimits=usage),
                "InvalidParameterValue", 400)
    refused("CreateServerlessCache with an unknown engine", wire, create(engine="mysql"),
            "InvalidParameterValue", 400)
    refused("CreateServerlessCache with a DailySnapshotTime not HH:MM", wire,
            create(DailySnapshotTime="4am"), "InvalidParameterValue", 400)
    refused("CreateServerlessCache with a negative SnapshotRetentionLimit", wire,
            create(SnapshotRetentionLimit=-1), "InvalidParameterValue", 400)
    got = fails(create(SnapshotArnsToRestore=["arn:aws:elasticache:us-east-1:123456789012:"
                                              "serverlesscachesnapshot:fid-snap"]))
    check("CreateServerlessCache SnapshotArnsToRestore: InvalidParameterValue, not implemented",
          got == ("InvalidParameterValue", 400) and "not implemented" in wire.body, (got, wire.body))
    refused("CreateServerlessCache with a MajorEngineVersion redis does not have", wire,
            create(MajorEngineVersion="6"), "InvalidParameterValue", 400)
    make_user_group(ec, "fid-sl-users")
    refused("CreateServerlessCache memcached with a user group", wire,
            create(engine="memcached", UserGroupId="fid-sl-users"), "InvalidParameterCombination", 400)
    refused("CreateServerlessCache with an unknown user group", wire, create(UserGroupId="fid-sl-none"),
            "UserGroupNotFound", 404)
    ec.create_user_group(UserGroupId="fid-sl-fresh", Engine="redis", UserIds=["default"])
    refused("CreateServerlessCache with a user group still creating", wire,
            create(UserGroupId="fid-sl-fresh"), "InvalidUserGroupState", 400)
    refused("a refused CreateServerlessCache made no cache", wire, ec.describe_serverless_caches,
            "ServerlessCacheNotFoundFault", 404, ServerlessCacheName="fid-refused")
    refused("DescribeServerlessCaches of an unknown name", wire, ec.describe_serverless_caches,
            "ServerlessCacheNotFoundFault", 404, "Serverless cache fid-none not found.",
            ServerlessCacheName="fid-none")

    rbac = ec.create_serverless_cache(ServerlessCacheName="fid-rbac", Engine="valkey",
                                      UserGroupId="fid-sl-users")["ServerlessCache"]
    check("UserGroupId as given", rbac.get("UserGroupId") == "fid-sl-users", rbac)
    using = group_of(ec, "fid-sl-users")["ServerlessCaches"]
    check("the user group's ServerlessCaches names the cache", using == ["fid-rbac"], using)
    refused("DeleteUserGroup of a group a serverless cache uses", wire, ec.delete_user_group,
            "InvalidUserGroupState", 400, UserGroupId="fid-sl-users")

    every = [c["ServerlessCacheName"] for c in ec.describe_serverless_caches()["ServerlessCaches"]]
    check("DescribeServerlessCaches lists every cache",
          every == ["fid-cache", "fid-redis", "fid-memcached", "fid-rbac"], every)
    paged, token, pages = [], None, 0
    while pages < 10:
        page = ec.describe_serverless_caches(MaxResults=3, **({"NextToken": token} if token else {}))
        paged += [c["ServerlessCacheName"] for c in page["ServerlessCaches"]]
        pages, token = pages + 1, page.get("NextToken")
        if not token:
            break
    check("MaxResults pages them, NextToken goes on", paged == every and pages == 2, (paged, pages))
    refused("DescribeServerlessCaches with a NextToken it did not give", wire,
            ec.describe_serverless_caches, "InvalidParameterValue", 400, NextToken="fidelity")
    settled(lambda n: cache_of(ec, n), "fid-redis", "fid-memcached", "fid-rbac", ready="available")

    ec.create_serverless_cache(ServerlessCacheName="fid-fresh", Engine="redis")
    refused("ModifyServerlessCache of a cache still creating", wire, ec.modify_serverless_cache,
            "InvalidServerlessCacheStateFault", 400, ServerlessCacheName="fid-fresh", Description="x")
    refused("DeleteServerlessCache of a cache still creating", wire, ec.delete_serverless_cache,
            "InvalidServerlessCacheStateFault", 400, ServerlessCacheName="fid-fresh")
    refused("ModifyServerlessCache of an unknown cache", wire, ec.modify_serverless_cache,
            "ServerlessCacheNotFoundFault", 404, ServerlessCacheName="fid-none", Description="x")
    refused("ModifyServerlessCache with RemoveUserGroup and a UserGroupId", wire,
            ec.modify_serverless_cache, "InvalidParameterCombination", 400,
            ServerlessCacheName="fid-rbac", RemoveUserGroup=True, UserGroupId="fid-sl-users")
    refused("ModifyServerlessCache with a DataStorage Minimum above its Maximum", wire,
            ec.modify_serverless_cache, "InvalidParameterValue", 400, ServerlessCacheName="fid-cache",
            CacheUsageLimits={"DataStorage": {"Maximum": 2, "Minimum": 3, "Unit": "GB"}})
    refused("ModifyServerlessCache with an ECPUPerSecond Maximum of 15000001", wire,
            ec.modify_serverless_cache, "InvalidParameterValue", 400, ServerlessCacheName="fid-cache",
            CacheUsageLimits={"ECPUPerSecond": {"Maximum": 15000001}})
    refused("ModifyServerlessCache memcached with a user group", wire, ec.modify_serverless_cache,
            "InvalidParameterCombination", 400, ServerlessCacheName="fid-memcached",
            UserGroupId="fid-sl-users")
    refused("ModifyServerlessCache from valkey to memcached", wire, ec.modify_serverless_cache,
            "InvalidParameterCombination", 400, ServerlessCacheName="fid-cache", Engine="memcached")
    refused("ModifyServerlessCache to a MajorEngineVersion below the cache's", wire,
            ec.modify_serverless_cache, "InvalidParameterCombination", 400,
            ServerlessCacheName="fid-cache", MajorEngineVersion="7")
    refused("ModifyServerlessCache with a user group still creating", wire, ec.modify_serverless_cache,
            "InvalidUserGroupState", 400, ServerlessCacheName="fid-cache", UserGroupId="fid-sl-fresh")
    check("the refused modifications changed nothing",
          cache_of(ec, "fid-cache")["Status"] == "available" and not lost(limits, cache_of(ec, "fid-cache")
                                                                             .get("CacheUsageLimits")),
          cache_of(ec, "fid-cache"))

    new_storage = {"DataStorage": {"Maximum": 20, "Unit": "GB"}}
    changed = ec.modify_serverless_cache(
        ServerlessCacheName="fid-cache", Description="changed", CacheUsageLimits=new_storage,
        SecurityGroupIds=["sg-0changed"], SnapshotRetentionLimit=3, DailySnapshotTime="05:30",
        UserGroupId="fid-sl-users")["ServerlessCache"]
    check("ModifyServerlessCache answers the cache modifying", changed["Status"] == "modifying", changed)
    refused("ModifyServerlessCache of a cache still modifying", wire, ec.modify_serverless_cache,
            "InvalidServerlessCacheStateFault", 400, ServerlessCacheName="fid-cache", Description="again")
    after = cache_of(ec, "fid-cache")
    check("the next DescribeServerlessCaches: available, with the changes",
          after["Status"] == "available" and after["Description"] == "changed"
          and after.get("SecurityGroupIds") == ["sg-0changed"] and after.get("SnapshotRetentionLimit") == 3
          and after.get("DailySnapshotTime") == "05:30" and after.get("UserGroupId") == "fid-sl-users", after)
    check("a DataStorage sent replaces the cache's, the ECPUPerSecond not sent stays",
          after.get("CacheUsageLimits") == {"DataStorage": {"Maximum": 20, "Unit": "GB"},
                                            "ECPUPerSecond": {"Maximum": 5000, "Minimum": 1000}},
          after.get("CacheUsageLimits"))
    using = group_of(ec, "fid-sl-users")["ServerlessCaches"]
    check("the user group's ServerlessCaches names both caches", sorted(using) == ["fid-cache", "fid-rbac"],
          using)
    ec.modify_serverless_cache(ServerlessCacheName="fid-cache", RemoveUserGroup=True)
    after = cache_of(ec, "fid-cache")
    check("RemoveUserGroup takes the user group off", "UserGroupId" not in after, after)
    using = group_of(ec, "fid-sl-users")["ServerlessCaches"]
    check("and the user group's ServerlessCaches follows", using == ["fid-rbac"], using)
    upgraded = ec.modify_serverless_cache(ServerlessCacheName="fid-redis", Engine="valkey",
                                          MajorEngineVersion="8")["ServerlessCache"]
    check("ModifyServerlessCache from redis to valkey 8",
          (upgraded["Engine"], upgraded["MajorEngineVersion"], upgraded["FullEngineVersion"])
          == ("valkey", "8", "8.0"), upgraded)

    gone = ec.delete_serverless_cache(ServerlessCacheName="fid-rbac", FinalSnapshotName="fid-final")
    check("DeleteServerlessCache answers the cache deleting (FinalSnapshotName accepted)",
          gone["ServerlessCache"]["Status"] == "deleting", gone)
    refused("ModifyServerlessCache of a deleting cache", wire, ec.modify_serverless_cache,
            "InvalidServerlessCacheStateFault", 400, ServerlessCacheName="fid-rbac", Description="x")
    refused("DeleteServerlessCache of a deleting cache", wire, ec.delete_serverless_cache,
            "InvalidServerlessCacheStateFault", 400, ServerlessCacheName="fid-rbac")
    using = group_of(ec, "fid-sl-users")["ServerlessCaches"]
    check("a deleting cache still uses its user group", using == ["fid-rbac"], using)
    statuses = {c["ServerlessCacheName"]: c["Status"] for c in ec.describe_serverless_caches()["ServerlessCaches"]}
    check("DescribeServerlessCaches lists it deleting once", statuses.get("fid-rbac") == "deleting", statuses)
    refused("then DescribeServerlessCaches of the deleted cache", wire, ec.describe_serverless_caches,
            "ServerlessCacheNotFoundFault", 404, ServerlessCacheName="fid-rbac")
    refused("DeleteServerlessCache of an unknown cache", wire, ec.delete_serverless_cache,
            "ServerlessCacheNotFoundFault", 404, ServerlessCacheName="fid-rbac")
    using = group_of(ec, "fid-sl-users")["ServerlessCaches"]
    check("once the cache is gone, its user group's ServerlessCaches is empty", using == [], using)
    got = fails(ec.delete_user_group, UserGroupId="fid-sl-users")
    check("and the user group can be deleted", got == ("", 200), got)

    ec.delete_serverless_cache(ServerlessCacheName="fid-cache")
    cache_of(ec, "fid-cache")
    names = [c["ServerlessCacheName"] for c in ec.describe_serverless_caches()["ServerlessCaches"]]
    check("a deleted cache is gone after one DescribeServerlessCaches", "fid-cache" not in names, names)
    refused("a deleted cache's ARN is unknown to ListTagsForResource", wire, ec.list_tags_for_resource,
            "ServerlessCacheNotFoundFault", 404, ResourceName=made["ARN"])
    again = ec.create_serverless_cache(ServerlessCacheName="fid-cache", Engine="valkey")["ServerlessCache"]
    listed = ec.list_tags_for_resource(ResourceName=again["ARN"])["TagList"]
    check("a deleted cache's tags went with it (a new cache of its name has none)", listed == [], listed)

    time.sleep(RBAC_SETTLE_SECONDS + 0.3)
    got = fails(ec.modify_serverless_cache, ServerlessCacheName="fid-fresh", Description="late")
    check("a cache nobody described is available anyway after a while", got == ("", 200), got)

    for cache in ec.describe_serverless_caches()["ServerlessCaches"]:
        ec.delete_serverless_cache(ServerlessCacheName=cache["ServerlessCacheName"])
    for subnet in subnets:
        ec2.delete_subnet(SubnetId=subnet)
    ec2.delete_vpc(VpcId=vpc)


def check_elasticache(endpoint: str) -> None:
    ec = boto3.client("elasticache", endpoint_url=endpoint, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing",
                      config=Config(retries={"max_attempts": 1}))
    tagging = boto3.client("resourcegroupstaggingapi", endpoint_url=endpoint,
                           region_name="us-east-1", aws_access_key_id="testing",
                           aws_secret_access_key="testing", config=Config(retries={"max_attempts": 1}))
    section("ElastiCache member clusters", member_clusters, ec, tagging)
    section("ElastiCache ModifyCacheCluster", modify_cluster, ec)
    wire = Wire(ec)
    section("ElastiCache users", elasticache_users, ec, wire)
    section("ElastiCache user groups", elasticache_user_groups, ec, wire)
    section("ElastiCache replication groups and user groups", elasticache_replication_user_groups,
            ec, wire)
    section("ElastiCache serverless caches", elasticache_serverless, ec, _client("ec2", endpoint), wire)


# --- DynamoDB global tables (fidelity_dynamodb_replicas.py) -------------------------------

DDB_ERROR = "com.amazonaws.dynamodb.v20120810#"
REPLICA_SETTLE_SECONDS = float(os.environ.get("PLINTH_EMULATOR_REPLICA_SETTLE_SECONDS", "2"))
GLOBAL_KEYS = {"AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
               "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}]}
INDEXED_KEYS = {"AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"},
                                         {"AttributeName": "owner", "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}]}
OWNER_INDEX = {"IndexName": "by-owner", "KeySchema": [{"AttributeName": "owner", "KeyType": "HASH"}],
               "Projection": {"ProjectionType": "ALL"}}


def ddb_refused(what: str, wire: Wire, call, code: str, message: str | None = None,
                contains: str | None = None, **kwargs) -> None:
    """`call` fails with `code` (HTTP 400) in DynamoDB's JSON-protocol error document."""
    got = fails(call, **kwargs)
    check(f"{what}: {code} (400)", got == (code, 400), got)
    if got[0] != code:
        return
    try:
        body = json.loads(wire.body)
    except ValueError:
        body = None
    check(f"{what}: AWS's JSON error", isinstance(body, dict)
          and set(body) == {"__type", "message"} and body["__type"] == DDB_ERROR + code, wire.body)
    said = body.get("message", "") if isinstance(body, dict) else ""
    if message is not None:
        check(f"{what}: says {message!r}", said == message, said)
    if contains is not None:
        check(f"{what}: says ...{contains}...", contains in said, said)


def table_of(ddb, name: str) -> dict:
    return ddb.describe_table(TableName=name)["Table"]


def replicas_of(table: dict) -> dict:
    return {r["RegionName"]: r["ReplicaStatus"] for r in table.get("Replicas", [])}


def replicated(ddb, name: str) -> None:
    """Describes the table until it and all its replicas are ACTIVE (as a client waits)."""
    for _ in range(4):
        table = table_of(ddb, name)
        if table["TableStatus"] == "ACTIVE" and set(replicas_of(table).values()) <= {"ACTIVE"}:
            return
    raise AssertionError(f"{name} and its replicas did not become ACTIVE")


def global_table_basics(ddb, west, europe, wire) -> None:
    name = "fidelity-global"
    ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST", **INDEXED_KEYS,
                     GlobalSecondaryIndexes=[OWNER_INDEX],
                     StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
    table = table_of(ddb, name)
    check("a table without replicas has no Replicas and no GlobalTableVersion",
          "Replicas" not in table and "GlobalTableVersion" not in table, table)
    create_west = [{"Create": {"RegionName": "us-west-2"}}]
    only = ("One or more parameter values were invalid: Replica modification must be the only operation "
            "in the request")
    ddb_refused("ReplicaUpdates with ProvisionedThroughput", wire, ddb.update_table, "ValidationException",
                only, TableName=name, ReplicaUpdates=create_west, BillingMode="PROVISIONED",
                ProvisionedThroughput={"ReadCapacityUnits": 1, "WriteCapacityUnits": 1})
    ddb_refused("ReplicaUpdates with GlobalSecondaryIndexUpdates", wire, ddb.update_table,
                "ValidationException", only, TableName=name, ReplicaUpdates=create_west,
                GlobalSecondaryIndexUpdates=[{"Delete": {"IndexName": "by-owner"}}])
    ddb_refused("two replica actions in one UpdateTable", wire, ddb.update_table, "ValidationException",
                "Update table operation with more than one create or delete replica actions not allowed.",
                TableName=name, ReplicaUpdates=create_west + [{"Create": {"RegionName": "eu-west-1"}}])
    ddb_refused("a replica in the table's own region", wire, ddb.update_table, "ValidationException",
                "Cannot add, delete, or update the local region through ReplicaUpdates. Use CreateTable, "
                "DeleteTable, or UpdateTable as required.",
                TableName=name, ReplicaUpdates=[{"Create": {"RegionName": "us-east-1"}}])
    europe.create_table(TableName=name, BillingMode="PAY_PER_REQUEST", **GLOBAL_KEYS)
    ddb_refused("a replica where a table of the name exists", wire, ddb.update_table, "ValidationException",
                f"Failed to create a the new replica of table with name: ‘{name}’ because one or more "
                "replicas already existed as tables.",
                TableName=name, ReplicaUpdates=[{"Create": {"RegionName": "eu-west-1"}}])
    europe.delete_table(TableName=name)
    ddb_refused("Delete of a region that is not a replica", wire, ddb.update_table, "ValidationException",
                "Update global table operation failed because one or more replicas were not part of the "
                "global table. Please retry the request without these replicas: [us-west-2].",
                TableName=name, ReplicaUpdates=[{"Delete": {"RegionName": "us-west-2"}}])
    ddb_refused("a ReplicaUpdates Update (not implemented)", wire, ddb.update_table, "ValidationException",
                contains="not implemented", TableName=name,
                ReplicaUpdates=[{"Update": {"RegionName": "us-west-2", "TableClassOverride": "STANDARD"}}])

    infrequent = {"TableClass": "STANDARD_INFREQUENT_ACCESS"}
    answer = ddb.update_table(TableName=name, ReplicaUpdates=[{"Create": {
        "RegionName": "us-west-2", "TableClassOverride": infrequent["TableClass"]}}])["TableDescription"]
    check("Create: the answer is UPDATING, GlobalTableVersion 2019.11.21",
          answer["TableStatus"] == "UPDATING" and answer.get("GlobalTableVersion") == "2019.11.21", answer)
    check("Create: the answer's Replicas is the new replica CREATING (the table's own region not listed)",
          answer.get("Replicas") == [{"RegionName": "us-west-2", "ReplicaStatus": "CREATING",
                                      "ReplicaTableClassSummary": infrequent}],
          answer.get("Replicas"))
    ddb_refused("another replica action while one is under way", wire, ddb.update_table,
                "ResourceInUseException",
                f"Attempt to change a resource which is still in use: Table: {name} is in the process of "
                "being updated.",
                TableName=name, ReplicaUpdates=[{"Create": {"RegionName": "eu-west-1"}}])
    ddb_refused("another UpdateTable while a replica is being created", wire, ddb.update_table,
                "ResourceInUseException", TableName=name, DeletionProtectionEnabled=True)
    code, _ = fails(ddb.delete_table, TableName=name)
    check("DeleteTable while UPDATING is ResourceInUseException", code == "ResourceInUseException", code)
    seen = [table_of(ddb, name) for _ in range(2)]
    statuses = [(t["TableStatus"], replicas_of(t)) for t in seen]
    check("the next DescribeTable still says UPDATING / CREATING, the one after ACTIVE / ACTIVE",
          statuses == [("UPDATING", {"us-west-2": "CREATING"}), ("ACTIVE", {"us-west-2": "ACTIVE"})],
          statuses)

    replica = table_of(west, name)
    source = table_of(ddb, name)
    check("the replica in us-west-2 is ACTIVE with the table's key schema and attributes",
          replica["TableStatus"] == "ACTIVE" and replica["KeySchema"] == source["KeySchema"]
          and replica["AttributeDefinitions"] == source["AttributeDefinitions"], replica)
    check("the replica has the table's global indexes and billing mode",
          [i["IndexName"] for i in replica.get("GlobalSecondaryIndexes", [])] == ["by-owner"]
          and replica["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST", replica)
    check("the replica has a NEW_AND_OLD_IMAGES stream",
          replica.get("StreamSpecification") == {"StreamEnabled": True,
                                                 "StreamViewType": "NEW_AND_OLD_IMAGES"},
          replica.get("StreamSpecification"))
    check("the replica lists the source region among its Replicas, GlobalTableVersion 2019.11.21",
          replica.get("Replicas") == [{"RegionName": "us-east-1", "ReplicaStatus": "ACTIVE"}]
          and replica.get("GlobalTableVersion") == "2019.11.21", replica.get("Replicas"))
    check("the replica's TableClassSummary is the override",
          replica.get("TableClassSummary") == infrequent,
          replica.get("TableClassSummary"))
    check("the replica's ARN is arn:aws:dynamodb:us-west-2:ACCOUNT:table/NAME",
          replica["TableArn"] == f"arn:aws:dynamodb:us-west-2:123456789012:table/{name}",
          replica["TableArn"])
    west.tag_resource(ResourceArn=replica["TableArn"], Tags=[{"Key": "plinth:stack", "Value": "global"}])
    tags = west.list_tags_of_resource(ResourceArn=replica["TableArn"])["Tags"]
    check("TagResource and ListTagsOfResource on the replica's ARN work in its region",
          tags == [{"Key": "plinth:stack", "Value": "global"}], tags)
    west.untag_resource(ResourceArn=replica["TableArn"], TagKeys=["plinth:stack"])
    tags = west.list_tags_of_resource(ResourceArn=replica["TableArn"])["Tags"]
    check("UntagResource on the replica's ARN works in its region", tags == [], tags)

    ddb.put_item(TableName=name, Item={"pk": {"S": "a"}, "owner": {"S": "ann"}})
    got = west.get_item(TableName=name, Key={"pk": {"S": "a"}}).get("Item")
    check("items: a PutItem in one region reaches the replica",
          got == {"pk": {"S": "a"}, "owner": {"S": "ann"}}, got)
    west.update_item(TableName=name, Key={"pk": {"S": "a"}}, UpdateExpression="SET #o = :o",
                     ExpressionAttributeNames={"#o": "owner"},
                     ExpressionAttributeValues={":o": {"S": "bob"}})
    got = ddb.get_item(TableName=name, Key={"pk": {"S": "a"}}).get("Item")
    check("items: an UpdateItem through the replica reaches the table",
          (got or {}).get("owner") == {"S": "bob"}, got)
    west.delete_item(TableName=name, Key={"pk": {"S": "a"}})
    got = ddb.get_item(TableName=name, Key={"pk": {"S": "a"}}).get("Item")
    check("items: a DeleteItem through the replica reaches the table", got is None, got)

    ddb_refused("disabling a replicated table's stream", wire, ddb.update_table, "ValidationException",
                "One or more parameter values were invalid: Disabling Stream is not allowed for a Global "
                "Table replica.", TableName=name, StreamSpecification={"StreamEnabled": False})

    ddb.update_table(TableName=name, ReplicaUpdates=[{"Create": {"RegionName": "eu-west-1"}}])
    replicated(ddb, name)
    views = {region: replicas_of(table_of(client, name))
             for region, client in (("us-east-1", ddb), ("us-west-2", west), ("eu-west-1", europe))}
    check("three regions: each lists the two others", views == {
        "us-east-1": {"us-west-2": "ACTIVE", "eu-west-1": "ACTIVE"},
        "us-west-2": {"us-east-1": "ACTIVE", "eu-west-1": "ACTIVE"},
        "eu-west-1": {"us-east-1": "ACTIVE", "us-west-2": "ACTIVE"}}, views)

    ddb.delete_table(TableName=name)
    code, _ = fails(ddb.describe_table, TableName=name)
    check("DeleteTable of a table with replicas deletes that region's table",
          code == "ResourceNotFoundException", code)
    views = {region: replicas_of(table_of(client, name))
             for region, client in (("us-west-2", west), ("eu-west-1", europe))}
    check("the other replicas stay, each listing only the remaining one",
          views == {"us-west-2": {"eu-west-1": "ACTIVE"}, "eu-west-1": {"us-west-2": "ACTIVE"}}, views)

    answer = west.update_table(TableName=name, ReplicaUpdates=[{"Delete": {"RegionName": "eu-west-1"}}])[
        "TableDescription"]
    check("Delete: the answer is UPDATING with the replica DELETING",
          (answer["TableStatus"], replicas_of(answer)) == ("UPDATING", {"eu-west-1": "DELETING"}),
          (answer["TableStatus"], answer.get("Replicas")))
    seen = [table_of(west, name) for _ in range(2)]
    statuses = [(t["TableStatus"], t.get("Replicas"), t.get("GlobalTableVersion")) for t in seen]
    check("Delete: DELETING for one DescribeTable, then gone (no Replicas, no GlobalTableVersion)",
          statuses == [("UPDATING", [{"RegionName": "eu-west-1", "ReplicaStatus": "DELETING"}],
                        "2019.11.21"), ("ACTIVE", None, None)], statuses)
    code, _ = fails(europe.describe_table, TableName=name)
    check("Delete: the replica's table is gone from its region", code == "ResourceNotFoundException", code)
    west.delete_table(TableName=name)


def global_table_streams(ddb, europe, wire) -> None:
    name = "fidelity-global-streams"
    ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST", **GLOBAL_KEYS)
    answer = ddb.update_table(TableName=name, ReplicaUpdates=[{"Create": {"RegionName": "eu-west-1"}}])
    stream = answer["TableDescription"].get("StreamSpecification")
    check("Create on a table without a stream enables a NEW_AND_OLD_IMAGES stream",
          stream == {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}, stream)
    time.sleep(REPLICA_SETTLE_SECONDS + 0.5)
    table = table_of(ddb, name)
    check("once PLINTH_EMULATOR_REPLICA_SETTLE_SECONDS have passed the first DescribeTable says ACTIVE",
          (table["TableStatus"], replicas_of(table)) == ("ACTIVE", {"eu-west-1": "ACTIVE"}),
          (table["TableStatus"], table.get("Replicas")))
    ddb.update_table(TableName=name, ReplicaUpdates=[{"Delete": {"RegionName": "eu-west-1"}}])
    time.sleep(REPLICA_SETTLE_SECONDS + 0.5)
    code, _ = fails(europe.describe_table, TableName=name)
    check("and a deleted replica is gone from its region after them",
          code == "ResourceNotFoundException", code)
    ddb.delete_table(TableName=name)

    name = "fidelity-global-keys-only"
    ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST", **GLOBAL_KEYS,
                     StreamSpecification={"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"})
    ddb_refused("Create on a table streaming KEYS_ONLY", wire, ddb.update_table, "ValidationException",
                contains="NEW_AND_OLD_IMAGES", TableName=name,
                ReplicaUpdates=[{"Create": {"RegionName": "eu-west-1"}}])
    ddb.delete_table(TableName=name)


def global_table_capacity(ddb, west, scaling, wire) -> None:
    name = "fidelity-global-provisioned"
    ddb.create_table(TableName=name, BillingMode="PROVISIONED", **INDEXED_KEYS,
                     ProvisionedThroughput={"ReadCapacityUnits": 5, "WriteCapacityUnits": 4},
                     GlobalSecondaryIndexes=[{**OWNER_INDEX, "ProvisionedThroughput": {
                         "ReadCapacityUnits": 3, "WriteCapacityUnits": 2}}],
                     StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
    create = {"TableName": name, "ReplicaUpdates": [{"Create": {
        "RegionName": "us-west-2", "ProvisionedThroughputOverride": {"ReadCapacityUnits": 7}}}]}
    table_message = "Table write capacity should either be Pay-Per-Request or AutoScaled."
    ddb_refused("a PROVISIONED table whose write capacity is not auto scaled", wire, ddb.update_table,
                "ValidationException", table_message, **create)

    def scale(resource: str, dimension: str, policy: bool = True) -> None:
        scaling.register_scalable_target(ServiceNamespace="dynamodb", ResourceId=resource,
                                         ScalableDimension=dimension, MinCapacity=1, MaxCapacity=10)
        if policy:
            scaling.put_scaling_policy(
                PolicyName=f"{dimension}-policy", ServiceNamespace="dynamodb", ResourceId=resource,
                ScalableDimension=dimension, PolicyType="TargetTrackingScaling",
                TargetTrackingScalingPolicyConfiguration={
                    "TargetValue": 70.0, "PredefinedMetricSpecification": {
                        "PredefinedMetricType": "DynamoDBWriteCapacityUtilization"}})

    scale(f"table/{name}", "dynamodb:table:WriteCapacityUnits", policy=False)
    ddb_refused("a scalable target without a scaling policy", wire, ddb.update_table,
                "ValidationException", table_message, **create)
    scale(f"table/{name}", "dynamodb:table:WriteCapacityUnits")
    ddb_refused("a global index whose write capacity is not auto scaled", wire, ddb.update_table,
                "ValidationException", "GSI write capacity should either be Pay-Per-Request or AutoScaled.",
                **create)
    scale(f"table/{name}/index/by-owner", "dynamodb:index:WriteCapacityUnits")
    answer = ddb.update_table(**create)["TableDescription"]
    check("with the table's and its indexes' write capacity auto scaled, Create is accepted",
          answer.get("Replicas") == [{"RegionName": "us-west-2", "ReplicaStatus": "CREATING",
                                      "ProvisionedThroughputOverride": {"ReadCapacityUnits": 7}}],
          answer.get("Replicas"))
    replicated(ddb, name)
    replica = table_of(west, name)
    capacity = {k: replica["ProvisionedThroughput"][k] for k in ("ReadCapacityUnits", "WriteCapacityUnits")}
    index = replica["GlobalSecondaryIndexes"][0]["ProvisionedThroughput"]
    check("the replica is PROVISIONED with the table's write capacity and the read override",
          replica["BillingModeSummary"]["BillingMode"] == "PROVISIONED"
          and capacity == {"ReadCapacityUnits": 7, "WriteCapacityUnits": 4}
          and (index["ReadCapacityUnits"], index["WriteCapacityUnits"]) == (3, 2), replica)
    ddb.update_table(TableName=name, ReplicaUpdates=[{"Delete": {"RegionName": "us-west-2"}}])
    replicated(ddb, name)
    ddb.delete_table(TableName=name)


def global_table_keys(ddb, west, kms, west_kms, wire) -> None:
    name = "fidelity-global-cmk"
    key = kms.create_key(Description="fidelity-global")["KeyMetadata"]
    ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST", **GLOBAL_KEYS,
                     StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
                     SSESpecification={"Enabled": True, "SSEType": "KMS", "KMSMasterKeyId": key["Arn"]})
    ddb_refused("a table with a customer managed key and no KMSMasterKeyId for the replica", wire,
                ddb.update_table, "ValidationException",
                "One or more parameter values were invalid: KMSMasterKeyId must be specified for each "
                "replica.",
                TableName=name, ReplicaUpdates=[{"Create": {"RegionName": "us-west-2"}}])
    west_key = west_kms.create_key(Description="fidelity-global-west")["KeyMetadata"]
    answer = ddb.update_table(TableName=name, ReplicaUpdates=[{"Create": {
        "RegionName": "us-west-2", "KMSMasterKeyId": west_key["KeyId"]}}])["TableDescription"]
    check("the replica's KMSMasterKeyId is reported, as the key's ARN",
          answer.get("Replicas") == [{"RegionName": "us-west-2", "ReplicaStatus": "CREATING",
                                      "KMSMasterKeyId": west_key["Arn"]}], answer.get("Replicas"))
    status = table_of(west, name)["TableStatus"]
    check("the new replica's own table (in its region) is CREATING meanwhile", status == "CREATING", status)
    replicated(ddb, name)
    sse = table_of(west, name).get("SSEDescription", {})
    check("the replica is encrypted with that key", sse.get("KMSMasterKeyArn") == west_key["Arn"], sse)
    ddb.update_table(TableName=name, ReplicaUpdates=[{"Delete": {"RegionName": "us-west-2"}}])
    replicated(ddb, name)
    ddb.delete_table(TableName=name)


def check_dynamodb_replicas(endpoint: str) -> None:
    ddb = _client("dynamodb", endpoint)
    west = _regional("dynamodb", endpoint, "us-west-2")
    europe = _regional("dynamodb", endpoint, "eu-west-1")
    wire = Wire(ddb)
    section("DynamoDB global tables", global_table_basics, ddb, west, europe, wire)
    section("DynamoDB global tables: streams and settling by time", global_table_streams, ddb, europe, wire)
    section("DynamoDB global tables: provisioned capacity", global_table_capacity, ddb, west,
            _client("application-autoscaling", endpoint), wire)
    section("DynamoDB global tables: KMS keys", global_table_keys, ddb, west, _client("kms", endpoint),
            _regional("kms", endpoint, "us-west-2"), wire)


def tags_by_arn(ddb, tagging) -> None:
    arns = []
    for i in range(3):
        name = f"fidelity-tags-{i}"
        arn = ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                               AttributeDefinitions=[{"AttributeName": "Id", "AttributeType": "S"}],
                               KeySchema=[{"AttributeName": "Id", "KeyType": "HASH"}],
                               Tags=[{"Key": "n", "Value": str(i)}])["TableDescription"]["TableArn"]
        arns.append(arn)
    missing = arns[0].replace("fidelity-tags-0", "fidelity-tags-none")
    out = tagging.get_resources(ResourceARNList=[arns[0], arns[2], missing])
    got = {m["ResourceARN"]: m["Tags"] for m in out["ResourceTagMappingList"]}
    check("GetResources answers exactly the ARNs asked for that exist",
          got == {arns[0]: [{"Key": "n", "Value": "0"}], arns[2]: [{"Key": "n", "Value": "2"}]}, got)
    check("on one page", not out.get("PaginationToken"), out.get("PaginationToken"))
    code, _ = fails(tagging.get_resources, ResourceARNList=[arns[0]], ResourcesPerPage=10)
    check("ResourceARNList with a pagination parameter is refused", code == "InvalidParameterException", code)
    code, _ = fails(tagging.get_resources, ResourceARNList=[arns[0]] * 101)
    check("more than 100 ARNs are refused", code == "InvalidParameterException", code)
    for i in range(3):
        ddb.delete_table(TableName=f"fidelity-tags-{i}")


def check_tagging(endpoint: str) -> None:
    section("Tagging API: GetResources by ARN", tags_by_arn, _client("dynamodb", endpoint),
            _client("resourcegroupstaggingapi", endpoint))


# --- fault injection ---------------------------------------------------------------------

def _client(name: str, endpoint: str):
    return _regional(name, endpoint, "us-east-1")


def _regional(name: str, endpoint: str, region: str):
    return boto3.client(name, endpoint_url=endpoint, region_name=region,
                        aws_access_key_id="testing", aws_secret_access_key="testing",
                        config=Config(retries={"total_max_attempts": 1},
                                      s3={"addressing_style": "path"}))


# One cheap call per service plinth calls, and what the service answers when throttled and
# when failing: (error code, HTTP status) as botocore reads them from the wire.
FAULTED_CALLS = [
    ("dynamodb", lambda c: c.list_tables(), ("ThrottlingException", 400), ("InternalServerError", 500)),
    ("dynamodb", lambda c: c.get_item(TableName="t", Key={"k": {"S": "v"}}),
     ("ThrottlingException", 400), ("InternalServerError", 500)),
    ("ec2", lambda c: c.describe_security_groups(), ("RequestLimitExceeded", 503), ("InternalError", 500)),
    ("elasticache", lambda c: c.describe_cache_clusters(), ("Throttling", 400), ("InternalFailure", 500)),
    ("iam", lambda c: c.list_roles(), ("Throttling", 400), ("ServiceFailure", 500)),
    ("sts", lambda c: c.get_caller_identity(), ("Throttling", 400), ("InternalFailure", 500)),
    ("s3", lambda c: c.list_buckets(), ("SlowDown", 503), ("InternalError", 500)),
    ("lambda", lambda c: c.list_functions(), ("TooManyRequestsException", 429), ("ServiceException", 500)),
    ("cloudfront", lambda c: c.list_distributions(), ("Throttling", 400), ("ServiceUnavailable", 503)),
    ("acm", lambda c: c.list_certificates(), ("ThrottlingException", 400), ("InternalFailure", 500)),
    ("resourcegroupstaggingapi", lambda c: c.get_resources(), ("ThrottledException", 400),
     ("InternalServiceException", 500)),
    ("ssm", lambda c: c.get_parameter(Name="/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"),
     ("ThrottlingException", 400), ("InternalServerError", 500)),
    ("route53", lambda c: c.list_hosted_zones(), ("Throttling", 400), ("InternalFailure", 500)),
    ("kms", lambda c: c.list_keys(), ("ThrottlingException", 400), ("KMSInternalException", 500)),
    ("logs", lambda c: c.describe_log_groups(), ("ThrottlingException", 400),
     ("ServiceUnavailableException", 500)),
    ("application-autoscaling", lambda c: c.describe_scalable_targets(ServiceNamespace="dynamodb"),
     ("ThrottlingException", 400), ("InternalServiceException", 500)),
]


def faulted_answers(kind: str, index: int) -> None:
    server, endpoint = start_server("--faults", f"{kind}=1")
    try:
        for name, call, *expected in FAULTED_CALLS:
            got = fails(call, _client(name, endpoint))
            check(f"{kind}: {name} answers {expected[index]}", got == expected[index], got)
    finally:
        stop(server)


def lost_answers() -> None:
    server, endpoint, clean = start_server_with_clean_port("--faults", "lost=1", "--seed", "3")
    try:
        ddb = _client("dynamodb", endpoint)
        try:
            ddb.create_table(TableName="lost", BillingMode="PAY_PER_REQUEST",
                             KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
                             AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}])
            answered = "answered"
        except Exception as err:  # noqa: BLE001 - its kind is the check
            answered = type(err).__name__
        check("lost: the client gets no answer (the connection closes)",
              answered in ("ConnectionClosedError", "EndpointConnectionError", "ProtocolError",
                           "ReadTimeoutError"), answered)
        tables = _client("dynamodb", clean).list_tables()["TableNames"]
        check("lost: yet the request was carried out", tables == ["lost"], tables)
    finally:
        stop(server)


def seeded_faults() -> None:
    """The same seed picks the same faults for the same requests."""
    picks = []
    for _ in range(2):
        server, endpoint = start_server("--faults", "throttle=0.5", "--seed", "11")
        try:
            sts = _client("sts", endpoint)
            picks.append([fails(sts.get_caller_identity)[0] for _ in range(12)])
        finally:
            stop(server)
    check("a seed replays: the same faults for the same requests", picks[0] == picks[1], picks)
    check("a seed mixes faults and answers", {"", "Throttling"} <= set(picks[0]), picks[0])


def check_faults() -> None:
    section("fault injection: throttling", faulted_answers, "throttle", 0)
    section("fault injection: 5xx", faulted_answers, "error", 1)
    section("fault injection: lost answers", lost_answers)
    section("fault injection: seeds", seeded_faults)


def main() -> int:
    server, endpoint = start_server()
    try:
        check_cloudfront(endpoint)
        check_s3(endpoint)
        check_elasticache(endpoint)
        check_ec2(endpoint)
        check_dns(endpoint)
        check_encryption(endpoint)
        check_dynamodb_replicas(endpoint)
        check_tagging(endpoint)
    finally:
        stop(server)
    check_faults()
    if failures:
        print(f"{len(failures)} fidelity check(s) failed")
        return 1
    print("all fidelity checks hold")
    return 0


if __name__ == "__main__":
    sys.exit(main())
