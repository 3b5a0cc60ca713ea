"""Bucket lifecycle: `rules` (pure: what a rule expires, and when) and `worker` (the leader's
background task that proposes the expirations as commands). The S3 API's XML in and out is
`s3/lifecycle.py`.
"""

from .worker import LifecycleWorker, commands_for, plan_bucket

__all__ = ["LifecycleWorker", "commands_for", "plan_bucket"]
