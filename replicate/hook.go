package replicate

import (
	"time"

	"github.com/sealfs/sealfs/cryptostore"
)

// OnCommit is the store's commit hook (cryptostore.Config.OnCommit). It runs
// inside every object commit transaction. When an enabled rule of the
// bucket applies to the key, it queues the work through tx — in the same
// transaction as the object, so a write that is acknowledged is queued,
// whatever crashes afterwards — and marks the new version PENDING.
//
//   - A replica (status REPLICA) is never queued: replicas are not
//     replicated again, so two-way rules do not loop.
//   - A delete is queued only when the rule asks for deletes; the deletion
//     time travels with it.
//   - A rename is a delete of the old key and a put of the new one.
//
// A newer change of a key replaces its queued item (cryptostore.CommitQueue.Enqueue), so a
// burst of writes to one key sends it once, in its latest state. The hook
// only writes through tx, so a commit retried on a conflict runs it again
// harmlessly.
func (m *Manager) OnCommit(tx cryptostore.CommitQueue, ev *cryptostore.CommitEvent) error {
	if ev.Bucket == nil || len(ev.Bucket.Replication) == 0 {
		return nil
	}
	cfg, err := m.parsed(ev.Bucket.Replication)
	if err != nil {
		// Refuse the write rather than let it miss replication.
		return err
	}
	if cfg == nil {
		return nil
	}
	rule := cfg.Match(ev.Key)
	if rule == nil {
		return nil
	}
	now := time.Now().UTC()
	it := &cryptostore.QueueItem{
		Bucket:   ev.Bucket.Name,
		Key:      ev.Key,
		Target:   rule.Region,
		Enqueued: now,
	}
	switch {
	case ev.New != nil:
		if ev.New.ReplicationStatus == cryptostore.ReplicationReplica {
			return nil
		}
		it.Op = cryptostore.QueuePut
		it.ObjectID = ev.New.ID
		it.VersionTime = ev.New.VersionTime()
	case ev.Old != nil && ev.Old.ReplicationStatus == cryptostore.ReplicationReplica:
		return nil
	case !rule.Deletes:
		return nil
	default:
		it.Op = cryptostore.QueueDelete
		it.VersionTime = now
	}
	if it.Seq, err = m.cfg.Queue.NextSeq(); err != nil {
		return err
	}
	if _, err := tx.Enqueue(it); err != nil {
		return err
	}
	if ev.New != nil {
		ev.New.ReplicationStatus = cryptostore.ReplicationPending
	}
	return nil
}
