# Makefile: convenience wrappers around CMake for fuse-jit. Each target works on its
# own on a fresh Debian 12 machine: it installs missing packages first
# (cmake/install-deps.sh), then configures and builds what it needs.
#
#   make run    build (Release) and run an example program, printing its exports
#   make test   build (Release) and run every test suite with ctest
#   make asan   build with AddressSanitizer + UBSan (Debug) and run the tests there
#   make fuzz   build the libFuzzer targets of test/fuzz (build-fuzz/) and run each
#               for FUZZ_SECONDS (default 30) over its seed corpus; any finding fails
#   make tsan   build with ThreadSanitizer (build-tsan/) and run the threading suites
#   make install  build (Release), then cmake --install build under PREFIX (/usr/local):
#               the library, fuse-jit, fusejit.h and the fusejit Python module (sudo
#               when PREFIX is not writable)
#   make clean  remove build/, build-asan/, build-fuzz/ and build-tsan/
#
# The builds here treat warnings as errors (WERROR=ON, as CI); `make WERROR=OFF ...`
# or a plain `cmake` configure only warns.

CC_FOR_CMAKE ?= clang-19
WERROR       ?= ON
BUILD        ?= build
ASAN_BUILD   ?= build-asan
FUZZ_BUILD   ?= build-fuzz
TSAN_BUILD   ?= build-tsan
FUZZ_SECONDS ?= 30
ARCHER       ?= /usr/lib/llvm-19/lib/libarcher.so
FUZZ_TARGETS  = parse cache npy npz json jsonl facts text safetensors
# The suites that run threads: team kernels, several runners and threads on one
# context, interrupts from another thread, the cache shared between threads.
TSAN_SUITES   = test_api test_kernels test_modes test_cache test_jit test_interrupt
JOBS         ?= 2
EXAMPLE      ?= examples/matmul.fuse
PREFIX       ?= /usr/local

.PHONY: all deps configure build run test install asan fuzz tsan clean

all: build

deps:
	sh cmake/install-deps.sh

configure: deps
	cmake -S . -B $(BUILD) -DCMAKE_C_COMPILER=$(CC_FOR_CMAKE) -DCMAKE_BUILD_TYPE=Release \
		-DFUSE_WERROR=$(WERROR)

build: configure
	cmake --build $(BUILD) -j$(JOBS)

run: build
	$(BUILD)/fuse-jit run $(EXAMPLE)

test: build
	ctest --test-dir $(BUILD) --output-on-failure -j$(JOBS)

install: build
	@if mkdir -p "$(PREFIX)" 2>/dev/null && [ -w "$(PREFIX)" ]; then \
		cmake --install $(BUILD) --prefix "$(PREFIX)"; \
	else \
		sudo cmake --install $(BUILD) --prefix "$(PREFIX)"; \
	fi

asan: deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_C_COMPILER=$(CC_FOR_CMAKE) -DCMAKE_BUILD_TYPE=Debug \
		-DFUSE_SANITIZE=ON -DFUSE_WERROR=$(WERROR)
	cmake --build $(ASAN_BUILD) -j$(JOBS)
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		ctest --test-dir $(ASAN_BUILD) --output-on-failure -j$(JOBS)

# Each target starts from its committed corpus (test/fuzz/corpus/T, read only) and
# adds what it finds under $(FUZZ_BUILD)/corpus/T; a crash, leak, timeout or
# out-of-memory leaves its input in $(FUZZ_BUILD)/artifacts/ and fails.
fuzz: deps
	cmake -S . -B $(FUZZ_BUILD) -DCMAKE_C_COMPILER=$(CC_FOR_CMAKE) -DCMAKE_BUILD_TYPE=Release \
		-DFUSE_FUZZ=ON -DBUILD_TESTING=OFF -DFUSE_WERROR=$(WERROR)
	cmake --build $(FUZZ_BUILD) --target fuzz_targets -j$(JOBS)
	@mkdir -p $(FUZZ_BUILD)/artifacts
	@set -e; for t in $(FUZZ_TARGETS); do \
		mkdir -p $(FUZZ_BUILD)/corpus/$$t; \
		dict=""; if [ -f test/fuzz/$$t.dict ]; then dict="-dict=test/fuzz/$$t.dict"; fi; \
		echo "== fuzz_$$t: $(FUZZ_SECONDS) s"; \
		$(FUZZ_BUILD)/test/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -timeout=10 \
			-rss_limit_mb=2048 -print_final_stats=1 $$dict \
			-artifact_prefix=$(FUZZ_BUILD)/artifacts/$$t- \
			$(FUZZ_BUILD)/corpus/$$t test/fuzz/corpus/$$t 2>$(FUZZ_BUILD)/fuzz_$$t.log \
			|| { tail -n 60 $(FUZZ_BUILD)/fuzz_$$t.log; exit 1; }; \
		grep -E '^(stat::number_of_executed_units|Done)' $(FUZZ_BUILD)/fuzz_$$t.log || true; \
	done

# libomp is not instrumented: its tool libarcher tells TSan about OpenMP's
# synchronisation, and ignore_noninstrumented_modules drops reports inside it.
# Kernels compiled at run time are not instrumented either: TSan sees the
# runtime, the cache and the API around them. test_repl is left out: one of its
# tests sends SIGINT to any other thread of the REPL, which under TSan may be the
# sanitizer's own (it blocks signals).
tsan: deps
	cmake -S . -B $(TSAN_BUILD) -DCMAKE_C_COMPILER=$(CC_FOR_CMAKE) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		-DFUSE_TSAN=ON -DFUSE_WERROR=$(WERROR)
	cmake --build $(TSAN_BUILD) -j$(JOBS) --target fuse-jit fuse-bench $(TSAN_SUITES)
	OMP_TOOL_LIBRARIES=$(ARCHER) \
	TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 ignore_noninstrumented_modules=1" \
		ctest --test-dir $(TSAN_BUILD) --output-on-failure -j$(JOBS) \
		-R '^($(shell echo $(TSAN_SUITES) | tr ' ' '|'))$$'

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD) $(TSAN_BUILD)
