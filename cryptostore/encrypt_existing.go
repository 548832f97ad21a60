package cryptostore

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/sealfs/sealfs/meta"
)

// EncryptExisting: objects stored before a bucket's default encryption was
// turned on (or encrypted under another bucket's master key, restored from
// elsewhere) rewritten in place under the bucket's setting, as the cloud's
// "copy in place" batch does.
//
// Each object is read through the read path and written back through the
// one write path (Put), under the same key, with the same metadata (content
// type, user metadata, POSIX attributes and mtime), the same checksum
// algorithms and, for a replica, the same replication status: a new data
// key, a new version. The write is conditional on the version it read (its
// object id, checked inside the commit): an object overwritten or deleted
// meanwhile keeps what its writer stored. The plain blob it replaces is
// removed after the commit, as every overwrite's is, and a run ends with an
// orphan collection (a crash between a commit and that removal leaves the
// plain blob behind). Plain objects kept inline in the metadata are
// deleted there, and their bytes purged from the engine's files
// (meta.DB.PurgeInline: Badger's write-ahead logs and tables) every
// purgeBatch objects and at the end of the run — with those it read and
// found overwritten by a client meanwhile; the ids waiting for it are kept
// in the checkpoint, so a run resumed after a crash purges them too. (A
// plain object a client overwrote or deleted before the run reached it is
// not known to the run: its bytes go with the engine's own compaction.)
// On a shared engine (PostgreSQL, etcd) the server's storage is out of
// reach: the run logs a warning saying so.
//
// Progress is kept in a configuration record (encryptCheckpointPrefix +
// scope) after every object, so a run stopped by a crash or a restart
// continues after the last object it finished when started again with the
// same bucket and prefix; a finished run removes it.

// encryptCheckpointPrefix names the configuration records that hold an
// encrypt-existing run's progress, one per bucket and prefix.
const encryptCheckpointPrefix = "kms/encrypt-existing/"

// ErrBucketNotEncrypting: EncryptExisting on a bucket without default
// encryption (there is no setting to rewrite objects under).
var ErrBucketNotEncrypting = errors.New("the bucket has no default encryption: turn it on first (sealfs bucket encryption set BUCKET)")

// EncryptExistingOptions selects what EncryptExisting rewrites.
type EncryptExistingOptions struct {
	Bucket string
	Prefix string
	// Rate bounds objects rewritten per second; 0 → unthrottled.
	Rate float64
	// Progress, if set, is called after each object with the counts so far.
	Progress func(EncryptReport)
}

// EncryptReport is what an encrypt-existing run did.
type EncryptReport struct {
	Objects   int64    `json:"objects"`   // objects looked at
	Encrypted int64    `json:"encrypted"` // rewritten under the bucket's key
	Bytes     int64    `json:"bytes"`     // plaintext bytes rewritten
	Skipped   int64    `json:"skipped"`   // already encrypted under the bucket's key
	Raced     int64    `json:"raced"`     // overwritten or deleted meanwhile: left as its writer stored it
	Failed    []Damage `json:"failed,omitempty"`
	ResumedAt string   `json:"resumed_at,omitempty"` // the key a previous run had finished; "" for a fresh start
	Finished  bool     `json:"finished"`
}

// purgeBatch is how many replaced plain inline objects an encrypt-existing
// run lets wait before it purges their bytes from the metadata engine's
// files (each purge pauses the store's transactions briefly).
const purgeBatch = 1024

var (
	errAlreadyEncrypted = errors.New("already encrypted under the bucket's key")
	errEncryptRaced     = errors.New("overwritten meanwhile")
)

// EncryptExisting rewrites the objects of opts.Bucket under opts.Prefix
// that are not encrypted under the bucket's master key (see above). It
// fails with ErrBucketNotEncrypting on a bucket without default encryption.
// A failure on one object is reported in Failed and the run goes on (the
// checkpoint stops before the first failure, so a later run tries again);
// it returns an error only when it cannot go on.
func (s *Store) EncryptExisting(ctx context.Context, opts EncryptExistingOptions) (*EncryptReport, error) {
	b, err := s.GetBucket(ctx, opts.Bucket)
	if err != nil {
		return nil, err
	}
	if !b.EncryptionOn {
		return nil, fmt.Errorf("bucket %s: %w", opts.Bucket, ErrBucketNotEncrypting)
	}
	scope := encryptCheckpointPrefix + "bucket=" + opts.Bucket + ";prefix=" + opts.Prefix
	cp, err := s.loadCheckpoint(ctx, scope)
	if err != nil {
		return nil, err
	}
	rep := &EncryptReport{}
	after := ""
	if cp != nil {
		after = cp.After
		rep.ResumedAt = cp.After
		s.logger.Info("encrypt-existing: resuming", "bucket", opts.Bucket, "prefix", opts.Prefix, "after", cp.After)
	}
	var purge []string // plain inline objects replaced, not yet purged
	purgeAt := purgeBatch
	if cp != nil {
		purge = cp.Purge
	}
	purgeNow := func(key string) error {
		if err := s.purgeInline(ctx, purge); err != nil {
			return err
		}
		purge = nil
		if key == "" || len(rep.Failed) > 0 {
			return nil
		}
		return s.saveCheckpoint(ctx, scope, rewrapCheckpoint{Bucket: opts.Bucket, After: key})
	}
	bucketKey := b.MasterKeyID
	pace := newPacer(opts.Rate)
	one := func(key string) error {
		if err := pace.wait(ctx); err != nil {
			return err
		}
		n, replaced, err := s.encryptOne(ctx, opts.Bucket, key, &bucketKey)
		if err := ctx.Err(); err != nil {
			return err
		}
		if replaced != nil && replaced.Inline && replaced.Encryption == nil {
			purge = append(purge, replaced.ID.String())
		}
		rep.Objects++
		switch {
		case errors.Is(err, ErrNoSuchKey), errors.Is(err, errEncryptRaced):
			rep.Raced++
		case errors.Is(err, errAlreadyEncrypted):
			rep.Skipped++
		case err != nil:
			rep.Failed = append(rep.Failed, Damage{Bucket: opts.Bucket, Key: key, Err: err.Error()})
			s.logger.Warn("encrypt-existing: object not rewritten", "bucket", opts.Bucket, "key", key, "err", err)
		default:
			rep.Encrypted++
			rep.Bytes += n
		}
		if len(rep.Failed) == 0 {
			if err := s.saveCheckpoint(ctx, scope, rewrapCheckpoint{Bucket: opts.Bucket, After: key, Purge: purge}); err != nil {
				return err
			}
		}
		if len(purge) >= purgeAt {
			// A busy store: the ids stay in the checkpoint for the next
			// batch or the end of the run.
			if err := purgeNow(key); err != nil {
				s.logger.Warn("encrypt-existing: purging replaced plaintext from the metadata files; trying again later", "objects", len(purge), "err", err)
				purgeAt = len(purge) + purgeBatch
			} else {
				purgeAt = purgeBatch
			}
		}
		if opts.Progress != nil {
			opts.Progress(*rep)
		}
		return nil
	}
	// The prefix itself is the first key under it; the scan below starts
	// after it.
	if after == "" && opts.Prefix != "" {
		if err := one(opts.Prefix); err != nil {
			return rep, err
		}
	}
	if after == "" {
		after = opts.Prefix
	}
	for done := false; !done; {
		keys, more, err := s.objectKeys(ctx, opts.Bucket, after, 256)
		if err != nil {
			return rep, err
		}
		for _, key := range keys {
			if !strings.HasPrefix(key, opts.Prefix) {
				done = true
				break
			}
			if err := one(key); err != nil {
				return rep, err
			}
			after = key
		}
		if !more {
			done = true
		}
	}
	if err := purgeNow(""); err != nil {
		return rep, err
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
	// A run killed between a commit and the removal of the plain blob it
	// replaced left that blob behind: collect orphans now rather than
	// within the next collection period.
	if st, err := s.Collect(ctx); err != nil {
		s.logger.Warn("encrypt-existing: collecting orphan blobs", "err", err)
	} else if st.Orphans > 0 {
		s.logger.Info("encrypt-existing: orphan blobs removed", "blobs", st.Orphans, "bytes", st.Bytes)
	}
	rep.Finished = true
	s.logger.Info("encrypt-existing finished", "bucket", opts.Bucket, "prefix", opts.Prefix, "objects", rep.Objects,
		"encrypted", rep.Encrypted, "bytes", rep.Bytes, "skipped", rep.Skipped, "raced", rep.Raced, "failed", len(rep.Failed))
	return rep, nil
}

// purgeInline purges the bytes of the deleted inline data of the objects
// ids (hex) from the metadata engine's files.
func (s *Store) purgeInline(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	oids := make([]meta.ObjectID, 0, len(ids))
	for _, h := range ids {
		var id meta.ObjectID
		if b, err := hex.DecodeString(h); err == nil && len(b) == len(id) {
			copy(id[:], b)
			oids = append(oids, id)
		}
	}
	ok, err := s.meta.PurgeInline(ctx, oids)
	if err != nil {
		return err
	}
	if !ok {
		s.logger.Warn("encrypt-existing: the plaintext of small objects kept in a shared metadata engine stays in the server's storage (deleted rows, logs, history) until its own maintenance removes it", "objects", len(oids))
		return nil
	}
	s.logger.Info("encrypt-existing: plaintext of replaced inline objects purged from the metadata files", "objects", len(oids))
	return nil
}

// encryptOne rewrites one object in place unless it is encrypted under
// *bucketKey already, and returns its size and the version it replaced (or
// saw replaced by another writer: errEncryptRaced).
// *bucketKey is filled in when the bucket's master key is made by this
// write.
func (s *Store) encryptOne(ctx context.Context, bucket, key string, bucketKey *string) (int64, *meta.Object, error) {
	h, err := s.Open(ctx, bucket, key)
	if errors.Is(err, ErrKeyDisabled) {
		// Encrypted under a key that does not open: under the bucket's
		// own key it needs nothing; under another it is a failure.
		var o *meta.Object
		if verr := s.meta.View(ctx, func(tx *meta.Txn) (err error) {
			o, err = tx.GetObject(bucket, key)
			return err
		}); verr == nil && o.Encryption != nil && *bucketKey != "" && o.Encryption.KeyID == *bucketKey {
			return 0, nil, errAlreadyEncrypted
		}
	}
	if err != nil {
		return 0, nil, err
	}
	defer h.Close()
	src := h.Object()
	if src.Encryption != nil && *bucketKey != "" && src.Encryption.KeyID == *bucketKey {
		return 0, nil, errAlreadyEncrypted
	}
	var algs []string
	for _, c := range src.Checksums {
		algs = append(algs, c.Algorithm)
	}
	in := &PutInput{
		Bucket:    bucket,
		Key:       key,
		Body:      h.Reader(0, src.Size),
		Size:      src.Size,
		Meta:      src.Meta.Clone(),
		Checksums: algs,
		Condition: func(cur *meta.Object) error {
			if cur == nil || cur.ID != src.ID {
				return errEncryptRaced
			}
			return nil
		},
	}
	if src.ReplicationStatus == "REPLICA" {
		in.ReplicationStatus, in.ReplicaSourceModified = src.ReplicationStatus, src.ReplicaSourceModified
	}
	o, err := s.Put(ctx, in)
	if errors.Is(err, errEncryptRaced) {
		// Overwritten or deleted since it was read: its writer deleted
		// the version read, inline data included.
		return 0, src, err
	}
	if err != nil {
		return 0, nil, err
	}
	if o.Encryption == nil {
		return 0, nil, fmt.Errorf("bucket %s: default encryption was turned off during the run: %w", bucket, ErrBucketNotEncrypting)
	}
	*bucketKey = o.Encryption.KeyID
	return src.Size, src, nil
}
