#!/usr/bin/env bash
# End-to-end test of Anode on a real Kubernetes (kind): build both images, load them into kind,
# install the Helm chart, create a 3-node AnodeCluster and a Bucket, do an S3 round trip through
# the Service with the Bucket's Secret, scale 3 -> 5 -> 3, upgrade the node image, delete
# everything. Needs docker, kind, kubectl and helm on PATH. From the repository root:
#   e2e/run.sh            # creates and deletes the kind cluster
#   KEEP=1 e2e/run.sh     # leaves the cluster running for inspection
set -euo pipefail
cd "$(dirname "$0")/.."

CLUSTER=${KIND_CLUSTER:-anode-e2e}
# Until the node's part 2 (replicated metadata), each node is its own cluster and a request
# through the Service may land on a node without the bucket: use REPLICAS=1 with part-1 nodes.
REPLICAS=${REPLICAS:-3}
RF=$(( REPLICAS < 3 ? REPLICAS : 3 ))
NS=e2e
TIMEOUT=${TIMEOUT:-10m}
AWS_CLI_IMAGE=${AWS_CLI_IMAGE:-amazon/aws-cli:2.22.35}
log() { echo "[e2e $(date +%H:%M:%S)] $*" >&2; }
for tool in docker kind kubectl helm; do
  command -v "$tool" >/dev/null || { log "missing $tool"; exit 2; }
done

cleanup() {
  local rc=$?
  if (( rc != 0 )); then
    log "FAILED (rc=$rc); state for debugging:"
    kubectl get anodeclusters,buckets,statefulsets,pods -A -o wide || true
    kubectl -n anode-system logs deploy/anode-operator --tail=100 || true
  fi
  if [[ "${KEEP:-0}" != 1 ]]; then kind delete cluster --name "$CLUSTER" || true; fi
  exit "$rc"
}
trap cleanup EXIT

log "building images"
docker build -f Dockerfile.node -t anode:e2e .
docker build -f Dockerfile.operator -t anode-operator:e2e .
docker tag anode:e2e anode:e2e-next   # the "upgrade" target: same bits, new image reference

log "creating kind cluster $CLUSTER"
kind create cluster --name "$CLUSTER" --config e2e/kind-config.yaml --wait 120s
kind load docker-image --name "$CLUSTER" anode:e2e anode:e2e-next anode-operator:e2e

log "installing the chart"
helm install anode charts/anode --namespace anode-system --create-namespace \
  --set operator.image.repository=anode-operator --set operator.image.tag=e2e \
  --set operator.image.pullPolicy=Never --wait --timeout "$TIMEOUT"

log "creating a $REPLICAS-node cluster and a bucket"
kubectl create namespace "$NS"
kubectl -n "$NS" apply -f - <<YAML
apiVersion: anode.dev/v1alpha1
kind: AnodeCluster
metadata: {name: e2e}
spec:
  replicas: ${REPLICAS}
  replicationFactor: ${RF}
  image: anode:e2e
  imagePullPolicy: Never
  storage: {size: 1Gi}
---
apiVersion: anode.dev/v1alpha1
kind: Bucket
metadata: {name: smoke}
spec:
  clusterRef: {name: e2e}
  deletionPolicy: Delete
YAML
kubectl -n "$NS" wait --for=condition=Ready anodecluster/e2e --timeout="$TIMEOUT"
kubectl -n "$NS" wait --for=condition=Ready bucket/smoke --timeout="$TIMEOUT"
kubectl -n "$NS" get anodeclusters,buckets

log "S3 round trip through the Service with the Bucket's Secret"
kubectl -n "$NS" apply -f - <<YAML
apiVersion: batch/v1
kind: Job
metadata: {name: s3-round-trip}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: aws
          image: ${AWS_CLI_IMAGE}
          envFrom: [{secretRef: {name: smoke-bucket}}]
          command: [sh, -ec]
          args:
            - |
              aws configure set default.s3.addressing_style path
              echo "hello from anode e2e" > /tmp/in.txt
              aws s3 cp /tmp/in.txt "s3://\$BUCKET_NAME/hello.txt"
              aws s3 cp "s3://\$BUCKET_NAME/hello.txt" /tmp/out.txt
              cmp /tmp/in.txt /tmp/out.txt
              aws s3 ls "s3://\$BUCKET_NAME/"
YAML
kubectl -n "$NS" wait --for=condition=complete job/s3-round-trip --timeout="$TIMEOUT"
kubectl -n "$NS" logs job/s3-round-trip

wait_ready_replicas() {  # n
  kubectl -n "$NS" wait --for=condition=Ready anodecluster/e2e --timeout="$TIMEOUT"
  local got
  got=$(kubectl -n "$NS" get anodecluster e2e -o jsonpath='{.status.readyReplicas}')
  [[ "$got" == "$1" ]] || { log "expected $1 ready replicas, got $got"; return 1; }
}
log "scaling $REPLICAS -> 5"
kubectl -n "$NS" scale anodecluster/e2e --replicas=5
kubectl -n "$NS" wait --for=jsonpath='{.status.readyReplicas}'=5 anodecluster/e2e --timeout="$TIMEOUT"
wait_ready_replicas 5
log "scaling 5 -> $REPLICAS"
kubectl -n "$NS" scale anodecluster/e2e --replicas="$REPLICAS"
kubectl -n "$NS" wait --for=jsonpath='{.status.replicas}'="$REPLICAS" anodecluster/e2e --timeout="$TIMEOUT"
wait_ready_replicas "$REPLICAS"

log "upgrading the node image (followers first, leader last)"
kubectl -n "$NS" patch anodecluster e2e --type merge -p '{"spec":{"image":"anode:e2e-next"}}'
deadline=$((SECONDS + 600))
until [[ "$(kubectl -n "$NS" get pods -l app.kubernetes.io/instance=e2e \
          -o jsonpath='{range .items[*]}{.spec.containers[0].image}{"\n"}{end}' | sort -u)" == "anode:e2e-next" ]]; do
  (( SECONDS < deadline )) || { log "upgrade did not finish"; exit 1; }
  sleep 5
done
wait_ready_replicas "$REPLICAS"
kubectl -n "$NS" get events --field-selector involvedObject.name=e2e --sort-by=.lastTimestamp | grep -E "RestartingPod|Leadership" || true

log "deleting everything"
kubectl -n "$NS" delete bucket smoke --timeout="$TIMEOUT"
kubectl -n "$NS" delete anodecluster e2e --timeout="$TIMEOUT"
kubectl -n "$NS" wait --for=delete statefulset/e2e --timeout="$TIMEOUT" || true
helm uninstall anode --namespace anode-system --wait
log "PASSED"
