package cryptostore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sealfs/sealfs/meta"
)

// Durability of removals.
//
// A commit made WithoutSync is visible at once but reaches the disk only at
// the next metadata sync. The blobs it stopped referencing must outlive it
// until then: a power cut before the sync brings back the old record, and
// that record needs its blob. So such removals wait in a pending list
// (blobFiles.deferRemove) and run only after a sync that started after the
// commit finished: Store.Sync (the mount's fsync), the background sync
// (Config.SyncInterval), or Close. A synced commit's removals run at once:
// meta.Update returned only after such a sync.
//
// After a failed sync nothing pending runs any more (the kernel may have
// dropped the pages of those commits, and a later sync cannot tell): those
// blobs become orphans that the collector of the next start removes once
// the records that survived no longer reference them. Pending removals left
// by a crash are orphans the same way.

// DefaultSyncInterval is the period of the background sync when
// Config.SyncInterval is 0.
const DefaultSyncInterval = 5 * time.Second

type withoutSyncKey struct{}

// noSync reports whether ctx was made by WithoutSync.
func noSync(ctx context.Context) bool {
	v, _ := ctx.Value(withoutSyncKey{}).(bool)
	return v
}

// WithoutSync marks ctx so that commits made with it (Put, UpdateMeta,
// Rename, Delete, ...) return once visible to every reader, without waiting
// for the metadata to reach the disk; Sync (or the background sync within
// Config.SyncInterval) makes them durable. Blob data is still synced before
// any record points at it, and a blob such a commit replaces is removed only
// once the commit is durable, so a crash loses such a commit whole or not at
// all, never half, and never leaves a record without its blob. The mount
// commits this way on close and syncs on fsync, as POSIX file systems do.
func WithoutSync(ctx context.Context) context.Context {
	return context.WithValue(meta.WithoutSync(ctx), withoutSyncKey{}, true)
}

// Sync makes every commit made so far durable, then removes the blobs that
// commits made without sync stopped referencing.
func (s *Store) Sync(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	mark := s.blobs.syncMark()
	if err := s.syncMeta(); err != nil {
		return err
	}
	s.blobs.drain(mark)
	return nil
}

// syncMeta syncs the metadata store; a failure stops every pending and
// future deferred removal for good.
func (s *Store) syncMeta() error {
	err := s.meta.Sync()
	if s.cfg.testHookSync != nil {
		err = s.cfg.testHookSync(err)
	}
	if err != nil {
		if s.blobs.fail() {
			s.logger.Error("metadata sync failed: blobs replaced since the last sync are kept (the orphan collector of the next start removes them)", "err", err)
		}
		return fmt.Errorf("syncing metadata: %w", err)
	}
	return nil
}

// removeAfterCommit removes blobs a successful commit made with ctx stopped
// referencing: now if the commit was synced, after the next sync otherwise.
func (s *Store) removeAfterCommit(ctx context.Context, refs []meta.BlobRef) {
	refs = distinctBlobs(refs)
	if len(refs) == 0 {
		return
	}
	if s.sh != nil {
		s.doom(ctx, refs) // other gateways may be reading them (shared.go)
		return
	}
	if noSync(ctx) {
		s.blobs.deferRemove(refs)
		return
	}
	s.blobs.remove(refs)
}

// committedAnyway reports whether the object record obj was committed
// although the commit returned err: the transaction went in and only the
// sync after it failed. Its data must then stay.
func (s *Store) committedAnyway(obj *meta.Object, err error) bool {
	if err == nil || errors.Is(err, errSettingChanged) || errors.Is(err, ErrPreconditionFailed) {
		return false
	}
	var cur *meta.Object
	verr := s.meta.View(context.Background(), func(tx *meta.Txn) error {
		var err error
		cur, err = tx.GetObject(obj.Bucket, obj.Key)
		return err
	})
	return verr == nil && cur.ID == obj.ID
}

// syncLoop syncs the metadata every interval when something was committed
// since the last time, so that a commit made without sync is lost by a
// power cut only within that window, and runs the pending removals.
func (s *Store) syncLoop(every time.Duration) {
	defer s.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.bg.Done():
			return
		case <-t.C:
		}
		if !s.dirty.Swap(false) && !s.blobs.hasPending() {
			continue
		}
		if s.blobs.failed() {
			continue // logged once; every write fails from now on
		}
		if err := s.Sync(s.bg); err != nil && s.bg.Err() == nil {
			s.logger.Warn("background sync", "err", err)
		}
	}
}

// distinctBlobs returns the blobs refs read from, each once, holes left
// out (a composed version may read one blob through several extents).
func distinctBlobs(refs []meta.BlobRef) []meta.BlobRef {
	out := make([]meta.BlobRef, 0, len(refs))
	seen := make(map[meta.BlobID]bool, len(refs))
	for _, r := range refs {
		if r.Hole || seen[r.ID] {
			continue
		}
		seen[r.ID] = true
		out = append(out, r)
	}
	return out
}

// blobsNotIn returns the blobs of old that refs does not read from: what a
// commit of refs over old stops referencing.
func blobsNotIn(old, refs []meta.BlobRef) []meta.BlobRef {
	keep := make(map[meta.BlobID]bool, len(refs))
	for _, r := range refs {
		if !r.Hole {
			keep[r.ID] = true
		}
	}
	var out []meta.BlobRef
	for _, r := range distinctBlobs(old) {
		if !keep[r.ID] {
			out = append(out, r)
		}
	}
	return out
}
