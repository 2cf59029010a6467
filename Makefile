# Hookline. `make run` starts the pipeline; `make test` runs every test.
GO ?= go
BIN := bin

.PHONY: all build run demo test vet fmt fmt-check bench clean

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/...

## run: start the receiver and the worker against a local Postgres (see README)
run: build
	./scripts/run.sh

## demo: send signed sample events (new, replayed, tampered) to `make run`, print balances
demo: build
	./scripts/demo.sh

## test: vet, format check, and every test against a real Postgres
test: vet fmt-check
	$(GO) test -race -count=1 -timeout 10m ./...

vet:
	$(GO) vet ./...

fmt:
	gofmt -w .

fmt-check:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "not gofmt-ed:"; echo "$$out"; exit 1; fi

## bench: the pipeline benchmark (docs/BENCHMARKS.md) and Go micro-benchmarks
bench: build
	./$(BIN)/hookbench -out docs/bench
	$(GO) test -run '^$$' -bench . -benchmem ./...

clean:
	rm -rf $(BIN)
