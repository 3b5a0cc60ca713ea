"""S3 operation handlers, one module per family; `HANDLERS` maps operation names to them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from ..context import Context
from . import (
    acl,
    bucket,
    copy,
    cors,
    delete,
    get,
    list,
    multipart,
    objectlock,
    policy,
    put,
    select,
    tagging,
    versioning,
)

Handler = Callable[[Context], Awaitable[web.StreamResponse]]

HANDLERS: dict[str, Handler] = {
    "ListBuckets": bucket.list_buckets,
    "CreateBucket": bucket.create_bucket,
    "DeleteBucket": bucket.delete_bucket,
    "HeadBucket": bucket.head_bucket,
    "GetBucketLocation": bucket.get_bucket_location,
    "PutObject": put.put_object,
    "GetObject": get.get_object,
    "HeadObject": get.head_object,
    "CopyObject": copy.copy_object,
    "DeleteObject": delete.delete_object,
    "DeleteObjects": delete.delete_objects,
    "ListObjects": list.list_objects,
    "ListObjectsV2": list.list_objects_v2,
    "CreateMultipartUpload": multipart.create_multipart_upload,
    "UploadPart": multipart.upload_part,
    "UploadPartCopy": multipart.upload_part_copy,
    "CompleteMultipartUpload": multipart.complete_multipart_upload,
    "AbortMultipartUpload": multipart.abort_multipart_upload,
    "ListParts": multipart.list_parts,
    "ListMultipartUploads": multipart.list_multipart_uploads,
    "SelectObjectContent": select.select_object_content,
    # access control and CORS
    "GetBucketAcl": acl.get_bucket_acl,
    "PutBucketAcl": acl.put_bucket_acl,
    "GetObjectAcl": acl.get_object_acl,
    "PutObjectAcl": acl.put_object_acl,
    "PutBucketPolicy": policy.put_bucket_policy,
    "GetBucketPolicy": policy.get_bucket_policy,
    "DeleteBucketPolicy": policy.delete_bucket_policy,
    "GetBucketPolicyStatus": policy.get_bucket_policy_status,
    "PutBucketPublicAccessBlock": policy.put_public_access_block,
    "GetBucketPublicAccessBlock": policy.get_public_access_block,
    "DeleteBucketPublicAccessBlock": policy.delete_public_access_block,
    "PutBucketOwnershipControls": policy.put_bucket_ownership_controls,
    "GetBucketOwnershipControls": policy.get_bucket_ownership_controls,
    "DeleteBucketOwnershipControls": policy.delete_bucket_ownership_controls,
    "PutBucketCors": cors.put_bucket_cors,
    "GetBucketCors": cors.get_bucket_cors,
    "DeleteBucketCors": cors.delete_bucket_cors,
    "PreflightCors": cors.preflight,
    "PutBucketVersioning": versioning.put_bucket_versioning,
    "GetBucketVersioning": versioning.get_bucket_versioning,
    "ListObjectVersions": versioning.list_object_versions,
    "PutObjectTagging": tagging.put_object_tagging,
    "GetObjectTagging": tagging.get_object_tagging,
    "DeleteObjectTagging": tagging.delete_object_tagging,
    "PutBucketTagging": tagging.put_bucket_tagging,
    "GetBucketTagging": tagging.get_bucket_tagging,
    "DeleteBucketTagging": tagging.delete_bucket_tagging,
    # object lock
    "PutBucketObjectLock": objectlock.put_bucket_object_lock,
    "GetBucketObjectLock": objectlock.get_bucket_object_lock,
    "PutObjectRetention": objectlock.put_object_retention,
    "GetObjectRetention": objectlock.get_object_retention,
    "PutObjectLegalHold": objectlock.put_object_legal_hold,
    "GetObjectLegalHold": objectlock.get_object_legal_hold,
}
