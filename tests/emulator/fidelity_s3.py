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
