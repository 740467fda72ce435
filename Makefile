# carehub: the two commands a new user needs are `make demo` and `make test`.
# Each installs missing Debian packages, configures and builds as needed.

BUILD_DIR ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=RelWithDebInfo

.PHONY: all deps configure build demo test test-fast bench soak clean test-sanitize
.PHONY: fuzz chaos demo-ha

all: build

deps:
	@./scripts/install-deps.sh

configure: deps
	@cmake -S . -B $(BUILD_DIR) $(CMAKE_FLAGS) >/dev/null

build: configure
	@cmake --build $(BUILD_DIR) -j$(JOBS)

# Builds only what the demo runs (scripts/demo.sh checks the same list), not the test suite: on a
# fresh 2-core machine `demo: build` spent about 15 minutes compiling tests before the demo began.
DEMO_TARGETS = carehub carehub-adapter carehub-subscribe carehub-analytics carehub-ics-generate \
               carehub-ics-feed carehub-sink
demo: configure
	@echo "== building the demo's programs: $(DEMO_TARGETS)"
	@cmake --build $(BUILD_DIR) -j$(JOBS) --target $(DEMO_TARGETS)
	@./scripts/demo.sh $(BUILD_DIR)

test: build
	@cd $(BUILD_DIR) && ctest --output-on-failure -j$(JOBS) --timeout 900
	@./scripts/fuzz.sh --smoke

# The inner loop: unit tests and the fast integration tests (ctest label `slow` left out; see
# tests/CMakeLists.txt), under three minutes after a build. `make test` stays the whole suite.
test-fast: build
	@cd $(BUILD_DIR) && ctest --output-on-failure -j$(JOBS) --timeout 900 -LE slow

# ASan+UBSan over the whole suite (build-asan), then TSan over the threaded parts (build-tsan); see
# tests/sanitizers/run.sh for what runs where and why. Builds use JOBS (default 2: instrumented
# compiles are slow and memory-hungry).
test-sanitize: deps
	@JOBS=$(or $(SAN_JOBS),2) CMAKE_FLAGS="$(CMAKE_FLAGS)" ./tests/sanitizers/run.sh all

bench: build
	@$(BUILD_DIR)/bin/carehub-bench $(BENCH_ARGS)

# Soak run (tests/soak): steady traffic, subscriber churn, agreement reloads and hub restarts for
# SOAK_MINUTES, then a full consistency check; the report goes to $(BUILD_DIR)/soak/.
SOAK_MINUTES ?= 10
SOAK_ARGS ?=
soak: configure
	@cmake --build $(BUILD_DIR) --target carehub-soak carehub carehubctl -j$(JOBS)
	@nice -n 5 $(BUILD_DIR)/bin/carehub-soak --minutes $(SOAK_MINUTES) --out $(BUILD_DIR)/soak $(SOAK_ARGS)

clean:
	@rm -rf $(BUILD_DIR)

# libFuzzer fuzzers (tests/fuzz): each for FUZZ_SECONDS seconds in build-fuzz (clang, ASan+UBSan).
FUZZ_SECONDS ?= 300
fuzz: deps
	@FUZZ_SECONDS=$(FUZZ_SECONDS) ./scripts/fuzz.sh

# Automatic failover under chaos (issue 14, docs/replication.md): CHAOS_ROUNDS seeded rounds of
# kill -9 / SIGSTOP / standby killed mid-failover / etcd member killed, against a real 3-member
# etcd cluster and two hubs; ends with one JSON line of figures (lost, duplicates, failover ms).
# CAREHUB_SEED=N replays a run.
CHAOS_ROUNDS ?= 100
chaos: configure
	@cmake --build $(BUILD_DIR) --target carehub carehubctl carehub_failover_itest -j$(JOBS)
	@CAREHUB_FAILOVER_ROUNDS=$(CHAOS_ROUNDS) $(BUILD_DIR)/bin/carehub_failover_itest \
		--gtest_filter='AutoFailover.Chaos*'

# Two hubs and a 3-member etcd cluster on loopback; the primary is killed mid-stream (README).
demo-ha: configure
	@cmake --build $(BUILD_DIR) --target carehub carehubctl carehub-publish carehub-subscribe -j$(JOBS)
	@./scripts/demo-ha.sh $(BUILD_DIR)
