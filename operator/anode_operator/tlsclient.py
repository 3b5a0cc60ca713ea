"""How the operator trusts a TLS cluster's nodes when it calls their admin and S3 APIs.

The AnodeCluster's TLS Secret (``tls.crt``/``tls.key``, and ``ca.crt`` when cert-manager made it)
is mounted into every pod, so every node serves that certificate. The operator reaches pods by
their IP, which a certificate rarely names, so it checks the chain, anchored at ``ca.crt`` (else
at ``tls.crt`` itself), and not the host name: a node is trusted when it presents the cluster's
certificate, not any certificate a public CA issued for some name.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping

from anode_operator.kube import Kube
from anode_operator.model import Cluster


def trust_context(secret: Mapping[str, str] | None) -> ssl.SSLContext:
    """Client context for the nodes; without a certificate in the Secret, the system CAs (and
    host names) are checked, which pod addresses will fail: the status then says unreachable."""
    pem = (secret or {}).get("ca.crt") or (secret or {}).get("tls.crt")
    context = ssl.create_default_context(cadata=pem) if pem else ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if pem:
        context.check_hostname = False
        context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN  # a leaf may be its own anchor
    return context


def cluster_context(kube: Kube, cluster: Cluster) -> ssl.SSLContext | None:
    """None for a plain-HTTP cluster."""
    if not cluster.spec.tls_secret:
        return None
    secret = kube.read_secret(namespace=cluster.namespace, name=cluster.spec.tls_secret)
    return trust_context(secret)
