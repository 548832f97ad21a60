package cryptostore

import (
	"time"

	"github.com/sealfs/sealfs/meta"
)

// What a shared store (shared.go) asks of the blob files.

// held returns the blobs this process's readers hold now.
func (b *blobFiles) held() map[meta.BlobID]struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[meta.BlobID]struct{}, len(b.refs))
	for id := range b.refs {
		out[id] = struct{}{}
	}
	return out
}

// busy reports whether this process must keep a blob: in flight or read.
func (b *blobFiles) busy(id meta.BlobID) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.busyLocked(id)
}

// touchInflight refreshes the modification time of the blobs in flight
// that are already in place (written, not yet committed), so that another
// gateway's orphan collector sees them young.
func (b *blobFiles) touchInflight() {
	b.mu.Lock()
	ids := make([]meta.BlobID, 0, len(b.inflight))
	for id := range b.inflight {
		ids = append(ids, id)
	}
	b.mu.Unlock()
	if b.local == nil {
		return // a remote store: the collector's age rule is by upload time (DefaultBlobGrace)
	}
	now := time.Now()
	for _, id := range ids {
		b.local.touch(id, now)
	}
}
