# Makefile: convenience wrappers around CMake for fuse-jit. Each target works on its
# own on a fresh Debian 12 machine: it installs missing packages first
# (cmake/install-deps.sh), then configures and builds what it needs.
#
#   make run    build (Release) and run an example program, printing its exports
#   make test   build (Release) and run every test suite with ctest
#   make asan   build with AddressSanitizer + UBSan (Debug) and run the tests there
#   make clean  remove build/ and build-asan/
#
# The builds here treat warnings as errors (WERROR=ON, as CI); `make WERROR=OFF ...`
# or a plain `cmake` configure only warns.

CC_FOR_CMAKE ?= clang-19
WERROR       ?= ON
BUILD        ?= build
ASAN_BUILD   ?= build-asan
JOBS         ?= 2
EXAMPLE      ?= examples/matmul.fuse

.PHONY: all deps configure build run test asan clean

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

asan: deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_C_COMPILER=$(CC_FOR_CMAKE) -DCMAKE_BUILD_TYPE=Debug \
		-DFUSE_SANITIZE=ON -DFUSE_WERROR=$(WERROR)
	cmake --build $(ASAN_BUILD) -j$(JOBS)
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		ctest --test-dir $(ASAN_BUILD) --output-on-failure -j$(JOBS)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
