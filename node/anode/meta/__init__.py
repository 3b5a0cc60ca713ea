"""Metadata: the replicated command log's format, the state machine that applies it, and reads.

Writes: `commands` (the log format: one frozen dataclass per command) -> `state` (`StateMachine`,
the only writer; its `APPLY` table names one function per command type) -> `apply_buckets`,
`apply_objects`, `apply_uploads`, `apply_cluster` (by record family) -> `version_steps` (the
steps on object versions they share) -> `tx` (one command's WriteBatch: read-your-writes,
chunk refcounts, usage, stats) -> `layout` (keys, encoding, `scan`: the one place that knows
the on-disk shape); `records` types the stored maps (`TypedDict`: typing only). Rules they
consult: `locks` (object lock), `quota`, `names`.
Reads: `store` (`MetaStore`: reads and a cache the state machine keeps fresh).
`consensus` is the interface `cluster/raft.py` implements (`LocalConsensus` on a single node).
"""
