"""The slow single-node rules of the model harness: kill -9 and restart, a PUT cut by a kill,
waiting out the collector's grace and lifecycle expiry."""

from __future__ import annotations

import threading
import time
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule
from model_bodies import body, body_specs
from model_machine import BUCKETS, ENCS, KEYS, StoreMachine
from model_requests import Answer, Unavailable, parse_enc, write_sse
from model_targets import GC_GRACE
from s3model import Version


class FaultMachine(StoreMachine):
    """Adds the slow rules: kill -9 and restart, a write cut by a kill, the collector's grace,
    lifecycle expiry. At most a few per example, so a run stays bounded."""

    max_faults = 2

    def restart_node(self) -> None:
        for member in self.target.members:
            member.restart(wait=True)

    @precondition(lambda self: self.faults < self.max_faults and not self.target.clustered)
    @rule()
    def kill_and_restart(self) -> None:
        self.fault("kill_and_restart")
        self.restart_node()

    @precondition(lambda self: self.faults < self.max_faults and not self.target.clustered)
    @rule(
        b=st.integers(0, BUCKETS - 1),
        key=st.sampled_from(KEYS),
        spec=body_specs,
        enc=ENCS,
        delay=st.sampled_from([0.0, 0.005, 0.02, 0.05]),
    )
    def put_cut_by_kill(self, b: int, key: str, spec, enc: str, delay: float) -> None:
        """A PUT in flight when the node is killed: after the restart it is all there or not."""
        self.fault("put_cut_by_kill")
        data, encryption = body(spec), parse_enc(enc)
        effective = self.effective(b, encryption)
        outcome: list[Any] = []

        def send() -> None:
            try:
                outcome.append(
                    self.call(
                        self.user(b),
                        "put_object",
                        Bucket=self.bucket(b).name,
                        Key=key,
                        Body=data,
                        **write_sse(encryption),
                    )
                )
            except (Unavailable, AssertionError) as e:
                outcome.append(e)

        thread = threading.Thread(target=send)
        thread.start()
        time.sleep(delay)
        self.target.members[0].proc.kill()
        thread.join(60)
        self.restart_node()
        present = self.settle(
            b,
            key,
            lambda m, vid: m.put(key, Version(vid, data, effective)),
            f"PUT {key} cut by kill -9",
        )
        acknowledged = outcome and isinstance(outcome[0], Answer) and outcome[0].ok
        assert present or not acknowledged, f"PUT {key} acknowledged before kill -9, then lost"

    @precondition(lambda self: self.faults < self.max_faults)
    @rule()
    def wait_for_collector(self) -> None:
        """Past the collector's grace: every chunk still referenced must still be there."""
        self.fault("wait_for_collector")
        time.sleep(GC_GRACE + 1.0)
        self.check_everything()

    @precondition(lambda self: self.faults < self.max_faults and self.expiring)
    @rule()
    def wait_for_expiry(self) -> None:
        self.fault("wait_for_expiry")
        time.sleep(max(0.0, max(w[3] for w in self.expiring.values()) - time.time()) + 0.1)
        for pick in range(len(self.expiring)):
            self.get_expiring(pick)
