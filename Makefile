# m3vit: `make demo` and `make test` work on a fresh Debian 12 machine (they install what is missing).
BUILD   ?= build
JOBS    ?= 2
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=Release

.PHONY: all deps configure build test demo bench hw-report deb install clean

all: build

deps:
	bash scripts/install-deps.sh

configure: deps
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS)

build: configure
	cmake --build $(BUILD) -j$(JOBS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS)

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
