package meta

// The change feed: what other gateways commit, as it is committed.
//
// Engines shared by several gateways implement kvWatcher with the server's
// own feed (etcd: a Watch on the store's prefix, watch_etcd.go; PostgreSQL:
// LISTEN/NOTIFY fed by a trigger on the key-value table,
// watch_postgres.go). Badger, one gateway in one process, has none: its
// only writer already knows what it wrote.
//
// The feed reports keys, not values, and a key at least once per commit
// that wrote it, after the commit (a reader that looks then sees the
// write or a later one). It may report more (a write that changed
// nothing). When the engine cannot tell what it missed (the connection to
// the server broke, a watch fell behind a compaction), it sends a reset:
// "anything may have changed"; the subscriber drops everything it caches.

import (
	"context"
	"errors"
)

// ErrNoWatch is returned by Watch on an engine without a change feed
// (Badger: one gateway, which knows its own changes).
var ErrNoWatch = errors.New("meta: the metadata engine has no change feed")

// kvWatchEvent is one event of an engine's feed: a key written (set or
// deleted) by a committed transaction, or a reset.
type kvWatchEvent struct {
	key     []byte // without any engine prefix
	deleted bool   // the key was deleted (else set)
	reset   bool   // events may have been lost: key is nil
}

// kvWatcher is implemented by engines that have a change feed.
type kvWatcher interface {
	// watch reports the keys starting with one of prefixes that
	// committed transactions of any client (this one included) write,
	// from about the time it returns until ctx ends, when the channel is
	// closed. It sends a reset after any gap (and reconnects by itself).
	watch(ctx context.Context, prefixes [][]byte) (<-chan kvWatchEvent, error)
}

// Shared reports whether the store lives in a server engine that several
// gateways may open at once (PostgreSQL, etcd), rather than in Badger,
// which one process owns.
func (db *DB) Shared() bool {
	_, ok := db.kv.(kvWatcher)
	return ok
}

// Change is one event of Watch: an object or a bucket that a commit of
// some gateway (this one included) wrote, or a reset.
type Change struct {
	Bucket string
	// Key is the object's key; empty for a change of the bucket record.
	Key string
	// Deleted: the object's record (or the bucket's) was deleted.
	Deleted bool
	// Reset: the feed had a gap (a reconnection) and changes may have
	// been missed: anything may have changed. Bucket and Key are empty.
	Reset bool
}

// Watch reports the changes of object and bucket records committed by any
// gateway sharing the store, each after its commit, until ctx ends (the
// channel is closed then). Events of this gateway's own commits come too.
// A gap in the feed (a lost connection to the server) is reported as a
// Change with Reset set. On an engine without a feed (Badger) it returns
// ErrNoWatch.
//
// The delay between a commit and its event is the engine's: a few
// milliseconds on loopback for both etcd and PostgreSQL.
func (db *DB) Watch(ctx context.Context) (<-chan Change, error) {
	w, ok := db.kv.(kvWatcher)
	if !ok {
		return nil, ErrNoWatch
	}
	in, err := w.watch(ctx, [][]byte{objectsPrefix(), bucketsPrefix()})
	if err != nil {
		return nil, err
	}
	out := make(chan Change, 256)
	go func() {
		defer close(out)
		for ev := range in {
			var c Change
			switch {
			case ev.reset:
				c.Reset = true
			default:
				if b, k, ok := parseObjectKey(ev.key); ok {
					c.Bucket, c.Key = b, k
				} else if b, ok := parseBucketKey(ev.key); ok {
					c.Bucket = b
				} else {
					continue
				}
				c.Deleted = ev.deleted
			}
			select {
			case out <- c:
			case <-ctx.Done():
				for range in {
				}
				return
			}
		}
	}()
	return out, nil
}

// hasAnyPrefix reports whether k starts with one of prefixes.
func hasAnyPrefix(k []byte, prefixes [][]byte) bool {
	for _, p := range prefixes {
		if len(k) >= len(p) && string(k[:len(p)]) == string(p) {
			return true
		}
	}
	return false
}
