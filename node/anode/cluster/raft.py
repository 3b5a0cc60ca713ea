"""`RaftConsensus`: the `Consensus` interface over a pysyncobj Raft group, bridged to asyncio.

pysyncobj does elections, replication, log compaction and membership in one thread; this class
owns that thread (`_run`), feeds it grouped proposals (`Batcher`), and hands results back to the
event loop with `call_soon_threadsafe`. What pysyncobj lacks is added around it:

* apply-once: the state machine records the log index it applied atomically with the writes,
  so pysyncobj's journal replay after a restart is a no-op for entries already on disk;
* snapshots are RocksDB checkpoints (`snapshot.CheckpointSnapshots`);
* durability: the journal is fsynced before any message leaves the node (`journal`,
  `replica.SyncingTransport`), and truncation only happens on a real conflict;
* linearizable reads: `read_barrier` commits an empty entry through the leader and waits until
  it is applied here — the read-index of this entry is the log itself, so no clock assumptions;
  concurrent barriers and writes share entries;
* bounded failure: without a leader or a majority, proposals and barriers raise `NoQuorum`
  after `timeout` seconds (pysyncobj would queue them until a leader shows up);
* members have ids (the node ids of the config), kept in the replicated state under `R/member/`.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import msgpack
from pysyncobj import FAIL_REASON, SyncObjConf

from ..meta.commands import Command, decode, encode
from ..meta.consensus import Consensus
from ..meta.layout import scan
from ..meta.state import StateMachine
from . import rejoin
from .batcher import Batcher
from .errors import MembershipError, NoQuorum, NotLeader
from .replica import Replica
from .snapshot import CheckpointSnapshots

log = logging.getLogger(__name__)

MEMBER_PREFIX = b"R/member/"
_ROLES = {0: "follower", 1: "candidate", 2: "leader"}
_TICK = 0.05
_STATUS_EVERY = 0.02


class RaftConsensus(Consensus):
    """Replicates metadata commands to every member and applies them in log order."""

    def __init__(
        self,
        *,
        node_id: str,
        bind_addr: str,
        peers: dict[str, str],
        state_machine: StateMachine,
        data_dir: Path,
        secret: str,
        learner: bool = False,
        initial_state: str = "new",
        listen_addr: str | None = None,
        timeout: float = 5.0,
        compaction_entries: int = 5000,
        compaction_seconds: float = 300.0,
        append_batch_bytes: int = 8 << 20,
        max_inflight: int = 1,  # measured: 1 beats 2 and 4 (bigger entries, fewer rounds)
    ) -> None:
        if not secret:
            raise ValueError("a cluster secret is required: Raft traffic carries pickles")
        self.node_id = node_id
        self.address = bind_addr  # this member's identity in the Raft config: peers dial it
        self._listen = listen_addr or bind_addr  # e.g. "0.0.0.0:9090" behind an advertised name
        self._peers = dict(peers)
        self._sm = state_machine
        self._data_dir = data_dir
        self._secret = secret
        self._learner = learner
        if initial_state not in ("new", "existing"):
            raise ValueError(f'initial_state: "new" or "existing", got {initial_state!r}')
        self._existing = initial_state == "existing"
        self._rejoin: rejoin.Rejoin | None = None  # set while rejoining after a lost volume
        self._timeout = timeout
        self._compaction = (compaction_entries, compaction_seconds)
        self._append_batch_bytes = append_batch_bytes
        self._replica: Replica | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._calls: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._status: dict[str, Any] = {}
        self.leader_changes = 0  # new leaders seen (the first included), for metrics
        self._last_leader: str | None = None
        self._membership = asyncio.Lock()
        self._snapshots = CheckpointSnapshots(state_machine=state_machine, work_dir=data_dir)
        # pysyncobj splits an entry larger than its AppendEntries limit into chunks, and that
        # path mislabels the last chunk when it is shorter than the pickle header (the follower
        # then fails to unpickle): keep every entry well under the limit instead.
        self._max_entry_bytes = append_batch_bytes // 2
        self._batcher = Batcher(
            submit=self._submit,
            timeout=timeout,
            max_inflight=max_inflight,
            max_bytes=self._max_entry_bytes // 2,
        )
        self._members: dict[str, str] = {node_id: bind_addr, **peers}  # id -> address

    # ---- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        self._data_dir.mkdir(parents=True, exist_ok=True)
        for key, raw in scan(self._sm.db, MEMBER_PREFIX):
            record = msgpack.unpackb(raw)
            self._members[key[len(MEMBER_PREFIX) :].decode()] = record["address"]
        self._rejoin = rejoin.load(self._data_dir)
        lost = self._existing and not self._learner and rejoin.lost_volume(self._data_dir)
        if self._rejoin is None and lost:
            log.warning(
                "%s: no Raft state on this volume but the cluster exists: rejoining as a "
                "learner until the old voter entry is replaced (cluster/rejoin.py)",
                self.node_id,
            )
            self._rejoin = rejoin.Rejoin()
            rejoin.save(self._data_dir, self._rejoin)
        if self._rejoin is not None:
            self._learner = True
        self._replica = self._make_replica(learner=self._learner)
        self._thread = threading.Thread(target=self._run, name=f"raft-{self.node_id}", daemon=True)
        self._thread.start()

    async def close(self) -> None:
        self._stopping.set()
        if self._replica is not None:
            self._replica.wake()
        if self._thread is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._thread.join)
        self._batcher.fail_all(NoQuorum("consensus closed"))  # queued and in flight

    def _make_replica(self, *, learner: bool) -> Replica:
        entries, seconds = self._compaction
        conf = SyncObjConf(
            password=self._secret,
            bindAddress=self._listen,
            journalFile=str(self._data_dir / "raft.journal"),
            fullDumpFile=str(self._data_dir / "raft.snapshot"),
            serializer=self._snapshots.serialize,
            deserializer=self._snapshots.deserialize,
            autoTick=False,
            appendEntriesUseBatch=False,
            appendEntriesBatchSizeBytes=self._append_batch_bytes,
            dynamicMembershipChange=True,
            commandsWaitLeader=False,
            leaderFallbackTimeout=2.0,
            logCompactionMinEntries=entries,
            logCompactionMinTime=seconds,
            logCompactionBatchSize=1 << 20,
            useFork=False,
            connectionRetryTime=0.5,  # reconnect quickly to a restarted member
            dnsCacheTime=5.0,  # peers are names (pods): a restarted one may have a new IP
            dnsFailCacheTime=1.0,
        )
        others = [a for i, a in sorted(self._peers.items()) if a != self.address]
        return Replica(
            None if learner else self.address,
            others,
            conf,
            apply=self._apply,
            register=self._register,
        )

    # ---- the Raft thread ------------------------------------------------------------------

    def _run(self) -> None:
        replica = self._replica
        assert replica is not None
        next_status = 0.0
        try:
            while not self._stopping.is_set():
                while True:
                    try:
                        self._calls.get_nowait()()
                    except queue.Empty:
                        break
                try:
                    journal = replica.journal
                    if journal is not None:
                        journal.sync()  # the leader's own entries, before it counts commits
                    replica.doTick(_TICK)
                except Exception:  # as pysyncobj's own tick thread: log, pause, go on
                    log.exception("raft tick failed")
                    time.sleep(_TICK)
                now = time.monotonic()
                if now >= next_status:  # ticks can run thousands of times a second under load
                    next_status = now + _STATUS_EVERY
                    status = self._collect_status(replica)
                    leader = status["leader_address"]
                    if leader is not None and leader != self._last_leader:
                        self._last_leader = leader
                        self.leader_changes += 1
                    self._status = status
                    if self._learner and self._caught_up(replica):
                        self._note_caught_up(replica)
                        if self.address in {n.address for n in replica.otherNodes} and (
                            self._rejoin is None or self._rejoin.removed
                        ):
                            replica = self._promote(replica)
        finally:
            replica.destroy()

    @staticmethod
    def _caught_up(replica: Replica) -> bool:
        """A leader talks to us and we applied what it had committed when it last did.

        A learner replaying old entries may pass a configuration that names it (an earlier
        membership of this id): only the configuration as of the leader's commit counts."""
        raw = replica.getStatus()
        leader_commit = raw["leader_commit_idx"]
        return (
            raw["leader"] is not None
            and leader_commit is not None
            and raw["last_applied"] >= leader_commit
        )

    def _note_caught_up(self, replica: Replica) -> None:
        if self._rejoin is not None and self._rejoin.since is None:
            self._rejoin = self._rejoin.caught_up(replica.raftLastApplied)
            rejoin.save(self._data_dir, self._rejoin)
            log.warning(
                "%s caught up at %d while rejoining: remove its old voter entry, then add it",
                self.node_id,
                self._rejoin.since,
            )

    def _promote(self, replica: Replica) -> Replica:
        """The log made us a voter: reopen the same journal as a full member."""
        peers = {n.address for n in replica.otherNodes} - {self.address}
        replica.destroy()
        if self._rejoin is not None:
            rejoin.clear(self._data_dir)  # our votes from now on are this volume's own
            self._rejoin = None
        self._peers = {self._id_of(a) or a: a for a in peers}
        self._learner = False
        self._replica = replica = self._make_replica(learner=False)
        log.info("%s promoted from learner to voter", self.node_id)
        return replica

    def _in_raft_thread(self, call: Callable[[], Any]) -> asyncio.Future[Any]:
        """Run `call` between two ticks; await the returned future for its result."""
        future: Future[Any] = Future()

        def run() -> None:
            try:
                future.set_result(call())
            except Exception as exc:
                future.set_exception(exc)

        self._calls.put(run)
        if self._replica is not None:
            self._replica.wake()
        return asyncio.wrap_future(future)

    # ---- applying the log (Raft thread) ---------------------------------------------------

    def _apply(self, encoded: list[bytes], index: int) -> list[Any]:
        try:
            commands = [decode(raw) for raw in encoded]
        except Exception as exc:  # e.g. a command from a newer version: fail it, keep going
            log.exception("undecodable entry %d", index)
            return [exc] * len(encoded)
        return self._sm.apply_many(commands, index=index)

    def _register(self, node_id: str, address: str, voter: bool, index: int) -> None:
        if self._rejoin is not None and node_id == self.node_id and not address:
            state = self._rejoin.removal_applied(index)
            if state != self._rejoin:
                rejoin.save(self._data_dir, state)
                self._rejoin = state
                log.warning("%s: old voter entry removed at %d", self.node_id, index)
        key = MEMBER_PREFIX + node_id.encode()
        if address:
            record = {"address": address, "voter": voter}
            self._sm.db.put(key, msgpack.packb(record))
            self._members[node_id] = address
        else:
            self._sm.db.delete(key)
            self._members.pop(node_id, None)

    # ---- proposals ------------------------------------------------------------------------

    def _submit(self, encoded: list[bytes], callback: Callable[[Any, int], None]) -> None:
        replica = self._replica
        if replica is None or self._stopping.is_set():
            callback(None, FAIL_REASON.MISSING_LEADER)
            return
        replica.apply_entry(encoded, callback=callback)

    async def propose(self, commands: Sequence[Command]) -> list[Any]:
        """Results of `commands`, in order, once committed and applied on this node."""
        encoded = [encode(cmd) for cmd in commands]
        if sum(len(e) for e in encoded) > self._max_entry_bytes:
            raise ValueError(f"proposal larger than {self._max_entry_bytes} bytes")
        return await self._batcher.propose(encoded)

    async def read_barrier(self) -> None:
        """Return once this node has applied everything committed before the call.

        An empty entry proposed now is committed after every entry committed before the call;
        once it is applied here, so are they.
        """
        await self._batcher.propose([])

    @property
    def batching(self) -> tuple[int, int]:
        """(log entries, commands) this node has submitted."""
        return self._batcher.entries, self._batcher.commands

    # ---- status ---------------------------------------------------------------------------

    def _collect_status(self, replica: Replica) -> dict[str, Any]:
        raw = replica.getStatus()
        leader = raw["leader"]
        voters = [n.address for n in replica.otherNodes]
        role = "learner" if self._learner else _ROLES.get(raw["state"], "follower")
        members = [{"address": self.address, "voter": not self._learner, "healthy": True}]
        connected = {a: raw.get("partner_node_status_server_" + a) == 2 for a in voters}
        members += [{"address": a, "voter": True, "healthy": connected[a]} for a in sorted(voters)]
        journal = replica.journal
        return {
            "role": role,
            "leader_address": getattr(leader, "address", None),
            "term": raw["raft_term"],
            "commit_index": raw["commit_idx"],
            "applied_index": raw["last_applied"],
            "members": members,
            "learners": raw["readonly_nodes_count"],
            "match": {
                k[len("match_idx_server_") :]: v
                for k, v in raw.items()
                if k.startswith("match_idx_server_")
            },
            "log_len": raw["log_len"],
            "journal_syncs": journal.syncs if journal else 0,
            "truncation_kept": journal.kept_on_truncate if journal else 0,
        }

    def _id_of(self, address: str | None) -> str | None:
        if address is None:
            return None
        for node_id, known in self._members.items():
            if known == address:
                return node_id
        return address

    def status(self) -> dict[str, Any]:
        status = dict(self._status) or {
            "role": "follower",
            "leader_address": None,
            "term": 0,
            "commit_index": 0,
            "applied_index": 0,
            "members": [],
        }
        status["leader"] = self._id_of(status.pop("leader_address"))
        status["members"] = [
            {"id": self._id_of(m["address"]), **m} for m in status.get("members", [])
        ]
        snaps = self._snapshots
        status["snapshots"] = {
            "taken": snaps.taken,
            "restored": snaps.restored,
            "install_error": snaps.install_error,  # None unless the last dump failed to install
        }
        state = self._rejoin  # set while rejoining after a lost volume (rejoin.py)
        status["rejoin"] = (
            None if state is None else {"since": state.since, "removed": state.removed}
        )
        return status

    def _require_leader(self) -> None:
        status = self.status()
        if status["role"] != "leader":
            raise NotLeader(status["leader"])

    # ---- membership -----------------------------------------------------------------------

    async def add_member(self, node_id: str, address: str) -> None:
        """Promote a learner (started with `learner=True`) to voter once it has caught up.

        Call on the leader. The new node receives the log (or a snapshot) as a non-voting
        read-only member first; only when its log reaches the commit index seen at the start is
        it added to the voters, so it never holds up commits while far behind.
        """
        async with self._membership:
            self._require_leader()
            if address in {m["address"] for m in self.status()["members"]}:
                raise MembershipError(f"{address} is already a member")
            await self._caught_up_learner()
            await self._membership_op(
                lambda r, cb: r.register_member(node_id, address, False, callback=cb)
            )
            await self._membership_op(lambda r, cb: r.addNodeToCluster(address, callback=cb))
            await self._membership_op(
                lambda r, cb: r.register_member(node_id, address, True, callback=cb)
            )
            await self._wait(lambda s: _member(s, address, healthy=True), "new member connected")

    async def _caught_up_learner(self) -> None:
        """Wait until exactly one learner is connected and has the log up to our commit."""
        target = self.status()["commit_index"]
        deadline = time.monotonic() + max(30.0, self._timeout * 6)
        while time.monotonic() < deadline:
            status = self.status()
            if status["learners"] > 1:
                raise MembershipError("more than one learner connected: add one at a time")
            learner_match = [v for k, v in status["match"].items() if k.isdigit()]
            if status["learners"] == 1 and learner_match and learner_match[0] >= target:
                return
            await asyncio.sleep(0.1)
        raise MembershipError("no learner caught up: start the new node with learner=True")

    async def remove_member(self, node_id: str) -> None:
        """Remove a voter; refused when the remaining healthy voters would not be a majority."""
        async with self._membership:
            self._require_leader()
            address = self._members.get(node_id)
            if node_id == self.node_id:
                raise MembershipError("transfer leadership away before removing the leader")
            members = self.status()["members"]
            voters = [m for m in members if m["voter"]]
            if address is None or address not in {m["address"] for m in voters}:
                raise MembershipError(f"{node_id} is not a voter")
            remaining = [m for m in voters if m["address"] != address]
            healthy = sum(1 for m in remaining if m["healthy"])
            if not remaining or healthy <= len(remaining) / 2:
                raise MembershipError(
                    f"removing {node_id} leaves {healthy} healthy of {len(remaining)} voters"
                )
            await self._membership_op(lambda r, cb: r.removeNodeFromCluster(address, callback=cb))
            await self._membership_op(
                lambda r, cb: r.register_member(node_id, "", False, callback=cb)
            )
            await self._wait(
                lambda s: all(m["address"] != address for m in s["members"]), "member removed"
            )

    async def _membership_op(
        self, call: Callable[[Replica, Callable[[Any, int], None]], None]
    ) -> None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()

        def callback(_: Any, reason: int) -> None:
            def settle() -> None:
                if not future.done():
                    future.set_result(reason)

            loop.call_soon_threadsafe(settle)

        assert self._replica is not None
        call(self._replica, callback)
        self._replica.wake()
        try:
            reason = await asyncio.wait_for(future, self._timeout)
        except TimeoutError:
            raise NoQuorum("membership change not committed in time") from None
        if reason != FAIL_REASON.SUCCESS:
            raise MembershipError(f"membership change refused (reason {reason})")

    async def transfer_leadership(self, to: str | None = None) -> None:
        """Hand leadership to `to` (a node id; None: the most caught-up voter) and wait for it."""
        self._require_leader()
        address = None if to is None else self._members.get(to)
        if to is not None and address is None:
            raise MembershipError(f"unknown member {to}")
        deadline = time.monotonic() + self._timeout
        while True:
            reasons: list[int] = []

            def run(address: str | None = address, reasons: list[int] = reasons) -> None:
                assert self._replica is not None
                self._replica.transferLeadership(address, lambda _, r: reasons.append(r))

            await self._in_raft_thread(run)
            if reasons and reasons[0] == FAIL_REASON.SUCCESS:
                break
            if time.monotonic() > deadline:  # the target never caught up
                raise MembershipError(f"leadership transfer refused (reason {reasons})")
            await asyncio.sleep(0.05)
        await self._wait(
            lambda s: s["leader"] not in (None, self.node_id) and (to is None or s["leader"] == to),
            "leadership transferred",
        )

    async def _wait(self, predicate: Callable[[dict[str, Any]], bool], what: str) -> None:
        deadline = time.monotonic() + max(10.0, self._timeout * 2)
        while time.monotonic() < deadline:
            if predicate(self.status()):
                return
            await asyncio.sleep(0.05)
        raise NoQuorum(f"timed out waiting for: {what}")


def _member(status: dict[str, Any], address: str, *, healthy: bool) -> bool:
    return any(m["address"] == address and m["healthy"] == healthy for m in status["members"])
