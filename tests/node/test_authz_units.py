"""Unit tests of the pure access-control core: policy parsing and matching, ACLs, the decision
order of `authz.decide`, and CORS rule matching. No server."""

from __future__ import annotations

import json

import pytest

from anode.node import owner_id
from anode.s3 import acl as A
from anode.s3 import cors
from anode.s3.authz import BucketAccess, Caller, ObjectAccess, decide, is_public
from anode.s3.errors import ErrorCode, S3Error
from anode.s3.permissions import action_for
from anode.s3.policy import Identity, parse_policy, principal_entry

BUCKET = "b"
ALICE, BOB = Identity("alice", owner_id("alice")), Identity("bob", owner_id("bob"))
ANON = Identity(None, "")


def caller(who: Identity) -> Caller:
    return Caller(who)


def policy(*statements: dict, bucket: str = BUCKET):
    text = json.dumps({"Version": "2012-10-17", "Statement": list(statements)})
    return parse_policy(text, bucket=bucket, resolve=principal_entry)


def access(**kw) -> BucketAccess:
    return BucketAccess(name=BUCKET, owner=A.user(ALICE.canonical_id, "alice"), **kw)


def obj(owner: Identity = ALICE, acl=None, key: str = "k") -> ObjectAccess:
    return ObjectAccess(key, A.user(owner.canonical_id, owner.name or ""), acl)


def allow(principal="*", action="s3:GetObject", resource=f"arn:aws:s3:::{BUCKET}/*", **extra):
    return {"Effect": "Allow", "Principal": principal, "Action": action, "Resource": resource,
            **extra}


# ---- policy parsing -------------------------------------------------------------------------


@pytest.mark.parametrize("text, message", [
    ("not json", "valid JSON"),
    ("[1]", "valid JSON"),
    ('{"Version": "2012-10-17"}', "Missing required field Statement"),
    ('{"Statement": [{"Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::b"}]}',
     "Missing required field Effect"),
    ('{"Statement": [{"Effect": "Maybe", "Principal": "*", "Action": "s3:*",'
     ' "Resource": "arn:aws:s3:::b"}]}', "Invalid effect"),
    ('{"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::b"}]}',
     "Missing required field Principal"),
    ('{"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "ec2:Run",'
     ' "Resource": "arn:aws:s3:::b"}]}', "invalid action"),
    ('{"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:*",'
     ' "Resource": "arn:aws:s3:::other/*"}]}', "invalid resource"),
    ('{"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:*",'
     ' "Resource": "arn:aws:s3:::b", "Condition": {"StringWhatever": {"a": "b"}}}]}',
     "Invalid Condition type"),
    ('{"Version": "1999-01-01", "Statement": []}', "Invalid policy version"),
    ('{"Statement": [{"Effect": "Allow", "Principal": "*", "Action": ["s3:ListBucket"],'
     ' "Resource": "arn:aws:s3:::b/*"}]}', "Action does not apply to any resource"),
    ('{"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",'
     ' "Resource": "arn:aws:s3:::b"}]}', "Action does not apply to any resource"),
])
def test_malformed_policies_are_refused_with_malformed_policy(text, message):
    with pytest.raises(S3Error) as exc:
        parse_policy(text, bucket=BUCKET, resolve=principal_entry)
    assert exc.value.code == ErrorCode.MalformedPolicy
    assert message in exc.value.message


def test_unknown_principal_is_refused():
    with pytest.raises(S3Error) as exc:
        parse_policy(json.dumps({"Statement": [allow({"AWS": "ghost"})]}), bucket=BUCKET,
                     resolve=lambda entry: None)
    assert exc.value.message == "Invalid principal in policy"


def test_principal_entries_map_to_users():
    assert principal_entry("arn:aws:iam::123456789012:user/bob") == ("bob", "")
    assert principal_entry("bob") == ("bob", "")
    assert principal_entry(owner_id("bob")) == ("", owner_id("bob"))
    assert principal_entry(f"arn:aws:iam::{owner_id('bob')}:root") == ("", owner_id("bob"))


# ---- decision order -------------------------------------------------------------------------


def test_owner_may_do_anything_on_its_bucket_and_others_nothing_by_default():
    bucket = access()
    for action in ("s3:ListBucket", "s3:PutObject", "s3:PutBucketAcl", "s3:DeleteBucket"):
        assert decide(caller(ALICE), action, bucket)
        assert not decide(caller(BOB), action, bucket)
        assert not decide(caller(ANON), action, bucket)
    assert decide(caller(ALICE), "s3:GetObject", bucket, obj())
    assert not decide(caller(BOB), "s3:GetObject", bucket, obj())


def test_root_may_do_anything():
    root = Caller(Identity("root", owner_id("root")), is_root=True)
    deny = policy({"Effect": "Deny", "Principal": "*", "Action": "s3:*",
                   "Resource": [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"]})
    assert decide(root, "s3:GetObject", access(policy=deny), obj(BOB))


def test_public_read_acl_grants_anonymous_list_and_object_read_acl_grants_get():
    bucket = access(acl=A.canned("public-read", owner=A.user(ALICE.canonical_id, "alice")))
    assert decide(caller(ANON), "s3:ListBucket", bucket)
    assert not decide(caller(ANON), "s3:PutObject", bucket, ObjectAccess("k"))
    assert not decide(caller(ANON), "s3:GetObject", bucket, obj())  # object ACL is private
    public_obj = obj(acl=A.canned("public-read", owner=A.user(ALICE.canonical_id, "alice")))
    assert decide(caller(ANON), "s3:GetObject", bucket, public_obj)
    assert not decide(caller(ANON), "s3:PutObjectAcl", bucket, public_obj)


def test_authenticated_read_excludes_anonymous():
    owner = A.user(ALICE.canonical_id, "alice")
    bucket = access(acl=A.canned("authenticated-read", owner=owner))
    assert decide(caller(BOB), "s3:ListBucket", bucket)
    assert not decide(caller(ANON), "s3:ListBucket", bucket)


def test_explicit_deny_beats_allow_and_owner_but_not_policy_management():
    text = policy(
        allow({"AWS": "bob"}, "s3:*", [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"]),
        {"Effect": "Deny", "Principal": "*", "Action": ["s3:GetObject", "s3:*Policy"],
         "Resource": [f"arn:aws:s3:::{BUCKET}/secret/*", f"arn:aws:s3:::{BUCKET}"]})
    bucket = access(policy=text)
    assert decide(caller(BOB), "s3:GetObject", bucket, obj(key="public/x"))
    assert not decide(caller(BOB), "s3:GetObject", bucket, obj(key="secret/x"))
    assert not decide(caller(ALICE), "s3:GetObject", bucket, obj(key="secret/x"))
    assert decide(caller(ALICE), "s3:DeleteBucketPolicy", bucket)
    assert not decide(caller(BOB), "s3:DeleteBucketPolicy", bucket)


def test_object_written_by_another_user_belongs_to_it():
    bucket = access(acl=A.canned("public-read-write", owner=A.user(ALICE.canonical_id, "a")))
    bobs = obj(BOB)
    assert decide(caller(BOB), "s3:GetObject", bucket, bobs)
    assert not decide(caller(ALICE), "s3:GetObject", bucket, bobs)  # AWS: owner of the bytes
    assert decide(caller(ALICE), "s3:DeleteObject", bucket, ObjectAccess("k"))
    granted = obj(BOB, A.canned("bucket-owner-read", owner=A.user(BOB.canonical_id, "bob"),
                                bucket_owner=A.user(ALICE.canonical_id, "alice")))
    assert decide(caller(ALICE), "s3:GetObject", bucket, granted)
    enforced = access(ownership="BucketOwnerEnforced")
    assert decide(caller(ALICE), "s3:GetObject", enforced, bobs)
    assert not decide(caller(BOB), "s3:GetObject", enforced, bobs)


def test_public_access_block_ignore_public_acls_and_restrict_public_buckets():
    owner = A.user(ALICE.canonical_id, "alice")
    ignored = access(acl=A.canned("public-read", owner=owner),
                     public_access_block={"IgnorePublicAcls": True})
    assert not decide(caller(ANON), "s3:ListBucket", ignored)
    public_policy = policy(allow(action="s3:ListBucket", resource=f"arn:aws:s3:::{BUCKET}"))
    assert decide(caller(ANON), "s3:ListBucket", access(policy=public_policy))
    restricted = access(policy=public_policy,
                        public_access_block={"RestrictPublicBuckets": True})
    assert not decide(caller(ANON), "s3:ListBucket", restricted)
    assert not decide(caller(BOB), "s3:ListBucket", restricted)
    assert decide(caller(ALICE), "s3:ListBucket", restricted)


def test_acls_are_ignored_under_bucket_owner_enforced():
    owner = A.user(ALICE.canonical_id, "alice")
    bucket = access(acl=A.canned("public-read", owner=owner), ownership="BucketOwnerEnforced")
    assert not decide(caller(ANON), "s3:ListBucket", bucket)


# ---- conditions -----------------------------------------------------------------------------


def test_prefix_condition_limits_listing():
    p = policy(allow({"AWS": ["arn:aws:iam::1:user/bob"]}, "s3:ListBucket",
                     f"arn:aws:s3:::{BUCKET}",
                     Condition={"StringLike": {"s3:prefix": ["home/bob/*", "home/bob"]}}))
    bucket = access(policy=p)
    assert decide(caller(BOB), "s3:ListBucket", bucket, context={"s3:prefix": ["home/bob/x"]})
    assert not decide(caller(BOB), "s3:ListBucket", bucket, context={"s3:prefix": ["home/"]})
    assert not decide(caller(BOB), "s3:ListBucket", bucket, context={})


def test_source_ip_conditions():
    p = policy(allow(Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}),
               {"Effect": "Deny", "Principal": "*", "Action": "s3:*",
                "Resource": f"arn:aws:s3:::{BUCKET}/*",
                "Condition": {"NotIpAddress": {"aws:SourceIp": ["10.0.0.0/8", "127.0.0.1"]}}})
    bucket = access(policy=p)
    assert decide(caller(ANON), "s3:GetObject", bucket, obj(), {"aws:sourceip": ["10.1.2.3"]})
    assert not decide(caller(ANON), "s3:GetObject", bucket, obj(), {"aws:sourceip": ["8.8.8.8"]})
    assert not decide(caller(ALICE), "s3:GetObject", bucket, obj(),
                      {"aws:sourceip": ["8.8.8.8"]})
    assert decide(caller(ALICE), "s3:GetObject", bucket, obj(), {"aws:sourceip": ["127.0.0.1"]})
    assert not p.is_public  # a fixed network is not "public"


def test_acl_header_condition_and_negated_operators_on_missing_keys():
    p = policy({"Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
                "Resource": f"arn:aws:s3:::{BUCKET}/*",
                "Condition": {"StringNotEquals": {"s3:x-amz-acl": "bucket-owner-full-control"}}},
               allow({"AWS": "bob"}, "s3:PutObject"))
    bucket = access(policy=p)
    key = ObjectAccess("k")
    good = {"s3:x-amz-acl": ["bucket-owner-full-control"]}
    assert decide(caller(BOB), "s3:PutObject", bucket, key, good)
    assert not decide(caller(BOB), "s3:PutObject", bucket, key, {"s3:x-amz-acl": ["private"]})
    assert not decide(caller(BOB), "s3:PutObject", bucket, key, {})  # missing: negated is true


def test_bool_secure_transport_if_exists_and_null():
    p = policy(allow(Condition={"Bool": {"aws:SecureTransport": "true"}}))
    assert not decide(caller(ANON), "s3:GetObject", access(policy=p), obj(),
                      {"aws:securetransport": ["false"]})
    assert decide(caller(ANON), "s3:GetObject", access(policy=p), obj(),
                  {"aws:securetransport": ["true"]})
    p = policy(allow(Condition={"StringEqualsIfExists": {"s3:x-amz-acl": "private"},
                                "Null": {"aws:username": "true"}}))
    assert decide(caller(ANON), "s3:GetObject", access(policy=p), obj(), {})
    assert not decide(caller(BOB), "s3:GetObject", access(policy=p), obj(),
                      {"aws:username": ["bob"]})


def test_wildcards_in_actions_and_resources_and_not_action():
    p = policy(allow({"AWS": "bob"}, "s3:Get*", f"arn:aws:s3:::{BUCKET}/docs/*.txt"),
               {"Effect": "Allow", "Principal": {"AWS": "bob"}, "NotAction": "s3:Delete*",
                "Resource": f"arn:aws:s3:::{BUCKET}/tmp/*"})
    bucket = access(policy=p)
    assert decide(caller(BOB), "s3:GetObject", bucket, obj(key="docs/a/b.txt"))
    assert decide(caller(BOB), "s3:getobjectacl", bucket, obj(key="docs/a.txt"))
    assert not decide(caller(BOB), "s3:GetObject", bucket, obj(key="docs/a.pdf"))
    assert decide(caller(BOB), "s3:PutObject", bucket, ObjectAccess("tmp/x"))
    assert not decide(caller(BOB), "s3:DeleteObject", bucket, ObjectAccess("tmp/x"))


def test_policy_variables():
    p = policy(allow("*", "s3:GetObject", f"arn:aws:s3:::{BUCKET}/home/${{aws:username}}/*"))
    bucket = access(policy=p)
    assert decide(caller(BOB), "s3:GetObject", bucket, obj(key="home/bob/x"),
                  {"aws:username": ["bob"]})
    assert not decide(caller(BOB), "s3:GetObject", bucket, obj(key="home/carol/x"),
                      {"aws:username": ["bob"]})


def test_policy_status():
    assert not is_public(access())
    assert is_public(access(policy=policy(allow())))
    owner = A.user(ALICE.canonical_id, "alice")
    assert is_public(access(acl=A.canned("public-read", owner=owner)))
    assert not is_public(access(acl=A.canned("public-read", owner=owner),
                                public_access_block={"IgnorePublicAcls": True}))
    assert not is_public(access(policy=policy(allow({"AWS": "bob"}))))


def test_operations_map_to_actions():
    assert action_for("HeadObject", {}) == "s3:GetObject"
    assert action_for("GetObject", {"versionId": "x"}) == "s3:GetObjectVersion"
    assert action_for("ListObjectsV2", {}) == "s3:ListBucket"
    assert action_for("PutBucketVersioning", {}) == "s3:PutBucketVersioning"
    assert action_for("DeleteObjects", {}) is None


# ---- ACLs -----------------------------------------------------------------------------------


def test_acl_headers_and_xml_round_trip():
    owner = A.user(ALICE.canonical_id, "alice")
    names = {BOB.canonical_id: "bob"}
    acl = A.from_headers({"x-amz-grant-read": f'id="{BOB.canonical_id}", uri="{A.ALL_USERS}"',
                          "x-amz-grant-write-acp": f"id={BOB.canonical_id}"},
                         owner=owner, lookup=names.get)
    assert acl is not None and len(acl["grants"]) == 3
    parsed = A.from_xml(A.to_xml(acl), owner=owner, lookup=names.get)
    assert parsed == acl
    with pytest.raises(S3Error) as exc:
        A.from_headers({"x-amz-acl": "private", "x-amz-grant-read": f"uri={A.ALL_USERS}"},
                       owner=owner, lookup=names.get)
    assert exc.value.code == ErrorCode.InvalidRequest
    with pytest.raises(S3Error) as exc:
        A.from_headers({"x-amz-grant-read": 'id="nobody"'}, owner=owner, lookup=names.get)
    assert exc.value.code == ErrorCode.InvalidArgument
    with pytest.raises(S3Error) as exc:
        A.from_headers({"x-amz-acl": "bogus"}, owner=owner, lookup=names.get)
    assert exc.value.code == ErrorCode.InvalidArgument
    with pytest.raises(S3Error) as exc:
        A.from_xml(b"<AccessControlPolicy><Nope/></AccessControlPolicy>", owner=owner,
                   lookup=names.get)
    assert exc.value.code == ErrorCode.MalformedACLError


# ---- CORS -----------------------------------------------------------------------------------

CORS_XML = b"""<CORSConfiguration>
<CORSRule><AllowedOrigin>*suffix</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule>
<CORSRule><AllowedOrigin>start*end</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule>
<CORSRule><AllowedOrigin>prefix*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule>
<CORSRule><ID>put</ID><AllowedOrigin>*.put</AllowedOrigin><AllowedMethod>PUT</AllowedMethod>
<AllowedHeader>x-amz-*</AllowedHeader><ExposeHeader>ETag</ExposeHeader>
<MaxAgeSeconds>3000</MaxAgeSeconds></CORSRule>
</CORSConfiguration>"""


@pytest.mark.parametrize("origin, method, matches", [
    ("foo.suffix", "GET", True), ("foo.bar", "GET", False), ("foo.suffix.get", "GET", False),
    ("startend", "GET", True), ("start1end", "GET", True), ("0start12end", "GET", False),
    ("prefix", "GET", True), ("prefix.suffix", "GET", True), ("bla.prefix", "GET", False),
    ("foo.put", "GET", False), ("foo.put", "PUT", True),
])
def test_cors_origin_matching(origin, method, matches):
    rules = cors.parse_config(CORS_XML)
    assert (cors.find_rule(rules, origin=origin, method=method) is not None) == matches


def test_cors_headers_and_round_trip():
    rules = cors.parse_config(CORS_XML)
    assert cors.parse_config(cors.to_xml(rules)) == rules
    assert cors.find_rule(rules, origin="a.put", method="PUT", headers=["x-amz-meta-a"])
    assert not cors.find_rule(rules, origin="a.put", method="PUT", headers=["content-md5"])
    rule = cors.find_rule(rules, origin="a.put", method="PUT")
    headers = cors.response_headers(rule, origin="a.put", preflight=True,
                                    request_headers={"Access-Control-Request-Headers": "X-Amz-A"})
    assert headers["Access-Control-Allow-Origin"] == "a.put"
    assert headers["Access-Control-Allow-Methods"] == "PUT"
    assert headers["Access-Control-Allow-Headers"] == "x-amz-a"
    assert headers["Access-Control-Expose-Headers"] == "ETag"
    assert headers["Access-Control-Max-Age"] == "3000"


@pytest.mark.parametrize("body, code", [
    (b"<CORSConfiguration/>", ErrorCode.MalformedXML),
    (b"<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin></CORSRule>"
     b"</CORSConfiguration>", ErrorCode.MalformedXML),
    (b"<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin>"
     b"<AllowedMethod>PATCH</AllowedMethod></CORSRule></CORSConfiguration>",
     ErrorCode.InvalidRequest),
    (b"<CORSConfiguration><CORSRule><AllowedOrigin>*a*</AllowedOrigin>"
     b"<AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>",
     ErrorCode.InvalidRequest),
])
def test_invalid_cors_configurations(body, code):
    with pytest.raises(S3Error) as exc:
        cors.parse_config(body)
    assert exc.value.code == code


# ---- the state machine keeps the settings -------------------------------------------------


def test_bucket_settings_and_object_acls_are_commands(meta):
    from anode.meta import commands as c

    sm = meta.state_machine
    owner = A.user(ALICE.canonical_id, "alice")
    public = A.canned("public-read", owner=owner)
    create = c.CreateBucket(bucket="b", owner="alice", created=1.0, acl=public,
                            ownership="ObjectWriter")
    assert c.decode(c.encode(create)) == create
    sm.apply(create)
    assert meta.bucket("b")["acl"] == public and meta.bucket("b")["ownership"] == "ObjectWriter"
    for name, value in (("policy", '{"Statement": []}'), ("cors", [{"origins": ["*"]}]),
                        ("pab", {"BlockPublicAcls": True})):
        assert sm.apply(c.SetBucketConfig(bucket="b", name=name, value=value)) is None
        assert meta.bucket("b")[name] == value
        sm.apply(c.SetBucketConfig(bucket="b", name=name, value=None))
        assert name not in meta.bucket("b")
    assert sm.apply(c.SetBucketConfig(bucket="b", name="owner", value="mallory")) == c.Rejected(
        "InvalidArgument", "unknown bucket setting 'owner'")
    assert sm.apply(c.SetBucketConfig(bucket="nope", name="acl")) == c.Rejected("NoSuchBucket")
    record = {"size": 0, "etag": '"e"', "mtime": 1.0, "chunks": [], "owner": "alice"}
    sm.apply(c.PutObject(bucket="b", key="k", record=record))
    assert sm.apply(c.SetObjectAcl(bucket="b", key="k", acl=public)) is None
    assert meta.object("b", "k")["acl"] == public
    assert sm.apply(c.SetObjectAcl(bucket="b", key="gone", acl=public)) == c.Rejected("NoSuchKey")
    sm.apply(c.SetBucketVersioning(bucket="b", status="Enabled"))
    sm.apply(c.PutObject(bucket="b", key="k", record=record, version_id="v2"))
    assert sm.apply(c.SetObjectAcl(bucket="b", key="k", acl=public, version_id="null")) is None
    assert meta.version("b", "k", "null")["acl"] == public
    assert "acl" not in meta.object("b", "k")  # the newest version keeps its own (private) ACL
    assert sm.apply(c.SetObjectAcl(bucket="b", key="k", acl=public)) is None
    assert meta.object("b", "k")["acl"] == public and meta.version("b", "k", "v2")["acl"] == public
