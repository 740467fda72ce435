# carehub: the two commands a new user needs are `make demo` and `make test`.
# Each installs missing Debian packages, configures and builds as needed.

BUILD_DIR ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=RelWithDebInfo

.PHONY: all deps configure build demo test bench clean

all: build

deps:
	@./scripts/install-deps.sh

configure: deps
	@cmake -S . -B $(BUILD_DIR) $(CMAKE_FLAGS) >/dev/null

build: configure
	@cmake --build $(BUILD_DIR) -j$(JOBS)

demo: build
	@./scripts/demo.sh $(BUILD_DIR)

test: build
	@cd $(BUILD_DIR) && ctest --output-on-failure -j$(JOBS) --timeout 900

bench: build
	@$(BUILD_DIR)/bin/carehub-bench $(BENCH_ARGS)

clean:
	@rm -rf $(BUILD_DIR)
