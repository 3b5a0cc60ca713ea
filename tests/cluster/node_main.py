"""One cluster member for the tests: RocksDB + StateMachine + RaftConsensus + a control API.

Run as a script by `harness.Cluster`. The control API (JSON over HTTP on 127.0.0.1):
  POST /propose   {"commands": [[name, fields], ...]}  -> {"results": [...]}  | 503 NoQuorum
  POST /barrier                                        -> {}                  | 503 NoQuorum
  GET  /read?bucket=&key=[&barrier=1]                  -> {"record": ...}     | 503 NoQuorum
  GET  /keys?bucket=                                    -> {"keys": [...]} (local, no barrier)
  GET  /status                                         -> status() + batching + digest
  POST /members/add {"id", "address"}, /members/remove {"id"}, /transfer {"to"}
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import logging
import signal
import sys
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from anode.cluster import MembershipError, NoQuorum, NotLeader, RaftConsensus
from anode.meta import layout as L
from anode.meta.commands import _TYPES, PutObject, Rejected
from anode.meta.state import RAFT_POSITION_KEY, StateMachine
from anode.meta.store import open_db


def _jsonable(value: Any) -> Any:
    if isinstance(value, Rejected):
        return {"rejected": value.code}
    return value


def _command(spec: list[Any]) -> Any:
    name, fields = spec
    return _TYPES[name](**fields)


def _digest(db: Any) -> tuple[str, int]:
    """Hash of every replicated key (the position keys may lag on a follower)."""
    digest = hashlib.sha256()
    count = 0
    it = db.iter()
    it.seek_to_first()
    while it.valid():
        key = it.key()
        if key not in (RAFT_POSITION_KEY, L.APPLIED_KEY):
            digest.update(len(key).to_bytes(4, "big") + key + it.value())
            count += 1
        it.next()
    return digest.hexdigest(), count


def build_app(consensus: RaftConsensus, db: Any) -> web.Application:
    def unavailable(exc: Exception) -> web.Response:
        return web.json_response({"error": type(exc).__name__, "message": str(exc)}, status=503)

    async def propose(request: web.Request) -> web.Response:
        body = await request.json()
        try:
            results = await consensus.propose([_command(c) for c in body["commands"]])
        except NoQuorum as exc:
            return unavailable(exc)
        return web.json_response({"results": [_jsonable(r) for r in results]})

    async def barrier(request: web.Request) -> web.Response:
        try:
            await consensus.read_barrier()
        except NoQuorum as exc:
            return unavailable(exc)
        return web.json_response({})

    async def read(request: web.Request) -> web.Response:
        if request.query.get("barrier") == "1":
            try:
                await consensus.read_barrier()
            except NoQuorum as exc:
                return unavailable(exc)
        raw = db.get(L.object_key(request.query["bucket"], request.query["key"]))
        return web.json_response({"record": None if raw is None else L.unpack(raw)})

    async def keys(request: web.Request) -> web.Response:
        prefix = L.object_prefix(request.query["bucket"])
        found = []
        it = db.iter()
        it.seek(prefix)
        while it.valid() and it.key().startswith(prefix):
            found.append(it.key()[len(prefix) :].decode())
            it.next()
        return web.json_response({"keys": found})

    async def load(request: web.Request) -> web.Response:
        """In-process proposers (no HTTP per proposal), for bench_commits.py."""
        body = await request.json()
        stop = time.monotonic() + body["seconds"]
        latencies: list[float] = []
        errors = 0

        async def worker(i: int) -> None:
            nonlocal errors
            n = 0
            while time.monotonic() < stop:
                key = f"{body['tag']}-{i}-{n}"
                started = time.monotonic()
                try:
                    await consensus.propose(
                        [
                            PutObject(
                                bucket=body["bucket"],
                                key=key,
                                record={"etag": "e", "size": 1, "chunks": [], "mtime": 0.0},
                            )
                        ]
                    )
                    latencies.append(time.monotonic() - started)
                except NoQuorum:
                    errors += 1
                n += 1

        before = consensus.batching
        started = time.monotonic()
        await asyncio.gather(*(worker(i) for i in range(body["concurrency"])))
        elapsed = time.monotonic() - started
        entries = consensus.batching[0] - before[0]
        return web.json_response(
            {"latencies": latencies, "elapsed": elapsed, "entries": entries, "errors": errors}
        )

    async def status(request: web.Request) -> web.Response:
        status = consensus.status()
        status["batching"] = consensus.batching
        if request.query.get("digest"):
            status["digest"], status["keys"] = _digest(db)
        status["position"] = list(consensus._sm.raft_position())
        return web.json_response(status)

    async def membership(request: web.Request) -> web.Response:
        body = await request.json()
        action = request.match_info["action"]
        try:
            if action == "add":
                await consensus.add_member(body["id"], body["address"])
            elif action == "remove":
                await consensus.remove_member(body["id"])
            else:
                await consensus.transfer_leadership(body.get("to"))
        except (MembershipError, NotLeader) as exc:
            return web.json_response({"error": type(exc).__name__, "message": str(exc)}, status=409)
        except NoQuorum as exc:
            return unavailable(exc)
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/propose", propose)
    app.router.add_post("/barrier", barrier)
    app.router.add_get("/read", read)
    app.router.add_get("/status", status)
    app.router.add_get("/keys", keys)
    app.router.add_post("/load", load)
    app.router.add_post("/members/{action}", membership)
    return app


async def main(args: argparse.Namespace) -> None:
    data = Path(args.data)
    db = open_db(data / "meta")
    peers = dict(p.split("=", 1) for p in args.peers.split(",") if p)
    consensus = RaftConsensus(
        node_id=args.id,
        bind_addr=args.raft,
        peers=peers,
        state_machine=StateMachine(db),
        data_dir=data / "raft",
        secret=args.secret,
        learner=args.learner,
        initial_state=args.initial_state,
        listen_addr=args.listen,
        timeout=args.timeout,
        compaction_entries=args.compaction,
        append_batch_bytes=args.append_batch_bytes,
    )
    consensus.start()
    runner = web.AppRunner(build_app(consensus, db), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", args.http).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    await stop.wait()
    await runner.cleanup()
    await consensus.close()
    db.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--id", required=True)
    parser.add_argument("--raft", required=True)
    parser.add_argument("--http", type=int, required=True)
    parser.add_argument("--peers", default="")
    parser.add_argument("--data", required=True)
    parser.add_argument("--secret", default="test-secret")
    parser.add_argument("--learner", action="store_true")
    parser.add_argument("--initial-state", default="new")
    parser.add_argument("--listen", default=None)
    parser.add_argument("--timeout", type=float, default=3.0)
    parser.add_argument("--compaction", type=int, default=5000)
    parser.add_argument("--append-batch-bytes", type=int, default=1 << 16)
    logging.basicConfig(
        level=logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    asyncio.run(main(parser.parse_args()))
