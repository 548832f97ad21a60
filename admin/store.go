package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/sealfs/sealfs/cryptostore"
	"github.com/sealfs/sealfs/replicate"
)

// Admin routes for buckets, keys, status and scrub (the commands in
// bucket.go, kms.go, status.go and scrub.go).

func (a *API) storeRoutes() {
	a.handle("GET buckets", adminJSON(a.listBuckets))
	a.handle("POST buckets", adminJSON(a.createBucket))
	a.handle("DELETE buckets/{bucket}", adminJSON(a.deleteBucket))
	a.handle("GET buckets/{bucket}/encryption", adminJSON(a.getEncryption))
	a.handle("PUT buckets/{bucket}/encryption", adminJSON(a.setEncryption))
	a.handle("GET kms/keys", adminJSON(a.listKeys))
	a.handle("POST kms/keys/{key}/{action}", adminJSON(a.keyAction))
	a.handle("GET status", adminJSON(a.status))
	a.handle("POST scrub", adminJSON(a.startScrub))
	a.handle("GET scrub/{id}", adminJSON(a.scrubStatus))
	a.keyRoutes() // keys.go
}

// BucketInfo is a bucket as the admin API shows it.
type BucketInfo struct {
	Name       string    `json:"name"`
	Region     string    `json:"region"`
	Created    time.Time `json:"created"`
	Encryption bool      `json:"default_encryption"`
	KeyID      string    `json:"key_id,omitempty"`
}

func (a *API) listBuckets(r *http.Request, _ *none) ([]BucketInfo, error) {
	bs, err := a.store.ListBuckets(r.Context())
	if err != nil {
		return nil, err
	}
	out := make([]BucketInfo, 0, len(bs))
	for _, b := range bs {
		out = append(out, BucketInfo{Name: b.Name, Region: b.Region, Created: b.Created, Encryption: b.EncryptionOn, KeyID: b.MasterKeyID})
	}
	return out, nil
}

// CreateBucketInput is the body of POST buckets.
type CreateBucketInput struct {
	Name       string `json:"name"`
	Region     string `json:"region"`
	Encryption bool   `json:"default_encryption"`
}

func (a *API) createBucket(r *http.Request, in *CreateBucketInput) (*none, error) {
	if err := a.store.CreateBucket(r.Context(), in.Name, in.Region); err != nil {
		return nil, storeAdminErr(err)
	}
	if in.Encryption {
		if err := a.store.SetBucketEncryption(r.Context(), in.Name, true); err != nil {
			return nil, storeAdminErr(err)
		}
	}
	return &none{}, nil
}

func (a *API) deleteBucket(r *http.Request, _ *none) (*none, error) {
	return &none{}, storeAdminErr(a.store.DeleteBucket(r.Context(), r.PathValue("bucket")))
}

// EncryptionSetting is a bucket's default encryption (GET and PUT
// buckets/{bucket}/encryption).
type EncryptionSetting struct {
	Encryption bool   `json:"default_encryption"`
	Algorithm  string `json:"algorithm,omitempty"`
	KeyARN     string `json:"key_arn,omitempty"`
}

func (a *API) getEncryption(r *http.Request, _ *none) (*EncryptionSetting, error) {
	b, err := a.store.GetBucket(r.Context(), r.PathValue("bucket"))
	if err != nil {
		return nil, storeAdminErr(err)
	}
	out := &EncryptionSetting{Encryption: b.EncryptionOn}
	if b.EncryptionOn {
		out.Algorithm = cryptostore.Algorithm
		if b.MasterKeyID != "" {
			out.KeyARN = a.store.KeyARN(b.MasterKeyID)
		}
	}
	return out, nil
}

func (a *API) setEncryption(r *http.Request, in *EncryptionSetting) (*EncryptionSetting, error) {
	if err := a.store.SetBucketEncryption(r.Context(), r.PathValue("bucket"), in.Encryption); err != nil {
		return nil, storeAdminErr(err)
	}
	return a.getEncryption(r, nil)
}

// KeyInfo is a master key and the buckets using it.
type KeyInfo struct {
	cryptostore.KeyMetadata
	Buckets []string `json:"buckets,omitempty"`
	// VersionsInUse counts the objects whose data key each version of the
	// key wraps (versions no object uses are absent).
	VersionsInUse map[uint32]int64 `json:"versions_in_use,omitempty"`
	// RotateEveryDays is the automatic rotation period (0: off), and
	// NextRotation when it is due (keys.go).
	RotateEveryDays int       `json:"rotate_every_days,omitempty"`
	NextRotation    time.Time `json:"next_rotation,omitzero"`
}

func (a *API) listKeys(r *http.Request, _ *none) ([]KeyInfo, error) {
	keys, err := a.store.Keys(r.Context())
	if err != nil {
		return nil, err
	}
	bs, err := a.store.ListBuckets(r.Context())
	if err != nil {
		return nil, err
	}
	use, err := a.store.KeyVersionUse(r.Context())
	if err != nil {
		return nil, err
	}
	periods, err := a.store.KeyRotations(r.Context())
	if err != nil {
		return nil, err
	}
	out := make([]KeyInfo, 0, len(keys))
	for _, k := range keys {
		ki := KeyInfo{KeyMetadata: *k, VersionsInUse: use[k.KeyID]}
		if every := periods[k.KeyID]; every > 0 {
			ki.RotateEveryDays = int(every / (24 * time.Hour))
			ki.NextRotation = k.CurrentVersionCreated.Add(every)
		}
		for _, b := range bs {
			if b.MasterKeyID == k.KeyID {
				ki.Buckets = append(ki.Buckets, b.Name)
			}
		}
		out = append(out, ki)
	}
	return out, nil
}

// keyAction disables, enables or rotates a key; the key may be named by id,
// ARN, or the name of a bucket using it. The store refuses to disable its
// system key, which authenticates the metadata (SystemKey, 409).
func (a *API) keyAction(r *http.Request, _ *none) (*cryptostore.KeyMetadata, error) {
	ctx := r.Context()
	id := r.PathValue("key")
	if b, err := a.store.GetBucket(ctx, id); err == nil {
		if b.MasterKeyID == "" {
			return nil, adminErr(http.StatusNotFound, "NoSuchKey", fmt.Sprintf("bucket %s has no master key yet (one is made when its first object is encrypted)", id))
		}
		id = b.MasterKeyID
	}
	var err error
	switch r.PathValue("action") {
	case "disable":
		err = a.store.DisableKey(ctx, id)
	case "enable":
		err = a.store.EnableKey(ctx, id)
	case "rotate":
		_, err = a.store.RotateKey(ctx, id)
	default:
		return nil, adminErr(http.StatusNotFound, "NoSuchRoute", "key actions are disable, enable and rotate")
	}
	if err != nil {
		return nil, kmsAdminErr(err)
	}
	return a.store.DescribeKey(ctx, id)
}

// StatusReport answers `sealfs status`.
type StatusReport struct {
	Version     string                    `json:"version"`
	Region      string                    `json:"region"`
	Started     time.Time                 `json:"started"`
	Uptime      string                    `json:"uptime"`
	Buckets     []cryptostore.BucketStats `json:"buckets"`
	Replication *replicate.Stats          `json:"replication,omitempty"`
	// Rotations are the keys rotated on a schedule (keys.go).
	Rotations []KeyRotation `json:"rotations,omitempty"`
}

func (a *API) status(r *http.Request, _ *none) (*StatusReport, error) {
	st, err := a.store.Stats(r.Context())
	if err != nil {
		return nil, err
	}
	rep := &StatusReport{
		Version: a.cfg.Version,
		Region:  a.cfg.Region,
		Started: a.cfg.Started,
		Uptime:  time.Since(a.cfg.Started).Round(time.Second).String(),
		Buckets: st,
	}
	if a.repl != nil {
		if rep.Replication, err = a.repl.Stats(r.Context()); err != nil {
			return nil, err
		}
	}
	if rep.Rotations, err = a.rotations(r.Context()); err != nil {
		return nil, err
	}
	return rep, nil
}

// Scrubs run in the daemon; the CLI starts one and polls it.

// ScrubInput is the body of POST scrub.
type ScrubInput struct {
	Bucket string  `json:"bucket"`
	Sample float64 `json:"sample"`
}

// ScrubJob is a scrub's state.
type ScrubJob struct {
	ID     string                  `json:"id"`
	Report cryptostore.ScrubReport `json:"report"`
	Error  string                  `json:"error,omitempty"`
	Done   bool                    `json:"done"`
}

type scrubJobs struct {
	mu   sync.Mutex
	next int
	jobs map[string]*ScrubJob
}

func (a *API) startScrub(r *http.Request, in *ScrubInput) (*ScrubJob, error) {
	if in.Sample < 0 || in.Sample > 1 {
		return nil, adminErr(http.StatusBadRequest, "InvalidArgument", "sample must be between 0 and 1")
	}
	if in.Bucket != "" {
		if _, err := a.store.GetBucket(r.Context(), in.Bucket); err != nil {
			return nil, storeAdminErr(err)
		}
	}
	s := &a.scrubs
	s.mu.Lock()
	if s.jobs == nil {
		s.jobs = make(map[string]*ScrubJob)
	}
	s.next++
	job := &ScrubJob{ID: fmt.Sprintf("scrub-%d", s.next)}
	s.jobs[job.ID] = job
	s.mu.Unlock()
	go func() {
		rep, err := a.store.Scrub(context.Background(), cryptostore.ScrubOptions{
			Bucket: in.Bucket,
			Sample: in.Sample,
			Progress: func(p cryptostore.ScrubReport) {
				s.mu.Lock()
				job.Report = p
				s.mu.Unlock()
			},
		})
		s.mu.Lock()
		defer s.mu.Unlock()
		if rep != nil {
			job.Report = *rep
		}
		if err != nil {
			job.Error = err.Error()
		}
		job.Done = true
	}()
	return a.scrubSnapshot(job.ID)
}

func (a *API) scrubStatus(r *http.Request, _ *none) (*ScrubJob, error) {
	return a.scrubSnapshot(r.PathValue("id"))
}

func (a *API) scrubSnapshot(id string) (*ScrubJob, error) {
	s := &a.scrubs
	s.mu.Lock()
	defer s.mu.Unlock()
	job, ok := s.jobs[id]
	if !ok {
		return nil, adminErr(http.StatusNotFound, "NoSuchJob", "no such scrub: "+id)
	}
	c := *job
	c.Report.Damaged = append([]cryptostore.Damage(nil), job.Report.Damaged...)
	c.Report.Shredded = append([]cryptostore.Damage(nil), job.Report.Shredded...)
	return &c, nil
}

// storeAdminErr gives store errors their status.
func storeAdminErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, cryptostore.ErrInvalidBucketName):
		return adminErr(http.StatusBadRequest, "InvalidBucketName", err.Error())
	case errors.Is(err, cryptostore.ErrBucketExists):
		return adminErr(http.StatusConflict, "BucketAlreadyExists", err.Error())
	case errors.Is(err, cryptostore.ErrBucketNotEmpty):
		return adminErr(http.StatusConflict, "BucketNotEmpty", err.Error())
	}
	return err
}

func kmsAdminErr(err error) error {
	switch {
	case errors.Is(err, cryptostore.ErrSystemKey):
		return adminErr(http.StatusConflict, "SystemKey", err.Error())
	case errors.Is(err, cryptostore.ErrKMSKeyNotFound):
		return adminErr(http.StatusNotFound, "NoSuchKey", err.Error())
	case errors.Is(err, cryptostore.ErrKMSKeyPendingDeletion), errors.Is(err, cryptostore.ErrKMSKeyDisabled), errors.Is(err, cryptostore.ErrKMSInvalidArgument):
		return adminErr(http.StatusBadRequest, "InvalidKeyState", err.Error())
	}
	return err
}
