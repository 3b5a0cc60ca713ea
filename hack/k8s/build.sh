#!/usr/bin/env bash
# build.sh - make sure kube-apiserver, kube-controller-manager, kubectl (v1.20.2) and etcd exist,
# building them when they do not, and print where they are as KEY=PATH lines on stdout
# (KUBE_APISERVER, KUBE_CONTROLLER_MANAGER, KUBECTL, ETCD) for up.sh and the test fixtures.
#
# Binaries a user already has are used as they are (see lib.sh: $KUBEBUILDER_ASSETS, then
# $ANODE_K8S_BIN). Otherwise they are built OFFLINE from Debian bookworm's source package
# "kubernetes" (1.20.5+really1.20.2: a `git archive` of tag v1.20.2 with the full vendor/ tree)
# with Debian's Go 1.19, using apt only: no Go proxy, no Docker, no release downloads. That takes
# 5-11 minutes on 2 cores, once per machine: the result is cached in $ANODE_K8S_BIN
# (default /var/tmp/anode-k8s/bin). Concurrent callers wait for one build (flock).
#
# Exit status: 0 ready; 3 binaries missing and this machine cannot build them (not Debian with apt,
# or not root), with the reason on stderr, so callers can skip rather than fail; other: build failed.
# Usage: build.sh [--check]   (--check, or ANODE_K8S_NO_BUILD=1: never build; exit 3 when something
#                              is missing)
set -euo pipefail
# shellcheck source=hack/k8s/lib.sh
source "$(dirname "$0")/lib.sh"
SRCVER=1.20.5+really1.20.2-1.1+deb12u1
ORIG=kubernetes_1.20.5+really1.20.2.orig.tar.gz
WORK=${ANODE_K8S_WORK:-$ANODE_K8S_HOME}
log() { echo "[build.sh $(date +%H:%M:%S)] $*" >&2; }

missing() {  # print the names of binaries not found
  local b; for b in "${K8S_BINARIES[@]}"; do k8s_resolve "$b" >/dev/null || echo "$b"; done
}
report() {
  local b; for b in "${K8S_BINARIES[@]}"; do echo "$(k8s_env_name "$b")=$(k8s_resolve "$b")"; done
}
cannot_build() {  # print why this machine cannot build, or nothing
  if [[ -n ${ANODE_K8S_NO_BUILD:-} ]]; then
    echo "building is turned off (ANODE_K8S_NO_BUILD)"
  elif [[ ! -r /etc/debian_version ]] || ! command -v apt-get >/dev/null; then
    echo "not a Debian system with apt-get"
  elif [[ $(id -u) != 0 ]]; then
    echo "not root (apt-get install and deb-src entries need root)"
  fi
}

need=$(missing)
if [[ -z $need ]]; then report; exit 0; fi
why=$(cannot_build)
if [[ -n $why || ${1:-} == --check ]]; then
  log "missing: $(echo "$need" | tr '\n' ' ')- ${why:-not building (--check)}." \
    "Provide them with KUBEBUILDER_ASSETS=DIR or ANODE_K8S_BIN=DIR, or run $0 as root on Debian 12."
  exit 3
fi

mkdir -p "$WORK"
exec 9>"$WORK/build.lock"
log "waiting for the build lock $WORK/build.lock"
flock 9
need=$(missing)  # someone else may have built them while we waited
if [[ -z $need ]]; then report; exit 0; fi
log "missing: $(echo "$need" | tr '\n' ' ')- building (5-11 min on 2 cores)"

# 1. apt: deb-src for the kubernetes source package; Go 1.19 + tools + etcd from bookworm main
SRCLIST=/etc/apt/sources.list.d/anode-k8s-src.sources
if ! apt-cache showsrc kubernetes 2>/dev/null | grep -q "^Version: $SRCVER"; then
  log "adding deb-src entries ($SRCLIST)"
  # the machine's own bookworm entry (deb822 or one-line format), as deb-src
  if [[ -r /etc/apt/sources.list.d/debian.sources ]]; then
    awk 'BEGIN{RS="";ORS="\n\n"} /Suites: bookworm bookworm-updates/ {sub(/Types: deb/,"Types: deb-src"); print; exit}' \
      /etc/apt/sources.list.d/debian.sources > "$SRCLIST"
  else
    SRCLIST=/etc/apt/sources.list.d/anode-k8s-src.list
    grep -h '^deb .* bookworm main' /etc/apt/sources.list | sed 's/^deb /deb-src /' > "$SRCLIST"
  fi
  [[ -s $SRCLIST ]] || { log "found no bookworm apt source to derive deb-src from"; exit 1; }
  apt-get update -q >/dev/null
fi
# install only what is missing (naming installed packages would upgrade them, e.g. libssl3/curl)
NEED=()
for pkg in golang-1.19-go rsync jq make openssl curl etcd-server \
           golang-github-modern-go-reflect2-dev golang-github-json-iterator-go-dev; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || NEED+=("$pkg")
done
if (( ${#NEED[@]} )); then
  log "apt-get install ${NEED[*]}"
  # etcd-server's postinst may start a system etcd on :2379; up.sh never uses it (own ports, own data)
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${NEED[@]}" >/dev/null
fi

if [[ -n $(missing | grep -v '^etcd$' || true) ]]; then
  # 2. source
  mkdir -p "$WORK/debsrc" "$WORK/src"
  if [[ ! -f $WORK/debsrc/$ORIG ]]; then
    log "apt-get source --download-only kubernetes=$SRCVER"
    (cd "$WORK/debsrc" && apt-get source -q --download-only "kubernetes=$SRCVER" >/dev/null 2>&1)
  fi
  SRC=$WORK/src/kubernetes-1.20.2
  rm -rf "$SRC"
  tar xzf "$WORK/debsrc/$ORIG" -C "$WORK/src"
  cd "$SRC"
  # 3. the vendored github.com/modern-go/reflect2 v1.0.1 is broken with Go >= 1.18 (unsafe map
  #    iteration): use Debian's reflect2 1.0.2 + json-iterator 1.1.12 (the bump upstream made for
  #    go1.18). hack/ builds in GOPATH mode (GO111MODULE=off), so go.mod/modules.txt need no edit.
  for p in github.com/modern-go/reflect2 github.com/json-iterator/go; do
    rm -rf "vendor/$p" && mkdir -p "vendor/$p"
    find "/usr/share/gocode/src/$p" -maxdepth 1 -type f ! -name '*_test.go' -exec cp {} "vendor/$p/" \;
  done
  # 4. build: `make all` runs the code generators (openapi-gen etc.) first, then go install
  log "make all WHAT=cmd/kube-apiserver cmd/kube-controller-manager cmd/kubectl (log: $WORK/build.log)"
  T0=$SECONDS
  PATH=/usr/lib/go-1.19/bin:$PATH HOME=$WORK/buildhome \
    nice make all WHAT="cmd/kube-apiserver cmd/kube-controller-manager cmd/kubectl" > "$WORK/build.log" 2>&1 \
    || { tail -30 "$WORK/build.log" >&2; exit 1; }
  mkdir -p "$ANODE_K8S_BIN"
  # copy then rename: a concurrent reader never sees a half-written binary
  for b in kube-apiserver kube-controller-manager kubectl; do
    cp "_output/bin/$b" "$ANODE_K8S_BIN/.$b.tmp" && mv "$ANODE_K8S_BIN/.$b.tmp" "$ANODE_K8S_BIN/$b"
  done
  log "built in $((SECONDS - T0))s into $ANODE_K8S_BIN"
fi
need=$(missing)
[[ -z $need ]] || { log "still missing after the build: $need"; exit 1; }
report
