"""TLS for the node's listeners (`[node] tls_cert_file` / `tls_key_file`) and its peers.

One certificate serves S3, admin and, with `[node] internode_tls` (on by default with TLS), the
internode chunk API. Raft traffic is not TLS: its frames are sealed (AES-256-GCM) with the
cluster secret (`cluster/wire.py`). A node calling another member (chunk transfer, forwarding a
membership call to the leader) trusts `[node] tls_ca_file`, by default its own certificate file
(leaf or chain) as the anchor: every member of a cluster serves the same certificate (the
operator mounts one Secret into every pod), and peers are reached by addresses a certificate
rarely names, so the chain is checked and the host name is not.
"""

from __future__ import annotations

import ssl
from pathlib import Path


def server_context(*, cert_file: str, key_file: str) -> ssl.SSLContext:
    """The listeners' context: TLS 1.2 or newer. Raises ValueError naming what is wrong."""
    for name, path in (("tls_cert_file", cert_file), ("tls_key_file", key_file)):
        try:
            Path(path).read_bytes()
        except OSError as e:
            raise ValueError(f"node.{name}: cannot read {path}: {e.strerror or e}") from None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert_file, key_file)
    except ssl.SSLError as e:
        raise ValueError(
            f"node.tls_cert_file/tls_key_file: not a matching PEM certificate and key ({e})"
        ) from None
    return context


def peer_context(*, cert_file: str) -> ssl.SSLContext:
    """Client context for another member's admin API: its certificate must chain to ours."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cert_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = False  # members are dialled by address; the chain is what counts
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN  # a leaf may be its own anchor
    return context
