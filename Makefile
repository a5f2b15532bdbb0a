# blip2chat — see README.md. `make demo` runs the app, `make test` runs what CI runs.
SHELL := /bin/bash
GO ?= go
BIN := bin/blip2chat
LIB := lib
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
FUZZTIME ?= 5m

.PHONY: all build lib demo test test-arm64 vet fmt-check fuzz bench install clean

all: build

# The llama.cpp shared library (prebuilt, from the npm registry), verified and unpacked into lib/.
# The script is idempotent: a no-op when lib/ already holds the verified copy.
lib:
	@bash scripts/fetch-llama-lib.sh $(LIB)

# The binary finds the library in lib/ beside itself (bin/lib -> ../lib).
build: lib
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/blip2chat
	@ln -sfn ../$(LIB) bin/lib

demo: build
	./$(BIN) demo

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(find . -name '*.go' -not -path './.cache/*')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# Everything CI runs. BLIP2CHAT_REQUIRE_LLAMA turns "library missing" skips into failures. The engine's
# golden tests run again on the other kernel paths: portable Go, AVX2 without AVX-512, AVX2 without
# VNNI; then the arm64 kernels under emulation.
test: lib fmt-check vet
	BLIP2CHAT_LLAMA_LIB=$(CURDIR)/$(LIB) BLIP2CHAT_REQUIRE_LLAMA=1 $(GO) test -count=1 ./...
	BLIP2CHAT_NOSIMD=1 BLIP2CHAT_LLAMA_LIB=$(CURDIR)/$(LIB) $(GO) test -count=1 ./engine/...
	BLIP2CHAT_NOAVX512=1 BLIP2CHAT_LLAMA_LIB=$(CURDIR)/$(LIB) $(GO) test -count=1 ./engine/...
	BLIP2CHAT_NOVNNI=1 $(GO) test -count=1 ./engine/vision/
	$(MAKE) test-arm64

# The arm64 NEON kernels, run by Debian's qemu-user-static (linux/arm64 test binaries): the kernel
# tests on three CPUs -- max (SMMLA and SDOT), neoverse-n1 (SDOT, no I8MM), cortex-a53 (plain
# NEON) -- each of which also runs every lower kernel, then the vision golden tests with the NEON
# kernels on the default (SMMLA) path; -short trims the largest shapes. QEMU_LD_PREFIX
# (libc6-arm64-cross) serves binaries that link libc dynamically.
QEMU_ARM64 ?= qemu-aarch64-static
ARM64_ENV := GOARCH=arm64 QEMU_LD_PREFIX=/usr/aarch64-linux-gnu
test-arm64:
	@command -v $(QEMU_ARM64) >/dev/null || { echo "test-arm64: $(QEMU_ARM64) missing (apt-get install qemu-user-static libc6-arm64-cross)"; exit 1; }
	GOARCH=arm64 $(GO) vet ./engine/kernels/
	@for cpu in max neoverse-n1 cortex-a53; do \
	  echo "== arm64 kernels, QEMU_CPU=$$cpu"; \
	  QEMU_CPU=$$cpu $(ARM64_ENV) $(GO) test -count=1 -short -exec $(QEMU_ARM64) ./engine/kernels/ || exit 1; \
	done
	QEMU_CPU=max $(ARM64_ENV) $(GO) test -count=1 -run 'TestGolden/simd=true' -exec $(QEMU_ARM64) ./engine/vision/

# Runs every fuzz target for FUZZTIME each (not part of CI).
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

bench: build
	./$(BIN) bench --synthetic vision

# Installs the binary to ~/.local/bin and the library to the per-user data folder.
install: build
	install -D -m 0755 $(BIN) $(HOME)/.local/bin/blip2chat
	mkdir -p "$${XDG_DATA_HOME:-$(HOME)/.local/share}/blip2chat/lib"
	cp -a $(LIB)/. "$${XDG_DATA_HOME:-$(HOME)/.local/share}/blip2chat/lib/"

clean:
	rm -rf bin
