#!/usr/bin/env bash
# Builds the libFuzzer fuzzers (tests/fuzz, clang + ASan + UBSan) and runs each over its seed
# corpus for a bounded time.
#
#   scripts/fuzz.sh                 each fuzzer for FUZZ_SECONDS (default 300) seconds  (make fuzz)
#   scripts/fuzz.sh --seconds N     each fuzzer for N seconds
#   scripts/fuzz.sh --smoke         replay each committed corpus, then a fixed-seed, count-bounded
#                                   run of FUZZ_SMOKE_RUNS (default 3000) inputs        (make test)
#                                   Deterministic: finding new crashes is `make fuzz`'s job, not
#                                   CI's; the smoke proves the fuzzers build and today's corpora pass.
#   scripts/fuzz.sh --only NAME     one fuzzer (repeatable), e.g. --only fuzz_hl7_message
#   scripts/fuzz.sh --if-available  exit 0 with a note when clang or libFuzzer is missing (for
#                                   machines without scripts/install-deps.sh; make test does not
#                                   pass it, so a missing fuzzer fails the suite there)
#   scripts/fuzz.sh --no-build      run the fuzzers already built (e.g. two runs side by side)
#
# The seed corpora in tests/fuzz/corpus/<fuzzer>/ are read, never written: new interesting inputs
# go to a scratch directory (FUZZ_WORK_DIR, default <build dir>/fuzz-work). Any crash, leak, UB
# report, timeout or out-of-memory makes the script exit 1, naming the fuzzer and the saved input;
# replay it with `<build dir>/bin/<fuzzer> <file>`. One summary line per fuzzer: execs, exec/s,
# coverage (edges) and features.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
build="${FUZZ_BUILD_DIR:-$root/build-fuzz}"
seconds="${FUZZ_SECONDS:-300}"
jobs="${FUZZ_JOBS:-2}"
if_available=0
smoke=0
build_first=1
only=()
while (($#)); do
  case "$1" in
    --smoke) smoke=1 ;;
    --seconds) seconds="$2"; shift ;;
    --only) only+=("$2"); shift ;;
    --if-available) if_available=1 ;;
    --no-build) build_first=0 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "fuzz: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

have_libfuzzer() {
  command -v clang >/dev/null && command -v clang++ >/dev/null || return 1
  [[ -n "$(clang++ -print-file-name=libclang_rt.fuzzer-x86_64.a 2>/dev/null)" ]] &&
    [[ -f "$(clang++ -print-file-name=libclang_rt.fuzzer-x86_64.a)" ]] && return 0
  compgen -G "/usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a" >/dev/null
}
if ! have_libfuzzer; then
  if ((if_available)); then
    echo "fuzz: skipped (clang with libFuzzer not installed; scripts/install-deps.sh installs it)"
    exit 0
  fi
  echo "fuzz: clang with libFuzzer is required (Debian: apt-get install clang libclang-rt-14-dev)" >&2
  exit 1
fi

# Configure once (clang, everything instrumented), then build only the fuzz targets.
if ((build_first)) && [[ ! -f "$build/CMakeCache.txt" ]]; then
  # -Werror stays with the gcc build CI runs (and tests/static runs clang's thread-safety
  # analysis): clang's instrumented build has a warning set of its own, and a clang-only warning
  # must not stop the fuzzers from running.
  CC=clang CXX=clang++ cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCAREHUB_FUZZ=ON -DCAREHUB_WERROR=OFF >/dev/null
fi
if ((build_first)); then
  echo "fuzz: building fuzzers in $build"
  nice -n 5 cmake --build "$build" --target carehub_fuzzers -j"$jobs" >"$build/fuzz-build.log" 2>&1 || {
    tail -40 "$build/fuzz-build.log" >&2
    echo "fuzz: build failed (full log: $build/fuzz-build.log)" >&2
    exit 1
  }
fi

dict_for() {
  case "$1" in
    fuzz_hl7_message) echo hl7.dict ;;
    fuzz_mllp_framing) echo mllp.dict ;;
    fuzz_fhir_json) echo json.dict ;;
    fuzz_fhir_xml) echo xml.dict ;;
    fuzz_csv_extract) echo csv.dict ;;
    fuzz_hub_config|fuzz_identities_yaml|fuzz_agreements_yaml) echo yaml.dict ;;
    *) echo "" ;;
  esac
}

fuzzers=()
for corpus in "$root"/tests/fuzz/corpus/*/; do
  name="$(basename "$corpus")"
  if ((${#only[@]})) && [[ ! " ${only[*]} " == *" $name "* ]]; then
    continue
  fi
  fuzzers+=("$name")
done
if ((${#fuzzers[@]} == 0)); then
  echo "fuzz: no fuzzer selected" >&2
  exit 2
fi

work="${FUZZ_WORK_DIR:-$build/fuzz-work}"
mkdir -p "$work"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"
failed=0
if ((smoke)); then
  echo "fuzz: ${#fuzzers[@]} fuzzers, corpus replay + ${FUZZ_SMOKE_RUNS:-3000} fixed-seed runs each; crashes under $work"
else
  echo "fuzz: ${#fuzzers[@]} fuzzers, ${seconds}s each; new inputs and crashes under $work"
fi
for name in "${fuzzers[@]}"; do
  bin="$build/bin/$name"
  if [[ ! -x "$bin" ]]; then
    echo "fuzz: $name was not built" >&2
    failed=1
    continue
  fi
  scratch="$work/$name/corpus"
  artifacts="$work/$name/artifacts"
  log="$work/$name/run.log"
  if ((smoke)); then
    # A fresh scratch dir each time: the run depends only on the binary, the corpus and the seed.
    rm -rf "$scratch"
  fi
  mkdir -p "$scratch" "$artifacts"
  args=(-rss_limit_mb=2048 -timeout=10 -max_len=65536 -print_final_stats=1
        -artifact_prefix="$artifacts/")
  if ((smoke)); then
    args+=(-seed=1 -runs="${FUZZ_SMOKE_RUNS:-3000}")
  else
    args+=(-max_total_time="$seconds")
  fi
  dict="$(dict_for "$name")"
  if [[ -n "$dict" ]]; then
    args+=(-dict="$root/tests/fuzz/dict/$dict")
  fi
  # The scratch dir comes first: libFuzzer writes new inputs to the first corpus directory only.
  rc=0
  (cd "$work/$name" && "$bin" "${args[@]}" "$scratch" "$root/tests/fuzz/corpus/$name") \
    >"$log" 2>&1 || rc=$?
  execs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)"
  rate="$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)"
  status_line="$(grep -E '^#[0-9]+' "$log" | tail -1 || true)"
  cov="$(grep -o 'cov: [0-9]*' <<<"$status_line" | grep -o '[0-9]*' || true)"
  ft="$(grep -o 'ft: [0-9]*' <<<"$status_line" | grep -o '[0-9]*' || true)"
  printf 'fuzz: %-22s %10s execs %7s exec/s  cov %6s  ft %6s  %s\n' "$name" "${execs:-?}" \
    "${rate:-?}" "${cov:-?}" "${ft:-?}" "$([[ $rc -eq 0 ]] && echo ok || echo FAILED)"
  if ((rc != 0)); then
    failed=1
    crash="$(grep -o 'Test unit written to [^ ]*' "$log" | tail -1 | sed 's/Test unit written to //' || true)"
    grep -E 'ERROR: |runtime error|fuzz invariant failed|SUMMARY' "$log" | head -5 >&2 || true
    echo "fuzz: $name FAILED (exit $rc): input ${crash:-not saved}; log $log" >&2
    echo "fuzz: replay with $bin ${crash:-<input>}" >&2
  fi
done
exit "$failed"
