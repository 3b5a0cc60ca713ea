"""Fixtures for the operator suite. No ``__init__.py`` here on purpose: as a package this
directory would be imported as ``operator`` and shadow the standard library module."""

from op_controlplane import (  # noqa: F401
    control_plane,
    ensure_built,
    k8s_binaries,
    kube_env,
    operator_process,
)


def pytest_collection_finish(session):
    """Find or build the control plane binaries (once per machine, 5-11 min) before any test
    starts, outside the per-test timeout, but only when a selected test needs them."""
    if any("control_plane" in getattr(item, "fixturenames", ()) for item in session.items):
        ensure_built()
