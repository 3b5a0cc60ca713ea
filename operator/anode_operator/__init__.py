"""Anode's Kubernetes operator.

The operator turns ``AnodeCluster`` and ``Bucket`` custom resources into running storage nodes and
buckets. It is split into a pure core (``model``, ``render``, ``nodeconfig``, ``safety``,
``scaling``, ``rollout``, ``status``, ``buckets``) that is tested exhaustively without a cluster,
and a thin shell (``kube``, ``admin``, ``s3client``, ``observe``, ``clusters``, ``bucketops``,
``handlers``, ``cli``) that talks to the Kubernetes API and to the nodes.
"""
