"""The Kubernetes API calls the operator makes, in one small facade.

Children are written with server-side apply (field manager ``anode-operator``, conflicts forced):
applying the same render twice is a no-op, and a field a user edited by hand is put back on the
next reconcile. Reads return plain dicts (``to_dict`` of the typed models is camelCase-hostile),
so the pure modules only ever see the JSON shape of objects.
"""

from __future__ import annotations

import base64
import functools
import logging
from typing import Any

import kubernetes
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import NotFoundError, ResourceNotFoundError

from anode_operator import constants as c
from anode_operator.render import Capabilities

log = logging.getLogger(__name__)


def load_config() -> None:
    """In-cluster service account when running in a pod, else the current kubeconfig."""
    try:
        kubernetes.config.load_incluster_config()
    except kubernetes.config.ConfigException:
        kubernetes.config.load_kube_config()


class Kube:
    def __init__(self, api_client: kubernetes.client.ApiClient | None = None) -> None:
        self.api = api_client or kubernetes.client.ApiClient()
        self.core = kubernetes.client.CoreV1Api(self.api)
        self.apps = kubernetes.client.AppsV1Api(self.api)
        self.custom = kubernetes.client.CustomObjectsApi(self.api)

    @functools.cached_property
    def dynamic(self) -> DynamicClient:
        return DynamicClient(self.api)

    @functools.cached_property
    def capabilities(self) -> Capabilities:
        groups = kubernetes.client.ApisApi(self.api).get_api_versions().groups
        served = {v.group_version for g in groups for v in g.versions}
        pdb = "policy/v1" if "policy/v1" in served else "policy/v1beta1"
        return Capabilities(
            pdb_api_version=pdb, service_monitor="monitoring.coreos.com/v1" in served
        )

    def warm_up(self) -> None:
        """API discovery (the dynamic client's and the capabilities), paid once at start-up
        rather than by the first reconciles, which then race their own timers."""
        _ = self.capabilities
        for api_version, kind in (("v1", "ConfigMap"), ("apps/v1", "StatefulSet")):
            self.dynamic.resources.get(api_version=api_version, kind=kind)

    # --- writes ------------------------------------------------------------------------------
    def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        resource = self.dynamic.resources.get(
            api_version=manifest["apiVersion"], kind=manifest["kind"]
        )
        result = resource.server_side_apply(
            body=manifest,
            namespace=manifest["metadata"].get("namespace"),
            field_manager=c.FIELD_MANAGER,
            force_conflicts=True,
        )
        return result.to_dict()

    def delete_pod(self, *, namespace: str, name: str, uid: str) -> None:
        """Delete exactly this incarnation of the pod (a recreated pod has another uid)."""
        try:
            self.core.delete_namespaced_pod(
                name,
                namespace,
                body=kubernetes.client.V1DeleteOptions(
                    preconditions=kubernetes.client.V1Preconditions(uid=uid)
                ),
            )
        except ApiException as exc:
            if exc.status not in (404, 409):
                raise

    def patch_status(
        self, *, plural: str, namespace: str, name: str, status: dict[str, Any]
    ) -> None:
        self.custom.patch_namespaced_custom_object_status(
            c.GROUP, c.VERSION, namespace, plural, name, {"status": status}
        )

    # --- reads -------------------------------------------------------------------------------
    def get(
        self, *, api_version: str, kind: str, namespace: str, name: str
    ) -> dict[str, Any] | None:
        try:
            resource = self.dynamic.resources.get(api_version=api_version, kind=kind)
            return resource.get(name=name, namespace=namespace).to_dict()
        except (NotFoundError, ResourceNotFoundError):
            return None

    def get_statefulset(self, *, namespace: str, name: str) -> dict[str, Any] | None:
        return self.get(api_version="apps/v1", kind="StatefulSet", namespace=namespace, name=name)

    def get_cluster(self, *, namespace: str, name: str) -> dict[str, Any] | None:
        return self.get(
            api_version=c.API_VERSION, kind=c.CLUSTER_KIND, namespace=namespace, name=name
        )

    def list_pods(self, *, namespace: str, selector: str) -> list[dict[str, Any]]:
        resource = self.dynamic.resources.get(api_version="v1", kind="Pod")
        return [
            p.to_dict() for p in resource.get(namespace=namespace, label_selector=selector).items
        ]

    def read_secret(self, *, namespace: str, name: str) -> dict[str, str] | None:
        """Decoded ``data`` of a Secret, or None if absent."""
        try:
            secret = self.core.read_namespaced_secret(name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return {k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items()}

    def secret_owner_uids(self, *, namespace: str, name: str) -> list[str] | None:
        try:
            secret = self.core.read_namespaced_secret(name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return [ref.uid for ref in secret.metadata.owner_references or []]
