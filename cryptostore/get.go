package cryptostore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/sealfs/sealfs/meta"
)

// Handle is one open version of an object. It reads that version's bytes at
// any offset, decrypting only the chunks a read touches, and keeps reading
// them even after the key is overwritten, renamed or deleted, until Close.
// It is safe for concurrent use.
type Handle struct {
	s      *Store
	obj    *meta.Object
	key    []byte
	starts []int64 // plaintext offset at which each blob starts

	mu     sync.Mutex
	inline *BlobReader
	open   map[meta.BlobID]*openBlob // open readers
	order  []meta.BlobID             // open blobs, oldest first
	closed bool

	logged atomic.Bool // a verification failure was logged; set without mu (corrupt runs with and without it)
}

type openBlob struct {
	f       BlobObject
	r       *BlobReader
	users   int  // ReadAt calls reading through it now
	evicted bool // dropped from the cache: close when users reaches 0
}

// maxOpenBlobs bounds the files one handle keeps open (a multipart object
// may have thousands of blobs).
const maxOpenBlobs = 4

// Open opens the current version of an object for reading.
func (s *Store) Open(ctx context.Context, bucket, key string) (*Handle, error) {
	var missing meta.ObjectID // the version whose first blob was found missing
	for attempt := 0; attempt < 16; attempt++ {
		var obj *meta.Object
		var inline []byte
		err := s.meta.View(ctx, func(tx *meta.Txn) error {
			var err error
			if obj, err = tx.GetObjectInBucket(bucket, key); err != nil {
				return err
			}
			if obj.Inline {
				inline, err = tx.GetInline(obj.ID)
			}
			return err
		})
		if err != nil {
			return nil, err
		}
		if !obj.Inline {
			// Blobs a commit stops referencing are removed together,
			// under the lock acquire takes: if the ones checked are still
			// there now that we hold them, all are and stay until
			// release. If one is gone, the object was replaced after our
			// snapshot: look again.
			s.blobs.acquire(obj.Blobs)
			gone, err := s.blobs.missing(ctx, obj.Blobs)
			if err != nil {
				s.blobs.release(obj.Blobs)
				return nil, fmt.Errorf("opening %s/%s: %w", bucket, key, err)
			}
			if gone != nil {
				s.blobs.release(obj.Blobs)
				if obj.ID == missing {
					// Still current after a second look: the record
					// points at a blob that is not there.
					return nil, fmt.Errorf("%w: %s/%s: blob %s is missing", ErrCorruptBlob, bucket, key, *gone)
				}
				missing = obj.ID
				continue
			}
		}
		h, err := s.newHandle(ctx, obj, inline)
		if err != nil {
			if !obj.Inline {
				s.blobs.release(obj.Blobs)
			}
			return nil, err
		}
		return h, nil
	}
	return nil, fmt.Errorf("opening %s/%s: object keeps changing", bucket, key)
}

// checkExtent checks that an extent is one a reader can follow: a hole
// with nothing else set, or a range inside its blob. (The record's MAC
// says it is the one sealfs wrote; this catches what no writer makes.)
func checkExtent(r *meta.BlobRef) error {
	switch {
	case r.Size < 0 || r.Off < 0 || r.BlobSize < 0:
		return fmt.Errorf("negative size or offset")
	case r.Hole && (r.ID != meta.BlobID{} || r.Index != 0 || r.Off != 0 || r.BlobSize != 0 || !r.Owner.IsZero()):
		return fmt.Errorf("a hole with a blob")
	case r.Hole:
		return nil
	case r.BlobSize == 0 && r.Off != 0:
		return fmt.Errorf("an offset into a blob of unknown size")
	case r.Off+r.Size > r.StoredSize() || r.Off+r.Size < r.Off:
		return fmt.Errorf("range [%d, %d) past the blob's %d bytes", r.Off, r.Off+r.Size, r.StoredSize())
	}
	return nil
}

func (s *Store) newHandle(ctx context.Context, obj *meta.Object, inline []byte) (*Handle, error) {
	key, err := s.dataKey(ctx, obj.Bucket, keyObject(obj), obj.Encryption)
	if err != nil {
		return nil, err
	}
	return s.newHandleKey(obj, key, inline)
}

// newHandleKey opens a handle with the data key already unwrapped. The
// caller has acquired obj's blobs; Close releases them.
func (s *Store) newHandleKey(obj *meta.Object, key, inline []byte) (*Handle, error) {
	var err error
	h := &Handle{s: s, obj: obj, key: key, open: make(map[meta.BlobID]*openBlob)}
	if obj.Inline {
		h.inline, err = openMemBlob(inline, obj.Size, BlobParams{Key: key, ObjectID: obj.ID})
		if err != nil {
			return nil, h.corrupt(err)
		}
		return h, nil
	}
	var off int64
	for i := range obj.Blobs {
		b := &obj.Blobs[i]
		if err := checkExtent(b); err != nil {
			return nil, fmt.Errorf("%w: %s/%s: extent %d: %w", ErrCorruptBlob, obj.Bucket, obj.Key, i, err)
		}
		h.starts = append(h.starts, off)
		off += b.Size
	}
	if off != obj.Size {
		return nil, fmt.Errorf("%w: %s/%s: blobs hold %d bytes, record says %d", ErrCorruptBlob, obj.Bucket, obj.Key, off, obj.Size)
	}
	return h, nil
}

// Object returns the version's record.
func (h *Handle) Object() *meta.Object { return h.obj }

// Size returns the plaintext size.
func (h *Handle) Size() int64 { return h.obj.Size }

// Reader returns a reader of n bytes from off.
func (h *Handle) Reader(off, n int64) io.Reader { return io.NewSectionReader(h, off, n) }

// ReadAt reads plaintext at off, with io.ReaderAt semantics.
func (h *Handle) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("negative offset %d", off)
	}
	if off >= h.obj.Size {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	if h.inline != nil {
		n, err := h.inline.ReadAt(p, off)
		if err != nil && err != io.EOF {
			return n, h.corrupt(err)
		}
		return n, err
	}
	total := 0
	for len(p) > 0 && off < h.obj.Size {
		i := sort.Search(len(h.starts), func(i int) bool { return h.starts[i] > off }) - 1
		ref := &h.obj.Blobs[i]
		within := off - h.starts[i]
		want := min(int64(len(p)), ref.Size-within)
		if ref.Hole {
			clear(p[:want])
			total += int(want)
			off += want
			p = p[want:]
			continue
		}
		ob, err := h.blob(i)
		if err != nil {
			return total, err
		}
		n, err := ob.r.ReadAt(p[:want], ref.Off+within)
		h.put(ob)
		total += n
		off += int64(n)
		p = p[n:]
		if err != nil && !(err == io.EOF && int64(n) == want) {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return total, h.corrupt(err)
		}
	}
	if len(p) > 0 {
		return total, io.EOF
	}
	return total, nil
}

// blob returns blob i open for reading, opening it if needed; the caller
// gives it back with put.
func (h *Handle) blob(i int) (*openBlob, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrClosed
	}
	ref := h.obj.Blobs[i]
	if ob, ok := h.open[ref.ID]; ok {
		ob.users++
		return ob, nil
	}
	f, err := h.s.blobs.be.Open(context.Background(), ref.ID)
	if err != nil {
		return nil, h.corrupt(fmt.Errorf("blob %s: %w", ref.ID, err))
	}
	r, err := OpenBlob(f, ref.StoredSize(), BlobParams{Key: h.key, ObjectID: ref.SealedFor(h.obj.ID), Index: ref.Index})
	if err != nil {
		f.Close()
		return nil, h.corrupt(fmt.Errorf("blob %s: %w", ref.ID, err))
	}
	if len(h.order) >= maxOpenBlobs {
		// Evict the oldest; a read still going through it closes it.
		old := h.open[h.order[0]]
		delete(h.open, h.order[0])
		h.order = h.order[1:]
		old.evicted = true
		if old.users == 0 {
			old.f.Close()
		}
	}
	ob := &openBlob{f: f, r: r, users: 1}
	h.open[ref.ID] = ob
	h.order = append(h.order, ref.ID)
	return ob, nil
}

func (h *Handle) put(ob *openBlob) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ob.users--
	if ob.evicted && ob.users == 0 {
		ob.f.Close()
	}
}

// corrupt wraps a read failure, logging it once per handle with the bucket
// and key.
func (h *Handle) corrupt(err error) error {
	if errors.Is(err, ErrClosed) {
		return err
	}
	if !errors.Is(err, ErrCorruptBlob) && !errors.Is(err, ErrUnsupportedFormat) {
		err = fmt.Errorf("%w: %w", ErrCorruptBlob, err)
	}
	if h.logged.CompareAndSwap(false, true) {
		h.s.logger.Error("object data failed verification", "bucket", h.obj.Bucket, "key", h.obj.Key, "object", h.obj.ID.String(), "err", err)
	}
	return err
}

// Close releases the version.
func (h *Handle) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil
	}
	h.closed = true
	for _, ob := range h.open {
		ob.evicted = true
		if ob.users == 0 {
			ob.f.Close()
		}
	}
	h.open = nil
	if !h.obj.Inline {
		h.s.blobs.release(h.obj.Blobs)
	}
	clear(h.key)
	return nil
}

// Head returns an object's record.
func (s *Store) Head(ctx context.Context, bucket, key string) (*meta.Object, error) {
	var obj *meta.Object
	err := s.meta.View(ctx, func(tx *meta.Txn) error {
		var err error
		obj, err = tx.GetObjectInBucket(bucket, key)
		return err
	})
	return obj, err
}

// List returns a page of a bucket listing.
func (s *Store) List(ctx context.Context, bucket string, opts meta.ListOptions) (*meta.ListPage, error) {
	var page *meta.ListPage
	err := s.meta.View(ctx, func(tx *meta.Txn) error {
		if _, err := tx.GetBucket(bucket); err != nil {
			return err
		}
		var err error
		page, err = tx.List(bucket, opts)
		return err
	})
	return page, err
}

// ListRecords returns the page List would, its objects' records not yet
// checked or decoded (meta.RecordPage), for a listing that answers while it
// decodes. Release the page when done.
func (s *Store) ListRecords(ctx context.Context, bucket string, opts meta.ListOptions) (*meta.RecordPage, error) {
	var page *meta.RecordPage
	err := s.meta.View(ctx, func(tx *meta.Txn) error {
		if _, err := tx.GetBucket(bucket); err != nil {
			return err
		}
		var err error
		page, err = tx.ListRecords(bucket, opts)
		return err
	})
	return page, err
}

// HasPrefix reports whether any object's key starts with prefix.
func (s *Store) HasPrefix(ctx context.Context, bucket, prefix string) (bool, error) {
	var ok bool
	err := s.meta.View(ctx, func(tx *meta.Txn) error {
		var err error
		ok, err = tx.HasObjects(bucket, prefix)
		return err
	})
	return ok, err
}
