package cryptostore

import (
	"bytes"
	"errors"
	"io"
	"os"
	"sync/atomic"
	"testing"
	"time"
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
	var syncs atomic.Int32
	var fail atomic.Bool
	e := newEnv(t, func(c *Config) {
		c.SyncInterval = -1
		c.testHookSync = func(err error) error {
			syncs.Add(1)
			if fail.Load() {
				return errors.New("injected EIO")
			}
			return err
		}
	})
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
