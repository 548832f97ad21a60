package cryptostore

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/sealfs/sealfs/meta"
)

// ErrInvalidPartNumber: part numbers run from 1 to MaxParts.
var ErrInvalidPartNumber = errors.New("part number must be an integer between 1 and 10000")

// CreateMultipart starts a multipart upload. Its encryption is fixed now, as
// S3 fixes it when an upload is initiated: every part is sealed under one
// data key bound to the object id the completed object will carry. If the
// bucket's setting differs when the upload completes, Complete rewrites the
// data under the setting then in force.
func (s *Store) CreateMultipart(ctx context.Context, bucket, key string, m meta.ObjectMeta, checksumAlg string) (*meta.Upload, error) {
	if err := meta.ValidKey(key); err != nil {
		return nil, err
	}
	if checksumAlg != "" {
		if _, err := newChecksum(checksumAlg); err != nil {
			return nil, err
		}
	}
	b, err := s.GetBucket(ctx, bucket)
	if err != nil {
		return nil, err
	}
	u := &meta.Upload{
		Bucket:            bucket,
		Key:               key,
		ID:                meta.NewUploadID(),
		ObjectID:          meta.NewObjectID(),
		Initiated:         time.Now().UTC(),
		Meta:              m.Clone(),
		ChecksumAlgorithm: strings.ToUpper(checksumAlg),
	}
	if b.EncryptionOn {
		k, enc, err := s.newDataKey(ctx, b, u.ObjectID)
		if err != nil {
			return nil, err
		}
		clear(k)
		u.Encryption = enc
	}
	err = s.meta.Update(ctx, func(tx *meta.Txn) error {
		if _, err := tx.GetBucket(bucket); err != nil {
			return err
		}
		return tx.PutUpload(u)
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

// GetUpload returns an upload in progress.
func (s *Store) GetUpload(ctx context.Context, bucket, key, uploadID string) (*meta.Upload, error) {
	var u *meta.Upload
	err := s.meta.View(ctx, func(tx *meta.Txn) error {
		var err error
		u, err = tx.GetUpload(bucket, key, uploadID)
		return err
	})
	return u, err
}

// PartInput describes an UploadPart.
type PartInput struct {
	Bucket, Key, UploadID string
	Number                int32
	Body                  io.Reader
	Size                  int64 // -1 if unknown
	Checksums             []string
	Verify                func(*Sums) error
	// MD5 asks for the part's MD5 in the Sums Verify sees even if the
	// upload is encrypted (PutInput.MD5).
	MD5 bool
}

// UploadPart writes one part as a blob of its own. A part uploaded again
// under the same number replaces the earlier one.
func (s *Store) UploadPart(ctx context.Context, in *PartInput) (*meta.Part, error) {
	if in.Number < 1 || in.Number > MaxParts {
		return nil, ErrInvalidPartNumber
	}
	u, err := s.GetUpload(ctx, in.Bucket, in.Key, in.UploadID)
	if err != nil {
		return nil, err
	}
	algs := in.Checksums
	if u.ChecksumAlgorithm != "" {
		algs = append(algs, u.ChecksumAlgorithm)
	}
	h, err := newHasher(algs)
	if err != nil {
		return nil, err
	}
	if u.Encryption == nil || in.MD5 {
		h.withMD5() // a plain part's ETag is its MD5
	}
	key, err := s.dataKey(ctx, u.Bucket, u.ObjectID, u.Encryption)
	if err != nil {
		return nil, err
	}
	defer clear(key)
	st := &staged{bucket: u.Bucket, id: u.ObjectID, index: uint32(in.Number), enc: u.Encryption, key: key}
	if err := s.stageWith(ctx, st, in.Body, in.Size, h, -1); err != nil {
		return nil, err
	}
	if in.Verify != nil {
		if err := in.Verify(&st.sums); err != nil {
			s.discard(st)
			return nil, err
		}
	}
	// A part of an encrypting upload gets a random ETag (sums.go).
	etag := randomETag(0)
	if u.Encryption == nil {
		etag = md5ETag(st.sums.MD5)
	}
	p := &meta.Part{
		Number:       in.Number,
		Blob:         st.blobs[0],
		ETag:         etag,
		Size:         st.size,
		LastModified: time.Now().UTC(),
		Checksums:    st.sums.list(),
	}
	var old *meta.Part
	err = s.meta.Update(ctx, func(tx *meta.Txn) error {
		old = nil
		if _, err := tx.GetUpload(in.Bucket, in.Key, in.UploadID); err != nil {
			return err
		}
		prev, err := tx.GetPart(in.UploadID, in.Number)
		switch {
		case errors.Is(err, meta.ErrNoSuchKey):
		case err != nil:
			return err
		default:
			old = prev
		}
		return tx.PutPart(in.UploadID, p)
	})
	if err != nil {
		s.discard(st)
		return nil, err
	}
	s.blobs.settle(p.Blob.ID)
	if old != nil {
		s.removeAfterCommit(ctx, []meta.BlobRef{old.Blob})
	}
	return p, nil
}

// CompletePart names a part in a Complete request.
type CompletePart struct {
	Number int32
	ETag   string
}

// CompleteMultipart assembles the listed parts into the object without
// copying their data: the object's blobs are the parts' blobs. Parts not
// listed are removed. cond is checked against the current object, as in
// PutInput.
func (s *Store) CompleteMultipart(ctx context.Context, bucket, key, uploadID string, parts []CompletePart, cond func(*meta.Object) error) (*meta.Object, error) {
	if len(parts) == 0 {
		return nil, fmt.Errorf("%w: no parts given", ErrInvalidPart)
	}
	for i := range parts {
		if i > 0 && parts[i].Number <= parts[i-1].Number {
			return nil, ErrInvalidPartOrder
		}
	}
	var (
		u     *meta.Upload
		refs  []meta.BlobRef
		md5s  [][]byte // the parts' MD5s, for a plain upload
		sizes []int64
		sums  []byte
		all   bool
		total int64
	)
	err := s.meta.View(ctx, func(tx *meta.Txn) error {
		var err error
		if u, err = tx.GetUpload(bucket, key, uploadID); err != nil {
			return err
		}
		all = u.ChecksumAlgorithm != ""
		stored, err := uploadParts(tx, uploadID)
		if err != nil {
			return err
		}
		for i, cp := range parts {
			p := stored[cp.Number]
			if p == nil {
				return fmt.Errorf("%w: part %d was not uploaded", ErrInvalidPart, cp.Number)
			}
			if !etagEqual(p.ETag, cp.ETag) {
				return fmt.Errorf("%w: part %d has ETag %q, not %q", ErrInvalidPart, cp.Number, p.ETag, cp.ETag)
			}
			if i < len(parts)-1 && p.Size < s.cfg.MinPartSize {
				return fmt.Errorf("%w: part %d has %d bytes", ErrEntityTooSmall, cp.Number, p.Size)
			}
			if u.Encryption == nil {
				raw, err := hex.DecodeString(p.ETag)
				if err != nil {
					return fmt.Errorf("%w: part %d: %w", meta.ErrCorruptRecord, cp.Number, err)
				}
				md5s = append(md5s, raw)
			}
			sizes = append(sizes, p.Size)
			if all {
				v := partChecksum(p, u.ChecksumAlgorithm)
				if v == nil {
					all = false
				}
				sums = append(sums, v...)
			}
			refs = append(refs, p.Blob)
			total += p.Size
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// The ETag is chosen at commit, from how the data ends up stored
	// (staged.etag): random with "-N" if encrypted, else S3's MD5 of the
	// parts' MD5s with "-N".
	obj := &meta.Object{
		Bucket: bucket,
		Key:    key,
		ID:     u.ObjectID,
		Size:   total,
		Meta:   u.Meta.Clone(),
	}
	if all {
		c, _ := newChecksum(u.ChecksumAlgorithm)
		c.Write(sums)
		obj.Checksums = []meta.Checksum{{
			Algorithm: u.ChecksumAlgorithm,
			Value:     fmt.Sprintf("%s-%d", base64.StdEncoding.EncodeToString(c.Sum(nil)), len(parts)),
		}}
	}
	key0, err := s.dataKey(ctx, bucket, u.ObjectID, u.Encryption)
	if err != nil {
		return nil, err
	}
	st := &staged{bucket: bucket, id: u.ObjectID, size: total, enc: u.Encryption, key: key0, blobs: refs,
		partSizes: sizes, partMD5s: md5s}
	// In the commit: the parts must still be the ones assembled, and the
	// upload goes away with every part not used.
	drop := func(tx *meta.Txn, obj *meta.Object) ([]meta.BlobRef, error) {
		if _, err := tx.GetUpload(bucket, key, uploadID); err != nil {
			return nil, err
		}
		// One range read of the parts, not a read per part: each key an
		// etcd transaction reads is a compare in its commit, and those
		// are bounded (--max-txn-ops) while an upload has up to 10,000
		// parts.
		stored, err := uploadParts(tx, uploadID)
		if err != nil {
			return nil, err
		}
		for i, cp := range parts {
			if p := stored[cp.Number]; p == nil || p.Blob != refs[i] {
				return nil, fmt.Errorf("%w: part %d changed during completion", ErrInvalidPart, cp.Number)
			}
		}
		// The object keeps the parts' blobs, unless its data had to be
		// rewritten under a changed encryption setting.
		used := make(map[meta.BlobID]bool, len(obj.Blobs))
		for _, r := range obj.Blobs {
			used[r.ID] = true
		}
		var dropped []meta.BlobRef
		for _, p := range stored {
			if !used[p.Blob.ID] {
				dropped = append(dropped, p.Blob)
			}
		}
		if err := tx.DeleteUpload(bucket, key, uploadID); err != nil {
			return nil, err
		}
		// Remembered for a repeat of this completion (completed.go).
		return dropped, recordCompletion(tx, obj, uploadID, parts)
	}
	return s.commitStaged(ctx, st, obj, cond, drop)
}

func partChecksum(p *meta.Part, alg string) []byte {
	for _, c := range p.Checksums {
		if c.Algorithm == alg {
			v, err := base64.StdEncoding.DecodeString(c.Value)
			if err != nil {
				return nil
			}
			return v
		}
	}
	return nil
}

// AbortMultipart drops an upload and its parts.
func (s *Store) AbortMultipart(ctx context.Context, bucket, key, uploadID string) error {
	ctx = meta.UseReserve(ctx) // frees space: allowed on a full disk
	var refs []meta.BlobRef
	err := s.meta.Update(ctx, func(tx *meta.Txn) error {
		if _, err := tx.GetUpload(bucket, key, uploadID); err != nil {
			return err
		}
		var err error
		if refs, err = uploadBlobs(tx, uploadID); err != nil {
			return err
		}
		return tx.DeleteUpload(bucket, key, uploadID)
	})
	if err != nil {
		return err
	}
	s.removeAfterCommit(ctx, refs)
	return nil
}

// uploadBlobs returns the blobs of every part of an upload.
func uploadBlobs(tx *meta.Txn, uploadID string) ([]meta.BlobRef, error) {
	var refs []meta.BlobRef
	err := eachPart(tx, uploadID, func(p *meta.Part) { refs = append(refs, p.Blob) })
	return refs, err
}

// uploadParts returns every part of an upload by number.
func uploadParts(tx *meta.Txn, uploadID string) (map[int32]*meta.Part, error) {
	parts := make(map[int32]*meta.Part)
	err := eachPart(tx, uploadID, func(p *meta.Part) { parts[p.Number] = p })
	return parts, err
}

// eachPart calls fn for every part of an upload, in number order, read by
// one walk of the parts' key range.
func eachPart(tx *meta.Txn, uploadID string, fn func(*meta.Part)) error {
	var after int32
	for {
		ps, more, err := tx.ListParts(uploadID, after, 1000)
		if err != nil {
			return err
		}
		for _, p := range ps {
			fn(p)
			after = p.Number
		}
		if !more {
			return nil
		}
	}
}

// ListParts lists an upload's parts after part number after.
func (s *Store) ListParts(ctx context.Context, bucket, key, uploadID string, after int32, max int) ([]*meta.Part, bool, error) {
	var ps []*meta.Part
	var more bool
	err := s.meta.View(ctx, func(tx *meta.Txn) error {
		if _, err := tx.GetUpload(bucket, key, uploadID); err != nil {
			return err
		}
		var err error
		ps, more, err = tx.ListParts(uploadID, after, max)
		return err
	})
	return ps, more, err
}

// ListUploads lists a bucket's uploads in progress.
func (s *Store) ListUploads(ctx context.Context, bucket string, opts meta.UploadListOptions) (*meta.UploadPage, error) {
	var page *meta.UploadPage
	err := s.meta.View(ctx, func(tx *meta.Txn) error {
		if _, err := tx.GetBucket(bucket); err != nil {
			return err
		}
		var err error
		page, err = tx.ListUploads(bucket, opts)
		return err
	})
	return page, err
}
