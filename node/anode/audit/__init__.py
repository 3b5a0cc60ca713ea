"""The audit log: one JSON line per S3 and admin request a member served (see docs/config.md,
`[audit]`). `record` builds records (pure), `sink` writes them (file, stdout, webhook), `access`
hooks them into the HTTP servers once per request, after the answer has been sent."""
