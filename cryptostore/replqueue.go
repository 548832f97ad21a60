package cryptostore

// The replication queue, as package replicate reaches it. Replication's
// durable work items live in the metadata engine (meta/queue.go), written in
// the same transaction as the object commit they follow from; its target
// records are configuration records; its leases (several gateways over one
// store) are meta leases; its target secrets are sealed by the KMS under the
// system key. ReplicationQueue is all of that through one narrow value:
// replicate names neither a metadata transaction nor the KMS.
//
//   - The commit hook (Config.OnCommit) gets a CommitQueue: the commit's
//     transaction, narrowed to Enqueue.
//   - The workers read and settle items in queue transactions (View,
//     Update), which reach the queue and the leases and nothing else.
//   - Leases are taken and released each in a transaction of its own.
//   - Target records are configuration records under "replicate/".
//   - SealSecret and OpenSecret seal a secret under the system key; the
//     sealed form is the KMS's ciphertext, as replicate always stored it.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/sealfs/sealfs/kms"
	"github.com/sealfs/sealfs/meta"
)

// Queue items and leases, as the queue's API takes and returns them.
type (
	QueueItem = meta.QueueItem
	QueueOp   = meta.QueueOp
	Lease     = meta.Lease
)

// Queue operations.
const (
	QueuePut    = meta.QueuePut
	QueueDelete = meta.QueueDelete
)

// ErrNoSuchRecord: no replication record by that name (or a name that
// cannot be one).
var ErrNoSuchRecord = errors.New("no such replication record")

// replRecordPrefix is where replication's records live among the
// configuration records.
const replRecordPrefix = "replicate/"

// replQueueSequence names the sequence queue items are numbered from.
const replQueueSequence = "replicate/queue"

// CommitQueue is what Config.OnCommit gets: the commit's transaction,
// narrowed to queueing work in it. An item enqueued commits with the
// object, or not at all. Enqueue replaces the key's older item and returns
// it (see meta.Txn.Enqueue); the item's Seq must come from
// ReplicationQueue.NextSeq.
type CommitQueue interface {
	Enqueue(it *QueueItem) (replaced *QueueItem, err error)
}

// QueueTxn is a transaction on the replication queue: its items, in seq
// order, and the leases on them. StatusUpdate.InTxn and
// ReplicationQueue.View/Update hand it out.
type QueueTxn interface {
	CommitQueue
	// QueueItem returns the item queued under seq (ErrNoSuchKey if none).
	QueueItem(seq uint64) (*QueueItem, error)
	// QueuedItem returns the item queued for bucket/key (ErrNoSuchKey).
	QueuedItem(bucket, key string) (*QueueItem, error)
	// UpdateQueueItem rewrites a queued item's retry bookkeeping
	// (ErrNoSuchKey if it is no longer queued).
	UpdateQueueItem(it *QueueItem) error
	// Dequeue deletes the item under seq and reports whether it was there.
	Dequeue(seq uint64) (bool, error)
	// ScanQueue visits the items from seq on, in order, while fn says so.
	ScanQueue(from uint64, fn func(it *QueueItem) (bool, error)) error
	// GetLease returns the named lease, nil if there is none.
	GetLease(name string) (*Lease, error)
	// GetBucket reads a bucket's record (its replication rules) in the
	// transaction (ErrNoSuchBucket).
	GetBucket(name string) (*Bucket, error)
}

// The metadata transaction is a queue transaction.
var _ QueueTxn = (*meta.Txn)(nil)

// ReplicationQueue is replication's durable state: its queue, sequence,
// records, leases and sealed secrets. It is built from the metadata engine
// and the KMS before the store opens (the commit hook enqueues into it from
// the first commit on), by whoever wires the store (cmd). It is safe for
// concurrent use.
type ReplicationQueue struct {
	db     *meta.DB
	kms    kms.KMS
	seq    *meta.Sequence
	logger *slog.Logger
}

// NewReplicationQueue opens replication's queue over db, sealing secrets
// with k. logger may be nil.
func NewReplicationQueue(db *meta.DB, k kms.KMS, logger *slog.Logger) (*ReplicationQueue, error) {
	if db == nil || k == nil {
		return nil, errors.New("cryptostore: replication queue: metadata and KMS are required")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	seq, err := db.NewSequence(replQueueSequence, 1000)
	if err != nil {
		return nil, fmt.Errorf("cryptostore: replication queue: %w", err)
	}
	return &ReplicationQueue{db: db, kms: k, seq: seq, logger: logger}, nil
}

// NextSeq returns the sequence number of the next item to enqueue: larger
// than any handed out before, across restarts and gateways.
func (q *ReplicationQueue) NextSeq() (uint64, error) { return q.seq.Next() }

// Close gives back the unused sequence numbers. Call it before the
// metadata engine closes, and NextSeq no more.
func (q *ReplicationQueue) Close() error { return q.seq.Release() }

// View runs fn in a read-only queue transaction.
func (q *ReplicationQueue) View(ctx context.Context, fn func(tx QueueTxn) error) error {
	return q.db.View(ctx, func(tx *meta.Txn) error { return fn(tx) })
}

// Update runs fn in a read-write queue transaction, retried on conflicts
// (fn may run more than once).
func (q *ReplicationQueue) Update(ctx context.Context, fn func(tx QueueTxn) error) error {
	return q.db.Update(ctx, func(tx *meta.Txn) error { return fn(tx) })
}

// TakeLease takes or renews the named lease for owner until now+ttl, in a
// transaction of its own (two takers at once conflict; one wins). It
// reports false when another owner holds it unexpired. Leases are not
// synced one by one: a lease lost in a power cut is a lease expired.
func (q *ReplicationQueue) TakeLease(ctx context.Context, name, owner string, ttl time.Duration) (bool, error) {
	var ok bool
	err := q.db.Update(meta.WithoutSync(ctx), func(tx *meta.Txn) error {
		var err error
		ok, err = tx.TakeLease(name, owner, time.Now(), ttl)
		return err
	})
	return ok, err
}

// ReleaseLease deletes the named lease if owner holds it.
func (q *ReplicationQueue) ReleaseLease(ctx context.Context, name, owner string) error {
	return q.db.Update(meta.WithoutSync(ctx), func(tx *meta.Txn) error {
		return tx.ReleaseLease(name, owner)
	})
}

// recordName checks a replication record's name and returns its
// configuration record name.
func recordName(name string) (string, error) {
	full := replRecordPrefix + name
	if name == "" || strings.IndexByte(name, 0) >= 0 {
		return "", fmt.Errorf("%q: %w", name, ErrNoSuchRecord)
	}
	return full, nil
}

// noRecord maps meta's "no such configuration record" to ErrNoSuchRecord.
func noRecord(name string, err error) error {
	if errors.Is(err, meta.ErrNoSuchConfig) || errors.Is(err, meta.ErrInvalidConfigName) {
		return fmt.Errorf("replication record %q: %w", name, ErrNoSuchRecord)
	}
	return err
}

// Record returns the replication record name (ErrNoSuchRecord).
func (q *ReplicationQueue) Record(ctx context.Context, name string) ([]byte, error) {
	full, err := recordName(name)
	if err != nil {
		return nil, err
	}
	var v []byte
	err = q.db.View(ctx, func(tx *meta.Txn) error {
		var err error
		v, err = tx.GetConfig(full)
		return err
	})
	return v, noRecord(name, err)
}

// PutRecord stores the replication record name.
func (q *ReplicationQueue) PutRecord(ctx context.Context, name string, value []byte) error {
	full, err := recordName(name)
	if err != nil {
		return err
	}
	return noRecord(name, q.db.Update(ctx, func(tx *meta.Txn) error { return tx.PutConfig(full, value) }))
}

// DeleteRecord deletes the replication record name (ErrNoSuchRecord).
func (q *ReplicationQueue) DeleteRecord(ctx context.Context, name string) error {
	full, err := recordName(name)
	if err != nil {
		return err
	}
	return noRecord(name, q.db.Update(ctx, func(tx *meta.Txn) error { return tx.DeleteConfig(full) }))
}

// ScanRecords calls fn with the replication records whose names start with
// prefix, in name order (names without the package's own prefix), all read
// in one transaction. fn may run more than once (a retried read).
func (q *ReplicationQueue) ScanRecords(ctx context.Context, prefix string, fn func(name string, value []byte) error) error {
	return q.db.View(ctx, func(tx *meta.Txn) error {
		return tx.ScanConfig(replRecordPrefix+prefix, func(name string, value []byte) error {
			return fn(strings.TrimPrefix(name, replRecordPrefix), value)
		})
	})
}

// SealSecret seals plaintext under the system key (created the first time,
// as the store creates it) with the encryption context purpose, which
// OpenSecret must be given again. It returns the key id and the sealed
// bytes (the KMS's ciphertext), both to be kept.
func (q *ReplicationQueue) SealSecret(ctx context.Context, purpose map[string]string, plaintext []byte) (keyID string, sealed []byte, err error) {
	keyID, err = ensureSystemKey(ctx, q.db, q.kms, q.logger)
	if err != nil {
		return "", nil, err
	}
	sealed, err = q.kms.Encrypt(ctx, &kms.EncryptRequest{KeyID: keyID, Plaintext: plaintext, Context: kms.Context(purpose)})
	if err != nil {
		return "", nil, fmt.Errorf("sealing a secret: %w", err)
	}
	return keyID, sealed, nil
}

// OpenSecret opens what SealSecret sealed under keyID with purpose.
func (q *ReplicationQueue) OpenSecret(ctx context.Context, keyID string, sealed []byte, purpose map[string]string) ([]byte, error) {
	pt, err := q.kms.Decrypt(ctx, &kms.DecryptRequest{KeyID: keyID, Ciphertext: sealed, Context: kms.Context(purpose)})
	if err != nil {
		return nil, fmt.Errorf("opening a secret: %w", err)
	}
	return pt, nil
}

// CountObjects returns how many objects bucket holds (the progress of a
// replication resync): one scan of its records, in one transaction.
func (s *Store) CountObjects(ctx context.Context, bucket string) (int64, error) {
	var n int64
	err := s.meta.View(ctx, func(tx *meta.Txn) error {
		var err error
		n, _, err = tx.CountObjects(bucket)
		return err
	})
	return n, err
}
