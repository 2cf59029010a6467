# Hookline. `make run` starts the pipeline; `make test` runs every test.
GO ?= go
BIN := bin

.PHONY: all build run demo test test-db-check fuzz vet fmt fmt-check bench bench-events clean docs docs-check scenarios soak

# A count, not a duration: with go1.26 a -fuzztime duration can end in a
# spurious "context deadline exceeded" (golang/go#75804). 100000 runs take ~10s.
FUZZTIME ?= 100000x

# Modules of their own that import Hookline as a library (each replaces it
# with this checkout): building and testing them is what catches a change
# that breaks the public API.
EXAMPLE_MODULES := examples/invoices

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/...

## run: start the receiver and the worker against a local Postgres (see README)
run: build
	./scripts/run.sh

## demo: send signed sample events (new, replayed, tampered) to `make run`, print balances
demo: build
	./scripts/demo.sh

## test: vet, format check, and every test against a real Postgres: TEST_DATABASE_URL, else the one
## on 127.0.0.1:5432, else the private cluster in .dev/pg, started (and then stopped) if need be
test: vet fmt-check
	./scripts/with-test-db.sh sh -c '$(GO) test -race -count=1 -timeout 10m ./... && \
		for m in $(EXAMPLE_MODULES); do (cd $$m && $(GO) test -race -count=1 ./...) || exit 1; done'

## test-db-check: check that make test starts, uses and stops a private cluster when 5432 is closed (CI runs it)
test-db-check:
	GO=$(GO) ./scripts/check-test-db.sh

## fuzz: run every fuzz target for FUZZTIME each (the seeds also run in `make test`)
fuzz:
	@set -e; for pkg in ./internal/verify ./internal/envelope; do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "fuzz $$pkg $$f ($(FUZZTIME))"; \
			$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

vet:
	$(GO) vet ./...
	@for m in $(EXAMPLE_MODULES); do (cd $$m && $(GO) vet ./...) || exit 1; done

fmt:
	gofmt -w .

fmt-check:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "not gofmt-ed:"; echo "$$out"; exit 1; fi

## docs: regenerate docs/CONFIGURATION.md from the configuration code (internal/configdoc)
docs:
	$(GO) generate ./internal/configdoc

## docs-check: fail if docs/CONFIGURATION.md differs from what `make docs` would write
docs-check:
	@tmp=$$(mktemp); trap 'rm -f "$$tmp"' EXIT; \
	$(GO) run ./internal/configdoc/cmd/configdoc -out "$$tmp" || exit 1; \
	if ! diff -u docs/CONFIGURATION.md "$$tmp"; then \
		echo "docs/CONFIGURATION.md is stale: run make docs and commit it"; exit 1; \
	fi

## scenarios: the fault, flood and hostile-input scenarios (short form, also in make test); reports in docs/reliability
scenarios:
	HOOKLINE_REPORT_DIR=$(CURDIR)/docs/reliability $(GO) test -count=1 -timeout 15m -v ./internal/scenarios/... ./internal/ledgertest

## soak: the long flood soak (SOAK, default 5m), then the drain of its backlog; report in docs/reliability
# Ingest outruns two workers about 4x at the receiver's maximum, so the drain
# after the load takes several times SOAK: hence the long timeout.
SOAK ?= 5m
soak:
	HOOKLINE_SOAK=$(SOAK) HOOKLINE_REPORT_DIR=$(CURDIR)/docs/reliability $(GO) test -count=1 -timeout 120m -v \
		-run '^TestFloodKeepsEveryAcknowledgedEventAndFlatMemory$$' ./internal/scenarios/flood

## bench: the pipeline benchmark (docs/BENCHMARKS.md) and Go micro-benchmarks
bench: build
	./$(BIN)/hookbench -out docs/bench
	$(GO) test -run '^$$' -bench . -benchmem ./...

## bench-events: hookctl events list and get at a million events and jobs (HOOKLINE_BENCH_EVENTS)
bench-events:
	$(GO) test -run '^$$' -bench BenchmarkEvents -benchmem -v ./internal/ops/

clean:
	rm -rf $(BIN)
