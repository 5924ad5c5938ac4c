"""DynamoDB global tables, version 2019.11.21: moto 5.2.1 has none of them (UpdateTable
ignores ReplicaUpdates, DescribeTable never has Replicas or GlobalTableVersion), so plinth's
end-to-end checks of replicated tables could not be honest. Here they are as AWS DynamoDB
does them (API reference: UpdateTable ReplicaUpdates, DescribeTable Replicas /
ReplicaDescription, GlobalTableVersion). Errors are DynamoDB's JSON-protocol errors: HTTP 400
with __type com.amazonaws.dynamodb.v20120810#CODE and a message. Imported by fidelity.py;
each correction says what moto does and what AWS does.

Statuses move on the way a client sees AWS move them: a replica answered `CREATING`
(`DELETING`) by UpdateTable is reported so by the next DescribeTable of any of the global
table's tables too, and keeps that status for every other call until then; the
DescribeTable after that finds it `ACTIVE` (or gone). A client that does not look gets the
same once PLINTH_EMULATOR_REPLICA_SETTLE_SECONDS (default 2) have passed, as in AWS, where
the change completes whether anyone asks or not. While a replica is being created or deleted
the table the action was sent to is `UPDATING`, the new replica's own table `CREATING` (the
deleted one's `DELETING`).

1. UpdateTable ReplicaUpdates: moto ignores it and answers the table unchanged. AWS takes
   exactly one action per call, [{"Create": {RegionName, KMSMasterKeyId,
   ProvisionedThroughputOverride, GlobalSecondaryIndexes, TableClassOverride}}] or
   [{"Delete": {RegionName}}], and refuses with ValidationException: ReplicaUpdates sent
   with any other update (ProvisionedThroughput, BillingMode, StreamSpecification,
   GlobalSecondaryIndexUpdates, SSESpecification, TableClass, DeletionProtectionEnabled,
   OnDemandThroughput, WarmThroughput): "One or more parameter values were invalid: Replica
   modification must be the only operation in the request"; more than one action: "Update
   table operation with more than one create or delete replica actions not allowed."; two
   kinds of action in one element: "Update table operation with more than one type of
   replica actions not allowed."; an element with none: "There are no actions specified in
   the Replica Update Action of the request."; the table's own region: "Cannot add, delete,
   or update the local region through ReplicaUpdates. Use CreateTable, DeleteTable, or
   UpdateTable as required.". Those are checked first; then, while the table or any replica
   of it is not ACTIVE, ResourceInUseException "Attempt to change a resource which is still
   in use: Table: NAME is in the process of being updated." (CREATING: "... Table is being
   created: NAME"). An action of kind Update is answered ValidationException saying this
   emulator does not implement it: nothing is pretended to be changed.
2. Create's requirements (each ValidationException): a region AWS does not have: "Region R is
   not supported. ..."; a region already holding a replica, or a table of the same name:
   "Failed to create a the new replica of table with name: ‘NAME’ because one or more
   replicas already existed as tables." (AWS's wording, typographic quotes); a PROVISIONED
   table whose write capacity is not auto scaled (an Application Auto Scaling scalable
   target and a scaling policy on dynamodb:table:WriteCapacityUnits of table/NAME in the
   table's region): "Table write capacity should either be Pay-Per-Request or AutoScaled.",
   and the same for each global secondary index (dynamodb:index:WriteCapacityUnits of
   table/NAME/index/INDEX): "GSI write capacity should either be Pay-Per-Request or
   AutoScaled."; a table encrypted with a customer managed KMS key (a key is regional) and no
   KMSMasterKeyId for the replica: "One or more parameter values were invalid:
   KMSMasterKeyId must be specified for each replica."; a table whose stream is enabled
   with a StreamViewType other than NEW_AND_OLD_IMAGES: "One or more parameter values were
   invalid: Table streams must be enabled with StreamViewType NEW_AND_OLD_IMAGES to add a
   replica." (the stricter of two readings: reports differ on whether AWS takes another
   view type as it is; this wording is not AWS's own). A table with no stream at all is
   accepted, and AWS enables a NEW_AND_OLD_IMAGES stream on it itself (which, while it has
   replicas, cannot be disabled: 6).
3. Create's effect: the answer's TableDescription has TableStatus UPDATING, GlobalTableVersion
   "2019.11.21" and Replicas [{RegionName, ReplicaStatus CREATING, KMSMasterKeyId (as an
   ARN when the replica region's KMS knows the key), ProvisionedThroughputOverride,
   GlobalSecondaryIndexes (the overrides given), ReplicaTableClassSummary {TableClass}}],
   each only when given; the table's own region is never in its Replicas. The replica is a
   table of the same name in region R with the table's key schema, attribute definitions,
   local and global secondary indexes, billing mode and capacity (read capacity as
   overridden), a NEW_AND_OLD_IMAGES stream, time to live, and encryption (the given key, or
   R's AWS managed key when the table uses KMS); not the tags or deletion protection, which
   stay regional. Its own DescribeTable (in R) lists the other members, the table's region
   among them, as its Replicas, with its TableClassSummary when overridden.
4. Delete: the replica is DELETING in the answer (the table UPDATING) and for one
   DescribeTable, then it is gone from Replicas and its table from region R
   (ResourceNotFoundException there). A region that is not a replica: "Update global table
   operation failed because one or more replicas were not part of the global table. Please
   retry the request without these replicas: [R]." (ValidationException).
5. DescribeTable of a table with replicas has them and GlobalTableVersion as in 3; a table
   without replicas (never replicated, or whose last replica is gone) has neither key.
6. A replicated table's other UpdateTable calls: while a replica is being created or deleted
   (the table not ACTIVE) AWS refuses them with ResourceInUseException as in 1; moto would
   apply them. Disabling its stream is refused: "One or more parameter values were invalid:
   Disabling Stream is not allowed for a Global Table replica." (ValidationException).
7. DeleteTable of a table that has replicas: AWS deletes only that region's table; the
   other replicas stay, each listing only the remaining ones (a lone survivor is a regional
   table again, without Replicas). A table that is CREATING or UPDATING is refused with
   ResourceInUseException, as DeleteTable always is in AWS.
8. Tags: TagResource, UntagResource and ListTagsOfResource on a replica's ARN
   (arn:aws:dynamodb:R:ACCOUNT:table/NAME) work in region R: the replica is an ordinary moto
   table there. (No correction: check_fidelity.py checks it.)

Not modelled (known limitations, not fidelity claims): items. AWS copies a table's items to a
new replica and every later write to every replica, asynchronously (usually within a
second). As a convenience a new replica here starts with a copy of the table's items, and
PutItem, UpdateItem, DeleteItem, BatchWriteItem and TransactWriteItems writes made through any
replica are copied to the others at once; PartiQL writes and time-to-live expiry are not.
Nor: ReplicaUpdates Update actions (1); settings changed on one replica after the others
exist (AWS applies billing mode, capacity, global secondary indexes, time to live and the
stream to every replica; here only the table the call names changes); write auto scaling
being mirrored into a new replica's region; per-replica deletion protection refusing a
Delete; and the rule that a region which was the source of a replica less than 24 hours ago
cannot be deleted before that replica.
"""

import copy
import functools
import os
import threading
import time
from collections import OrderedDict

from moto.applicationautoscaling.models import applicationautoscaling_backends
from moto.dynamodb import responses as dynamodb_responses
from moto.dynamodb.exceptions import (
    MockValidationException,
    ResourceInUseException,
    ResourceNotFoundException,
)
from moto.dynamodb.models import DynamoDBBackend, dynamodb_backends
from moto.dynamodb.models.table import Table
from moto.kms import models as kms_models

import fidelity_encryption as _encryption  # its UpdateTable and Table.describe patches first

SETTLE_SECONDS = float(os.environ.get("PLINTH_EMULATOR_REPLICA_SETTLE_SECONDS", "2"))
VERSION = "2019.11.21"
NEW_AND_OLD = "NEW_AND_OLD_IMAGES"
INVALID = "One or more parameter values were invalid: "
OTHER_UPDATES = ("ProvisionedThroughput", "BillingMode", "StreamSpecification",
                 "GlobalSecondaryIndexUpdates", "SSESpecification", "TableClass",
                 "DeletionProtectionEnabled", "OnDemandThroughput", "WarmThroughput")

_lock = threading.RLock()
_local = threading.local()


class Member:
    """One region's table of a global table, as the other members' Replicas show it."""

    def __init__(self, region: str, created_at, kms: str | None = None,
                 table_class: str | None = None, read_override: int | None = None,
                 index_overrides: list | None = None):
        self.region = region
        self.created_at = created_at  # tells this table from a later one of the same name
        self.status = "ACTIVE"
        self.pending: dict | None = None
        self.kms = kms
        self.table_class = table_class
        self.read_override = read_override
        self.index_overrides = index_overrides or []

    def description(self) -> dict:
        out = {"RegionName": self.region, "ReplicaStatus": self.status}
        if self.kms:
            out["KMSMasterKeyId"] = self.kms
        if self.read_override is not None:
            out["ProvisionedThroughputOverride"] = {"ReadCapacityUnits": self.read_override}
        if self.index_overrides:
            out["GlobalSecondaryIndexes"] = copy.deepcopy(self.index_overrides)
        if self.table_class:
            out["ReplicaTableClassSummary"] = {"TableClass": self.table_class}
        return out


class GlobalTable:
    def __init__(self, account: str, name: str):
        self.account = account
        self.name = name
        self.members: "OrderedDict[str, Member]" = OrderedDict()


# (account, table name) -> the global tables of that name (their regions never overlap)
_groups: dict[tuple[str, str], list[GlobalTable]] = {}


def _table_in(account: str, region: str, name: str) -> Table | None:
    return dynamodb_backends[account][region].tables.get(name)


def _alive(group: GlobalTable, member: Member) -> Table | None:
    table = _table_in(group.account, member.region, group.name)
    return table if table is not None and table.created_at == member.created_at else None


def _drop(group: GlobalTable) -> None:
    groups = _groups.get((group.account, group.name), [])
    if group in groups:
        groups.remove(group)
    if not groups:
        _groups.pop((group.account, group.name), None)


def _prune(group: GlobalTable) -> None:
    """Forgets members whose table is gone some other way (a backend reset)."""
    for region, member in list(group.members.items()):
        if _alive(group, member) is None:
            del group.members[region]
    if len(group.members) <= 1:
        _drop(group)


def _group_of(table: Table) -> tuple[GlobalTable | None, Member | None]:
    for group in list(_groups.get((table.account_id, table.name), [])):
        member = group.members.get(table.region_name)
        if member is None or member.created_at != table.created_at:
            continue
        _prune(group)
        if group in _groups.get((table.account_id, table.name), []) \
                and table.region_name in group.members:
            return group, member
    return None, None


def _status(group: GlobalTable, region: str) -> str:
    member = group.members[region]
    if member.status in ("CREATING", "DELETING"):
        return member.status
    if any(m.pending and m.pending["source"] == region for m in group.members.values()):
        return "UPDATING"
    return "ACTIVE"


def _busy(group: GlobalTable | None) -> bool:
    return group is not None and any(m.pending for m in group.members.values())


def _in_use(name: str, status: str) -> ResourceInUseException:
    if status == "CREATING":
        return ResourceInUseException(
            f"Attempt to change a resource which is still in use: Table is being created: {name}")
    if status == "DELETING":
        return ResourceInUseException(
            f"Attempt to change a resource which is still in use: Table is being deleted: {name}")
    return ResourceInUseException(
        f"Attempt to change a resource which is still in use: Table: {name} is in the process "
        "of being updated.")


# --- statuses that move on -----------------------------------------------------------------

def _begin(member: Member, status: str, then: str, source: str) -> None:
    member.status = status
    member.pending = {"reports": 1, "deadline": time.time() + SETTLE_SECONDS, "then": then,
                      "source": source}


def _settle(group: GlobalTable, describing: bool) -> None:
    for region, member in list(group.members.items()):
        pending = member.pending
        if not pending:
            continue
        if not ((describing and pending["reports"] <= 0) or time.time() >= pending["deadline"]):
            continue
        member.pending = None
        if pending["then"] == "ACTIVE":
            member.status = "ACTIVE"
            continue
        table = _alive(group, member)
        if table is not None:
            dynamodb_backends[group.account][region].tables.pop(group.name, None)
        del group.members[region]
    if len(group.members) <= 1:
        _drop(group)


def _reported(group: GlobalTable) -> None:
    for member in group.members.values():
        if member.pending:
            member.pending["reports"] -= 1


def _settle_all() -> None:
    for groups in list(_groups.values()):
        for group in list(groups):
            _prune(group)
            if group in groups:
                _settle(group, describing=False)


_call_action = dynamodb_responses.DynamoHandler.call_action


def _call_action_settling(self):
    with _lock:
        _settle_all()
    return _call_action(self)


dynamodb_responses.DynamoHandler.call_action = _call_action_settling


# --- 3, 5. what DescribeTable (and every TableDescription) shows ----------------------------

_describe = Table.describe


def _describe_with_replicas(self, *args, **kwargs):
    results = _describe(self, *args, **kwargs)
    with _lock:
        group, member = _group_of(self)
        if group is None:
            return results
        description = next(iter(results.values()))
        description["TableStatus"] = _status(group, self.region_name)
        description["GlobalTableVersion"] = VERSION
        description["Replicas"] = [m.description() for region, m in group.members.items()
                                   if region != self.region_name]
        if member.table_class:
            description["TableClassSummary"] = {"TableClass": member.table_class}
    return results


Table.describe = _describe_with_replicas

_describe_table = dynamodb_responses.DynamoHandler.describe_table


def _describe_table_settling(self):
    backend = dynamodb_backends[self.current_account][self.region]
    with _lock:
        group = None
        try:
            group, _ = _group_of(backend.get_table(self.body["TableName"]))
        except ResourceNotFoundException:
            pass
        if group is not None:
            _settle(group, describing=True)
        result = _describe_table(self)
        if group is not None:
            _reported(group)
        return result


dynamodb_responses.DynamoHandler.describe_table = _describe_table_settling


# --- 1-4, 6. UpdateTable --------------------------------------------------------------------

def _one_action(body: dict) -> tuple[str, dict]:
    if any(body.get(name) is not None for name in OTHER_UPDATES):
        raise MockValidationException(
            INVALID + "Replica modification must be the only operation in the request")
    actions = []
    for update in body["ReplicaUpdates"] or [{}]:
        kinds = [k for k in ("Create", "Update", "Delete") if (update or {}).get(k) is not None]
        if not kinds:
            raise MockValidationException(
                "There are no actions specified in the Replica Update Action of the request.")
        if len(kinds) > 1:
            raise MockValidationException(
                "Update table operation with more than one type of replica actions not allowed.")
        actions.append((kinds[0], update[kinds[0]]))
    if len(actions) > 1:
        raise MockValidationException(
            "Update table operation with more than one create or delete replica actions not "
            "allowed.")
    return actions[0]


def _autoscaled(account: str, region: str, resource_id: str, dimension: str) -> bool:
    """A scalable target and a scaling policy on the dimension (what AWS counts as scaled)."""
    scaling = applicationautoscaling_backends[account][region]
    if resource_id not in scaling.targets.get(dimension, {}):
        return False
    return any(p.service_namespace == "dynamodb" and p.resource_id == resource_id
               and p.scalable_dimension == dimension for p in scaling.policies.values())


def _managed_key_arn(account: str, region: str) -> str | None:
    kms = kms_models.kms_backends[account][region]
    if not kms.alias_exists("alias/aws/dynamodb"):
        return None
    return kms.describe_key("alias/aws/dynamodb").arn


def _customer_key(table: Table) -> bool:
    sse = table.sse_specification
    if not sse or not sse.get("Enabled") or not sse.get("KMSMasterKeyId"):
        return False
    key = _encryption._key_arn(table.account_id, table.region_name, sse["KMSMasterKeyId"])
    return key != _managed_key_arn(table.account_id, table.region_name)


def _check_create(table: Table, group: GlobalTable | None, region: str, action: dict) -> None:
    account = table.account_id
    if region not in dynamodb_backends[account].regions:
        supported = ", ".join(sorted(dynamodb_backends[account].regions))
        raise MockValidationException(
            f"Region {region} is not supported. The latest version of global tables are only "
            f"supported in the following regions: [{supported}].")
    if (group is not None and region in group.members) \
            or _table_in(account, region, table.name) is not None:
        raise MockValidationException(
            f"Failed to create a the new replica of table with name: ‘{table.name}’ because one "
            "or more replicas already existed as tables.")
    if table.billing_mode != "PAY_PER_REQUEST":
        if not _autoscaled(account, table.region_name, f"table/{table.name}",
                           "dynamodb:table:WriteCapacityUnits"):
            raise MockValidationException(
                "Table write capacity should either be Pay-Per-Request or AutoScaled.")
        for index in table.global_indexes:
            if not _autoscaled(account, table.region_name,
                               f"table/{table.name}/index/{index.name}",
                               "dynamodb:index:WriteCapacityUnits"):
                raise MockValidationException(
                    "GSI write capacity should either be Pay-Per-Request or AutoScaled.")
    if action.get("KMSMasterKeyId") is None and _customer_key(table):
        raise MockValidationException(
            INVALID + "KMSMasterKeyId must be specified for each replica.")
    stream = table.stream_specification or {}
    if stream.get("StreamEnabled") and stream.get("StreamViewType") != NEW_AND_OLD:
        raise MockValidationException(
            INVALID + "Table streams must be enabled with StreamViewType NEW_AND_OLD_IMAGES to "
            "add a replica.")


def _make_replica(table: Table, region: str, action: dict, kms: str | None) -> Table:
    provisioned = table.billing_mode != "PAY_PER_REQUEST"
    read = (action.get("ProvisionedThroughputOverride") or {}).get("ReadCapacityUnits")
    throughput = None
    if provisioned:
        throughput = {"ReadCapacityUnits": read if read is not None
                      else table.throughput["ReadCapacityUnits"],
                      "WriteCapacityUnits": table.throughput["WriteCapacityUnits"]}
    index_reads = {i.get("IndexName"): (i.get("ProvisionedThroughputOverride") or {})
                   .get("ReadCapacityUnits") for i in action.get("GlobalSecondaryIndexes") or []}
    global_indexes = []
    for index in table.global_indexes:
        spec = {"IndexName": index.name, "KeySchema": copy.deepcopy(index.schema),
                "Projection": copy.deepcopy(index.projection)}
        if provisioned:
            index_read = index_reads.get(index.name)
            spec["ProvisionedThroughput"] = {
                "ReadCapacityUnits": index_read if index_read is not None
                else index.throughput["ReadCapacityUnits"],
                "WriteCapacityUnits": index.throughput["WriteCapacityUnits"]}
        global_indexes.append(spec)
    local_indexes = [{"IndexName": i.name, "KeySchema": copy.deepcopy(i.schema),
                      "Projection": copy.deepcopy(i.projection)} for i in table.indexes]
    sse = None
    if kms or (table.sse_specification and table.sse_specification.get("Enabled")):
        sse = {"Enabled": True, "SSEType": "KMS"}
        if kms:
            sse["KMSMasterKeyId"] = kms
    replica = dynamodb_backends[table.account_id][region].create_table(
        table.name, schema=copy.deepcopy(table.schema), throughput=throughput,
        attr=copy.deepcopy(table.attr), global_indexes=global_indexes, indexes=local_indexes,
        streams={"StreamEnabled": True, "StreamViewType": NEW_AND_OLD},
        billing_mode=table.billing_mode, sse_specification=sse, tags=[],
        deletion_protection_enabled=False, warm_throughput=None)
    replica.ttl = copy.deepcopy(table.ttl)
    replica.items = copy.deepcopy(table.items)
    return replica


def _replica_update(handler) -> object:
    body = handler.body
    kind, action = _one_action(body)
    if kind == "Update":
        raise MockValidationException(
            "ReplicaUpdates Update is not implemented by plinth's emulator (only Create and "
            "Delete are): nothing was changed.")
    backend = dynamodb_backends[handler.current_account][handler.region]
    table = backend.get_table(body["TableName"])
    region = action.get("RegionName")
    if region == table.region_name:
        raise MockValidationException(
            "Cannot add, delete, or update the local region through ReplicaUpdates. Use "
            "CreateTable, DeleteTable, or UpdateTable as required.")
    group, _ = _group_of(table)
    if _busy(group):
        status = _status(group, table.region_name)
        raise _in_use(table.name, "UPDATING" if status == "ACTIVE" else status)
    if kind == "Create":
        _check_create(table, group, region, action)
        if not (table.stream_specification or {}).get("StreamEnabled"):
            table.set_stream_specification({"StreamEnabled": True, "StreamViewType": NEW_AND_OLD})
        kms = action.get("KMSMasterKeyId")
        if kms:
            kms = _encryption._key_arn(table.account_id, region, kms)
        replica = _make_replica(table, region, action, kms)
        if group is None:
            group = GlobalTable(table.account_id, table.name)
            group.members[table.region_name] = Member(table.region_name, table.created_at)
            _groups.setdefault((table.account_id, table.name), []).append(group)
        read = (action.get("ProvisionedThroughputOverride") or {}).get("ReadCapacityUnits")
        member = Member(region, replica.created_at, kms=kms,
                        table_class=action.get("TableClassOverride"), read_override=read,
                        index_overrides=action.get("GlobalSecondaryIndexes"))
        group.members[region] = member
        _begin(member, "CREATING", then="ACTIVE", source=table.region_name)
    else:
        if group is None or region not in group.members:
            raise MockValidationException(
                "Update global table operation failed because one or more replicas were not "
                "part of the global table. Please retry the request without these replicas: "
                f"[{region}].")
        _begin(group.members[region], "DELETING", then="GONE", source=table.region_name)
    return dynamodb_responses.DynamoResult(table.describe())


_update_table = dynamodb_responses.DynamoHandler.update_table


def _update_table_with_replicas(self):
    with _lock:
        if self.body.get("ReplicaUpdates") is not None:
            return _replica_update(self)
        backend = dynamodb_backends[self.current_account][self.region]
        table = backend.get_table(self.body["TableName"])
        group, _ = _group_of(table)
        if group is not None:
            status = _status(group, table.region_name)
            if status != "ACTIVE":
                raise _in_use(table.name, status)
            stream = self.body.get("StreamSpecification")
            if stream is not None and not stream.get("StreamEnabled"):
                raise MockValidationException(
                    INVALID + "Disabling Stream is not allowed for a Global Table replica.")
        return _update_table(self)


dynamodb_responses.DynamoHandler.update_table = _update_table_with_replicas


# --- 7. DeleteTable -------------------------------------------------------------------------

_delete_table = dynamodb_responses.DynamoHandler.delete_table


def _delete_table_of_replica(self):
    backend = dynamodb_backends[self.current_account][self.region]
    with _lock:
        try:
            table = backend.get_table(self.body["TableName"])
        except ResourceNotFoundException:
            return _delete_table(self)
        group, _ = _group_of(table)
        if group is None:
            return _delete_table(self)
        status = _status(group, table.region_name)
        if status in ("CREATING", "UPDATING"):
            raise _in_use(table.name, status)
        result = _delete_table(self)
        group.members.pop(table.region_name, None)
        if len(group.members) <= 1:
            _drop(group)
        return result


dynamodb_responses.DynamoHandler.delete_table = _delete_table_of_replica


# --- items (a convenience, see "Not modelled") ------------------------------------------------

def _mirror(backend: DynamoDBBackend, table_name: str, attrs: dict) -> None:
    """Copies the item with `attrs`' key from its table to the global table's other tables."""
    with _lock:
        try:
            table = backend.get_table(table_name)
        except ResourceNotFoundException:
            return
        group, _ = _group_of(table)
        if group is None:
            return
        others = [other for region, member in group.members.items()
                  if region != table.region_name and member.status != "DELETING"
                  for other in [_alive(group, member)] if other is not None]
        if not others:
            return
        try:
            hash_key, range_key = backend.get_keys_value(table, attrs)
        except Exception:  # noqa: BLE001 - no key, nothing was written
            return
        item = table.get_item(hash_key, range_key)
        for other in others:
            if item is None:
                other.delete_item(hash_key, range_key)
                continue
            old = other.get_item(hash_key, range_key)
            new = copy.deepcopy(item)
            if other.has_range_key:
                other.items[hash_key][range_key] = new
            else:
                other.items[hash_key] = new
            if other.stream_shard is not None:
                other.stream_shard.add(old, new)


def _mirroring(name: str) -> None:
    original = getattr(DynamoDBBackend, name)

    @functools.wraps(original)
    def patched(self, table_name, *args, **kwargs):
        result = original(self, table_name, *args, **kwargs)
        attrs = args[0] if args else kwargs.get("item_attrs", kwargs.get("key"))
        if isinstance(attrs, dict):
            deferred = getattr(_local, "deferred", None)
            if deferred is not None:
                deferred.append((table_name, attrs))
            else:
                _mirror(self, table_name, attrs)
        return result

    setattr(DynamoDBBackend, name, patched)


for _name in ("put_item", "update_item", "delete_item"):
    _mirroring(_name)

_transact_write_items = DynamoDBBackend.transact_write_items


def _transact_then_mirror(self, *args, **kwargs):
    """A transaction's writes are copied once it has succeeded (a cancelled one is undone)."""
    _local.deferred = []
    try:
        result = _transact_write_items(self, *args, **kwargs)
        writes = _local.deferred
    finally:
        _local.deferred = None
    for table_name, attrs in writes:
        _mirror(self, table_name, attrs)
    return result


DynamoDBBackend.transact_write_items = _transact_then_mirror
