"""The S3 API: an aiohttp app that turns S3 requests into reads of the metadata and commands.

Request path (docs/architecture.md follows one PUT and one GET in full): `app.handle` →
`router.resolve` (the operation) → `sigv4` / `sigv2` / `postpolicy` (who is asking) →
`context.Context` (what a handler receives; `ctx.bucket()` is the permission check, through
`authz`, `policy`, `acl`, `permissions`) → `handlers/<family>.py` (one module per family of
operations, named in `handlers/__init__.py HANDLERS`) → `Node.propose(command)` for writes,
`meta.store.MetaStore` for reads → `xml` / `errors` for the answer.

Protocol: `router`, `sigv4`, `sigv2`, `streaming` (verified bodies), `postpolicy`, `checksums`,
`xml`, `errors`. Access: `acl`, `authz`, `policy`, `permissions`, `cors`. Features: `versions`,
`conditions`, `objectmeta`, `sse`, `lifecycle`, `tokens`. Services below raise
`anode.errors.Refused`; `app` answers it as an S3 error document.
"""
