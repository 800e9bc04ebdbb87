# batos — two commands on a fresh Debian machine: `make run` and `make test`.

GO       ?= go
export PATH := $(PATH):/usr/local/go/bin
BIN      := bin/batos
IMAGE    ?= live_image.db
FUZZTIME ?= 10s

# System packages the build and tests need; `make deps` installs the
# missing ones with apt-get. gcc and libc6-dev: cgo (-race and ZeroMQ);
# libzmq3-dev and pkg-config: the bridge; python3-zmq and python3-msgpack:
# the interop test's client, a real one that is not ours.
DEBS := gcc libc6-dev pkg-config libzmq3-dev python3-zmq python3-msgpack
# What make test needs besides: chromium, the headless browser the web
# UI's tests drive (internal/webui), postgresql, whose server the
# PostgreSQL store's tests run a throwaway cluster of (internal/store/pg),
# and python3-persistent, for the seed's own message send that bench vm
# -anchor measures beside batos's (its test runs it); make run and make
# build do not.
TEST_DEBS := chromium postgresql python3-persistent

# make install copies bin/batos to $(GOBIN) when set, else to
# $(PREFIX)/bin (PREFIX defaults to /usr/local; DESTDIR for packaging).
PREFIX   ?= /usr/local
BINDIR   ?= $(if $(GOBIN),$(GOBIN),$(PREFIX)/bin)

.PHONY: all deps deps-test build run install uninstall test check unit fuzz fuzz-catalog soak bench clean test-integration

all: build

deps:
	@missing=""; for p in $(DEBS); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $$missing; \
	fi
	@command -v $(GO) >/dev/null || { echo "Go is not installed (want Go 1.26 at /usr/local/go)"; exit 1; }

deps-test: deps
	@missing=""; for p in $(TEST_DEBS); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $$missing; \
	fi

build: deps
	$(GO) build -o $(BIN) ./cmd/batos

# Puts batos on PATH: bin/batos into $(BINDIR), with sudo when that
# directory is not writable (the default /usr/local/bin, as a user).
install: build
	@dir="$(DESTDIR)$(BINDIR)"; \
	SUDO=""; if ! mkdir -p "$$dir" 2>/dev/null || [ ! -w "$$dir" ]; then [ "$$(id -u)" = 0 ] || SUDO=sudo; fi; \
	$$SUDO mkdir -p "$$dir" && $$SUDO install -m 0755 $(BIN) "$$dir/batos" && echo "installed $$dir/batos"; \
	case ":$$PATH:" in *":$(BINDIR):"*) ;; *) echo "note: $(BINDIR) is not on PATH; add it to run batos by name";; esac

uninstall:
	@f="$(DESTDIR)$(BINDIR)/batos"; \
	if [ ! -e "$$f" ] && [ ! -L "$$f" ]; then echo "nothing to remove at $$f"; exit 0; fi; \
	SUDO=""; [ -w "$$(dirname "$$f")" ] || [ "$$(id -u)" = 0 ] || SUDO=sudo; $$SUDO rm -f "$$f" && echo "removed $$f"

# Starts batos on the default image (created on first run); Ctrl-C stops it.
run: build
	./$(BIN) -image $(IMAGE) run

test: deps deps-test check unit fuzz

check:
	@unformatted=$$(gofmt -l .); if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...

unit:
	$(GO) test -race -count=1 ./...

# Each fuzz target runs briefly; longer runs: make fuzz FUZZTIME=5m.
# scripts/fuzz passes a run that Go 1.26's fuzz coordinator ends with its
# own deadline error but no failing input (golang/go#75804).
fuzz:
	GO=$(GO) ./scripts/fuzz ./internal/image FuzzDecodeValue $(FUZZTIME)
	GO=$(GO) ./scripts/fuzz ./internal/image FuzzDecodeState $(FUZZTIME)
	GO=$(GO) ./scripts/fuzz ./internal/store/bolt FuzzDecodeRecord $(FUZZTIME)
	GO=$(GO) ./scripts/fuzz ./internal/store/bolt FuzzDecodeTxn $(FUZZTIME)
	GO=$(GO) ./scripts/fuzz ./internal/store/bolt FuzzDecodeGroup $(FUZZTIME)
	GO=$(GO) ./scripts/fuzz ./internal/zmqbridge FuzzDecodeRequest $(FUZZTIME)
	GO=$(GO) ./scripts/fuzz ./internal/gguf FuzzRead $(FUZZTIME)
	GO=$(GO) ./scripts/fuzz ./internal/llm/ollama FuzzReadChatStream $(FUZZTIME)
	GO=$(GO) ./scripts/fuzz ./internal/llm/openai FuzzEventReader $(FUZZTIME)
	GO=$(GO) ./scripts/fuzz ./internal/llm/openai FuzzParseError $(FUZZTIME)
	GO=$(GO) ./scripts/fuzz ./internal/protocol FuzzLearnAndCycleArgs $(FUZZTIME)
	GO=$(GO) ./scripts/fuzz ./internal/vm FuzzAudit $(FUZZTIME)
	GO=$(GO) ./scripts/fuzz ./internal/protocol FuzzCatalogArgs $(FUZZTIME)
	GO=$(GO) ./scripts/fuzz ./internal/catalog/vector FuzzLoad $(FUZZTIME)

# The catalog's other targets run in make soak only: FuzzParse's and the
# cache's runs stall for long stretches in Go 1.26's fuzz engine (0
# execs/s while it minimises an input; no input is slow on its own), too
# long for make test.
fuzz-catalog:
	GO=$(GO) ./scripts/fuzz ./internal/catalog FuzzParse $(FUZZTIME)
	GO=$(GO) ./scripts/fuzz ./internal/catalog/embed FuzzOpenCache $(FUZZTIME)
	GO=$(GO) ./scripts/fuzz ./internal/catalog/fulltext FuzzScan $(FUZZTIME)
	GO=$(GO) ./scripts/fuzz ./internal/catalog/fulltext FuzzFragment $(FUZZTIME)
	GO=$(GO) ./scripts/fuzz ./internal/catalog/vector FuzzOps $(FUZZTIME)

# Long runs, not part of make test: the store's damage test on many more
# damaged images (SOAKFLIPS), then every fuzz target for SOAKTIME each.
SOAKFLIPS ?= 100000
SOAKTIME  ?= 5m
soak: deps
	$(GO) test -count=1 -timeout=0 -run '^TestFlippedBytes$$' ./internal/store/bolt -args -flips=$(SOAKFLIPS)
	$(MAKE) fuzz fuzz-catalog FUZZTIME=$(SOAKTIME)

# Tests against a real Ollama (not run by make test): the client, the
# memory manager and whole cycles, one package at a time (-p 1: they share
# the server; a cycle on a CPU may take minutes).
#   make test-integration BATOS_TEST_OLLAMA=http://127.0.0.1:11434
INTEGRATION_PKGS = ./internal/llm/ollama ./internal/mind ./internal/catalog/library ./internal/uvm
test-integration:
	@test -n "$(BATOS_TEST_OLLAMA)" || { echo "set BATOS_TEST_OLLAMA to a running Ollama, e.g. http://127.0.0.1:11434"; exit 2; }
	BATOS_TEST_OLLAMA=$(BATOS_TEST_OLLAMA) $(GO) test -tags integration -count=1 -p 1 -timeout 30m -run Integration -v $(INTEGRATION_PKGS)

bench: build
	./$(BIN) bench store

clean:
	rm -rf bin
