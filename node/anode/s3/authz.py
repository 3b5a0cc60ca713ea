"""The authorization decision: may this caller perform this S3 action on this resource?

Pure: the caller, the action, the bucket's policy/ACL/PublicAccessBlock/ownership settings and
the object's owner and ACL go in, a yes or no comes out. The order is AWS's:

1. Anode's root user (the operator's account) may do anything.
2. An explicit Deny in the bucket policy wins over everything, even over the bucket owner,
   except that the bucket owner can always manage the policy itself (no lock-out).
3. An Allow in the bucket policy grants (ignored for other users when RestrictPublicBuckets is
   on and the policy is public).
4. Otherwise the owner decides: a bucket-level action (listing, writing keys, bucket settings) is
   the bucket owner's, an action on an existing object is its owner's (the bucket owner under
   BucketOwnerEnforced), and the bucket or object ACL grants the rest (unless ACLs are disabled
   by BucketOwnerEnforced; public grants are ignored under IgnorePublicAcls).

Each Anode user is its own account (its canonical id is `owner_id(name)`), so a grant to another
user is a cross-account grant and nothing is shared unless an ACL or the policy says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import acl as A
from .policy import ALLOW, DENY, Identity, Policy, load_policy

BUCKET_OWNER_ENFORCED = "BucketOwnerEnforced"

# ACL permission needed on the bucket for a bucket-level action (AWS "Mapping of ACL permissions
# and access policy permissions").
BUCKET_ACL_ACTIONS = {
    "s3:ListBucket": A.READ,
    "s3:ListBucketVersions": A.READ,
    "s3:ListBucketMultipartUploads": A.READ,
    "s3:PutObject": A.WRITE,
    "s3:DeleteObject": A.WRITE,
    "s3:DeleteObjectVersion": A.WRITE,
    "s3:AbortMultipartUpload": A.WRITE,
    "s3:ListMultipartUploadParts": A.WRITE,
    "s3:GetBucketAcl": A.READ_ACP,
    "s3:PutBucketAcl": A.WRITE_ACP,
}

# Actions on a key that the bucket (not the object's owner) governs: writing and deleting keys.
BUCKET_WRITE_ACTIONS = frozenset(
    a for a, p in BUCKET_ACL_ACTIONS.items() if p == A.WRITE)

# ACL permission needed on the object for an action on an existing object.
OBJECT_ACL_ACTIONS = {
    "s3:GetObject": A.READ,
    "s3:GetObjectVersion": A.READ,
    "s3:GetObjectTorrent": A.READ,
    "s3:GetObjectAcl": A.READ_ACP,
    "s3:GetObjectVersionAcl": A.READ_ACP,
    "s3:PutObjectAcl": A.WRITE_ACP,
    "s3:PutObjectVersionAcl": A.WRITE_ACP,
}

# The bucket owner may always manage the policy, so a Deny cannot lock it out for good.
POLICY_ACTIONS = frozenset({"s3:GetBucketPolicy", "s3:PutBucketPolicy", "s3:DeleteBucketPolicy"})


@dataclass(frozen=True)
class Caller:
    """The authenticated user (or anonymous: `identity.name is None`)."""

    identity: Identity
    is_root: bool = False


@dataclass(frozen=True)
class BucketAccess:
    """Everything about a bucket that access decisions read."""

    name: str
    owner: A.Grantee  # {"id", "name"}
    policy: Policy | None = None
    acl: A.Acl | None = None
    public_access_block: Mapping[str, bool] = field(default_factory=dict)
    ownership: str | None = None

    def blocks(self, setting: str) -> bool:
        return bool(self.public_access_block.get(setting))

    @property
    def acls_disabled(self) -> bool:
        return self.ownership == BUCKET_OWNER_ENFORCED


@dataclass(frozen=True)
class ObjectAccess:
    """The object an object-level action is about; `owner` None when no such object exists."""

    key: str
    owner: A.Grantee | None = None
    acl: A.Acl | None = None


def arn(bucket: str, key: str | None = None) -> str:
    return f"arn:aws:s3:::{bucket}" if key is None else f"arn:aws:s3:::{bucket}/{key}"


def decide(caller: Caller, action: str, bucket: BucketAccess, obj: ObjectAccess | None = None,
           context: Mapping[str, Sequence[str]] | None = None) -> bool:
    """True if `caller` may perform `action` on the bucket (obj None) or on `obj` in it."""
    if caller.is_root:
        return True
    who = caller.identity
    context = context or {}
    is_bucket_owner = not who.anonymous and who.canonical_id == bucket.owner["id"]
    if bucket.policy is not None:
        restricted = (bucket.blocks("RestrictPublicBuckets") and bucket.policy.is_public
                      and not is_bucket_owner)
        verdict = bucket.policy.evaluate(
            who, action, arn(bucket.name, obj.key if obj else None), context,
            allows=not restricted)
        if verdict == DENY:
            return is_bucket_owner and action in POLICY_ACTIONS
        if verdict == ALLOW:
            return True
    ignore_public = bucket.blocks("IgnorePublicAcls")
    caller_id = None if who.anonymous else who.canonical_id
    if obj is not None and action not in BUCKET_WRITE_ACTIONS:
        owner = obj.owner if obj.owner is not None and not bucket.acls_disabled else bucket.owner
        if who.canonical_id == owner["id"]:  # anonymous callers own what anonymous callers wrote
            return True
        if bucket.acls_disabled or obj.owner is None:
            return False
        permission = OBJECT_ACL_ACTIONS.get(action)
        granted = A.permissions(obj.acl or A.private(owner), canonical_id=caller_id,
                                ignore_public=ignore_public)
        return permission is not None and permission in granted
    if is_bucket_owner:
        return True
    if bucket.acls_disabled:
        return False
    permission = BUCKET_ACL_ACTIONS.get(action)
    granted = A.permissions(bucket.acl or A.private(bucket.owner), canonical_id=caller_id,
                            ignore_public=ignore_public)
    return permission is not None and permission in granted


def is_public(bucket: BucketAccess) -> bool:
    """GetBucketPolicyStatus: a public policy, or a public ACL that is not ignored."""
    if bucket.policy is not None and bucket.policy.is_public:
        return True
    return (not bucket.acls_disabled and not bucket.blocks("IgnorePublicAcls")
            and A.is_public(bucket.acl))


def bucket_access(name: str, record: Mapping[str, Any], owner_id: str) -> BucketAccess:
    """A BucketAccess from a bucket record (`B/<bucket>`) and its owner's canonical id."""
    text = record.get("policy")
    return BucketAccess(
        name=name,
        owner=A.user(owner_id, record["owner"]),
        policy=load_policy(text, name) if text else None,
        acl=record.get("acl"),
        public_access_block=record.get("pab") or {},
        ownership=record.get("ownership"),
    )
