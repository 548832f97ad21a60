package meta

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// fakeDisk is a free-space probe the test sets.
type fakeDisk struct{ free atomic.Uint64 }

func (d *fakeDisk) statfs(string) (uint64, error) { return d.free.Load(), nil }

func openDisk(t *testing.T, dir string, disk *fakeDisk) (*DB, error) {
	t.Helper()
	old := spaceCacheFor
	spaceCacheFor = 0 // every check sees what the test just set
	t.Cleanup(func() { spaceCacheFor = old })
	db, err := Open(dir, Options{statfs: disk.statfs})
	if err == nil {
		t.Cleanup(func() { db.Close() })
	}
	return db, err
}

func putKey(db *DB, ctx context.Context, key string) error {
	return db.Update(ctx, func(tx *Txn) error {
		return tx.PutObject(&Object{Bucket: "bkt", Key: key, ID: NewObjectID()})
	})
}

func wantNoSpace(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, ErrNoSpace) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("%s on a full disk: %v; want ErrNoSpace (and ENOSPC)", what, err)
	}
}

// Below the reserve, writes are refused before Badger writes anything;
// reads go on; commits that free space may use half the reserve; writes
// are accepted again as soon as space returns.
func TestFullDiskRefusesWrites(t *testing.T) {
	disk := &fakeDisk{}
	disk.free.Store(1 << 40)
	db, err := openDisk(t, t.TempDir(), disk)
	if err != nil {
		t.Fatal(err)
	}
	createBucket(t, db, "bkt")
	ctx := context.Background()
	if err := putKey(db, ctx, "before"); err != nil {
		t.Fatal(err)
	}
	disk.free.Store(Reserve - 1)
	wantNoSpace(t, "Update", putKey(db, ctx, "refused"))
	wantNoSpace(t, "deferred Update", putKey(db, WithoutSync(ctx), "refused"))
	wantNoSpace(t, "UpdateBulk", db.UpdateBulk(ctx, 1, func(tx *Txn, i int) error { return tx.PutConfig("x", nil) }))
	wantNoSpace(t, "CheckSpace", db.CheckSpace())
	view(t, db, func(tx *Txn) error {
		if _, err := tx.GetObject("bkt", "before"); err != nil {
			t.Errorf("read on a full disk: %v", err)
		}
		if _, err := tx.GetObject("bkt", "refused"); !errors.Is(err, ErrNoSuchKey) {
			t.Errorf("a refused write was committed: %v", err)
		}
		return nil
	})
	// Freeing commits may go down to half the reserve.
	if err := db.Update(UseReserve(ctx), func(tx *Txn) error { return tx.DeleteObject("bkt", "before") }); err != nil {
		t.Fatalf("a delete on a full disk: %v", err)
	}
	disk.free.Store(Reserve/2 - 1)
	wantNoSpace(t, "a delete below half the reserve", db.Update(UseReserve(ctx), func(tx *Txn) error { return tx.PutConfig("x", nil) }))
	disk.free.Store(Reserve)
	if err := putKey(db, ctx, "after"); err != nil {
		t.Fatalf("write once space returned: %v", err)
	}
	if err := db.CheckSpace(); err != nil {
		t.Fatal(err)
	}
}

// On a disk below the reserve the store opens read-only (Badger writes
// nothing), serves reads, refuses writes, and turns read-write by itself
// when space returns.
func TestOpenOnFullDiskReadOnly(t *testing.T) {
	old := spaceCheckInterval
	spaceCheckInterval = 20 * time.Millisecond
	t.Cleanup(func() { spaceCheckInterval = old })

	dir := t.TempDir()
	disk := &fakeDisk{}
	disk.free.Store(1 << 40)
	db, err := openDisk(t, dir, disk)
	if err != nil {
		t.Fatal(err)
	}
	createBucket(t, db, "bkt")
	if err := putKey(db, context.Background(), "k"); err != nil {
		t.Fatal(err)
	}
	seq, err := db.NewSequence("seq", 10)
	if err != nil {
		t.Fatal(err)
	}
	first, err := seq.Next()
	if err != nil {
		t.Fatal(err)
	}
	seq.Release()
	db.Close()

	disk.free.Store(0)
	db, err = openDisk(t, dir, disk)
	if err != nil {
		t.Fatalf("open on a full disk: %v", err)
	}
	if !db.ReadOnly() {
		t.Fatal("the store opened read-write on a full disk")
	}
	view(t, db, func(tx *Txn) error {
		_, err := tx.GetObject("bkt", "k")
		return err
	})
	wantNoSpace(t, "Update on a read-only store", putKey(db, context.Background(), "refused"))
	seq, err = db.NewSequence("seq", 10)
	if err != nil {
		t.Fatalf("NewSequence on a read-only store: %v", err)
	}
	_, err = seq.Next()
	wantNoSpace(t, "Sequence.Next on a read-only store", err)
	if err := db.Sync(); err != nil {
		t.Fatalf("Sync on a read-only store: %v", err)
	}

	disk.free.Store(Reserve)
	deadline := time.Now().Add(10 * time.Second)
	for db.ReadOnly() {
		if time.Now().After(deadline) {
			t.Fatal("the store stayed read-only after space returned")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := putKey(db, context.Background(), "after"); err != nil {
		t.Fatalf("write after space returned: %v", err)
	}
	n, err := seq.Next()
	if err != nil || n <= first {
		t.Fatalf("Sequence.Next after space returned = %d, %v; want > %d", n, err, first)
	}
	seq.Release()
	view(t, db, func(tx *Txn) error {
		_, err := tx.GetObject("bkt", "k")
		return err
	})
}

// A store not closed cleanly cannot be opened read-only by Badger: on a full
// disk it opens read-write (writes refused) when there is room to recover,
// and otherwise Open fails with ErrNoSpace, writing nothing.
func TestOpenUncleanOnFullDisk(t *testing.T) {
	dir := t.TempDir()
	disk := &fakeDisk{}
	disk.free.Store(1 << 40)
	db, err := openDisk(t, dir, disk)
	if err != nil {
		t.Fatal(err)
	}
	createBucket(t, db, "bkt")
	if err := putKey(db, context.Background(), "k"); err != nil {
		t.Fatal(err)
	}
	// A copy of a store in use is what a crash leaves.
	crashed := filepath.Join(t.TempDir(), "crashed")
	copyDir(t, dir, crashed)

	disk.free.Store(1 << 20)
	before := listDir(t, crashed)
	if _, err := openDisk(t, crashed, disk); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("open of an unclean store on a full disk: %v; want ErrNoSpace", err)
	}
	if after := listDir(t, crashed); after != before {
		t.Fatalf("a failed open changed the store:\nbefore %s\nafter  %s", before, after)
	}

	disk.free.Store(recoveryNeed(crashed))
	db2, err := openDisk(t, crashed, disk)
	if err != nil {
		t.Fatalf("open with room to recover: %v", err)
	}
	view(t, db2, func(tx *Txn) error {
		_, err := tx.GetObject("bkt", "k")
		return err
	})
	wantNoSpace(t, "Update on a recovered full disk", putKey(db2, context.Background(), "refused"))
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o700); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() == "LOCK" {
			continue
		}
		src, err := os.Open(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		dst, err := os.Create(filepath.Join(to, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(dst, src); err != nil {
			t.Fatal(err)
		}
		src.Close()
		if err := dst.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func listDir(t *testing.T, dir string) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	s := ""
	for _, e := range entries {
		fi, _ := e.Info()
		s += fmt.Sprintf("%s:%d ", e.Name(), fi.Size())
	}
	return s
}

// BenchmarkWritable measures what every commit now pays before Badger is
// asked to write: the sync-failure and read-only flags and the free-space
// check (a statfs at most every spaceCacheFor).
func BenchmarkWritable(b *testing.B) {
	db, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := db.kv.writable(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}
