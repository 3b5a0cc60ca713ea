"""S3 Select (SelectObjectContent) over CSV, JSON and Parquet objects.

Entry points for the S3 request path: `parse_request` (XML body -> `SelectRequest`, raising
`SelectError` with ``.code``/``.status``/``.message``), `run_select` (async iterator of encoded
event-stream messages), `FooterCache` (parsed Parquet footers per object version, also serving
footer range GETs from memory) and the `RangeSource` protocol through which the engine reads.

Pipeline: `sql_lexer` -> `sql_parser` (-> `ast`) -> `evaluate` (closures over `values`
semantics); `inputs` (CSV/JSON streams), `csv_arrow` / `json_arrow` (blocks from `blocks` parsed by
pyarrow.csv / pyarrow.json) or
`parquet_scan` (+ `footer_cache`) produce record batches; `engine` filters, projects or
aggregates them in worker threads, vectorized with pyarrow.compute (`vector`, `vector_plan`)
where that gives exactly the per-record result, per record otherwise; `outputs` serializes;
`eventstream` frames. `request` validates the XML; `errors` is the S3 Select error table.

Semantics worth knowing: CSV fields are strings that compare numerically with numbers
(``s._1 > 5``) and lexically with strings; a value that is not a number compared with a number is
unknown (the record does not pass), as are NULL, MISSING and NaN comparisons. Unquoted names are
case-insensitive, double-quoted names exact. Integer division truncates. Timestamps are ION text.
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
