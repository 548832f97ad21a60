package replicate

// Leases: on a store shared by several gateways (cryptostore.Store.Shared)
// every gateway runs replication workers over the one queue. A worker
// takes a lease on the key of the item it works
// (cryptostore.ReplicationQueue.TakeLease, in a transaction: two gateways taking it at once conflict, one wins), renews
// it every third of its duration while it sends, and releases it when the
// item is settled. Another gateway's scan skips keys leased by someone
// else; a gateway killed mid-item stops renewing, and once its lease
// expires (DefaultLeaseTTL) another gateway works the item, which is still
// queued: replication is at least once per queued write, as on one
// gateway after a crash. One gateway alone (Badger) takes no lease.

import (
	"context"
	"sync"
	"time"

	"github.com/sealfs/sealfs/cryptostore"
)

// DefaultLeaseTTL is how long a replication lease lasts without renewal.
const DefaultLeaseTTL = 30 * time.Second

// leaser takes and renews replication leases for one gateway.
type leaser struct {
	q     *cryptostore.ReplicationQueue
	owner string
	ttl   time.Duration
}

// leaseName is the name of the lease on a key's replication work.
func leaseName(bucket, key string) string { return "replicate/" + bucket + "\x00" + key }

// heldByOther returns, when the item's key is leased by another gateway
// now, when that lease expires; zero otherwise. It reads in tx (the
// dispatcher's scan).
func (l *leaser) heldByOther(tx cryptostore.QueueTxn, it *cryptostore.QueueItem, now time.Time) (time.Time, error) {
	ls, err := tx.GetLease(leaseName(it.Bucket, it.Key))
	if err != nil || ls == nil || ls.Owner == l.owner || !ls.Expires.After(now) {
		return time.Time{}, err
	}
	return ls.Expires, nil
}

// claim takes the lease on the item's key. When it is held by another
// gateway it returns false. Else the lease is renewed in the background
// until release is called, which also deletes it.
func (l *leaser) claim(ctx context.Context, it *cryptostore.QueueItem) (ok bool, release func(), err error) {
	name := leaseName(it.Bucket, it.Key)
	take := func(ctx context.Context) (bool, error) {
		return l.q.TakeLease(ctx, name, l.owner, l.ttl)
	}
	if ok, err := take(ctx); err != nil || !ok {
		return false, nil, err
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(l.ttl / 3)
		defer t.Stop()
		for {
			select {
			case <-rctx.Done():
				return
			case <-t.C:
				take(rctx) // a failure is retried at the next tick
			}
		}
	}()
	var once sync.Once
	return true, func() {
		once.Do(func() {
			cancel()
			wg.Wait()
			l.q.ReleaseLease(context.Background(), name, l.owner)
		})
	}, nil
}
