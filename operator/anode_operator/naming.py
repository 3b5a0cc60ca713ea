"""Names and labels of everything an ``AnodeCluster`` owns, derived from the cluster's name.

Node ids are pod names (``<cluster>-<ordinal>``), which is what the node uses by default (its
host name), so the operator can map Raft members to pods without asking anyone.
"""

from __future__ import annotations

from anode_operator import constants as c


def statefulset(cluster: str) -> str:
    return cluster


def client_service(cluster: str) -> str:
    return cluster


def peer_service(cluster: str) -> str:
    return f"{cluster}-peers"


def config_map(cluster: str) -> str:
    return f"{cluster}-config"


def credentials_secret(cluster: str) -> str:
    return f"{cluster}-credentials"


def pdb(cluster: str) -> str:
    return cluster


def pod(cluster: str, ordinal: int) -> str:
    return f"{cluster}-{ordinal}"


def ordinal_of(cluster: str, pod_name: str) -> int | None:
    """``demo-3`` -> 3 for cluster ``demo``; ``None`` for names that are not its pods."""
    prefix = f"{cluster}-"
    if not pod_name.startswith(prefix):
        return None
    tail = pod_name[len(prefix) :]
    return int(tail) if tail.isdigit() else None


def peer_host(cluster: str, namespace: str, ordinal: int) -> str:
    return f"{pod(cluster, ordinal)}.{peer_service(cluster)}.{namespace}.svc"


def selector_labels(cluster: str) -> dict[str, str]:
    """The immutable part: StatefulSet selector, Services, PDB."""
    return {
        c.LABEL_NAME: "anode",
        c.LABEL_INSTANCE: cluster,
        c.LABEL_COMPONENT: "storage",
    }


def labels(cluster: str, *, version: str | None = None) -> dict[str, str]:
    out = {
        **selector_labels(cluster),
        c.LABEL_MANAGED_BY: c.OPERATOR_NAME,
        c.LABEL_PART_OF: "anode",
    }
    if version:
        out[c.LABEL_VERSION] = version
    return out


def selector_string(cluster: str) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(selector_labels(cluster).items()))


def image_version(image: str) -> str:
    """The tag (or a digest prefix) of an image, usable as a label value (max 63 chars)."""
    if "@" in image:
        digest = image.split("@", 1)[1]
        return digest.replace(":", "-")[:63]
    last = image.rsplit("/", 1)[-1]
    tag = last.split(":", 1)[1] if ":" in last else "latest"
    return tag[:63]
