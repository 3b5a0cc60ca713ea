"""S3 Select (SelectObjectContent) over CSV, JSON and Parquet objects.

Entry points for the S3 request path: `parse_request` (XML body -> `SelectRequest`, raising
`SelectError`), `run_select` (async iterator of event-stream messages), `FooterCache` (parsed
Parquet footers per object version, also serving footer range GETs from memory) and the
`RangeSource` protocol through which the engine reads object bytes.
"""

from .engine import run_select
from .errors import SELECT_ERRORS, SelectError
from .footer_cache import FooterCache
from .inputs import RangeSource
from .request import SelectRequest, parse_request

__all__ = [
    "SELECT_ERRORS",
    "FooterCache",
    "RangeSource",
    "SelectError",
    "SelectRequest",
    "parse_request",
    "run_select",
]
