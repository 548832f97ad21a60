package replicate

import (
	"context"
	"crypto/rand"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sealfs/sealfs/cryptostore"
	"github.com/sealfs/sealfs/kms"
	"github.com/sealfs/sealfs/meta"
)

// Two gateways' workers over one metadata store: every queued item is
// claimed by exactly one; a live owner keeps its lease past its duration
// (renewal); a killed owner's item goes to the other once the lease
// expires, not before; a released lease is free at once.
func TestLeaseOneWorkerPerItem(t *testing.T) {
	db, err := meta.Open(filepath.Join(t.TempDir(), "meta"), meta.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	root := make([]byte, 32)
	rand.Read(root)
	k, err := kms.OpenLocal(filepath.Join(t.TempDir(), "kms"), root, kms.LocalOptions{Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	q, err := cryptostore.NewReplicationQueue(db, k, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	ctx := context.Background()
	ttl := 600 * time.Millisecond
	a := &leaser{q: q, owner: "gw-a", ttl: ttl}
	b := &leaser{q: q, owner: "gw-b", ttl: ttl}

	const n = 30
	items := make([]*meta.QueueItem, n)
	for i := range items {
		items[i] = &meta.QueueItem{Seq: uint64(i + 1), Bucket: "bkt", Key: string(rune('a' + i))}
	}
	var mu sync.Mutex
	winners := make(map[int][]string)
	var releases []func()
	var wg sync.WaitGroup
	for _, l := range []*leaser{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i, it := range items {
				ok, release, err := l.claim(ctx, it)
				if err != nil {
					t.Error(err)
					return
				}
				if ok {
					mu.Lock()
					winners[i] = append(winners[i], l.owner)
					releases = append(releases, release)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	for i := range items {
		if len(winners[i]) != 1 {
			t.Fatalf("item %d claimed by %v, want exactly one worker", i, winners[i])
		}
	}
	// Owners alive: the leases are renewed past their duration.
	time.Sleep(3 * ttl)
	for i, it := range items {
		other := b
		if winners[i][0] == "gw-b" {
			other = a
		}
		if ok, _, err := other.claim(ctx, it); err != nil || ok {
			t.Fatalf("item %d: a live owner's lease was taken (%v)", i, err)
		}
	}
	for _, r := range releases {
		r()
	}
	// Released: free at once.
	ok, release, err := b.claim(ctx, items[0])
	if err != nil || !ok {
		t.Fatalf("a released lease was refused: %v", err)
	}
	release()

	// A gateway killed mid-item: its lease stays, unrenewed.
	dead := items[1]
	killedAt := time.Now()
	if err := db.Update(ctx, func(tx *meta.Txn) error {
		_, err := tx.TakeLease(leaseName(dead.Bucket, dead.Key), "gw-killed", killedAt, ttl)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for {
		ok, release, err := b.claim(ctx, dead)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			if since := time.Since(killedAt); since < ttl {
				t.Fatalf("the killed gateway's item was taken over after %v, before its lease expired (%v)", since, ttl)
			}
			release()
			break
		}
		if time.Since(killedAt) > 5*ttl {
			t.Fatal("the killed gateway's item was never taken over")
		}
		var held time.Time
		db.View(ctx, func(tx *meta.Txn) error { held, err = b.heldByOther(tx, dead, time.Now()); return err })
		if held.IsZero() && time.Since(killedAt) < ttl {
			t.Fatal("the dispatcher would not see the killed gateway's lease")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
