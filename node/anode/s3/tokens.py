"""Continuation tokens: opaque to clients (as S3 documents them), the last name listed inside."""

from __future__ import annotations

import base64
import binascii

from .errors import ErrorCode, S3Error


def encode(last: str) -> str:
    return base64.urlsafe_b64encode(last.encode()).decode()


def decode(token: str) -> str:
    """The name a token continues after; a token this node did not hand out is InvalidArgument."""
    try:
        return base64.urlsafe_b64decode(token.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise S3Error(
            ErrorCode.InvalidArgument,
            "The continuation token provided is incorrect",
            ArgumentName="continuation-token",
            ArgumentValue=token,
        ) from None
