package replicate

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/sealfs/sealfs/cryptostore"
)

// ErrNoSuchJob: no resync job has that id.
var ErrNoSuchJob = errors.New("no such resync job")

// ResyncProgress is how far a resync has gone.
type ResyncProgress struct {
	ID     string `json:"id"`
	Bucket string `json:"bucket"`
	// Total is how many objects the bucket held when the resync started.
	Total   int64 `json:"total"`
	Scanned int64 `json:"scanned"`
	// Queued counts the objects queued again: Requeued of them had FAILED,
	// the others had no status (written before the rule) or were PENDING
	// with nothing queued.
	Queued   int64 `json:"queued"`
	Requeued int64 `json:"requeued"`
	// Skipped counts objects left alone: COMPLETED, REPLICA, already
	// queued, or matched by no enabled rule.
	Skipped  int64     `json:"skipped"`
	Done     bool      `json:"done"`
	Error    string    `json:"error,omitempty"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished,omitzero"`
}

type resyncJob struct {
	id, bucket string
	started    time.Time
	total      int64
	scanned    atomic.Int64
	queued     atomic.Int64
	requeued   atomic.Int64
	skipped    atomic.Int64
	cancel     context.CancelFunc
	done       chan struct{}
	// Set before done is closed.
	err      error
	finished time.Time
}

func (j *resyncJob) progress() *ResyncProgress {
	p := &ResyncProgress{
		ID:       j.id,
		Bucket:   j.bucket,
		Total:    j.total,
		Scanned:  j.scanned.Load(),
		Queued:   j.queued.Load(),
		Requeued: j.requeued.Load(),
		Skipped:  j.skipped.Load(),
		Started:  j.started,
	}
	select {
	case <-j.done:
		p.Done, p.Finished = true, j.finished
		if j.err != nil {
			p.Error = j.err.Error()
		}
	default:
	}
	return p
}

// maxJobsKept bounds the finished jobs remembered for their progress.
const maxJobsKept = 32

// StartResync starts sending a bucket's objects again, in the background:
// objects whose replication FAILED, and objects that existed before the
// rule (no status), are queued (status PENDING) when an enabled rule
// applies to them. COMPLETED objects and replicas are left alone. Follow it
// with ResyncStatus; Close stops it.
func (m *Manager) StartResync(ctx context.Context, bucket string) (*ResyncProgress, error) {
	store, err := m.storeOrErr()
	if err != nil {
		return nil, err
	}
	if _, err := m.Configuration(ctx, bucket); err != nil {
		return nil, err
	}
	total, err := store.CountObjects(ctx, bucket)
	if err != nil {
		return nil, err
	}
	jctx, cancel := context.WithCancel(context.Background())
	m.mu.Lock()
	m.jobSeq++
	j := &resyncJob{
		id:      fmt.Sprintf("resync-%d", m.jobSeq),
		bucket:  bucket,
		started: time.Now().UTC(),
		total:   total,
		cancel:  cancel,
		done:    make(chan struct{}),
	}
	m.pruneJobsLocked()
	m.jobs[j.id] = j
	m.mu.Unlock()
	m.log.Info("resync started", "bucket", bucket, "job", j.id, "objects", total)
	go func() {
		defer cancel()
		err := m.resync(jctx, store, j)
		j.err, j.finished = err, time.Now().UTC()
		close(j.done)
		m.log.Info("resync finished", "bucket", bucket, "job", j.id,
			"scanned", j.scanned.Load(), "queued", j.queued.Load(), "requeued_failed", j.requeued.Load(), "err", err)
		m.Notify()
	}()
	return j.progress(), nil
}

// pruneJobsLocked forgets the oldest finished jobs beyond maxJobsKept.
func (m *Manager) pruneJobsLocked() {
	for len(m.jobs) >= maxJobsKept {
		var oldest *resyncJob
		for _, j := range m.jobs {
			select {
			case <-j.done:
				if oldest == nil || j.started.Before(oldest.started) {
					oldest = j
				}
			default:
			}
		}
		if oldest == nil {
			return
		}
		delete(m.jobs, oldest.id)
	}
}

// ResyncStatus returns a resync job's progress (ErrNoSuchJob when unknown).
func (m *Manager) ResyncStatus(id string) (*ResyncProgress, error) {
	m.mu.Lock()
	j, ok := m.jobs[id]
	m.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrNoSuchJob, id)
	}
	return j.progress(), nil
}

// resyncParallel is how many objects a resync queues at once (their
// transactions share disk syncs).
const resyncParallel = 8

func (m *Manager) resync(ctx context.Context, store *cryptostore.Store, j *resyncJob) error {
	opts := cryptostore.ListOptions{MaxKeys: 1000}
	for {
		page, err := store.List(ctx, j.bucket, opts)
		if err != nil {
			return err
		}
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(resyncParallel)
		for _, o := range page.Objects {
			switch o.ReplicationStatus {
			case cryptostore.ReplicationCompleted, cryptostore.ReplicationReplica:
				j.scanned.Add(1)
				j.skipped.Add(1)
				continue
			}
			g.Go(func() error {
				queued, err := m.requeue(gctx, store, o)
				j.scanned.Add(1)
				switch {
				case err != nil:
					return err
				case queued && o.ReplicationStatus == cryptostore.ReplicationFailed:
					j.requeued.Add(1)
					j.queued.Add(1)
				case queued:
					j.queued.Add(1)
				default:
					j.skipped.Add(1)
				}
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			return err
		}
		m.Notify()
		if !page.IsTruncated {
			return nil
		}
		opts.After = page.NextAfter
	}
}

// requeue queues a put of o and marks it PENDING, in one transaction, if o
// is still the current version, is FAILED, has no status, or is PENDING
// with nothing queued, and an enabled rule applies to it.
func (m *Manager) requeue(ctx context.Context, store *cryptostore.Store, o *cryptostore.Object) (bool, error) {
	return store.SetReplicationStatus(ctx, &cryptostore.StatusUpdate{
		Bucket: o.Bucket, Key: o.Key, ID: o.ID, Status: cryptostore.ReplicationPending,
		InTxn: func(tx cryptostore.QueueTxn, cur *cryptostore.Object) (bool, error) {
			if cur == nil || cur.ID != o.ID {
				return false, nil
			}
			switch cur.ReplicationStatus {
			case "", cryptostore.ReplicationFailed:
			case cryptostore.ReplicationPending:
				if _, err := tx.QueuedItem(o.Bucket, o.Key); err == nil {
					return false, nil // queued already
				} else if !errors.Is(err, cryptostore.ErrNoSuchKey) {
					return false, err
				}
			default:
				return false, nil
			}
			b, err := tx.GetBucket(o.Bucket)
			if err != nil {
				return false, err
			}
			c, err := m.parsed(b.Replication)
			if err != nil || c == nil {
				return false, err
			}
			rule := c.Match(o.Key)
			if rule == nil {
				return false, nil
			}
			seq, err := m.cfg.Queue.NextSeq()
			if err != nil {
				return false, err
			}
			_, err = tx.Enqueue(&cryptostore.QueueItem{
				Seq:         seq,
				Bucket:      o.Bucket,
				Key:         o.Key,
				Op:          cryptostore.QueuePut,
				ObjectID:    cur.ID,
				VersionTime: cur.VersionTime(),
				Target:      rule.Region,
				Enqueued:    time.Now().UTC(),
			})
			return err == nil, err
		},
	})
}
