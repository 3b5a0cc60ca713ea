"""A minimal AWS SigV4 signer for the load generator.

Why not botocore: building an `AWSRequest` and running `S3SigV4Auth` costs ~100 µs of Python per
request, and the load generator shares the machine's two cores with the server under test, so a
slow client would flatten every target's numbers. This signer caches the derived signing key per
day and signs only `host`, `x-amz-content-sha256` and `x-amz-date` with `UNSIGNED-PAYLOAD`, which
every S3 implementation accepts and which keeps body hashing out of the measurement. The smoke
test checks it against botocore byte for byte.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from urllib.parse import quote

UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
_SIGNED_HEADERS = "host;x-amz-content-sha256;x-amz-date"


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def canonical_query(params: dict[str, str] | None) -> str:
    """Query string in SigV4 canonical form (sorted, RFC 3986 encoded); also used on the wire."""
    if not params:
        return ""
    return "&".join(
        f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(params.items())
    )


class Signer:
    """Signs S3 requests for one access key / region (the `s3` service)."""

    def __init__(self, access_key: str, secret_key: str, region: str = "us-east-1") -> None:
        self.access_key = access_key
        self.secret_key = secret_key
        self.region = region
        self._day = ""
        self._key = b""

    def _signing_key(self, day: str) -> bytes:
        if day != self._day:
            k = _hmac(("AWS4" + self.secret_key).encode(), day)
            k = _hmac(k, self.region)
            k = _hmac(k, "s3")
            self._key = _hmac(k, "aws4_request")
            self._day = day
        return self._key

    def headers(
        self,
        method: str,
        host: str,
        path: str,
        query: str = "",
        *,
        now: dt.datetime | None = None,
    ) -> dict[str, str]:
        """Headers that authenticate `method host path?query` (path already URI-encoded)."""
        now = now or dt.datetime.now(dt.UTC)
        amz_date = now.strftime("%Y%m%dT%H%M%SZ")
        day = amz_date[:8]
        canonical = (
            f"{method}\n{path}\n{query}\n"
            f"host:{host}\nx-amz-content-sha256:{UNSIGNED_PAYLOAD}\nx-amz-date:{amz_date}\n\n"
            f"{_SIGNED_HEADERS}\n{UNSIGNED_PAYLOAD}"
        )
        scope = f"{day}/{self.region}/s3/aws4_request"
        to_sign = (
            f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n"
            f"{hashlib.sha256(canonical.encode()).hexdigest()}"
        )
        signature = hmac.new(self._signing_key(day), to_sign.encode(), hashlib.sha256).hexdigest()
        return {
            "x-amz-date": amz_date,
            "x-amz-content-sha256": UNSIGNED_PAYLOAD,
            "Authorization": (
                f"AWS4-HMAC-SHA256 Credential={self.access_key}/{scope}, "
                f"SignedHeaders={_SIGNED_HEADERS}, Signature={signature}"
            ),
        }
