# sealfs — the two commands a newcomer needs are `make run` and `make test`.
GO        ?= go
BIN       := bin/sealfs
GOBIN     := $(shell $(GO) env GOPATH)/bin
STATICCHECK := $(GOBIN)/staticcheck
# The whole test run stays well under CI's limit; mount tests use their own
# per-test deadlines on top of this.
TEST_TIMEOUT ?= 25m

.PHONY: all build run test lint bench fuzz clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/sealfs

# Runs sealfs on its embedded defaults: data in ./sealfs-data, S3 over HTTPS
# on 127.0.0.1:9443.
run: build
	./$(BIN) serve

test: build
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@test -x $(STATICCHECK) || $(GO) install honnef.co/go/tools/cmd/staticcheck@latest
	$(STATICCHECK) ./...

# Benchmarks: each prints its figures; compare ratios within one run (the
# machines are noisy).
bench:
	$(GO) test -run '^$$' -bench . -benchtime 3x -count 1 ./cryptostore/ ./meta/

# A short fuzzing pass over every fuzz target.
FUZZTIME ?= 10s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$t"; $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

clean:
	rm -rf bin
