package meta

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"
)

// forEachSharedEngine runs fn per server engine (those with a change feed)
// with two DBs open on one fresh store: two gateways. It runs in every run
// (the representative subset), narrowed by SEALFS_TEST_ENGINES when set.
func forEachSharedEngine(t *testing.T, fn func(t *testing.T, a, b *DB)) {
	t.Helper()
	sel := os.Getenv("SEALFS_TEST_ENGINES")
	for _, e := range testEngines {
		if e.name == "badger" || (sel != "" && !engineSelected(e.name)) {
			continue
		}
		t.Run(e.name, func(t *testing.T) {
			url := e.url(t)
			var dbs [2]*DB
			for i := range dbs {
				db, err := Open(url, Options{})
				if err != nil {
					t.Fatalf("open %s: %v", RedactURL(url), err)
				}
				t.Cleanup(func() { db.Close() })
				dbs[i] = db
			}
			fn(t, dbs[0], dbs[1])
		})
	}
}

// waitChange waits for the first change of ch matching want, failing after
// a second (the documented bound).
func waitChange(t *testing.T, ch <-chan Change, want Change) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := time.NewTimer(time.Second)
	defer deadline.Stop()
	for {
		select {
		case c, ok := <-ch:
			if !ok {
				t.Fatalf("feed closed while waiting for %+v", want)
			}
			if c == want {
				return time.Since(start)
			}
		case <-deadline.C:
			t.Fatalf("no %+v within 1s", want)
		}
	}
}

// A commit on one gateway reaches the other's feed, within a second:
// object puts and deletions, bucket records; keys outside objects and
// buckets (fences, inline data) are not reported.
func TestWatchAcrossGateways(t *testing.T) {
	forEachSharedEngine(t, func(t *testing.T, a, b *DB) {
		if !a.Shared() || !b.Shared() {
			t.Fatal("a server engine is not Shared")
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		feed, err := b.Watch(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Update(ctx, func(tx *Txn) error { return tx.CreateBucket(&Bucket{Name: "bkt", Created: time.Now()}) }); err != nil {
			t.Fatal(err)
		}
		waitChange(t, feed, Change{Bucket: "bkt"})
		id := NewObjectID()
		if err := a.Update(ctx, func(tx *Txn) error {
			if err := tx.PutInline(id, []byte("x")); err != nil {
				return err
			}
			return tx.PutObject(&Object{Bucket: "bkt", Key: "dir/file", ID: id, Inline: true, Size: 1})
		}); err != nil {
			t.Fatal(err)
		}
		d := waitChange(t, feed, Change{Bucket: "bkt", Key: "dir/file"})
		t.Logf("put reported after %v", d)
		if err := a.Update(ctx, func(tx *Txn) error { return tx.DeleteObject("bkt", "dir/file") }); err != nil {
			t.Fatal(err)
		}
		waitChange(t, feed, Change{Bucket: "bkt", Key: "dir/file", Deleted: true})
		cancel()
		for range feed { // closed when ctx ends
		}
	})
}

// Badger, one gateway, has no feed and is not shared.
func TestWatchBadger(t *testing.T) {
	db := openEngineTest(t, testEngines[0])
	if db.Shared() {
		t.Fatal("Badger reported as shared")
	}
	if _, err := db.Watch(context.Background()); !errors.Is(err, ErrNoWatch) {
		t.Fatalf("Watch on Badger: %v, want ErrNoWatch", err)
	}
}

// After PostgreSQL restarts, the feed reports a reset (what it missed is
// unknown) and then goes on reporting commits.
func TestWatchPostgresRestartResets(t *testing.T) {
	srv, url := postgresOnly(t)
	a, err := Open(url, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	feed, err := a.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Restart(true); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-feed:
		if !c.Reset {
			t.Fatalf("first event after the restart: %+v, want a reset", c)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no reset within 30s of the restart")
	}
	// The pool's idle connections broke with the server: writes may fail
	// until it has replaced them.
	for deadline := time.Now().Add(30 * time.Second); ; {
		err := a.Update(ctx, func(tx *Txn) error { return tx.CreateBucket(&Bucket{Name: "after", Created: time.Now()}) })
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no write within 30s of the restart: %v", err)
		}
	}
	waitChange(t, feed, Change{Bucket: "after"})
}
