package meta

import (
	"bytes"
	"context"
	"sync"
	"sync/atomic"
)

// bucketCache keeps the bucket records DB.GetBucket read, for stores that
// one process owns (Badger): every write of a bucket record then goes
// through this DB, and the commit that makes it drops the cache (changed).
// A bucket is read on nearly every request (the mount's create and close,
// every S3 PUT) and changes rarely; a read transaction costs the CPU of the
// lookup and its MAC check, and on Badger a wait for the commits before it
// to be applied.
//
// gen counts the changes. An entry is tagged with the generation read
// before the read transaction that found it, and served only while that is
// still the current one. A change's commit is visible before gen moves and
// its Update returns after, so an entry of the current generation holds
// every change whose Update has returned.
type bucketCache struct {
	gen atomic.Uint64

	mu      sync.RWMutex
	entries map[string]*Bucket // read under entryGen
	// entryGen is the generation entries were read under.
	entryGen uint64

	reads atomic.Int64 // records read from the store (for tests)
}

// changed drops every entry: a commit wrote a bucket record, or may have.
func (c *bucketCache) changed() { c.gen.Add(1) }

func (c *bucketCache) get(name string, gen uint64) (*Bucket, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.entryGen != gen {
		return nil, false
	}
	b, ok := c.entries[name]
	return b, ok
}

func (c *bucketCache) put(b *Bucket, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen.Load() != gen {
		// Changed during the read: never served, and it would push out
		// the current generation's entries.
		return
	}
	if c.entryGen != gen || c.entries == nil {
		c.entries = make(map[string]*Bucket)
		c.entryGen = gen
	}
	c.entries[b.Name] = b
}

// GetBucket returns the bucket's record, as a read transaction's
// tx.GetBucket would. On a store one process owns (Badger) it is kept in
// memory after the first read until a commit writes a bucket record; a
// shared store (PostgreSQL, etcd), which other gateways write, is read
// every time. The caller owns the record returned.
func (db *DB) GetBucket(ctx context.Context, name string) (*Bucket, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	shared := db.Shared()
	gen := db.buckets.gen.Load()
	if !shared {
		if b, ok := db.buckets.get(name, gen); ok {
			return b.clone(), nil
		}
	}
	var b *Bucket
	db.buckets.reads.Add(1)
	err := db.View(ctx, func(tx *Txn) error {
		var err error
		b, err = tx.GetBucket(name)
		return err
	})
	if err != nil {
		return nil, err
	}
	if !shared {
		db.buckets.put(b.clone(), gen)
	}
	return b, nil
}

func (b *Bucket) clone() *Bucket {
	c := *b
	c.Replication = bytes.Clone(b.Replication)
	return &c
}
