"""ElastiCache Serverless corrections: moto 5.2.1 has no serverless caches at all (every
*ServerlessCache* action answers HTTP 500 "not implemented"), so plinth's end-to-end checks
of serverless caches could not be honest. Here they are as AWS ElastiCache does them
(API reference 2015-02-02, query protocol; the shapes are botocore's). Imported by
fidelity.py; each correction says what moto does and what AWS does.

Statuses move on as in fidelity_elasticache_users.py, with the same clock
(PLINTH_EMULATOR_RBAC_SETTLE_SECONDS, default 2): a cache answered `creating` (`modifying`,
`deleting`) is reported so by as many DescribeServerlessCaches answers as each correction
says and keeps that status for every other call until then; the next finds it `available`
(or gone), and so does any call once the seconds have passed.

1. CreateServerlessCache (ServerlessCacheName, Description, Engine, MajorEngineVersion,
   CacheUsageLimits, KmsKeyId, SecurityGroupIds, SubnetIds, SnapshotRetentionLimit,
   DailySnapshotTime, UserGroupId, NetworkType, Tags): moto has none. AWS answers the
   ServerlessCache `creating`, the first DescribeServerlessCaches that reports it too, later
   ones `available`. AWS stores the name in lowercase (so it is here, and every other call
   finds the cache by its name in any case); the name must then be 1 to 40 characters,
   begin with a letter, have only letters, digits and hyphens, no two hyphens in a row and
   not end with one, or it is InvalidParameterValue (400). The cache keeps ServerlessCacheName,
   Description ("" when none is given; at most 255 characters), CreateTime, Status, Engine
   (redis, valkey or memcached; another is InvalidParameterValue), MajorEngineVersion
   (valkey 7 or 8, default 8; redis 7; memcached 1.6; another is InvalidParameterValue) and
   its FullEngineVersion (valkey 8.0 or 7.2, redis 7.1, memcached 1.6.22), CacheUsageLimits
   as sent (none when none are sent), KmsKeyId when given, SecurityGroupIds (when none are
   given, the default security group of the VPC of the subnets, or of the default VPC),
   SubnetIds (when none are given, 3 of the default VPC's default subnets in different
   Availability Zones, 2 in us-west-1), Endpoint {Address
   NAME-XXXXXX.serverless.REGION-SHORT.cache.amazonaws.com (six random characters, region
   short as use1 for us-east-1), Port 6379, memcached 11211}, ReaderEndpoint (the same
   address, Port 6380, memcached 11212), ARN arn:aws:elasticache:REGION:ACCOUNT:
   serverlesscache:NAME, UserGroupId when given, SnapshotRetentionLimit (default 0; a negative
   one is InvalidParameterValue) and DailySnapshotTime (HH:MM in UTC, default 04:00; another
   form is InvalidParameterValue) (neither for memcached unless given), and NetworkType when
   given. A taken name is ServerlessCacheAlreadyExistsFault (400).
2. CacheUsageLimits: AWS refuses (InvalidParameterValue, 400) a DataStorage whose Unit is not
   GB or whose Maximum or Minimum is outside 1-5000 GB, an ECPUPerSecond whose Maximum or
   Minimum is outside 1000-15000000, and a Minimum above its Maximum; the same at
   ModifyServerlessCache.
3. A user group (UserGroupId): AWS refuses one for memcached (InvalidParameterCombination,
   400), an unknown one (UserGroupNotFound, 404) and one that is not `active`
   (InvalidUserGroupState, 400). The user group's ServerlessCaches (in
   fidelity_elasticache_users.py) names the cache until the cache is gone, and the group
   cannot be deleted until then (InvalidUserGroupState).
4. DescribeServerlessCaches (ServerlessCacheName, MaxResults, NextToken): moto has none.
   AWS answers every cache, in the order they were made, in pages of MaxResults (default 50)
   with a NextToken while there are more, or one cache by its name; an unknown name is
   ServerlessCacheNotFoundFault (404), a NextToken it did not give InvalidParameterValue (400).
5. ModifyServerlessCache (ServerlessCacheName, Description, CacheUsageLimits, RemoveUserGroup,
   UserGroupId, SecurityGroupIds, SnapshotRetentionLimit, DailySnapshotTime, Engine,
   MajorEngineVersion): moto has none. AWS answers the cache `modifying` with the changes,
   and the next DescribeServerlessCaches finds it `available`. A DataStorage or ECPUPerSecond
   sent replaces the cache's own, one not sent stays. An unknown cache is
   ServerlessCacheNotFoundFault (404), one that is not `available`
   InvalidServerlessCacheStateFault (400), RemoveUserGroup together with UserGroupId
   InvalidParameterCombination (400); a user group is checked as at creation (3). Engine may
   only go from redis to valkey (MajorEngineVersion then defaults to valkey's 8); another
   engine change, or a MajorEngineVersion below the cache's, is InvalidParameterCombination
   (400), a MajorEngineVersion the engine does not have InvalidParameterValue (400).
6. DeleteServerlessCache (ServerlessCacheName, FinalSnapshotName): moto has none. AWS answers
   the cache `deleting`, the next DescribeServerlessCaches lists it `deleting`, then it is
   gone (ServerlessCacheNotFoundFault) with its tags. One that is not `available` is
   InvalidServerlessCacheStateFault (400). FinalSnapshotName is accepted and ignored: this
   emulator keeps no serverless snapshots.
7. Tags: the tags given at creation are read by ListTagsForResource from the cache's ARN
   (fidelity.py's ARN pattern (3) takes `serverlesscache`), AddTagsToResource and
   RemoveTagsFromResource change them. For the ARN of a serverless cache that does not exist
   (or is gone) the three answer ServerlessCacheNotFoundFault (404), as AWS does; moto would
   answer any ARN.

Not implemented: SnapshotArnsToRestore (there are no serverless snapshots) is answered
InvalidParameterValue saying so, so that nothing is pretended to be restored.
"""

import base64
import datetime
import random
import re
import string

from moto.core.exceptions import ServiceException
from moto.core.responses import ActionResult
from moto.elasticache import responses
from moto.elasticache.exceptions import (
    InvalidParameterCombinationException,
    InvalidParameterValueException,
)
from moto.utilities.utils import get_partition

import fidelity_elasticache_users as _users


class ServerlessCacheNotFoundFault(ServiceException):
    code = "ServerlessCacheNotFoundFault"

    def __init__(self, name: str):
        super().__init__(f"Serverless cache {name} not found.")


class ServerlessCacheAlreadyExistsFault(ServiceException):
    code = "ServerlessCacheAlreadyExistsFault"

    def __init__(self, name: str):
        super().__init__(f"Serverless cache {name} already exists.")


class InvalidServerlessCacheStateFault(ServiceException):
    code = "InvalidServerlessCacheStateFault"


# engine: (default major version, {major version: full engine version}, port)
ENGINES = {
    "valkey": ("8", {"7": "7.2", "8": "8.0"}, 6379),
    "redis": ("7", {"7": "7.1"}, 6379),
    "memcached": ("1.6", {"1.6": "1.6.22"}, 11211),
}
_NAME = re.compile(r"^[a-z](?:[a-z0-9]|-(?!-))*$")
_DAILY_TIME = re.compile(r"^(?:[01][0-9]|2[0-3]):[0-5][0-9]$")
_TAGGED_ARN = re.compile(r"^arn:[^:]+:elasticache:[^:]*:[0-9]*:serverlesscache:(.*)$")
_DIRECTIONS = {"north": "n", "south": "s", "east": "e", "west": "w", "central": "c",
               "northeast": "ne", "northwest": "nw", "southeast": "se", "southwest": "sw",
               "gov": "g", "iso": "i", "isob": "ib"}
PAGE = 50


class ServerlessCache:
    def __init__(self, backend, name: str, engine: str, major: str):
        self.name = name
        self.engine = engine
        self.major = major
        self.description = ""
        self.create_time = datetime.datetime.now(datetime.timezone.utc)
        self.status = "creating"
        self.plinth_pending = None
        self.limits: dict | None = None
        self.kms_key_id: str | None = None
        self.security_group_ids: list[str] = []
        self.subnet_ids: list[str] = []
        self.user_group_id: str | None = None
        self.snapshot_retention_limit: int | None = None
        self.daily_snapshot_time: str | None = None
        self.network_type: str | None = None
        self.arn = (f"arn:{get_partition(backend.region_name)}:elasticache:{backend.region_name}:"
                    f"{backend.account_id}:serverlesscache:{name}")
        suffix = "".join(random.choices(string.ascii_lowercase + string.digits, k=6))
        region = _region_short(backend.region_name)
        self.address = f"{name}-{suffix}.serverless.{region}.cache.amazonaws.com"

    def shape(self) -> dict:
        port = ENGINES[self.engine][2]
        shape = {
            "ServerlessCacheName": self.name,
            "Description": self.description,
            "CreateTime": self.create_time,
            "Status": self.status,
            "Engine": self.engine,
            "MajorEngineVersion": self.major,
            "FullEngineVersion": ENGINES[self.engine][1][self.major],
            "CacheUsageLimits": self.limits,
            "KmsKeyId": self.kms_key_id,
            "SecurityGroupIds": list(self.security_group_ids) or None,
            "Endpoint": {"Address": self.address, "Port": port},
            "ReaderEndpoint": {"Address": self.address, "Port": port + 1},
            "ARN": self.arn,
            "UserGroupId": self.user_group_id,
            "SubnetIds": list(self.subnet_ids) or None,
            "SnapshotRetentionLimit": self.snapshot_retention_limit,
            "DailySnapshotTime": self.daily_snapshot_time,
            "NetworkType": self.network_type,
        }
        return {k: v for k, v in shape.items() if v is not None}


def _region_short(region: str) -> str:
    """us-east-1 -> use1, ap-southeast-2 -> apse2, eu-central-1 -> euc1."""
    parts = region.split("-")
    return parts[0] + "".join(_DIRECTIONS.get(p, p[:1]) for p in parts[1:-1]) + parts[-1]


def _caches(backend) -> dict:
    if not hasattr(backend, "plinth_serverless_caches"):
        backend.plinth_serverless_caches = {}
    return backend.plinth_serverless_caches


# --- statuses that move on (called from fidelity_elasticache_users._settle) -----------------

def _settle_caches(backend, describing: str) -> None:
    for name, cache in list(_caches(backend).items()):
        then = _users._due(cache, describing == "serverless caches")
        if then == "available":
            cache.status = "available"
        elif then == "gone":
            del _caches(backend)[name]
            backend.tagging_service.delete_all_tags_for_resource(cache.arn)


def _using(backend, group_id: str) -> list[str]:
    return [c.name for c in _caches(backend).values() if c.user_group_id == group_id]


_users.settle_serverless_caches = _settle_caches
_users.serverless_caches_using = _using


# --- checks ---------------------------------------------------------------------------------

def _check_name(value) -> str:
    """The name as AWS stores it (lowercase), checked against AWS's rule."""
    name = (value or "").lower()
    if not (1 <= len(name) <= 40 and _NAME.match(name) and not name.endswith("-")):
        raise InvalidParameterValueException(
            f"Invalid serverless cache name: {value}. It must be 1 to 40 characters: a letter "
            "first, then letters, digits or hyphens, without two hyphens in a row or a hyphen "
            "at the end.")
    return name


def _cache(backend, value) -> ServerlessCache:
    name = (value or "").lower()
    cache = _caches(backend).get(name)
    if cache is None:
        raise ServerlessCacheNotFoundFault(value)
    return cache


def _engine(value) -> str:
    engine = (value or "").lower()
    if engine not in ENGINES:
        raise InvalidParameterValueException(
            f'Unknown parameter for Engine: "{value}", must be one of: {", ".join(ENGINES)}')
    return engine


def _major(engine: str, value) -> str:
    if value is None:
        return ENGINES[engine][0]
    if value not in ENGINES[engine][1]:
        raise InvalidParameterValueException(
            f"Invalid MajorEngineVersion {value} for engine {engine}: it must be one of "
            f"{', '.join(ENGINES[engine][1])}.")
    return value


def _bounded(what: str, value, low: int, high: int, unit: str = "") -> int | None:
    if value is None:
        return None
    value = int(value)
    if not low <= value <= high:
        raise InvalidParameterValueException(
            f"{what} must be between {low} and {high}{unit}, it is {value}{unit}.")
    return value


def _limits(value) -> dict | None:
    """CacheUsageLimits as sent, once AWS's bounds are checked."""
    if not value:
        return None
    limits = {}
    storage = value.get("DataStorage")
    if storage:
        if storage.get("Unit") != "GB":
            raise InvalidParameterValueException(
                f"Invalid DataStorage Unit {storage.get('Unit')}: it must be GB.")
        limits["DataStorage"] = _pair("DataStorage", storage, 1, 5000, " GB")
        limits["DataStorage"]["Unit"] = "GB"
    ecpu = value.get("ECPUPerSecond")
    if ecpu:
        limits["ECPUPerSecond"] = _pair("ECPUPerSecond", ecpu, 1000, 15000000)
    return limits or None


def _pair(what: str, value: dict, low: int, high: int, unit: str = "") -> dict:
    maximum = _bounded(f"{what} Maximum", value.get("Maximum"), low, high, unit)
    minimum = _bounded(f"{what} Minimum", value.get("Minimum"), low, high, unit)
    if maximum is not None and minimum is not None and minimum > maximum:
        raise InvalidParameterValueException(
            f"{what} Minimum ({minimum}{unit}) must not be greater than its Maximum "
            f"({maximum}{unit}).")
    return {k: v for k, v in (("Maximum", maximum), ("Minimum", minimum)) if v is not None}


def _user_group(backend, engine: str, group_id: str) -> str:
    if engine == "memcached":
        raise InvalidParameterCombinationException(
            "UserGroupId is not supported for a serverless cache with engine memcached.")
    _users._usable_group(backend, group_id)
    return group_id


def _description(value) -> str | None:
    if value is not None and len(value) > 255:
        raise InvalidParameterValueException("Description must be at most 255 characters.")
    return value


def _daily_time(value) -> str | None:
    if value is not None and not _DAILY_TIME.match(value):
        raise InvalidParameterValueException(
            f"Invalid DailySnapshotTime {value}: it must be HH:MM (UTC, 24-hour).")
    return value


def _retention(value) -> int | None:
    if value is not None and int(value) < 0:
        raise InvalidParameterValueException("SnapshotRetentionLimit must not be negative.")
    return None if value is None else int(value)


def _network(backend, subnet_ids: list[str], group_ids: list[str]) -> tuple[list, list]:
    """The subnets and security groups AWS uses when none are given: 3 default subnets of the
    default VPC (2 in us-west-1), and the default security group of the subnets' VPC."""
    from moto.ec2.models import ec2_backends

    ec2 = ec2_backends[backend.account_id][backend.region_name]
    vpc_id = None
    for subnet_id in subnet_ids:
        try:
            vpc_id = ec2.get_subnet(subnet_id).vpc_id
            break
        except Exception:  # noqa: BLE001 - a subnet moto does not know: no VPC to go by
            continue
    default_vpc = ec2.get_default_vpc()
    if not subnet_ids and default_vpc is not None:
        vpc_id = default_vpc.id
        defaults = sorted((s for zone in ec2.subnets.values() for s in zone.values()
                           if s.vpc_id == vpc_id and s.default_for_az),
                          key=lambda s: s.availability_zone)
        subnet_ids = [s.id for s in defaults[:2 if backend.region_name == "us-west-1" else 3]]
    if not group_ids and vpc_id is not None:
        try:
            group = ec2.get_default_security_group(vpc_id)
        except Exception:  # noqa: BLE001 - no groups known for that VPC
            group = None
        if group is not None:
            group_ids = [group.id]
    return list(subnet_ids), list(group_ids)


# --- 1-3. CreateServerlessCache -------------------------------------------------------------

def _create_serverless_cache(self):
    backend = self.elasticache_backend
    _users._settle(backend)
    params = self._get_params()
    if params.get("SnapshotArnsToRestore"):
        raise InvalidParameterValueException(
            "CreateServerlessCache SnapshotArnsToRestore: not implemented by plinth's emulator "
            "patch (fidelity_elasticache_serverless.py keeps no serverless snapshots); nothing "
            "was made.")
    name = _check_name(params.get("ServerlessCacheName"))
    engine = _engine(params.get("Engine"))
    major = _major(engine, params.get("MajorEngineVersion"))
    limits = _limits(params.get("CacheUsageLimits"))
    description = _description(params.get("Description"))
    daily_time = _daily_time(params.get("DailySnapshotTime"))
    retention = _retention(self._get_int_param("SnapshotRetentionLimit"))
    group_id = params.get("UserGroupId")
    if group_id:
        _user_group(backend, engine, group_id)
    if name in _caches(backend):
        raise ServerlessCacheAlreadyExistsFault(name)
    cache = ServerlessCache(backend, name, engine, major)
    cache.description = description or ""
    cache.limits = limits
    cache.kms_key_id = params.get("KmsKeyId") or None
    cache.subnet_ids, cache.security_group_ids = _network(
        backend, _users._unique(params.get("SubnetIds")),
        _users._unique(params.get("SecurityGroupIds")))
    cache.user_group_id = group_id or None
    memcached = engine == "memcached"
    cache.snapshot_retention_limit = retention if retention is not None or memcached else 0
    cache.daily_snapshot_time = daily_time if daily_time is not None or memcached else "04:00"
    cache.network_type = params.get("NetworkType") or None
    _caches(backend)[name] = cache
    _users._begin(cache, "creating", 1, "available")
    tags = params.get("Tags") or []
    if tags:
        backend.tagging_service.tag_resource(cache.arn, tags)
    return ActionResult({"ServerlessCache": cache.shape()})


# --- 4. DescribeServerlessCaches ------------------------------------------------------------

def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"plinth-serverless:{offset}".encode()).decode()


def _offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        kind, offset = base64.urlsafe_b64decode(token.encode()).decode().split(":")
        if kind == "plinth-serverless" and int(offset) >= 0:
            return int(offset)
    except Exception:  # noqa: BLE001 - any token it did not give
        pass
    raise InvalidParameterValueException(f"Invalid NextToken: {token}")


def _describe_serverless_caches(self):
    backend = self.elasticache_backend
    _users._settle(backend, "serverless caches")
    name = self._get_param("ServerlessCacheName")
    max_results = self._get_int_param("MaxResults")
    if max_results is not None and max_results < 1:
        raise InvalidParameterValueException("MaxResults must be at least 1.")
    offset = _offset(self._get_param("NextToken"))
    caches = [_cache(backend, name)] if name else list(_caches(backend).values())
    page = caches[offset:offset + (max_results or PAGE)]
    result = {"ServerlessCaches": [c.shape() for c in page]}
    if offset + len(page) < len(caches):
        result["NextToken"] = _token(offset + len(page))
    _users._reported(page)
    return ActionResult(result)


# --- 5. ModifyServerlessCache ---------------------------------------------------------------

def _modify_serverless_cache(self):
    backend = self.elasticache_backend
    _users._settle(backend)
    params = self._get_params()
    cache = _cache(backend, params.get("ServerlessCacheName"))
    if cache.status != "available":
        raise InvalidServerlessCacheStateFault(
            f"Serverless cache {cache.name} is not in available state (it is {cache.status}).")
    remove_group = self._get_bool_param("RemoveUserGroup")
    group_id = params.get("UserGroupId")
    if remove_group and group_id:
        raise InvalidParameterCombinationException(
            "RemoveUserGroup and UserGroupId cannot be used together.")
    engine, major = cache.engine, cache.major
    if params.get("Engine") is not None:
        engine = _engine(params["Engine"])
        if engine != cache.engine and (cache.engine, engine) != ("redis", "valkey"):
            raise InvalidParameterCombinationException(
                f"The engine of serverless cache {cache.name} cannot be changed from "
                f"{cache.engine} to {engine}.")
        if engine != cache.engine:
            major = ENGINES[engine][0]
    if params.get("MajorEngineVersion") is not None:
        major = _major(engine, params["MajorEngineVersion"])
        if engine == cache.engine and float(major) < float(cache.major):
            raise InvalidParameterCombinationException(
                f"MajorEngineVersion {major} is below the serverless cache's {cache.major}.")
    limits = _limits(params.get("CacheUsageLimits"))
    description = _description(params.get("Description"))
    daily_time = _daily_time(params.get("DailySnapshotTime"))
    retention = _retention(self._get_int_param("SnapshotRetentionLimit"))
    if group_id:
        _user_group(backend, engine, group_id)

    cache.engine, cache.major = engine, major
    if limits:
        cache.limits = {**(cache.limits or {}), **limits}
    if description is not None:
        cache.description = description
    if daily_time is not None:
        cache.daily_snapshot_time = daily_time
    if retention is not None:
        cache.snapshot_retention_limit = retention
    if params.get("SecurityGroupIds"):
        cache.security_group_ids = _users._unique(params["SecurityGroupIds"])
    if group_id:
        cache.user_group_id = group_id
    elif remove_group:
        cache.user_group_id = None
    _users._begin(cache, "modifying", 0, "available")
    return ActionResult({"ServerlessCache": cache.shape()})


# --- 6. DeleteServerlessCache ---------------------------------------------------------------

def _delete_serverless_cache(self):
    backend = self.elasticache_backend
    _users._settle(backend)
    cache = _cache(backend, self._get_param("ServerlessCacheName"))
    if cache.status != "available":
        raise InvalidServerlessCacheStateFault(
            f"Serverless cache {cache.name} is not in available state (it is {cache.status}).")
    # FinalSnapshotName: accepted and ignored (no serverless snapshots are kept here).
    _users._begin(cache, "deleting", 1, "gone")
    return ActionResult({"ServerlessCache": cache.shape()})


# --- 7. tags --------------------------------------------------------------------------------

def _known_arn(tagging):
    def patched(self):
        backend = self.elasticache_backend
        _users._settle(backend)
        match = _TAGGED_ARN.match(self._get_param("ResourceName") or "")
        if match:
            cache = _caches(backend).get(match.group(1))
            if cache is None or cache.arn != match.group(0):
                raise ServerlessCacheNotFoundFault(match.group(1))
        return tagging(self)

    return patched


for _action, _fn in {
    "create_serverless_cache": _create_serverless_cache,
    "describe_serverless_caches": _describe_serverless_caches,
    "modify_serverless_cache": _modify_serverless_cache,
    "delete_serverless_cache": _delete_serverless_cache,
    **{name: _known_arn(getattr(responses.ElastiCacheResponse, name))
       for name in ("list_tags_for_resource", "add_tags_to_resource", "remove_tags_from_resource")},
}.items():
    setattr(responses.ElastiCacheResponse, _action, _fn)
