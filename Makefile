# m3vit: `make demo` and `make test` work on a fresh Debian 12 machine (they install what is missing).
BUILD   ?= build
JOBS    ?= 2
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=Release

.PHONY: all deps configure build test test-sanitize fuzz demo bench hw-report deb install clean

all: build

deps:
	bash scripts/install-deps.sh

configure: deps
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS)

build: configure
	cmake --build $(BUILD) -j$(JOBS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS)

# The torch-free targets with AddressSanitizer and UndefinedBehaviorSanitizer, and their tests
# (docs/TESTING.md "Sanitizers"). A report fails the test that made it.
SANITIZE_BUILD ?= build-sanitize
test-sanitize: deps
	cmake -S . -B $(SANITIZE_BUILD) -DCMAKE_BUILD_TYPE=Release -DM3VIT_SANITIZE=address,undefined
	cmake --build $(SANITIZE_BUILD) -j$(JOBS)
	cd $(SANITIZE_BUILD) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j$(JOBS)

# libFuzzer on every reader for FUZZ_SECONDS each (docs/TESTING.md "Fuzzing").
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
fuzz: deps
	FUZZ_SECONDS=$(FUZZ_SECONDS) JOBS=$(JOBS) bash scripts/fuzz.sh $(FUZZ_BUILD)

demo: build
	bash scripts/demo.sh $(BUILD)

bench: build
	bash scripts/bench.sh $(BUILD)

hw-report: build
	bash scripts/hw-report.sh $(BUILD)

# Debian packages of the runtime library, its development files and the command line (docs/LIBRARY.md).
deb: build
	cd $(BUILD) && cpack -G DEB

# Everything into PREFIX (default /usr/local); components: docs/LIBRARY.md.
PREFIX ?= /usr/local
install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

clean:
	rm -rf $(BUILD)
