"""The admin API (docs/admin-api.md) on its own port, answering JSON.

`app` (routes: probes, metrics, status, users, buckets, quotas, KMS keys; the error middleware
that answers `anode.errors.Refused` as JSON), `membership` (Raft members: the contract the
operator drives), `integrity` (damaged chunks and the objects they make unreadable), `common`
(the node's app key and the JSON error shape). Independent of the S3 API (`lint-imports`).
"""
