package cryptostore

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/sealfs/sealfs/meta"
)

// CompletedUploadTTL is how long a completed multipart upload is
// remembered, so that a repeated CompleteMultipartUpload (clients retry one
// that timed out) is answered with the result of the first instead of
// NoSuchUpload, as AWS answers it.
const CompletedUploadTTL = time.Hour

// sweepBatch bounds the records one sweep transaction deletes.
const sweepBatch = 1000

// partsDigest identifies the list of parts a completion names.
func partsDigest(parts []CompletePart) []byte {
	h := sha256.New()
	var n [4]byte
	for _, p := range parts {
		binary.BigEndian.PutUint32(n[:], uint32(p.Number))
		h.Write(n[:])
		h.Write([]byte(normalizeETag(p.ETag)))
		h.Write([]byte{0})
	}
	return h.Sum(nil)
}

// normalizeETag drops the quotes a client may send around a part's ETag.
func normalizeETag(etag string) string {
	if len(etag) >= 2 && etag[0] == '"' && etag[len(etag)-1] == '"' {
		return etag[1 : len(etag)-1]
	}
	return etag
}

// recordCompletion remembers, in the transaction that completes uploadID
// into obj, that it completed and with which parts.
func recordCompletion(tx *meta.Txn, obj *meta.Object, uploadID string, parts []CompletePart) error {
	return tx.PutCompletedUpload(&meta.CompletedUpload{
		ID:        uploadID,
		Bucket:    obj.Bucket,
		Key:       obj.Key,
		ObjectID:  obj.ID,
		Completed: obj.LastModified,
		Parts:     partsDigest(parts),
	})
}

// CompletedMultipart answers a CompleteMultipartUpload for an upload that is
// no longer in progress: when uploadID completed into bucket/key within
// CompletedUploadTTL, with the same list of parts, and the object it made
// is still the one there, it returns that object (the result the first
// completion answered). Otherwise it returns an error wrapping
// ErrNoSuchUpload, as for any upload that does not exist.
func (s *Store) CompletedMultipart(ctx context.Context, bucket, key, uploadID string, parts []CompletePart) (*meta.Object, error) {
	var obj *meta.Object
	err := s.meta.View(ctx, func(tx *meta.Txn) error {
		c, err := tx.GetCompletedUpload(uploadID)
		if err != nil {
			return err
		}
		if c.Bucket != bucket || c.Key != key || time.Since(c.Completed) > CompletedUploadTTL ||
			string(c.Parts) != string(partsDigest(parts)) {
			return fmt.Errorf("upload %s of %s/%s: %w", uploadID, bucket, key, ErrNoSuchUpload)
		}
		o, err := tx.GetObject(bucket, key)
		if errors.Is(err, meta.ErrNoSuchKey) || (err == nil && o.ID != c.ObjectID) {
			// Deleted or replaced since: the completion's result is gone.
			return fmt.Errorf("upload %s of %s/%s: %w", uploadID, bucket, key, ErrNoSuchUpload)
		}
		obj = o
		return err
	})
	if err != nil {
		return nil, err
	}
	return obj, nil
}

// sweepCompleted deletes the records of uploads completed more than
// CompletedUploadTTL ago (run by the collector).
func (s *Store) sweepCompleted(ctx context.Context) (int, error) {
	cutoff := time.Now().Add(-CompletedUploadTTL)
	total := 0
	for {
		var n int
		var more bool
		err := s.meta.Update(meta.UseReserve(ctx), func(tx *meta.Txn) (err error) {
			n, more, err = tx.DeleteCompletedUploads(cutoff, sweepBatch)
			return err
		})
		total += n
		if err != nil || !more {
			return total, err
		}
	}
}
