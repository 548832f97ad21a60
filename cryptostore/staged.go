package cryptostore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/sealfs/sealfs/meta"
)

// Staged is an object version written and sealed but not committed: Put cut
// in two. No record points at it, so S3 does not list it, a GET does not
// see it and nothing replicates it; it can be read back (ReadAt) and is
// either committed whole by one call (Commit) or thrown away (Discard).
// While it exists its blob is in flight, so the orphan collector leaves it
// alone; a crash leaves an orphan blob that the collector removes.
//
// The mount streams a file being written into a Staged version, so that
// nothing of it is visible before close(2), and uses it as the base of the
// file's further writes when they stop fitting the stream.
//
// A Staged is safe for concurrent use; Commit and Discard are called once,
// and end its use.
type Staged struct {
	s  *Store
	in PutInput // Body and Size are not used after Stage

	mu   sync.Mutex
	st   *staged
	h    *Handle // reads the staged data
	done bool
}

// ErrStagedDone: the Staged version was committed or discarded already.
var ErrStagedDone = errors.New("staged version already committed or discarded")

// Stage writes in's body as Put does (under the bucket's default-encryption
// setting as it is now, with a fresh object id) and stops before the
// commit. in.Verify is called as by Put; in.Condition and in.Meta are used
// by Commit.
func (s *Store) Stage(ctx context.Context, in *PutInput) (*Staged, error) {
	return s.stageIn(ctx, in, nil)
}

// stageIn is Stage with the bucket's record when the caller has just read
// it (nil: read it).
func (s *Store) stageIn(ctx context.Context, in *PutInput, b *meta.Bucket) (*Staged, error) {
	st, err := s.stageInput(ctx, in, b)
	if err != nil {
		return nil, err
	}
	obj := &meta.Object{Bucket: in.Bucket, Key: in.Key, ID: st.id, Size: st.size,
		Encryption: st.enc, Blobs: st.blobs, Inline: st.inline != nil}
	// The handle holds the blobs (acquire) from now until it is closed:
	// after Commit it reads the committed version, which a later overwrite
	// cannot remove under it.
	s.blobs.acquire(st.blobs)
	h, err := s.newHandleKey(obj, bytes.Clone(st.key), st.inline)
	if err != nil {
		s.blobs.release(st.blobs)
		s.discard(st)
		return nil, err
	}
	p := &Staged{s: s, in: *in, st: st, h: h}
	p.in.Body = nil
	return p, nil
}

// Size returns the staged data's length.
func (p *Staged) Size() int64 { return p.h.Size() }

// ReadAt reads the staged data, with io.ReaderAt semantics.
func (p *Staged) ReadAt(b []byte, off int64) (int, error) { return p.h.ReadAt(b, off) }

// Commit makes the staged data the object's current version, with metadata
// m (in.Meta of Stage if nil), through the same commit as Put, and returns
// a Handle of exactly the version it committed, which the caller closes.
// If the commit fails the data is discarded.
func (p *Staged) Commit(ctx context.Context, m *meta.ObjectMeta) (*Handle, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		return nil, ErrStagedDone
	}
	p.done = true
	if m != nil {
		p.in.Meta = m.Clone()
	}
	st := p.st
	obj, err := p.s.commitStaged(ctx, st, newRecord(&p.in, st), p.in.Condition, nil)
	if err != nil {
		p.h.Close()
		return nil, err
	}
	if obj.ID == p.h.obj.ID {
		// The handle read exactly these blobs, held since Stage.
		p.h.obj = obj
		return p.h, nil
	}
	// The bucket's setting changed and the data was rewritten under a new
	// id (rare): hold the new blobs, if no later commit removed them yet.
	p.h.Close()
	h, err := p.s.openRecord(ctx, obj)
	if err != nil {
		return nil, fmt.Errorf("%w (the version was committed)", err)
	}
	return h, nil
}

// Discard throws the staged data away. It does nothing after Commit.
func (p *Staged) Discard() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		return
	}
	p.done = true
	p.h.Close()
	p.s.discard(p.st)
}

// ErrVersionGone: the version asked for was replaced and its data removed.
var ErrVersionGone = errors.New("object version no longer stored")

// openRecord opens a handle on exactly the version obj, if its data is
// still stored.
func (s *Store) openRecord(ctx context.Context, obj *meta.Object) (*Handle, error) {
	var inline []byte
	if obj.Inline {
		err := s.meta.View(ctx, func(tx *meta.Txn) error {
			var err error
			inline, err = tx.GetInline(obj.ID)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("%w: %s/%s: %w", ErrVersionGone, obj.Bucket, obj.Key, err)
		}
		return s.newHandle(ctx, obj, inline)
	}
	s.blobs.acquire(obj.Blobs)
	gone, err := s.blobs.missing(ctx, obj.Blobs)
	if err != nil || gone != nil {
		s.blobs.release(obj.Blobs)
	}
	if err != nil {
		return nil, fmt.Errorf("opening %s/%s: %w", obj.Bucket, obj.Key, err)
	}
	if gone != nil {
		return nil, fmt.Errorf("%w: %s/%s", ErrVersionGone, obj.Bucket, obj.Key)
	}
	h, err := s.newHandle(ctx, obj, nil)
	if err != nil {
		s.blobs.release(obj.Blobs)
		return nil, err
	}
	return h, nil
}
