#!/usr/bin/env bash
# Regenerates the binary seeds of fuzz_ingest_frame and fuzz_subscribe_frame from the text-format
# frames below (protoc --encode), so the seeds stay readable and reviewable here.
# Ingest seeds are one mode byte (bit 0: CURVE sender "rxk"; bits 1-7: batch limit - 1) + a Frame.
# Subscribe seeds are a store-state byte + frames, each behind a one-byte length.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
proto_dir="$here/../../proto"
ingest="$here/corpus/fuzz_ingest_frame"
subscribe="$here/corpus/fuzz_subscribe_frame"
mkdir -p "$ingest" "$subscribe"

encode() {  # text-format Frame on stdin -> binary on stdout
  protoc -I"$proto_dir" -I/usr/include --encode=carehub.v1.Frame carehub/v1/wire.proto
}

event() {  # $1 event_id, $2 publisher, $3 nhs number, $4 kind
  cat <<TXT
events {
  envelope {
    event_id: "$1" publisher_ods: "$2" site_ods: "${2}01" source_system: "PAS"
    lifecycle: LIFECYCLE_NEW
    occurred_at { seconds: 1780000000 } recorded_at { seconds: 1780000100 }
    patient { nhs_number: "$3" local_mrn: "K123" mrn_assigning_ods: "$2" birth_date: "1970-02-03"
              sex: SEX_FEMALE postcode: "LS1 4AP" registered_gp_ods: "B86001" }
  }
  activity { kind: $4 encounter_id: "ENC-$1" encounter_class: "EMER" status: "finished"
             period_start { seconds: 1780000000 } treatment_function: "180"
             diagnoses { system: "http://snomed.info/sct" code: "22298006" } }
}
TXT
}

seed() {  # $1 file, $2 mode byte (octal), text frame on stdin
  { printf "\\$2"; encode; } >"$1"
}

{ echo "version: PROTOCOL_VERSION_1 publish { batch_id: 1"; event e1 RXK 9434765919 ACTIVITY_KIND_AE_ATTENDANCE; echo "}"; } | seed "$ingest/publish_one" 376
{ echo "version: PROTOCOL_VERSION_1 publish { batch_id: 2"; event e1 RXK 9434765919 ACTIVITY_KIND_AE_ATTENDANCE; event e1 RXK 9434765919 ACTIVITY_KIND_AE_ATTENDANCE; event e2 RXK 9999999484 ACTIVITY_KIND_DISCHARGE; echo "}"; } | seed "$ingest/publish_duplicate" 376
{ echo "version: PROTOCOL_VERSION_1 publish { batch_id: 3"; event e1 RXK 9434765919 ACTIVITY_KIND_AE_ATTENDANCE; event e1 RXK 9999999484 ACTIVITY_KIND_AE_ATTENDANCE; echo "}"; } | seed "$ingest/publish_conflict" 376
{ echo "version: PROTOCOL_VERSION_1 publish { batch_id: 4"; event e1 RXK 9434765918 ACTIVITY_KIND_AE_ATTENDANCE; event e2 RR8 9434765919 ACTIVITY_KIND_UNSPECIFIED; echo "}"; } | seed "$ingest/publish_invalid" 376
{ echo "version: PROTOCOL_VERSION_1 publish { batch_id: 5"; event e1 RXK 9434765919 ACTIVITY_KIND_AE_ATTENDANCE; event e2 RR8 9434765919 ACTIVITY_KIND_AE_ATTENDANCE; echo "}"; } | seed "$ingest/publish_curve_other_ods" 377
{ echo "version: PROTOCOL_VERSION_1 publish { batch_id: 6"; event e1 RXK 9434765919 ACTIVITY_KIND_AE_ATTENDANCE; event e2 RXK 9434765919 ACTIVITY_KIND_AE_ATTENDANCE; echo "}"; } | seed "$ingest/publish_over_limit" 000
echo "version: PROTOCOL_VERSION_1 heartbeat { sent_at_unix_ms: 1780000000000 head_seq: 9 }" | seed "$ingest/heartbeat" 376
echo "version: PROTOCOL_VERSION_1 subscribe { subscription: \"x\" }" | seed "$ingest/unexpected_kind" 376
echo "publish { batch_id: 7 }" | seed "$ingest/no_version" 376

frame() {  # text frame on stdin -> length byte + bytes
  local bytes
  bytes="$(mktemp)"
  encode >"$bytes"
  printf "\\$(printf '%03o' "$(stat -c %s "$bytes")")"
  cat "$bytes"
  rm -f "$bytes"
}
{
  printf '\201'
  echo 'version: PROTOCOL_VERSION_1 subscribe { subscription: "ics-analytics" start: START_RESUME initial_credit: 100 }' | frame
  echo 'version: PROTOCOL_VERSION_1 credit { events: 50 }' | frame
  echo 'version: PROTOCOL_VERSION_1 ack { up_to_seq: 12 }' | frame
  echo 'version: PROTOCOL_VERSION_1 heartbeat { sent_at_unix_ms: 1 }' | frame
} >"$subscribe/resume_credit_ack"
{
  printf '\042'
  echo 'version: PROTOCOL_VERSION_1 subscribe { subscription: "gp-direct" start: START_AT_SEQ seq: 18446744073709551615 initial_credit: 4294967295 }' | frame
  echo 'version: PROTOCOL_VERSION_1 ack { up_to_seq: 18446744073709551615 }' | frame
  echo 'version: PROTOCOL_VERSION_1 credit { events: 4294967295 }' | frame
} >"$subscribe/extremes"
{
  printf '\000'
  echo 'version: PROTOCOL_VERSION_1 subscribe { subscription: "s" start: START_AT_TIME time_unix_ms: -1 }' | frame
  echo 'version: PROTOCOL_VERSION_1 subscribe { subscription: "s" start: START_LATEST }' | frame
  echo 'version: PROTOCOL_VERSION_1 publish { batch_id: 1 }' | frame
  echo 'version: PROTOCOL_VERSION_UNSPECIFIED ack { up_to_seq: 1 }' | frame
} >"$subscribe/modes_and_wrong_kinds"
echo "frame seeds written to $ingest and $subscribe"
