"""Which IAM action (`s3:GetObject`, ...) each S3 operation needs: the one table authz reads.

Operations not listed need `s3:<Operation>`, which is AWS's action name for most bucket
sub-resource operations (PutBucketVersioning, GetObjectTagging, ...). Actions are compared
case-insensitively, as IAM does.
"""

from __future__ import annotations

from collections.abc import Mapping

PER_KEY = None  # DeleteObjects checks s3:DeleteObject for every key itself

ACTIONS: dict[str, str | None] = {
    "ListBuckets": "s3:ListAllMyBuckets",
    "CreateBucket": "s3:CreateBucket",
    "DeleteBucket": "s3:DeleteBucket",
    "HeadBucket": "s3:ListBucket",
    "GetBucketLocation": "s3:GetBucketLocation",
    "ListObjects": "s3:ListBucket",
    "ListObjectsV2": "s3:ListBucket",
    "ListObjectVersions": "s3:ListBucketVersions",
    "ListMultipartUploads": "s3:ListBucketMultipartUploads",
    "PutObject": "s3:PutObject",
    "CopyObject": "s3:PutObject",
    "PostObject": "s3:PutObject",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "UploadPartCopy": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "AbortMultipartUpload": "s3:AbortMultipartUpload",
    "ListParts": "s3:ListMultipartUploadParts",
    "GetObject": "s3:GetObject",
    "HeadObject": "s3:GetObject",
    "GetObjectAttributes": "s3:GetObject",
    "SelectObjectContent": "s3:GetObject",
    "DeleteObject": "s3:DeleteObject",
    "DeleteObjects": PER_KEY,
    "GetBucketAcl": "s3:GetBucketAcl",
    "PutBucketAcl": "s3:PutBucketAcl",
    "GetObjectAcl": "s3:GetObjectAcl",
    "PutObjectAcl": "s3:PutObjectAcl",
    "GetBucketPolicy": "s3:GetBucketPolicy",
    "PutBucketPolicy": "s3:PutBucketPolicy",
    "DeleteBucketPolicy": "s3:DeleteBucketPolicy",
    "GetBucketPolicyStatus": "s3:GetBucketPolicyStatus",
    "GetBucketCors": "s3:GetBucketCORS",
    "PutBucketCors": "s3:PutBucketCORS",
    "DeleteBucketCors": "s3:PutBucketCORS",
    "GetBucketPublicAccessBlock": "s3:GetBucketPublicAccessBlock",
    "PutBucketPublicAccessBlock": "s3:PutBucketPublicAccessBlock",
    "DeleteBucketPublicAccessBlock": "s3:PutBucketPublicAccessBlock",
    "GetBucketOwnershipControls": "s3:GetBucketOwnershipControls",
    "PutBucketOwnershipControls": "s3:PutBucketOwnershipControls",
    "DeleteBucketOwnershipControls": "s3:PutBucketOwnershipControls",
    "DeleteBucketTagging": "s3:PutBucketTagging",
    "GetBucketLifecycle": "s3:GetLifecycleConfiguration",
    "PutBucketLifecycle": "s3:PutLifecycleConfiguration",
    "DeleteBucketLifecycle": "s3:PutLifecycleConfiguration",
    "GetBucketAccelerate": "s3:GetAccelerateConfiguration",
    "PutBucketAccelerate": "s3:PutAccelerateConfiguration",
    "GetBucketReplication": "s3:GetReplicationConfiguration",
    "PutBucketReplication": "s3:PutReplicationConfiguration",
    "DeleteBucketReplication": "s3:PutReplicationConfiguration",
    "GetBucketNotification": "s3:GetBucketNotification",
    "PutBucketNotification": "s3:PutBucketNotification",
    "GetBucketEncryption": "s3:GetEncryptionConfiguration",
    "PutBucketEncryption": "s3:PutEncryptionConfiguration",
    "DeleteBucketEncryption": "s3:PutEncryptionConfiguration",
    "GetBucketObjectLock": "s3:GetBucketObjectLockConfiguration",
    "PutBucketObjectLock": "s3:PutBucketObjectLockConfiguration",
}

# With ?versionId= these operations need the version-specific action.
VERSIONED = {
    "s3:GetObject": "s3:GetObjectVersion",
    "s3:DeleteObject": "s3:DeleteObjectVersion",
    "s3:GetObjectAcl": "s3:GetObjectVersionAcl",
    "s3:PutObjectAcl": "s3:PutObjectVersionAcl",
    "s3:GetObjectTagging": "s3:GetObjectVersionTagging",
    "s3:PutObjectTagging": "s3:PutObjectVersionTagging",
    "s3:DeleteObjectTagging": "s3:DeleteObjectVersionTagging",
}


def action_for(operation: str, query: Mapping[str, str]) -> str | None:
    """The action `operation` needs (None: the handler checks per key)."""
    action = ACTIONS.get(operation, f"s3:{operation}")
    if action is not None and "versionId" in query:
        action = VERSIONED.get(action, action)
    return action
