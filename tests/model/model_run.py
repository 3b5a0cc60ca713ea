"""Running a model state machine: hypothesis settings profiles and the seed."""

from __future__ import annotations

import json
import os

import hypothesis
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test
from model_requests import STATS

# `make test` runs the "model" profile; `make soak` runs "soak" (more examples per seed) in a loop.
settings.register_profile(
    "model",
    max_examples=200,
    stateful_step_count=12,
    deadline=None,
    database=None,
    print_blob=True,
    derandomize=False,
    suppress_health_check=list(HealthCheck),
)
settings.register_profile(
    "soak", settings.get_profile("model"), max_examples=400, stateful_step_count=20
)
PROFILE = os.environ.get("MODEL_PROFILE", "model")


def run_machine(machine, seed: int, share: float) -> None:
    """Run a state machine with the profile's budget times `share`, from `seed`; a failure
    says how to replay it (hypothesis prints the shrunk steps above it)."""
    budget = settings.get_profile(PROFILE)
    chosen = settings(budget, max_examples=max(1, int(budget.max_examples * share)))

    def factory():
        return machine()

    STATS.clear()
    try:
        run_state_machine_as_test(hypothesis.seed(seed)(factory), settings=chosen)
    except BaseException as e:
        test = os.environ.get("PYTEST_CURRENT_TEST", "tests/model").split(" ")[0]
        e.add_note(f"replay: MODEL_SEED={seed} MODEL_PROFILE={PROFILE} pytest '{test}'")
        raise
    finally:
        print(f"{machine.__name__}: {dict(STATS)}")
        if os.environ.get("MODEL_STATS"):
            with open(os.environ["MODEL_STATS"], "a") as f:
                f.write(json.dumps({f"{machine.__name__}.{k}": v for k, v in STATS.items()}) + "\n")
