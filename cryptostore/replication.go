package cryptostore

// The store's side of cross-region replication (package replicate drives
// it): the source sets an object's replication status as its copy
// progresses, and the target applies deletes that arrive from another
// region. Replicas themselves arrive through Put, the one write path, with
// ReplicationStatus "REPLICA", ReplicaSourceModified and a Condition that
// refuses a version older than the one stored.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sealfs/sealfs/meta"
)

// Replication statuses, as x-amz-replication-status shows them.
const (
	ReplicationPending   = "PENDING"
	ReplicationCompleted = "COMPLETED"
	ReplicationFailed    = "FAILED"
	ReplicationReplica   = "REPLICA"
)

// ErrInvalidReplicationStatus: SetReplicationStatus was asked for a status
// it does not set.
var ErrInvalidReplicationStatus = errors.New("invalid replication status")

// StatusUpdate asks SetReplicationStatus to change an object's replication
// status.
type StatusUpdate struct {
	Bucket, Key string
	// ID is the version the status is about: the status is set only if the
	// object is still that version.
	ID meta.ObjectID
	// Status is "", PENDING, COMPLETED or FAILED. REPLICA is set only by
	// the write of a replica.
	Status string
	// InTxn, if set, runs first in the same transaction with the current
	// record (nil if there is none) and says whether the status is to be
	// set. Whatever it writes through tx commits with the change, or alone
	// when the status is not set (replication removes its queue item
	// there). It may run more than once (conflict retries).
	InTxn func(tx QueueTxn, cur *Object) (bool, error)
}

// SetReplicationStatus sets an object's replication status in one metadata
// transaction: a metadata-only change that neither touches the data nor
// runs Config.OnCommit (it is not a commit replication acts on). The status
// is set when the object exists, is still version u.ID, is not a replica,
// and u.InTxn (if set) agrees; SetReplicationStatus reports whether it was.
// OnChange sees ChangeMeta when the status changed.
func (s *Store) SetReplicationStatus(ctx context.Context, u *StatusUpdate) (bool, error) {
	switch u.Status {
	case "", ReplicationPending, ReplicationCompleted, ReplicationFailed:
	default:
		return false, fmt.Errorf("%q: %w", u.Status, ErrInvalidReplicationStatus)
	}
	var set, changed bool
	err := s.meta.Update(ctx, func(tx *meta.Txn) error {
		set, changed = false, false
		cur, err := tx.GetObject(u.Bucket, u.Key)
		switch {
		case errors.Is(err, meta.ErrNoSuchKey):
			cur = nil
		case err != nil:
			return err
		}
		apply := cur != nil && cur.ID == u.ID && cur.ReplicationStatus != ReplicationReplica
		if u.InTxn != nil {
			ok, err := u.InTxn(tx, cur)
			if err != nil {
				return err
			}
			apply = apply && ok
		}
		if !apply {
			return nil
		}
		set = true
		if cur.ReplicationStatus == u.Status {
			return nil
		}
		next := *cur
		next.ReplicationStatus = u.Status
		changed = true
		return tx.PutObject(&next)
	})
	if err != nil {
		return false, err
	}
	if changed {
		s.changed(ChangeMeta, u.Bucket, u.Key)
	}
	return set, nil
}

// DeleteReplica applies a delete that replication brings from another
// region: it deletes bucket/key unless the object there is as new as the
// deletion or newer (by meta.Object.VersionTime), so a delete arriving late
// never removes a newer version. It reports whether an object was deleted.
// Like SetReplicationStatus it does not run Config.OnCommit: a delete that
// arrived by replication is never replicated again.
func (s *Store) DeleteReplica(ctx context.Context, bucket, key string, deleted time.Time) (bool, error) {
	var old *meta.Object
	err := s.meta.Update(ctx, func(tx *meta.Txn) error {
		old = nil
		if _, err := tx.GetBucket(bucket); err != nil {
			return err
		}
		cur, err := tx.GetObject(bucket, key)
		if errors.Is(err, meta.ErrNoSuchKey) {
			return nil
		}
		if err != nil {
			return err
		}
		if !cur.VersionTime().Before(deleted) {
			return nil
		}
		if err := tx.DeleteObject(bucket, key); err != nil {
			return err
		}
		if cur.Inline {
			if err := tx.DeleteInline(cur.ID); err != nil {
				return err
			}
		}
		old = cur
		return nil
	})
	if err != nil || old == nil {
		return false, err
	}
	s.removeAfterCommit(ctx, old.Blobs)
	s.changed(ChangeDelete, bucket, key)
	return true, nil
}
