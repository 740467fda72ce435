#!/usr/bin/env bash
# Installs the Debian 12 packages carehub needs to build, test, demo and benchmark.
# Idempotent: only missing packages are installed. Uses sudo when not root.
set -euo pipefail

BUILD_PKGS=(
  build-essential cmake pkg-config git
  libzmq3-dev cppzmq-dev
  libprotobuf-dev protobuf-compiler
  librocksdb-dev
  libabsl-dev  # absl::flat_hash_map (hub/include/carehub/hub/pending_keys.h)
  libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libyaml-cpp-dev libcli11-dev libcpp-httplib-dev nlohmann-json3-dev
  libsodium-dev libssl-dev
  libjemalloc-dev  # the hub's allocator (CMake target carehub_allocator)
  libxml2-dev  # FHIR application/fhir+xml (adapters/fhir)
  libpq-dev    # PostgreSQL client library (sink/, carehub-sink postgres)
)
# Tools the test suite and benchmarks drive for real (not optional: a skipped test is not a test).
TOOL_PKGS=(
  prometheus        # promtool check rules / check metrics
  chromium          # headless browser tests of the status page and the analytics report
  nats-server libnats-dev  # the peer in the benchmark
  python3 curl procps
  postgresql  # PostgreSQL 15 server: carehub-sink tests and the demo start throwaway clusters
  clang libclang-rt-14-dev  # libFuzzer runtime (libclang_rt.fuzzer-x86_64.a): make fuzz, smoke in make test
  # The Debian package and its test (tests/packaging): dpkg-shlibdeps (CPACK_DEBIAN_PACKAGE_SHLIBDEPS),
  # lintian, systemd-analyze verify of the units; adduser is a Depends the test resolves on this machine.
  dpkg-dev lintian systemd adduser
  etcd-server etcd-client  # real etcd clusters for the failover tests (issue 14)
  socat  # the failover chaos test cuts a hub off from etcd by pausing a proxy between them
  python3-jsonschema  # validates carehub-fhir-notify's notifications against FHIR's JSON schema
)

want=("${BUILD_PKGS[@]}")
if [[ "${1:-}" != "--build-only" ]]; then
  want+=("${TOOL_PKGS[@]}")
fi

missing=()
for pkg in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#want[@]} packages present"
  exit 0
fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
