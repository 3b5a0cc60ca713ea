#!/usr/bin/env bash
# up.sh - start a private, loopback-only Kubernetes control plane (no Docker, no kubelet): etcd,
# kube-apiserver and kube-controller-manager, from the binaries build.sh finds or builds (see
# lib.sh: $KUBEBUILDER_ASSETS, then $ANODE_K8S_BIN; or KUBE_APISERVER=... per binary).
# Prints the KUBECONFIG path on its last line and exits 0 once the API is ready (readyz ok,
# controller-manager healthy, default ServiceAccount present).
#
# Usage:  up.sh              # fresh cluster (wipes previous etcd data in $ANODE_K8S_RUN)
#         KEEP_DATA=1 up.sh  # reuse previous etcd data
#         eval "$(up.sh --env)"   # same, but prints "export KUBECONFIG=..." as last line
# Stop:   down.sh  (stops exactly the PIDs up.sh recorded)
#
# Environment (all optional):
#   ANODE_K8S_RUN   state dir: certs, etcd data, logs, pids, kubeconfigs  (default $ANODE_K8S_HOME/run)
#   ETCD_PORT=23790 ETCD_PEER_PORT=23800 API_PORT=16443 KCM_PORT=10257
#   READY_TIMEOUT=120 (seconds)
set -euo pipefail

# shellcheck source=hack/k8s/lib.sh
source "$(dirname "$0")/lib.sh"
RUN=${ANODE_K8S_RUN:-$ANODE_K8S_HOME/run}
ETCD_PORT=${ETCD_PORT:-23790}
ETCD_PEER_PORT=${ETCD_PEER_PORT:-23800}
API_PORT=${API_PORT:-16443}
KCM_PORT=${KCM_PORT:-10257}
READY_TIMEOUT=${READY_TIMEOUT:-120}
PRINT_ENV=0; [[ "${1:-}" == "--env" ]] && PRINT_ENV=1

log() { echo "[up.sh $(date +%H:%M:%S)] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

if ! { APISERVER=$(k8s_resolve kube-apiserver) && KCM=$(k8s_resolve kube-controller-manager) \
        && ETCD_BIN=$(k8s_resolve etcd); }; then
  die "missing binaries: run $(dirname "$0")/build.sh first"
fi
for b in "$APISERVER" "$KCM" "$ETCD_BIN"; do [[ -x $b ]] || die "not executable: $b"; done
# flags that v1.24 removed (the insecure ports are gone there), so newer envtest binaries work too
MINOR=$("$APISERVER" --version | sed -E 's/.*v1\.([0-9]+).*/\1/')
LEGACY_APISERVER=(); LEGACY_KCM=()
if (( MINOR < 24 )); then LEGACY_APISERVER=(--insecure-port=0); LEGACY_KCM=(--port=0); fi
command -v openssl >/dev/null || die "openssl not found"
command -v curl >/dev/null || die "curl not found"

mkdir -p "$RUN"/{pki,logs,pids}
alive() { kill -0 "$(cat "$RUN/pids/$1.pid")" 2>/dev/null; }
export -f alive; export RUN
PKI=$RUN/pki

# refuse to start twice
for c in etcd kube-apiserver kube-controller-manager; do
  if [[ -f $RUN/pids/$c.pid ]] && kill -0 "$(cat "$RUN/pids/$c.pid")" 2>/dev/null; then
    die "$c already running (pid $(cat "$RUN/pids/$c.pid")); run down.sh first"
  fi
done

# ---------- certificates (generated once, reused) ----------
gen_cert() {  # name CN O extfile-content
  local name=$1 cn=$2 o=$3 ext=$4
  local subj="/CN=$cn"
  [[ -n "$o" ]] && subj="/O=$o/CN=$cn"
  openssl genrsa -out "$PKI/$name.key" 2048 2>/dev/null
  openssl req -new -key "$PKI/$name.key" -subj "$subj" -out "$PKI/$name.csr" 2>/dev/null
  printf '%s\n' "$ext" > "$PKI/$name.ext"
  openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
    -days 3650 -sha256 -extfile "$PKI/$name.ext" -out "$PKI/$name.crt" 2>/dev/null
}
if [[ ! -f $PKI/ca.crt ]]; then
  log "generating certificates in $PKI"
  openssl genrsa -out "$PKI/ca.key" 2048 2>/dev/null
  openssl req -x509 -new -nodes -key "$PKI/ca.key" -subj "/CN=anode-k8s-ca" -days 3650 -sha256 \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
    -out "$PKI/ca.crt" 2>/dev/null
  gen_cert apiserver kube-apiserver "" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  gen_cert admin admin system:masters "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
  gen_cert kcm system:kube-controller-manager "" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
  # front-proxy (requestheader) CA + client: used for aggregated APIs; also silences
  # "missing content for CA bundle requestheader-client-ca-file" errors in the controller-manager
  openssl genrsa -out "$PKI/front-proxy-ca.key" 2048 2>/dev/null
  openssl req -x509 -new -nodes -key "$PKI/front-proxy-ca.key" -subj "/CN=anode-k8s-front-proxy-ca" -days 3650 -sha256 \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
    -out "$PKI/front-proxy-ca.crt" 2>/dev/null
  openssl genrsa -out "$PKI/front-proxy-client.key" 2048 2>/dev/null
  openssl req -new -key "$PKI/front-proxy-client.key" -subj "/CN=front-proxy-client" -out "$PKI/front-proxy-client.csr" 2>/dev/null
  printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n' > "$PKI/front-proxy-client.ext"
  openssl x509 -req -in "$PKI/front-proxy-client.csr" -CA "$PKI/front-proxy-ca.crt" -CAkey "$PKI/front-proxy-ca.key" \
    -CAcreateserial -days 3650 -sha256 -extfile "$PKI/front-proxy-client.ext" -out "$PKI/front-proxy-client.crt" 2>/dev/null
  openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null
  openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
  # static bearer token for the admin user too (handy for plain HTTP clients)
  head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$PKI/admin.token"
  echo "$(cat "$PKI/admin.token"),admin-token,admin-token-uid,system:masters" > "$PKI/tokens.csv"
  chmod 600 "$PKI"/*.key "$PKI/tokens.csv" "$PKI/admin.token"
fi

b64() { base64 -w0 < "$1"; }
write_kubeconfig() {  # file user certname
  cat > "$1" <<KC
apiVersion: v1
kind: Config
clusters:
- name: anode-k8s
  cluster:
    server: https://127.0.0.1:$API_PORT
    certificate-authority-data: $(b64 "$PKI/ca.crt")
users:
- name: $2
  user:
    client-certificate-data: $(b64 "$PKI/$3.crt")
    client-key-data: $(b64 "$PKI/$3.key")
contexts:
- name: anode-k8s
  context: {cluster: anode-k8s, user: $2, namespace: default}
current-context: anode-k8s
KC
  chmod 600 "$1"
}
write_kubeconfig "$RUN/admin.kubeconfig" admin admin
write_kubeconfig "$RUN/kcm.kubeconfig" system:kube-controller-manager kcm

start() {  # name cmd...
  local name=$1; shift
  log "starting $name"
  # setsid: own process group, so down.sh can stop exactly this tree by its pid
  setsid "$@" >"$RUN/logs/$name.log" 2>&1 < /dev/null &
  echo $! > "$RUN/pids/$name.pid"
}
cleanup_on_fail() {
  log "startup failed; last log lines:"; tail -n 15 "$RUN"/logs/*.log >&2 || true
  "$(dirname "$0")/down.sh" >&2 || true
}
trap cleanup_on_fail ERR

wait_for() {  # description timeout component-that-must-stay-alive cmd...
  local what=$1 t=$2 comp=$3; shift 3
  local start=$SECONDS
  until "$@" >/dev/null 2>&1; do
    alive "$comp" || { log "$comp exited during startup (see $RUN/logs/$comp.log)"; return 1; }
    (( SECONDS - start > t )) && { log "timeout waiting for $what"; return 1; }
    sleep 0.5
  done
  log "$what ready after $((SECONDS - start))s"
}

T0=$SECONDS
rm -f "$RUN"/logs/*.log
# ---------- etcd ----------
if [[ "${KEEP_DATA:-0}" != 1 ]]; then rm -rf "$RUN/etcd-data"; fi
start etcd "$ETCD_BIN" --name anode-k8s --data-dir "$RUN/etcd-data" \
  --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster "anode-k8s=http://127.0.0.1:$ETCD_PEER_PORT" --initial-cluster-state new \
  --quota-backend-bytes 4294967296 --log-level warn --logger zap
wait_for etcd 30 etcd bash -c "curl -fsS http://127.0.0.1:$ETCD_PORT/health | grep -q true"

# ---------- kube-apiserver ----------
start kube-apiserver "$APISERVER" "${LEGACY_APISERVER[@]}" \
  --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
  --bind-address=127.0.0.1 --secure-port="$API_PORT" \
  --advertise-address=127.0.0.1 --endpoint-reconciler-type=none \
  --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
  --client-ca-file="$PKI/ca.crt" --token-auth-file="$PKI/tokens.csv" \
  --requestheader-client-ca-file="$PKI/front-proxy-ca.crt" --requestheader-allowed-names=front-proxy-client \
  --requestheader-username-headers=X-Remote-User --requestheader-group-headers=X-Remote-Group \
  --requestheader-extra-headers-prefix=X-Remote-Extra- \
  --proxy-client-cert-file="$PKI/front-proxy-client.crt" --proxy-client-key-file="$PKI/front-proxy-client.key" \
  --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --api-audiences=https://kubernetes.default.svc.cluster.local \
  --service-cluster-ip-range=10.96.0.0/12 \
  --authorization-mode=RBAC --allow-privileged=true \
  --enable-admission-plugins=NamespaceLifecycle,LimitRanger,ServiceAccount,DefaultStorageClass,ResourceQuota,DefaultTolerationSeconds,MutatingAdmissionWebhook,ValidatingAdmissionWebhook \
  --profiling=false --v=1
CURL_ADMIN=(curl -fsS --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key")
wait_for kube-apiserver "$READY_TIMEOUT" kube-apiserver bash -c "${CURL_ADMIN[*]} https://127.0.0.1:$API_PORT/readyz | grep -q ok"

# ---------- kube-controller-manager ----------
start kube-controller-manager "$KCM" "${LEGACY_KCM[@]}" \
  --kubeconfig="$RUN/kcm.kubeconfig" \
  --authentication-kubeconfig="$RUN/kcm.kubeconfig" --authorization-kubeconfig="$RUN/kcm.kubeconfig" \
  --bind-address=127.0.0.1 --secure-port="$KCM_PORT" \
  --leader-elect=false --use-service-account-credentials=true \
  --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
  --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
  --controllers='*' --v=1
wait_for kube-controller-manager 60 kube-controller-manager bash -c "curl -fsSk https://127.0.0.1:$KCM_PORT/healthz | grep -q ok"
# pods can only be admitted once the default ServiceAccount (and before v1.24 its token Secret) exists
SA_READY='"name"'; (( MINOR < 24 )) && SA_READY='"secrets"'
wait_for "default ServiceAccount" 60 kube-controller-manager bash -c "${CURL_ADMIN[*]} https://127.0.0.1:$API_PORT/api/v1/namespaces/default/serviceaccounts/default | grep -q '$SA_READY'"
trap - ERR
log "control plane up in $((SECONDS - T0))s: API https://127.0.0.1:$API_PORT  (logs: $RUN/logs, admin token: $PKI/admin.token)"
if [[ $PRINT_ENV == 1 ]]; then echo "export KUBECONFIG=$RUN/admin.kubeconfig"; else echo "$RUN/admin.kubeconfig"; fi
