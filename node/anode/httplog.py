"""One INFO line, not an ERROR with a traceback, for HTTP requests a client got wrong.

aiohttp logs every request it cannot parse (a bad header, a broken chunked body, a line too long)
through `aiohttp.server` at ERROR with the parser's traceback; anyone can send those, so they
would fill the log and hide real errors. The request is still answered 400 by aiohttp.
"""

from __future__ import annotations

import logging

from aiohttp.http_exceptions import HttpProcessingError

_LOGGER = "aiohttp.server"


class ClientErrorFilter(logging.Filter):
    """Rewrites aiohttp's record of a malformed request into one INFO line."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if not isinstance(error, HttpProcessingError):
            return True
        remote = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
        record.msg, record.args = "malformed HTTP request from %s: %s", (remote, _one_line(error))
        record.levelno, record.levelname = logging.INFO, logging.getLevelName(logging.INFO)
        record.exc_info = record.exc_text = None
        return logging.getLogger(record.name).isEnabledFor(logging.INFO)


def _one_line(error: HttpProcessingError) -> str:
    return " ".join(f"{type(error).__name__}: {error.message or error}".split())[:300]


def quiet_client_errors() -> None:
    """Idempotent: one filter on aiohttp's server logger."""
    logger = logging.getLogger(_LOGGER)
    if not any(isinstance(f, ClientErrorFilter) for f in logger.filters):
        logger.addFilter(ClientErrorFilter())
