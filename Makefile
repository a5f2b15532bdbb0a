# blip2chat — see README.md. `make demo` runs the app, `make test` runs what CI runs.
SHELL := /bin/bash
GO ?= go
BIN := bin/blip2chat
LIB := lib
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
FUZZTIME ?= 5m

.PHONY: all build lib demo test test-arm64 vet cross fmt-check fuzz bench install clean dist test-windows-compile test-linux-arm64-binary FORCE

# The platforms the README promises besides this one; `make cross` vets and builds for each (no cgo:
# the llama.cpp library is loaded at run time).
CROSS := darwin/arm64 linux/arm64 windows/amd64
# The llama.cpp build `make lib` fetches: cpu, cuda or vulkan (macOS: metal, the default there), for this
# machine or another LLAMA_PLATFORM (linux-x64, linux-arm64, mac-arm64, win-x64), e.g.
# `make lib LLAMA_PLATFORM=linux-arm64 LIB=lib-linux-arm64`.
LLAMA_VARIANT ?=
LLAMA_PLATFORM ?=
# make test also checks the CUDA build's fallback to the CPU (a 143 MB download, cached in .cache/npm) on
# Linux x86-64; LLAMA_TEST_CUDA=0 skips it.
LLAMA_TEST_CUDA ?= 1
HOST := $(shell uname -s)/$(shell uname -m)
ifeq ($(LLAMA_TEST_CUDA)$(HOST),1Linux/x86_64)
CUDA_TEST_LIB := lib-linux-x64-cuda
endif
# The binaries `make dist` cross-compiles (no cgo: purego loads llama.cpp on every system).
DIST := dist/blip2chat-linux-amd64 dist/blip2chat-linux-arm64 dist/blip2chat-darwin-arm64 dist/blip2chat-windows-amd64.exe

all: build

# The llama.cpp shared library (prebuilt, from the npm registry), verified and unpacked into lib/.
# The script is idempotent: a no-op when lib/ already holds the verified copy (it repairs a damaged one).
lib:
	@LLAMA_PLATFORM=$(LLAMA_PLATFORM) LLAMA_VARIANT=$(LLAMA_VARIANT) bash scripts/fetch-llama-lib.sh $(LIB)

# Another platform's or build's library for tests: lib-linux-arm64, lib-linux-x64-cuda, ...
lib-%: FORCE
	@bash scripts/fetch-llama-lib.sh --platform $* $@

# The binary finds the library in lib/ beside itself (bin/lib -> ../lib).
build: lib
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/blip2chat
	@ln -sfn ../$(LIB) bin/lib

demo: build
	./$(BIN) demo

vet:
	$(GO) vet ./...

cross:
	@for t in $(CROSS); do \
	  echo "== $$t"; \
	  GOOS=$${t%/*} GOARCH=$${t#*/} $(GO) vet ./... && \
	  GOOS=$${t%/*} GOARCH=$${t#*/} $(GO) build -o /dev/null ./cmd/blip2chat || exit 1; \
	done

fmt-check:
	@out=$$(gofmt -l $$(find . -name '*.go' -not -path './.cache/*')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# Everything CI runs. BLIP2CHAT_REQUIRE_LLAMA turns "library missing" skips into failures. The engine's
# golden tests run again on the other kernel paths: portable Go, AVX2 without AVX-512, AVX2 without VNNI
# (the vision goldens), and the arm64 NEON kernels under qemu (test-arm64). The packages
# with goroutines run again under the race detector (-short skips app's 500-turn soak, which the first
# line runs; the kernels' pool tests alone: the whole package takes ten minutes with -race).
# Then: the library search's tests compiled for Windows, and the linux/arm64 binary under qemu.
test: lib $(CUDA_TEST_LIB) fmt-check vet cross
	BLIP2CHAT_LLAMA_LIB=$(CURDIR)/$(LIB) BLIP2CHAT_REQUIRE_LLAMA=1 BLIP2CHAT_LLAMA_LIB_CUDA=$(if $(CUDA_TEST_LIB),$(CURDIR)/$(CUDA_TEST_LIB)) $(GO) test -count=1 ./...
	BLIP2CHAT_LLAMA_LIB=$(CURDIR)/$(LIB) BLIP2CHAT_REQUIRE_LLAMA=1 $(GO) test -race -short -count=1 ./app/... ./ui/...
	$(GO) test -race -short -count=1 -run 'Threads|Concurrent' ./engine/kernels/
	BLIP2CHAT_NOSIMD=1 BLIP2CHAT_LLAMA_LIB=$(CURDIR)/$(LIB) $(GO) test -count=1 ./engine/...
	BLIP2CHAT_NOAVX512=1 BLIP2CHAT_LLAMA_LIB=$(CURDIR)/$(LIB) $(GO) test -count=1 ./engine/...
	BLIP2CHAT_NOVNNI=1 $(GO) test -count=1 ./engine/vision/
	@$(MAKE) -s test-arm64 test-windows-compile test-linux-arm64-binary

# The arm64 NEON kernels, run by Debian's qemu-user-static (linux/arm64 test binaries): the kernel
# tests on three CPUs -- max (SMMLA and SDOT), neoverse-n1 (SDOT, no I8MM), cortex-a53 (plain
# NEON) -- each of which also runs every lower kernel, then the vision golden tests with the NEON
# kernels on the default (SMMLA) path; -short trims the largest shapes. QEMU_LD_PREFIX
# (libc6-arm64-cross) serves binaries that link libc dynamically. Without qemu it says so and passes,
# unless BLIP2CHAT_REQUIRE_QEMU=1 (CI).
QEMU_ARM64 ?= qemu-aarch64-static
ARM64_ENV := GOARCH=arm64 QEMU_LD_PREFIX=/usr/aarch64-linux-gnu
test-arm64:
	@if ! command -v $(QEMU_ARM64) >/dev/null; then \
	  msg="test-arm64: $(QEMU_ARM64) missing (apt-get install qemu-user-static libc6-arm64-cross)"; \
	  if [ -n "$$BLIP2CHAT_REQUIRE_QEMU" ]; then echo "$$msg" >&2; exit 1; fi; \
	  echo "$$msg: skipped"; exit 0; \
	fi; \
	set -e; \
	GOARCH=arm64 $(GO) vet ./engine/kernels/; \
	for cpu in max neoverse-n1 cortex-a53; do \
	  echo "== arm64 kernels, QEMU_CPU=$$cpu"; \
	  QEMU_CPU=$$cpu $(ARM64_ENV) $(GO) test -count=1 -short -exec $(QEMU_ARM64) ./engine/kernels/; \
	done; \
	echo "== arm64 vision goldens, QEMU_CPU=max"; \
	QEMU_CPU=max $(ARM64_ENV) $(GO) test -count=1 -run '^(TestGolden|TestRetrievalGolden)$$' -exec $(QEMU_ARM64) ./engine/vision/

# The library search and loading (capi) and its file names (libfiles) as Windows test binaries: they must
# compile (they run on Windows, and under wine: see README).
test-windows-compile:
	@mkdir -p .cache/windows-tests
	GOOS=windows GOARCH=amd64 CGO_ENABLED=0 $(GO) vet ./engine/llamacpp/...
	GOOS=windows GOARCH=amd64 CGO_ENABLED=0 $(GO) test -c -o .cache/windows-tests/capi.test.exe ./engine/llamacpp/capi
	GOOS=windows GOARCH=amd64 CGO_ENABLED=0 $(GO) test -c -o .cache/windows-tests/libfiles.test.exe ./engine/llamacpp/internal/libfiles

# dist/blip2chat-linux-arm64 under qemu: doctor and ask on a golden model with the linux-arm64 library.
test-linux-arm64-binary: dist/blip2chat-linux-arm64 lib-linux-arm64 build
	@bash scripts/test-arm64-binary.sh dist/blip2chat-linux-arm64 lib-linux-arm64 $(BIN) $(LIB)

# Cross-compiles every platform's binary into dist/. Each needs its system's llama.cpp library beside it in
# lib/, or installed (make lib, make install on that machine).
dist: $(DIST)

dist/blip2chat-%: FORCE
	CGO_ENABLED=0 GOOS=$(word 1,$(subst -, ,$(basename $*))) GOARCH=$(word 2,$(subst -, ,$(basename $*))) \
	  $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $@ ./cmd/blip2chat

# Runs every fuzz target for FUZZTIME each (not part of CI).
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

bench: build
	./$(BIN) bench --synthetic vision

# Installs the binary to ~/.local/bin and the library (the same build as `make lib`) to the per-user data
# folder the binary searches: $XDG_DATA_HOME/blip2chat/lib (~/.local/share/...), on macOS
# ~/Library/Application Support/blip2chat/lib, on Windows (Git Bash) %LOCALAPPDATA%\blip2chat\lib. The
# fetch script replaces that folder whole, with its stamp, from the verified download. POSIX install, so
# that it works on macOS too.
install: build
	mkdir -p $(HOME)/.local/bin
	install -m 0755 $(BIN) $(HOME)/.local/bin/blip2chat
	@case "$$(uname -s)" in \
	  Darwin) dir="$(HOME)/Library/Application Support/blip2chat/lib" ;; \
	  MINGW* | MSYS* | CYGWIN*) dir="$${LOCALAPPDATA:?}/blip2chat/lib" ;; \
	  *) dir="$${XDG_DATA_HOME:-$(HOME)/.local/share}/blip2chat/lib" ;; \
	esac; \
	LLAMA_PLATFORM=$(LLAMA_PLATFORM) LLAMA_VARIANT=$(LLAMA_VARIANT) bash scripts/fetch-llama-lib.sh "$$dir"

clean:
	rm -rf bin dist
