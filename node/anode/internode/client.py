"""Client of the internode data API (`server.py`), one pooled HTTP session per node."""

from __future__ import annotations

import asyncio
import json
import ssl as ssl_module

import aiohttp

from . import auth


class PeerError(Exception):
    """A peer could not do what was asked (down, refused, or answered something unexpected)."""


class InternodeClient:
    def __init__(self, *, secret: str, timeout: float = 5.0,
                 ssl: ssl_module.SSLContext | None = None) -> None:
        # A hung peer (SIGSTOP, swap storm) accepts connections but never answers: bound every
        # call so a write falls back to the next holder instead of waiting for it.
        self._secret = secret
        self._ssl = ssl  # for https peers: what their certificates must chain to
        self._timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=2.0)
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout,
                connector=aiohttp.TCPConnector(limit=64, ssl=self._ssl or True))
        return self._session

    async def _call(self, method: str, base: str, path: str, *, params: dict | None = None,
                    **kwargs) -> tuple[int, bytes]:
        params = {k: str(v) for k, v in (params or {}).items()}
        headers = {auth.HEADER: auth.sign(self._secret, method, path, params.items())}
        try:
            async with self._http().request(method, base + path, params=params, headers=headers,
                                            **kwargs) as response:
                return response.status, await response.read()
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            raise PeerError(f"{method} {base}{path}: {e!r}") from e

    async def put_chunk(self, base: str, digest: bytes, data: bytes) -> None:
        status, body = await self._call("PUT", base, f"/chunks/{digest.hex()}", data=data)
        if status != 201:
            raise PeerError(f"PUT chunk to {base}: {status} {body[:200]!r}")

    async def get_chunk(self, base: str, digest: bytes, offset: int = 0,
                        length: int = -1) -> bytes:
        params = {} if offset == 0 and length < 0 else {"offset": offset, "length": length}
        status, body = await self._call("GET", base, f"/chunks/{digest.hex()}", params=params)
        if status != 200:
            raise PeerError(f"GET chunk from {base}: {status}")
        return body

    async def has_chunk(self, base: str, digest: bytes) -> bool:
        status, _ = await self._call("HEAD", base, f"/chunks/{digest.hex()}")
        return status == 200

    async def delete_chunk(self, base: str, digest: bytes) -> None:
        status, _ = await self._call("DELETE", base, f"/chunks/{digest.hex()}")
        if status != 204:
            raise PeerError(f"DELETE chunk on {base}: {status}")

    async def stats(self, base: str) -> dict[str, int]:
        status, body = await self._call("GET", base, "/stats")
        if status != 200:
            raise PeerError(f"GET stats from {base}: {status}")
        return json.loads(body)

    async def healthy(self, base: str, timeout: float = 1.0) -> bool:
        try:
            status, _ = await asyncio.wait_for(self._call("GET", base, "/health"), timeout)
        except (PeerError, TimeoutError):
            return False
        return status == 200

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
