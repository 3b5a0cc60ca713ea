"""What the admin API's modules share: the app key of the node and the JSON error shape."""

from __future__ import annotations

from aiohttp import web

from ..audit.record import ERROR_CODE
from ..node import Node

NODE_KEY = web.AppKey("node", Node)


def error(status: int, message: str, code: str) -> web.Response:
    response = web.json_response({"error": message, "code": code}, status=status)
    response[ERROR_CODE] = code  # for the audit record
    return response
