# sealfs — the two commands a newcomer needs are `make run` and `make test`.
GO        ?= go
BIN       := bin/sealfs
GOBIN     := $(shell $(GO) env GOPATH)/bin
STATICCHECK := $(GOBIN)/staticcheck
# The whole test run stays well under CI's limit; mount tests use their own
# per-test deadlines on top of this.
TEST_TIMEOUT ?= 25m

.PHONY: all build run test test-engines stress crash lint bench bench-before bench-fs bench-grow bench-writers bench-s3 bench-engines weed profile-fs profile-s3 floors fuzz clean

all: build

# `sealfs version` names the commit (GOFLAGS may turn VCS stamping off).
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

# Says what it builds and shows each package compiled, counted against the
# packages the binary needs (one line redrawn on a terminal, a line each
# otherwise); a build from the cache prints nothing more.
build:
	@if [ -x $(BIN) ]; then echo "building $(BIN)"; \
	else echo "building $(BIN): the first build compiles sealfs and the ~600 packages it needs, a few minutes on 2 cores (later builds take seconds)"; fi
	@total=$$($(GO) list -deps ./cmd/sealfs 2>/dev/null | wc -l); tty=0; [ -t 1 ] && tty=1; st=$$(mktemp); \
	{ $(GO) build -v -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/sealfs 2>&1; echo $$? >$$st; } | \
	awk -v total=$$total -v tty=$$tty '/^[A-Za-z0-9._~\/-]+$$/ { n++; if (tty) printf "\r\033[K  [%d/%d] %s", n, total, $$0; else printf "  [%d/%d] %s\n", n, total, $$0; fflush(); next } { if (tty && n) printf "\n"; print; fflush() } END { if (tty && n) printf "\n" }'; \
	rc=$$(cat $$st); rm -f $$st; exit $$rc

# Runs sealfs on its embedded defaults: the store mounted at ./mnt (every
# bucket a directory), data in ./sealfs-data, S3 over HTTPS on
# 127.0.0.1:9443. As root it first installs what the mount needs (fuse3) and
# what reads its metadata (attr: getfattr, setfattr) when they are missing.
run: build
	@if [ "$$(id -u)" = 0 ]; then \
	  pkgs=""; \
	  command -v fusermount3 >/dev/null 2>&1 || pkgs="$$pkgs fuse3"; \
	  command -v getfattr >/dev/null 2>&1 || pkgs="$$pkgs attr"; \
	  if [ -n "$$pkgs" ]; then echo "installing$$pkgs"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq$$pkgs; fi; \
	fi
	./$(BIN) mount ./mnt --metrics "$${SEALFS_METRICS-127.0.0.1:9464}"

# The metadata engine matrix: every meta test against Badger, PostgreSQL
# and etcd, and every cryptostore test on each engine (SEALFS_TEST_META
# picks the engine of the package's stores). Then the gateway tests: two
# stores over one shared metadata (cryptostore), replication leases, and two
# daemons with mounts over PostgreSQL and etcd (integration). The tests
# start their own servers on loopback (Debian's postgresql and etcd-server
# packages); SEALFS_REQUIRE_ENGINES=1 makes a missing one a failure.
define engine-tests
SEALFS_TEST_ENGINES=all $(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./meta/ ./kms/ ./internal/pgtest/ ./internal/etcdtest/
for e in postgres etcd; do \
  SEALFS_TEST_META=$$e SEALFS_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./cryptostore/ || exit 1; \
done
SEALFS_TEST_ENGINES=all $(GO) test -count=1 -timeout $(TEST_TIMEOUT) -run 'Shared|Lease|TwoGateways' ./cryptostore/ ./replicate/ ./integration/
endef

# Every test; the tests that run a sealfs daemon (integration, and
# cryptostore's S3 blob store backend) use the binary just built. Then the
# whole engine matrix above (~4 minutes), so that no engine drifts unseen.
test: build
	SEALFS_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...
	$(engine-tests)

# The engine matrix alone.
test-engines: build
	$(engine-tests)

# The integration package STRESS_RUNS times in a row (3 unless given), to
# catch flaky tests: every run goes to the end; the summary says which runs
# failed, and the make fails if any did. Then sealfs's fsx and fsstress
# (internal/fsx) on a nearly full data disk for FSX_DURATION (make test runs
# them for 10s on a disk with room and 15s on a nearly full one), with their
# counts. Full logs in a temporary directory.
STRESS_RUNS ?= 3
FSX_DURATION ?= 5m
stress: build
	@out=$$(mktemp -d /tmp/sealfs-stress.XXXXXX); failed=""; \
	for i in $$(seq $(STRESS_RUNS)); do \
	  echo "== integration run $$i of $(STRESS_RUNS) (log: $$out/run$$i.log)"; \
	  SEALFS_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./integration/ >$$out/run$$i.log 2>&1 || failed="$$failed $$i"; \
	  grep -E '^(--- FAIL|FAIL|ok|panic:)' $$out/run$$i.log; \
	done; \
	echo "== fsx and fsstress on a nearly full data disk for $(FSX_DURATION) (log: $$out/fsx.log)"; \
	SEALFS_FSX_DURATION=$(FSX_DURATION) SEALFS_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -timeout $(TEST_TIMEOUT) -run '^TestMountFsxDiskFull$$' -v ./integration/ >$$out/fsx.log 2>&1 || failed="$$failed fsx"; \
	grep -E 'seed|fsx: |fsstress: |ballast:|after the restart|^(--- |FAIL|ok|panic:)' $$out/fsx.log | grep -v '"level"'; \
	if [ -n "$$failed" ]; then echo "stress: run(s)$$failed failed; logs in $$out"; exit 1; fi; \
	echo "stress: every run passed ($(STRESS_RUNS) in a row)"

# Power cuts, many of them (make test runs a short version): the daemon runs
# on a data directory served by lazyfs (internal/lazyfs), which loses
# whatever was not synced when it is cut; rounds of mixed S3 and mount
# writes are cut at a random point, the daemon restarted on what survived,
# and every key checked. Prints rounds, writes, acknowledged, lost, torn and
# dangling. With Badger the metadata goes through the cuts too; with
# PostgreSQL and etcd (CRASH_SHARED_ROUNDS each) it lives on a server the
# cut does not reach, as another machine's would. Then the sequence the
# rounds once caught losing a write, cut on purpose (an S3 delete of a key
# the mount had just removed). Needs root and /dev/fuse.
# CRASH_ROUNDS=200 for a longer run; SEALFS_POWERCUT_SEED=N repeats one;
# SEALFS_POWERCUT_ENGINES=badger runs one engine.
CRASH_ROUNDS ?= 60
CRASH_SHARED_ROUNDS ?= 20
crash: build
	$(GO) test -count=1 -timeout 10m -run 'Crash|Sync|Pending|ValueNotBehind' ./cryptostore/ ./meta/
	$(GO) test -count=1 -timeout 10m ./internal/lazyfs/
	@out=$$(mktemp); echo "power cut: $(CRASH_ROUNDS) rounds on Badger, $(CRASH_SHARED_ROUNDS) on PostgreSQL and etcd (full log in $$out)"; \
	SEALFS_BIN=$(CURDIR)/$(BIN) SEALFS_POWERCUT_ROUNDS=$(CRASH_ROUNDS) SEALFS_POWERCUT_SHARED_ROUNDS=$(CRASH_SHARED_ROUNDS) $(GO) test -count=1 -timeout 60m -run '^TestPowerCut(DeleteAfterMountRemove)?$$' -v ./integration/ >$$out 2>&1; rc=$$?; \
	grep -E '^power cut|round [0-9]+:|^ *--- |^(ok|FAIL)' $$out; exit $$rc

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@$(GO) mod tidy -diff >/dev/null || { echo "go.mod is not tidy: run go mod tidy"; $(GO) mod tidy -diff; exit 1; }
	@test -x $(STATICCHECK) || $(GO) install honnef.co/go/tools/cmd/staticcheck@latest
	$(STATICCHECK) ./...

# Every benchmark, then one table of them all: the Go benchmarks (store,
# metadata, KMS, S3 protocol; cryptostore's MB/s also as a ratio to raw
# AES-256-GCM over the same bytes), the S3 listener against its ceiling and
# MinIO's figures (bench-s3), and, as root, the mount against gocryptfs
# (bench-fs); with SeaweedFS beside both where make weed has built it.
# Compare ratios within one run: the machines are noisy. Takes ~15 minutes
# (bench-s3 and bench-fs each took ~5.5 minutes with SeaweedFS here).
bench: build
	@set -e; out=$${BENCH_OUT:-$$(mktemp -d /tmp/sealfs-bench.XXXXXX)}; \
	$(GO) test -run '^$$' -bench '64MiB' -benchtime 5x -count 1 ./cryptostore/ | tee $$out/go.txt; \
	$(GO) test -run '^$$' -bench '4KiB' -benchtime 3000x -count 1 ./cryptostore/ | tee -a $$out/go.txt; \
	$(GO) test -run '^$$' -bench 'Rewrap|EncryptExisting' -benchtime 2x -count 1 ./cryptostore/ | tee -a $$out/go.txt; \
	$(GO) test -run '^$$' -bench . -count 1 ./meta/ ./kms/ ./iam/ ./s3/... | tee -a $$out/go.txt; \
	$(GO) run ./integration/s3bench -sealfs ./$(BIN) -summary $$out/summary.tsv $(BENCHS3_FLAGS); \
	if [ "$$(id -u)" = 0 ]; then $(MAKE) --no-print-directory bench-fs BENCHFS_FLAGS="-summary $$out/summary.tsv $(BENCHFS_FLAGS)"; \
	else echo "bench-fs needs root (it mounts and drops caches): skipped"; fi; \
	echo; echo "== all benchmarks (raw output in $$out)"; \
	$(GO) run ./integration/benchtable -go $$out/go.txt -summary $$out/summary.tsv

# The S3 listener against MinIO's figures (/work/shared/perf-notes.md):
# aws-sdk-go-v2 over HTTPS PUTs and GETs 1 MiB, 64 MiB and 4 KiB objects and
# lists 20k keys, on an encrypting bucket, a plain bucket, an in-process
# ceiling server and (where make weed has built it) SeaweedFS's S3 gateway
# with an SSE-KMS bucket, interleaved, medians of 3; prints each figure, its
# ratio to the ceiling, to MinIO's and to SeaweedFS's, and the daemon's peak
# RSS. Takes ~6 minutes with SeaweedFS; BENCHS3_FLAGS="-weed off" leaves it
# out.
# BENCHS3_FLAGS adds flags, e.g. BENCHS3_FLAGS="-only 'GET' -d 3s".
BENCHS3_FLAGS ?=
bench-s3: build
	$(GO) run ./integration/s3bench -sealfs ./$(BIN) $(BENCHS3_FLAGS)

# SeaweedFS, the peer closest to sealfs's shape, for bench-s3 and bench-fs
# (internal/seaweed; they leave it out when there is no weed command).
# `go install` refuses its module (its go.mod has a replace directive), so
# this builds the same pinned version from the module proxy's copy, as its
# own main module, into bin/weed: ~8 minutes the first time on 2 cores (it
# downloads SeaweedFS's dependencies). Not part of make test or .ci/run.
WEED_VERSION := v0.0.0-20261109003541-7506e5f91cd6
weed:
	@dir=$$(cd / && $(GO) mod download -json github.com/seaweedfs/seaweedfs@$(WEED_VERSION) | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$$/\1/p'); \
	if [ -z "$$dir" ]; then echo "weed: the module proxy did not serve github.com/seaweedfs/seaweedfs@$(WEED_VERSION)"; exit 1; fi; \
	echo "building bin/weed from $$dir"; \
	mkdir -p bin && cd "$$dir" && GOFLAGS=-mod=mod $(GO) build -o $(CURDIR)/bin/weed ./weed

# gocryptfs and fusermount3, installed if missing (the mount benchmarks).
define fuse-bench-tools
@pkgs=""; \
command -v gocryptfs >/dev/null 2>&1 || pkgs="$$pkgs gocryptfs"; \
command -v fusermount3 >/dev/null 2>&1 || pkgs="$$pkgs fuse3"; \
if [ -n "$$pkgs" ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq$$pkgs; fi
endef

# The mount against a plain directory on the same disk, a gocryptfs mount
# and (where make weed has built it; BENCHFS_FLAGS="-weed off" leaves it
# out) a SeaweedFS mount whose filer encrypts every chunk: cp of a large
# file in and out, untar of 10k small files, ls -lR.
# Prints a table of medians and ratios. Needs root (it drops the page cache
# and mounts); installs gocryptfs and fuse3 if missing. BENCHFS_FLAGS adds
# flags, e.g. BENCHFS_FLAGS="-runs 5 -dir /srv/scratch".
BENCHFS_FLAGS ?=
bench-fs: build
	$(fuse-bench-tools)
	$(GO) run ./integration/benchfs -bin ./$(BIN) $(BENCHFS_FLAGS)

# The performance issue's before/after: bench-s3's rows and bench-fs's rows
# with this build and BEFORE interleaved in one run each (s3bench -before,
# benchfs -old; SeaweedFS left out). BEFORE is a commit, by default the first
# release, which the issue's figures were measured on; it is built in a
# temporary worktree, removed afterwards. The mount rows need root. Takes
# ~10 minutes. E.g. make bench-before BEFORE=ce68ff3.
BEFORE ?= 441cbc2
bench-before: build
	@set -e; dir=$$(mktemp -d /tmp/sealfs-before.XXXXXX); \
	trap 'git worktree remove --force "$$dir/src" >/dev/null 2>&1 || true; rm -rf "$$dir"' EXIT; \
	git worktree add --detach "$$dir/src" $(BEFORE) >/dev/null; \
	echo "building $(BEFORE) into $$dir/sealfs"; \
	(cd "$$dir/src" && $(GO) build -o "$$dir/sealfs" ./cmd/sealfs); \
	$(MAKE) --no-print-directory bench-s3 BENCHS3_FLAGS="-before $$dir/sealfs -weed off $(BENCHS3_FLAGS)"; \
	if [ "$$(id -u)" = 0 ]; then $(MAKE) --no-print-directory bench-fs BENCHFS_FLAGS="-old $$dir/sealfs -weed off $(BENCHFS_FLAGS)"; \
	else echo "bench-before: the mount rows need root (they mount and drop caches): skipped"; fi

# The untar row as the store fills: make bench-grow PASSES=8 untars the tree
# PASSES times into one gocryptfs mount and one sealfs bucket, nothing
# removed, and prints each pass (times, the daemon's CPU and resident size).
PASSES ?= 6
bench-grow: build
	$(fuse-bench-tools)
	$(GO) run ./integration/benchfs -bin ./$(BIN) -passes $(PASSES) $(BENCHFS_FLAGS)

# The memory the mount holds for files being written: per scenario
# (FILESxMIB), on a fresh daemon, that many files opened, written, kept open
# across a sync (the kernel sends their pages while they stay open), then
# closed and read back; prints the daemon's peak resident size (VmHWM) and
# the time. BENCHFS_FLAGS="-old OLD_BINARY" adds an older build. Needs root.
WRITERS ?= 48x6,400x0.9
bench-writers: build
	$(GO) run ./integration/benchfs -bin ./$(BIN) -writers $(WRITERS) $(BENCHFS_FLAGS)

# Where one bench-fs row's time goes: runs ROW (cp-in, cp-out, untar or ls)
# on the sealfs mount alone while the daemon profiles itself (--pprof),
# writes ROW.cpu.pprof, ROW.block.pprof and ROW.allocs.pprof (what was
# allocated in the window) to PROFILE_DIR, and prints the
# FUSE operations served with the time the daemon's handlers took, and the
# profiles' top entries. Then it runs the row once more with the kernel's
# fuse tracepoints on, and prints each operation's round trip as the kernel
# sees it beside the handler's share (what the rest costs: waking the
# daemon, go-fuse, scheduling). Needs root.
# E.g. make profile-fs ROW=untar; then go tool pprof -http : bin/sealfs
# profiles/untar.cpu.pprof.
ROW ?= untar
PROFILE_DIR ?= profiles
profile-fs: build
	$(GO) run ./integration/benchfs -bin ./$(BIN) -profile $(ROW) -profile-dir $(PROFILE_DIR) -fuse-trace $(BENCHFS_FLAGS)

# The S3 rows' profiles: make profile-s3 S3ROW="PUT 1 MiB x1" runs the
# s3bench workloads whose names contain S3ROW once ("" runs them all), with
# the daemon profiling itself (--metrics, --pprof) while the encrypting
# bucket is measured; writes <row>.cpu.pprof, <row>.block.pprof (only
# the request-serving goroutines are shown from it) and <row>.allocs.pprof
# (bytes allocated in the window) to PROFILE_DIR and prints their top
# entries.
S3ROW ?= PUT 1 MiB x1
profile-s3: build
	$(GO) run ./integration/s3bench -sealfs ./$(BIN) -rounds 1 -d 3s -only "$(S3ROW)" -profile $(PROFILE_DIR) $(BENCHS3_FLAGS)

# What this machine charges for the steps the rows are made of, with no
# sealfs code involved: a thread woken over a pipe and answering (each FUSE
# request is such a round trip), the first write to a page (anonymous, and
# a file's mapping), and 1 MiB written and made durable (a new file, into
# fallocated space, over written blocks), p50 and p90 of each. Writes under
# FLOORS_DIR (the disk to measure) at most 40 MiB at a time.
FLOORS_DIR ?= /var/tmp
floors:
	$(GO) run ./integration/floors -dir $(FLOORS_DIR)

# The metadata engines and blob stores side by side, in one run: Badger,
# PostgreSQL and a 3-member etcd cluster, each with file:// and s3:// blobs
# (a second sealfs is the S3 backend), one gateway and (shared engines) two.
# Prints 4 KiB PUT ops/s, 1 MiB PUT MB/s, LIST pages/s and the untar time of
# 2000 small files through gateway 1's mount, each with its ratio to
# Badger+file (measured first and again last, to show the drift); then
# where the cost goes: the engine's write transactions per PUT and per file,
# and the mount's FUSE operations during the untar. Needs root; starts its
# own servers on loopback. Takes ~10 minutes.
# BENCHENGINES_FLAGS adds flags, e.g. BENCHENGINES_FLAGS="-only etcd -d 5s".
BENCHENGINES_FLAGS ?=
bench-engines: build
	$(GO) run ./integration/enginebench -sealfs ./$(BIN) $(BENCHENGINES_FLAGS)

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
