package replicate

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmw "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/sealfs/sealfs/cryptostore"
	"github.com/sealfs/sealfs/s3/s3replica"
)

// dispatch hands ready queue items to the workers, oldest first, until ctx
// ends. An item is ready when no worker has its key, its own retry time has
// come, and its target is not held back after a failure. A scan that finds
// nothing to do is followed by a wait for Notify, a worker finishing, the
// next retry time or the poll interval, and is spaced from the next by ten
// times its own duration, so a long backlog waiting on a target that is
// down costs little.
func (m *Manager) dispatch(ctx context.Context, work chan<- *cryptostore.QueueItem) error {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		start := time.Now()
		batch, due, err := m.ready(ctx, 2*m.cfg.Workers)
		scan := time.Since(start)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			m.log.Error("reading the replication queue", "err", err)
			due = time.Now().Add(m.cfg.PollInterval)
		}
		for i, it := range batch {
			select {
			case work <- it:
			case <-ctx.Done():
				for _, rest := range batch[i:] {
					m.release(rest)
				}
				return nil
			}
		}
		if len(batch) > 0 {
			continue
		}
		wait := m.cfg.PollInterval
		if !due.IsZero() {
			wait = min(wait, max(time.Until(due), 0))
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return nil
		case <-m.wake:
		case <-timer.C:
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		if gap := 10*scan - time.Since(start); gap > 0 {
			if !sleep(ctx, min(gap, m.cfg.PollInterval)) {
				return nil
			}
		}
	}
}

// ready returns up to n ready items, marked in flight, and the earliest
// time an item not ready now may become ready (zero if none).
func (m *Manager) ready(ctx context.Context, n int) ([]*cryptostore.QueueItem, time.Time, error) {
	now := time.Now()
	held := make(map[string]time.Time)
	for _, tc := range m.knownClients() {
		if until, ok := tc.blocked(now); ok {
			held[tc.target.Region] = until
		}
	}
	var due time.Time
	note := func(t time.Time) {
		if due.IsZero() || t.Before(due) {
			due = t
		}
	}
	var batch []*cryptostore.QueueItem
	seen := make(map[string]bool)
	err := m.cfg.Queue.View(ctx, func(tx cryptostore.QueueTxn) error {
		return tx.ScanQueue(0, func(it *cryptostore.QueueItem) (bool, error) {
			k := inflightKey(it.Bucket, it.Key)
			m.mu.Lock()
			busy := m.inflight[k]
			m.mu.Unlock()
			var leased time.Time
			if m.lease != nil && !busy && !seen[k] {
				var err error
				if leased, err = m.lease.heldByOther(tx, it, now); err != nil {
					return false, err
				}
			}
			switch {
			case busy || seen[k]:
			case !leased.IsZero(): // another gateway works it (lease.go)
				note(leased)
			case it.NextAttempt.After(now):
				note(it.NextAttempt)
			case !held[it.Target].IsZero():
				note(held[it.Target])
			default:
				seen[k] = true
				batch = append(batch, it)
			}
			return len(batch) < n, nil
		})
	})
	if err != nil {
		return nil, due, err
	}
	m.mu.Lock()
	for _, it := range batch {
		m.inflight[inflightKey(it.Bucket, it.Key)] = true
	}
	m.mu.Unlock()
	return batch, due, nil
}

func (m *Manager) release(it *cryptostore.QueueItem) {
	m.mu.Lock()
	delete(m.inflight, inflightKey(it.Bucket, it.Key))
	m.mu.Unlock()
}

// work sends the items it is handed until ctx ends.
func (m *Manager) work(ctx context.Context, work <-chan *cryptostore.QueueItem) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case it := <-work:
			m.process(ctx, it)
			m.release(it)
			m.Notify()
		}
	}
}

// sleep waits d or until ctx ends, reporting whether it slept the whole
// time.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// attempt is the result of one try at an item.
type attempt struct {
	// id is the source version that was sent (or tried); zero when there
	// was nothing to send (a delete, or the object is gone).
	id cryptostore.ObjectID
	// tc is the target tried, if it was reached for.
	tc *targetClient
	// skipped: the target already held a newer version.
	skipped bool
	err     error
}

// process tries an item once and records the outcome.
func (m *Manager) process(ctx context.Context, it *cryptostore.QueueItem) {
	store := m.store.Load()
	// Since it was picked the item may have been replaced by a newer one or
	// finished: work from what is queued now.
	cur, err := m.queued(ctx, it.Seq)
	if err != nil || cur == nil {
		if err != nil && ctx.Err() == nil {
			m.log.Error("reading a replication queue item", "seq", it.Seq, "err", err)
		}
		return
	}
	it = cur
	if m.lease != nil {
		ok, release, err := m.lease.claim(ctx, it)
		if err != nil || !ok {
			if err != nil && ctx.Err() == nil {
				m.log.Warn("taking a replication lease", "bucket", it.Bucket, "key", it.Key, "err", err)
			}
			return // another gateway has it
		}
		defer release()
	}
	a := m.try(ctx, store, it)
	if ctx.Err() != nil {
		return // shutting down: the item stays queued
	}
	if err := m.settle(ctx, store, it, a); err != nil && ctx.Err() == nil {
		m.log.Error("recording a replication outcome", "bucket", it.Bucket, "key", it.Key, "err", err)
		sleep(ctx, m.cfg.RetryMaxDelay) // do not spin on a failing store
	}
}

func (m *Manager) queued(ctx context.Context, seq uint64) (*cryptostore.QueueItem, error) {
	var it *cryptostore.QueueItem
	err := m.cfg.Queue.View(ctx, func(tx cryptostore.QueueTxn) error {
		var err error
		it, err = tx.QueueItem(seq)
		if errors.Is(err, cryptostore.ErrNoSuchKey) {
			it, err = nil, nil
		}
		return err
	})
	return it, err
}

// Errors that end an item without a send.
var (
	errNoRule      = errors.New("no enabled replication rule applies to the key any more")
	errBadMetadata = errors.New("metadata cannot be sent as HTTP headers")
)

// try sends an item's work to its target once.
func (m *Manager) try(ctx context.Context, store *cryptostore.Store, it *cryptostore.QueueItem) attempt {
	b, err := store.GetBucket(ctx, it.Bucket)
	if errors.Is(err, cryptostore.ErrNoSuchBucket) {
		return attempt{} // the bucket went with its objects: nothing to do
	}
	if err != nil {
		return attempt{err: err}
	}
	cfg, err := m.parsed(b.Replication)
	if err != nil {
		return attempt{err: err}
	}
	var rule *Rule
	if cfg != nil {
		rule = cfg.Match(it.Key)
	}
	switch it.Op {
	case cryptostore.QueuePut:
		if rule == nil {
			return attempt{id: it.ObjectID, err: errNoRule}
		}
		return m.tryPut(ctx, store, it, rule)
	case cryptostore.QueueDelete:
		if rule == nil || !rule.Deletes {
			return attempt{} // deletes are no longer asked for
		}
		return m.tryDelete(ctx, store, it, rule)
	}
	return attempt{err: fmt.Errorf("queue item %d: unknown operation %v", it.Seq, it.Op)}
}

// headers returns the API option that adds the replica headers.
func (m *Manager) headers(sourceTime time.Time) func(*s3.Options) {
	return func(o *s3.Options) {
		o.APIOptions = append(o.APIOptions,
			smithyhttp.SetHeaderValue(s3replica.HeaderSourceMtime, s3replica.FormatSourceTime(sourceTime)),
			smithyhttp.SetHeaderValue(s3replica.HeaderSourceRegion, m.cfg.Region),
		)
	}
}

// withoutContentType sends a PutObject without the Content-Type the SDK
// adds when none is given (application/octet-stream): a replica of an
// object stored without one (everything written through the mount) is
// stored without one too, and answers S3's default, binary/octet-stream,
// as its source does.
func withoutContentType(o *s3.Options) {
	o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
		return stack.Build.Add(middleware.BuildMiddlewareFunc("sealfsNoDefaultContentType",
			func(ctx context.Context, in middleware.BuildInput, next middleware.BuildHandler) (middleware.BuildOutput, middleware.Metadata, error) {
				if req, ok := in.Request.(*smithyhttp.Request); ok {
					req.Header.Del("Content-Type")
				}
				return next.HandleBuild(ctx, in)
			}), middleware.After)
	})
}

func (m *Manager) tryPut(ctx context.Context, store *cryptostore.Store, it *cryptostore.QueueItem, rule *Rule) attempt {
	h, err := store.Open(ctx, it.Bucket, it.Key)
	if errors.Is(err, cryptostore.ErrNoSuchKey) || errors.Is(err, cryptostore.ErrNoSuchBucket) {
		return attempt{} // deleted since: a delete, if asked for, is queued
	}
	if err != nil {
		return attempt{id: it.ObjectID, err: err}
	}
	defer h.Close()
	obj := h.Object()
	a := attempt{id: obj.ID}
	if obj.ReplicationStatus == cryptostore.ReplicationReplica {
		return attempt{}
	}
	if err := checkHeaderValues(&obj.Meta); err != nil {
		a.err = err
		return a
	}
	tc, err := m.client(ctx, rule.Region)
	if err != nil {
		a.err = err
		return a
	}
	a.tc = tc
	in := &s3.PutObjectInput{
		Bucket:        aws.String(rule.Bucket),
		Key:           aws.String(obj.Key),
		Body:          h.Reader(0, obj.Size),
		ContentLength: aws.Int64(obj.Size),
		Metadata:      obj.Meta.User,
	}
	md := &obj.Meta
	if md.ContentType != "" {
		in.ContentType = aws.String(md.ContentType)
	}
	if md.ContentEncoding != "" {
		in.ContentEncoding = aws.String(md.ContentEncoding)
	}
	if md.ContentDisposition != "" {
		in.ContentDisposition = aws.String(md.ContentDisposition)
	}
	if md.ContentLanguage != "" {
		in.ContentLanguage = aws.String(md.ContentLanguage)
	}
	if md.CacheControl != "" {
		in.CacheControl = aws.String(md.CacheControl)
	}
	opts := []func(*s3.Options){m.headers(obj.VersionTime())}
	if md.ContentType == "" {
		opts = append(opts, withoutContentType)
	}
	if md.Expires != "" {
		// Sent as stored: the SDK would reformat a parsed time.
		opts = append(opts, func(o *s3.Options) {
			o.APIOptions = append(o.APIOptions, smithyhttp.SetHeaderValue("Expires", md.Expires))
		})
	}
	out, err := tc.s3.PutObject(ctx, in, opts...)
	if err == nil {
		a.skipped = skippedByTarget(out.ResultMetadata)
	} else if isPreconditionFailed(err) {
		a.skipped, err = true, nil
	}
	a.err = targetErr(err)
	return a
}

func (m *Manager) tryDelete(ctx context.Context, store *cryptostore.Store, it *cryptostore.QueueItem, rule *Rule) attempt {
	if _, err := store.Head(ctx, it.Bucket, it.Key); err == nil {
		return attempt{} // the key was written again since: that write is what counts
	} else if !errors.Is(err, cryptostore.ErrNoSuchKey) {
		return attempt{err: err}
	}
	tc, err := m.client(ctx, rule.Region)
	if err != nil {
		return attempt{err: err}
	}
	out, err := tc.s3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(rule.Bucket), Key: aws.String(it.Key)}, m.headers(it.VersionTime))
	a := attempt{tc: tc}
	if err == nil {
		a.skipped = skippedByTarget(out.ResultMetadata)
	} else if isPreconditionFailed(err) {
		a.skipped, err = true, nil
	}
	a.err = targetErr(err)
	return a
}

// skippedByTarget reports whether the target answered that it holds a
// newer version.
func skippedByTarget(md middleware.Metadata) bool {
	resp, ok := awsmw.GetRawResponse(md).(*smithyhttp.Response)
	return ok && resp != nil && resp.Header.Get(s3replica.HeaderSkipped) != ""
}

// checkHeaderValues refuses metadata that cannot travel as HTTP header
// values (control characters, which the mount's xattrs may hold).
func checkHeaderValues(m *cryptostore.ObjectMeta) error {
	check := func(name, v string) error {
		for i := 0; i < len(v); i++ {
			if c := v[i]; (c < 0x20 && c != '\t') || c == 0x7f {
				return fmt.Errorf("%w: %s holds control character %#x", errBadMetadata, name, c)
			}
		}
		return nil
	}
	for name, v := range map[string]string{
		"Content-Type": m.ContentType, "Content-Encoding": m.ContentEncoding,
		"Content-Disposition": m.ContentDisposition, "Content-Language": m.ContentLanguage,
		"Cache-Control": m.CacheControl, "Expires": m.Expires,
	} {
		if err := check(name, v); err != nil {
			return err
		}
	}
	for k, v := range m.User {
		if err := check("x-amz-meta-"+k, k+v); err != nil {
			return err
		}
		if k == "" || !validHeaderName(k) {
			return fmt.Errorf("%w: user metadata name %q", errBadMetadata, k)
		}
	}
	return nil
}

// validHeaderName reports whether s can follow "x-amz-meta-" in a header
// name (an HTTP token).
func validHeaderName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c == '!' || ('#' <= c && c <= '\'') || c == '*' || c == '+' || c == '-' || c == '.' ||
			('0' <= c && c <= '9') || ('A' <= c && c <= 'Z') || ('^' <= c && c <= 'z') || c == '|' || c == '~'
		if !ok {
			return false
		}
	}
	return true
}

// settle records the outcome of an attempt: the item leaves the queue and
// the source version is marked COMPLETED (sent, or the target had newer) or
// FAILED (a permanent error, or retries exhausted); or, after a transient
// error, the item is scheduled again with backoff and its target held back.
// A status is set only if the item is still the key's queued one and the
// object is still the version that was sent: a newer write has queued its
// own item and its own PENDING.
func (m *Manager) settle(ctx context.Context, store *cryptostore.Store, it *cryptostore.QueueItem, a attempt) error {
	now := time.Now().UTC()
	log := m.log.With("bucket", it.Bucket, "key", it.Key, "op", it.Op.String(), "target", it.Target)
	if a.err == nil {
		if a.tc != nil {
			a.tc.succeeded(now)
		}
		if a.skipped {
			m.skipped.Add(1)
		}
		m.completed.Add(1)
		log.Debug("replicated", "skipped", a.skipped)
		return m.finish(ctx, store, it, a.id, cryptostore.ReplicationCompleted)
	}
	permanent := Permanent(a.err)
	giveUp := !permanent && !it.FirstFailure.IsZero() && now.Sub(it.FirstFailure) >= m.cfg.RetryFor
	if permanent || giveUp {
		if a.tc != nil {
			a.tc.permanentError(now, a.err)
		}
		m.failed.Add(1)
		reason := "permanent error"
		if giveUp {
			reason = "retries exhausted"
		}
		log.Warn("replication failed", "reason", reason, "attempts", it.Attempts+1, "err", describe(a.err))
		id := a.id
		if id.IsZero() {
			id = it.ObjectID
		}
		return m.finish(ctx, store, it, id, cryptostore.ReplicationFailed)
	}
	if a.tc != nil {
		var te *targetError
		if errors.As(a.err, &te) {
			a.tc.failed(now, a.err, m.backoff)
		}
	}
	m.retried.Add(1)
	next := *it
	next.Attempts++
	if next.FirstFailure.IsZero() {
		next.FirstFailure = now
	}
	next.NextAttempt = now.Add(m.backoff.delay(int(next.Attempts)))
	next.LastError = truncate(describe(a.err), 512)
	log.Info("replication will be retried", "attempts", next.Attempts, "next", next.NextAttempt, "err", next.LastError)
	err := m.cfg.Queue.Update(ctx, func(tx cryptostore.QueueTxn) error {
		err := tx.UpdateQueueItem(&next)
		if errors.Is(err, cryptostore.ErrNoSuchKey) {
			return nil // replaced meanwhile by a newer item
		}
		return err
	})
	return err
}

// finish takes the item off the queue and, for a put, sets the status of
// the version id if the item was still the key's queued one.
func (m *Manager) finish(ctx context.Context, store *cryptostore.Store, it *cryptostore.QueueItem, id cryptostore.ObjectID, status string) error {
	dequeue := func(tx cryptostore.QueueTxn, _ *cryptostore.Object) (bool, error) { return tx.Dequeue(it.Seq) }
	if it.Op != cryptostore.QueuePut || id.IsZero() {
		return m.cfg.Queue.Update(ctx, func(tx cryptostore.QueueTxn) error {
			_, err := dequeue(tx, nil)
			return err
		})
	}
	_, err := store.SetReplicationStatus(ctx, &cryptostore.StatusUpdate{
		Bucket: it.Bucket, Key: it.Key, ID: id, Status: status, InTxn: dequeue,
	})
	return err
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// isPreconditionFailed reports a 412 answer: the target holds a newer
// version (an older sealfs answering a stale replica that way).
func isPreconditionFailed(err error) bool {
	var re *smithyhttp.ResponseError
	return errors.As(err, &re) && re.HTTPStatusCode() == http.StatusPreconditionFailed
}
