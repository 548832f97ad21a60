package cryptostore

import (
	"bytes"
	"errors"
	"io"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sealfs/sealfs/meta"
	"golang.org/x/sys/unix"
)

// overwriteNoSync replaces bkt/k without sync and returns the path of the
// blob it replaced.
func overwriteNoSync(t *testing.T, e *testEnv) string {
	t.Helper()
	old := e.put(t, "bkt", "k", randBytes(200<<10))
	data := randBytes(200 << 10)
	if _, err := e.store.Put(WithoutSync(ctx), &PutInput{Bucket: "bkt", Key: "k", Body: bytes.NewReader(data), Size: int64(len(data))}); err != nil {
		t.Fatal(err)
	}
	return e.store.blobs.path(old.Blobs[0].ID)
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// TestSyncFailureKeepsPendingRemovals: after a failed sync the removals
// waiting for it never run, not even after a later sync succeeds (the kernel
// may have dropped the pages of the commits that failed), and the collector
// refuses to run.
func TestSyncFailureKeepsPendingRemovals(t *testing.T) {
	var fail atomic.Bool
	e := newEnv(t, func(c *Config) {
		c.SyncInterval = -1
		c.testHookSync = func(err error) error {
			if fail.Load() {
				return errors.New("injected EIO")
			}
			return err
		}
	})
	e.bucket(t, "bkt", true)
	p := overwriteNoSync(t, e)
	fail.Store(true)
	if err := e.store.Sync(ctx); err == nil {
		t.Fatal("Sync did not report the failure")
	}
	fail.Store(false)
	p2 := overwriteNoSync(t, e)
	e.store.Sync(ctx)
	if !exists(p) || !exists(p2) {
		t.Fatal("a removal ran after a failed sync")
	}
	if _, err := e.store.Collect(ctx); err == nil {
		t.Fatal("the collector ran after a failed sync")
	}
	if !exists(p) || !exists(p2) {
		t.Fatal("the collector removed a blob after a failed sync")
	}
}

// TestBackgroundSyncDrains: the background sync makes a commit made without
// sync durable and runs its removals within its interval.
func TestBackgroundSyncDrains(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.SyncInterval = 20 * time.Millisecond })
	e.bucket(t, "bkt", true)
	p := overwriteNoSync(t, e)
	deadline := time.Now().Add(5 * time.Second)
	for exists(p) {
		if time.Now().After(deadline) {
			t.Fatal("the background sync did not remove the replaced blob")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestPendingRemovalWaitsForReader: a drained removal still waits for the
// reader holding the blob.
func TestPendingRemovalWaitsForReader(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.SyncInterval = -1 })
	singleGateway(t, e)
	e.bucket(t, "bkt", true)
	v1 := randBytes(200 << 10)
	old := e.put(t, "bkt", "k", v1)
	h, err := e.store.Open(ctx, "bkt", "k")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.Delete(WithoutSync(ctx), "bkt", "k"); err != nil {
		t.Fatal(err)
	}
	if err := e.store.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	p := e.store.blobs.path(old.Blobs[0].ID)
	if !exists(p) {
		t.Fatal("blob removed under a reader")
	}
	got, err := io.ReadAll(h.Reader(0, h.Size()))
	if err != nil || !bytes.Equal(got, v1) {
		t.Fatalf("reader after delete+sync: %v", err)
	}
	h.Close()
	e.store.blobs.waitRemovals()
	if exists(p) {
		t.Fatal("blob kept after its last reader closed")
	}
}

// TestCollectorSyncsBeforeRemoving: a blob unreferenced only by a commit
// made without sync is removed by the collector only after the collector
// synced; with the sync failing it stays.
func TestCollectorSyncsBeforeRemoving(t *testing.T) {
	e, syncs, fail := newSyncCountingEnv(t)
	singleGateway(t, e)
	e.bucket(t, "bkt", true)
	p := overwriteNoSync(t, e)
	fail.Store(true)
	n := syncs.Load()
	if _, err := e.store.Collect(ctx); err == nil {
		t.Fatal("Collect succeeded although its sync failed")
	}
	if syncs.Load() == n {
		t.Fatal("the collector did not sync")
	}
	if !exists(p) {
		t.Fatal("the collector removed a blob without a successful sync")
	}
}

// TestClosePendingRemovals: Close syncs and runs what waited.
func TestClosePendingRemovals(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.SyncInterval = -1 })
	singleGateway(t, e)
	e.bucket(t, "bkt", true)
	p := overwriteNoSync(t, e)
	if err := e.store.Close(); err != nil {
		t.Fatal(err)
	}
	if exists(p) {
		t.Fatal("Close left a pending removal undone")
	}
}

// setSyncData replaces the background data sync of blob files for the
// test.
func setSyncData(t *testing.T, fn func(f *os.File) error) {
	orig := syncData
	syncData = fn
	t.Cleanup(func() { syncData = orig })
}

// TestBlobSyncsWhileWritten: a large blob's data is synced in the
// background while it is written, before the fsync its commit waits for.
func TestBlobSyncsWhileWritten(t *testing.T) {
	var calls atomic.Int32
	setSyncData(t, func(f *os.File) error {
		calls.Add(1)
		return unix.Fdatasync(int(f.Fd()))
	})
	e := newEnv(t, nil)
	e.bucket(t, "bkt", true)
	data := randBytes(3*syncEvery + 100)
	e.put(t, "bkt", "big", data)
	if n := calls.Load(); n < 1 || n > 3 {
		t.Fatalf("writing %d bytes ran %d background syncs, want 1 to 3 (one every %d bytes, one at a time)", len(data), n, syncEvery)
	}
	if !bytes.Equal(e.mustGet(t, "bkt", "big"), data) {
		t.Fatal("read back differs")
	}
	calls.Store(0)
	e.put(t, "bkt", "small", randBytes(syncEvery/2))
	if n := calls.Load(); n != 0 {
		t.Fatalf("a blob under %d bytes ran %d background syncs", syncEvery, n)
	}
}

// TestBlobBackgroundSyncFailure: a background sync that fails fails the
// write, even though the fsync before the commit succeeds; nothing is
// committed and no blob file is left.
func TestBlobBackgroundSyncFailure(t *testing.T) {
	var fail atomic.Bool
	fail.Store(true)
	setSyncData(t, func(f *os.File) error {
		if fail.Swap(false) {
			return unix.EIO
		}
		return unix.Fdatasync(int(f.Fd()))
	})
	e := newEnv(t, nil)
	e.bucket(t, "bkt", true)
	data := randBytes(2*syncEvery + 100)
	_, err := e.store.Put(ctx, &PutInput{Bucket: "bkt", Key: "k", Body: bytes.NewReader(data), Size: int64(len(data))})
	if !errors.Is(err, unix.EIO) {
		t.Fatalf("Put with a failed background sync: %v; want an error wrapping EIO", err)
	}
	if _, err := e.get(t, "bkt", "k"); !errors.Is(err, meta.ErrNoSuchKey) {
		t.Fatalf("get after the failed put: %v; want no such key", err)
	}
	if files := blobFilesIn(t, e.dir); len(files) != 0 {
		t.Fatalf("the failed put left blob files: %v", files)
	}
	e.put(t, "bkt", "k", data)
	if !bytes.Equal(e.mustGet(t, "bkt", "k"), data) {
		t.Fatal("read back differs")
	}
}

// TestDeleteOfAbsentKeySyncs: a delete that finds no key reports
// ErrNoSuchKey, which S3 answers as a success; the absence may be an
// unsynced commit's, so Delete syncs first (and reports a failed sync
// instead), except WithoutSync.
func TestDeleteOfAbsentKeySyncs(t *testing.T) {
	e, syncs, fail := newSyncCountingEnv(t)
	e.bucket(t, "bkt", true)
	e.put(t, "bkt", "k", []byte("v"))
	if err := e.store.Delete(WithoutSync(ctx), "bkt", "k"); err != nil {
		t.Fatal(err)
	}
	before := syncs.Load()
	if err := e.store.Delete(ctx, "bkt", "k"); !errors.Is(err, ErrNoSuchKey) {
		t.Fatalf("Delete of a deleted key: %v, want ErrNoSuchKey", err)
	}
	if syncs.Load() == before {
		t.Fatal("a delete that found no key returned without syncing the removal it saw")
	}
	before = syncs.Load()
	if err := e.store.Delete(WithoutSync(ctx), "bkt", "k"); !errors.Is(err, ErrNoSuchKey) || syncs.Load() != before {
		t.Fatalf("Delete WithoutSync of a deleted key: %v, %d syncs", err, syncs.Load()-before)
	}
	fail.Store(true)
	if err := e.store.Delete(ctx, "bkt", "k"); err == nil || errors.Is(err, ErrNoSuchKey) {
		t.Fatalf("Delete of a deleted key with a failing sync: %v, want the sync's failure", err)
	}
}

// newSyncCountingEnv is a store without background sync whose syncs of
// the metadata are counted, and fail with EIO while fail is set.
func newSyncCountingEnv(t *testing.T) (e *testEnv, syncs *atomic.Int64, fail *atomic.Bool) {
	syncs, fail = new(atomic.Int64), new(atomic.Bool)
	e = newEnv(t, func(c *Config) {
		c.SyncInterval = -1
		c.testHookSync = func(err error) error {
			syncs.Add(1)
			if fail.Load() {
				return errors.New("injected EIO")
			}
			return err
		}
	})
	return e, syncs, fail
}
