# blip2chat — see README.md. `make demo` runs the app, `make test` runs what CI runs.
SHELL := /bin/bash
GO ?= go
BIN := bin/blip2chat
LIB := lib
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
FUZZTIME ?= 5m

.PHONY: all build lib demo test vet cross fmt-check fuzz bench install clean

# The platforms the README promises besides this one; `make cross` vets and builds for each (no cgo:
# the llama.cpp library is loaded at run time).
CROSS := darwin/arm64 linux/arm64 windows/amd64

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
# golden tests run again on the other kernel paths: portable Go, and AVX2 without AVX-512. The packages
# with goroutines run again under the race detector (-short skips app's 500-turn soak, which the first
# line runs; the kernels' pool tests alone: the whole package takes ten minutes with -race).
test: lib fmt-check vet cross
	BLIP2CHAT_LLAMA_LIB=$(CURDIR)/$(LIB) BLIP2CHAT_REQUIRE_LLAMA=1 $(GO) test -count=1 ./...
	BLIP2CHAT_LLAMA_LIB=$(CURDIR)/$(LIB) BLIP2CHAT_REQUIRE_LLAMA=1 $(GO) test -race -short -count=1 ./app/... ./ui/...
	$(GO) test -race -short -count=1 -run 'Threads|Concurrent' ./engine/kernels/
	BLIP2CHAT_NOSIMD=1 BLIP2CHAT_LLAMA_LIB=$(CURDIR)/$(LIB) $(GO) test -count=1 ./engine/...
	BLIP2CHAT_NOAVX512=1 BLIP2CHAT_LLAMA_LIB=$(CURDIR)/$(LIB) $(GO) test -count=1 ./engine/...

# Runs every fuzz target for FUZZTIME each (not part of CI).
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

bench: build
	./$(BIN) bench --synthetic vision

# Installs the binary to ~/.local/bin and the library to the per-user data folder (POSIX install and cp,
# so that it works on macOS too).
install: build
	mkdir -p $(HOME)/.local/bin
	install -m 0755 $(BIN) $(HOME)/.local/bin/blip2chat
	mkdir -p "$${XDG_DATA_HOME:-$(HOME)/.local/share}/blip2chat/lib"
	cp -a $(LIB)/. "$${XDG_DATA_HOME:-$(HOME)/.local/share}/blip2chat/lib/"

clean:
	rm -rf bin
