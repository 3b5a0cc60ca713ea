"""The few S3 calls the operator makes as a bucket's owner (bucket settings that live in the S3
API, not the admin API), signed with SigV4 by awscrt (already a node dependency, the same signer
the AWS SDKs use), sent with urllib. Path-style addressing, so pod addresses work."""

from __future__ import annotations

import hashlib
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlsplit

from awscrt import auth, http

S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"


class S3Error(Exception):
    def __init__(self, *, status: int, body: str) -> None:
        super().__init__(f"{status}: {body[:200]}")
        self.status = status
        self.body = body


@dataclass(frozen=True)
class S3Client:
    endpoint: str  # http://host:8080
    access_key: str
    secret_key: str
    region: str
    timeout: float = 5.0
    context: ssl.SSLContext | None = None  # https: whom to trust (``tlsclient``)

    def _signed_headers(self, *, method: str, path: str, body: bytes) -> dict[str, str]:
        digest = hashlib.sha256(body).hexdigest()
        host = urlsplit(self.endpoint).netloc
        request = http.HttpRequest(
            method=method,
            path=path,
            headers=http.HttpHeaders([("Host", host), ("Content-Length", str(len(body)))]),
        )
        config = auth.AwsSigningConfig(
            algorithm=auth.AwsSigningAlgorithm.V4,
            signature_type=auth.AwsSignatureType.HTTP_REQUEST_HEADERS,
            credentials_provider=auth.AwsCredentialsProvider.new_static(
                self.access_key, self.secret_key
            ),
            region=self.region,
            service="s3",
            signed_body_value=digest,
            signed_body_header_type=auth.AwsSignedBodyHeaderType.X_AMZ_CONTENT_SHA_256,
        )
        signed = auth.aws_sign_request(request, config).result(timeout=self.timeout)
        return {name: value for name, value in signed.headers}

    def request(self, *, method: str, path: str, body: bytes = b"") -> bytes:
        headers = self._signed_headers(method=method, path=path, body=body)
        req = urllib.request.Request(
            self.endpoint.rstrip("/") + path, data=body or None, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout, context=self.context) as resp:
                return resp.read()
        except urllib.error.HTTPError as exc:
            raise S3Error(status=exc.code, body=exc.read().decode(errors="replace")) from None

    def _get_or_none(self, *, path: str, absent: str) -> bytes | None:
        """The body, or None when the node answers 404 with the S3 error code ``absent``."""
        try:
            return self.request(method="GET", path=path)
        except S3Error as exc:
            if exc.status == 404 and f"<Code>{absent}</Code>" in exc.body:
                return None
            raise

    def get_bucket_policy(self, *, bucket: str) -> str | None:
        raw = self._get_or_none(path=f"/{bucket}?policy", absent="NoSuchBucketPolicy")
        return None if raw is None else raw.decode()

    def put_bucket_policy(self, *, bucket: str, policy: bytes) -> None:
        self.request(method="PUT", path=f"/{bucket}?policy", body=policy)

    def delete_bucket_policy(self, *, bucket: str) -> None:
        self.request(method="DELETE", path=f"/{bucket}?policy")

    def get_bucket_lifecycle(self, *, bucket: str) -> bytes | None:
        return self._get_or_none(
            path=f"/{bucket}?lifecycle", absent="NoSuchLifecycleConfiguration"
        )

    def put_bucket_lifecycle(self, *, bucket: str, configuration: bytes) -> None:
        self.request(method="PUT", path=f"/{bucket}?lifecycle", body=configuration)

    def delete_bucket_lifecycle(self, *, bucket: str) -> None:
        self.request(method="DELETE", path=f"/{bucket}?lifecycle")

    def put_bucket_versioning(self, *, bucket: str, status: str) -> None:
        body = (
            f'<VersioningConfiguration xmlns="{S3_NS}"><Status>{status}</Status>'
            "</VersioningConfiguration>"
        ).encode()
        self.request(method="PUT", path=f"/{bucket}?versioning", body=body)

    def get_bucket_versioning(self, *, bucket: str) -> str:
        """``Enabled``, ``Suspended`` or ``""`` (never enabled)."""
        raw = self.request(method="GET", path=f"/{bucket}?versioning").decode()
        for status in ("Enabled", "Suspended"):
            if f"<Status>{status}</Status>" in raw:
                return status
        return ""
