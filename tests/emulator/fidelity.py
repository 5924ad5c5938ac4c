"""Fidelity corrections: where moto (5.2.1) differs from what AWS really does in a way that
makes an honest end-to-end check impossible, these patches make it behave like AWS. Each
says what AWS does. They only fill gaps; plinth never special-cases the emulator.

1. Deleted ElastiCache clusters and replication groups: AWS keeps them `deleting` for a few
   minutes, then they are gone (Describe* answers CacheClusterNotFound /
   ReplicationGroupNotFoundFault). moto keeps them `deleting` forever. Here they are gone
   once they have been deleting for PLINTH_EMULATOR_DELETING_SECONDS (default 2).
2. DeleteCacheSubnetGroup: AWS deletes the group (CacheSubnetGroupInUse while a cluster that
   is not yet gone uses it). moto answers HTTP 500 "not implemented".
3. Cache parameter groups (Create/Describe/Delete/Modify/Reset, DescribeCacheParameters with
   Source=user): AWS implements them, including their tags; moto has none. Here a group
   keeps its family, description and the parameters a user set, and can be tagged. (The
   ARN pattern below also lets ListTagsForResource read user groups' `usergroup` ARNs and
   serverless caches' `serverlesscache` ARNs.)
4. A replication group created with NumCacheClusters=N (cluster mode disabled) has N member
   clusters in AWS: one primary and N-1 replicas. moto 5.2.1 creates only the primary unless
   ReplicasPerNodeGroup is also given.
5. DescribeCacheClusters in AWS returns a cluster's SecurityGroups, its CacheParameterGroup,
   its CacheNodes with their endpoints (with ShowCacheNodeInfo) and, for Memcached, the
   ConfigurationEndpoint; moto stores them but returns none of them. Its replication
   groups likewise lack the node group's ReaderEndpoint.
6. A replication group's member clusters are cache clusters in AWS: DescribeCacheClusters
   lists them with their ReplicationGroupId, they carry the group's tags (AWS copies them),
   so the Resource Groups Tagging API finds them too, and they are deleted with the group
   (deleting, then gone). moto keeps them only as names in the group.
7. ModifyCacheCluster: AWS changes a cluster's security groups, node type, engine version,
   parameter group, node count and windows in place (ApplyImmediately; the cluster is
   `modifying`, then `available`). moto answers HTTP 500 "not implemented". Here the change
   is made at once and the cluster stays `available` (the wait for `modifying` to end is
   covered by replayed AWS answers).

CloudFront (distribution configs, ETags, cache policies, origin access controls, and ACM's
view of certificates in use) is corrected in fidelity_cloudfront.py, S3 (GetBucketVersioning,
a deleted bucket's tags) in fidelity_s3.py, EC2 (CreateRouteTable's ClientToken, DeleteVpc
while something is in the VPC) in fidelity_ec2.py, ACM's DNS validation and Route 53's
caller references in fidelity_dns.py, Lambda's one mapping per function and stream in
fidelity_lambda.py, IAM's instance profiles in fidelity_iam.py, ElastiCache's users, user
groups and replication groups' user groups in fidelity_elasticache_users.py, ElastiCache
Serverless caches in fidelity_elasticache_serverless.py, DynamoDB global tables (version
2019.11.21 replicas) in fidelity_dynamodb_replicas.py, the Resource Groups Tagging API's
GetResources by ResourceARNList in fidelity_tagging.py; check_fidelity.py checks those
corrections.
"""

import functools
import inspect
import os
import re
import time

from moto.core.exceptions import ServiceException
from moto.core.responses import ActionResult, EmptyResult
from moto.elasticache import models, responses

DELETING_SECONDS = float(os.environ.get("PLINTH_EMULATOR_DELETING_SECONDS", "2"))


class CacheSubnetGroupInUse(ServiceException):
    code = "CacheSubnetGroupInUse"


class CacheParameterGroupNotFound(ServiceException):
    code = "CacheParameterGroupNotFound"


class CacheParameterGroupAlreadyExists(ServiceException):
    code = "CacheParameterGroupAlreadyExists"


# --- 1. deleting, then gone -------------------------------------------------------------

_deleted_at: dict[tuple[int, str], float] = {}


def _expire(backend) -> None:
    now = time.time()
    for store in (backend.cache_clusters, backend.replication_groups):
        for key, item in list(store.items()):
            status = getattr(item, "cache_cluster_status", None) or getattr(item, "status", None)
            if status != "deleting":
                continue
            since = _deleted_at.setdefault((id(item), key), now)
            if now - since >= DELETING_SECONDS:
                del store[key]
                _deleted_at.pop((id(item), key), None)


def _expiring(method_name: str) -> None:
    original = getattr(models.ElastiCacheBackend, method_name)

    @functools.wraps(original)
    def patched(self, *args, **kwargs):
        _expire(self)
        return original(self, *args, **kwargs)

    setattr(models.ElastiCacheBackend, method_name, patched)


for _name in ("describe_cache_clusters", "describe_replication_groups", "delete_cache_cluster",
              "delete_replication_group", "create_cache_cluster", "create_replication_group"):
    _expiring(_name)


# --- 2. DeleteCacheSubnetGroup -----------------------------------------------------------

def _delete_cache_subnet_group(self):
    name = self._get_param("CacheSubnetGroupName")
    backend = self.elasticache_backend
    _expire(backend)
    if name not in backend.cache_subnet_groups:
        raise models.CacheSubnetGroupNotFound(name)
    users = [c for c in backend.cache_clusters.values()
             if getattr(c, "cache_subnet_group_name", None) == name]
    if users:
        raise CacheSubnetGroupInUse(f"Cache subnet group {name} is currently in use by a cache cluster.")
    del backend.cache_subnet_groups[name]
    return EmptyResult()


responses.ElastiCacheResponse.delete_cache_subnet_group = _delete_cache_subnet_group


# --- 3. parameter groups -----------------------------------------------------------------

_original_init = models.ElastiCacheBackend.__init__


def _init(self, *args, **kwargs):
    _original_init(self, *args, **kwargs)
    self.arn_regex = re.compile(
        r"^arn:aws:elasticache:.*:[0-9]*:(cluster|snapshot|subnetgroup|replicationgroup|user|usergroup|parametergroup|serverlesscache):.*$"
    )


models.ElastiCacheBackend.__init__ = _init


def _groups(backend) -> dict:
    if not hasattr(backend, "plinth_parameter_groups"):
        backend.plinth_parameter_groups = {}
    return backend.plinth_parameter_groups


def _shape(backend, group: dict) -> dict:
    return {
        "CacheParameterGroupName": group["name"],
        "CacheParameterGroupFamily": group["family"],
        "Description": group["description"],
        "IsGlobal": False,
        "ARN": f"arn:aws:elasticache:{backend.region_name}:{backend.account_id}:parametergroup:{group['name']}",
    }


def _group(self, name: str) -> dict:
    group = _groups(self.elasticache_backend).get(name)
    if group is None:
        raise CacheParameterGroupNotFound(f"CacheParameterGroup {name} not found.")
    return group


def _create_cache_parameter_group(self):
    backend = self.elasticache_backend
    name = self._get_param("CacheParameterGroupName")
    if name in _groups(backend):
        raise CacheParameterGroupAlreadyExists(f"CacheParameterGroup {name} already exists.")
    group = {"name": name, "family": self._get_param("CacheParameterGroupFamily"),
             "description": self._get_param("Description") or "", "parameters": {}}
    _groups(backend)[name] = group
    tags = self._get_param("Tags") or []
    if tags:
        backend.tagging_service.tag_resource(_shape(backend, group)["ARN"], tags)
    return ActionResult({"CacheParameterGroup": _shape(backend, group)})


def _describe_cache_parameter_groups(self):
    backend = self.elasticache_backend
    name = self._get_param("CacheParameterGroupName")
    groups = [_group(self, name)] if name else list(_groups(backend).values())
    return ActionResult({"CacheParameterGroups": [_shape(backend, g) for g in groups]})


def _delete_cache_parameter_group(self):
    name = self._get_param("CacheParameterGroupName")
    _group(self, name)
    del _groups(self.elasticache_backend)[name]
    return EmptyResult()


def _modify_cache_parameter_group(self):
    name = self._get_param("CacheParameterGroupName")
    group = _group(self, name)
    for item in self._get_param("ParameterNameValues") or []:
        group["parameters"][item["ParameterName"]] = item["ParameterValue"]
    return ActionResult({"CacheParameterGroupName": name})


def _reset_cache_parameter_group(self):
    name = self._get_param("CacheParameterGroupName")
    group = _group(self, name)
    if self._get_bool_param("ResetAllParameters"):
        group["parameters"].clear()
    for item in self._get_param("ParameterNameValues") or []:
        group["parameters"].pop(item["ParameterName"], None)
    return ActionResult({"CacheParameterGroupName": name})


def _describe_cache_parameters(self):
    group = _group(self, self._get_param("CacheParameterGroupName"))
    params = [{"ParameterName": k, "ParameterValue": v, "Source": "user", "DataType": "string",
               "IsModifiable": True} for k, v in sorted(group["parameters"].items())]
    return ActionResult({"Parameters": params})


for _name, _fn in {
    "create_cache_parameter_group": _create_cache_parameter_group,
    "describe_cache_parameter_groups": _describe_cache_parameter_groups,
    "delete_cache_parameter_group": _delete_cache_parameter_group,
    "modify_cache_parameter_group": _modify_cache_parameter_group,
    "reset_cache_parameter_group": _reset_cache_parameter_group,
    "describe_cache_parameters": _describe_cache_parameters,
}.items():
    setattr(responses.ElastiCacheResponse, _name, _fn)


# --- 4. NumCacheClusters members ---------------------------------------------------------

_original_members = models.ReplicationGroup._set_node_members_clusters_disabled


def _members(self, *args, **kwargs):
    num = kwargs.get("num_cache_clusters") or 1
    if not kwargs.get("replicas_per_node_group") and num > 1:
        kwargs["replicas_per_node_group"] = num - 1
    result = _original_members(self, *args, **kwargs)
    group = kwargs.get("node_group")
    if group is not None and group.get("reader_endpoint_address"):
        group["reader_endpoint"] = {"address": group["reader_endpoint_address"], "port": self.port}
    return result


models.ReplicationGroup._set_node_members_clusters_disabled = _members


# --- 5. what DescribeCacheClusters returns ---------------------------------------------

def _domain(cluster) -> str:
    return f"{cluster.cache_cluster_id}.plinth0.use1.cache.amazonaws.com"


def _security_groups(self):
    return [{"SecurityGroupId": g, "Status": "active"} for g in self.security_group_ids or []]


def _cache_parameter_group(self):
    if not self.cache_parameter_group_name:
        return None
    return {"CacheParameterGroupName": self.cache_parameter_group_name,
            "ParameterApplyStatus": "in-sync", "CacheNodeIdsToReboot": []}


def _cache_nodes(self):
    return [{"CacheNodeId": f"{i + 1:04}", "CacheNodeStatus": "available",
             "Endpoint": {"Address": f"{self.cache_cluster_id}.{i + 1:04}.plinth0.use1.cache.amazonaws.com",
                          "Port": self.port},
             "ParameterGroupStatus": "in-sync", "CustomerAvailabilityZone": "us-east-1a"}
            for i in range(self.num_cache_nodes or 1)]


def _configuration_endpoint(self):
    if self.engine != "memcached":
        return None
    return {"Address": f"{self.cache_cluster_id}.cfg.plinth0.use1.cache.amazonaws.com", "Port": self.port}


models.CacheCluster.security_groups = property(_security_groups)
models.CacheCluster.cache_parameter_group = property(_cache_parameter_group)
models.CacheCluster.cache_nodes = property(_cache_nodes)
models.CacheCluster.configuration_endpoint = property(_configuration_endpoint)


# --- 6. member clusters --------------------------------------------------------------------

_cluster_params = [n for n in inspect.signature(models.ElastiCacheBackend.create_cache_cluster).parameters
                   if n != "self"]
_original_create_group = models.ElastiCacheBackend.create_replication_group
_original_delete_group = models.ElastiCacheBackend.delete_replication_group


def _create_group_with_members(self, *args, **kwargs):
    group = _original_create_group(self, *args, **kwargs)
    for member in list(group.member_clusters):
        if member in self.cache_clusters:
            continue
        params = {name: None for name in _cluster_params}
        params.update(
            cache_cluster_id=member,
            replication_group_id=group.replication_group_id,
            cache_node_type=group.cache_node_type,
            engine=group.engine,
            engine_version=getattr(group, "engine_version", None),
            cache_subnet_group_name=kwargs.get("cache_subnet_group_name"),
            security_group_ids=kwargs.get("security_group_ids"),
            cache_parameter_group_name=kwargs.get("cache_parameter_group_name"),
            port=group.port,
            num_cache_nodes=1,
            tags=kwargs.get("tags") or [],
            log_delivery_configurations=[],
        )
        self.create_cache_cluster(**params)
    return group


def _delete_group_with_members(self, replication_group_id, *args, **kwargs):
    members = list(self.replication_groups[replication_group_id].member_clusters) \
        if replication_group_id in self.replication_groups else []
    group = _original_delete_group(self, replication_group_id, *args, **kwargs)
    for member in members:
        cluster = self.cache_clusters.get(member)
        if cluster is not None:
            cluster.cache_cluster_status = "deleting"
            cluster.status = "deleting"
    return group


models.ElastiCacheBackend.create_replication_group = _create_group_with_members
models.ElastiCacheBackend.delete_replication_group = _delete_group_with_members
for _name in ("create_replication_group", "delete_replication_group"):
    _expiring(_name)


# --- 7. ModifyCacheCluster --------------------------------------------------------------

_MODIFIABLE = {
    "SecurityGroupIds": "security_group_ids",
    "CacheNodeType": "cache_node_type",
    "EngineVersion": "engine_version",
    "CacheParameterGroupName": "cache_parameter_group_name",
    "PreferredMaintenanceWindow": "preferred_maintenance_window",
    "SnapshotWindow": "snapshot_window",
}


def _modify_cache_cluster(self):
    backend = self.elasticache_backend
    _expire(backend)
    cluster_id = self._get_param("CacheClusterId")
    cluster = backend.cache_clusters.get(cluster_id)
    if cluster is None:
        raise models.CacheClusterNotFound(cluster_id)
    for param, attribute in _MODIFIABLE.items():
        value = self._get_param(param)
        if value is not None:
            setattr(cluster, attribute, value)
    for param, attribute in (("NumCacheNodes", "num_cache_nodes"),
                             ("SnapshotRetentionLimit", "snapshot_retention_limit")):
        value = self._get_int_param(param)
        if value is not None:
            setattr(cluster, attribute, value)
    return ActionResult({"CacheCluster": cluster})


responses.ElastiCacheResponse.modify_cache_cluster = _modify_cache_cluster


import fidelity_cloudfront  # noqa: E402,F401
import fidelity_cloudfront_functions  # noqa: E402,F401
import fidelity_cloudfront_policies  # noqa: E402,F401
import fidelity_s3  # noqa: E402,F401
import fidelity_ec2  # noqa: E402,F401
import fidelity_dns  # noqa: E402,F401
import fidelity_lambda  # noqa: E402,F401
import fidelity_iam  # noqa: E402,F401
import fidelity_encryption  # noqa: E402,F401
import fidelity_elasticache_users  # noqa: E402,F401
import fidelity_elasticache_serverless  # noqa: E402,F401
import fidelity_dynamodb_replicas  # noqa: E402,F401
import fidelity_tagging  # noqa: E402,F401
