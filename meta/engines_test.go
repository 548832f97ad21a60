package meta

// The engine matrix: tests written once, run against every engine.
//
// The table is internal/enginetest's (shared with cryptostore's tests): a
// name and a url function that returns the URL of a fresh, empty store for
// one test, starting the engine's server the first time, once per test
// binary; TestMain stops the servers after every test has run.
//
// A test takes the matrix with forEachEngine(t, func(t *testing.T, db *DB))
// (one subtest per engine, named after it), or forEachEngineCore for the
// representative subset that runs on every engine in every run. Which
// engines a forEachEngine test runs on:
//
//	SEALFS_TEST_ENGINES unset    Badger (plain `make test`; core tests: all)
//	SEALFS_TEST_ENGINES=all      every engine (`make test-engines`)
//	SEALFS_TEST_ENGINES=a,b      those engines, for every test
//
// An engine whose server binary is missing skips its subtests with a loud
// message, or fails them when SEALFS_REQUIRE_ENGINES=1 (CI).

import (
	"context"
	"fmt"
	"github.com/sealfs/sealfs/internal/enginetest"
	"github.com/sealfs/sealfs/internal/lazyfs"
	"os"
	"strings"
	"sync"
	"testing"
)

// testEngine is one engine of the matrix (internal/enginetest's table).
type testEngine struct {
	name string
	// shared: several gateways may open one store (PostgreSQL, etcd).
	shared bool
	// url returns the URL of a fresh, empty store for t, or skips or
	// fails t when the engine cannot run here.
	url func(t testing.TB) string
}

// testEngines is the matrix, Badger first.
var testEngines = func() []*testEngine {
	var out []*testEngine
	for _, e := range enginetest.All {
		out = append(out, &testEngine{name: e.Name, shared: e.Shared, url: e.URL})
	}
	return out
}()

func TestMain(m *testing.M) {
	lazyfs.ChildMain() // the power-cut harness's child (powercut_test.go)
	code := m.Run()
	enginetest.Stop()
	os.Exit(code)
}

// engineSelected reports whether the full matrix runs engine name.
func engineSelected(name string) bool { return enginetest.Selected(name) }

// missingEngine skips t (or fails it when SEALFS_REQUIRE_ENGINES=1)
// because what the engine needs is not here.
func missingEngine(t testing.TB, format string, args ...any) {
	t.Helper()
	enginetest.Missing(t, format, args...)
}

// openEngineTest opens a fresh store of engine e for t, closed in
// t.Cleanup.
func openEngineTest(t *testing.T, e *testEngine) *DB {
	t.Helper()
	url := e.url(t)
	db, err := Open(url, Options{})
	if err != nil {
		t.Fatalf("open %s: %v", RedactURL(url), err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// forEachEngine runs fn as a subtest per selected engine (see the top of
// this file), each on a fresh store.
func forEachEngine(t *testing.T, fn func(t *testing.T, db *DB)) {
	t.Helper()
	for _, e := range testEngines {
		if !engineSelected(e.name) {
			continue
		}
		t.Run(e.name, func(t *testing.T) { fn(t, openEngineTest(t, e)) })
	}
}

// forEachEngineCore is forEachEngine for the representative subset: it
// runs on every engine whatever SEALFS_TEST_ENGINES says, except that a
// list there still narrows it.
func forEachEngineCore(t *testing.T, fn func(t *testing.T, db *DB)) {
	t.Helper()
	sel := os.Getenv("SEALFS_TEST_ENGINES")
	for _, e := range testEngines {
		if sel != "" && !engineSelected(e.name) {
			continue
		}
		t.Run(e.name, func(t *testing.T) { fn(t, openEngineTest(t, e)) })
	}
}

func TestRedactURL(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{in: "badger:///srv/meta", want: "badger:///srv/meta"},
		{in: "/srv/meta", want: "/srv/meta"},
		{in: "postgres://u@h:5432/db", want: "postgres://u@h:5432/db"},
		{in: "postgres://u:s3cret@h:5432/db?sslmode=disable", want: "postgres://u:xxxxx@h:5432/db?sslmode=disable"},
		{in: "postgres://u@h/db?password=s3cret&sslmode=disable", want: "postgres://u@h/db?password=xxxxx&sslmode=disable"},
		{in: "etcd://h1:2379,h2:2379/sealfs", want: "etcd://h1:2379,h2:2379/sealfs"},
	} {
		if got := RedactURL(c.in); got != c.want {
			t.Errorf("RedactURL(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestOpenUnknownEngine(t *testing.T) {
	_, err := Open("nosuch://x", Options{})
	if err == nil || !strings.Contains(err.Error(), "badger") {
		t.Fatalf("Open of an unknown scheme = %v, want an error listing the engines", err)
	}
}

// checkTwoGateways checks two handles on one shared store (two gateways):
// a commit on one is seen by the next read on the other, and
// read-modify-write transactions from both, racing, lose no update
// (conflicts are retried).
func checkTwoGateways(t *testing.T, dbs [2]*DB) {
	t.Helper()
	ctx := context.Background()
	update(t, dbs[0], func(tx *Txn) error { return tx.CreateBucket(&Bucket{Name: "ctr", Region: "0"}) })
	for i := range 20 {
		w, r := dbs[i%2], dbs[1-i%2]
		key := fmt.Sprintf("seen-%d", i)
		update(t, w, func(tx *Txn) error { return tx.PutObject(&Object{Bucket: "ctr", Key: key, ID: NewObjectID()}) })
		view(t, r, func(tx *Txn) error {
			if _, err := tx.GetObject("ctr", key); err != nil {
				t.Errorf("commit on gateway %d not seen by the next read on the other: %v", i%2, err)
			}
			return nil
		})
	}
	const each = 25
	var wg sync.WaitGroup
	for _, db := range dbs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				err := db.Update(ctx, func(tx *Txn) error {
					b, err := tx.GetBucket("ctr")
					if err != nil {
						return err
					}
					var n int
					fmt.Sscan(b.Region, &n)
					b.Region = fmt.Sprint(n + 1)
					return tx.PutBucket(b)
				})
				if err != nil {
					t.Errorf("increment: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for i, db := range dbs {
		view(t, db, func(tx *Txn) error {
			b, err := tx.GetBucket("ctr")
			if err == nil && b.Region != fmt.Sprint(2*each) {
				t.Errorf("gateway %d reads %s increments, want %d", i, b.Region, 2*each)
			}
			return err
		})
	}
}
