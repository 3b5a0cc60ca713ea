"""S3's error answer: the table of codes (`anode.errors.ErrorCode`) in S3's shape.

Handlers raise `S3Error(ErrorCode.X)`; the app's error middleware turns it, or a service's
`Refused` (`S3Error.of`), into the XML error document (with a RequestId) in one place. Nothing
else decides what a client sees when it fails.
"""

from __future__ import annotations

from ..errors import ErrorCode, Refused

__all__ = ["ErrorCode", "Refused", "S3Error"]


class S3Error(Refused):
    """An S3 error answer. `extra` adds elements to the XML document (e.g. BucketName, Key)."""

    def __init__(
        self,
        code: ErrorCode,
        message: str | None = None,
        *,
        resource: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: str,
    ) -> None:
        super().__init__(code, message)
        self.resource = resource
        self.headers = headers or {}
        self.extra = extra

    @classmethod
    def of(cls, refused: Refused) -> S3Error:
        """The S3 answer to a service's refusal (itself when it is one already)."""
        if isinstance(refused, S3Error):
            return refused
        return cls(refused.code, refused.message)
