"""Names shared by the CRDs, the renderer and the handlers: one place for API coordinates,
ports, label keys and secret keys, so that the YAML in ``crds/`` and the Python never disagree."""

GROUP = "anode.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
CLUSTER_KIND = "AnodeCluster"
CLUSTER_PLURAL = "anodeclusters"
BUCKET_KIND = "Bucket"
BUCKET_PLURAL = "buckets"

FIELD_MANAGER = "anode-operator"
OPERATOR_NAME = "anode-operator"

S3_PORT = 8080
ADMIN_PORT = 8081
INTERNODE_PORT = 9090  # Raft
DATA_PORT = 9091  # chunk transfer between nodes

CONFIG_DIR = "/etc/anode"
CONFIG_FILE = "anode.toml"
# pod names of the Raft voters, read back by the operator (the pods use `cluster.peers`)
VOTERS_FILE = "voters"
DATA_DIR = "/var/lib/anode"
TLS_DIR = "/etc/anode/tls"
NODE_UID = 10001

# Keys of the credentials Secret (generated or user-provided).
ROOT_ACCESS_KEY = "AWS_ACCESS_KEY_ID"
ROOT_SECRET_KEY = "AWS_SECRET_ACCESS_KEY"
CLUSTER_SECRET_KEY = "ANODE_CLUSTER_SECRET"

# Keys of the Secret written for a Bucket.
BUCKET_SECRET_KEYS = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_ENDPOINT_URL",
    "AWS_REGION",
    "BUCKET_NAME",
)

LABEL_NAME = "app.kubernetes.io/name"
LABEL_INSTANCE = "app.kubernetes.io/instance"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_PART_OF = "app.kubernetes.io/part-of"
LABEL_VERSION = "app.kubernetes.io/version"
ANNOTATION_CONFIG_HASH = "anode.dev/config-hash"
