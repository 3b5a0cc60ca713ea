"""The names metadata accepts: S3's general-purpose bucket naming rules, as one predicate.

Pure. Both APIs check it before proposing a CreateBucket, each answering in its own shape
(`s3/handlers/bucket.py` with the BucketName element, the admin API as JSON).
"""

from __future__ import annotations

import ipaddress
import re

_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def valid_bucket_name(name: str) -> bool:
    """S3's general-purpose bucket naming rules."""
    valid = (
        _BUCKET_NAME.fullmatch(name) is not None
        and ".." not in name
        and ".-" not in name
        and "-." not in name
        and not name.startswith(("xn--", "sthree-", "amzn-s3-demo-"))
        and not name.endswith(("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"))
    )
    if valid:
        try:
            ipaddress.IPv4Address(name)
            return False
        except ValueError:
            pass
    return valid
