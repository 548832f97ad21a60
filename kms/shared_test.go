package kms

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sealfs/sealfs/internal/etcdtest"
	"github.com/sealfs/sealfs/internal/pgtest"
	"github.com/sealfs/sealfs/meta"
)

// Tests of a keyring shared by several gateways through the metadata
// engine. Each runs on every engine selected (forEachSharedEngine): on
// etcd and PostgreSQL each gateway has a connection of its own to one store,
// as gateways on separate machines would; on Badger (embedded, one process)
// the gateways share one *meta.DB.

// sharedEngine is an engine the shared-keyring tests run on.
type sharedEngine struct {
	name string
	url  func(t testing.TB) string // a fresh, empty store
}

var (
	pgServer struct {
		once sync.Once
		srv  *pgtest.Server
		err  error
	}
	etcdStores atomic.Int64
)

var sharedEngines = []sharedEngine{
	{"badger", func(t testing.TB) string { return "badger://" + t.TempDir() }},
	{"etcd", func(t testing.TB) string {
		return etcdtest.Shared(t).URL(fmt.Sprintf("sealfs-kms-test/%d", etcdStores.Add(1)))
	}},
	{"postgres", func(t testing.TB) string {
		pgServer.once.Do(func() { pgServer.srv, pgServer.err = pgtest.Start() })
		if errors.Is(pgServer.err, pgtest.ErrNotInstalled) {
			msg := fmt.Sprintf("SKIPPING %s: %v; SEALFS_REQUIRE_ENGINES=1 makes this a failure", t.Name(), pgServer.err)
			if os.Getenv("SEALFS_REQUIRE_ENGINES") == "1" {
				t.Fatal(msg)
			}
			fmt.Fprintln(os.Stderr, msg)
			t.Skip(msg)
		}
		if pgServer.err != nil {
			t.Fatalf("postgres: %v", pgServer.err)
		}
		url, err := pgServer.srv.NewSchema(context.Background())
		if err != nil {
			t.Fatalf("postgres: new schema: %v", err)
		}
		return url
	}},
}

func TestMain(m *testing.M) {
	code := m.Run()
	etcdtest.StopShared()
	if pgServer.srv != nil {
		pgServer.srv.Stop()
	}
	os.Exit(code)
}

// engineSelected says whether SEALFS_TEST_ENGINES (as in meta's engine
// matrix: unset means Badger only, "all" every engine, else a list) selects
// the engine.
func engineSelected(name string) bool {
	switch sel := os.Getenv("SEALFS_TEST_ENGINES"); sel {
	case "":
		return name == "badger"
	case "all":
		return true
	default:
		return slices.Contains(strings.Split(sel, ","), name)
	}
}

// forEachSharedEngine runs fn as a subtest per selected engine, on a fresh
// store. open returns a handle on that store for one more gateway.
func forEachSharedEngine(t *testing.T, fn func(t *testing.T, open func() *meta.DB)) {
	for _, e := range sharedEngines {
		if !engineSelected(e.name) {
			continue
		}
		t.Run(e.name, func(t *testing.T) {
			url := e.url(t)
			var first *meta.DB
			fn(t, func() *meta.DB {
				if first != nil && e.name == "badger" {
					return first
				}
				db, err := meta.Open(url, meta.Options{})
				if err != nil {
					t.Fatalf("meta.Open(%s): %v", meta.RedactURL(url), err)
				}
				t.Cleanup(func() { db.Close() })
				if first == nil {
					first = db
				}
				return db
			})
		})
	}
}

// openGateway opens a Local over the shared keyring in db.
func openGateway(t testing.TB, db *meta.DB, root []byte, opts LocalOptions) *Local {
	t.Helper()
	opts.Store = MetaKeyring(db)
	return openTest(t, "", root, opts)
}

// storedKeyring returns the two records of the shared keyring.
func storedKeyring(t testing.TB, db *meta.DB) (keyring []byte, gen string) {
	t.Helper()
	err := db.View(context.Background(), func(tx *meta.Txn) error {
		var err error
		if keyring, err = tx.GetConfig(keyringRecord); err != nil {
			return err
		}
		g, err := tx.GetConfig(generationRecord)
		gen = string(g)
		return err
	})
	if err != nil {
		t.Fatalf("reading the stored keyring: %v", err)
	}
	return keyring, gen
}

func putStoredKeyring(t testing.TB, db *meta.DB, keyring []byte, gen string) {
	t.Helper()
	err := db.Update(context.Background(), func(tx *meta.Txn) error {
		if err := tx.PutConfig(keyringRecord, keyring); err != nil {
			return err
		}
		return tx.PutConfig(generationRecord, []byte(gen))
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestSharedKeyringConcurrentChangesLoseNothing(t *testing.T) {
	forEachSharedEngine(t, testSharedKeyringConcurrentChangesLoseNothing)
}

func testSharedKeyringConcurrentChangesLoseNothing(t *testing.T, open func() *meta.DB) {
	db := open()
	root := randomRoot(t)
	gws := []*Local{openGateway(t, db, root, LocalOptions{}), openGateway(t, open(), root, LocalOptions{})}
	ctx := context.Background()
	rotated := newKey(t, gws[0])

	const workers, rounds = 4, 8 // per gateway
	var (
		mu      sync.Mutex
		created []string
		rotates atomic.Int64
		wg      sync.WaitGroup
		errs    = make(chan error, 2*workers*rounds*2)
	)
	for _, k := range gws {
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for r := 0; r < rounds; r++ {
					md, err := k.CreateKey(ctx, &CreateKeyRequest{Description: fmt.Sprintf("w%d r%d", w, r)})
					if err != nil {
						errs <- fmt.Errorf("CreateKey: %w", err)
						return
					}
					mu.Lock()
					created = append(created, md.KeyID)
					mu.Unlock()
					if _, err := k.RotateKey(ctx, &KeyRequest{KeyID: rotated}); err != nil {
						errs <- fmt.Errorf("RotateKey: %w", err)
						return
					}
					rotates.Add(1)
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	want := uint32(1 + rotates.Load())
	for i, k := range gws {
		keys, err := k.ListKeys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		have := make(map[string]*KeyMetadata)
		for _, md := range keys {
			have[md.KeyID] = md
		}
		for _, id := range created {
			if have[id] == nil {
				t.Errorf("gateway %d: key %s created during the race is lost", i, id)
			}
		}
		if len(keys) != len(created)+1 {
			t.Errorf("gateway %d lists %d keys, want %d", i, len(keys), len(created)+1)
		}
		if v := have[rotated].CurrentVersion; v != want {
			t.Errorf("gateway %d: rotated key at version %d, want %d (rotations lost)", i, v, want)
		}
	}
	// Every version of the rotated key wraps on one gateway and unwraps
	// on the other.
	dek := generate(t, gws[1], rotated, objectContext("b", "o"))
	if dek.Version != want {
		t.Fatalf("new data key wrapped by version %d, want %d", dek.Version, want)
	}
	mustDecrypt(t, gws[0], rotated, dek, objectContext("b", "o"))
	_, gen := storedKeyring(t, db)
	t.Logf("%d creates and %d rotations from 2 gateways; keyring at generation %s", len(created), rotates.Load(), gen)
}

func TestSharedKeyringChangesSeenByTheOtherGateway(t *testing.T) {
	forEachSharedEngine(t, testSharedKeyringChangesSeenByTheOtherGateway)
}

func testSharedKeyringChangesSeenByTheOtherGateway(t *testing.T, open func() *meta.DB) {
	db := open()
	root := randomRoot(t)
	// A long refresh interval: what is checked here is the re-read before
	// a failure, not the periodic one.
	opts := LocalOptions{RefreshInterval: time.Hour, MaxStale: time.Hour}
	a, b := openGateway(t, db, root, opts), openGateway(t, open(), root, opts)
	c := objectContext("photos", "cat.jpg")

	// A key created on A is usable on B at once.
	id := newKey(t, a)
	dek := generate(t, b, id, c)
	mustDecrypt(t, a, id, dek, c)
	mustDecrypt(t, b, id, dek, c)

	// A data key wrapped by a version rotated in on A unwraps on B.
	if _, err := a.RotateKey(context.Background(), &KeyRequest{KeyID: id}); err != nil {
		t.Fatal(err)
	}
	dek2 := generate(t, a, id, c)
	if dek2.Version != 2 {
		t.Fatalf("version %d, want 2", dek2.Version)
	}
	mustDecrypt(t, b, id, dek2, c)

	// Re-enabling on A is seen by B's next call: B re-reads before it
	// fails. (A's copy still says Enabled: EnableKey must not take that
	// for a no-op.)
	if err := b.DisableKey(context.Background(), &KeyRequest{KeyID: id}); err != nil {
		t.Fatal(err)
	}
	if err := a.EnableKey(context.Background(), &KeyRequest{KeyID: id}); err != nil {
		t.Fatal(err)
	}
	mustDecrypt(t, b, id, dek, c)

	// DescribeKey and ListKeys on B show A's changes at once.
	if _, err := a.ScheduleKeyDeletion(context.Background(), &ScheduleDeletionRequest{KeyID: id, PendingDays: 7}); err != nil {
		t.Fatal(err)
	}
	if md := describe(t, b, id); md.State != KeyPendingDeletion {
		t.Fatalf("B describes the key as %s, want %s", md.State, KeyPendingDeletion)
	}
	if err := b.CancelKeyDeletion(context.Background(), &KeyRequest{KeyID: id}); err != nil {
		t.Fatal(err)
	}
	if md := describe(t, a, id); md.State != KeyDisabled {
		t.Fatalf("A describes the key as %s, want %s", md.State, KeyDisabled)
	}
	// A change decided on a stale copy is decided again on the fresh one:
	// EnableKey on A of a key B disabled is not a no-op.
	if err := a.EnableKey(context.Background(), &KeyRequest{KeyID: id}); err != nil {
		t.Fatal(err)
	}
	if err := b.DisableKey(context.Background(), &KeyRequest{KeyID: id}); err != nil {
		t.Fatal(err)
	}
	if err := a.EnableKey(context.Background(), &KeyRequest{KeyID: id}); err != nil {
		t.Fatal(err)
	}
	if md := describe(t, b, id); md.State != KeyEnabled {
		t.Fatalf("after enable on A, B describes the key as %s", md.State)
	}
	// An unknown key id is still unknown after the re-read.
	if _, err := b.GenerateDataKey(context.Background(), &GenerateDataKeyRequest{KeyID: "00000000-0000-4000-8000-000000000000"}); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("unknown key: %v, want ErrKeyNotFound", err)
	}
}

// TestSharedKeyringDisableBound measures how long a key disabled on one
// gateway keeps working on another that uses it all the time from its
// cache, with the default refresh interval: it must stop within
// DefaultRefreshInterval plus a read, and start again as quickly once
// enabled.
func TestSharedKeyringDisableBound(t *testing.T) {
	forEachSharedEngine(t, testSharedKeyringDisableBound)
}

func testSharedKeyringDisableBound(t *testing.T, open func() *meta.DB) {
	db := open()
	root := randomRoot(t)
	a, b := openGateway(t, db, root, LocalOptions{}), openGateway(t, open(), root, LocalOptions{})
	id := newKey(t, a)
	c := objectContext("b", "o")
	dek := generate(t, a, id, c)
	mustDecrypt(t, b, id, dek, c) // now in B's cache
	// The bound is the refresh interval plus one read; the slack is for a
	// loaded test machine.
	const bound = DefaultRefreshInterval + time.Second

	until := func(ok func(error) bool) time.Duration {
		start := time.Now()
		for {
			_, err := decrypt(b, id, dek, c)
			if ok(err) {
				return time.Since(start)
			}
			if time.Since(start) > 3*bound {
				t.Fatalf("still %v after %v", err, time.Since(start))
			}
			time.Sleep(time.Millisecond)
		}
	}
	if err := a.DisableKey(context.Background(), &KeyRequest{KeyID: id}); err != nil {
		t.Fatal(err)
	}
	off := until(func(err error) bool { return errors.Is(err, ErrKeyDisabled) })
	if err := a.EnableKey(context.Background(), &KeyRequest{KeyID: id}); err != nil {
		t.Fatal(err)
	}
	on := until(func(err error) bool { return err == nil })
	t.Logf("disable on A stopped B's cached data key after %v; enable restored it after %v (bound %v)", off, on, bound)
	if off > bound {
		t.Errorf("a key disabled on A worked on B for %v, over the bound %v", off, bound)
	}
	if b.cache.len() != 0 && b.unwraps.Load() < 2 {
		t.Errorf("B served the re-enabled key from a cache entry kept across the disable")
	}
}

// failingStore makes a KeyringStore unreachable on demand.
type failingStore struct {
	KeyringStore
	down atomic.Bool
}

var errDown = errors.New("metadata engine unreachable")

func (s *failingStore) Generation(ctx context.Context) (uint64, error) {
	if s.down.Load() {
		return 0, errDown
	}
	return s.KeyringStore.Generation(ctx)
}

func (s *failingStore) Load(ctx context.Context) ([]byte, uint64, error) {
	if s.down.Load() {
		return nil, 0, errDown
	}
	return s.KeyringStore.Load(ctx)
}

func TestSharedKeyringFailsClosedWhenStale(t *testing.T) {
	forEachSharedEngine(t, testSharedKeyringFailsClosedWhenStale)
}

func testSharedKeyringFailsClosedWhenStale(t *testing.T, open func() *meta.DB) {
	db := open()
	root := randomRoot(t)
	a := openGateway(t, db, root, LocalOptions{})
	fs := &failingStore{KeyringStore: MetaKeyring(open())}
	const maxStale = 300 * time.Millisecond
	b := openTest(t, "", root, LocalOptions{Store: fs, RefreshInterval: 50 * time.Millisecond, MaxStale: maxStale})
	id := newKey(t, a)
	c := objectContext("b", "o")
	dek := generate(t, a, id, c)
	mustDecrypt(t, b, id, dek, c)

	fs.down.Store(true)
	start := time.Now()
	var err error
	for time.Since(start) < 5*maxStale {
		if _, err = decrypt(b, id, dek, c); err != nil {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !errors.Is(err, ErrKeyringUnavailable) || !errors.Is(err, errDown) {
		t.Fatalf("Decrypt on a gateway that cannot read the keyring: %v, want ErrKeyringUnavailable", err)
	}
	if d := time.Since(start); d < maxStale-100*time.Millisecond || d > maxStale+time.Second {
		t.Errorf("keys stopped working %v after the engine went away, want about MaxStale (%v)", d, maxStale)
	}
	fs.down.Store(false)
	mustDecrypt(t, b, id, dek, c)
}

func TestSharedKeyringWrongRootKey(t *testing.T) {
	forEachSharedEngine(t, testSharedKeyringWrongRootKey)
}

func testSharedKeyringWrongRootKey(t *testing.T, open func() *meta.DB) {
	db := open()
	a := openGateway(t, db, randomRoot(t), LocalOptions{})
	id := newKey(t, a)
	before, gen := storedKeyring(t, db)

	_, err := OpenLocal("", randomRoot(t), LocalOptions{Store: MetaKeyring(open())})
	if !errors.Is(err, ErrRootKeyMismatch) {
		t.Fatalf("OpenLocal with another root key: %v, want ErrRootKeyMismatch", err)
	}
	if !strings.Contains(err.Error(), keyringRecord) {
		t.Errorf("error %q does not say which keyring", err)
	}
	after, gen2 := storedKeyring(t, db)
	if !bytes.Equal(before, after) || gen != gen2 {
		t.Fatal("a gateway with the wrong root key changed the shared keyring")
	}
	generate(t, a, id, nil)
}

func TestSharedKeyringTamperingDetected(t *testing.T) {
	forEachSharedEngine(t, testSharedKeyringTamperingDetected)
}

func testSharedKeyringTamperingDetected(t *testing.T, open func() *meta.DB) {
	db := open()
	root := randomRoot(t)
	opts := LocalOptions{RefreshInterval: time.Hour, MaxStale: 200 * time.Millisecond}
	a := openGateway(t, db, root, opts)
	id := newKey(t, a)
	c := objectContext("b", "o")
	dek := generate(t, a, id, c)
	if err := a.DisableKey(context.Background(), &KeyRequest{KeyID: id}); err != nil {
		t.Fatal(err)
	}
	orig, gen := storedKeyring(t, db)

	// Someone who can write the metadata but lacks the root key re-enables
	// the key and moves the generation on.
	forged := bytes.Replace(orig, []byte(`"state":"Disabled"`), []byte(`"state":"Enabled"`), 1)
	if bytes.Equal(forged, orig) {
		t.Fatal("test bug: no state to change")
	}
	g, _ := strconv.ParseUint(gen, 10, 64)
	putStoredKeyring(t, db, forged, strconv.FormatUint(g+1, 10))

	if _, err := OpenLocal("", root, LocalOptions{Store: MetaKeyring(db)}); !errors.Is(err, errKeyringIntegrity) {
		t.Fatalf("OpenLocal of a tampered shared keyring: %v, want an integrity error", err)
	}
	// The running gateway refuses the forged keyring: the key stays
	// disabled, and once its copy is stale it stops using keys at all.
	if _, err := decrypt(a, id, dek, c); !errors.Is(err, ErrKeyDisabled) || !errors.Is(err, errKeyringIntegrity) {
		t.Fatalf("Decrypt after tampering: %v, want ErrKeyDisabled and the integrity error", err)
	}
	time.Sleep(300 * time.Millisecond)
	other := newKeyNoFail(a)
	if other == nil || !errors.Is(other, errKeyringIntegrity) {
		t.Fatalf("CreateKey over a tampered keyring: %v, want the integrity error", other)
	}
	if _, err := a.ListKeys(context.Background()); !errors.Is(err, ErrKeyringUnavailable) {
		t.Fatalf("ListKeys over a tampered keyring: %v, want ErrKeyringUnavailable", err)
	}
	// Nothing overwrote the evidence.
	if now, _ := storedKeyring(t, db); !bytes.Equal(now, forged) {
		t.Fatal("the tampered keyring was overwritten")
	}

	// A body and a generation record that disagree are refused too.
	putStoredKeyring(t, db, orig, strconv.FormatUint(g+5, 10))
	if _, err := OpenLocal("", root, LocalOptions{Store: MetaKeyring(db)}); !errors.Is(err, errKeyringIntegrity) {
		t.Fatalf("OpenLocal with a generation record the body contradicts: %v, want an integrity error", err)
	}
}

func newKeyNoFail(k *Local) error {
	_, err := k.CreateKey(context.Background(), &CreateKeyRequest{})
	return err
}

func TestSharedKeyringRollbackRefused(t *testing.T) {
	forEachSharedEngine(t, testSharedKeyringRollbackRefused)
}

func testSharedKeyringRollbackRefused(t *testing.T, open func() *meta.DB) {
	db := open()
	root := randomRoot(t)
	a := openGateway(t, db, root, LocalOptions{RefreshInterval: time.Hour, MaxStale: time.Hour})
	id := newKey(t, a)
	old, oldGen := storedKeyring(t, db)
	if err := a.DisableKey(context.Background(), &KeyRequest{KeyID: id}); err != nil {
		t.Fatal(err)
	}
	// Put back the copy in which the key was enabled, generation and all.
	putStoredKeyring(t, db, old, oldGen)
	_, err := a.GenerateDataKey(context.Background(), &GenerateDataKeyRequest{KeyID: id})
	if !errors.Is(err, ErrKeyDisabled) || !errors.Is(err, errKeyringIntegrity) || !strings.Contains(err.Error(), "rolled back") {
		t.Fatalf("GenerateDataKey after a rollback: %v, want ErrKeyDisabled and a rollback error", err)
	}
}

func TestSharedKeyringImportsKeyringFile(t *testing.T) {
	forEachSharedEngine(t, testSharedKeyringImportsKeyringFile)
}

func testSharedKeyringImportsKeyringFile(t *testing.T, open func() *meta.DB) {
	root := randomRoot(t)
	dir := t.TempDir()
	local := openTest(t, dir, root, LocalOptions{})
	id := newKey(t, local)
	c := objectContext("b", "o")
	dek := generate(t, local, id, c)
	if err := local.Close(); err != nil {
		t.Fatal(err)
	}
	fileBytes, err := os.ReadFile(filepath.Join(dir, keyringName))
	if err != nil {
		t.Fatal(err)
	}

	db := open()
	// Another root key: refused, nothing written, the file left alone.
	if _, err := OpenLocal(dir, randomRoot(t), LocalOptions{Store: MetaKeyring(db)}); !errors.Is(err, ErrRootKeyMismatch) {
		t.Fatalf("import under another root key: %v, want ErrRootKeyMismatch", err)
	}
	if gen, err := MetaKeyring(db).Generation(context.Background()); err != nil || gen != 0 {
		t.Fatalf("after a refused import the shared keyring is at generation %d (%v), want none", gen, err)
	}
	// A running single-gateway sealfs holding the file: refused.
	holder := openTest(t, dir, root, LocalOptions{})
	if _, err := OpenLocal(dir, root, LocalOptions{Store: MetaKeyring(db)}); err == nil || !strings.Contains(err.Error(), "already open") {
		t.Fatalf("import of a keyring file in use: %v, want a refusal", err)
	}
	holder.Close()

	var logs syncBuffer
	a := openTest(t, dir, root, LocalOptions{Store: MetaKeyring(db), Logger: newTextLogger(&logs)})
	if !strings.Contains(logs.String(), "imported") {
		t.Errorf("the import was not logged: %s", logs.String())
	}
	mustDecrypt(t, a, id, dek, c)
	if _, err := os.Stat(filepath.Join(dir, keyringName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the imported keyring file is still in place: %v", err)
	}
	if got, err := os.ReadFile(filepath.Join(dir, keyringName+importedSuffix)); err != nil || !bytes.Equal(got, fileBytes) {
		t.Errorf("keyring.imported is not the file as it was: %v", err)
	}
	// Another gateway, with no file, shares the imported key.
	b := openGateway(t, open(), root, LocalOptions{})
	mustDecrypt(t, b, id, dek, c)

	// A gateway whose directory holds another keyring file: the file is
	// ignored (with a warning), not merged.
	dir2 := t.TempDir()
	other := openTest(t, dir2, root, LocalOptions{})
	newKey(t, other)
	other.Close()
	logs.Reset()
	g := openTest(t, dir2, root, LocalOptions{Store: MetaKeyring(db), Logger: newTextLogger(&logs)})
	if !strings.Contains(logs.String(), "keys_missing_from_shared=1") {
		t.Errorf("the ignored keyring file was not reported: %s", logs.String())
	}
	keys, err := g.ListKeys(context.Background())
	if err != nil || len(keys) != 1 || keys[0].KeyID != id {
		t.Fatalf("shared keyring after a gateway with its own file opened: %d keys (%v), want only the imported one", len(keys), err)
	}
	if _, err := os.Stat(filepath.Join(dir2, keyringName)); err != nil {
		t.Errorf("the ignored keyring file was touched: %v", err)
	}
}

func TestSharedKeyringImportRace(t *testing.T) { forEachSharedEngine(t, testSharedKeyringImportRace) }

func testSharedKeyringImportRace(t *testing.T, open func() *meta.DB) {
	root := randomRoot(t)
	dirs := []string{t.TempDir(), t.TempDir()}
	var ids []string
	for _, dir := range dirs {
		k := openTest(t, dir, root, LocalOptions{})
		ids = append(ids, newKey(t, k))
		k.Close()
	}
	dbs := []*meta.DB{open(), open()}
	var wg sync.WaitGroup
	gws := make([]*Local, 2)
	errs := make([]error, 2)
	for i := range dirs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			gws[i], errs[i] = OpenLocal(dirs[i], root, LocalOptions{Store: MetaKeyring(dbs[i])})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("gateway %d: %v", i, err)
		}
		t.Cleanup(func() { gws[i].Close() })
	}
	// Exactly one file was imported; both gateways see the same keys.
	imported := 0
	for i, dir := range dirs {
		if _, err := os.Stat(filepath.Join(dir, keyringName+importedSuffix)); err == nil {
			imported++
			for _, k := range gws {
				if _, err := k.DescribeKey(context.Background(), &KeyRequest{KeyID: ids[i]}); err != nil {
					t.Errorf("imported key %d: %v", i, err)
				}
			}
		}
	}
	if imported != 1 {
		t.Fatalf("%d keyring files imported, want 1", imported)
	}
}

func TestSharedKeyringDeletionDateOnEveryGateway(t *testing.T) {
	forEachSharedEngine(t, testSharedKeyringDeletionDateOnEveryGateway)
}

func testSharedKeyringDeletionDateOnEveryGateway(t *testing.T, open func() *meta.DB) {
	db := open()
	root := randomRoot(t)
	clk := newClock()
	a := openGateway(t, db, root, LocalOptions{Now: clk.Now})
	b := openGateway(t, open(), root, LocalOptions{Now: clk.Now})
	id := newKey(t, a)
	keep := newKey(t, b)
	if _, err := a.ScheduleKeyDeletion(context.Background(), &ScheduleDeletionRequest{KeyID: id, PendingDays: 7}); err != nil {
		t.Fatal(err)
	}
	describe(t, b, id) // B knows the deletion date
	clk.Advance(7*24*time.Hour + time.Second)
	for i, k := range []*Local{a, b} {
		if _, err := k.DescribeKey(context.Background(), &KeyRequest{KeyID: id}); !errors.Is(err, ErrKeyNotFound) {
			t.Errorf("gateway %d: key past its deletion date: %v, want ErrKeyNotFound", i, err)
		}
		generate(t, k, keep, nil)
	}
	raw, _ := storedKeyring(t, db)
	if bytes.Contains(raw, []byte(id)) {
		t.Fatal("the deleted key is still in the shared keyring")
	}
	var env keyringEnvelope
	if err := json.Unmarshal(raw, &env); err != nil || env.Format != keyringFormat {
		t.Fatalf("stored keyring: format %d, %v", env.Format, err)
	}
}

// syncBuffer is a bytes.Buffer safe for a logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *syncBuffer) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.Reset()
}

func newTextLogger(w *syncBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, nil))
}
