package cryptostore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sealfs/sealfs/meta"
)

// PutInput describes an object write.
type PutInput struct {
	Bucket string
	Key    string
	Body   io.Reader
	// Size is the body's length, or -1 if unknown. A body of another length
	// fails the write with ErrIncompleteBody or ErrBodyTooLong.
	Size int64
	Meta meta.ObjectMeta
	// Checksums lists algorithms to compute besides DefaultChecksum (and
	// the MD5, computed for data stored plain).
	Checksums []string
	// MD5 asks for the body's MD5 in the Sums Verify sees even if the
	// object is stored encrypted (to check a client's Content-MD5). Data
	// stored plain always has it: it is a plain object's ETag.
	MD5 bool
	// Verify, if set, is called once the whole body has been read and before
	// anything is committed; an error aborts the write (a bad trailer
	// checksum, say).
	Verify func(*Sums) error
	// Condition, if set, is called inside the commit transaction with the
	// current object (nil if none); an error aborts the write. IfMatch and
	// IfNoneMatch build the usual ones.
	Condition func(cur *meta.Object) error
	// ReplicationStatus is stored as given ("REPLICA" for replicas).
	ReplicationStatus string
	// ReplicaSourceModified is stored as given: for a replica, the
	// LastModified of the source version it copies (see meta.Object).
	ReplicaSourceModified time.Time
}

// IfMatch is a PutInput/CopyInput condition: the current object must exist
// and have this ETag.
func IfMatch(etag string) func(*meta.Object) error {
	return func(cur *meta.Object) error {
		if cur == nil || !etagEqual(cur.ETag, etag) {
			return ErrPreconditionFailed
		}
		return nil
	}
}

// IfNoneMatch is a condition: "*" means the key must not exist; an ETag
// means the current object must not have it.
func IfNoneMatch(etag string) func(*meta.Object) error {
	return func(cur *meta.Object) error {
		if cur != nil && (etag == "*" || etagEqual(cur.ETag, etag)) {
			return ErrPreconditionFailed
		}
		return nil
	}
}

func etagEqual(stored, given string) bool {
	if len(given) >= 2 && given[0] == '"' && given[len(given)-1] == '"' {
		given = given[1 : len(given)-1]
	}
	return stored == given
}

// errSettingChanged: the bucket's encryption setting changed between
// staging and commit.
var errSettingChanged = errors.New("bucket encryption setting changed")

// staged is object data written (sealed) but not yet committed.
type staged struct {
	bucket string
	id     meta.ObjectID
	index  uint32
	size   int64
	sums   Sums
	enc    *meta.Encryption // nil: plain
	key    []byte           // plaintext data key, nil when plain
	inline []byte           // sealed bytes kept in the metadata store, or
	blobs  []meta.BlobRef   // blob files
	// owned: the blobs were written for this commit and are removed if it
	// fails. A multipart Complete stages the upload's parts, not owned.
	owned bool
	// partSizes, for an object assembled from parts, are the parts' sizes,
	// and partMD5s their MD5s where known (all or none): a plain object's
	// ETag is computed from them.
	partSizes []int64
	partMD5s  [][]byte
	// composed: a composed version (compose.go). Its owned blobs are
	// fresh only; borrowed are blobs of the object's current version it
	// shares, which the commit checks are still that version's.
	composed bool
	fresh    []meta.BlobID
	borrowed []meta.BlobID
}

// ownedBlobs returns the blobs written for this commit.
func (st *staged) ownedBlobs() []meta.BlobID {
	if st.composed {
		return st.fresh
	}
	return blobIDs(st.blobs)
}

// errBaseReplaced: a composed version's base is no longer the object's
// current version, so its blobs cannot be shared.
var errBaseReplaced = errors.New("the version edited was replaced")

// etag returns the ETag of the version st holds, chosen from how its data
// is actually stored (sums.go): random for encrypted data, from the MD5s
// for plain data. Called for each commit attempt, after any restage.
func (st *staged) etag() (string, error) {
	switch {
	case st.composed:
		// Not an MD5 of the data (computing one would read it all):
		// the encrypted form, for plain data too (sums.go).
		return randomETag(1), nil
	case st.enc != nil:
		return randomETag(max(1, len(st.partSizes))), nil
	case st.partSizes != nil:
		if len(st.partMD5s) != len(st.partSizes) {
			return "", fmt.Errorf("cryptostore: plain object from %d parts without their MD5s", len(st.partSizes))
		}
		return multipartETag(st.partMD5s), nil
	case st.sums.MD5 == nil:
		return "", errors.New("cryptostore: plain object without its MD5")
	}
	return md5ETag(st.sums.MD5), nil
}

// Put writes an object through the one write path and returns its record.
func (s *Store) Put(ctx context.Context, in *PutInput) (*meta.Object, error) {
	st, err := s.stageInput(ctx, in, nil)
	if err != nil {
		return nil, err
	}
	return s.commitStaged(ctx, st, newRecord(in, st), in.Condition, nil)
}

// stageInput stages in's body under a fresh object id, encrypted if the
// bucket's setting is on now (commitStaged checks it again), and runs
// in.Verify: what Put and Stage do before their commit. b is the bucket's
// record if the caller has just read it; nil reads it.
func (s *Store) stageInput(ctx context.Context, in *PutInput, b *meta.Bucket) (*staged, error) {
	if err := meta.ValidKey(in.Key); err != nil {
		return nil, err
	}
	if b == nil {
		var err error
		if b, err = s.GetBucket(ctx, in.Bucket); err != nil {
			return nil, err
		}
	}
	h, err := newHasher(in.Checksums)
	if err != nil {
		return nil, err
	}
	if in.MD5 {
		h.withMD5()
	}
	st, err := s.stage(ctx, b, meta.NewObjectID(), 0, in.Body, in.Size, h, s.cfg.InlineMax)
	if err != nil {
		return nil, err
	}
	if in.Verify != nil {
		if err := in.Verify(&st.sums); err != nil {
			s.discard(st)
			return nil, err
		}
	}
	return st, nil
}

// newRecord is the record Put (and Staged.Commit) commits for in's data,
// staged in st.
func newRecord(in *PutInput, st *staged) *meta.Object {
	return &meta.Object{
		Bucket:                in.Bucket,
		Key:                   in.Key,
		ID:                    st.id,
		Size:                  st.size,
		Checksums:             st.sums.list(),
		Meta:                  in.Meta.Clone(),
		ReplicationStatus:     in.ReplicationStatus,
		ReplicaSourceModified: in.ReplicaSourceModified,
	}
}

// commitStaged commits obj with the data in st, rewriting the data under
// the bucket's setting if it changed since staging. extra, if set, runs in
// the commit transaction (multipart Complete drops the upload there) and
// returns blobs that stop being referenced. It consumes st.
func (s *Store) commitStaged(ctx context.Context, st *staged, obj *meta.Object,
	cond func(*meta.Object) error, extra func(tx *meta.Txn, obj *meta.Object) ([]meta.BlobRef, error)) (*meta.Object, error) {
	for attempt := 0; ; attempt++ {
		obj.ID = st.id
		obj.Encryption = st.enc
		obj.Blobs = st.blobs
		obj.Inline = st.inline != nil
		etag, err := st.etag()
		if err != nil {
			s.discard(st)
			return nil, err
		}
		obj.ETag = etag
		if s.cfg.testHookBeforeCommit != nil {
			s.cfg.testHookBeforeCommit()
		}
		var old *meta.Object
		var dropped []meta.BlobRef
		err = s.meta.Update(ctx, func(tx *meta.Txn) error {
			old, dropped = nil, nil
			b, err := tx.GetBucket(obj.Bucket)
			if err != nil {
				return err
			}
			if b.EncryptionOn != (st.enc != nil) || (st.enc != nil && b.MasterKeyID != st.enc.KeyID) {
				return errSettingChanged
			}
			cur, err := tx.GetObject(obj.Bucket, obj.Key)
			switch {
			case errors.Is(err, meta.ErrNoSuchKey):
				cur = nil
			case err != nil:
				return err
			}
			if cond != nil {
				if err := cond(cur); err != nil {
					return err
				}
			}
			if len(st.borrowed) > 0 && !sharesWith(st.borrowed, cur) {
				return errBaseReplaced
			}
			obj.LastModified = time.Now().UTC()
			if s.cfg.OnCommit != nil {
				if err := s.cfg.OnCommit(tx, &CommitEvent{Bucket: b, Key: obj.Key, Old: cur, New: obj}); err != nil {
					return err
				}
			}
			if err := tx.PutObject(obj); err != nil {
				return err
			}
			if st.inline != nil {
				if err := tx.PutInline(obj.ID, st.inline); err != nil {
					return err
				}
			}
			if cur != nil && cur.Inline && cur.ID != obj.ID {
				if err := tx.DeleteInline(cur.ID); err != nil {
					return err
				}
			}
			if extra != nil {
				if dropped, err = extra(tx, obj); err != nil {
					return err
				}
			}
			old = cur
			return nil
		})
		if (errors.Is(err, errSettingChanged) || errors.Is(err, errBaseReplaced)) && attempt < 8 {
			// Rare: default encryption was switched while the data was
			// being written. Rewrite it under the setting now in force.
			st2, rerr := s.restage(ctx, st)
			s.discard(st)
			if rerr != nil {
				return nil, rerr
			}
			st = st2
			continue
		}
		if err != nil {
			if st.owned && s.committedAnyway(obj, err) {
				// Only the sync after the commit failed: the record may
				// reach the disk, so its blobs stay (and what it replaced
				// stays too).
				s.blobs.settle(st.ownedBlobs()...)
				return nil, err
			}
			s.discard(st)
			return nil, err
		}
		if s.cfg.testHookAfterCommit != nil {
			s.cfg.testHookAfterCommit()
		}
		if st.owned {
			s.blobs.settle(st.ownedBlobs()...)
		}
		if old != nil && old.ID != obj.ID {
			dropped = append(dropped, blobsNotIn(old.Blobs, obj.Blobs)...)
		}
		s.removeAfterCommit(ctx, dropped)
		s.changed(ChangePut, obj.Bucket, obj.Key)
		return obj, nil
	}
}

// discard throws staged data away.
func (s *Store) discard(st *staged) {
	if st.owned {
		s.blobs.abandon(st.ownedBlobs()...)
	}
}

// sharesWith reports whether every blob of ids belongs to cur.
func sharesWith(ids []meta.BlobID, cur *meta.Object) bool {
	if cur == nil || cur.Inline {
		return false
	}
	have := make(map[meta.BlobID]bool, len(cur.Blobs))
	for _, r := range cur.Blobs {
		if !r.Hole {
			have[r.ID] = true
		}
	}
	for _, id := range ids {
		if !have[id] {
			return false
		}
	}
	return true
}

func blobIDs(refs []meta.BlobRef) []meta.BlobID {
	ids := make([]meta.BlobID, len(refs))
	for i, r := range refs {
		ids[i] = r.ID
	}
	return ids
}

// restage rewrites staged data under the bucket's current encryption
// setting, as one new blob (or inline) with a new object id, keeping the
// sums computed the first time. Data that becomes plain gets the MD5s its
// ETag needs if they were not computed (they are not for encrypted data).
func (s *Store) restage(ctx context.Context, st *staged) (*staged, error) {
	b, err := s.GetBucket(ctx, st.bucket)
	if err != nil {
		return nil, err
	}
	obj := &meta.Object{Bucket: st.bucket, ID: st.id, Size: st.size, Encryption: st.enc, Blobs: st.blobs, Inline: st.inline != nil}
	s.blobs.acquire(st.blobs)
	h, err := s.newHandleKey(obj, st.key, st.inline)
	if err != nil {
		s.blobs.release(st.blobs)
		return nil, err
	}
	defer h.Close()
	var hs *hasher // nil: nothing to compute
	var parts *partMD5s
	switch {
	case b.EncryptionOn:
	case st.partSizes != nil && len(st.partMD5s) != len(st.partSizes):
		parts = newPartMD5s(st.partSizes)
		hs = &hasher{also: parts}
	case st.partSizes == nil && st.sums.MD5 == nil:
		hs = &hasher{}
		hs.withMD5()
	}
	st2, err := s.stage(ctx, b, meta.NewObjectID(), 0, h.Reader(0, st.size), st.size, hs, s.cfg.InlineMax)
	if err != nil {
		return nil, err
	}
	sums := st.sums
	if hs != nil && hs.md5 != nil && st.partSizes == nil {
		sums.MD5 = st2.sums.MD5
	}
	st2.sums = sums
	st2.partSizes, st2.partMD5s = st.partSizes, st.partMD5s
	if parts != nil {
		if st2.partMD5s = parts.done(); st2.partMD5s == nil {
			s.discard(st2)
			return nil, fmt.Errorf("%w: parts do not add up to the object", ErrCorruptBlob)
		}
	}
	return st2, nil
}

// stage seals body into a new blob, or inline bytes when it is at most
// inlineMax bytes (inlineMax < 0: never inline), for bucket b as the caller
// read it. h, if set, receives every plaintext byte. Encryption, if b's is
// on, uses a fresh data key for the object.
func (s *Store) stage(ctx context.Context, b *meta.Bucket, id meta.ObjectID, index uint32,
	body io.Reader, size int64, h *hasher, inlineMax int) (*staged, error) {
	st := &staged{bucket: b.Name, id: id, index: index}
	if !b.EncryptionOn && h != nil {
		h.withMD5() // a plain object's ETag
	}
	if b.EncryptionOn {
		key, enc, err := s.newDataKey(ctx, b, id)
		if err != nil {
			return nil, err
		}
		st.key, st.enc = key, enc
	}
	return st, s.stageWith(ctx, st, body, size, h, inlineMax)
}

// stageWith seals body under st's key (set by the caller).
func (s *Store) stageWith(ctx context.Context, st *staged, body io.Reader, size int64, h *hasher, inlineMax int) error {
	if h == nil {
		h = &hasher{} // restaging: sums are already known
	}
	if size >= 0 {
		// Read one byte past the declared size to tell a long body.
		body = io.LimitReader(body, size+1)
	}
	params := BlobParams{Key: st.key, ObjectID: st.id, Index: st.index, ChunkSize: s.cfg.ChunkSize}
	sealer, err := NewSealer(params)
	if err != nil {
		return err
	}

	var head []byte
	if inlineMax >= 0 && (size < 0 || size <= int64(inlineMax)) {
		n := inlineMax
		if size >= 0 {
			n = int(min(size, int64(inlineMax)))
		}
		head = make([]byte, n+1) // one byte more tells a long body
		n, err := io.ReadFull(body, head)
		head = head[:n]
		switch {
		case err == io.EOF || err == io.ErrUnexpectedEOF:
			if err := checkSize(int64(n), size); err != nil {
				return err
			}
			h.write(head)
			st.size = int64(n)
			st.inline = sealAll(sealer, head)
			st.sums = h.sums()
			return nil
		case err != nil:
			return fmt.Errorf("reading body: %w", err)
		}
	}

	// A blob must not eat the free space the metadata store keeps in
	// reserve: checked before it starts and before every piece.
	if err := s.meta.CheckSpace(); err != nil {
		return err
	}
	id, w, err := s.blobs.create(ctx)
	if err != nil {
		return err
	}
	n, err := s.pipe(ctx, sealer, w, io.MultiReader(bytes.NewReader(head), body), h)
	if err == nil {
		err = checkSize(n, size)
	}
	if err != nil {
		w.Abort()
		s.blobs.abandon(id)
		return err
	}
	if err := s.blobs.finish(id, w); err != nil {
		return err
	}
	st.size = n
	st.blobs = []meta.BlobRef{{ID: id, Index: st.index, Size: n}}
	st.owned = true
	st.sums = h.sums()
	return nil
}

func checkSize(n, want int64) error {
	switch {
	case want < 0 || n == want:
		return nil
	case n < want:
		return fmt.Errorf("%w: want %d bytes, have %d", ErrIncompleteBody, want, n)
	default:
		return fmt.Errorf("%w: want %d bytes", ErrBodyTooLong, want)
	}
}

func (h *hasher) write(p []byte) {
	if h.active() {
		h.Write(p)
	}
}

// sealAll seals a whole small plaintext in memory.
func sealAll(sl *Sealer, p []byte) []byte {
	cs := sl.ChunkSize()
	out := make([]byte, 0, HeaderSize+len(p)+(len(p)/cs+1)*sl.Overhead())
	out = append(out, sl.Header()...)
	var i uint64
	for {
		n := min(cs, len(p))
		final := n == len(p)
		out = sl.SealChunk(out, p[:n], i, final)
		if final {
			return out
		}
		p = p[n:]
		i++
	}
}

// Pipeline geometry: pieces of pieceChunks chunks flow from the reader to a
// hashing stage and a sealing+writing stage that run side by side; pipeDepth
// pieces are in flight at most, so memory stays O(chunk), not O(object).
const (
	pieceBytes = 256 << 10
	pipeDepth  = 4
)

type piece struct {
	buf   []byte
	n     int
	first uint64 // index of the piece's first chunk
	final bool
	left  atomic.Int32 // stages still using buf
}

// sealBuf returns a pooled buffer, empty, with room for n bytes: the
// sealing stage's output for one piece (~260 KiB, which would otherwise be
// garbage left by every PUT past the inline size). Writers do not keep what
// they are given past Write (a file, or an io.Pipe to an upload), so the
// buffer goes back to the pool when the pipe ends.
func (s *Store) sealBuf(n int) *[]byte {
	if bp, ok := s.sealBufs.Get().(*[]byte); ok && cap(*bp) >= n {
		*bp = (*bp)[:0]
		return bp
	}
	b := make([]byte, 0, n)
	return &b
}

// pipe seals everything r yields into f (header first), hashing it on the
// way, and returns the plaintext length.
func (s *Store) pipe(ctx context.Context, sl *Sealer, f io.Writer, r io.Reader, h *hasher) (int64, error) {
	if _, err := f.Write(sl.Header()); err != nil {
		return 0, err
	}
	cs := sl.ChunkSize()
	pieceLen := max(cs, pieceBytes/cs*cs)
	free := make(chan *piece, pipeDepth)
	for i := 0; i < pipeDepth; i++ {
		p := &piece{}
		if pieceLen == pieceBytes {
			p.buf = *s.pieceBufs.Get().(*[]byte)
		} else {
			p.buf = make([]byte, pieceLen)
		}
		free <- p
	}
	defer func() {
		if pieceLen != pieceBytes {
			return
		}
		for {
			select {
			case p := <-free:
				s.pieceBufs.Put(&p.buf)
			default:
				return
			}
		}
	}()
	done := func(p *piece) {
		if p.left.Add(-1) == 0 {
			free <- p
		}
	}

	hashCh := make(chan *piece, pipeDepth)
	sealCh := make(chan *piece, pipeDepth)
	var wg sync.WaitGroup
	var werr error
	wg.Add(2)
	go func() {
		defer wg.Done()
		for p := range hashCh {
			h.write(p.buf[:p.n])
			done(p)
		}
	}()
	go func() {
		defer wg.Done()
		outp := s.sealBuf(pieceLen + (pieceLen/cs)*sl.Overhead())
		defer s.sealBufs.Put(outp)
		out := *outp
		for p := range sealCh {
			if werr == nil {
				out = out[:0]
				data := p.buf[:p.n]
				idx := p.first
				for {
					n := min(cs, len(data))
					last := p.final && n == len(data)
					out = sl.SealChunk(out, data[:n], idx, last)
					data = data[n:]
					idx++
					if len(data) == 0 {
						break
					}
				}
				if werr = s.meta.CheckSpace(); werr == nil {
					// The file store syncs in the background every
					// few MiB (fileWriter).
					_, werr = f.Write(out)
				}
			}
			done(p)
		}
	}()
	stages := int32(2)
	if !h.active() {
		stages = 1
	}
	send := func(p *piece) {
		p.left.Store(stages)
		if stages == 2 {
			hashCh <- p
		}
		sealCh <- p
	}

	var total int64
	var pending *piece
	var rerr error
	for {
		var p *piece
		select {
		case p = <-free:
		case <-ctx.Done():
			rerr = ctx.Err()
		}
		if rerr != nil {
			break
		}
		n, err := io.ReadFull(r, p.buf)
		if n == 0 && (err == io.EOF || err == io.ErrUnexpectedEOF) {
			if pending == nil {
				// Empty body: one empty final chunk.
				p.n, p.first, p.final = 0, 0, true
				send(p)
				break
			}
			free <- p
			pending.final = true
			send(pending)
			pending = nil
			break
		}
		if err != nil && err != io.ErrUnexpectedEOF {
			free <- p
			rerr = fmt.Errorf("reading body: %w", err)
			break
		}
		if pending != nil {
			send(pending)
		}
		p.n = n
		p.first = uint64(total / int64(cs))
		p.final = false
		total += int64(n)
		pending = p
		if err == io.ErrUnexpectedEOF {
			pending.final = true
			send(pending)
			pending = nil
			break
		}
	}
	if pending != nil {
		// Reading failed with a piece held back: let it go unsealed.
		free <- pending
	}
	close(hashCh)
	close(sealCh)
	wg.Wait()
	if rerr != nil {
		return total, rerr
	}
	if werr != nil {
		return total, fmt.Errorf("writing blob: %w", werr)
	}
	return total, nil
}
