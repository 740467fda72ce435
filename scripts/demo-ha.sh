#!/usr/bin/env bash
# `make demo-ha`: automatic failover on one machine (docs/replication.md, "Automatic failover").
#
#   scripts/demo-ha.sh [BUILD_DIR]
#
# Starts a 3-member etcd cluster (Debian's etcd-server) and two hubs on loopback (hub-a configured
# as the first primary, hub-b its synchronous standby, both with a `cluster:` section), a
# subscriber reading from both hubs and a stream of publishers (durable outbox, both hubs'
# endpoints). Mid-stream the primary is killed with kill -9; the standby takes the leader lease
# and serves; the old primary is restarted and rejoins as the new standby. Then it checks, from
# the subscriber's own feed and the publishers' answers, that nothing acknowledged was lost, and
# prints one JSON line:
#   {"acked":…, "stored_exactly_once":…, "lost":…, "duplicates_stored":…, "failover_ms":…,
#    "subscriber_gaps":…}
# Environment: DEMO_OUT (default ./demo-out; this demo uses DEMO_OUT/ha), DEMO_HA_PORT_BASE
# (7600), DEMO_HA_BATCHES (40 publisher runs of DEMO_HA_EVENTS=1500 events).
# Leaves nothing running: every child gets SIGTERM (then SIGKILL after 10 s) on exit.
set -euo pipefail

BUILD_DIR=${1:-build}
BIN=$(cd "$BUILD_DIR/bin" && pwd)
OUT_BASE=$(mkdir -p "${DEMO_OUT:-$PWD/demo-out}" && cd "${DEMO_OUT:-$PWD/demo-out}" && pwd)
OUT=$OUT_BASE/ha
BASE=${DEMO_HA_PORT_BASE:-7600}
BATCHES=${DEMO_HA_BATCHES:-40}
EVENTS=${DEMO_HA_EVENTS:-1500}
ETCD=${DEMO_HA_ETCD:-/usr/bin/etcd}

for tool in carehub carehubctl carehub-publish carehub-subscribe; do
  [[ -x "$BIN/$tool" ]] || { echo "demo-ha: $BIN/$tool is missing (make demo-ha builds it)" >&2; exit 1; }
done
[[ -x "$ETCD" ]] || { echo "demo-ha: $ETCD is missing (scripts/install-deps.sh installs etcd-server)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "demo-ha: python3 is needed to read JSON" >&2; exit 1; }
command -v curl >/dev/null || { echo "demo-ha: curl is needed to query the admin API" >&2; exit 1; }

# shellcheck source=lib/stop-children.sh
source "$(cd "$(dirname "$0")" && pwd)/lib/stop-children.sh"
PIDS=()
cleanup() {
  local rc=$?
  stop_children "${PIDS[@]}"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { echo "demo-ha: $*" >&2; }
now_ms() { date +%s%3N; }

rm -rf "$OUT"
mkdir -p "$OUT"

# --- etcd: three members on loopback ---
CLUSTER=""
ENDPOINTS=""
for i in 0 1 2; do
  CLUSTER+="${CLUSTER:+,}e$i=http://127.0.0.1:$((BASE + 2 * i + 1))"
  ENDPOINTS+="${ENDPOINTS:+, }http://127.0.0.1:$((BASE + 2 * i))"
done
for i in 0 1 2; do
  "$ETCD" --name "e$i" --data-dir "$OUT/etcd-$i" \
    --listen-client-urls "http://127.0.0.1:$((BASE + 2 * i))" \
    --advertise-client-urls "http://127.0.0.1:$((BASE + 2 * i))" \
    --listen-peer-urls "http://127.0.0.1:$((BASE + 2 * i + 1))" \
    --initial-advertise-peer-urls "http://127.0.0.1:$((BASE + 2 * i + 1))" \
    --initial-cluster "$CLUSTER" --initial-cluster-token "carehub-demo-ha-$$" \
    --initial-cluster-state new --log-level warn >"$OUT/etcd-$i.log" 2>&1 &
  PIDS+=($!)
done
for _ in $(seq 100); do
  if curl -sf "http://127.0.0.1:$BASE/health" | grep -q '"health":"true"'; then break; fi
  sleep 0.2
done
say "etcd: 3 members on 127.0.0.1:$BASE,$((BASE + 2)),$((BASE + 4))"

# --- two hubs ---
cat >"$OUT/agreements.yaml" <<'EOF'
subscribers:
  - id: ha-reader
    subscriptions:
      - {id: ha-feed, purpose: direct_care}
agreements:
  - id: DSA-HA-DEMO
    subscriber: ha-reader
    purpose: direct_care
    legal_basis: "demo"
    valid_from: 2020-01-01
    valid_until: 2099-12-31
    sources: ["*"]
    event_types: ["*"]
    patient_fields: identifiable
EOF
port() { echo $((BASE + 10 + 10 * $1 + $2)); }  # hub (0 a, 1 b), offset
for side in 0 1; do
  name=$([[ $side == 0 ]] && echo a || echo b)
  role=$([[ $side == 0 ]] && echo primary || echo standby)
  peer=$((1 - side))
  cat >"$OUT/hub-$name.yaml" <<EOF
hub: {data_dir: $OUT/data-$name}
ingest: {endpoint: tcp://127.0.0.1:$(port $side 0)}
subscribe: {endpoint: tcp://127.0.0.1:$(port $side 1), heartbeat_interval_ms: 500}
admin: {listen: 127.0.0.1:$(port $side 2)}
policy: {agreements: $OUT/agreements.yaml}
replication:
  role: $role
  name: hub-$name
  listen: tcp://127.0.0.1:$(port $side 3)
  peer: {replication: tcp://127.0.0.1:$(port $peer 3), ingest: tcp://127.0.0.1:$(port $peer 0), subscribe: tcp://127.0.0.1:$(port $peer 1)}
  mode: sync
  on_standby_loss: degrade
  sync_timeout_ms: 1500
cluster:
  etcd: [$ENDPOINTS]
  name: demo-ha
  ttl_ms: 3000
EOF
done
HUB_PID=()
start_hub() {
  local side=$1 name
  name=$([[ $side == 0 ]] && echo a || echo b)
  "$BIN/carehub" --config "$OUT/hub-$name.yaml" >>"$OUT/hub-$name.log" 2>&1 &
  HUB_PID[$side]=$!
  PIDS+=($!)
}
repl() { curl -sf "http://127.0.0.1:$(port "$1" 2)/api/v1/replication" 2>/dev/null || echo '{}'; }
leads() {
  repl "$1" | python3 -c 'import json,sys
r=json.load(sys.stdin)
sys.exit(0 if r.get("role")=="primary" and r.get("accepting_writes") and r.get("cluster",{}).get("this_hub_leads") else 1)'
}
in_sync() {
  repl "$1" | python3 -c 'import json,sys
r=json.load(sys.stdin)
sys.exit(0 if r.get("standby",{}).get("in_sync") else 1)'
}
wait_until() {  # seconds, command...
  local deadline=$(($(date +%s) + $1))
  shift
  until "$@"; do
    (($(date +%s) < deadline)) || return 1
    sleep 0.05
  done
}
start_hub 0
start_hub 1
wait_until 30 leads 0 || { say "hub-a did not become the leader; see $OUT/hub-a.log"; exit 1; }
wait_until 30 in_sync 0 || { say "hub-b did not get in sync; see $OUT/hub-b.log"; exit 1; }
say "hub-a leads, hub-b is its in-sync standby"

INGEST="tcp://127.0.0.1:$(port 0 0),tcp://127.0.0.1:$(port 1 0)"
SUBSCRIBE="tcp://127.0.0.1:$(port 0 1),tcp://127.0.0.1:$(port 1 1)"
"$BIN/carehub-subscribe" --endpoint "$SUBSCRIBE" --subscription ha-feed --from earliest \
  --out "$OUT/feed.ndjson" 2>"$OUT/subscriber.log" &
SUB_PID=$!
PIDS+=($SUB_PID)

# --- the stream: publisher runs one after another, each waiting for every answer ---
(
  for b in $(seq 1 "$BATCHES"); do
    "$BIN/carehub-publish" --endpoint "$INGEST" --generate "$EVENTS" --seed "$b" \
      --id-prefix "ha-$b-" --outbox "$OUT/outbox" --timeout 120 >>"$OUT/publish.ndjson" \
      2>>"$OUT/publish.log" || echo "{\"failed\": $b}" >>"$OUT/publish.ndjson"
    sleep 0.1
  done
) &
STREAM_PID=$!
PIDS+=($STREAM_PID)

sleep "${DEMO_HA_KILL_AFTER:-3}"
say "kill -9 of the primary (hub-a, pid ${HUB_PID[0]}) mid-stream"
T0=$(now_ms)
kill -KILL "${HUB_PID[0]}"
wait "${HUB_PID[0]}" 2>/dev/null || true
wait_until 60 leads 1 || { say "hub-b did not take over; see $OUT/hub-b.log"; exit 1; }
FAILOVER_MS=$(($(now_ms) - T0))
say "hub-b took the leader lease and acknowledges writes after $FAILOVER_MS ms"
start_hub 0
wait_until 120 in_sync 1 || { say "hub-a did not rejoin as standby; see $OUT/hub-a.log"; exit 1; }
say "hub-a restarted and rejoined as hub-b's in-sync standby"

wait "$STREAM_PID" || true
EXPECTED=$((BATCHES * EVENTS))
wait_until 120 bash -c "[[ \$(wc -l <'$OUT/feed.ndjson') -ge $EXPECTED ]]" || true
sleep 1
kill -TERM "$SUB_PID" 2>/dev/null || true
wait "$SUB_PID" 2>/dev/null || true

python3 - "$OUT" "$BATCHES" "$EVENTS" "$FAILOVER_MS" <<'EOF'
import json, sys
out, batches, events, failover_ms = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
acked = 0
failed_runs = 0
for line in open(f"{out}/publish.ndjson"):
    if not line.startswith("{"):
        continue  # the publisher library's log lines share standard output
    r = json.loads(line)
    if "failed" in r:
        failed_runs += 1
        continue
    acked += r.get("accepted", 0) + r.get("duplicate", 0)
seqs_of = {}
seen_seqs = set()
for line in open(f"{out}/feed.ndjson"):
    env = json.loads(line)["event"]["envelope"]
    eid = env.get("event_id", env.get("eventId"))
    seq = int(env.get("hub_seq", env.get("hubSeq")))
    seqs_of.setdefault(eid, set()).add(seq)
    seen_seqs.add(seq)
expected = batches * events
stored_once = sum(1 for s in seqs_of.values() if len(s) == 1)
duplicates = sum(len(s) - 1 for s in seqs_of.values())
top = max(seen_seqs) if seen_seqs else 0
gaps = sum(1 for s in range(1, top + 1) if s not in seen_seqs)
print(json.dumps({"acked": acked, "stored_exactly_once": stored_once,
                  "lost": expected - len(seqs_of), "duplicates_stored": duplicates,
                  "failover_ms": failover_ms, "subscriber_gaps": gaps,
                  "publisher_runs_failed": failed_runs}))
ok = acked == expected and len(seqs_of) == expected and duplicates == 0 and gaps == 0
sys.exit(0 if ok else 1)
EOF
