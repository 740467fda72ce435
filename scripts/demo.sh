#!/usr/bin/env bash
# `make demo`: a synthetic integrated care system through carehub, end to end (docs/demo.md).
#
#   scripts/demo.sh [BUILD_DIR]
#
# Generates a quarter of activity for a 250,000-patient ICS, starts the hub on the default
# configuration (a fresh data dir under demo-out/), one adapter per source system, the direct-care
# subscriber of the hospital and the ICS analytics subscriber, feeds the sources through the
# adapters (MLLP, HTTP, file drops), then prints what the hub did and where the report is.
# Environment: DEMO_OUT (default ./demo-out), DEMO_PATIENTS (250000), DEMO_VOLUME (1.0),
# DEMO_SEED (20260701), DEMO_QUARTER (the last complete quarter), DEMO_PG_KEEP (1: leave the demo's
# PostgreSQL running at the end), DEMO_PG_BIN (/usr/lib/postgresql/15/bin).
# Leaves nothing running: every child gets SIGTERM (then SIGKILL after 10 s) on exit, and the
# throwaway PostgreSQL cluster is stopped (its data dir is kept; the summary says how to look).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${1:-build}
BIN=$(cd "$BUILD_DIR/bin" && pwd)
OUT=$(mkdir -p "${DEMO_OUT:-$PWD/demo-out}" && cd "${DEMO_OUT:-$PWD/demo-out}" && pwd)
PATIENTS=${DEMO_PATIENTS:-250000}
VOLUME=${DEMO_VOLUME:-1.0}
SEED=${DEMO_SEED:-20260701}
# The default endpoints (config/hub.yaml); DEMO_PORT_BASE moves all three (tests run the demo
# beside other hubs).
PORT_BASE=${DEMO_PORT_BASE:-7400}
INGEST=tcp://127.0.0.1:$PORT_BASE
SUBSCRIBE=tcp://127.0.0.1:$((PORT_BASE + 1))
ADMIN=http://127.0.0.1:$((PORT_BASE + 80))

# The same list as DEMO_TARGETS in the Makefile (`make demo` builds just these).
for tool in carehub carehub-adapter carehub-subscribe carehub-analytics carehub-ics-generate \
            carehub-ics-feed carehub-sink; do
  [[ -x "$BIN/$tool" ]] || { echo "demo: $BIN/$tool is missing (build first: make build)" >&2; exit 1; }
done
command -v python3 >/dev/null || { echo "demo: python3 is needed to read the hub's JSON" >&2; exit 1; }
command -v curl >/dev/null || { echo "demo: curl is needed to query the admin API" >&2; exit 1; }
PG_BIN=${DEMO_PG_BIN:-/usr/lib/postgresql/15/bin}
[[ -x "$PG_BIN/initdb" ]] || { echo "demo: $PG_BIN/initdb is missing (scripts/install-deps.sh installs postgresql)" >&2; exit 1; }

# shellcheck source=lib/stop-children.sh
source "$ROOT/scripts/lib/stop-children.sh"
PIDS=()
PG_STARTED=""
PG_TEMP=""
cleanup() {
  local rc=$?
  stop_postgres_unless_kept
  stop_children "${PIDS[@]}"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The analytics warehouse: a throwaway PostgreSQL 15 cluster (initdb + pg_ctl) on a temp dir,
# reachable only through a Unix socket there (listen_addresses is empty: no TCP port is taken).
# initdb and postgres refuse to run as root; as root they run as Debian's `postgres` user.
AS_PG=()
if [[ $(id -u) -eq 0 ]]; then
  PG_USER=postgres
  id -u postgres >/dev/null 2>&1 || PG_USER=nobody
  AS_PG=(setpriv "--reuid=$(id -u $PG_USER)" "--regid=$(id -g $PG_USER)" --clear-groups --)
fi
PG_PORT=$((PORT_BASE + 90))
start_postgres() {
  # In the output folder when the server's user can reach it (so scripts/demo-psql.sh can open it
  # later), else in a temp dir that is removed at exit. A socket path must stay under 108 bytes.
  PG_DIR="$OUT/pg"
  PG_TEMP=""
  if [[ -f "$PG_DIR/data/postmaster.pid" ]]; then  # left running by an earlier DEMO_PG_KEEP=1 run
    "${AS_PG[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$PG_DIR"
  mkdir -p "$PG_DIR"
  chmod 755 "$PG_DIR"
  if [[ ${#AS_PG[@]} -gt 0 ]]; then chown "$PG_USER:" "$PG_DIR"; fi
  if ((${#PG_DIR} > 80)) || ! "${AS_PG[@]}" test -w "$PG_DIR"; then
    rm -rf "$PG_DIR"
    PG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/carehub-demo-pg.XXXXXX")
    PG_TEMP=1
    chmod 755 "$PG_DIR"
    if [[ ${#AS_PG[@]} -gt 0 ]]; then chown "$PG_USER:" "$PG_DIR"; fi
  fi
  "${AS_PG[@]}" "$PG_BIN/initdb" -D "$PG_DIR/data" -U carehub -A trust -E UTF8 --no-locale \
    > "$OUT/logs/initdb.log" 2>&1 || { echo "demo: initdb failed (see $OUT/logs/initdb.log)" >&2; exit 1; }
  PG_CTL=("${AS_PG[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/postgres.log")
  "${PG_CTL[@]}" -w -o "-k $PG_DIR -p $PG_PORT -c listen_addresses=''" start > /dev/null \
    || { echo "demo: PostgreSQL did not start (see $PG_DIR/postgres.log)" >&2; exit 1; }
  PG_STARTED=1
  PG_DSN="host=$PG_DIR port=$PG_PORT dbname=carehub user=carehub"
  "$PG_BIN/psql" -X -q -d "host=$PG_DIR port=$PG_PORT dbname=postgres user=carehub" \
    -c 'CREATE DATABASE carehub' >/dev/null
  echo "$PG_DIR" > "$OUT/postgres-dir"
}
stop_postgres_unless_kept() {
  if [[ -n "$PG_STARTED" && "${DEMO_PG_KEEP:-0}" != 1 ]]; then
    "${PG_CTL[@]}" -m fast -w stop >/dev/null 2>&1 || true
    PG_STARTED=""
    if [[ -n "$PG_TEMP" ]]; then rm -rf "$PG_DIR"; fi
  fi
}

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
  local seconds=$1 what=$2
  shift 2
  for _ in $(seq $((seconds * 10))); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  echo "demo: timed out waiting for $what (logs in $OUT/logs)" >&2
  exit 1
}

if curl -s -o /dev/null --max-time 1 "$ADMIN/healthz"; then
  echo "demo: something already serves $ADMIN (a hub left running?); stop it first" >&2
  exit 1
fi

step "1/5 Generating the synthetic ICS (seed $SEED, $PATIENTS patients, volume $VOLUME)"
rm -rf "$OUT/run" "$OUT/logs" "$OUT/data/hub"
mkdir -p "$OUT/run" "$OUT/logs" "$OUT/config/adapters"
QUARTER_ARG=()
[[ -n "${DEMO_QUARTER:-}" ]] && QUARTER_ARG=(--quarter "$DEMO_QUARTER")
"$BIN/carehub-ics-generate" --out "$OUT/source" --seed "$SEED" --patients "$PATIENTS" \
  --volume "$VOLUME" "${QUARTER_ARG[@]}" > "$OUT/logs/generate.json"
json '"  %d events for %s (%d days), %d resent records, %d invalid records, %d patients opted out" % (
  d["summary"]["events"], d["summary"]["quarter_start"][:10], d["summary"]["quarter_days"],
  d["summary"]["resends"], d["summary"]["invalid"], d["summary"]["opted_out_patients"])' \
  < "$OUT/source/ground-truth.json"

# The hub runs the default configuration (config/hub.yaml, byte for byte) and the shipped
# agreements; only the national data opt-out list is the generated population's.
cp "$ROOT/config/pseudonym.key" "$OUT/config/"
sed -e "s|tcp://127.0.0.1:7400|$INGEST|" -e "s|tcp://127.0.0.1:7401|$SUBSCRIBE|" \
  -e "s|127.0.0.1:7480|${ADMIN#http://}|" "$ROOT/config/hub.yaml" > "$OUT/config/hub.yaml"
# ... and the analytics team's second subscription under the same agreement (same pseudonyms),
# which carehub-sink loads into PostgreSQL.
sed -e 's/^\(  file: \)national-opt-out.txt/\1demo-opt-out.txt/' \
  -e '/{id: ics-analytics-feed, purpose: secondary_use}/a\      - {id: ics-analytics-warehouse, purpose: secondary_use}' \
  "$ROOT/config/agreements.yaml" > "$OUT/config/agreements.yaml"
cp "$OUT/source/national-opt-out.txt" "$OUT/config/demo-opt-out.txt"
grep -q 'file: demo-opt-out.txt' "$OUT/config/agreements.yaml" \
  || { echo "demo: cannot point the agreements at the demo opt-out list" >&2; exit 1; }
grep -q 'id: ics-analytics-warehouse' "$OUT/config/agreements.yaml" \
  || { echo "demo: cannot add the warehouse subscription to the agreements" >&2; exit 1; }

step "2/5 Starting the hub and the adapters"
(cd "$OUT" && exec "$BIN/carehub" --config config/hub.yaml) > "$OUT/logs/hub.log" 2>&1 &
PIDS+=($!)
wait_for 30 "the hub" curl -sf "$ADMIN/readyz"
echo "  hub: ingest $INGEST, subscribe $SUBSCRIBE, admin $ADMIN (data $OUT/data/hub)"

PRACTICES=$(tail -n +2 "$OUT/source/practices.csv" | cut -d, -f1 | paste -sd, -)
adapter_config() {  # adapter_config NAME PUBLISHER [ALLOWED_SITES] [SOURCE_SYSTEM]
  {
    echo "identity:"
    echo "  publisher_ods: $2"
    [[ -n "${3:-}" ]] && echo "  allowed_sites: [$3]"
    [[ -n "${4:-}" ]] && echo "  source_system: $4"
    echo "hub:"
    echo "  endpoint: $INGEST"
    echo "outbox:"
    echo "  dir: $OUT/run/$1/outbox"
    echo "admin:"
    echo "  listen: 127.0.0.1:0"
    echo "logging:"
    echo "  level: warn"
  } > "$OUT/config/adapters/$1.yaml"
}
start_adapter() {  # start_adapter NAME KIND ADDRESS_FLAG ADDRESS
  "$BIN/carehub-adapter" "$2" "$3" "$4" --config "$OUT/config/adapters/$1.yaml" \
    > "$OUT/logs/adapter-$1.log" 2>&1 &
  PIDS+=($!)
}
ADAPTERS=(hl7-RR8 hl7-RXF fhir-RY6 csv-gp csv-RR8 csv-RXF csv-RGD csv-E08000035)
adapter_config hl7-RR8 RR8
adapter_config hl7-RXF RXF
adapter_config fhir-RY6 RY6
adapter_config csv-gp QWO "$PRACTICES" gp-extract
for org in RR8 RXF RGD E08000035; do adapter_config "csv-$org" "$org" "" "${org,,}-extract"; done
start_adapter hl7-RR8 hl7 --listen 127.0.0.1:0
start_adapter hl7-RXF hl7 --listen 127.0.0.1:0
start_adapter fhir-RY6 fhir --listen 127.0.0.1:0
for folder in gp RR8 RXF RGD E08000035; do
  mkdir -p "$OUT/run/drop/$folder"
  start_adapter "csv-$folder" csv --watch "$OUT/run/drop/$folder"
done
for name in "${ADAPTERS[@]}"; do
  wait_for 30 "adapter $name" test -s "$OUT/run/$name/adapter-endpoints.json"
done
endpoint() { json "d['$2']" < "$OUT/run/$1/adapter-endpoints.json"; }
echo "  hl7 RR8 (MLLP $(endpoint hl7-RR8 listen)), hl7 RXF (MLLP $(endpoint hl7-RXF listen)),"
echo "  fhir RY6 (http://$(endpoint fhir-RY6 listen)/fhir), csv drop folders for GP practices (QWO),"
echo "  RR8 and RXF outpatient clinics, RGD mental health and E08000035 social care"

step "3/5 Starting the subscribers"
rm -f "$OUT/lth-direct-care.ndjson"
"$BIN/carehub-subscribe" --endpoint "$SUBSCRIBE" --subscription lth-direct-care --from earliest \
  --out "$OUT/lth-direct-care.ndjson" > "$OUT/logs/subscribe-lth.log" 2>&1 &
PIDS+=($!)

"$BIN/carehub-analytics" --endpoint "$SUBSCRIBE" --state "$OUT/run/analytics-state" --report "$OUT/report.html" \
  --practices "$OUT/source/practices.csv" > "$OUT/logs/analytics.log" 2>&1 &
ANALYTICS_PID=$!
PIDS+=($ANALYTICS_PID)
start_postgres
"$BIN/carehub-sink" postgres --subscription ics-analytics-warehouse --dsn "$PG_DSN" \
  --endpoint "$SUBSCRIBE" > "$OUT/logs/sink.log" 2>&1 &
SINK_PID=$!
PIDS+=($SINK_PID)
echo "  carehub-subscribe lth-direct-care -> $OUT/lth-direct-care.ndjson"
echo "  carehub-analytics ics-analytics-feed -> $OUT/report.html"
echo "  carehub-sink postgres ics-analytics-warehouse -> PostgreSQL 15 in $PG_DIR (schema carehub)"

step "4/5 Feeding the sources through the adapters"
START=$(date +%s.%N)
FEEDERS=()
"$BIN/carehub-ics-feed" mllp --to "$(endpoint hl7-RR8 listen)" --file "$OUT/source/hl7/RR8.hl7" \
  --connections 4 > "$OUT/logs/feed-RR8.json" 2> "$OUT/logs/feed-RR8.log" &
FEEDERS+=($!); PIDS+=($!)
"$BIN/carehub-ics-feed" mllp --to "$(endpoint hl7-RXF listen)" --file "$OUT/source/hl7/RXF.hl7" \
  --connections 4 > "$OUT/logs/feed-RXF.json" 2> "$OUT/logs/feed-RXF.log" &
FEEDERS+=($!); PIDS+=($!)
"$BIN/carehub-ics-feed" fhir --to "http://$(endpoint fhir-RY6 listen)" --dir "$OUT/source/fhir/RY6" \
  > "$OUT/logs/feed-RY6.json" 2> "$OUT/logs/feed-RY6.log" &
FEEDERS+=($!); PIDS+=($!)
# File drops: written under a temporary name and renamed, as a real sender must.
for folder in gp RR8 RXF RGD E08000035; do
  for f in "$OUT/source/csv/$folder"/*.csv; do
    cp "$f" "$OUT/run/drop/$folder/$(basename "$f").tmp"
    mv "$OUT/run/drop/$folder/$(basename "$f").tmp" "$OUT/run/drop/$folder/$(basename "$f")"
  done
done

status() { curl -sf --max-time 5 "$ADMIN/api/v1/status"; }
# One line per call: totals, the rates since the previous call (received and accepted per second),
# and each connected subscription's deliveries and lag.
PREV_AT=""
PREV_RECEIVED=0
PREV_ACCEPTED=0
progress() {
  local line now counts received accepted rates=""
  line=$(status | json '"%d %d|%7d accepted %6d duplicate %5d rejected | %s" % (
    d["totals"]["received"], d["totals"]["accepted"], d["totals"]["accepted"],
    d["totals"]["duplicate"], d["totals"]["rejected"], "  ".join("%s delivered %d lag %d" % (
    s["id"], s["delivered"], s["lag"]) for s in d["subscriptions"] if s["connected"]))') || return 0
  now=$(date +%s.%N)
  counts=${line%%|*}
  received=${counts% *}
  accepted=${counts#* }
  if [[ -n "$PREV_AT" ]]; then
    rates=$(python3 -c "import sys; dt=max(float(sys.argv[1])-float(sys.argv[2]), 0.001); print('%6.0f sent/s %6.0f accepted/s | ' % ((int(sys.argv[3])-int(sys.argv[4]))/dt, (int(sys.argv[5])-int(sys.argv[6]))/dt))" \
      "$now" "$PREV_AT" "$received" "$PREV_RECEIVED" "$accepted" "$PREV_ACCEPTED")
  fi
  PREV_AT=$now
  PREV_RECEIVED=$received
  PREV_ACCEPTED=$accepted
  echo "  hub: $rates${line#*|}"
}
pending_drops() { find "$OUT/run/drop" -maxdepth 2 -name '*.csv' -not -path '*/done/*' -not -path '*/error/*' | wc -l; }
outbox_depth() {
  local total=0 name admin depth
  for name in "${ADAPTERS[@]}"; do
    admin=$(endpoint "$name" admin)
    depth=$(curl -sf --max-time 5 "http://$admin/api/v1/status" | json 'd["outbox"]["depth"]') || depth=1
    total=$((total + depth))
  done
  echo "$total"
}
feeders_running() {
  local pid
  for pid in "${FEEDERS[@]}"; do kill -0 "$pid" 2>/dev/null && return 0; done
  return 1
}
while feeders_running || [[ $(pending_drops) -gt 0 ]] || [[ $(outbox_depth) -gt 0 ]]; do
  progress
  sleep 3
done
for pid in "${FEEDERS[@]}"; do wait "$pid" || echo "demo: a feeder failed (see $OUT/logs)" >&2; done
INGESTED=$(date +%s.%N)
caught_up() {
  status | json 'all(s["lag"] == 0 for s in d["subscriptions"] if s["id"] in ("lth-direct-care", "ics-analytics-feed", "ics-analytics-warehouse") and s["connected"]) and sum(1 for s in d["subscriptions"] if s["connected"]) >= 3' | grep -q True
}
until caught_up; do progress; sleep 2; done
progress
kill -TERM "$ANALYTICS_PID"
wait "$ANALYTICS_PID" || { echo "demo: carehub-analytics failed (see $OUT/logs/analytics.log)" >&2; exit 1; }
# SIGTERM: the sink commits its open transaction and exits 0.
kill -TERM "$SINK_PID"
wait "$SINK_PID" || { echo "demo: carehub-sink failed (see $OUT/logs/sink.log)" >&2; exit 1; }
# The report in the NHS's conventions (funnel plots, XmR charts), computed from PostgreSQL over the
# generated quarter.
Q_FROM=$(json 'd["summary"]["quarter_start"][:10]' < "$OUT/source/ground-truth.json")
Q_DAYS=$(json 'd["summary"]["quarter_days"]' < "$OUT/source/ground-truth.json")
Q_TO=$(date -u -d "$Q_FROM + $Q_DAYS days" +%F)
"$BIN/carehub-sink" report --dsn "$PG_DSN" --practices "$OUT/source/practices.csv" \
  --from "$Q_FROM" --to "$Q_TO" --out "$OUT/nhs-report.html" 2>> "$OUT/logs/sink.log" \
  || { echo "demo: carehub-sink report failed (see $OUT/logs/sink.log)" >&2; exit 1; }
DONE=$(date +%s.%N)

step "5/5 Summary"
curl -sf "$ADMIN/metrics" > "$OUT/logs/metrics.txt"
status > "$OUT/logs/status.json"
python3 - "$OUT" "$START" "$INGESTED" "$DONE" <<'PY'
import json, re, sys, glob, os
out, start, ingested, done = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
status = json.load(open(f"{out}/logs/status.json"))
metrics = open(f"{out}/logs/metrics.txt").read()
def series(name):
    rows = []
    for m in re.finditer(r'^%s\{([^}]*)\} ([0-9.e+]+)$' % name, metrics, re.M):
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
        rows.append((labels, float(m.group(2))))
    return rows
t = status["totals"]
print(f"  events received {t['received']:.0f}: accepted {t['accepted']:.0f}, duplicates removed "
      f"{t['duplicate']:.0f}, rejected {t['rejected']:.0f}, conflicts {t['conflict']:.0f}")
by_source = {}
for labels, v in series("carehub_events_accepted_total"):
    key = (labels.get("publisher", "?"), labels.get("type", "?"))
    by_source[key] = by_source.get(key, 0) + v
if by_source:
    print("  accepted by source and type:")
    for pub in sorted({k[0] for k in by_source}):
        parts = ", ".join(f"{typ} {int(v)}" for (p, typ), v in sorted(by_source.items()) if p == pub)
        print(f"    {pub:10s} {parts}")
else:
    print("  accepted by source:")
    for pub, p in sorted(status["publishers"].items()):
        print(f"    {pub:10s} accepted {p['accepted']}, duplicate {p['duplicate']}, rejected {p['rejected']}")
rejects = {}
for labels, v in series("carehub_events_rejected_total"):
    rejects[labels.get("reason", "?")] = rejects.get(labels.get("reason", "?"), 0) + v
for f in glob.glob(f"{out}/logs/feed-*.json"):
    d = json.load(open(f))
    for reason, n in d["reasons"].items():
        rejects[f"{reason} (at the adapter)"] = rejects.get(f"{reason} (at the adapter)", 0) + n
csv_rejected = 0
for f in glob.glob(f"{out}/run/drop/*/error/*.errors.json"):
    d = json.load(open(f))
    for e in d.get("errors", []):
        r = e.get("reason", "?").split(":")[0]
        rejects[f"{r} (at the adapter)"] = rejects.get(f"{r} (at the adapter)", 0) + 1
print("  rejected with reasons: " + (", ".join(f"{r} {int(n)}" for r, n in sorted(rejects.items())) or "none"))
print("  subscriptions:")
for s in status["subscriptions"]:
    print(f"    {s['id']:20s} {s['purpose']:14s} delivered {s['delivered']:7d}  withheld {s['withheld']:6d}"
          f"  cursor {s['cursor']}{('  (' + s['notice'] + ')') if s.get('notice') else ''}")
secs = ingested - start
print(f"  throughput: {t['accepted']:.0f} events accepted in {secs:.1f} s through the adapters "
      f"({t['accepted'] / max(secs, 0.001):.0f}/s); subscribers caught up {done - ingested:.1f} s later")
PY
echo
echo "  direct-care feed of RR8:  $OUT/lth-direct-care.ndjson ($(wc -l < "$OUT/lth-direct-care.ndjson") events)"
echo "  ground truth:             $OUT/source/ground-truth.json"
echo "  ICS analytics report:     $OUT/report.html"
echo "  funnel plots, SPC charts: $OUT/nhs-report.html (carehub-sink report, from PostgreSQL)"
PG_ROWS=$("$PG_BIN/psql" -X -A -t -d "$PG_DSN" \
  -c "SELECT count(*) || ' events, ' || (SELECT count(*) FROM carehub.activity_current) || ' current activities, ' || (SELECT count(*) FROM carehub.referral_state) || ' referrals' FROM carehub.event")
echo "  analytics warehouse:      PostgreSQL 15, schema carehub: $PG_ROWS (docs/postgres-sink.md)"
if [[ "${DEMO_PG_KEEP:-0}" == 1 ]]; then
  echo "    still running; look:    $PG_BIN/psql \"$PG_DSN\""
  echo "    stop it:                ${AS_PG[*]}${AS_PG:+ }$PG_BIN/pg_ctl -D $PG_DIR/data stop; rm -rf $PG_DIR"
elif [[ -n "$PG_TEMP" ]]; then
  echo "    removed at exit ($OUT is out of the postgres user's reach); DEMO_PG_KEEP=1 keeps it running"
else
  echo "    stopped at exit; look:  $ROOT/scripts/demo-psql.sh $PG_DIR   (starts it, opens psql, stops it on quit)"
  echo "    DEMO_PG_KEEP=1 leaves it running instead"
fi
