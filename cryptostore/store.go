package cryptostore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sealfs/sealfs/kms"
	"github.com/sealfs/sealfs/meta"
)

// Errors. Those of meta and kms are passed through wrapped, so callers test
// them with errors.Is against these names.
var (
	ErrNoSuchBucket      = meta.ErrNoSuchBucket
	ErrBucketExists      = meta.ErrBucketExists
	ErrBucketNotEmpty    = meta.ErrBucketNotEmpty
	ErrInvalidBucketName = meta.ErrInvalidBucketName
	ErrNoSuchKey         = meta.ErrNoSuchKey
	ErrInvalidKey        = meta.ErrInvalidKey
	ErrNoSuchUpload      = meta.ErrNoSuchUpload
	// ErrKeyDisabled: the object's (or bucket's) master key is disabled or
	// pending deletion; its objects can be neither read nor written.
	ErrKeyDisabled = errors.New("kms key is disabled")

	ErrPreconditionFailed = errors.New("precondition failed")
	ErrCrossBucket        = errors.New("rename across buckets")
	ErrInvalidPart        = errors.New("invalid part")
	ErrInvalidPartOrder   = errors.New("parts not in ascending order")
	ErrEntityTooSmall     = errors.New("part smaller than the minimum allowed size")
	ErrIncompleteBody     = errors.New("body shorter than its declared size")
	ErrBodyTooLong        = errors.New("body longer than its declared size")
	ErrClosed             = errors.New("store is closed")
)

// Algorithm is the value of x-amz-server-side-encryption for encrypted
// objects.
const Algorithm = "aws:kms"

// Defaults.
const (
	DefaultInlineMax = 64 << 10
	MinPartSize      = 5 << 20
	MaxParts         = 10000
)

// Config wires a Store.
type Config struct {
	Dir    string // data directory; blobs live in Dir/blobs, temporary files in Dir/tmp
	Meta   *meta.DB
	KMS    kms.KMS
	Region string
	Logger *slog.Logger

	ChunkSize int // blob chunk size; 0 → DefaultChunkSize
	// InlineMax: objects up to this many bytes are kept inline in the
	// metadata store (sealed like any blob). 0 → DefaultInlineMax; negative
	// → never inline.
	InlineMax int
	// MinPartSize: every multipart part but the last must have at least this
	// many bytes. 0 → MinPartSize.
	MinPartSize int64
	// CollectInterval: period of the orphan-blob collector; 0 → 1 hour;
	// negative → only at Open and when Collect is called.
	CollectInterval time.Duration
	// SyncInterval: period of the background sync that makes commits made
	// WithoutSync durable and runs the blob removals waiting for them; a
	// power cut loses at most this much of such commits. 0 →
	// DefaultSyncInterval; negative → only on Sync and Close.
	SyncInterval time.Duration

	// OnCommit runs inside every object commit transaction, before the new
	// record is written (replication queues its work there, so no
	// acknowledged write can miss it, and may set ev.New's replication
	// status). An error aborts the commit. It may run more than once per
	// commit (conflict retries), so it must only write through q, the
	// commit's transaction narrowed to the replication queue (replqueue.go).
	OnCommit func(q CommitQueue, ev *CommitEvent) error
	// OnChange is called after a change is committed (the mount invalidates
	// kernel caches with it). It must not block.
	OnChange func(ev ChangeEvent)

	// Blobs, when set, is a remote blob store (OpenS3Blobs) holding the
	// blobs instead of the file store in BlobDir or Dir/blobs.
	Blobs BlobStore
	// BlobGrace: the orphan collector of a remote blob store keeps
	// unreferenced blobs younger than this; 0 → DefaultBlobGrace.
	BlobGrace time.Duration
	// BlobDir, when set, is the blob directory, shared by the gateways of
	// a shared metadata store (shared.go); "" → Dir/blobs.
	BlobDir string
	// GatewayID names this gateway in the records gateways of a shared
	// store keep (read pins, leases); "" → the id kept in Dir/gateway-id,
	// made the first time.
	GatewayID string
	// SharedGrace: on a shared store, a replaced blob is removed no sooner
	// than this after the commit that replaced it, and not while a
	// gateway's read pin names it (shared.go). 0 → DefaultSharedGrace.
	SharedGrace time.Duration
	// ObserveBlobCommit, if set, is told how long each written blob took
	// to become durable in its store once its last byte was written: the
	// file store's fsync (and, for a file not created ahead, its rename
	// and the directory's sync); a remote store's completion of the
	// upload. Called on the request path; it must be quick.
	ObserveBlobCommit func(time.Duration)
	// Audit, if set, is told of every use of a master key for an object's
	// data key (users.go): who, which key, which object, and the outcome.
	// It is called on the request path and must return quickly (the
	// daemon's audit log queues the line for a background writer).
	Audit func(KeyUse)
	// testShared makes the store behave as shared over any engine (tests:
	// two stores on one Badger).
	testShared bool

	// testHookBeforeCommit, if set, runs after the data is durable and before
	// the metadata commit (crash tests).
	testHookBeforeCommit func()
	// testHookAfterCommit, if set, runs after the commit and before replaced
	// blobs are removed (crash tests).
	testHookAfterCommit func()
	// testHookSync, if set, sees every metadata sync's result and returns
	// the one to use (failure injection).
	testHookSync func(error) error
}

// CommitEvent describes an object commit to Config.OnCommit.
type CommitEvent struct {
	Bucket *meta.Bucket
	Key    string
	Old    *meta.Object // nil if there was none
	New    *meta.Object // nil for a delete
	// RenamedFrom is set when New arrived by Rename.
	RenamedFrom string
}

// ChangeKind says what changed.
type ChangeKind int

// Change kinds.
const (
	ChangePut ChangeKind = iota
	ChangeDelete
	ChangeMeta
	ChangeBucket
)

// ChangeEvent is passed to Config.OnChange.
type ChangeEvent struct {
	Kind   ChangeKind
	Bucket string
	Key    string
}

// Store is the encrypted object store.
type Store struct {
	cfg    Config
	meta   *meta.DB
	kms    kms.KMS
	blobs  *blobFiles
	logger *slog.Logger

	keyMu sync.Mutex // serialises master key creation

	principals principalCache // users.go

	sh *sharedState // nil unless the metadata is shared (shared.go)

	dirty atomic.Bool // committed since the background sync last looked

	pieceBufs sync.Pool // pipeline buffers of pieceBytes
	sealBufs  sync.Pool // the sealing stage's output buffers (sealBuf)

	// bg is the context of background work (the orphan collector); Close
	// cancels it.
	bg     context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Open opens the store over an open metadata database and KMS. It turns on
// record authentication (recordmac.go; sealing, once, the records of a store
// an earlier sealfs wrote) and collects blobs orphaned by a crash before
// returning.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Meta == nil || cfg.KMS == nil || cfg.Dir == "" {
		return nil, errors.New("cryptostore: Dir, Meta and KMS are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ChunkSize == 0 {
		cfg.ChunkSize = DefaultChunkSize
	}
	if cfg.InlineMax == 0 {
		cfg.InlineMax = DefaultInlineMax
	}
	if cfg.MinPartSize == 0 {
		cfg.MinPartSize = MinPartSize
	}
	if cfg.CollectInterval == 0 {
		cfg.CollectInterval = time.Hour
	}
	if cfg.SyncInterval == 0 {
		cfg.SyncInterval = DefaultSyncInterval
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	shared := cfg.Meta.Shared() || cfg.testShared
	if cfg.GatewayID == "" && shared {
		id, err := gatewayID(cfg.Dir)
		if err != nil {
			return nil, err
		}
		cfg.GatewayID = id
	}
	blobs, err := openBlobStore(&cfg)
	if err != nil {
		return nil, err
	}
	blobs.observeFinish = cfg.ObserveBlobCommit
	s := &Store{
		cfg:    cfg,
		meta:   cfg.Meta,
		kms:    cfg.KMS,
		blobs:  blobs,
		logger: cfg.Logger,
	}
	s.bg, s.cancel = context.WithCancel(context.Background())
	s.pieceBufs.New = func() any { b := make([]byte, pieceBytes); return &b }
	if err := s.openRecordAuth(ctx); err != nil {
		s.cancel()
		return nil, err
	}
	if shared {
		if err := s.startShared(ctx); err != nil {
			s.cancel()
			s.wg.Wait()
			return nil, err
		}
	}
	st, err := s.Collect(ctx)
	if err != nil {
		s.cancel()
		return nil, err
	}
	if st.Orphans > 0 {
		s.logger.Info("removed orphan blobs", "count", st.Orphans, "bytes", st.Bytes)
	}
	if cfg.CollectInterval > 0 {
		s.wg.Add(1)
		go s.collectLoop(cfg.CollectInterval)
	}
	if cfg.SyncInterval > 0 {
		s.wg.Add(1)
		go s.syncLoop(cfg.SyncInterval)
	}
	s.wg.Add(1)
	go s.rotationLoop() // rotation.go
	return s, nil
}

// Close stops background work and syncs, running the blob removals that
// waited for it. It does not close the metadata database or the KMS, which
// the caller opened.
func (s *Store) Close() error {
	s.cancel()
	s.wg.Wait()
	s.blobs.pool.close()
	var err error
	if s.blobs.hasPending() {
		err = s.Sync(context.Background())
	}
	s.blobs.waitRemovals()
	return err
}

// Meta returns the metadata database, for packages that keep their own
// records in it (replication).
func (s *Store) Meta() *meta.DB { return s.meta }

// KMS returns the key service.
func (s *Store) KMS() kms.KMS { return s.kms }

// Region returns the store's region.
func (s *Store) Region() string { return s.cfg.Region }

// Collect removes orphan blobs now.
func (s *Store) Collect(ctx context.Context) (CollectStats, error) {
	return s.blobs.collect(ctx, s.meta, s.syncMeta)
}

func (s *Store) collectLoop(every time.Duration) {
	defer s.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.bg.Done():
			return
		case <-t.C:
			st, err := s.Collect(s.bg)
			if err != nil && s.bg.Err() == nil {
				s.logger.Warn("orphan blob collection", "err", err)
			} else if st.Orphans > 0 {
				s.logger.Info("removed orphan blobs", "count", st.Orphans, "bytes", st.Bytes)
			}
			if _, err := s.sweepCompleted(s.bg); err != nil && s.bg.Err() == nil {
				s.logger.Warn("sweeping completed multipart uploads", "err", err)
			}
		}
	}
}

func (s *Store) changed(kind ChangeKind, bucket, key string) {
	s.dirty.Store(true)
	if s.sh != nil {
		s.sh.echo.expect(echoKey(kind, bucket, key))
	}
	if s.cfg.OnChange != nil {
		s.cfg.OnChange(ChangeEvent{Kind: kind, Bucket: bucket, Key: key})
	}
}

// ---- buckets

// CreateBucket creates a bucket in the store's region (or region, if given).
func (s *Store) CreateBucket(ctx context.Context, name, region string) error {
	if err := ValidNewBucketName(name); err != nil {
		return err
	}
	if region == "" {
		region = s.cfg.Region
	}
	err := s.meta.Update(ctx, func(tx *meta.Txn) error {
		return tx.CreateBucket(&meta.Bucket{Name: name, Created: time.Now().UTC(), Region: region})
	})
	if err == nil {
		s.changed(ChangeBucket, name, "")
	}
	return err
}

// DeleteBucket deletes an empty bucket (uploads in progress go with it).
//
// One transaction checks that the bucket is empty and deletes it with its
// uploads. When that is too big for the engine (etcd bounds the keys a
// transaction reads and writes, and a bucket may have any number of
// uploads in progress), the uploads are aborted first, each in a
// transaction of its own, once the bucket was seen empty; then the
// deletion runs again.
func (s *Store) DeleteBucket(ctx context.Context, name string) error {
	err := s.deleteBucket(ctx, name)
	if !errors.Is(err, meta.ErrTxnTooBig) {
		return err
	}
	if err := s.abortUploads(ctx, name); err != nil {
		return err
	}
	return s.deleteBucket(ctx, name)
}

// abortUploads aborts every upload in progress of an empty bucket, one
// transaction each (DeleteBucket's way around a bounded transaction).
func (s *Store) abortUploads(ctx context.Context, name string) error {
	for {
		var page *meta.UploadPage
		err := s.meta.View(ctx, func(tx *meta.Txn) error {
			if ok, err := tx.HasObjects(name, ""); err != nil {
				return err
			} else if ok {
				return ErrBucketNotEmpty
			}
			var err error
			page, err = tx.ListUploads(name, meta.UploadListOptions{})
			return err
		})
		if err != nil {
			return err
		}
		for _, u := range page.Uploads {
			if err := s.AbortMultipart(ctx, name, u.Key, u.ID); err != nil && !errors.Is(err, ErrNoSuchUpload) {
				return err
			}
		}
		if !page.IsTruncated {
			return nil
		}
	}
}

func (s *Store) deleteBucket(ctx context.Context, name string) error {
	var parts []meta.BlobRef
	err := s.meta.Update(ctx, func(tx *meta.Txn) error {
		parts = parts[:0]
		if _, err := tx.GetBucket(name); err != nil {
			return err
		}
		if ok, err := tx.HasObjects(name, ""); err != nil {
			return err
		} else if ok {
			return ErrBucketNotEmpty
		}
		// Collect the blobs of uploads in progress: DeleteBucket drops
		// their records.
		after := meta.UploadListOptions{}
		for {
			page, err := tx.ListUploads(name, after)
			if err != nil {
				return err
			}
			for _, u := range page.Uploads {
				refs, err := uploadBlobs(tx, u.ID)
				if err != nil {
					return err
				}
				parts = append(parts, refs...)
			}
			if !page.IsTruncated {
				break
			}
			after.KeyMarker, after.UploadIDMarker = page.NextKeyMarker, page.NextUploadIDMarker
		}
		return tx.DeleteBucket(name)
	})
	if err != nil {
		return err
	}
	s.removeAfterCommit(ctx, parts)
	s.changed(ChangeBucket, name, "")
	return nil
}

// GetBucket returns a bucket's record.
func (s *Store) GetBucket(ctx context.Context, name string) (*meta.Bucket, error) {
	return s.meta.GetBucket(ctx, name)
}

// ListBuckets returns every bucket, sorted by name.
func (s *Store) ListBuckets(ctx context.Context) ([]*meta.Bucket, error) {
	var bs []*meta.Bucket
	err := s.meta.View(ctx, func(tx *meta.Txn) error {
		var err error
		bs, err = tx.ListBuckets()
		return err
	})
	return bs, err
}

// SetBucketEncryption turns a bucket's default encryption on or off. Objects
// already stored keep the state they have.
func (s *Store) SetBucketEncryption(ctx context.Context, name string, on bool) error {
	err := s.meta.Update(ctx, func(tx *meta.Txn) error {
		b, err := tx.GetBucket(name)
		if err != nil {
			return err
		}
		b.EncryptionOn = on
		return tx.PutBucket(b)
	})
	if err == nil {
		s.changed(ChangeBucket, name, "")
	}
	return err
}

// SetBucketReplication stores a bucket's replication configuration (opaque
// here); nil removes it.
func (s *Store) SetBucketReplication(ctx context.Context, name string, cfg []byte) error {
	return s.meta.Update(ctx, func(tx *meta.Txn) error {
		b, err := tx.GetBucket(name)
		if err != nil {
			return err
		}
		b.Replication = cfg
		return tx.PutBucket(b)
	})
}

// KeyARN returns the ARN form of a master key id, as S3 responses show it.
func (s *Store) KeyARN(keyID string) string {
	if a, ok := s.kms.(interface{ ARN(string) string }); ok {
		return a.ARN(keyID)
	}
	return keyID
}

// ---- data keys

func encContext(bucket string, id meta.ObjectID) kms.Context {
	return kms.Context{"bucket": bucket, "object": id.String()}
}

// keyObject returns the object id obj's wrapped data key is bound to: its
// own, or for a version composed over an older one, that version's
// (meta.Encryption.KeyObject).
func keyObject(obj *meta.Object) meta.ObjectID {
	if obj.Encryption != nil && !obj.Encryption.KeyObject.IsZero() {
		return obj.Encryption.KeyObject
	}
	return obj.ID
}

// masterKey returns the bucket's master key id, creating the key the first
// time an object is encrypted in the bucket.
func (s *Store) masterKey(ctx context.Context, bucket string) (string, error) {
	b, err := s.GetBucket(ctx, bucket)
	if err != nil {
		return "", err
	}
	if b.MasterKeyID != "" {
		return b.MasterKeyID, nil
	}
	s.keyMu.Lock()
	defer s.keyMu.Unlock()
	if b, err = s.GetBucket(ctx, bucket); err != nil {
		return "", err
	} else if b.MasterKeyID != "" {
		return b.MasterKeyID, nil
	}
	km, err := s.kms.CreateKey(ctx, &kms.CreateKeyRequest{Description: "sealfs bucket " + bucket, Alias: bucket})
	if err != nil {
		s.auditKeyAdmin(ctx, "kms:CreateKey", "", err)
		return "", kmsErr(err)
	}
	s.auditKeyAdmin(ctx, "kms:CreateKey", km.KeyID, nil)
	var keyID string
	err = s.meta.Update(ctx, func(tx *meta.Txn) error {
		b, err := tx.GetBucket(bucket)
		if err != nil {
			return err
		}
		if b.MasterKeyID == "" {
			b.MasterKeyID = km.KeyID
			if err := tx.PutBucket(b); err != nil {
				return err
			}
		}
		keyID = b.MasterKeyID
		return nil
	})
	if err != nil {
		return "", err
	}
	s.logger.Info("created bucket master key", "bucket", bucket, "key", keyID)
	return keyID, nil
}

// newDataKey issues a fresh data key for an object in bucket b.
//
// b is the bucket as the caller read it: its master key is used as it was
// then (the commit checks it again, and a key changed meanwhile makes the
// data staged again under the new one); a bucket without one yet gets it
// created (masterKey).
func (s *Store) newDataKey(ctx context.Context, b *meta.Bucket, id meta.ObjectID) ([]byte, *meta.Encryption, error) {
	bucket, keyID := b.Name, b.MasterKeyID
	if keyID == "" {
		var err error
		if keyID, err = s.masterKey(ctx, bucket); err != nil {
			return nil, nil, err
		}
	}
	done, err := s.useKey(ctx, "kms:GenerateDataKey", keyID, bucket, id)
	if err != nil {
		return nil, nil, err
	}
	dek, err := s.kms.GenerateDataKey(ctx, &kms.GenerateDataKeyRequest{KeyID: keyID, Context: encContext(bucket, id)})
	done(err)
	if err != nil {
		return nil, nil, kmsErr(err)
	}
	return dek.Plaintext, &meta.Encryption{
		Algorithm:  Algorithm,
		KeyID:      dek.KeyID,
		KeyVersion: dek.Version,
		WrappedKey: dek.Ciphertext,
	}, nil
}

// dataKey unwraps an object's data key; nil for plain objects.
func (s *Store) dataKey(ctx context.Context, bucket string, id meta.ObjectID, enc *meta.Encryption) ([]byte, error) {
	if enc == nil {
		return nil, nil
	}
	done, err := s.useKey(ctx, "kms:Decrypt", enc.KeyID, bucket, id)
	if err != nil {
		return nil, err
	}
	k, err := s.kms.Decrypt(ctx, &kms.DecryptRequest{KeyID: enc.KeyID, Ciphertext: enc.WrappedKey, Context: encContext(bucket, id)})
	done(err)
	if err != nil {
		return nil, kmsErr(err)
	}
	return k, nil
}

// kmsErr maps KMS errors onto the store's: a disabled or deleted key gets
// its own error so the front doors can answer KMS.DisabledException / ENOKEY.
func kmsErr(err error) error {
	switch {
	case errors.Is(err, kms.ErrKeyDisabled), errors.Is(err, kms.ErrKeyPendingDeletion), errors.Is(err, kms.ErrKeyNotFound):
		return fmt.Errorf("%w: %w", ErrKeyDisabled, err)
	case errors.Is(err, kms.ErrInvalidCiphertext):
		return fmt.Errorf("%w: data key: %w", ErrCorruptBlob, err)
	}
	return err
}
