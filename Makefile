# groupflow — everything a fresh machine needs is fetched or built here.
SHELL := /bin/bash
GO ?= go
BIN := $(CURDIR)/bin
export PATH := $(BIN):$(PATH)

NATS_SERVER_VERSION := v2.15.2
NATS_CLI_VERSION    := v0.5.0
MAILPIT_VERSION     := v1.33.1
STATICCHECK_VERSION := v0.8.2

NATS_SERVER := $(BIN)/nats-server
NATS_CLI    := $(BIN)/nats
MAILPIT     := $(BIN)/mailpit
STATICCHECK := $(BIN)/staticcheck

export NATS_SERVER_BIN := $(NATS_SERVER)
export MAILPIT_BIN := $(MAILPIT)

TEST_TIMEOUT ?= 20m
# An execution count, not a duration: go1.26's fuzz coordinator can fail a
# duration-bound run with a bare "context deadline exceeded" when the time
# runs out on a loaded machine (golang/go#75804, fixed in go1.27). 250,000
# executions take about 10 s on 2 cores.
FUZZTIME ?= 250000x

.PHONY: walkthrough screenshots all build run test test-short fuzz lint bench bench-quick chaos demo tools clean help chromium

all: build

help: ## this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

build: ## build groupflow, groupctl, groupmail, wixsim, groupbench and mailview into ./bin
	$(GO) build -o $(BIN)/ ./cmd/...

# make run ARGS="--log-level debug --wix-sim-members 5000" passes flags to groupflow.
ARGS ?=
run: ## run the processor: embedded NATS (./data) and the embedded Wix simulator (flags: ARGS="...")
	$(GO) run ./cmd/groupflow $(ARGS)

$(NATS_SERVER):
	GOBIN=$(BIN) $(GO) install github.com/nats-io/nats-server/v2@$(NATS_SERVER_VERSION)

$(NATS_CLI):
	GOBIN=$(BIN) $(GO) install github.com/nats-io/natscli/nats@$(NATS_CLI_VERSION)

$(MAILPIT):
	GOBIN=$(BIN) $(GO) install github.com/axllent/mailpit@$(MAILPIT_VERSION)

$(STATICCHECK):
	GOBIN=$(BIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

# The browser tests (console, demo inbox) drive Debian's chromium with chromedp.
# This target never fails the build: without root or apt-get the browser tests
# skip, naming the missing binary.
CHROMIUM_BIN ?= /usr/bin/chromium
chromium: ## install Debian's chromium for the browser tests (apt-get, as root; they skip without it)
	@if [ -x "$(CHROMIUM_BIN)" ] || command -v chromium >/dev/null 2>&1; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then \
		echo "chromium not installed (needs root and apt-get): browser tests will skip; install with: sudo apt-get install -y chromium"; exit 0; fi; \
	echo "installing chromium with apt-get (for the browser tests)"; \
	{ DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1 || \
	  { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1; }; } || \
		echo "apt-get install chromium failed: browser tests will skip; install with: apt-get install -y chromium"

walkthrough: ## run the README's local walkthrough, as written, on a fresh clone of HEAD (scripts/walkthrough.sh)
	./scripts/walkthrough.sh

screenshots: $(NATS_SERVER) $(MAILPIT) chromium ## refresh docs/screenshots (the README's) from the browser tests
	GROUPFLOW_WRITE_SCREENSHOTS=1 $(GO) test -count=1 -run 'InBrowser|TestEveryFires' ./internal/admin/ ./internal/mailview/ ./internal/schedule/

tools: $(NATS_SERVER) $(NATS_CLI) $(MAILPIT) ## install nats-server, the nats CLI and Mailpit (pinned) into ./bin

test: $(NATS_SERVER) $(MAILPIT) chromium ## all tests (browser tests need chromium: see make chromium) with the race detector, then a short fuzz of command decoding
	$(GO) mod download
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...
	$(MAKE) --no-print-directory fuzz

test-short: ## the fast unit tests only
	$(GO) test -short -count=1 ./...

fuzz: ## fuzz command decoding and validation for FUZZTIME (default 250000x: executions)
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./messages

bench: $(NATS_SERVER) ## the benchmark suite (< 10 min): Markdown table on stdout, bench/results.json
	$(GO) run ./cmd/groupbench
	$(GO) test -run '^$$' -bench 'SharedLimiter3Instances' -benchtime 1x ./internal/ratelimit
	$(GO) test -run '^$$' -bench 'LimiterUtilisation' -benchtime 3000x ./internal/wixcontract

bench-quick: ## the benchmark suite at small sizes (< 1 min)
	BENCH_QUICK=1 $(GO) run ./cmd/groupbench

chaos: $(NATS_SERVER) ## the fault suite: kill -9, Wix storms, broker restart, cluster node loss, poison
	$(GO) test -tags chaos -count=1 -timeout 30m -v -run . ./chaos/

# The demo's loopback ports: make demo NATS_PORT=14222 ADMIN_PORT=18080 ...
SMTP_PORT ?= 1025
MAILPIT_PORT ?= 8025
NATS_PORT ?= 4222
ADMIN_PORT ?= 8080
WIXSIM_PORT ?= 8090
GROUPMAIL_PORT ?= 8081
MAILVIEW_PORT ?= 8026
demo: $(MAILPIT) ## groupflow + groupmail + Mailpit + mailview on loopback; sends a campaign (ports: SMTP_PORT MAILPIT_PORT MAILVIEW_PORT NATS_PORT ADMIN_PORT WIXSIM_PORT GROUPMAIL_PORT)
	$(GO) build -o $(BIN)/ ./cmd/groupflow ./cmd/groupmail ./cmd/groupctl ./cmd/wixsim ./cmd/mailview
	SMTP_PORT=$(SMTP_PORT) MAILPIT_PORT=$(MAILPIT_PORT) MAILVIEW_PORT=$(MAILVIEW_PORT) NATS_PORT=$(NATS_PORT) ADMIN_PORT=$(ADMIN_PORT) \
	  WIXSIM_PORT=$(WIXSIM_PORT) GROUPMAIL_PORT=$(GROUPMAIL_PORT) ./deploy/demo.sh

# staticcheck runs with the chaos tag: those files only add to package chaos,
# so one pass sees every file (and what only the chaos suite uses is used).
lint: $(STATICCHECK) ## go vet, gofmt, staticcheck (pinned) and go.mod/go.sum drift (go mod tidy -diff)
	$(GO) vet ./...
	$(GO) vet -tags chaos ./chaos/
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(STATICCHECK) -tags chaos ./...
	@$(GO) mod tidy -diff || { echo "go.mod/go.sum drift: run go mod tidy"; exit 1; }

clean: ## remove ./bin and ./data
	rm -rf $(BIN) ./data
