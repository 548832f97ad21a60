// Package enginetest is the table of metadata engines the tests of meta and
// cryptostore run against: Badger (embedded), PostgreSQL and a 3-member
// etcd cluster, the last two real servers started on loopback the first
// time a test asks for one (internal/pgtest, internal/etcdtest) and stopped
// by Stop, which the test binary's TestMain calls after m.Run.
//
// Which engines run is chosen by SEALFS_TEST_ENGINES:
//
//	unset    Badger only (plain `make test`)
//	all      every engine (`make test-engines`)
//	a,b      those engines
//
// An engine whose server is not installed skips its tests with a loud
// message, or fails them when SEALFS_REQUIRE_ENGINES=1 (CI).
//
// WithBadger opens a closed data directory's Badger database directly, for
// tests that change what is stored as someone who can write the disk would.
package enginetest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/sealfs/sealfs/internal/etcdtest"
	"github.com/sealfs/sealfs/internal/pgtest"
)

// Engine is one metadata engine of the table.
type Engine struct {
	Name string
	// URL returns the --meta URL of a fresh, empty store for t, starting
	// the engine's server on first use, or skips or fails t when the
	// engine cannot run here.
	URL func(t testing.TB) string
	// Shared reports whether several processes can open one store (every
	// engine but Badger).
	Shared bool
}

// All is the table, Badger first.
var All = []*Engine{
	{Name: "badger", URL: func(t testing.TB) string { return "badger://" + t.TempDir() }},
	{Name: "postgres", URL: postgresURL, Shared: true},
	{Name: "etcd", URL: etcdURL, Shared: true},
}

// ByName returns the engine called name, or nil.
func ByName(name string) *Engine {
	for _, e := range All {
		if e.Name == name {
			return e
		}
	}
	return nil
}

// Selected reports whether SEALFS_TEST_ENGINES selects engine name.
func Selected(name string) bool {
	sel := os.Getenv("SEALFS_TEST_ENGINES")
	switch sel {
	case "":
		return name == "badger"
	case "all":
		return true
	}
	return slices.Contains(strings.Split(sel, ","), name)
}

// Missing skips t (or fails it when SEALFS_REQUIRE_ENGINES=1) because
// what an engine needs is not here.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("SEALFS_REQUIRE_ENGINES") == "1" {
		t.Fatalf("SEALFS_REQUIRE_ENGINES=1: "+format, args...)
	}
	msg := fmt.Sprintf("SKIPPING ENGINE TEST: "+format+" (set SEALFS_REQUIRE_ENGINES=1 to make this a failure)", args...)
	fmt.Fprintln(os.Stderr, msg)
	t.Skip(msg)
}

var pg struct {
	once sync.Once
	srv  *pgtest.Server
	err  error
}

// Postgres returns the test binary's PostgreSQL server, starting it on
// first use.
func Postgres(t testing.TB) *pgtest.Server {
	t.Helper()
	pg.once.Do(func() { pg.srv, pg.err = pgtest.Start() })
	if pg.err != nil {
		if errors.Is(pg.err, pgtest.ErrNotInstalled) {
			Missing(t, "postgres: %v", pg.err)
		}
		t.Fatalf("postgres: %v", pg.err)
	}
	return pg.srv
}

func postgresURL(t testing.TB) string {
	url, err := Postgres(t).NewSchema(context.Background())
	if err != nil {
		t.Fatalf("postgres: new schema: %v", err)
	}
	return url
}

// Etcd returns the test binary's 3-member etcd cluster, starting it on
// first use.
func Etcd(t testing.TB) *etcdtest.Cluster {
	t.Helper()
	if !etcdtest.Available() {
		Missing(t, "etcd: %s not installed (Debian: apt-get install etcd-server etcd-client)", etcdtest.Bin)
	}
	return etcdtest.Shared(t)
}

// etcdStores numbers the stores made on the shared cluster: each has a
// key prefix of its own, so each starts empty.
var etcdStores atomic.Int64

func etcdURL(t testing.TB) string {
	return Etcd(t).URL(fmt.Sprintf("sealfs-test/%d-%d", os.Getpid(), etcdStores.Add(1)))
}

// Stop stops the servers started so far.
func Stop() {
	if pg.srv != nil {
		pg.srv.Stop()
	}
	etcdtest.StopShared()
}

// WithBadger runs fn on the Badger database of the data directory dir (its
// meta directory), opened directly, as someone who can write the data disk
// would; the store using it must be closed. It closes the database after.
func WithBadger(t testing.TB, dir string, fn func(db *badger.DB)) {
	t.Helper()
	db, err := badger.Open(badger.DefaultOptions(filepath.Join(dir, "meta")).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}()
	fn(db)
}
