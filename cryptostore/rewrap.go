package cryptostore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sealfs/sealfs/kms"
	"github.com/sealfs/sealfs/meta"
)

// Rewrap: every object's data key wrapped again under its master key's
// current version, without touching a blob.
//
// Each object costs one KMS ReWrap and one metadata transaction, which
// re-reads the record and writes the new wrapping only if the record still
// holds the wrapping that was re-wrapped (compare-and-swap): an object
// overwritten or deleted meanwhile keeps what its writer stored. The
// record's wrapped key is the only field that changes, so every object is
// readable at every moment (the old version keeps unwrapping the old
// wrapping until it is retired).
//
// Progress is kept in a configuration record (rewrapCheckpointPrefix +
// scope), written in the same transaction as the object it follows, and
// after every page of keys: a rewrap that stops (crash, SIGKILL, restart)
// and is started again with the same scope continues after the last object
// it recorded. A finished rewrap removes its record.

// rewrapCheckpointPrefix names the configuration records that hold a
// rewrap's progress, one per scope.
const rewrapCheckpointPrefix = "kms/rewrap/"

// RewrapOptions selects what Rewrap re-wraps.
type RewrapOptions struct {
	Bucket string // "" → every bucket
	KeyID  string // "" → every key; else only objects under this master key (id)
	// Rate bounds objects re-wrapped per second; 0 → unthrottled.
	Rate float64
	// Progress, if set, is called after each object with the counts so far.
	Progress func(RewrapReport)
}

// RewrapReport is what a rewrap did.
type RewrapReport struct {
	Objects   int64    `json:"objects"`   // objects looked at
	Rewrapped int64    `json:"rewrapped"` // wrapped again under the current version
	Current   int64    `json:"current"`   // already under the current version
	Skipped   int64    `json:"skipped"`   // plain, or under another key
	Raced     int64    `json:"raced"`     // overwritten or deleted meanwhile: the newer version stands
	Failed    []Damage `json:"failed,omitempty"`
	// ResumedAt is where a previous run of the same scope had stopped
	// ("bucket/key"); "" for a fresh start.
	ResumedAt string `json:"resumed_at,omitempty"`
	Finished  bool   `json:"finished"`
}

type rewrapCheckpoint struct {
	Bucket string `json:"bucket"`
	After  string `json:"after"` // last key done in Bucket
	// Purge (encrypt-existing) lists the ids (hex) of plain inline objects
	// replaced since the last purge of the metadata engine's files.
	Purge []string `json:"purge,omitempty"`
}

func rewrapScope(opts RewrapOptions) string {
	return rewrapCheckpointPrefix + "bucket=" + opts.Bucket + ";key=" + opts.KeyID
}

// Rewrap re-wraps the data keys of the objects opts selects (see above). A
// failure on one object (its key disabled, say) is reported in Failed and
// the rewrap goes on; the checkpoint does not move past a failed object's
// page, so a later run tries it again. It returns an error only when it
// cannot go on (ctx ended, metadata unreachable).
func (s *Store) Rewrap(ctx context.Context, opts RewrapOptions) (_ *RewrapReport, err error) {
	if opts.KeyID != "" {
		md, err := s.kms.DescribeKey(ctx, &kms.KeyRequest{KeyID: opts.KeyID})
		if err != nil {
			return nil, kmsErr(err)
		}
		opts.KeyID = md.KeyID
	}
	buckets, err := s.scopeBuckets(ctx, opts.Bucket)
	if err != nil {
		return nil, err
	}
	scope := rewrapScope(opts)
	rep := &RewrapReport{}
	cp, err := s.loadCheckpoint(ctx, scope)
	if err != nil {
		return nil, err
	}
	if cp != nil {
		rep.ResumedAt = cp.Bucket + "/" + cp.After
		s.logger.Info("rewrap: resuming", "scope", scope, "after", rep.ResumedAt)
	}
	// The audit log has a line when the job starts and one when it ends,
	// with its counts (not one per object: a rewrap of millions of objects
	// would drown the log).
	start := "started"
	if rep.ResumedAt != "" {
		start = "resumed after " + rep.ResumedAt
	}
	s.auditKeyAdminDetail(ctx, "kms:ReWrap", opts.KeyID, opts.Bucket, start, nil)
	defer func() {
		detail := fmt.Sprintf("finished: %d objects, %d rewrapped, %d current, %d skipped, %d raced, %d failed",
			rep.Objects, rep.Rewrapped, rep.Current, rep.Skipped, rep.Raced, len(rep.Failed))
		aerr := err
		if aerr != nil {
			detail = "stopped" + strings.TrimPrefix(detail, "finished")
		} else if len(rep.Failed) > 0 {
			aerr = fmt.Errorf("%d objects not re-wrapped: %s/%s: %s", len(rep.Failed), rep.Failed[0].Bucket, rep.Failed[0].Key, rep.Failed[0].Err)
		}
		s.auditKeyAdminDetail(context.WithoutCancel(ctx), "kms:ReWrap", opts.KeyID, opts.Bucket, detail, aerr)
	}()
	pace := newPacer(opts.Rate)
	for _, bucket := range buckets {
		if cp != nil && bucket < cp.Bucket {
			continue
		}
		after := ""
		if cp != nil && bucket == cp.Bucket {
			after = cp.After
		}
		for {
			keys, more, err := s.objectKeys(ctx, bucket, after, 256)
			if err != nil {
				return rep, err
			}
			for _, key := range keys {
				if err := pace.wait(ctx); err != nil {
					return rep, err
				}
				// The checkpoint follows the objects only while none
				// has failed: a later run starts again before the
				// first failure.
				err := s.rewrapOne(ctx, bucket, key, opts.KeyID, scope, len(rep.Failed) == 0, rep)
				if err := ctx.Err(); err != nil {
					return rep, err
				}
				rep.Objects++
				if err != nil {
					rep.Failed = append(rep.Failed, Damage{Bucket: bucket, Key: key, Err: err.Error()})
					s.logger.Warn("rewrap: object not re-wrapped", "bucket", bucket, "key", key, "err", err)
				}
				if opts.Progress != nil {
					opts.Progress(*rep)
				}
			}
			if len(keys) > 0 && len(rep.Failed) == 0 {
				after = keys[len(keys)-1]
				if err := s.saveCheckpoint(ctx, scope, rewrapCheckpoint{Bucket: bucket, After: after}); err != nil {
					return rep, err
				}
			} else if len(keys) > 0 {
				after = keys[len(keys)-1]
			}
			if !more {
				break
			}
		}
	}
	if len(rep.Failed) == 0 {
		if err := s.meta.Update(ctx, func(tx *meta.Txn) error {
			err := tx.DeleteConfig(scope)
			if errors.Is(err, meta.ErrNoSuchConfig) {
				err = nil
			}
			return err
		}); err != nil {
			return rep, err
		}
	}
	rep.Finished = true
	s.logger.Info("rewrap finished", "scope", scope, "objects", rep.Objects, "rewrapped", rep.Rewrapped,
		"current", rep.Current, "skipped", rep.Skipped, "raced", rep.Raced, "failed", len(rep.Failed))
	return rep, nil
}

// rewrapOne re-wraps one object's data key and stores it if the record is
// unchanged, moving the checkpoint in the same transaction.
func (s *Store) rewrapOne(ctx context.Context, bucket, key, keyID, scope string, moveCheckpoint bool, rep *RewrapReport) error {
	var o *meta.Object
	err := s.meta.View(ctx, func(tx *meta.Txn) (err error) {
		o, err = tx.GetObject(bucket, key)
		return err
	})
	if errors.Is(err, ErrNoSuchKey) {
		rep.Raced++
		return nil
	}
	if err != nil {
		return err
	}
	if o.Encryption == nil || (keyID != "" && o.Encryption.KeyID != keyID) {
		rep.Skipped++
		return nil
	}
	rw, err := s.kms.ReWrap(ctx, &kms.ReWrapRequest{KeyID: o.Encryption.KeyID, Ciphertext: o.Encryption.WrappedKey, Context: encContext(bucket, keyObject(o))})
	if err != nil {
		return kmsErr(err)
	}
	if !rw.Changed {
		rep.Current++
		return nil
	}
	raced := false
	err = s.meta.Update(ctx, func(tx *meta.Txn) error {
		raced = false
		cur, err := tx.GetObject(bucket, key)
		if errors.Is(err, ErrNoSuchKey) {
			raced = true
			return nil
		}
		if err != nil {
			return err
		}
		if cur.ID != o.ID || cur.Encryption == nil || !bytes.Equal(cur.Encryption.WrappedKey, o.Encryption.WrappedKey) {
			raced = true
			return nil
		}
		cur.Encryption.KeyID = rw.KeyID
		cur.Encryption.KeyVersion = rw.Version
		cur.Encryption.WrappedKey = rw.Ciphertext
		if err := tx.PutObject(cur); err != nil {
			return err
		}
		if !moveCheckpoint {
			return nil
		}
		return putCheckpoint(tx, scope, rewrapCheckpoint{Bucket: bucket, After: key})
	})
	if err != nil {
		return err
	}
	if raced {
		rep.Raced++
	} else {
		rep.Rewrapped++
	}
	return nil
}

// scopeBuckets is one bucket (which must exist) or every bucket, in name
// order.
func (s *Store) scopeBuckets(ctx context.Context, bucket string) ([]string, error) {
	if bucket != "" {
		if _, err := s.GetBucket(ctx, bucket); err != nil {
			return nil, err
		}
		return []string{bucket}, nil
	}
	bs, err := s.ListBuckets(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(bs))
	for _, b := range bs {
		out = append(out, b.Name)
	}
	return out, nil
}

func (s *Store) objectKeys(ctx context.Context, bucket, after string, max int) (keys []string, more bool, err error) {
	err = s.meta.View(ctx, func(tx *meta.Txn) error {
		keys, more, err = tx.ObjectKeys(bucket, after, max)
		return err
	})
	return keys, more, err
}

func (s *Store) loadCheckpoint(ctx context.Context, name string) (*rewrapCheckpoint, error) {
	var cp *rewrapCheckpoint
	err := s.meta.View(ctx, func(tx *meta.Txn) error {
		v, err := tx.GetConfig(name)
		if errors.Is(err, meta.ErrNoSuchConfig) {
			return nil
		}
		if err != nil {
			return err
		}
		cp = &rewrapCheckpoint{}
		if err := json.Unmarshal(v, cp); err != nil {
			return fmt.Errorf("cryptostore: checkpoint %s: %w", name, err)
		}
		return nil
	})
	return cp, err
}

func (s *Store) saveCheckpoint(ctx context.Context, name string, cp rewrapCheckpoint) error {
	return s.meta.Update(ctx, func(tx *meta.Txn) error { return putCheckpoint(tx, name, cp) })
}

func putCheckpoint(tx *meta.Txn, name string, cp rewrapCheckpoint) error {
	v, err := json.Marshal(cp)
	if err != nil {
		return err
	}
	return tx.PutConfig(name, v)
}

// pacer spaces calls rate per second apart; a zero rate never waits.
type pacer struct {
	every time.Duration
	next  time.Time
}

func newPacer(rate float64) *pacer {
	if rate <= 0 {
		return &pacer{}
	}
	return &pacer{every: time.Duration(float64(time.Second) / rate)}
}

func (p *pacer) wait(ctx context.Context) error {
	if p.every == 0 {
		return ctx.Err()
	}
	now := time.Now()
	if p.next.IsZero() || p.next.Before(now) {
		p.next = now
	}
	d := p.next.Sub(now)
	p.next = p.next.Add(p.every)
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// KeyVersionUse counts, for every master key, the objects and multipart
// uploads in progress whose data key each of its versions wraps. It reads
// every object record (one metadata read per object, in pages).
func (s *Store) KeyVersionUse(ctx context.Context) (map[string]map[uint32]int64, error) {
	buckets, err := s.scopeBuckets(ctx, "")
	if err != nil {
		return nil, err
	}
	use := make(map[string]map[uint32]int64)
	count := func(e *meta.Encryption) {
		if use[e.KeyID] == nil {
			use[e.KeyID] = make(map[uint32]int64)
		}
		use[e.KeyID][e.KeyVersion]++
	}
	for _, bucket := range buckets {
		after := ""
		for {
			var more bool
			err := s.meta.View(ctx, func(tx *meta.Txn) error {
				keys, m, err := tx.ObjectKeys(bucket, after, 512)
				if err != nil {
					return err
				}
				more = m
				for _, k := range keys {
					after = k
					o, err := tx.GetObject(bucket, k)
					if errors.Is(err, ErrNoSuchKey) {
						continue
					}
					if err != nil {
						return err
					}
					if o.Encryption != nil {
						count(o.Encryption)
					}
				}
				return nil
			})
			if err != nil {
				return nil, err
			}
			if !more {
				break
			}
		}
		// Multipart uploads in progress hold a wrapped data key too.
		lo := meta.UploadListOptions{}
		for {
			var page *meta.UploadPage
			err := s.meta.View(ctx, func(tx *meta.Txn) (err error) {
				page, err = tx.ListUploads(bucket, lo)
				return err
			})
			if err != nil {
				return nil, err
			}
			for _, u := range page.Uploads {
				if u.Encryption != nil {
					count(u.Encryption)
				}
			}
			if !page.IsTruncated {
				break
			}
			lo.KeyMarker, lo.UploadIDMarker = page.NextKeyMarker, page.NextUploadIDMarker
		}
	}
	return use, nil
}

// ErrKeyVersionInUse: a key version cannot be retired while objects (or
// multipart uploads in progress) still use it.
var ErrKeyVersionInUse = errors.New("objects still use this key version")

// RetireKeyVersion retires an old version of a master key (by id, ARN) once
// no object and no upload in progress uses it (ErrKeyVersionInUse
// otherwise: run Rewrap first): from then on it unwraps nothing. The system
// key's versions are never retired (ErrSystemKey): they wrap the
// record-authentication key.
func (s *Store) RetireKeyVersion(ctx context.Context, keyID string, version uint32) (md *KeyMetadata, err error) {
	defer func() {
		if md != nil {
			keyID = md.KeyID
		}
		s.auditKeyAdminDetail(ctx, "kms:RetireKeyVersion", keyID, "", fmt.Sprintf("version %d", version), err)
	}()
	md, err = s.kms.DescribeKey(ctx, &kms.KeyRequest{KeyID: keyID})
	if err != nil {
		return nil, err
	}
	sys, err := s.SystemKeyID(ctx)
	if err != nil {
		return nil, err
	}
	if md.KeyID == sys {
		return nil, fmt.Errorf("key %s: %w", sys, ErrSystemKey)
	}
	keyID, md = md.KeyID, nil
	use, err := s.KeyVersionUse(ctx)
	if err != nil {
		return nil, err
	}
	if n := use[keyID][version]; n > 0 {
		return nil, fmt.Errorf("%w: %d objects or uploads under key %s version %d (run sealfs kms rewrap first)", ErrKeyVersionInUse, n, keyID, version)
	}
	return s.kms.RetireVersion(ctx, &kms.RetireVersionRequest{KeyID: keyID, Version: version})
}
