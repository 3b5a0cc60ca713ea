"""Chunks: object bodies as content-addressed (SHA-256) files, their copies, and their cleanup.

Write: `ingest` (body → chunks, fsynced) → `store` (the files: the one place that knows their
layout; `segtable` lets a partial read verify only the 64 KiB segments it covers) → on a cluster,
`replication` (copies to the holders `placement` names, through `internode.client`) or
`erasure` + `fragments` (Reed-Solomon fragments). Read: `reader` (ranges of an object, verified
before a byte is sent; `crypto` opens encrypted chunks). Care: `scrub` (damaged copies found and
repaired), `gc` (chunks no version or part refers to, deleted after a grace period, proposing
ForgetGarbage). Reference counts themselves are metadata (`meta/tx.py`).
"""
