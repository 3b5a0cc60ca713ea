"""What a lifecycle rule does: which keys it applies to, and when it expires what.

Pure, no Anode imports. The worker (`lifecycle/worker.py`) asks these of each rule; the S3 API
(`s3/lifecycle.py`) parses and renders the rules and uses `applies_to` / `after_days` for the
x-amz-expiration header. Times are seconds, and a "day" is `day_seconds` long so that tests can
make days short.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

Rule = dict[str, Any]


def applies_to(
    rule: Rule, key: str, *, size: int | None = None, tags: Sequence[Sequence[str]] = ()
) -> bool:
    """The rule is enabled and its filter selects this key (size/tags None: a delete marker or
    an upload, which have neither, so only the prefix is tested)."""
    if rule["status"] != "Enabled":
        return False
    if "prefix_legacy" in rule:
        return key.startswith(rule["prefix_legacy"])
    flt = rule.get("filter", {})
    if not key.startswith(flt.get("prefix", "")):
        return False
    wanted = flt.get("tags", [])
    if wanted:
        have = {k: v for k, v in tags}
        if any(have.get(k) != v for k, v in wanted):
            return False
    if size is not None:
        if "gt" in flt and not size > flt["gt"]:
            return False
        if "lt" in flt and not size < flt["lt"]:
            return False
    elif "gt" in flt or "lt" in flt or wanted:
        return False
    return True


def after_days(start: float, days: int, day_seconds: float) -> float:
    """When `days` days after `start` have passed: AWS rounds the start up to the next midnight
    UTC (here: the next multiple of a day) and adds the days."""
    return math.ceil(start / day_seconds) * day_seconds + days * day_seconds


def current_expired(rule: Rule, record: dict[str, Any], now: float, day_seconds: float) -> bool:
    """Expiration (Days or Date) of a current version whose filter already matched."""
    exp = rule.get("expiration", {})
    if "days" in exp:
        return now >= after_days(record["mtime"], exp["days"], day_seconds)
    if "date" in exp:
        return now >= exp["date"]
    return False


def noncurrent_expired(
    rule: Rule, position: int, noncurrent_since: float, now: float, day_seconds: float
) -> bool:
    """NoncurrentVersionExpiration of the noncurrent version `position` (0: the newest
    noncurrent one), noncurrent since its successor was written."""
    nc = rule.get("noncurrent")
    if nc is None or position < nc.get("newer", 0):
        return False
    return now >= after_days(noncurrent_since, nc["days"], day_seconds)


def upload_expired(rule: Rule, initiated: float, now: float, day_seconds: float) -> bool:
    days = rule.get("abort_days")
    return days is not None and now >= after_days(initiated, days, day_seconds)
