package replicate

import (
	"context"
	"errors"
	"sort"
	"time"

	"github.com/sealfs/sealfs/cryptostore"
)

// Stats are the replication figures of the daemon: what `sealfs replicate
// status` shows and what a metrics exporter reads. Counters run from
// Start.
type Stats struct {
	// Backlog is how many items are queued (being sent included).
	Backlog int `json:"backlog"`
	// Retrying is how many of them have failed at least once.
	Retrying int `json:"retrying"`
	// InFlight is how many are being sent now.
	InFlight int `json:"inFlight"`
	// OldestPending is when the oldest queued work was first queued (zero
	// with an empty queue); OldestPendingAge is its age when Stats ran.
	OldestPending    time.Time     `json:"oldestPending,omitzero"`
	OldestPendingAge time.Duration `json:"oldestPendingAge"`

	Completed uint64 `json:"completed"` // objects replicated (stale ones skipped by the target included)
	Skipped   uint64 `json:"skipped"`   // of those, the target already held a newer version
	Failed    uint64 `json:"failed"`    // objects marked FAILED
	Retries   uint64 `json:"retries"`   // transient failures, each retried

	Targets []TargetStatus `json:"targets"`
	// BucketBacklog is the backlog per source bucket.
	BucketBacklog map[string]int `json:"bucketBacklog,omitempty"`
}

// TargetStatus is a target and its health as the workers saw it.
type TargetStatus struct {
	Target
	Backlog int `json:"backlog"`
	// State is "ok" (the last request succeeded), "retrying" (held back
	// after transient failures until RetryAt), "error" (the last request
	// failed permanently) or "idle" (not contacted since start).
	State               string    `json:"state"`
	ConsecutiveFailures int       `json:"consecutiveFailures,omitempty"`
	RetryAt             time.Time `json:"retryAt,omitzero"`
	LastError           string    `json:"lastError,omitempty"`
	LastErrorAt         time.Time `json:"lastErrorAt,omitzero"`
	LastSuccess         time.Time `json:"lastSuccess,omitzero"`
}

// Stats reads the queue (a scan: it costs O(backlog)) and the counters.
func (m *Manager) Stats(ctx context.Context) (*Stats, error) {
	now := time.Now().UTC()
	st := &Stats{
		Completed:     m.completed.Load(),
		Skipped:       m.skipped.Load(),
		Failed:        m.failed.Load(),
		Retries:       m.retried.Load(),
		BucketBacklog: make(map[string]int),
	}
	perTarget := make(map[string]int)
	err := m.cfg.Queue.View(ctx, func(tx cryptostore.QueueTxn) error {
		return tx.ScanQueue(0, func(it *cryptostore.QueueItem) (bool, error) {
			st.Backlog++
			if it.Attempts > 0 {
				st.Retrying++
			}
			if !it.Enqueued.IsZero() && (st.OldestPending.IsZero() || it.Enqueued.Before(st.OldestPending)) {
				st.OldestPending = it.Enqueued
			}
			perTarget[it.Target]++
			st.BucketBacklog[it.Bucket]++
			return true, nil
		})
	})
	if err != nil {
		return nil, err
	}
	if !st.OldestPending.IsZero() {
		st.OldestPendingAge = max(now.Sub(st.OldestPending), 0)
	}
	m.mu.Lock()
	st.InFlight = len(m.inflight)
	clients := make(map[string]*targetClient, len(m.clients))
	for r, tc := range m.clients {
		clients[r] = tc
	}
	m.mu.Unlock()
	targets, err := m.Targets(ctx)
	if err != nil {
		return nil, err
	}
	for _, t := range targets {
		ts := TargetStatus{Target: t, Backlog: perTarget[t.Region], State: "idle"}
		if tc, ok := clients[t.Region]; ok {
			tc.mu.Lock()
			ts.ConsecutiveFailures = tc.failures
			ts.LastError, ts.LastErrorAt, ts.LastSuccess = tc.lastError, tc.lastErrorAt, tc.lastSuccess
			switch {
			case tc.failures > 0:
				ts.State, ts.RetryAt = "retrying", tc.blockedUntil
			case !tc.lastErrorAt.IsZero() && tc.lastErrorAt.After(tc.lastSuccess):
				ts.State = "error"
			case !tc.lastSuccess.IsZero():
				ts.State = "ok"
			}
			tc.mu.Unlock()
		}
		st.Targets = append(st.Targets, ts)
	}
	return st, nil
}

// BucketStatus is one bucket's replication state.
type BucketStatus struct {
	Bucket string `json:"bucket"`
	// Rules is the bucket's configuration (nil without one).
	Rules []Rule `json:"rules"`
	// Backlog is how many of its items are queued.
	Backlog int `json:"backlog"`
	// Objects counts the bucket's objects by replication status ("" is
	// "NONE": written before any rule applied, or matched by none).
	Objects map[string]int64 `json:"objects"`
	// Failed lists up to 100 keys whose replication FAILED.
	Failed []string `json:"failed,omitempty"`
}

// maxFailedListed bounds BucketStatus.Failed.
const maxFailedListed = 100

// BucketStatus reads a bucket's configuration, backlog and the replication
// status of every object (a scan: it costs O(objects)).
func (m *Manager) BucketStatus(ctx context.Context, bucket string) (*BucketStatus, error) {
	store, err := m.storeOrErr()
	if err != nil {
		return nil, err
	}
	bs := &BucketStatus{Bucket: bucket, Objects: make(map[string]int64)}
	c, err := m.Configuration(ctx, bucket)
	switch {
	case err == nil:
		bs.Rules = c.Rules
	case !errors.Is(err, ErrNoConfiguration):
		return nil, err
	}
	opts := cryptostore.ListOptions{MaxKeys: 1000}
	for {
		page, err := store.List(ctx, bucket, opts)
		if err != nil {
			return nil, err
		}
		for _, o := range page.Objects {
			s := o.ReplicationStatus
			if s == "" {
				s = "NONE"
			}
			bs.Objects[s]++
			if o.ReplicationStatus == cryptostore.ReplicationFailed && len(bs.Failed) < maxFailedListed {
				bs.Failed = append(bs.Failed, o.Key)
			}
		}
		if !page.IsTruncated {
			break
		}
		opts.After = page.NextAfter
	}
	err = m.cfg.Queue.View(ctx, func(tx cryptostore.QueueTxn) error {
		return tx.ScanQueue(0, func(it *cryptostore.QueueItem) (bool, error) {
			if it.Bucket == bucket {
				bs.Backlog++
			}
			return true, nil
		})
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(bs.Failed)
	return bs, nil
}
