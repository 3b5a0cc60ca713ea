"""Access control over S3: ACLs, bucket policies, PublicAccessBlock, ObjectOwnership, anonymous
access, and a matrix proving a second user (or anyone) gets exactly what it was granted."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from itertools import count

import botocore
import pytest
from botocore.exceptions import ClientError
from s3util import error_code

_names = count()
ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"


def user(node, name: str):
    """A client for user `name` (created once per node) and its canonical id."""
    keys = {"name": name, "access_key": f"{name.upper()}KEY", "secret_key": f"{name}-secret-key"}
    status, doc = node.admin("/users", method="POST", body=keys)
    assert status in (200, 201), doc
    return node.client(keys["access_key"], keys["secret_key"]), doc["owner_id"]


@pytest.fixture
def alice(node):
    return user(node, "acl-alice")


@pytest.fixture
def bob(node):
    return user(node, "acl-bob")


@pytest.fixture
def anon(node):
    return node.client(signature_version=botocore.UNSIGNED)


def new_bucket(client, **kwargs) -> str:
    name = f"acl-{os.getpid()}-{next(_names)}"
    client.create_bucket(Bucket=name, **kwargs)
    return name


def denied(call) -> bool:
    """True if `call` answers AccessDenied; any other outcome means access was granted."""
    try:
        call()
    except ClientError as exc:
        code = exc.response["Error"]["Code"]
        assert code != "SignatureDoesNotMatch"
        return code in ("AccessDenied", "403")
    return False


def policy_doc(*statements) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def arn(bucket: str, suffix: str = "") -> str:
    return f"arn:aws:s3:::{bucket}{suffix}"


# ---- the matrix -----------------------------------------------------------------------------

def _delete_objects(client, bucket, _acl):
    result = client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "k"}]})
    if any(e["Code"] == "AccessDenied" for e in result.get("Errors", [])):
        raise ClientError({"Error": {"Code": "AccessDenied"}}, "DeleteObjects")


OPERATIONS = {
    "list": lambda c, b, acl: c.list_objects_v2(Bucket=b),
    "head_bucket": lambda c, b, acl: c.head_bucket(Bucket=b),
    "get": lambda c, b, acl: c.get_object(Bucket=b, Key="k")["Body"].read(),
    "head": lambda c, b, acl: c.head_object(Bucket=b, Key="k"),
    "copy_out": lambda c, b, acl: c.copy_object(Bucket=b, Key="copy", CopySource=f"{b}/k"),
    "put": lambda c, b, acl: c.put_object(Bucket=b, Key="new", Body=b"x"),
    "multipart": lambda c, b, acl: c.create_multipart_upload(Bucket=b, Key="mp"),
    "get_bucket_acl": lambda c, b, acl: c.get_bucket_acl(Bucket=b),
    "put_bucket_acl": lambda c, b, acl: c.put_bucket_acl(Bucket=b, ACL=acl),
    "get_object_acl": lambda c, b, acl: c.get_object_acl(Bucket=b, Key="k"),
    "put_object_acl": lambda c, b, acl: c.put_object_acl(Bucket=b, Key="k", ACL="public-read"),
    "get_policy": lambda c, b, acl: c.get_bucket_policy(Bucket=b),
    "policy_status": lambda c, b, acl: c.get_bucket_policy_status(Bucket=b),
    "get_cors": lambda c, b, acl: c.get_bucket_cors(Bucket=b),
    "delete_bucket": lambda c, b, acl: c.delete_bucket(Bucket=b),
    "delete_objects": _delete_objects,
    "delete": lambda c, b, acl: c.delete_object(Bucket=b, Key="k"),
}
READS = {"list", "head_bucket", "get", "head"}
EVERYTHING = set(OPERATIONS)

# setup -> (bucket canned ACL, object canned ACL, policy statements(bucket, bob arn), allowed
# operations for bob, for anonymous, and operations denied even to the owner)
SETUPS = {
    "private": ("private", "private", None, set(), set(), set()),
    "public-read": ("public-read", "public-read", None, READS, READS, set()),
    "policy-granted": (
        "private", "private",
        lambda b, who: [
            {"Effect": "Allow", "Principal": {"AWS": [who]}, "Action": ["s3:ListBucket"],
             "Resource": arn(b)},
            {"Effect": "Allow", "Principal": {"AWS": who},
             "Action": ["s3:GetObject", "s3:PutObject"], "Resource": arn(b, "/*")}],
        READS | {"put", "multipart", "copy_out"}, set(), set()),
    "explicit-deny": (
        "public-read-write", "public-read",
        lambda b, who: [{"Effect": "Deny", "Principal": "*",
                         "Action": ["s3:GetObject", "s3:DeleteObject"],
                         "Resource": arn(b, "/*")}],
        {"list", "head_bucket", "put", "multipart"},
        {"list", "head_bucket", "put", "multipart"},
        {"get", "head", "copy_out", "delete", "delete_objects"}),
}


@pytest.mark.parametrize("setup", SETUPS)
def test_access_matrix(node, alice, bob, anon, setup):
    bucket_acl, object_acl, statements, bob_may, anon_may, owner_denied = SETUPS[setup]
    owner, _ = alice
    other, _ = bob
    bucket = new_bucket(owner, ACL=bucket_acl)
    if statements:
        owner.put_bucket_policy(Bucket=bucket,
                                Policy=policy_doc(*statements(bucket, "arn:aws:iam::1:user/"
                                                                      "acl-bob")))
    expected = {"owner": EVERYTHING - owner_denied, "other": bob_may, "anonymous": anon_may}
    for who, client in (("other", other), ("anonymous", anon), ("owner", owner)):
        owner.put_object(Bucket=bucket, Key="k", Body=b"secret", ACL=object_acl)
        got = set()
        for name, call in OPERATIONS.items():
            if name == "delete_bucket" and who == "owner":
                continue  # would succeed only on an empty bucket; covered below
            if not denied(lambda: call(client, bucket, bucket_acl)):  # noqa: B023
                got.add(name)
        want = expected[who] - ({"delete_bucket"} if who == "owner" else set())
        assert got == want, (setup, who, sorted(got ^ want))


def test_second_user_sees_nothing_of_the_first(node, alice, bob):
    owner, _ = alice
    other, _ = bob
    bucket = new_bucket(owner)
    owner.put_object(Bucket=bucket, Key="k", Body=b"v")
    assert bucket not in [b["Name"] for b in other.list_buckets()["Buckets"]]
    assert bucket in [b["Name"] for b in owner.list_buckets()["Buckets"]]
    mine = new_bucket(other)
    with pytest.raises(ClientError) as exc:
        other.copy_object(Bucket=mine, Key="stolen", CopySource=f"{bucket}/k")
    assert error_code(exc) == ("AccessDenied", 403)
    upload = owner.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    for call in (lambda: other.list_parts(Bucket=bucket, Key="mp", UploadId=upload),
                 lambda: other.upload_part(Bucket=bucket, Key="mp", UploadId=upload,
                                           PartNumber=1, Body=b"x"),
                 lambda: other.abort_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload),
                 lambda: other.list_multipart_uploads(Bucket=bucket),
                 lambda: other.put_bucket_policy(Bucket=bucket, Policy=policy_doc(
                     {"Effect": "Allow", "Principal": "*", "Action": "s3:*",
                      "Resource": arn(bucket, "/*")})),
                 lambda: other.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [
                     {"AllowedMethods": ["GET"], "AllowedOrigins": ["*"]}]}),
                 lambda: other.put_public_access_block(
                     Bucket=bucket, PublicAccessBlockConfiguration={"BlockPublicAcls": False}),
                 lambda: other.delete_public_access_block(Bucket=bucket),
                 lambda: other.get_bucket_ownership_controls(Bucket=bucket),
                 lambda: other.get_bucket_location(Bucket=bucket)):
        with pytest.raises(ClientError) as exc:
            call()
        assert error_code(exc) == ("AccessDenied", 403)
    # nonexistent keys do not leak either: 403, not 404, without list permission
    with pytest.raises(ClientError) as exc:
        other.head_object(Bucket=bucket, Key="missing")
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_anonymous_requests(node, alice, anon):
    owner, _ = alice
    with pytest.raises(ClientError) as exc:
        anon.list_buckets()
    assert error_code(exc) == ("AccessDenied", 403)
    with pytest.raises(ClientError) as exc:
        anon.create_bucket(Bucket=f"anon-{os.getpid()}")
    assert error_code(exc) == ("AccessDenied", 403)
    bucket = new_bucket(owner, ACL="public-read")
    owner.put_object(Bucket=bucket, Key="open", Body=b"hello", ACL="public-read")
    owner.put_object(Bucket=bucket, Key="closed", Body=b"no")
    with urllib.request.urlopen(f"{node.s3_url}/{bucket}/open") as response:
        assert response.read() == b"hello"
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(f"{node.s3_url}/{bucket}/closed")
    assert exc.value.code == 403
    with pytest.raises(urllib.error.HTTPError) as exc:  # may list, so a missing key is a 404
        urllib.request.urlopen(f"{node.s3_url}/{bucket}/missing")
    assert exc.value.code == 404
    keys = [o["Key"] for o in anon.list_objects(Bucket=bucket)["Contents"]]
    assert keys == ["closed", "open"]
    writable = new_bucket(owner, ACL="public-read-write")
    anon.put_object(Bucket=writable, Key="drop", Body=b"from anyone")
    assert anon.get_object(Bucket=writable, Key="drop")["Body"].read() == b"from anyone"
    with pytest.raises(ClientError) as exc:  # AWS: response-* overrides need a signature
        anon.get_object(Bucket=bucket, Key="open", ResponseContentType="text/html")
    assert error_code(exc) == ("InvalidRequest", 400)
    got = owner.get_object(Bucket=bucket, Key="open", ResponseContentType="text/html")
    assert got["ContentType"] == "text/html"


# ---- ACLs -----------------------------------------------------------------------------------


def test_canned_acls_read_back_as_grants(node, alice, bob):
    owner, owner_id = alice
    bucket = new_bucket(owner, ACL="public-read")
    acl = owner.get_bucket_acl(Bucket=bucket)
    assert acl["Owner"] == {"ID": owner_id, "DisplayName": "acl-alice"}
    assert acl["Grants"] == [
        {"Grantee": {"ID": owner_id, "DisplayName": "acl-alice", "Type": "CanonicalUser"},
         "Permission": "FULL_CONTROL"},
        {"Grantee": {"URI": ALL_USERS, "Type": "Group"}, "Permission": "READ"}]
    owner.put_bucket_acl(Bucket=bucket, ACL="private")
    assert len(owner.get_bucket_acl(Bucket=bucket)["Grants"]) == 1
    owner.put_object(Bucket=bucket, Key="k", Body=b"v", ACL="authenticated-read")
    grants = owner.get_object_acl(Bucket=bucket, Key="k")["Grants"]
    assert grants[1] == {"Grantee": {"Type": "Group", "URI":
                                     "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"},
                         "Permission": "READ"}
    other, _ = bob
    assert other.get_object(Bucket=bucket, Key="k")["Body"].read() == b"v"


def test_grants_by_header_and_by_xml(node, alice, bob):
    owner, _ = alice
    other, other_id = bob
    bucket = new_bucket(owner, GrantRead=f'id="{other_id}"')
    assert other.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
    with pytest.raises(ClientError):
        other.put_object(Bucket=bucket, Key="x", Body=b"x")
    policy = owner.get_bucket_acl(Bucket=bucket)
    policy.pop("ResponseMetadata")
    policy["Grants"].append({"Grantee": {"ID": other_id, "Type": "CanonicalUser"},
                             "Permission": "WRITE"})
    owner.put_bucket_acl(Bucket=bucket, AccessControlPolicy=policy)
    other.put_object(Bucket=bucket, Key="x", Body=b"x")
    perms = sorted(g["Permission"] for g in owner.get_bucket_acl(Bucket=bucket)["Grants"])
    assert perms == ["READ", "WRITE"]  # header grants replace the ACL, owner included
    # bob owns what he wrote; alice (bucket owner) may delete it but not read it
    assert other.get_object_acl(Bucket=bucket, Key="x")["Owner"]["ID"] == other_id
    with pytest.raises(ClientError) as exc:
        owner.get_object(Bucket=bucket, Key="x")
    assert error_code(exc) == ("AccessDenied", 403)
    other.put_object(Bucket=bucket, Key="y", Body=b"y", ACL="bucket-owner-full-control")
    assert owner.get_object(Bucket=bucket, Key="y")["Body"].read() == b"y"
    owner.delete_object(Bucket=bucket, Key="x")


def test_grants_by_email_address_name_the_user_with_that_address(node, alice):
    owner, owner_id = alice
    keys = {"name": "acl-carol", "access_key": "ACLCAROLKEY", "secret_key": "carol-secret-key",
            "email": "Carol@Example.com"}
    status, doc = node.admin("/users", method="POST", body=keys)
    assert status in (200, 201) and doc["email"] == "Carol@Example.com", doc
    carol = node.client(keys["access_key"], keys["secret_key"])
    bucket = new_bucket(owner)
    owner.put_object(Bucket=bucket, Key="k", Body=b"v")
    assert denied(lambda: carol.list_objects_v2(Bucket=bucket))
    owner.put_bucket_acl(Bucket=bucket, GrantRead='emailAddress="carol@example.com"')
    grants = owner.get_bucket_acl(Bucket=bucket)["Grants"]  # kept as the account, as on AWS
    assert grants == [{"Grantee": {"ID": doc["owner_id"], "DisplayName": "acl-carol",
                                   "Type": "CanonicalUser"}, "Permission": "READ"}]
    assert carol.list_objects_v2(Bucket=bucket)["KeyCount"] == 1
    policy = {"Owner": {"ID": owner_id}, "Grants": [
        {"Grantee": {"EmailAddress": "carol@example.com", "Type": "AmazonCustomerByEmail"},
         "Permission": "READ"}]}
    owner.put_object_acl(Bucket=bucket, Key="k", AccessControlPolicy=policy)
    assert carol.get_object(Bucket=bucket, Key="k")["Body"].read() == b"v"
    with pytest.raises(ClientError) as exc:
        owner.put_bucket_acl(Bucket=bucket, GrantRead='emailAddress="nobody@example.com"')
    assert error_code(exc) == ("UnresolvableGrantByEmailAddress", 400)
    status, doc = node.admin("/users", method="POST", body={"name": "x", "email": "no-at-sign"})
    assert status == 400


def test_acl_errors(node, alice):
    owner, owner_id = alice
    bucket = new_bucket(owner)
    with pytest.raises(ClientError) as exc:
        owner.put_bucket_acl(Bucket=bucket, ACL="everyone-please")
    assert error_code(exc) == ("InvalidArgument", 400)
    with pytest.raises(ClientError) as exc:
        owner.put_bucket_acl(Bucket=bucket, GrantRead='id="' + "0" * 64 + '"')
    assert error_code(exc) == ("InvalidArgument", 400)
    with pytest.raises(ClientError) as exc:
        owner.put_bucket_acl(Bucket=bucket, GrantRead='emailAddress="a@example.com"')
    assert error_code(exc) == ("UnresolvableGrantByEmailAddress", 400)
    with pytest.raises(ClientError) as exc:
        owner.put_bucket_acl(Bucket=bucket, ACL="private", GrantRead=f'uri="{ALL_USERS}"')
    assert error_code(exc) == ("InvalidRequest", 400)
    bad = {"Owner": {"ID": owner_id},
           "Grants": [{"Grantee": {"ID": owner_id, "Type": "CanonicalUser"},
                       "Permission": "EVERYTHING"}]}
    with pytest.raises(ClientError) as exc:
        owner.put_bucket_acl(Bucket=bucket, AccessControlPolicy=bad)
    assert error_code(exc) == ("MalformedACLError", 400)
    no_owner = {"Owner": {}, "Grants": owner.get_bucket_acl(Bucket=bucket)["Grants"]}
    with pytest.raises(ClientError) as exc:
        owner.put_bucket_acl(Bucket=bucket, AccessControlPolicy=no_owner)
    assert error_code(exc) == ("MalformedACLError", 400)
    revoke_all = {"Owner": {"ID": owner_id}, "Grants": []}
    owner.put_bucket_acl(Bucket=bucket, AccessControlPolicy=revoke_all)
    assert owner.get_bucket_acl(Bucket=bucket)["Grants"] == []  # the owner keeps its access
    owner.put_bucket_acl(Bucket=bucket, ACL="private")
    with pytest.raises(ClientError) as exc:
        owner.get_object_acl(Bucket=bucket, Key="missing")
    assert error_code(exc) == ("NoSuchKey", 404)


# ---- bucket policies ------------------------------------------------------------------------


def test_bucket_policy_lifecycle_and_status(node, alice):
    owner, _ = alice
    bucket = new_bucket(owner)
    with pytest.raises(ClientError) as exc:
        owner.get_bucket_policy(Bucket=bucket)
    assert error_code(exc) == ("NoSuchBucketPolicy", 404)
    assert owner.get_bucket_policy_status(Bucket=bucket)["PolicyStatus"]["IsPublic"] is False
    text = policy_doc({"Sid": "read", "Effect": "Allow", "Principal": "*",
                       "Action": "s3:GetObject", "Resource": arn(bucket, "/*")})
    owner.put_bucket_policy(Bucket=bucket, Policy=text)
    assert owner.get_bucket_policy(Bucket=bucket)["Policy"] == text
    assert owner.get_bucket_policy_status(Bucket=bucket)["PolicyStatus"]["IsPublic"] is True
    owner.put_object(Bucket=bucket, Key="k", Body=b"public by policy")
    with urllib.request.urlopen(f"{node.s3_url}/{bucket}/k") as response:
        assert response.read() == b"public by policy"
    with pytest.raises(urllib.error.HTTPError) as missing:  # may not list: 403, not 404
        urllib.request.urlopen(f"{node.s3_url}/{bucket}/missing")
    assert missing.value.code == 403
    owner.delete_bucket_policy(Bucket=bucket)
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(f"{node.s3_url}/{bucket}/k")
    limited = policy_doc({"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                          "Resource": arn(bucket, "/*"),
                          "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}})
    owner.put_bucket_policy(Bucket=bucket, Policy=limited)
    assert owner.get_bucket_policy_status(Bucket=bucket)["PolicyStatus"]["IsPublic"] is False


@pytest.mark.parametrize("policy", [
    "{not json",
    '{"Version": "2012-10-17"}',
    json.dumps({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                               "Resource": "arn:aws:s3:::some-other-bucket/*"}]}),
    json.dumps({"Statement": [{"Effect": "Allow", "Principal": {"AWS": "no-such-user"},
                               "Action": "s3:GetObject", "Resource": "arn:aws:s3:::B/*"}]}),
    json.dumps({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "iam:Hack",
                               "Resource": "arn:aws:s3:::B/*"}]}),
])
def test_malformed_policy(node, alice, policy):
    owner, _ = alice
    bucket = new_bucket(owner)
    with pytest.raises(ClientError) as exc:
        owner.put_bucket_policy(Bucket=bucket, Policy=policy.replace(":::B/", f":::{bucket}/"))
    assert error_code(exc) == ("MalformedPolicy", 400)


def test_policy_conditions_prefix_source_ip_and_acl_header(node, alice, bob):
    owner, _ = alice
    other, _ = bob
    bucket = new_bucket(owner)
    owner.put_object(Bucket=bucket, Key="home/acl-bob/a", Body=b"a")
    owner.put_object(Bucket=bucket, Key="home/carol/c", Body=b"c")
    owner.put_bucket_policy(Bucket=bucket, Policy=policy_doc(
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::1:user/acl-bob"},
         "Action": "s3:ListBucket", "Resource": arn(bucket),
         "Condition": {"StringLike": {"s3:prefix": "home/${aws:username}/*"}}},
        {"Effect": "Allow", "Principal": {"AWS": "acl-bob"}, "Action": "s3:PutObject",
         "Resource": arn(bucket, "/*"),
         "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control"}}},
        {"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject",
         "Resource": arn(bucket, "/home/carol/*"),
         "Condition": {"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}}}))
    listed = other.list_objects_v2(Bucket=bucket, Prefix="home/acl-bob/")
    assert [o["Key"] for o in listed["Contents"]] == ["home/acl-bob/a"]
    for prefix in ("home/carol/", None):
        with pytest.raises(ClientError) as exc:
            other.list_objects_v2(Bucket=bucket, **({"Prefix": prefix} if prefix else {}))
        assert error_code(exc) == ("AccessDenied", 403)
    other.put_object(Bucket=bucket, Key="in", Body=b"x", ACL="bucket-owner-full-control")
    with pytest.raises(ClientError) as exc:
        other.put_object(Bucket=bucket, Key="in", Body=b"x")
    assert error_code(exc) == ("AccessDenied", 403)
    with pytest.raises(ClientError) as exc:  # the owner too: we connect from 127.0.0.1
        owner.get_object(Bucket=bucket, Key="home/carol/c")
    assert error_code(exc) == ("AccessDenied", 403)
    assert owner.get_object(Bucket=bucket, Key="home/acl-bob/a")["Body"].read() == b"a"


def test_deny_cannot_lock_the_owner_out_of_its_policy(node, alice):
    owner, _ = alice
    bucket = new_bucket(owner)
    owner.put_bucket_policy(Bucket=bucket, Policy=policy_doc(
        {"Effect": "Deny", "Principal": "*", "Action": "s3:*",
         "Resource": [arn(bucket), arn(bucket, "/*")]}))
    with pytest.raises(ClientError) as exc:
        owner.list_objects_v2(Bucket=bucket)
    assert error_code(exc) == ("AccessDenied", 403)
    owner.delete_bucket_policy(Bucket=bucket)
    assert owner.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


# ---- PublicAccessBlock ----------------------------------------------------------------------


def test_public_access_block(node, alice, anon):
    owner, _ = alice
    bucket = new_bucket(owner, ACL="public-read")
    with pytest.raises(ClientError) as exc:
        owner.get_public_access_block(Bucket=bucket)
    assert error_code(exc) == ("NoSuchPublicAccessBlockConfiguration", 404)
    assert anon.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
    owner.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
        "RestrictPublicBuckets": False})
    config = owner.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert config == {"BlockPublicAcls": True, "IgnorePublicAcls": True,
                      "BlockPublicPolicy": True, "RestrictPublicBuckets": False}
    with pytest.raises(ClientError) as exc:  # IgnorePublicAcls
        anon.list_objects_v2(Bucket=bucket)
    assert error_code(exc) == ("AccessDenied", 403)
    assert owner.get_bucket_policy_status(Bucket=bucket)["PolicyStatus"]["IsPublic"] is False
    for call in (lambda: owner.put_bucket_acl(Bucket=bucket, ACL="public-read-write"),
                 lambda: owner.put_object(Bucket=bucket, Key="k", Body=b"", ACL="public-read"),
                 lambda: owner.put_bucket_policy(Bucket=bucket, Policy=policy_doc(
                     {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                      "Resource": arn(bucket, "/*")}))):
        with pytest.raises(ClientError) as exc:
            call()
        assert error_code(exc) == ("AccessDenied", 403)
    owner.put_object(Bucket=bucket, Key="k", Body=b"", ACL="private")
    owner.delete_public_access_block(Bucket=bucket)
    assert anon.list_objects_v2(Bucket=bucket)["KeyCount"] == 1
    owner.put_bucket_policy(Bucket=bucket, Policy=policy_doc(
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
         "Resource": arn(bucket, "/*")}))
    assert anon.get_object(Bucket=bucket, Key="k")["Body"].read() == b""
    owner.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
        "RestrictPublicBuckets": True})
    with pytest.raises(ClientError) as exc:
        anon.get_object(Bucket=bucket, Key="k")
    assert error_code(exc) == ("AccessDenied", 403)


# ---- ObjectOwnership ------------------------------------------------------------------------


def test_bucket_owner_enforced_disables_acls(node, alice, bob):
    owner, owner_id = alice
    other, _ = bob
    bucket = new_bucket(owner, ACL="public-read-write")
    with pytest.raises(ClientError) as exc:
        owner.get_bucket_ownership_controls(Bucket=bucket)
    assert error_code(exc) == ("OwnershipControlsNotFoundError", 404)
    enforced = {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    with pytest.raises(ClientError) as exc:  # the bucket's public ACL must go first
        owner.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls=enforced)
    assert error_code(exc) == ("InvalidBucketAclWithObjectOwnership", 400)
    owner.put_bucket_acl(Bucket=bucket, ACL="private")
    owner.put_bucket_policy(Bucket=bucket, Policy=policy_doc(
        {"Effect": "Allow", "Principal": {"AWS": "acl-bob"}, "Action": "s3:PutObject",
         "Resource": arn(bucket, "/*")}))
    owner.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls=enforced)
    got = owner.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]
    assert got == enforced
    for call in (lambda: owner.put_bucket_acl(Bucket=bucket, ACL="public-read"),
                 lambda: owner.put_object(Bucket=bucket, Key="k", Body=b"", ACL="public-read"),
                 lambda: other.put_object(Bucket=bucket, Key="k", Body=b"", ACL="private")):
        with pytest.raises(ClientError) as exc:
            call()
        assert error_code(exc) == ("AccessControlListNotSupported", 400)
    other.put_object(Bucket=bucket, Key="bobs", Body=b"b", ACL="bucket-owner-full-control")
    other.put_object(Bucket=bucket, Key="bobs2", Body=b"b")
    acl = owner.get_object_acl(Bucket=bucket, Key="bobs")
    assert acl["Owner"]["ID"] == owner_id
    assert owner.get_object(Bucket=bucket, Key="bobs2")["Body"].read() == b"b"
    with pytest.raises(ClientError) as exc:  # bob wrote it but does not own it
        other.get_object(Bucket=bucket, Key="bobs2")
    assert error_code(exc) == ("AccessDenied", 403)
    owner.delete_bucket_ownership_controls(Bucket=bucket)
    with pytest.raises(ClientError) as exc:
        owner.get_bucket_ownership_controls(Bucket=bucket)
    assert error_code(exc) == ("OwnershipControlsNotFoundError", 404)


def test_create_bucket_with_object_ownership(node, alice):
    owner, _ = alice
    with pytest.raises(ClientError) as exc:
        new_bucket(owner, ACL="public-read", ObjectOwnership="BucketOwnerEnforced")
    assert error_code(exc) == ("InvalidBucketAclWithObjectOwnership", 400)
    bucket = new_bucket(owner, ObjectOwnership="BucketOwnerPreferred")
    rules = owner.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"]
    assert rules == [{"ObjectOwnership": "BucketOwnerPreferred"}]


def test_object_acl_grants_read_acp_and_write_acp(node, alice, bob):
    owner, _ = alice
    other, other_id = bob
    bucket = new_bucket(owner)
    owner.put_object(Bucket=bucket, Key="k", Body=b"v", GrantReadACP=f'id="{other_id}"')
    assert other.get_object_acl(Bucket=bucket, Key="k")["Grants"][0]["Permission"] == "READ_ACP"
    for call in (lambda: other.get_object(Bucket=bucket, Key="k"),
                 lambda: other.put_object_acl(Bucket=bucket, Key="k", ACL="public-read")):
        with pytest.raises(ClientError) as exc:
            call()
        assert error_code(exc) == ("AccessDenied", 403)
    owner.put_object_acl(Bucket=bucket, Key="k", GrantWriteACP=f'id="{other_id}"',
                         GrantRead=f'id="{other_id}"')
    other.put_object_acl(Bucket=bucket, Key="k", GrantRead=f'id="{other_id}"')
    assert other.get_object(Bucket=bucket, Key="k")["Body"].read() == b"v"
    with pytest.raises(ClientError) as exc:  # bob gave away his WRITE_ACP
        other.put_object_acl(Bucket=bucket, Key="k", ACL="public-read")
    assert error_code(exc) == ("AccessDenied", 403)


def test_expected_bucket_owner(node, alice):
    owner, owner_id = alice
    bucket = new_bucket(owner)
    owner.put_object(Bucket=bucket, Key="k", Body=b"v", ExpectedBucketOwner=owner_id)
    with pytest.raises(ClientError) as exc:
        owner.get_object(Bucket=bucket, Key="k", ExpectedBucketOwner="0" * 64)
    assert error_code(exc) == ("AccessDenied", 403)


def test_policy_may_name_principals_by_arn_account_or_canonical_id(node, alice, bob):
    owner, _ = alice
    other, other_id = bob
    bucket = new_bucket(owner)
    owner.put_object(Bucket=bucket, Key="k", Body=b"v")
    owner.put_bucket_policy(Bucket=bucket, Policy=policy_doc(
        {"Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam::tenant1:root", "123456789012"]},
         "Action": "s3:GetObject", "Resource": arn(bucket, "/*")},
        {"Effect": "Allow", "Principal": {"CanonicalUser": other_id},
         "Action": "s3:ListBucket", "Resource": arn(bucket)}))
    assert other.list_objects_v2(Bucket=bucket)["KeyCount"] == 1
    with pytest.raises(ClientError) as exc:
        other.get_object(Bucket=bucket, Key="k")
    assert error_code(exc) == ("AccessDenied", 403)


def test_policy_conditions_on_object_tags(node, alice, bob):
    owner, _ = alice
    other, _ = bob
    bucket = new_bucket(owner)
    owner.put_object(Bucket=bucket, Key="open", Body=b"o", Tagging="security=public")
    owner.put_object(Bucket=bucket, Key="closed", Body=b"c", Tagging="security=private")
    owner.put_bucket_policy(Bucket=bucket, Policy=policy_doc(
        {"Effect": "Allow", "Principal": {"AWS": "acl-bob"}, "Action": "s3:GetObject",
         "Resource": arn(bucket, "/*"),
         "Condition": {"StringEquals": {"s3:ExistingObjectTag/security": "public"}}},
        {"Effect": "Allow", "Principal": {"AWS": "acl-bob"}, "Action": "s3:PutObject",
         "Resource": arn(bucket, "/*"),
         "Condition": {"StringEquals": {"s3:RequestObjectTag/security": "public"}}}))
    assert other.get_object(Bucket=bucket, Key="open")["Body"].read() == b"o"
    with pytest.raises(ClientError) as exc:
        other.get_object(Bucket=bucket, Key="closed")
    assert error_code(exc) == ("AccessDenied", 403)
    other.put_object(Bucket=bucket, Key="new", Body=b"n", Tagging="security=public")
    with pytest.raises(ClientError) as exc:
        other.put_object(Bucket=bucket, Key="new", Body=b"n", Tagging="security=secret")
    assert error_code(exc) == ("AccessDenied", 403)


def test_acls_of_versions(node, alice, anon):
    owner, _ = alice
    bucket = new_bucket(owner)
    owner.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    old = owner.put_object(Bucket=bucket, Key="k", Body=b"old")["VersionId"]
    owner.put_object(Bucket=bucket, Key="k", Body=b"new")
    result = owner.put_object_acl(Bucket=bucket, Key="k", VersionId=old, ACL="public-read")
    assert result["ResponseMetadata"]["HTTPHeaders"]["x-amz-version-id"] == old
    assert len(owner.get_object_acl(Bucket=bucket, Key="k", VersionId=old)["Grants"]) == 2
    assert len(owner.get_object_acl(Bucket=bucket, Key="k")["Grants"]) == 1
    assert anon.get_object(Bucket=bucket, Key="k", VersionId=old)["Body"].read() == b"old"
    with pytest.raises(ClientError) as exc:
        anon.get_object(Bucket=bucket, Key="k")
    assert error_code(exc) == ("AccessDenied", 403)
    marker = owner.delete_object(Bucket=bucket, Key="k")["VersionId"]
    with pytest.raises(ClientError) as exc:
        owner.get_object_acl(Bucket=bucket, Key="k", VersionId=marker)
    assert error_code(exc) == ("MethodNotAllowed", 405)
    with pytest.raises(ClientError) as exc:
        owner.get_object_acl(Bucket=bucket, Key="k")
    assert error_code(exc) == ("NoSuchKey", 404)


def test_missing_key_is_404_to_a_caller_who_may_list_it_through_an_s3_prefix_condition(
        node, alice, bob):
    """AWS answers a GET/HEAD of a missing key with 404 to a caller allowed s3:ListBucket and 403
    to anyone else; a ListBucket narrowed by s3:prefix counts for the keys it may list (it was
    403 for every key)."""
    owner, _ = alice
    other, other_id = bob
    bucket = new_bucket(owner)
    owner.put_bucket_policy(Bucket=bucket, Policy=policy_doc(
        {"Effect": "Allow", "Principal": {"AWS": other_id}, "Action": "s3:ListBucket",
         "Resource": arn(bucket), "Condition": {"StringLike": {"s3:prefix": "home/*"}}},
        {"Effect": "Allow", "Principal": {"AWS": other_id}, "Action": "s3:GetObject",
         "Resource": arn(bucket, "/*")}))
    with pytest.raises(ClientError) as exc:
        other.get_object(Bucket=bucket, Key="home/missing")
    assert error_code(exc) == ("NoSuchKey", 404)
    with pytest.raises(ClientError) as exc:
        other.head_object(Bucket=bucket, Key="home/missing")
    assert error_code(exc)[1] == 404
    for key in ("elsewhere/missing", "home"):  # outside what it may list: nothing learned
        with pytest.raises(ClientError) as exc:
            other.get_object(Bucket=bucket, Key=key)
        assert error_code(exc) == ("AccessDenied", 403)


def test_policy_can_enforce_conditional_writes_and_deletes(node, alice, bob):
    """AWS's s3:if-none-match / s3:if-match condition keys ("Enforce conditional writes"): a
    bucket policy may refuse unconditional PUTs and DELETEs (the keys were unknown, so such a
    Deny refused every write)."""
    owner, _ = alice
    other, other_id = bob
    bucket = new_bucket(owner)
    owner.put_bucket_policy(Bucket=bucket, Policy=policy_doc(
        {"Effect": "Allow", "Principal": {"AWS": other_id},
         "Action": ["s3:PutObject", "s3:DeleteObject", "s3:GetObject"],
         "Resource": arn(bucket, "/*")},
        {"Effect": "Deny", "Principal": {"AWS": other_id}, "Action": "s3:PutObject",
         "Resource": arn(bucket, "/*"),
         "Condition": {"Null": {"s3:if-none-match": "true", "s3:if-match": "true"}}},
        {"Effect": "Deny", "Principal": {"AWS": other_id}, "Action": "s3:DeleteObject",
         "Resource": arn(bucket, "/*"), "Condition": {"Null": {"s3:if-match": "true"}}}))
    with pytest.raises(ClientError) as exc:
        other.put_object(Bucket=bucket, Key="k", Body=b"1")
    assert error_code(exc) == ("AccessDenied", 403)
    etag = other.put_object(Bucket=bucket, Key="k", Body=b"1", IfNoneMatch="*")["ETag"]
    etag = other.put_object(Bucket=bucket, Key="k", Body=b"2", IfMatch=etag)["ETag"]
    with pytest.raises(ClientError) as exc:
        other.delete_object(Bucket=bucket, Key="k")
    assert error_code(exc) == ("AccessDenied", 403)
    other.delete_object(Bucket=bucket, Key="k", IfMatch=etag)
    assert owner.list_objects_v2(Bucket=bucket).get("KeyCount") == 0
