package cryptostore

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/sealfs/sealfs/meta"
)

// Delete removes an object. ErrNoSuchKey if there is none; unless ctx is
// WithoutSync, that absence is durable when Delete returns, as a removal is.
func (s *Store) Delete(ctx context.Context, bucket, key string) error {
	ctx = meta.UseReserve(ctx) // frees space: allowed on a full disk
	var old *meta.Object
	err := s.meta.Update(ctx, func(tx *meta.Txn) error {
		b, err := tx.GetBucket(bucket)
		if err != nil {
			return err
		}
		if old, err = s.deleteInTxn(tx, b, key); err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, meta.ErrNoSuchKey) && !noSync(ctx) {
			// The caller takes the key's absence as its delete done (S3
			// answers 204), but the absence may be an unsynced commit's
			// (a mount's rm): make it durable first, as a delete that
			// found the key would have.
			if serr := s.Sync(ctx); serr != nil {
				return serr
			}
		}
		return err
	}
	s.removeAfterCommit(ctx, old.Blobs)
	s.changed(ChangeDelete, bucket, key)
	return nil
}

func (s *Store) deleteInTxn(tx *meta.Txn, b *meta.Bucket, key string) (*meta.Object, error) {
	old, err := tx.GetObject(b.Name, key)
	if err != nil {
		return nil, err
	}
	if err := tx.DeleteObject(b.Name, key); err != nil {
		return nil, err
	}
	if old.Inline {
		if err := tx.DeleteInline(old.ID); err != nil {
			return nil, err
		}
	}
	if s.cfg.OnCommit != nil {
		if err := s.cfg.OnCommit(tx, &CommitEvent{Bucket: b, Key: key, Old: old}); err != nil {
			return nil, err
		}
	}
	return old, nil
}

// Rename moves an object to another key of the same bucket: a metadata
// change only. The data, its object id and its wrapped key stay as they
// are. An object already at dst is replaced. Renaming across buckets is
// ErrCrossBucket: the destination's encryption setting would have to
// decide, so that is a Copy.
func (s *Store) Rename(ctx context.Context, bucket, src, dst string) error {
	if src == dst {
		_, err := s.Head(ctx, bucket, src)
		return err
	}
	if err := meta.ValidKey(dst); err != nil {
		return err
	}
	var replaced *meta.Object
	err := s.meta.Update(ctx, func(tx *meta.Txn) error {
		var err error
		replaced, err = s.renameInTxn(tx, bucket, src, dst)
		return err
	})
	if err != nil {
		return err
	}
	if replaced != nil {
		s.removeAfterCommit(ctx, replaced.Blobs)
	}
	s.changed(ChangeDelete, bucket, src)
	s.changed(ChangePut, bucket, dst)
	return nil
}

// renameInTxn moves src to dst and returns the object dst replaced, if any.
func (s *Store) renameInTxn(tx *meta.Txn, bucket, src, dst string) (*meta.Object, error) {
	b, err := tx.GetBucket(bucket)
	if err != nil {
		return nil, err
	}
	obj, err := tx.GetObject(bucket, src)
	if err != nil {
		return nil, err
	}
	cur, err := tx.GetObject(bucket, dst)
	switch {
	case errors.Is(err, meta.ErrNoSuchKey):
		cur = nil
	case err != nil:
		return nil, err
	}
	if err := tx.DeleteObject(bucket, src); err != nil {
		return nil, err
	}
	if cur != nil && cur.Inline {
		if err := tx.DeleteInline(cur.ID); err != nil {
			return nil, err
		}
	}
	moved := *obj
	moved.Key = dst
	if s.cfg.OnCommit != nil {
		if err := s.cfg.OnCommit(tx, &CommitEvent{Bucket: b, Key: src, Old: obj}); err != nil {
			return nil, err
		}
		if err := s.cfg.OnCommit(tx, &CommitEvent{Bucket: b, Key: dst, Old: cur, New: &moved, RenamedFrom: src}); err != nil {
			return nil, err
		}
	}
	if err := tx.PutObject(&moved); err != nil {
		return nil, err
	}
	return cur, nil
}

// RenamePrefix moves every object whose key starts with srcPrefix to the
// same key under dstPrefix (a directory rename on the mount). Each object
// moves atomically; a very large directory moves in several transactions.
// It returns how many objects moved.
func (s *Store) RenamePrefix(ctx context.Context, bucket, srcPrefix, dstPrefix string) (int, error) {
	if srcPrefix == "" || srcPrefix == dstPrefix {
		return 0, fmt.Errorf("rename prefix %q to %q: %w", srcPrefix, dstPrefix, ErrInvalidKey)
	}
	if strings.HasPrefix(dstPrefix, srcPrefix) {
		return 0, fmt.Errorf("rename %q into itself: %w", srcPrefix, ErrInvalidKey)
	}
	var keys []string
	opts := meta.ListOptions{Prefix: srcPrefix, MaxKeys: 1000}
	for {
		page, err := s.List(ctx, bucket, opts)
		if err != nil {
			return 0, err
		}
		for _, o := range page.Objects {
			keys = append(keys, o.Key)
		}
		if !page.IsTruncated {
			break
		}
		opts.After = page.NextAfter
	}
	for _, k := range keys {
		if err := meta.ValidKey(dstPrefix + k[len(srcPrefix):]); err != nil {
			return 0, err
		}
	}
	replaced := make([]*meta.Object, len(keys))
	err := s.meta.UpdateBulk(ctx, len(keys), func(tx *meta.Txn, i int) error {
		r, err := s.renameInTxn(tx, bucket, keys[i], dstPrefix+keys[i][len(srcPrefix):])
		if errors.Is(err, meta.ErrNoSuchKey) {
			return nil // deleted since we listed it
		}
		replaced[i] = r
		return err
	})
	for i, r := range replaced {
		if r != nil {
			s.removeAfterCommit(ctx, r.Blobs)
		}
		if i < len(keys) {
			s.changed(ChangeDelete, bucket, keys[i])
			s.changed(ChangePut, bucket, dstPrefix+keys[i][len(srcPrefix):])
		}
	}
	if err != nil {
		return 0, err
	}
	return len(keys), nil
}

// UpdateMeta changes an object's metadata (content headers, user metadata,
// POSIX attributes) without touching its data. fn edits a copy; the data
// fields it must not change are restored.
func (s *Store) UpdateMeta(ctx context.Context, bucket, key string, fn func(m *meta.ObjectMeta) error) (*meta.Object, error) {
	var obj *meta.Object
	err := s.meta.Update(ctx, func(tx *meta.Txn) error {
		b, err := tx.GetBucket(bucket)
		if err != nil {
			return err
		}
		cur, err := tx.GetObject(bucket, key)
		if err != nil {
			return err
		}
		m := cur.Meta.Clone()
		if err := fn(&m); err != nil {
			return err
		}
		next := *cur
		next.Meta = m
		if s.cfg.OnCommit != nil {
			if err := s.cfg.OnCommit(tx, &CommitEvent{Bucket: b, Key: key, Old: cur, New: &next}); err != nil {
				return err
			}
		}
		if err := tx.PutObject(&next); err != nil {
			return err
		}
		obj = &next
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.changed(ChangeMeta, bucket, key)
	return obj, nil
}

// CopyInput describes a server-side copy.
type CopyInput struct {
	SrcBucket, SrcKey string
	DstBucket, DstKey string
	// Meta replaces the source's metadata when set (S3's REPLACE directive).
	Meta *meta.ObjectMeta
	// SrcCondition checks the source version before anything is written.
	SrcCondition func(src *meta.Object) error
	// Condition checks the destination inside the commit, as PutInput's.
	Condition func(cur *meta.Object) error
}

// Copy writes a copy of an object through the one write path: the copy is
// encrypted iff the destination bucket's default encryption is on, with a
// data key of its own. The source's checksums are recomputed on the way.
func (s *Store) Copy(ctx context.Context, in *CopyInput) (*meta.Object, error) {
	h, err := s.Open(ctx, in.SrcBucket, in.SrcKey)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	src := h.Object()
	if in.SrcCondition != nil {
		if err := in.SrcCondition(src); err != nil {
			return nil, err
		}
	}
	m := src.Meta.Clone()
	if in.Meta != nil {
		m = in.Meta.Clone()
	}
	var algs []string
	for _, c := range src.Checksums {
		algs = append(algs, c.Algorithm)
	}
	return s.Put(ctx, &PutInput{
		Bucket:    in.DstBucket,
		Key:       in.DstKey,
		Body:      h.Reader(0, src.Size),
		Size:      src.Size,
		Meta:      m,
		Checksums: algs,
		Condition: in.Condition,
	})
}
