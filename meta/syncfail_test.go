package meta

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// A failed sync is permanent: the pages it could not write may be gone
// although a later sync succeeds, so every write, commit and Sync after it
// fails, while reads go on.
func TestSyncFailureIsPermanent(t *testing.T) {
	db := openTest(t)
	createBucket(t, db, "bkt")
	var calls atomic.Int32
	inner := badgerOf(t, db).syncer.fn
	badgerOf(t, db).syncer.fn = func() error {
		if calls.Add(1) == 1 {
			return syscall.EIO // the first sync fails, later ones succeed
		}
		return inner()
	}
	put := func(key string) error {
		return db.Update(context.Background(), func(tx *Txn) error {
			return tx.PutObject(&Object{Bucket: "bkt", Key: key, ID: NewObjectID()})
		})
	}
	if err := put("a"); err == nil {
		t.Fatal("the commit whose sync failed returned nil")
	}
	for _, key := range []string{"b", "c"} {
		err := put(key)
		if err == nil {
			t.Fatalf("a commit after a failed sync succeeded (%d syncs ran)", calls.Load())
		}
		if !errors.Is(err, ErrSyncFailed) || !errors.Is(err, syscall.EIO) {
			t.Fatalf("commit after a failed sync: %v; want ErrSyncFailed wrapping the cause", err)
		}
	}
	if err := db.Sync(); !errors.Is(err, ErrSyncFailed) {
		t.Fatalf("Sync after a failed sync: %v", err)
	}
	if err := db.CheckSpace(); !errors.Is(err, ErrSyncFailed) {
		t.Fatalf("CheckSpace (asked before blob writes) after a failed sync: %v", err)
	}
	err := db.Update(WithoutSync(context.Background()), func(tx *Txn) error {
		return tx.PutObject(&Object{Bucket: "bkt", Key: "deferred", ID: NewObjectID()})
	})
	if !errors.Is(err, ErrSyncFailed) {
		t.Fatalf("a deferred commit after a failed sync: %v", err)
	}
	err = db.UpdateBulk(context.Background(), 2, func(tx *Txn, i int) error {
		return tx.PutObject(&Object{Bucket: "bkt", Key: "bulk", ID: NewObjectID()})
	})
	if !errors.Is(err, ErrSyncFailed) {
		t.Fatalf("a bulk update after a failed sync: %v", err)
	}
	if !strings.Contains(err.Error(), "writes are refused until restart") {
		t.Errorf("the error does not say what happened: %v", err)
	}
	// Reads go on; nothing after the failure was committed.
	view(t, db, func(tx *Txn) error {
		if _, err := tx.GetBucket("bkt"); err != nil {
			t.Errorf("read after a failed sync: %v", err)
		}
		for _, key := range []string{"b", "c", "deferred", "bulk"} {
			if _, err := tx.GetObject("bkt", key); !errors.Is(err, ErrNoSuchKey) {
				t.Errorf("%s was committed after a failed sync: %v", key, err)
			}
		}
		return nil
	})
}

var origDatasync = datasyncFile

// A failed sync of a rotated write-ahead log (syncWALs) is as permanent
// as a failed Badger sync. Whether a real rotated log is still there when
// a sync runs is up to Badger's flusher (the rotation test,
// TestSyncFindsALogRotatedSinceTheLastListing, makes one), so a stand-in
// makes it certain: an empty log numbered below the active one is what
// syncWALs takes for a log rotated out and not yet flushed. Its fsync
// fails; the active log's succeeds.
func TestOlderWALSyncFailureIsPermanent(t *testing.T) {
	db := openTest(t)
	kv := badgerOf(t, db)
	createBucket(t, db, "bkt") // a synced commit: the logs are listed
	if len(kv.walFids) == 0 || kv.walFids[0] == 0 {
		t.Fatalf("write-ahead logs %v: want the active one, numbered above 0", kv.walFids)
	}
	older := fmt.Sprintf("%05d%s", 0, walSuffix)
	if err := os.WriteFile(filepath.Join(kv.dir, older), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var synced []string
	datasyncFile = func(f *os.File) error {
		synced = append(synced, filepath.Base(f.Name()))
		if filepath.Base(f.Name()) == older {
			return syscall.EIO
		}
		return origDatasync(f)
	}
	t.Cleanup(func() { datasyncFile = origDatasync })
	if err := db.Sync(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Sync with the older log's fsync failing: %v (synced %v); want the failure", err, synced)
	}
	datasyncFile = origDatasync
	if err := db.Sync(); !errors.Is(err, ErrSyncFailed) {
		t.Fatalf("Sync after a failed fsync: %v", err)
	}
	err := db.Update(context.Background(), func(tx *Txn) error { return tx.PutConfig("after", nil) })
	if !errors.Is(err, ErrSyncFailed) {
		t.Fatalf("a commit after a failed fsync: %v", err)
	}
}

// Badger's DB.Sync (which also syncs the value log) runs only after a value
// that Badger puts in its value log; every other sync is the write-ahead
// log's fdatasync alone.
func TestSyncAsksBadgerOnlyForValueLogWrites(t *testing.T) {
	db := openTest(t)
	kv := badgerOf(t, db)
	createBucket(t, db, "bkt") // synced: the open's flag is spent
	if kv.vlogUsed.Load() {
		t.Fatal("the value log is marked written after a small synced commit")
	}
	syncs := 0
	datasyncFile = func(f *os.File) error { syncs++; return origDatasync(f) }
	t.Cleanup(func() { datasyncFile = origDatasync })
	if err := db.Update(context.Background(), func(tx *Txn) error { return tx.PutConfig("small", []byte("v")) }); err != nil {
		t.Fatal(err)
	}
	if syncs == 0 {
		t.Fatal("a synced commit did not fdatasync the write-ahead log")
	}
	if kv.vlogUsed.Load() {
		t.Fatal("a small value marked the value log written")
	}
	err := db.Update(WithoutSync(context.Background()), func(tx *Txn) error {
		return tx.PutConfig("large", make([]byte, valueThreshold))
	})
	if err != nil {
		t.Fatal(err)
	}
	if !kv.vlogUsed.Load() {
		t.Fatal("a value of valueThreshold bytes did not mark the value log written")
	}
	if err := db.Sync(); err != nil {
		t.Fatal(err)
	}
	if kv.vlogUsed.Load() {
		t.Fatal("the sync left the value log marked written")
	}
}

// A value-log write is marked when its commit has written it: a sync that
// runs between the value's set and its commit (another waiter's) must not
// spend the mark, or the commit's own sync would make its write-ahead log
// entry durable without the value it points to.
func TestValueLogMarkOutlivesAnEarlierSync(t *testing.T) {
	db := openTest(t)
	kv := badgerOf(t, db)
	createBucket(t, db, "bkt") // synced: the open's flag is spent
	err := db.Update(WithoutSync(context.Background()), func(tx *Txn) error {
		if err := tx.PutConfig("large", make([]byte, valueThreshold)); err != nil {
			return err
		}
		return kv.syncAll() // another waiter's sync, before the commit
	})
	if err != nil {
		t.Fatal(err)
	}
	if !kv.vlogUsed.Load() {
		t.Fatal("a sync between a large value's set and its commit left the value log marked synced")
	}
}

// A sync lists Badger's directory only when it changed (listWALs), yet
// still finds the log of a memtable rotated since the last listing: the
// new active log is the one it syncs.
func TestSyncFindsALogRotatedSinceTheLastListing(t *testing.T) {
	db := openTest(t)
	kv := badgerOf(t, db)
	createBucket(t, db, "bkt")
	// Wait until the last listing is one a sync may reuse: the directory
	// unchanged since, and listed well after its last change.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := db.Sync(); err != nil {
			t.Fatal(err)
		}
		if !kv.walDir.racy {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the directory's listing stayed too close to its last change for 30s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	before := slices.Clone(kv.walFids)
	if len(before) == 0 {
		t.Fatal("the listing found no write-ahead log")
	}
	var synced []string
	datasyncFile = func(f *os.File) error {
		synced = append(synced, filepath.Base(f.Name()))
		return origDatasync(f)
	}
	t.Cleanup(func() { datasyncFile = origDatasync })
	if err := db.Sync(); err != nil {
		t.Fatal(err)
	}
	active := fmt.Sprintf("%05d%s", before[len(before)-1], walSuffix)
	if !slices.Equal(synced, []string{active}) {
		t.Fatalf("a sync with nothing rotated synced %v; want only the active log %s", synced, active)
	}

	rotateMemtable(t, db)
	synced = nil
	if err := db.Sync(); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(kv.dir)
	if err != nil {
		t.Fatal(err)
	}
	newest := ""
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), walSuffix) {
			newest = e.Name() // ReadDir sorts by name; the names are zero-padded
		}
	}
	if newest == active {
		t.Fatalf("no memtable rotation: %s is still the newest log", newest)
	}
	if !slices.Contains(synced, newest) {
		t.Fatalf("the sync after a rotation synced %v, not the new active log %s", synced, newest)
	}
}

// rotateMemtable writes more than MemTableSize into the LSM tree (values
// under valueThreshold stay in the write-ahead log), without syncs.
func rotateMemtable(t *testing.T, db *DB) {
	t.Helper()
	ctx := WithoutSync(context.Background())
	val := make([]byte, 3<<10)
	for i := 0; i < memTableSize/len(val)+256; i += 64 {
		err := db.Update(ctx, func(tx *Txn) error {
			for j := range 64 {
				if err := tx.PutConfig("fill/"+strconv.Itoa(i+j), val); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
