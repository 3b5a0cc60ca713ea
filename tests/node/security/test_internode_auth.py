"""The internode chunk API (`[node] data_addr`) against requests without the secret, forged,
replayed or malformed (issue 12, item 6): 403 or 400, never 500, and nothing done.

A real internode server on 127.0.0.1 over a real chunk store, called with raw HTTP requests.
"""

from __future__ import annotations

import hashlib
import time

import aiohttp
import pytest
from aiohttp import web
from anode_procs import free_port

from anode.chunks.store import ChunkStore
from anode.internode import auth
from anode.internode.server import make_internode_app

SECRET = "internode-test-secret"
DATA = b"0123456789" * 10
DIGEST = hashlib.sha256(DATA).digest()
PATH = f"/chunks/{DIGEST.hex()}"


@pytest.fixture
async def api(tmp_path):
    store = ChunkStore(tmp_path / "chunks")
    store.write(DIGEST, DATA)
    runner = web.AppRunner(make_internode_app(chunks=store, secret=SECRET))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as http:
        yield http, store
    await runner.cleanup()


def _auth(value: str) -> dict[str, str]:
    return {auth.HEADER: value}


async def test_malformed_authentication_is_403_not_500(api):
    http, _ = api
    good = auth.sign(SECRET, "GET", PATH)
    _, nonce, mac = good.split(":")
    for value in [
        "9" * 400 + f":{nonce}:{mac}",
        "-5:" + nonce + ":" + mac,
        ":::",
        "x" * 5000,
        good.upper(),
        good + ":extra",
        "1e9:" + nonce + ":" + mac,
    ]:
        async with http.get(PATH, headers=_auth(value)) as r:
            assert r.status == 403, value[:40]


async def test_malformed_query_parameters_are_400(api):
    http, _ = api
    for query in [
        {"offset": "abc", "length": "4"},
        {"offset": "0", "length": "1e3"},
        {"offset": "-1", "length": "4"},
        {"offset": "9" * 40, "length": "1"},
    ]:
        async with http.get(
            PATH, params=query, headers=_auth(auth.sign(SECRET, "GET", PATH, query.items()))
        ) as r:
            assert r.status == 400, query
    for query in [{"limit": "many"}, {"limit": "0"}]:
        signed = _auth(auth.sign(SECRET, "GET", "/chunks", query.items()))
        async with http.get("/chunks", params=query, headers=signed) as r:
            assert r.status == 400, query


async def test_the_mac_covers_method_path_and_query(api):
    http, store = api
    query = {"offset": "0", "length": "4"}
    signed = _auth(auth.sign(SECRET, "GET", PATH, query.items()))
    async with http.get(PATH, params=query, headers=signed) as r:
        assert r.status == 200 and await r.read() == DATA[:4]
    async with http.get(PATH, params={"offset": "4", "length": "90"}, headers=signed) as r:
        assert r.status == 403  # another range with the same signature
    async with http.get(PATH, headers=signed) as r:
        assert r.status == 403  # the whole chunk
    other = "/chunks/" + "0" * 64
    async with http.delete(other, headers=_auth(auth.sign(SECRET, "DELETE", PATH))) as r:
        assert r.status == 403
    async with http.delete(PATH, headers=_auth(auth.sign(SECRET, "GET", PATH))) as r:
        assert r.status == 403
    listing = {"after": "", "limit": "1"}
    async with http.get(
        "/chunks",
        params={"limit": "5"},
        headers=_auth(auth.sign(SECRET, "GET", "/chunks", listing.items())),
    ) as r:
        assert r.status == 403
    assert store.exists(DIGEST)


async def test_a_mutating_request_is_accepted_once_and_stale_ones_never(api):
    http, store = api
    delete = _auth(auth.sign(SECRET, "DELETE", PATH))
    async with http.delete(PATH, headers=delete) as r:
        assert r.status == 204
    store.write(DIGEST, DATA)  # written again since, e.g. by a new upload
    async with http.delete(PATH, headers=delete) as r:
        assert r.status == 403  # the replay
    stale = _auth(auth.sign(SECRET, "DELETE", PATH, now=time.time() - auth.MAX_SKEW - 5))
    async with http.delete(PATH, headers=stale) as r:
        assert r.status == 403
    future = _auth(auth.sign(SECRET, "DELETE", PATH, now=time.time() + auth.MAX_SKEW + 5))
    async with http.delete(PATH, headers=future) as r:
        assert r.status == 403
    assert store.exists(DIGEST)
    async with http.get(PATH) as r:
        assert r.status == 403  # no authentication at all
    async with http.get(PATH, headers=_auth(auth.sign("another secret", "GET", PATH))) as r:
        assert r.status == 403


def test_the_replay_cache_is_bounded_and_refuses_what_it_forgot():
    cache = auth.ReplayCache(capacity=3)
    now = 1000.0
    assert all(cache.admit(990 + i, f"n{i}", now) for i in range(3))
    assert not cache.admit(991, "n1", now)
    assert cache.admit(995, "n3", now)  # forgets n0 (stamp 990)
    assert not cache.admit(990, "n0", now)  # could be a replay of a forgotten one
    assert cache.admit(996, "n4", now)
    assert cache.admit(1100, "n1", 1100.0)  # n1 expired long ago with its window
