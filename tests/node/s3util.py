"""Small helpers shared by the node tests (imported as a plain module by pytest's rootdir path)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError


def error_code(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response = exc.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]
