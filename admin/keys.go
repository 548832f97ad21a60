package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/sealfs/sealfs/cryptostore"
)

// Key lifecycle jobs: rewrap (data keys wrapped again under their master
// key's current version). They run in the daemon; the CLI starts one and
// polls it, as it does a scrub.

func (a *API) keyRoutes() {
	a.handle("POST kms/rewrap", adminJSON(a.startRewrap))
	a.handle("GET kms/rewrap/{id}", adminJSON(a.rewrapStatus))
	a.handle("POST kms/keys/{key}/versions/{version}/retire", adminJSON(a.retireVersion))
	a.handle("PUT kms/keys/{key}/rotation", adminJSON(a.setRotation))
	a.handle("POST kms/keys/{key}/delete", adminJSON(a.scheduleDeletion))
	a.handle("POST buckets/{bucket}/shred", adminJSON(a.shredBucket))
	a.handle("POST kms/keys/{key}/cancel-deletion", adminJSON(a.cancelDeletion))
	a.handle("POST buckets/{bucket}/encrypt-existing", adminJSON(a.startEncryptExisting))
	a.handle("GET encrypt-existing/{id}", adminJSON(a.encryptStatus))
}

// EncryptExistingInput is the body of POST buckets/{bucket}/encrypt-existing.
type EncryptExistingInput struct {
	Prefix string  `json:"prefix"`
	Rate   float64 `json:"rate"` // objects per second; 0: unthrottled
}

// EncryptJob is an encrypt-existing run's state.
type EncryptJob struct {
	ID     string                    `json:"id"`
	Bucket string                    `json:"bucket"`
	Prefix string                    `json:"prefix,omitempty"`
	Report cryptostore.EncryptReport `json:"report"`
	Error  string                    `json:"error,omitempty"`
	Done   bool                      `json:"done"`
}

// startEncryptExisting starts rewriting a bucket's objects that are not
// encrypted under its key (409 BucketNotEncrypting on a bucket without
// default encryption).
func (a *API) startEncryptExisting(r *http.Request, in *EncryptExistingInput) (*EncryptJob, error) {
	bucket := r.PathValue("bucket")
	if in.Rate < 0 {
		return nil, adminErr(http.StatusBadRequest, "InvalidArgument", "rate must not be negative")
	}
	b, err := a.store.GetBucket(r.Context(), bucket)
	if err != nil {
		return nil, storeAdminErr(err)
	}
	if !b.EncryptionOn {
		return nil, adminErr(http.StatusConflict, "BucketNotEncrypting", fmt.Sprintf("bucket %s: %v", bucket, cryptostore.ErrBucketNotEncrypting))
	}
	job := &EncryptJob{Bucket: bucket, Prefix: in.Prefix}
	job.ID = a.encrypts.add("encrypt", job)
	opts := cryptostore.EncryptExistingOptions{
		Bucket: bucket,
		Prefix: in.Prefix,
		Rate:   in.Rate,
		Progress: func(p cryptostore.EncryptReport) {
			a.encrypts.with(job.ID, func(j *EncryptJob) { j.Report = p })
		},
	}
	go func() {
		rep, err := a.store.EncryptExisting(context.Background(), opts)
		a.encrypts.with(job.ID, func(j *EncryptJob) {
			if rep != nil {
				j.Report = *rep
			}
			if err != nil {
				j.Error = err.Error()
			}
			j.Done = true
		})
	}()
	return a.encryptSnapshot(job.ID)
}

func (a *API) encryptStatus(r *http.Request, _ *none) (*EncryptJob, error) {
	return a.encryptSnapshot(r.PathValue("id"))
}

func (a *API) encryptSnapshot(id string) (*EncryptJob, error) {
	var c EncryptJob
	if !a.encrypts.with(id, func(j *EncryptJob) {
		c = *j
		c.Report.Failed = append([]cryptostore.Damage(nil), j.Report.Failed...)
	}) {
		return nil, adminErr(http.StatusNotFound, "NoSuchJob", "no such encrypt-existing run: "+id)
	}
	return &c, nil
}

// retireVersion retires an old version of a key (named by id, ARN or a
// bucket using it) that no object uses any more (409 KeyVersionInUse
// otherwise).
func (a *API) retireVersion(r *http.Request, _ *none) (*cryptostore.KeyMetadata, error) {
	ctx := r.Context()
	id := r.PathValue("key")
	if b, err := a.store.GetBucket(ctx, id); err == nil && b.MasterKeyID != "" {
		id = b.MasterKeyID
	}
	v, err := strconv.ParseUint(r.PathValue("version"), 10, 32)
	if err != nil || v == 0 {
		return nil, adminErr(http.StatusBadRequest, "InvalidArgument", "the version is a number from 1")
	}
	md, err := a.store.RetireKeyVersion(ctx, id, uint32(v))
	if errors.Is(err, cryptostore.ErrKeyVersionInUse) {
		return nil, adminErr(http.StatusConflict, "KeyVersionInUse", err.Error())
	}
	if err != nil {
		return nil, kmsAdminErr(err)
	}
	return md, nil
}

// RewrapInput is the body of POST kms/rewrap. Target is a bucket's name, a
// key id or ARN, or "" for every object.
type RewrapInput struct {
	Target string  `json:"target"`
	Rate   float64 `json:"rate"` // objects per second; 0: unthrottled
}

// RewrapJob is a rewrap's state.
type RewrapJob struct {
	ID     string                   `json:"id"`
	Bucket string                   `json:"bucket,omitempty"`
	KeyID  string                   `json:"key_id,omitempty"`
	Report cryptostore.RewrapReport `json:"report"`
	Error  string                   `json:"error,omitempty"`
	Done   bool                     `json:"done"`
}

// jobs is a set of background jobs of one kind, by id.
type jobs[J any] struct {
	mu   sync.Mutex
	next int
	m    map[string]*J
}

func (s *jobs[J]) add(prefix string, j *J) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = make(map[string]*J)
	}
	s.next++
	id := fmt.Sprintf("%s-%d", prefix, s.next)
	s.m[id] = j
	return id
}

// with runs fn on job id under the lock.
func (s *jobs[J]) with(id string, fn func(*J)) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.m[id]
	if ok {
		fn(j)
	}
	return ok
}

func (a *API) startRewrap(r *http.Request, in *RewrapInput) (*RewrapJob, error) {
	ctx := r.Context()
	if in.Rate < 0 {
		return nil, adminErr(http.StatusBadRequest, "InvalidArgument", "rate must not be negative")
	}
	job := &RewrapJob{}
	if in.Target != "" {
		if b, err := a.store.GetBucket(ctx, in.Target); err == nil {
			job.Bucket = b.Name
		} else {
			md, err := a.store.DescribeKey(ctx, in.Target)
			if err != nil {
				return nil, kmsAdminErr(fmt.Errorf("%s is neither a bucket nor a key: %w", in.Target, err))
			}
			job.KeyID = md.KeyID
		}
	}
	job.ID = a.rewraps.add("rewrap", job)
	opts := cryptostore.RewrapOptions{
		Bucket: job.Bucket,
		KeyID:  job.KeyID,
		Rate:   in.Rate,
		Progress: func(p cryptostore.RewrapReport) {
			a.rewraps.with(job.ID, func(j *RewrapJob) { j.Report = p })
		},
	}
	go func() {
		rep, err := a.store.Rewrap(context.Background(), opts)
		a.rewraps.with(job.ID, func(j *RewrapJob) {
			if rep != nil {
				j.Report = *rep
			}
			if err != nil {
				j.Error = err.Error()
			}
			j.Done = true
		})
	}()
	return a.rewrapSnapshot(job.ID)
}

func (a *API) rewrapStatus(r *http.Request, _ *none) (*RewrapJob, error) {
	return a.rewrapSnapshot(r.PathValue("id"))
}

func (a *API) rewrapSnapshot(id string) (*RewrapJob, error) {
	var c RewrapJob
	if !a.rewraps.with(id, func(j *RewrapJob) {
		c = *j
		c.Report.Failed = append([]cryptostore.Damage(nil), j.Report.Failed...)
	}) {
		return nil, adminErr(http.StatusNotFound, "NoSuchJob", "no such rewrap: "+id)
	}
	return &c, nil
}

// DeleteKeyInput is the body of POST kms/keys/{key}/delete.
type DeleteKeyInput struct {
	AfterDays int `json:"after_days"` // 7 to 30; 0 means 30
	// AfterSeconds, if set, is the waiting period instead: a test-only
	// short one, refused unless the daemon runs with
	// SEALFS_TEST_SHORT_KEY_DELETION=1 (and by an external KMS).
	AfterSeconds int `json:"after_seconds,omitempty"`
}

// ShortKeyDeletionEnv, set to 1 in the daemon's environment, lets a key's
// deletion be scheduled seconds away (DeleteKeyInput.AfterSeconds): for
// tests that see a deletion date pass, never for a real store.
const ShortKeyDeletionEnv = "SEALFS_TEST_SHORT_KEY_DELETION"

// deletion checks in and makes the store's request for the key.
func (in *DeleteKeyInput) deletion(keyID, bucket string) (cryptostore.KeyDeletion, error) {
	d := cryptostore.KeyDeletion{KeyID: keyID, Days: in.AfterDays, Bucket: bucket}
	if in.AfterSeconds != 0 {
		if os.Getenv(ShortKeyDeletionEnv) != "1" || in.AfterSeconds < 0 {
			return d, adminErr(http.StatusBadRequest, "InvalidArgument", fmt.Sprintf("a waiting period of %ds: the waiting period is 7 to 30 days (shorter ones are for tests, with %s=1 on the daemon)", in.AfterSeconds, ShortKeyDeletionEnv))
		}
		d.Pending = time.Duration(in.AfterSeconds) * time.Second
		return d, nil
	}
	if in.AfterDays != 0 && (in.AfterDays < 7 || in.AfterDays > 30) {
		return d, adminErr(http.StatusBadRequest, "InvalidArgument", fmt.Sprintf("the waiting period is 7 to 30 days, not %d", in.AfterDays))
	}
	return d, nil
}

// keyName resolves a bucket's name to its master key; anything else is
// passed on as a key id or ARN.
func (a *API) keyName(r *http.Request) string {
	id := r.PathValue("key")
	if b, err := a.store.GetBucket(r.Context(), id); err == nil && b.MasterKeyID != "" {
		return b.MasterKeyID
	}
	return id
}

// scheduleDeletion schedules a key's deletion (crypto-shredding: its
// objects become unrecoverable on the deletion date).
func (a *API) scheduleDeletion(r *http.Request, in *DeleteKeyInput) (*cryptostore.KeyMetadata, error) {
	d, err := in.deletion(a.keyName(r), "")
	if err != nil {
		return nil, err
	}
	md, err := a.store.ScheduleDeletion(r.Context(), d)
	if err != nil {
		return nil, kmsAdminErr(err)
	}
	return md, nil
}

// cancelDeletion cancels a scheduled deletion; the key is left disabled.
func (a *API) cancelDeletion(r *http.Request, _ *none) (*cryptostore.KeyMetadata, error) {
	md, err := a.store.CancelKeyDeletion(r.Context(), a.keyName(r))
	if err != nil {
		return nil, kmsAdminErr(err)
	}
	return md, nil
}

// RotationInput is the body of PUT kms/keys/{key}/rotation.
type RotationInput struct {
	EveryDays int `json:"every_days"` // 0 turns automatic rotation off
}

// setRotation sets a key's automatic rotation period.
func (a *API) setRotation(r *http.Request, in *RotationInput) (*KeyInfo, error) {
	if in.EveryDays < 0 {
		return nil, adminErr(http.StatusBadRequest, "InvalidArgument", "every_days must not be negative")
	}
	md, err := a.store.SetKeyRotation(r.Context(), a.keyName(r), time.Duration(in.EveryDays)*24*time.Hour)
	if err != nil {
		return nil, kmsAdminErr(err)
	}
	ki := &KeyInfo{KeyMetadata: *md}
	if in.EveryDays > 0 {
		ki.RotateEveryDays = in.EveryDays
		ki.NextRotation = md.CurrentVersionCreated.Add(time.Duration(in.EveryDays) * 24 * time.Hour)
	}
	return ki, nil
}

// ShredResult answers POST buckets/{bucket}/shred.
type ShredResult struct {
	Bucket string                   `json:"bucket"`
	Key    *cryptostore.KeyMetadata `json:"key,omitempty"` // nil: the bucket never had a master key
}

// shredBucket removes an empty bucket and schedules its master key's
// deletion (crypto-shredding every copy of its former objects' blobs).
func (a *API) shredBucket(r *http.Request, in *DeleteKeyInput) (*ShredResult, error) {
	ctx := r.Context()
	name := r.PathValue("bucket")
	d, err := in.deletion("", name)
	if err != nil {
		return nil, err
	}
	b, err := a.store.GetBucket(ctx, name)
	if err != nil {
		return nil, storeAdminErr(err)
	}
	if err := a.store.DeleteBucket(ctx, name); err != nil {
		return nil, storeAdminErr(err)
	}
	res := &ShredResult{Bucket: name}
	if b.MasterKeyID == "" {
		return res, nil
	}
	d.KeyID = b.MasterKeyID
	if res.Key, err = a.store.ScheduleDeletion(ctx, d); err != nil {
		return nil, kmsAdminErr(fmt.Errorf("bucket %s was removed, but its key %s could not be scheduled for deletion (sealfs kms delete %s): %w", name, b.MasterKeyID, b.MasterKeyID, err))
	}
	return res, nil
}

// KeyRotation is a key rotated on a schedule, as the status shows it.
type KeyRotation struct {
	KeyID        string    `json:"key_id"`
	EveryDays    int       `json:"every_days"`
	NextRotation time.Time `json:"next_rotation"`
}

// rotations lists the keys with a rotation period, soonest due first.
func (a *API) rotations(ctx context.Context) ([]KeyRotation, error) {
	periods, err := a.store.KeyRotations(ctx)
	if err != nil || len(periods) == 0 {
		return nil, err
	}
	var out []KeyRotation
	for id, every := range periods {
		md, err := a.store.DescribeKey(ctx, id)
		if err != nil {
			continue // deleted since: nothing to rotate
		}
		out = append(out, KeyRotation{KeyID: md.KeyID, EveryDays: int(every / (24 * time.Hour)), NextRotation: md.CurrentVersionCreated.Add(every)})
	}
	slices.SortFunc(out, func(x, y KeyRotation) int { return x.NextRotation.Compare(y.NextRotation) })
	return out, nil
}
