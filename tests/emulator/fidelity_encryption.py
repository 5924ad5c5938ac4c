"""Encryption corrections: where moto 5.2.1 differs from DynamoDB and KMS so that plinth's
end-to-end checks of table encryption and `kms.key` could not be honest. Imported by
fidelity.py; each correction says what AWS does.
"""

from moto.dynamodb import responses as dynamodb_responses
from moto.dynamodb.models import dynamodb_backends
from moto.dynamodb.models.table import Table
from moto.kms import models as kms_models
from moto.core.exceptions import JsonRESTError


class KMSInvalidStateException(JsonRESTError):
    code = 400

    def __init__(self, message: str):
        super().__init__("KMSInvalidStateException", message)


def _key_arn(account_id: str, region: str, key_id: str | None) -> str | None:
    """The ARN of a key named by id, alias or ARN (None when KMS does not know it)."""
    if not key_id:
        return None
    kms = kms_models.kms_backends[account_id][region]
    try:
        return kms.describe_key(key_id).arn
    except Exception:  # noqa: BLE001 - an unknown key stays as given
        return key_id


# --- 1. SSEDescription names the key by its ARN ------------------------------------------
# DynamoDB's DescribeTable reports `KMSMasterKeyArn` as the key's full ARN, whether the
# table was given the key's id, ARN or alias, or none (the AWS managed aws/dynamodb key).
# moto echoes what it was given, and for the managed key its bare id.
_describe = Table.describe


def _describe_with_key_arn(self, *args, **kwargs):
    results = _describe(self, *args, **kwargs)
    for value in results.values():
        sse = value.get("SSEDescription") if isinstance(value, dict) else None
        if sse and sse.get("KMSMasterKeyArn"):
            sse["KMSMasterKeyArn"] = _key_arn(self.account_id, self.region_name,
                                              sse["KMSMasterKeyArn"])
    return results


Table.describe = _describe_with_key_arn


# --- 2. UpdateTable changes the encryption ------------------------------------------------
# UpdateTable's SSESpecification switches a table between the AWS owned key (Enabled:
# false) and KMS keys. moto ignores the parameter.
_update_table = dynamodb_responses.DynamoHandler.update_table


def _update_table_with_sse(self):
    sse = self.body.get("SSESpecification")
    if sse is not None:
        backend = dynamodb_backends[self.current_account][self.region]
        table = backend.get_table(self.body["TableName"])
        if sse.get("Enabled"):
            spec = dict(sse)
            if "KMSMasterKeyId" not in spec:
                spec["KMSMasterKeyId"] = table._get_default_encryption_key(
                    self.current_account, self.region)
            table.sse_specification = spec
        else:
            table.sse_specification = None
    return _update_table(self)


dynamodb_responses.DynamoHandler.update_table = _update_table_with_sse


# --- 3. A key pending deletion cannot be scheduled again ---------------------------------
# ScheduleKeyDeletion of a key already PendingDeletion answers KMSInvalidStateException
# ("... is pending deletion"); moto schedules it again with a new date.
_schedule = kms_models.KmsBackend.schedule_key_deletion


def _schedule_once(self, key_id, pending_window_in_days):
    key = self.keys.get(self.any_id_to_key_id(key_id))
    if key is not None and key.key_state == "PendingDeletion":
        raise KMSInvalidStateException(f"{key.arn} is pending deletion.")
    return _schedule(self, key_id, pending_window_in_days)


kms_models.KmsBackend.schedule_key_deletion = _schedule_once


# --- 4. A log group's key changes in place -----------------------------------------------
# CloudWatch Logs' AssociateKmsKey and DisassociateKmsKey set and clear the key a group's
# new events are encrypted with (the group stays). moto 5.2.1 has neither operation.
from moto.logs import responses as logs_responses  # noqa: E402
from moto.logs.exceptions import ResourceNotFoundException  # noqa: E402


def _group(handler):
    group = handler.logs_backend.groups.get(handler._get_param("logGroupName"))
    if group is None:
        raise ResourceNotFoundException()
    return group


def _associate_kms_key(self):
    _group(self).kms_key_id = self._get_param("kmsKeyId")
    return ""


def _disassociate_kms_key(self):
    _group(self).kms_key_id = None
    return ""


logs_responses.LogsResponse.associate_kms_key = _associate_kms_key
logs_responses.LogsResponse.disassociate_kms_key = _disassociate_kms_key
