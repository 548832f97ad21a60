package meta

import (
	"context"
	"sync"
	"testing"
	"time"
)

// Two workers race for the same leases: each is held by exactly one; a
// lease its owner stops renewing (a dead gateway) goes to the other once
// it expires, not before; a released lease is free at once.
func TestLeaseExclusive(t *testing.T) {
	forEachEngineCore(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		const n = 20
		ttl := time.Minute
		var mu sync.Mutex
		owners := map[int][]string{}
		var wg sync.WaitGroup
		for _, w := range []string{"gw-a", "gw-b"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range n {
					var ok bool
					err := db.Update(ctx, func(tx *Txn) error {
						var err error
						ok, err = tx.TakeLease(leaseName(i), w, time.Now(), ttl)
						return err
					})
					if err != nil {
						t.Error(err)
						return
					}
					if ok {
						mu.Lock()
						owners[i] = append(owners[i], w)
						mu.Unlock()
					}
				}
			}()
		}
		wg.Wait()
		for i := range n {
			if len(owners[i]) != 1 {
				t.Fatalf("lease %d taken by %v, want exactly one owner", i, owners[i])
			}
		}
		// gw-a dies holding lease 0 (taken again with a short ttl).
		take := func(name, owner string, now time.Time, ttl time.Duration) bool {
			var ok bool
			if err := db.Update(ctx, func(tx *Txn) error {
				var err error
				ok, err = tx.TakeLease(name, owner, now, ttl)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			return ok
		}
		now := time.Now()
		if !take("dead", "gw-a", now, 2*time.Second) {
			t.Fatal("a free lease was refused")
		}
		if take("dead", "gw-b", now.Add(time.Second), time.Minute) {
			t.Fatal("a live lease was taken by another owner")
		}
		if !take("dead", "gw-b", now.Add(3*time.Second), time.Minute) {
			t.Fatal("an expired lease was not taken over")
		}
		if take("dead", "gw-a", now.Add(4*time.Second), time.Minute) {
			t.Fatal("the dead owner took its lease back from the new owner")
		}
		if err := db.Update(ctx, func(tx *Txn) error { return tx.ReleaseLease("dead", "gw-b") }); err != nil {
			t.Fatal(err)
		}
		if !take("dead", "gw-a", now.Add(4*time.Second), time.Minute) {
			t.Fatal("a released lease was refused")
		}
	})
}

func leaseName(i int) string { return "q/" + string(rune('a'+i)) }

// A doomed blob is due once its time has passed, not while an unexpired
// read pin names it; ForgetBlob drops it and its pins, and refuses while
// it is pinned.
func TestDoomedBlobsAndPins(t *testing.T) {
	forEachEngineCore(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		x, y := NewBlobID(), NewBlobID()
		now := time.Now()
		if err := db.Update(ctx, func(tx *Txn) error {
			if err := tx.DoomBlob(x, now.Add(time.Second)); err != nil {
				return err
			}
			return tx.DoomBlob(y, now.Add(time.Second))
		}); err != nil {
			t.Fatal(err)
		}
		due, err := db.DueBlobs(ctx, now, 100)
		if err != nil || len(due) != 0 {
			t.Fatalf("due before their time: %v, %v", due, err)
		}
		if err := db.PinBlobs(ctx, "gw-b", []BlobID{x}, now.Add(10*time.Second)); err != nil {
			t.Fatal(err)
		}
		later := now.Add(2 * time.Second)
		due, err = db.DueBlobs(ctx, later, 100)
		if err != nil || len(due) != 1 || due[0] != y {
			t.Fatalf("due: %v, %v; want only the unpinned one", due, err)
		}
		if ok, err := db.ForgetBlob(ctx, x, later); err != nil || ok {
			t.Fatalf("ForgetBlob of a pinned blob: %v, %v", ok, err)
		}
		if ok, err := db.ForgetBlob(ctx, y, later); err != nil || !ok {
			t.Fatalf("ForgetBlob: %v, %v", ok, err)
		}
		// The pin expires: x becomes due; forgetting it drops its pin.
		after := now.Add(11 * time.Second)
		due, err = db.DueBlobs(ctx, after, 100)
		if err != nil || len(due) != 1 || due[0] != x {
			t.Fatalf("due after the pin expired: %v, %v", due, err)
		}
		if err := db.DropExpiredPins(ctx, after); err != nil {
			t.Fatal(err)
		}
		if ok, err := db.ForgetBlob(ctx, x, after); err != nil || !ok {
			t.Fatalf("ForgetBlob: %v, %v", ok, err)
		}
		n := 0
		if err := db.View(ctx, func(tx *Txn) error {
			return tx.scanKeys([]byte{prefixGateways, sep}, nil, func([]byte) (bool, error) { n++; return true, nil })
		}); err != nil || n != 0 {
			t.Fatalf("%d coordination keys left, %v", n, err)
		}
	})
}
