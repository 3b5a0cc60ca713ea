"""AWS Signature Version 4 verification for S3: the Authorization header and presigned URLs.

`authenticate` runs before any handler and answers who signed a request (or None for an
anonymous one) without touching the body. What it cannot check up front — the body's hash, the
aws-chunked chunk signatures — it hands to `streaming` in the returned `AuthContext`, so the
body is verified as it is read. Every failure is an `S3Error` from the one error table.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import quote, unquote_to_bytes

from anode.s3.errors import ErrorCode, S3Error

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "s3"
TERMINATOR = "aws4_request"

UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
PAYLOAD_MODES = (
    UNSIGNED_PAYLOAD,
    STREAMING_SIGNED,
    STREAMING_SIGNED_TRAILER,
    STREAMING_UNSIGNED_TRAILER,
)
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()

MAX_CLOCK_SKEW = timedelta(minutes=15)
MAX_PRESIGNED_EXPIRES = 604800  # one week, the S3 limit

_AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_URI_SAFE = "-_.~"
_PLAIN_PATH = re.compile(r"[A-Za-z0-9/\-_.~]*")
# A presigned request's x-amz-content-sha256 is the payload hash of its canonical request, so a
# changed value fails the signature anyway; presigners (botocore's among them) do not list it.
_PRESIGNED_EXEMPT = frozenset({"x-amz-content-sha256"})
_PRESIGN_PARAMS = (
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
)


@dataclass(frozen=True)
class Credentials:
    access_key: str
    secret_key: str


@dataclass(frozen=True)
class AuthContext:
    """Who signed the request, and what `streaming` needs to go on verifying its body."""

    access_key: str
    payload_sha256: str  # x-amz-content-sha256 value (hex digest or one of PAYLOAD_MODES)
    streaming: bool  # body is aws-chunked (STREAMING-*)
    signed_chunks: bool  # each chunk carries a chunk-signature
    trailer: bool  # trailing headers follow the last chunk
    seed_signature: str  # the request's own signature: chunk signatures chain from it
    signing_key: bytes
    amz_date: str
    scope: str  # <date>/<region>/s3/aws4_request


@dataclass(frozen=True)
class _Signed:
    """The parts of a signature, wherever they came from (header or query)."""

    access_key: str
    date: str
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str

    @property
    def scope(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/{TERMINATOR}"


def authenticate(
    *,
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Mapping[str, str],
    lookup: Callable[[str], str | None],
    now: datetime,
    region: str | None = None,
) -> AuthContext | None:
    """Verify a request's SigV4 signature; None if the request is anonymous.

    `raw_path` and `raw_query` are as sent on the wire (aiohttp: `request.raw_path`,
    `request.rel_url.raw_query_string`), since the signature covers their exact encoding.
    `region`, when given, is the only region accepted in the credential scope.
    """
    query = _parse_query(raw_query)
    query_keys = {key for key, _ in query}
    authorization = headers.get("Authorization")
    presigned = bool(query_keys & {b"X-Amz-Signature", b"X-Amz-Algorithm", b"X-Amz-Credential"})
    if authorization is None and not presigned:
        return None
    if authorization is not None and presigned:
        raise S3Error(
            ErrorCode.InvalidArgument,
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, "
            "Signature query string parameter or the Authorization header should be specified",
        )
    now = now if now.tzinfo else now.replace(tzinfo=UTC)
    if authorization is not None:
        return _authenticate_header(
            method, raw_path, query, headers, authorization, lookup, now, region
        )
    return _authenticate_query(method, raw_path, query, headers, lookup, now, region)


# ---- header authentication ------------------------------------------------------------


def _authenticate_header(
    method: str,
    raw_path: str,
    query: list[tuple[bytes, bytes]],
    headers: Mapping[str, str],
    authorization: str,
    lookup: Callable[[str], str | None],
    now: datetime,
    region: str | None,
) -> AuthContext:
    signed = _parse_authorization(authorization)
    amz_date, when = _header_date(headers)
    if abs(now - when) > MAX_CLOCK_SKEW:
        raise S3Error(
            ErrorCode.RequestTimeTooSkewed,
            RequestTime=amz_date,
            ServerTime=now.strftime(_AMZ_DATE_FORMAT),
        )
    _check_scope(signed, amz_date, region, ErrorCode.AuthorizationHeaderMalformed)
    _check_all_amz_headers_signed(headers, signed.signed_headers)
    # Without the header (plain SigV4 clients, bodiless requests) the empty body was signed;
    # the body reader then holds the body to that.
    payload = _payload_mode(headers.get("x-amz-content-sha256", EMPTY_SHA256))
    return _verify(method, raw_path, query, headers, signed, amz_date, payload, lookup)


_AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=([^,\s]+), ?SignedHeaders=([^,\s]+), ?Signature=([0-9a-f]+)"
)


def _parse_authorization(value: str) -> _Signed:
    if (m := _AUTHORIZATION.fullmatch(value)) is not None:  # what every SDK sends
        return _parse_credential(m[1], m[2], m[3], ErrorCode.AuthorizationHeaderMalformed)
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise _malformed_header(f"Unsupported authorization type {algorithm!r}")
    fields: dict[str, str] = {}
    for part in rest.split(","):
        key, eq, val = part.strip().partition("=")
        if not eq:
            raise _malformed_header(f"Malformed authorization component {part.strip()!r}")
        fields[key] = val.strip()
    missing = [k for k in ("Credential", "SignedHeaders", "Signature") if not fields.get(k)]
    if missing:
        raise _malformed_header(f"Missing {', '.join(missing)} in the authorization header")
    return _parse_credential(
        fields["Credential"],
        fields["SignedHeaders"],
        fields["Signature"],
        ErrorCode.AuthorizationHeaderMalformed,
    )


def _malformed_header(message: str) -> S3Error:
    return S3Error(ErrorCode.AuthorizationHeaderMalformed, message)


def _header_date(headers: Mapping[str, str]) -> tuple[str, datetime]:
    """The request time as (x-amz-date form, datetime): from X-Amz-Date, else Date."""
    if (amz_date := headers.get("x-amz-date")) is not None:
        return _amz_date_pair(amz_date)
    when = None
    if (date := headers.get("Date")) is not None:
        try:
            when = parsedate_to_datetime(date)
        except (TypeError, ValueError):
            when = None
        if when is not None:  # "-0000" (botocore's Date) parses naive: it is UTC all the same
            when = when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)
    if when is None:
        raise _no_date()
    return when.strftime(_AMZ_DATE_FORMAT), when


def _no_date() -> S3Error:
    return S3Error(
        ErrorCode.AccessDenied, "AWS authentication requires a valid Date or x-amz-date header"
    )


@functools.lru_cache(maxsize=512)
def _amz_date_pair(value: str) -> tuple[str, datetime]:
    """(normalised x-amz-date, datetime), cached: many requests share each second's stamp."""
    when = _parse_amz_date(value)
    if when is None:
        raise _no_date()
    return when.strftime(_AMZ_DATE_FORMAT), when


@functools.lru_cache(maxsize=512)
def _parse_amz_date(value: str) -> datetime | None:
    """Cached: under load, many requests share each second's timestamp (strptime is slow)."""
    try:
        return datetime.strptime(value.strip(), _AMZ_DATE_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None


def _check_all_amz_headers_signed(
    headers: Mapping[str, str], signed: tuple[str, ...], exempt: frozenset[str] = frozenset()
) -> None:
    """S3 refuses x-amz-* headers outside the signature: they would be open to tampering (an
    unsigned x-amz-copy-source turns a presigned upload into a copy of anything the signer can
    read)."""
    unsigned = sorted(
        {name.lower() for name in headers if name.lower().startswith("x-amz-")}
        - set(signed)
        - exempt
    )
    if unsigned:
        raise S3Error(
            ErrorCode.AccessDenied,
            "There were headers present in the request which were not signed",
            HeadersNotSigned=", ".join(unsigned),
        )


# ---- presigned URLs ---------------------------------------------------------------------


def _authenticate_query(
    method: str,
    raw_path: str,
    query: list[tuple[bytes, bytes]],
    headers: Mapping[str, str],
    lookup: Callable[[str], str | None],
    now: datetime,
    region: str | None,
) -> AuthContext:
    params = _presign_params(query)
    if params["X-Amz-Algorithm"] != ALGORITHM:
        raise _query_error('X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"')
    signed = _parse_credential(
        params["X-Amz-Credential"],
        params["X-Amz-SignedHeaders"],
        params["X-Amz-Signature"],
        ErrorCode.AuthorizationQueryParametersError,
    )
    amz_date = params["X-Amz-Date"]
    when = _parse_amz_date(amz_date)
    if when is None:
        raise _query_error("X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"")
    expires = _parse_expires(params["X-Amz-Expires"])
    if now > when + timedelta(seconds=expires):
        raise S3Error(
            ErrorCode.AccessDenied,
            "Request has expired",
            Expires=(when + timedelta(seconds=expires)).strftime(_AMZ_DATE_FORMAT),
            ServerTime=now.strftime(_AMZ_DATE_FORMAT),
        )
    if when - now > MAX_CLOCK_SKEW:
        raise S3Error(ErrorCode.AccessDenied, "Request is not valid yet")
    _check_scope(signed, amz_date, region, ErrorCode.AuthorizationQueryParametersError)
    _check_all_amz_headers_signed(headers, signed.signed_headers, _PRESIGNED_EXEMPT)
    payload = _payload_mode(headers.get("x-amz-content-sha256", UNSIGNED_PAYLOAD))
    unsigned_query = [(k, v) for k, v in query if k != b"X-Amz-Signature"]
    return _verify(method, raw_path, unsigned_query, headers, signed, amz_date, payload, lookup)


def _presign_params(query: list[tuple[bytes, bytes]]) -> dict[str, str]:
    params: dict[str, str] = {}
    for key, value in query:
        name = key.decode("utf-8", "replace")
        if name in _PRESIGN_PARAMS:
            if name in params:
                raise _query_error(f"Query parameter {name} given more than once")
            params[name] = value.decode("utf-8", "replace")
    missing = [name for name in _PRESIGN_PARAMS if not params.get(name)]
    if missing:
        raise _query_error(
            "Query-string authentication version 4 requires the X-Amz-Algorithm, "
            "X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and "
            f"X-Amz-Expires parameters (missing {', '.join(missing)})"
        )
    return params


def _parse_expires(value: str) -> int:
    if value.startswith("-") and value[1:].isdigit():  # AWS: 400 too, not "expired"
        raise _query_error("X-Amz-Expires must be non-negative")
    if not value.isdigit():
        raise _query_error("X-Amz-Expires should be a number")
    expires = int(value)
    if expires > MAX_PRESIGNED_EXPIRES:
        raise _query_error("X-Amz-Expires must be less than a week (in seconds) that is 604800")
    return expires


def _query_error(message: str) -> S3Error:
    return S3Error(ErrorCode.AuthorizationQueryParametersError, message)


# ---- shared by both forms ---------------------------------------------------------------


def _parse_credential(
    credential: str, signed_headers: str, signature: str, code: ErrorCode
) -> _Signed:
    return _Signed(*_parse_scope(credential, signed_headers, code), signature.strip())


@functools.lru_cache(maxsize=1024)
def _parse_scope(
    credential: str, signed_headers: str, code: ErrorCode
) -> tuple[str, str, str, str, tuple[str, ...]]:
    """(access key, date, region, service, signed headers): the same for a client's requests
    all day, so parsed once (errors are not cached: they raise)."""
    parts = credential.strip().split("/")
    if len(parts) != 5 or not parts[0]:
        raise S3Error(
            code,
            f"The credential {credential!r} is malformed; expecting "
            '"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".',
        )
    access_key, date, region, service, terminator = parts
    if terminator != TERMINATOR:
        raise S3Error(code, f'The credential is mal-formed; expecting "{TERMINATOR}"')
    if service != SERVICE:
        raise S3Error(
            code, f'The credential is mal-formed; wrong service {service!r}; expecting "{SERVICE}"'
        )
    names = tuple(signed_headers.strip().split(";"))
    if "host" not in names:
        raise S3Error(code, "The host header must be signed")
    if any(not n or n != n.lower() for n in names):
        raise S3Error(code, f"Malformed SignedHeaders {signed_headers!r}")
    return access_key, date, region, service, names


def _check_scope(signed: _Signed, amz_date: str, region: str | None, code: ErrorCode) -> None:
    if signed.date != amz_date[:8]:
        raise S3Error(
            code, f"Invalid credential date {signed.date!r}. Date is not the same as X-Amz-Date."
        )
    if region is not None and signed.region != region:  # AWS's words, per form
        where = (
            "The authorization header is malformed"
            if code is ErrorCode.AuthorizationHeaderMalformed
            else "Error parsing the X-Amz-Credential parameter"
        )
        raise S3Error(
            code,
            f"{where}; the region '{signed.region}' is wrong; expecting '{region}'",
            Region=region,
        )


def _payload_mode(value: str) -> str:
    """Validate x-amz-content-sha256: a hex SHA-256 of the body or one of PAYLOAD_MODES."""
    value = value.strip()
    if value in PAYLOAD_MODES:
        return value
    if _HEX64.fullmatch(value):
        return value.lower()
    raise S3Error(
        ErrorCode.InvalidArgument,
        "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, "
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER, "
        "or a valid sha256 value.",
        ArgumentName="x-amz-content-sha256",
        ArgumentValue=value,
    )


def _verify(
    method: str,
    raw_path: str,
    query: list[tuple[bytes, bytes]],
    headers: Mapping[str, str],
    signed: _Signed,
    amz_date: str,
    payload: str,
    lookup: Callable[[str], str | None],
) -> AuthContext:
    secret = lookup(signed.access_key)
    if secret is None:
        raise S3Error(ErrorCode.InvalidAccessKeyId, AWSAccessKeyId=signed.access_key)
    request = canonical_request(
        method=method,
        raw_path=raw_path,
        query=query,
        headers=headers,
        signed_headers=signed.signed_headers,
        payload_hash=payload,
    )
    string_to_sign = "\n".join(
        (ALGORITHM, amz_date, signed.scope, hashlib.sha256(request.encode()).hexdigest())
    )
    key = signing_key(secret, signed.date, signed.region, signed.service)
    expected = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    if not signatures_equal(expected, signed.signature):
        raise S3Error(
            ErrorCode.SignatureDoesNotMatch,
            AWSAccessKeyId=signed.access_key,
            StringToSign=string_to_sign,
            SignatureProvided=signed.signature,
            CanonicalRequest=request,
        )
    return AuthContext(
        access_key=signed.access_key,
        payload_sha256=payload,
        streaming=payload.startswith("STREAMING-"),
        signed_chunks=payload in (STREAMING_SIGNED, STREAMING_SIGNED_TRAILER),
        trailer=payload.endswith("-TRAILER"),
        seed_signature=expected,
        signing_key=key,
        amz_date=amz_date,
        scope=signed.scope,
    )


def signatures_equal(expected: str, provided: str) -> bool:
    """Constant-time comparison of hex signatures (a provided one may be any garbage)."""
    return hmac.compare_digest(expected.encode(), provided.lower().encode("utf-8", "replace"))


def unsigned_context(payload_sha256: str) -> AuthContext:
    """The context of an anonymous request, so its body is read by the same readers.

    Signed streaming modes make no sense without a signature and are refused.
    """
    payload = _payload_mode(payload_sha256)
    if payload in (STREAMING_SIGNED, STREAMING_SIGNED_TRAILER):
        raise S3Error(ErrorCode.AccessDenied, f"{payload} requires a signed request")
    return AuthContext(
        access_key="",
        payload_sha256=payload,
        streaming=payload.startswith("STREAMING-"),
        signed_chunks=False,
        trailer=payload.endswith("-TRAILER"),
        seed_signature="",
        signing_key=b"",
        amz_date="",
        scope="",
    )


@functools.lru_cache(maxsize=1024)
def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """The derived key of one (secret, day, region, service); cached as it changes daily."""
    key = f"AWS4{secret}".encode()
    for part in (date, region, service, TERMINATOR):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


# ---- canonical request --------------------------------------------------------------------


def canonical_request(
    *,
    method: str,
    raw_path: str,
    query: list[tuple[bytes, bytes]],
    headers: Mapping[str, str],
    signed_headers: tuple[str, ...],
    payload_hash: str,
) -> str:
    return "\n".join(
        (
            method.upper(),
            canonical_uri(raw_path),
            canonical_query(query),
            canonical_headers(headers, signed_headers),
            ";".join(signed_headers),
            payload_hash,
        )
    )


def canonical_uri(raw_path: str) -> str:
    """Decode the path once and re-encode it the AWS way; S3 does not double-encode."""
    path = raw_path.split("?", 1)[0] or "/"
    if _PLAIN_PATH.fullmatch(path):  # nothing to decode or encode: most requests
        return path
    return quote(unquote_to_bytes(path), safe="/" + _URI_SAFE)


def _parse_query(raw_query: str) -> list[tuple[bytes, bytes]]:
    """Split a raw query on '&' and the first '=', decoding each side exactly once."""
    pairs = []
    for part in raw_query.lstrip("?").split("&"):
        if part:
            key, _, value = part.partition("=")
            pairs.append((unquote_to_bytes(key), unquote_to_bytes(value)))
    return pairs


def canonical_query(query: list[tuple[bytes, bytes]]) -> str:
    encoded = sorted((quote(k, safe=_URI_SAFE), quote(v, safe=_URI_SAFE)) for k, v in query)
    return "&".join(f"{k}={v}" for k, v in encoded)


def canonical_headers(headers: Mapping[str, str], signed_headers: tuple[str, ...]) -> str:
    """`name:value\\n` per signed header; repeated headers joined by ','; whitespace folded."""
    getall = getattr(headers, "getall", None)
    lines = []
    for name in signed_headers:
        values = getall(name, []) if getall else [v for v in (headers.get(name),) if v is not None]
        folded = ",".join(" ".join(v.split()) for v in values)  # str.split: \s+, stripped
        lines.append(f"{name}:{folded}\n")
    return "".join(lines)
