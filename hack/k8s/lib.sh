# shellcheck shell=bash
# lib.sh - sourced by build.sh, up.sh and down.sh: where things live and which binaries to use.
#
# Binaries are looked up in this order, per binary:
#   1. $KUBEBUILDER_ASSETS   (the envtest convention: a directory with kube-apiserver, etcd, kubectl;
#                             envtest ships no kube-controller-manager, so that one comes from 2.)
#   2. $ANODE_K8S_BIN        (default $ANODE_K8S_HOME/bin, where build.sh puts what it builds)
#   3. PATH                  (etcd only: Debian's etcd-server package installs /usr/bin/etcd)
ANODE_K8S_HOME=${ANODE_K8S_HOME:-/var/tmp/anode-k8s}
ANODE_K8S_BIN=${ANODE_K8S_BIN:-$ANODE_K8S_HOME/bin}
K8S_BINARIES=(kube-apiserver kube-controller-manager kubectl etcd)

# k8s_find NAME: print the path of binary NAME, or nothing (exit 1) when there is none.
k8s_find() {
  local name=$1 dir
  for dir in ${KUBEBUILDER_ASSETS:+"$KUBEBUILDER_ASSETS"} "$ANODE_K8S_BIN"; do
    if [[ -x $dir/$name ]]; then echo "$dir/$name"; return 0; fi
  done
  if [[ $name == etcd ]] && command -v etcd >/dev/null; then command -v etcd; return 0; fi
  return 1
}

# k8s_env_name NAME: the variable a caller may set to force a binary (kube-apiserver -> KUBE_APISERVER).
k8s_env_name() { local v=${1//-/_}; echo "${v^^}"; }

# k8s_resolve NAME: $KUBE_APISERVER etc. when set by the caller, else k8s_find.
k8s_resolve() {
  local var; var=$(k8s_env_name "$1")
  if [[ -n ${!var:-} ]]; then echo "${!var}"; else k8s_find "$1"; fi
}
