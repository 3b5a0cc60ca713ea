#!/usr/bin/env bash
# down.sh - stop the control plane started by up.sh (by the PIDs it recorded; nothing else).
# Usage: down.sh [--purge]   (--purge also deletes $ANODE_K8S_RUN: certs, etcd data, logs)
set -uo pipefail
# shellcheck source=hack/k8s/lib.sh
source "$(dirname "$0")/lib.sh"
RUN=${ANODE_K8S_RUN:-$ANODE_K8S_HOME/run}
for c in kube-controller-manager kube-apiserver etcd; do
  f=$RUN/pids/$c.pid
  [[ -f $f ]] || continue
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    echo "[down.sh] stopping $c (pid $pid)" >&2
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    if kill -0 "$pid" 2>/dev/null; then echo "[down.sh] $c still alive, SIGKILL" >&2; kill -KILL "$pid" 2>/dev/null; fi
  fi
  rm -f "$f"
done
if [[ "${1:-}" == "--purge" ]]; then
  case "$RUN" in /|"") echo "refusing to purge '$RUN'" >&2; exit 1;; esac
  rm -rf "$RUN"; echo "[down.sh] removed $RUN" >&2
fi
exit 0
