"""Operator settings from the environment (the Deployment sets them; tests shorten them).

Read once at import, because kopf's timer intervals are fixed when the handlers are registered.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return float(raw) if raw else default


@dataclass(frozen=True)
class OperatorSettings:
    # How often every cluster is re-observed (status refresh, drift correction, next step).
    cluster_interval: float = _float("ANODE_OPERATOR_CLUSTER_INTERVAL", 15.0)
    bucket_interval: float = _float("ANODE_OPERATOR_BUCKET_INTERVAL", 60.0)
    # A Bucket deletion gives up (releases its finalizer) after the cluster was unreachable this
    # long, so namespaces never hang on a dead cluster.
    bucket_delete_give_up: float = _float("ANODE_OPERATOR_BUCKET_DELETE_GIVE_UP", 600.0)
    retry_delay: float = _float("ANODE_OPERATOR_RETRY_DELAY", 10.0)
    # Leader election (``leader``): a standby takes over within lease_duration + lease_retry
    # after the leader died, within lease_retry after it stopped gracefully.
    lease_duration: float = _float("ANODE_OPERATOR_LEASE_DURATION", 15.0)
    lease_renew_deadline: float = _float("ANODE_OPERATOR_LEASE_RENEW_DEADLINE", 10.0)
    lease_retry: float = _float("ANODE_OPERATOR_LEASE_RETRY", 2.0)


SETTINGS = OperatorSettings()
