package meta

// The replication queue: durable work items that package replicate writes
// in the same transaction as the object commit they follow from, and removes
// once the work is done. meta stores and orders them; what an item means is
// replicate's business.
//
// Items are kept under q\0i\0<seq> (keys.go), so a scan visits them in
// sequence order: first in, first out. A key has at most one item queued:
// Enqueue replaces the key's older item (found through the index
// q\0k\0<bucket>\0<key>) with the new one, whose sequence number is larger,
// so the key's work moves to the back of the queue and the order of a key's
// changes is kept.
//
// QueueItem record (version 1; the seq comes from the key)
//
//	1 Bucket string · 2 Key string · 3 Op uint · 4 ObjectID id ·
//	5 VersionTime time · 6 Target string · 7 Enqueued time ·
//	8 Attempts uint (≤ 2³²-1) · 9 NextAttempt time · 10 FirstFailure time ·
//	11 LastError string

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"
)

// QueueOp is what a queue item asks for.
type QueueOp uint8

// Queue operations.
const (
	QueuePut    QueueOp = 1 // copy the key's current version
	QueueDelete QueueOp = 2 // delete the key on the target
)

func (op QueueOp) String() string {
	switch op {
	case QueuePut:
		return "put"
	case QueueDelete:
		return "delete"
	}
	return fmt.Sprintf("op(%d)", uint8(op))
}

// QueueItem is one unit of replication work.
type QueueItem struct {
	Seq    uint64 // from the key; set by the caller before Enqueue
	Bucket string
	Key    string
	Op     QueueOp
	// ObjectID is the version committed (puts).
	ObjectID ObjectID
	// VersionTime is the version's VersionTime (puts) or the time of the
	// deletion (deletes).
	VersionTime time.Time
	// Target names where the work goes (a region), for scheduling.
	Target string
	// Enqueued is when the key's work was first queued: Enqueue keeps the
	// earlier time when it replaces an item.
	Enqueued time.Time

	// Retry bookkeeping.
	Attempts     uint32
	NextAttempt  time.Time // zero: at once
	FirstFailure time.Time
	LastError    string
}

// Field tags of the QueueItem record.
const (
	queueBucket       = 1
	queueKey          = 2
	queueOp           = 3
	queueObjectID     = 4
	queueVersionTime  = 5
	queueTarget       = 6
	queueEnqueued     = 7
	queueAttempts     = 8
	queueNextAttempt  = 9
	queueFirstFailure = 10
	queueLastError    = 11
)

func encodeQueueItem(dst []byte, it *QueueItem) []byte {
	dst = append(dst, recordVersion)
	dst = appendString(dst, queueBucket, it.Bucket)
	dst = appendString(dst, queueKey, it.Key)
	dst = appendUint(dst, queueOp, uint64(it.Op))
	dst = appendID(dst, queueObjectID, it.ObjectID)
	dst = appendTime(dst, queueVersionTime, it.VersionTime)
	dst = appendString(dst, queueTarget, it.Target)
	dst = appendTime(dst, queueEnqueued, it.Enqueued)
	dst = appendUint(dst, queueAttempts, uint64(it.Attempts))
	dst = appendTime(dst, queueNextAttempt, it.NextAttempt)
	dst = appendTime(dst, queueFirstFailure, it.FirstFailure)
	return appendString(dst, queueLastError, it.LastError)
}

func decodeQueueItem(data []byte, it *QueueItem) error {
	data, err := version("queue item", data, recordVersion)
	if err != nil {
		return err
	}
	f := fields{rec: "queue item", b: data}
	for f.next() {
		switch f.tag {
		case queueBucket:
			f.str(&it.Bucket)
		case queueKey:
			f.str(&it.Key)
		case queueOp:
			if v, ok := f.uint(math.MaxUint8); ok {
				it.Op = QueueOp(v)
			}
		case queueObjectID:
			f.id((*[16]byte)(&it.ObjectID))
		case queueVersionTime:
			f.time(&it.VersionTime)
		case queueTarget:
			f.str(&it.Target)
		case queueEnqueued:
			f.time(&it.Enqueued)
		case queueAttempts:
			f.uint32(&it.Attempts)
		case queueNextAttempt:
			f.time(&it.NextAttempt)
		case queueFirstFailure:
			f.time(&it.FirstFailure)
		case queueLastError:
			f.str(&it.LastError)
		}
	}
	return f.err
}

// Enqueue stores it under it.Seq, which must be larger than the sequence
// number of any item queued before (take it from a Sequence). If the key
// already has an item queued, that item is deleted, and it.Enqueued takes
// the earlier of the two times; the replaced item is returned. The bucket
// name and key are checked (ErrInvalidBucketName, ErrInvalidKey).
func (tx *Txn) Enqueue(it *QueueItem) (replaced *QueueItem, err error) {
	if err := ValidBucketName(it.Bucket); err != nil {
		return nil, err
	}
	if err := ValidKey(it.Key); err != nil {
		return nil, err
	}
	if it.Seq == 0 {
		return nil, errors.New("meta: queue item without a sequence number")
	}
	ik := queueIndexKey(it.Bucket, it.Key)
	old, ok, err := tx.indexedSeq(ik)
	if err != nil {
		return nil, err
	}
	if ok && old != it.Seq {
		prev, err := tx.QueueItem(old)
		switch {
		case errors.Is(err, ErrNoSuchKey):
		case err != nil:
			return nil, err
		default:
			replaced = prev
			if !prev.Enqueued.IsZero() && (it.Enqueued.IsZero() || prev.Enqueued.Before(it.Enqueued)) {
				it.Enqueued = prev.Enqueued
			}
			if err := tx.kv.delete(queueItemKey(old)); err != nil {
				return nil, err
			}
		}
	}
	if err := tx.kv.set(queueItemKey(it.Seq), encodeQueueItem(nil, it)); err != nil {
		return nil, err
	}
	return replaced, tx.kv.set(ik, binary.BigEndian.AppendUint64(nil, it.Seq))
}

// indexedSeq reads a queue index entry.
func (tx *Txn) indexedSeq(ik []byte) (uint64, bool, error) {
	var seq uint64
	ok, err := tx.value(ik, func(v []byte) error {
		if len(v) != 8 {
			return fmt.Errorf("%w: queue index: want 8 bytes, have %d", ErrCorruptRecord, len(v))
		}
		seq = binary.BigEndian.Uint64(v)
		return nil
	})
	return seq, ok, err
}

// QueueItem returns the item queued under seq, or an error wrapping
// ErrNoSuchKey.
func (tx *Txn) QueueItem(seq uint64) (*QueueItem, error) {
	it := &QueueItem{Seq: seq}
	ok, err := tx.value(queueItemKey(seq), func(v []byte) error { return decodeQueueItem(v, it) })
	if err != nil {
		return nil, fmt.Errorf("queue item %d: %w", seq, err)
	}
	if !ok {
		return nil, fmt.Errorf("queue item %d: %w", seq, ErrNoSuchKey)
	}
	return it, nil
}

// QueuedItem returns the item queued for bucket/key, or an error wrapping
// ErrNoSuchKey.
func (tx *Txn) QueuedItem(bucket, key string) (*QueueItem, error) {
	if ValidBucketName(bucket) != nil || ValidKey(key) != nil {
		return nil, fmt.Errorf("queue item of %s/%s: %w", bucket, key, ErrNoSuchKey)
	}
	seq, ok, err := tx.indexedSeq(queueIndexKey(bucket, key))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("queue item of %s/%s: %w", bucket, key, ErrNoSuchKey)
	}
	return tx.QueueItem(seq)
}

// UpdateQueueItem rewrites a queued item (its retry bookkeeping), or
// returns an error wrapping ErrNoSuchKey if it is no longer queued (done, or
// replaced by a newer item). Bucket, key and seq must be the stored ones.
func (tx *Txn) UpdateQueueItem(it *QueueItem) error {
	cur, err := tx.QueueItem(it.Seq)
	if err != nil {
		return err
	}
	if cur.Bucket != it.Bucket || cur.Key != it.Key {
		return fmt.Errorf("queue item %d: is for %s/%s, not %s/%s", it.Seq, cur.Bucket, cur.Key, it.Bucket, it.Key)
	}
	return tx.kv.set(queueItemKey(it.Seq), encodeQueueItem(nil, it))
}

// Dequeue deletes the item queued under seq, and the key's index entry if
// it still names that item. It reports whether the item was there: an item
// replaced by a newer one is gone already.
func (tx *Txn) Dequeue(seq uint64) (bool, error) {
	it, err := tx.QueueItem(seq)
	if errors.Is(err, ErrNoSuchKey) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := tx.kv.delete(queueItemKey(seq)); err != nil {
		return false, err
	}
	ik := queueIndexKey(it.Bucket, it.Key)
	cur, ok, err := tx.indexedSeq(ik)
	if err != nil {
		return false, err
	}
	if ok && cur == seq {
		if err := tx.kv.delete(ik); err != nil {
			return false, err
		}
	}
	return true, nil
}

// ScanQueue calls fn with the queued items whose seq is at least from, in
// seq order, until fn returns false or an error (which ScanQueue returns).
func (tx *Txn) ScanQueue(from uint64, fn func(it *QueueItem) (bool, error)) error {
	return tx.scan(queueItemsPrefix(), queueItemKey(from), func(k, v []byte) (bool, error) {
		seq, ok := parseQueueItemKey(k)
		if !ok {
			return false, fmt.Errorf("%w: bad queue key %q", ErrCorruptRecord, k)
		}
		it := &QueueItem{Seq: seq}
		if err := decodeQueueItem(v, it); err != nil {
			return false, fmt.Errorf("queue item %d: %w", seq, err)
		}
		return fn(it)
	})
}

// Sequence hands out increasing numbers that survive restarts, on every
// engine: a counter under c\0s\0<name> (a u64 BE: the end of the numbers
// leased so far) is advanced by bandwidth in a transaction of its own, and
// the numbers of the lease are handed out from memory. Numbers are unique
// (across gateways too: leases are transactions) and increase in the order
// Next is called on one Sequence; a restart skips what was leased and not
// used. It is safe for concurrent use. While the store refuses writes (a
// full disk, a failed sync) Next fails when it needs a new lease.
type Sequence struct {
	db        *DB
	name      string
	bandwidth uint64

	mu         sync.Mutex
	next, end  uint64 // numbers [next, end) are leased and unused
	everLeased bool
}

// NewSequence opens the named sequence, leasing bandwidth numbers at a
// time (the first lease when Next is first called).
func (db *DB) NewSequence(name string, bandwidth uint64) (*Sequence, error) {
	if err := validConfigName(name); err != nil {
		return nil, err
	}
	if bandwidth == 0 {
		bandwidth = 1000
	}
	// The first lease is taken by the first Next, not here: a daemon
	// opening on a full disk (writes refused) must still start.
	return &Sequence{db: db, name: name, bandwidth: bandwidth}, nil
}

// leaseLocked leases the next bandwidth numbers. Called with s.mu held.
func (s *Sequence) leaseLocked() error {
	var next, end uint64
	err := s.db.Update(context.Background(), func(tx *Txn) error {
		k := sequenceKey(s.name)
		var cur uint64
		_, err := tx.value(k, func(v []byte) error {
			if len(v) != 8 {
				return fmt.Errorf("%w: sequence %q: want 8 bytes, have %d", ErrCorruptRecord, s.name, len(v))
			}
			cur = binary.BigEndian.Uint64(v)
			return nil
		})
		if err != nil {
			return err
		}
		next, end = cur, cur+s.bandwidth
		return tx.kv.set(k, binary.BigEndian.AppendUint64(nil, end))
	})
	if err != nil {
		return fmt.Errorf("meta: sequence %q: %w", s.name, err)
	}
	s.next, s.end, s.everLeased = next, end, true
	return nil
}

// Next returns the next number, starting at 1.
func (s *Sequence) Next() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.next >= s.end {
		if err := s.leaseLocked(); err != nil {
			return 0, err
		}
	}
	n := s.next
	s.next++
	return n + 1, nil
}

// Release gives back the unused part of the lease when no one leased
// after it. Call it before the database closes, and Next no more.
func (s *Sequence) Release() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.everLeased || s.next >= s.end || s.db.ReadOnly() {
		return nil
	}
	next, end := s.next, s.end
	err := s.db.Update(context.Background(), func(tx *Txn) error {
		k := sequenceKey(s.name)
		var cur uint64
		ok, err := tx.value(k, func(v []byte) error {
			if len(v) == 8 {
				cur = binary.BigEndian.Uint64(v)
			}
			return nil
		})
		if err != nil || !ok || cur != end {
			return err // another lease was taken since: keep the gap
		}
		return tx.kv.set(k, binary.BigEndian.AppendUint64(nil, next))
	})
	if err != nil {
		return fmt.Errorf("meta: sequence %q: release: %w", s.name, err)
	}
	s.next = s.end
	return nil
}
