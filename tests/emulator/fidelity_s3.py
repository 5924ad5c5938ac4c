"""S3 corrections: where moto 5.2.1 differs from S3 so that plinth's end-to-end checks of
`s3.bucket` could not be honest. Imported by fidelity.py; each correction says what S3 does.
"""

from moto.s3 import models
from moto.s3.responses import S3Response


# --- 1. GetBucketVersioning's answer -----------------------------------------------------
# S3 answers `<VersioningConfiguration>` (with `<Status>` once versioning was ever set, and
# empty before). moto answers a `<GetBucketVersioningResponse>` root, which an SDK that
# checks the root element (the Rust SDK does) cannot read at all.
def _get_bucket_versioning(self):
    status = self.backend.get_bucket_versioning(self.bucket_name)
    inner = f"<Status>{status}</Status>" if status else ""
    body = ('<?xml version="1.0" encoding="UTF-8"?>\n<VersioningConfiguration '
            f'xmlns="http://s3.amazonaws.com/doc/2006-03-01/">{inner}</VersioningConfiguration>')
    return 200, {"Content-Type": "application/xml"}, body


S3Response.get_bucket_versioning = _get_bucket_versioning


# --- 2. A deleted bucket's tags go with it -------------------------------------------------
# In S3 a bucket's tags are part of the bucket: a new bucket of the same name starts with
# none. moto keeps them in a tagging service keyed by ARN and never removes them, so a
# re-created bucket would carry the old owner tags.
_delete_bucket = models.S3Backend.delete_bucket


def _delete_bucket_and_tags(self, bucket_name):
    bucket = _delete_bucket(self, bucket_name)
    if bucket is not None:
        self.tagger.delete_all_tags_for_resource(bucket.arn)
    return bucket


models.S3Backend.delete_bucket = _delete_bucket_and_tags


# --- 3. What a new bucket has without being asked ----------------------------------------
# Since 2023 S3 gives every new bucket object ownership BucketOwnerEnforced (ACLs off) unless
# CreateBucket names another, and default encryption SSE-S3 (AES256, no bucket key);
# DeleteBucketEncryption goes back to SSE-S3, as no bucket is unencrypted. moto 5.2.1 gives a
# new bucket neither (GetBucketOwnershipControls and GetBucketEncryption answer "not found").
_SSE_S3 = {"Rule": {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"},
                    "BucketKeyEnabled": "false"}}
_create_bucket = models.S3Backend.create_bucket


def _create_bucket_with_defaults(self, bucket_name, region_name, *args, **kwargs):
    bucket = _create_bucket(self, bucket_name, region_name, *args, **kwargs)
    bucket.ownership_rule = "BucketOwnerEnforced"
    bucket.encryption = dict(_SSE_S3)
    return bucket


def _delete_bucket_encryption(self, bucket_name):
    self.get_bucket(bucket_name).encryption = dict(_SSE_S3)


models.S3Backend.create_bucket = _create_bucket_with_defaults
models.S3Backend.delete_bucket_encryption = _delete_bucket_encryption


# --- 4. A default retention has days or years, never both ---------------------------------
# GetObjectLockConfiguration's DefaultRetention carries the one period it was given (Days or
# Years). moto answers both, the other as 0, which S3 never reports (a period is at least 1).
from moto.core.responses import ActionResult  # noqa: E402


def _get_object_lock_configuration(self):
    enabled, mode, days, years = self.backend.get_object_lock_configuration(self.bucket_name)
    config = {"ObjectLockEnabled": "Enabled" if enabled else "Disabled"}
    if mode:
        retention = {"Mode": mode}
        if days:
            retention["Days"] = days
        if years:
            retention["Years"] = years
        config["Rule"] = {"DefaultRetention": retention}
    self.data["Action"] = "GetObjectLockConfiguration"
    return self.serialized(ActionResult({"ObjectLockConfiguration": config}))


S3Response.get_object_lock_configuration = _get_object_lock_configuration
