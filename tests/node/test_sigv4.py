"""`anode.s3.sigv4.authenticate` accepts what botocore signs and refuses anything altered.

Requests are signed by botocore itself: its signer classes on an `AWSRequest`, and a real boto3
client whose outgoing request is captured just before it would hit the network.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth, SigV4Auth
from botocore.awsrequest import AWSPreparedRequest, AWSRequest, AWSResponse
from botocore.config import Config
from botocore.credentials import Credentials as BotoCredentials
from multidict import CIMultiDict

from anode.s3 import sigv4
from anode.s3.errors import ErrorCode, S3Error

ACCESS_KEY = "AKIDANODETEST"
SECRET_KEY = "s3cr3t/with+odd=chars"
ENDPOINT = "http://127.0.0.1:9"
KEYS = {ACCESS_KEY: SECRET_KEY}


@dataclasses.dataclass
class Sent:
    """A request as the server would see it: raw path and query, case-insensitive headers."""

    method: str
    raw_path: str
    raw_query: str
    headers: CIMultiDict[str]

    def authenticate(
        self,
        *,
        lookup: Callable[[str], str | None] = KEYS.get,
        now: datetime | None = None,
        region: str | None = None,
    ) -> sigv4.AuthContext | None:
        return sigv4.authenticate(
            method=self.method, raw_path=self.raw_path, raw_query=self.raw_query,
            headers=self.headers, lookup=lookup, now=now or datetime.now(UTC), region=region,
        )

    def replace(self, **changes: object) -> Sent:
        return dataclasses.replace(self, **changes)

    def with_header(self, name: str, value: str) -> Sent:
        headers = CIMultiDict(self.headers)
        headers[name] = value
        return self.replace(headers=headers)


def as_sent(method: str, url: str, headers: object) -> Sent:
    parts = urlsplit(url)
    received = CIMultiDict((k, v.decode() if isinstance(v, bytes) else v)
                           for k, v in dict(headers).items())
    received.setdefault("Host", parts.netloc)  # added by the HTTP client, signed by botocore
    return Sent(method, parts.path, parts.query, received)


class _EmptyBody:
    def stream(self) -> list[bytes]:
        return []


def boto3_client(region: str = "us-east-1") -> object:
    return boto3.client(
        "s3", endpoint_url=ENDPOINT, region_name=region,
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"},
                      retries={"max_attempts": 1}),
    )


def send_with_boto3(operation: str, region: str = "us-east-1", **params: object) -> Sent:
    """Run a real boto3 call and capture the request it would put on the wire."""
    client = boto3_client(region)
    captured: list[AWSPreparedRequest] = []

    def before_send(request: AWSPreparedRequest, **_: object) -> AWSResponse:
        captured.append(request)
        return AWSResponse(request.url, 200, {}, _EmptyBody())

    client.meta.events.register("before-send.s3", before_send)
    getattr(client, operation)(**params)
    request = captured[0]
    return as_sent(request.method, request.url, request.headers)


def sign_with(signer: type[SigV4Auth], method: str, url: str, **kwargs: object) -> Sent:
    request = AWSRequest(method=method, url=url, **kwargs)
    signer(BotoCredentials(ACCESS_KEY, SECRET_KEY), "s3", "eu-west-3").add_auth(request)
    prepared = request.prepare()
    return as_sent(prepared.method, prepared.url, prepared.headers)


def assert_refused(sent: Sent, code: ErrorCode, **kwargs: object) -> S3Error:
    with pytest.raises(S3Error) as err:
        sent.authenticate(**kwargs)
    assert err.value.code is code, err.value.message
    return err.value


# ---- accepted ------------------------------------------------------------------------------

ODD_KEY = "dir/a b+c~d*e!f'g(h)$&=;:,@ü€/x%y.txt"


def test_anonymous_request_is_none() -> None:
    sent = Sent("GET", "/bucket/key", "", CIMultiDict({"Host": "127.0.0.1:9"}))
    assert sent.authenticate() is None


def test_boto3_put_object_with_odd_key_and_metadata_is_accepted() -> None:
    sent = send_with_boto3("put_object", Bucket="bucket", Key=ODD_KEY, Body=b"hello",
                           Metadata={"colour": "  blue   and  green "})
    auth = sent.authenticate()
    assert auth is not None
    assert auth.access_key == ACCESS_KEY
    assert auth.payload_sha256 == sent.headers["x-amz-content-sha256"]
    assert not auth.streaming and not auth.signed_chunks and not auth.trailer
    assert auth.scope.endswith("/us-east-1/s3/aws4_request")
    assert auth.seed_signature == sent.headers["Authorization"].rsplit("Signature=", 1)[1]


def test_boto3_list_objects_with_query_parameters_is_accepted() -> None:
    sent = send_with_boto3("list_objects_v2", Bucket="bucket", Prefix="a b/ü+", Delimiter="/",
                           StartAfter="x=y&z", MaxKeys=7)
    assert "%20" in sent.raw_query or "+" not in sent.raw_query
    assert sent.authenticate() is not None


def test_boto3_any_client_region_is_accepted_unless_one_is_required() -> None:
    sent = send_with_boto3("head_object", region="ap-southeast-2", Bucket="b", Key="k")
    assert sent.authenticate() is not None
    assert sent.authenticate(region="ap-southeast-2") is not None
    assert_refused(sent, ErrorCode.AuthorizationHeaderMalformed, region="us-east-1")


def test_s3_sigv4_auth_on_aws_request_is_accepted() -> None:
    sent = sign_with(S3SigV4Auth, "PUT", "http://127.0.0.1:9/bucket/k%C3%BC%20y?tagging=",
                     data=b"payload", headers={"x-amz-meta-a": "1"})
    auth = sent.authenticate()
    assert auth is not None
    assert auth.scope.endswith("/eu-west-3/s3/aws4_request")


def test_plain_sigv4_auth_without_content_sha256_header_is_accepted() -> None:
    """botocore's generic signer signs the empty body's hash but sends no x-amz-content-sha256."""
    sent = sign_with(SigV4Auth, "GET", "http://127.0.0.1:9/bucket/key?list-type=2")
    assert "x-amz-content-sha256" not in sent.headers
    auth = sent.authenticate()
    assert auth is not None
    assert auth.payload_sha256 == sigv4.EMPTY_SHA256


def test_headers_are_case_insensitive_and_whitespace_folded() -> None:
    sent = send_with_boto3("put_object", Bucket="b", Key="k", Body=b"", Metadata={"m": "a  b"})
    headers = CIMultiDict((k.upper(), v) for k, v in sent.headers.items())
    headers["X-AMZ-META-M"] = "  a      b  "
    assert sent.replace(headers=headers).authenticate() is not None


def test_signing_key_is_cached() -> None:
    sigv4.signing_key.cache_clear()
    for _ in range(3):
        send_with_boto3("head_object", Bucket="b", Key="k").authenticate()
    assert sigv4.signing_key.cache_info().hits >= 2


# ---- refused header auth ------------------------------------------------------------------


@pytest.fixture
def put() -> Sent:
    return send_with_boto3("put_object", Bucket="bucket", Key="some/key", Body=b"data",
                           Metadata={"owner": "alice"})


def test_tampered_path_is_refused(put: Sent) -> None:
    assert_refused(put.replace(raw_path="/bucket/some/key2"), ErrorCode.SignatureDoesNotMatch)


def test_double_encoded_path_is_not_the_same_path(put: Sent) -> None:
    assert_refused(put.replace(raw_path="/bucket/some%252Fkey"), ErrorCode.SignatureDoesNotMatch)


def test_equivalent_path_encoding_is_accepted(put: Sent) -> None:
    """S3 decodes once and re-encodes, so %6B and k are the same key."""
    assert put.replace(raw_path="/bucket/some/%6Bey").authenticate() is not None


def test_added_query_parameter_is_refused(put: Sent) -> None:
    assert_refused(put.replace(raw_query="acl"), ErrorCode.SignatureDoesNotMatch)


def test_tampered_signed_header_is_refused(put: Sent) -> None:
    err = assert_refused(put.with_header("x-amz-meta-owner", "mallory"),
                         ErrorCode.SignatureDoesNotMatch)
    assert "x-amz-meta-owner:mallory" in err.extra["CanonicalRequest"]


def test_unsigned_amz_header_is_refused(put: Sent) -> None:
    assert_refused(put.with_header("x-amz-acl", "public-read"), ErrorCode.AccessDenied)


def test_tampered_payload_hash_is_refused(put: Sent) -> None:
    assert_refused(put.with_header("x-amz-content-sha256", "0" * 64),
                   ErrorCode.SignatureDoesNotMatch)


def test_unknown_payload_mode_is_invalid_argument(put: Sent) -> None:
    assert_refused(put.with_header("x-amz-content-sha256", "STREAMING-SOMETHING"),
                   ErrorCode.InvalidArgument)


def test_wrong_secret_is_refused(put: Sent) -> None:
    assert_refused(put, ErrorCode.SignatureDoesNotMatch, lookup={ACCESS_KEY: "other"}.get)


def test_unknown_access_key_is_refused(put: Sent) -> None:
    assert_refused(put, ErrorCode.InvalidAccessKeyId, lookup={}.get)


@pytest.mark.parametrize("minutes", [-16, 16])
def test_skewed_clock_is_refused(put: Sent, minutes: int) -> None:
    assert_refused(put, ErrorCode.RequestTimeTooSkewed,
                   now=datetime.now(UTC) + timedelta(minutes=minutes))


def test_skew_within_fifteen_minutes_is_accepted(put: Sent) -> None:
    assert put.authenticate(now=datetime.now(UTC) + timedelta(minutes=14)) is not None


def test_missing_date_is_access_denied(put: Sent) -> None:
    headers = CIMultiDict(put.headers)
    del headers["X-Amz-Date"]
    assert_refused(put.replace(headers=headers), ErrorCode.AccessDenied)


def test_unparseable_date_is_access_denied(put: Sent) -> None:
    assert_refused(put.with_header("X-Amz-Date", "yesterday"), ErrorCode.AccessDenied)


@pytest.mark.parametrize(
    "authorization",
    [
        "AWS AKIDANODETEST:c2lnbmF0dXJl",  # SigV2
        "AWS4-ECDSA-P256-SHA256 Credential=AKIDANODETEST/20240101/s3/aws4_request, "
        "SignedHeaders=host, Signature=00",
        "AWS4-HMAC-SHA256 Credential=AKIDANODETEST/20240101/us-east-1/s3/aws4_request",
        "AWS4-HMAC-SHA256 Credential=AKIDANODETEST/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=00",
        "AWS4-HMAC-SHA256 Credential=AKIDANODETEST/20240101/us-east-1/sqs/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=00",
        "AWS4-HMAC-SHA256 Credential=AKIDANODETEST/20240101/us-east-1/s3/aws4_request, "
        "SignedHeaders=x-amz-date, Signature=00",
        "AWS4-HMAC-SHA256 garbage",
    ],
)
def test_malformed_authorization_header(put: Sent, authorization: str) -> None:
    assert_refused(put.with_header("Authorization", authorization),
                   ErrorCode.AuthorizationHeaderMalformed)


def test_credential_date_must_match_request_date(put: Sent) -> None:
    authorization = put.headers["Authorization"]
    day = put.headers["X-Amz-Date"][:8]
    other_day = "19990101"
    assert_refused(put.with_header("Authorization", authorization.replace(day, other_day)),
                   ErrorCode.AuthorizationHeaderMalformed)


def test_header_and_query_auth_together_is_invalid(put: Sent) -> None:
    assert_refused(put.replace(raw_query="X-Amz-Signature=00"), ErrorCode.InvalidArgument)


# ---- presigned URLs -----------------------------------------------------------------------


def presigned(method: str = "get_object", expires: int = 3600, **params: object) -> Sent:
    url = boto3_client().generate_presigned_url(
        method, Params={"Bucket": "bucket", "Key": ODD_KEY, **params}, ExpiresIn=expires
    )
    return as_sent("PUT" if method == "put_object" else "GET", url, {})


def test_presigned_get_is_accepted_as_unsigned_payload() -> None:
    auth = presigned().authenticate()
    assert auth is not None
    assert auth.payload_sha256 == sigv4.UNSIGNED_PAYLOAD
    assert not auth.streaming


def test_presigned_put_with_response_params_is_accepted() -> None:
    sent = presigned("put_object", ContentType="text/plain")
    sent.headers["Content-Type"] = "text/plain"
    assert sent.authenticate() is not None


def test_presigned_url_by_s3_sigv4_query_auth_is_accepted() -> None:
    request = AWSRequest(method="GET", url="http://127.0.0.1:9/bucket/a%20b?versionId=3")
    S3SigV4QueryAuth(BotoCredentials(ACCESS_KEY, SECRET_KEY), "s3", "eu-west-3",
                     expires=60).add_auth(request)
    prepared = request.prepare()
    assert as_sent("GET", prepared.url, {}).authenticate() is not None


def test_presigned_tampered_key_is_refused() -> None:
    sent = presigned()
    assert_refused(sent.replace(raw_path=sent.raw_path + "x"), ErrorCode.SignatureDoesNotMatch)


def test_presigned_tampered_query_is_refused() -> None:
    sent = presigned(ResponseContentType="text/plain")
    raw_query = sent.raw_query.replace("text%2Fplain", "text%2Fhtml")
    assert raw_query != sent.raw_query
    assert_refused(sent.replace(raw_query=raw_query), ErrorCode.SignatureDoesNotMatch)


def test_presigned_wrong_method_is_refused() -> None:
    assert_refused(presigned().replace(method="DELETE"), ErrorCode.SignatureDoesNotMatch)


def test_presigned_wrong_secret_is_refused() -> None:
    assert_refused(presigned(), ErrorCode.SignatureDoesNotMatch, lookup={ACCESS_KEY: "x"}.get)


def test_presigned_expired_is_access_denied() -> None:
    err = assert_refused(presigned(expires=60), ErrorCode.AccessDenied,
                         now=datetime.now(UTC) + timedelta(seconds=120))
    assert err.message == "Request has expired"


def test_presigned_long_lived_url_is_valid_until_it_expires() -> None:
    sent = presigned(expires=604800)
    assert sent.authenticate(now=datetime.now(UTC) + timedelta(days=6)) is not None


def test_presigned_expiry_over_a_week_is_refused() -> None:
    sent = presigned(expires=604801)
    assert_refused(sent, ErrorCode.AuthorizationQueryParametersError)


@pytest.mark.parametrize("param", ["X-Amz-Credential", "X-Amz-Date", "X-Amz-SignedHeaders",
                                   "X-Amz-Expires", "X-Amz-Algorithm"])
def test_presigned_missing_parameter_is_refused(param: str) -> None:
    sent = presigned()
    raw_query = "&".join(p for p in sent.raw_query.split("&") if not p.startswith(param + "="))
    assert_refused(sent.replace(raw_query=raw_query), ErrorCode.AuthorizationQueryParametersError)


def test_presigned_future_date_is_refused() -> None:
    assert_refused(presigned(), ErrorCode.AccessDenied,
                   now=datetime.now(UTC) - timedelta(hours=1))


# ---- the AWS documentation example ---------------------------------------------------------

DOC_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
DOC_NOW = datetime(2013, 5, 24, 0, 1, tzinfo=UTC)


def test_aws_doc_get_object_example_signature() -> None:
    """"Example: GET Object" from "Signature Calculations for the Authorization Header"."""
    headers = CIMultiDict({
        "Host": "examplebucket.s3.amazonaws.com",
        "Range": "bytes=0-9",
        "x-amz-content-sha256": sigv4.EMPTY_SHA256,
        "x-amz-date": "20130524T000000Z",
        "Authorization": "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/"
        "s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
    })
    sent = Sent("GET", "/test.txt", "", headers)
    auth = sent.authenticate(lookup={"AKIAIOSFODNN7EXAMPLE": DOC_SECRET}.get, now=DOC_NOW)
    assert auth is not None
    assert auth.scope == "20130524/us-east-1/s3/aws4_request"
