#!/usr/bin/env bash
# The README's docker-compose quick start, checked: `docker-compose up -d` starts 3 nodes from the
# node image, `curl :8081/health` answers, the aws CLI makes a bucket and copies a file in and out,
# then `docker kill` of the Raft leader: the other two elect a new leader and keep serving every
# object (reads and writes), the killed node comes back with `docker-compose up -d` and serves the
# objects written while it was down, and `down` + `up` keeps the data (named volumes).
# Runs under its own compose project name, tears it down (volumes too) at the end.
# Env: AWS (aws CLI, default `aws`), COMPOSE (default docker-compose), ANODE_IMAGE (default
# anode:dev; built from Dockerfile.node when missing), ANODE_PORT_PREFIX (default 8 when
# 8080/8081/8180/... are free, else 27), KEEP=1 leaves the cluster running.
set -euo pipefail
cd "$(dirname "$0")/.."
AWS=${AWS:-aws}
read -r -a COMPOSE <<< "${COMPOSE:-docker-compose}"
PROJECT=${COMPOSE_PROJECT:-anode-quickstart-e2e}
DC=("${COMPOSE[@]}" -p "$PROJECT" -f docker-compose.yml)
T0=$SECONDS
STEP_T=$SECONDS
log() { echo "[compose-e2e $(date +%H:%M:%S) +$((SECONDS - T0))s] $*" >&2; }
step() { log "STEP $*"; STEP_T=$SECONDS; }
pass() { log "  ok ($((SECONDS - STEP_T))s): $*"; }
fail() { log "  FAIL: $*"; exit 1; }
port_free() { ! ss -H -ltn "sport = :$1" | grep -q .; }

if [[ -z ${ANODE_PORT_PREFIX:-} ]]; then
  ANODE_PORT_PREFIX=8
  for n in 0 1 2; do for p in 80 81; do port_free "8$n$p" || ANODE_PORT_PREFIX=27; done; done
fi
export ANODE_PORT_PREFIX
S3=http://localhost:${ANODE_PORT_PREFIX}080
ADMIN=http://localhost:${ANODE_PORT_PREFIX}081
s3_url() { echo "http://localhost:${ANODE_PORT_PREFIX}${1}80"; }
admin_url() { echo "http://localhost:${ANODE_PORT_PREFIX}${1}81"; }
WORK=$(mktemp -d)
export AWS_CONFIG_FILE=$WORK/aws-config AWS_SHARED_CREDENTIALS_FILE=$WORK/aws-credentials
export AWS_DEFAULT_REGION=us-east-1 AWS_MAX_ATTEMPTS=2 AWS_RETRY_MODE=standard
cleanup() {
  local rc=$?
  if (( rc != 0 )); then
    log "FAILED (rc=$rc); state:"; "${DC[@]}" ps >&2 || true; "${DC[@]}" logs --tail=30 >&2 || true
  fi
  if [[ "${KEEP:-0}" != 1 ]]; then "${DC[@]}" down -v --remove-orphans >/dev/null 2>&1 || true; fi
  rm -rf "$WORK"
  log "done in $((SECONDS - T0))s (rc=$rc)"
  exit "$rc"
}
trap cleanup EXIT
status() {  # node-index -> /status JSON (admin API, root secret as bearer)
  curl -fsS --max-time 5 -H "Authorization: Bearer minioadmin" "$(admin_url "$1")/status"
}
jq_py() { python3 -c "import json, sys; d = json.load(sys.stdin); print($1)"; }
wait_until() {  # seconds description command...
  local t=$1 what=$2; shift 2
  local end=$((SECONDS + t))
  until "$@" >/dev/null 2>&1; do (( SECONDS < end )) || fail "timeout (${t}s): $what"; sleep 1; done
}
healthy() {  # service -> docker reports the image HEALTHCHECK healthy
  [[ $(docker inspect -f '{{.State.Health.Status}}' "$("${DC[@]}" ps -q "$1")") == healthy ]]
}
has_leader() { [[ $(status "$1" | jq_py 'd["leader"] or ""') == node-* ]]; }

step "docker-compose up -d (project $PROJECT, ports ${ANODE_PORT_PREFIX}080.., image ${ANODE_IMAGE:-anode:dev})"
"${DC[@]}" down -v --remove-orphans >/dev/null 2>&1 || true
"${DC[@]}" up -d
wait_until 120 "curl $ADMIN/health" curl -fsS "$ADMIN/health"
log "  curl $ADMIN/health -> $(curl -fsS "$ADMIN/health")"
for n in 0 1 2; do wait_until 120 "node-$n healthy" healthy "node-$n"; done
wait_until 60 "a Raft leader" has_leader 0
LEADER=$(status 0 | jq_py 'd["leader"]')
pass "3 containers healthy (image HEALTHCHECK), leader $LEADER, members $(status 0 | jq_py '",".join(m["id"] for m in d["members"])')"

step "aws CLI as the README shows: configure, mb, cp in, cp out"
"$AWS" configure set aws_access_key_id minioadmin
"$AWS" configure set aws_secret_access_key minioadmin
"$AWS" --endpoint-url "$S3" s3 mb s3://my-bucket
echo "Hello, Anode!" > "$WORK/test.txt"
"$AWS" --endpoint-url "$S3" s3 cp "$WORK/test.txt" s3://my-bucket/
"$AWS" --endpoint-url "$S3" s3 cp s3://my-bucket/test.txt "$WORK/downloaded.txt"
cmp "$WORK/test.txt" "$WORK/downloaded.txt" || fail "downloaded.txt differs"
for i in $(seq 1 10); do head -c $((i * 100003)) /dev/urandom > "$WORK/obj-$i"; done
"$AWS" --endpoint-url "$S3" s3 cp --recursive --exclude '*' --include 'obj-*' "$WORK/" s3://my-bucket/before/ >/dev/null
for n in 1 2; do
  "$AWS" --endpoint-url "$(s3_url "$n")" s3 cp s3://my-bucket/test.txt "$WORK/via-$n.txt" >/dev/null
  cmp "$WORK/test.txt" "$WORK/via-$n.txt" || fail "node-$n served different bytes"
done
pass "bucket made, test.txt equal after the round trip, 10 objects (0.1-1 MB) written, test.txt read through node-1 and node-2 too"

KILLED=${LEADER#node-}
ALIVE=$(( (KILLED + 1) % 3 ))
step "docker kill $LEADER (the Raft leader); node-$ALIVE serves"
docker kill "$("${DC[@]}" ps -q "$LEADER")" >/dev/null
K=$SECONDS
wait_until 60 "a new leader among the survivors" bash -c \
  "curl -fsS -H 'Authorization: Bearer minioadmin' $(admin_url "$ALIVE")/status | python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(d[\"leader\"] in (None, \"\", \"$LEADER\"))'"
NEW_LEADER=$(status "$ALIVE" | jq_py 'd["leader"]')
echo "written while $LEADER is down" > "$WORK/during.txt"
until "$AWS" --endpoint-url "$(s3_url "$ALIVE")" s3 cp "$WORK/during.txt" s3://my-bucket/during.txt >/dev/null 2>&1; do
  (( SECONDS - K < 60 )) || fail "no write accepted within 60 s of the kill"; sleep 1
done
WRITE_AFTER=$((SECONDS - K))
rm -rf "$WORK/got"; mkdir "$WORK/got"
"$AWS" --endpoint-url "$(s3_url "$ALIVE")" s3 cp --recursive s3://my-bucket/before/ "$WORK/got/" >/dev/null
for i in $(seq 1 10); do cmp "$WORK/obj-$i" "$WORK/got/obj-$i" || fail "obj-$i differs after the kill"; done
pass "new leader $NEW_LEADER, first write accepted ${WRITE_AFTER}s after the kill, 10/10 objects byte-exact through node-$ALIVE"

step "docker-compose up -d brings $LEADER back; it serves what was written while it was down"
"${DC[@]}" up -d >/dev/null 2>&1
wait_until 120 "$LEADER healthy again" healthy "$LEADER"
got_during() { "$AWS" --endpoint-url "$(s3_url "$KILLED")" s3 cp s3://my-bucket/during.txt "$WORK/during.out" && cmp "$WORK/during.txt" "$WORK/during.out"; }
wait_until 60 "during.txt through $LEADER" got_during
pass "$LEADER healthy again; during.txt byte-exact through it; members $(status "$KILLED" | jq_py '",".join(m["id"] + ("" if m.get("healthy") else "(unhealthy)") for m in d["members"])')"

step "docker-compose down + up -d: the named volumes keep the data"
"${DC[@]}" down >/dev/null 2>&1
"${DC[@]}" up -d >/dev/null 2>&1
wait_until 120 "curl $ADMIN/health after the restart" curl -fsS "$ADMIN/health"
wait_until 120 "a leader after the restart" has_leader 0
got_all() {
  rm -rf "$WORK/got2" && mkdir "$WORK/got2" \
    && "$AWS" --endpoint-url "$S3" s3 cp --recursive s3://my-bucket/before/ "$WORK/got2/" >/dev/null \
    && for i in $(seq 1 10); do cmp -s "$WORK/obj-$i" "$WORK/got2/obj-$i" || return 1; done
}
wait_until 60 "all objects after the restart" got_all
pass "10/10 objects byte-exact after down/up; $("$AWS" --endpoint-url "$S3" s3 ls s3://my-bucket/ | wc -l) entries at the bucket's top level"
log "PASSED"
