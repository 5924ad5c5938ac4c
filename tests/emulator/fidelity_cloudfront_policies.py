"""CloudFront origin request policies and response headers policies: moto 5.2.1 has none
of either API, so this adds both as CloudFront documents them, like the cache policies in
fidelity_cloudfront.py. Imported by fidelity.py.

What CloudFront does, and this does, for each kind:
- Create, Get, GetConfig, Update, Delete and List (`Type=custom|managed`); the config is
  kept exactly as sent. Names are unique in the account (…AlreadyExists).
- Update and Delete take the policy's ETag as If-Match (InvalidIfMatchVersion without,
  PreconditionFailed when stale); each change makes a new ETag.
- A policy a distribution's behavior uses cannot be deleted (…InUse); one that does not
  exist is NoSuch….
"""

import re
import uuid
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape

from moto.cloudfront import responses, urls
from moto.core.exceptions import ServiceException

import fidelity_cloudfront as cf


def _error(code: str, message: str):
    return type(code, (ServiceException,), {"code": code, "message": message})


class Kind:
    """One policy API: its element names, path, required config children, errors and the
    behaviour attribute that refers to a policy of the kind."""

    def __init__(self, element: str, path: str, list_name: str, required: tuple, attribute: str):
        self.element, self.path, self.list_name = element, path, list_name
        self.root = f"{element}Config"
        self.required, self.attribute = required, attribute
        self.no_such = _error(f"NoSuch{element}", f"The {self.words} does not exist.")
        self.exists = _error(f"{element}AlreadyExists",
                             f"A {self.words} with this name already exists. You must provide a unique name.")
        self.in_use = _error(f"{element}InUse",
                             f"Cannot delete the {self.words} because it is attached to one or more cache behaviors.")

    @property
    def words(self) -> str:
        return re.sub(r"(?<!^)([A-Z])", r" \1", self.element).lower()

    def store(self, backend) -> dict:
        key = f"plinth_{self.path.replace('-', '_')}s"
        if not hasattr(backend, key):
            setattr(backend, key, {})
        return getattr(backend, key)

    def config_xml(self, body) -> tuple[str, str]:
        text = body.decode("utf-8") if isinstance(body, bytes) else (body or "")
        text = re.sub(r"^\s*<\?xml[^>]*\?>", "", text).strip()
        try:
            root = ET.fromstring(text)
        except ET.ParseError as err:
            raise cf.InvalidArgument(f"The XML you provided was not well-formed: {err}") from None
        if root.tag.rsplit("}", 1)[-1] != self.root:
            raise cf.InvalidArgument(f"The request body must be a {self.root}.")
        children = {child.tag.rsplit("}", 1)[-1]: child for child in root}
        for required in self.required:
            if required not in children:
                raise cf.InvalidArgument(f"{self.root}.{required} is required.")
        if self.element == "OriginRequestPolicy":
            names = [n.text or "" for n in root.iter() if n.tag.rsplit("}", 1)[-1] == "Name"
                     and n is not children["Name"]]
            if any(n.lower() == "authorization" for n in names):
                raise cf.InvalidArgument("The parameter Headers contains Authorization that is not allowed.")
        return text, (children["Name"].text or "").strip()

    def with_namespace(self, element: str) -> str:
        start = re.match(rf"<{self.root}\b[^>]*>", element)
        if start and "xmlns=" not in start.group(0):
            element = element.replace(f"<{self.root}", f'<{self.root} xmlns="{cf.NAMESPACE}"', 1)
        return element

    def policy_xml(self, policy: dict) -> str:
        return (f"<{self.element}><Id>{policy['id']}</Id><LastModifiedTime>"
                f"{cf._time(policy['modified'])}</LastModifiedTime>{policy['config']}</{self.element}>")

    def handlers(self) -> dict:
        kind = self

        def policy(handler) -> dict:
            found = kind.store(handler.backend).get(handler._get_param("Id"))
            if found is None:
                raise kind.no_such()
            return found

        def name_taken(handler, name: str, except_id=None) -> None:
            for p in kind.store(handler.backend).values():
                if p["name"] == name and p["id"] != except_id:
                    raise kind.exists()

        def create(handler):
            config, name = kind.config_xml(handler.body)
            name_taken(handler, name)
            made = {"id": str(uuid.uuid4()), "name": name, "config": config, "modified": cf._now(),
                    "etag": cf._new_etag()}
            kind.store(handler.backend)[made["id"]] = made
            return cf._answer(201, cf._document(cf._rooted(kind.policy_xml(made))), ETag=made["etag"],
                              Location=f"{cf.API}/{kind.path}/{made['id']}")

        def get(handler):
            p = policy(handler)
            return cf._answer(200, cf._document(cf._rooted(kind.policy_xml(p))), ETag=p["etag"])

        def get_config(handler):
            p = policy(handler)
            return cf._answer(200, cf._document(kind.with_namespace(p["config"])), ETag=p["etag"])

        def update(handler):
            p = policy(handler)
            cf._check_if_match(handler._get_param("IfMatch"), p["etag"])
            config, name = kind.config_xml(handler.body)
            name_taken(handler, name, except_id=p["id"])
            p.update(config=config, name=name, modified=cf._now(), etag=cf._new_etag())
            return cf._answer(200, cf._document(cf._rooted(kind.policy_xml(p))), ETag=p["etag"])

        def delete(handler):
            p = policy(handler)
            cf._check_if_match(handler._get_param("IfMatch"), p["etag"])

            def uses(config) -> bool:
                behaviours = [config.DefaultCacheBehavior] + list(config.CacheBehaviors.get("Items") or [])
                return any(getattr(b, kind.attribute, None) == p["id"] for b in behaviours)

            if cf._users(handler.backend, uses):
                raise kind.in_use()
            del kind.store(handler.backend)[p["id"]]
            return 204, {"status": 204}, ""

        def listing(handler):
            policies = ([] if handler._get_param("Type") == "managed"
                        else list(kind.store(handler.backend).values()))
            max_items = int(handler._get_param("MaxItems") or 100)
            marker = handler._get_param("Marker")
            if marker:
                ids = [p["id"] for p in policies]
                policies = policies[ids.index(marker):] if marker in ids else []
            page, rest = policies[:max_items], policies[max_items:]
            items = "".join(f"<{kind.element}Summary><Type>custom</Type>{kind.policy_xml(p)}"
                            f"</{kind.element}Summary>" for p in page)
            body = (f'<{kind.list_name} xmlns="{cf.NAMESPACE}">'
                    + (f"<NextMarker>{escape(rest[0]['id'])}</NextMarker>" if rest else "")
                    + f"<MaxItems>{max_items}</MaxItems><Quantity>{len(page)}</Quantity>"
                    + (f"<Items>{items}</Items>" if page else "")
                    + f"</{kind.list_name}>")
            return cf._answer(200, cf._document(body))

        return {"create": create, "get": get, "get_config": get_config, "update": update,
                "delete": delete, "list": listing}

    def register(self, snake: str, plural: str) -> None:
        h = self.handlers()
        for operation, fn in {
            f"create_{snake}": h["create"], f"get_{snake}": h["get"],
            f"get_{snake}_config": h["get_config"], f"update_{snake}": h["update"],
            f"delete_{snake}": h["delete"], f"list_{plural}": h["list"],
        }.items():
            setattr(responses.CloudFrontResponse, operation, fn)
        urls.url_paths.update({
            f"{{0}}/2020-05-31/{self.path}$": responses.CloudFrontResponse.dispatch,
            f"{{0}}/2020-05-31/{self.path}/(?P<id>[^/]+)$": responses.CloudFrontResponse.dispatch,
            f"{{0}}/2020-05-31/{self.path}/(?P<id>[^/]+)/config$": responses.CloudFrontResponse.dispatch,
        })


ORIGIN_REQUEST = Kind("OriginRequestPolicy", "origin-request-policy", "OriginRequestPolicyList",
                      ("Name", "HeadersConfig", "CookiesConfig", "QueryStringsConfig"),
                      "origin_request_policy_id")
RESPONSE_HEADERS = Kind("ResponseHeadersPolicy", "response-headers-policy", "ResponseHeadersPolicyList",
                        ("Name",), "response_headers_policy_id")
ORIGIN_REQUEST.register("origin_request_policy", "origin_request_policies")
RESPONSE_HEADERS.register("response_headers_policy", "response_headers_policies")

# The ids of AWS-managed policies: the same in every account, usable without being created.
MANAGED = {
    ORIGIN_REQUEST.element: {
        "216adef6-5c7f-47e4-b989-5492eafa07d3", "33f36d7e-f396-46d9-90e0-52428a34d9dc",
        "b689b0a8-53d0-40ab-baf2-68738e2966ac", "59781a5b-3903-41f3-afcb-af62929ccde1",
        "88a5eaf4-2fd4-4709-b370-b4c650ea3fcf", "775133bc-15f2-49f9-abea-afb2e0bf67d2",
        "acba4595-bd28-49b8-b9fe-13317c0390fa"},
    RESPONSE_HEADERS.element: {
        "e61eb60c-9c35-4d20-a928-2b84e02af89c", "5cc3b908-e619-4b99-88e5-2cf7f45965bd",
        "eaab4381-ed33-4a86-88ca-d9558dc6cd63", "67f7725c-6f97-4210-82d7-5512b31e9d03",
        "60669652-455b-4ae9-85a4-c4c02393f86c"},
}


# A distribution names only policies that exist (NoSuchOriginRequestPolicy,
# NoSuchResponseHeadersPolicy otherwise).
def _check_policy_refs(backend, config: dict) -> None:
    behaviours = [(config or {}).get("DefaultCacheBehavior") or {}]
    behaviours += ((config or {}).get("CacheBehaviors") or {}).get("Items") or []
    for kind, key in ((ORIGIN_REQUEST, "OriginRequestPolicyId"),
                      (RESPONSE_HEADERS, "ResponseHeadersPolicyId")):
        for b in behaviours:
            policy_id = b.get(key)
            if policy_id and policy_id not in MANAGED[kind.element] and policy_id not in kind.store(backend):
                raise kind.no_such()


_original_check_references = cf._check_references


def _check_references(backend, config: dict) -> None:
    _original_check_references(backend, config)
    _check_policy_refs(backend, config)


cf._check_references = _check_references
