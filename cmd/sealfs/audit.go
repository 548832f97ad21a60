package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/urfave/cli/v2"

	"github.com/sealfs/sealfs/cryptostore"
	"github.com/sealfs/sealfs/iam"
)

// The audit log of key use: every data key the store issues
// (kms:GenerateDataKey) or unwraps (kms:Decrypt) for an object, and every
// administrative operation on a master key (kms:CreateKey when a bucket's
// key is made, kms:EnableKey, kms:DisableKey, kms:RotateKey,
// kms:ScheduleKeyDeletion — from `kms delete` and `bucket rm --shred`, the
// latter naming the bucket —, kms:CancelKeyDeletion, kms:RetireKeyVersion,
// and a kms:ReWrap line when a rewrap job starts and one when it ends, with
// its counts), with who asked, when, the master key, the bucket, the object
// and the outcome, one JSON object a line in its own file
// (DATA/audit/key-use.jsonl by default, mode 0600), and counted in
// sealfs_key_uses_total{action,result,user} when --metrics is on. A
// refused use (the user's policy lacks the KMS action) is recorded as
// denied. The user label's cardinality is bounded by the users the admin
// made (a handful), plus "admin".
//
// Writing is off the request path: record counts the use and queues the
// line (auditQueue lines); one goroutine encodes and appends them through a
// 64 KiB buffer, hands the buffer to the file every auditFlushEvery (and
// when it fills) and fsyncs after each such flush that wrote something;
// Close drains the queue, flushes and fsyncs. A crash (SIGKILL, power cut)
// can lose at most the last auditFlushEvery of lines. When the queue is
// full (the disk stalls) record blocks until there is room: an audit trail
// with holes is worth less than a slow request, and the wait is counted in
// sealfs_audit_queue_full_total.

const (
	auditQueue      = 16384
	auditFlushEvery = time.Second
)

func auditFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "audit-log", EnvVars: []string{"SEALFS_AUDIT_LOG"}, Category: "Monitoring",
			Usage: "`FILE` the audit log of key use is appended to, one JSON object a line, written within 1 s (default: DATA/audit/key-use.jsonl; \"off\": none)"},
	}
}

// auditRecord is one line of the audit log.
type auditRecord struct {
	Time   time.Time `json:"time"`
	User   string    `json:"user"` // "admin": the admin's credentials, an admin mount, or the daemon's own work
	Action string    `json:"action"`
	KeyID  string    `json:"key_id"`
	KeyARN string    `json:"key_arn"`
	Bucket string    `json:"bucket,omitempty"` // empty for most administrative operations
	Object string    `json:"object_id,omitempty"`
	Detail string    `json:"detail,omitempty"` // an administrative operation's particulars
	Result string    `json:"result"`           // allowed, denied, failed
	Error  string    `json:"error,omitempty"`
}

// auditLog appends key uses to a file and counts them.
type auditLog struct {
	logger *slog.Logger
	uses   *prometheus.CounterVec // nil without --metrics
	full   prometheus.Counter     // nil without --metrics

	q    chan auditRecord // nil with --audit-log off
	done chan struct{}    // closed when the writer has drained q and flushed

	closeOnce sync.Once
	closeErr  error
	// mu makes record and Close safe together: senders hold it for
	// reading, Close takes it to close q, so a key use recorded by a
	// request that outlived the shutdown is logged, not a panic.
	mu     sync.RWMutex
	closed bool
}

// openAuditLog opens the audit log --audit-log names in dataDir and starts
// its writer.
func openAuditLog(c *cli.Context, dataDir string, logger *slog.Logger, m *metrics) (*auditLog, error) {
	a := &auditLog{logger: logger}
	if m != nil {
		a.uses, a.full = m.keyUses, m.auditFull
	}
	path := c.String("audit-log")
	if path == "off" {
		return a, nil
	}
	if path == "" {
		path = filepath.Join(dataDir, "audit", "key-use.jsonl")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	a.start(f, auditQueue, auditFlushEvery)
	return a, nil
}

// start runs the writer appending to f.
func (a *auditLog) start(f *os.File, queue int, every time.Duration) {
	a.q = make(chan auditRecord, queue)
	a.done = make(chan struct{})
	go a.writer(f, every)
}

// record is the store's Config.Audit.
func (a *auditLog) record(u cryptostore.KeyUse) {
	r := auditRecord{Time: u.Time, User: u.User, Action: u.Action, KeyID: u.KeyID, KeyARN: u.KeyARN, Bucket: u.Bucket, Object: u.Object, Detail: u.Detail, Result: "allowed"}
	if r.User == "" {
		r.User = "admin"
	}
	switch {
	case errors.Is(u.Err, iam.ErrAccessDenied):
		r.Result = "denied"
	case u.Err != nil:
		r.Result, r.Error = "failed", u.Err.Error()
	}
	if a.uses != nil {
		a.uses.WithLabelValues(r.Action, r.Result, r.User).Inc()
	}
	if a.q == nil {
		return
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	if a.closed {
		a.logger.Warn("key use after the audit log closed (not in the audit log)", "action", r.Action, "user", r.User, "key", r.KeyID, "bucket", r.Bucket, "object", r.Object, "result", r.Result)
		return
	}
	select {
	case a.q <- r:
	default:
		if a.full != nil {
			a.full.Inc()
		}
		a.q <- r // blocks: see above
	}
}

// writer encodes queued records into f until q is closed.
func (a *auditLog) writer(f *os.File, every time.Duration) {
	defer close(a.done)
	w := bufio.NewWriterSize(f, 64<<10)
	enc := json.NewEncoder(w)
	tick := time.NewTicker(every)
	defer tick.Stop()
	failed := false
	fail := func(err error) {
		if err != nil && !failed {
			failed = true
			a.logger.Error("writing the audit log failed; key uses go unrecorded there until restart", "err", err)
		}
	}
	dirty := false
	flush := func() {
		if !dirty {
			return
		}
		dirty = false
		if err := w.Flush(); err != nil {
			fail(err)
			return
		}
		fail(f.Sync())
	}
	for {
		select {
		case r, ok := <-a.q:
			if !ok {
				flush()
				a.closeErr = f.Close()
				return
			}
			if failed {
				continue
			}
			fail(enc.Encode(r))
			dirty = true
		case <-tick.C:
			flush()
		}
	}
}

// Close writes what is queued, syncs and closes the file. The store is
// closed first; a key use recorded after Close anyway (a request that
// outlived the listeners' shutdown) goes to the daemon's log instead.
func (a *auditLog) Close() error {
	if a == nil || a.q == nil {
		return nil
	}
	a.closeOnce.Do(func() {
		// Senders blocked on a full queue hold mu for reading; the
		// writer keeps draining, so they finish and Lock returns.
		a.mu.Lock()
		a.closed = true
		close(a.q)
		a.mu.Unlock()
		<-a.done
	})
	return a.closeErr
}
