"""Fixtures for the operator suite. No ``__init__.py`` here on purpose: as a package this
directory would be imported as ``operator`` and shadow the standard library module."""

from op_controlplane import control_plane, kube_env, operator_process  # noqa: F401
