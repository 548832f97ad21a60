package cryptostore

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/minio/crc64nvme"

	"github.com/sealfs/sealfs/meta"
)

// Composed versions (FORMAT.md, section 12).
//
// A file edited in place through the mount, or grown by a truncate or a
// write past its end, is committed as a composed version: a list of
// extents (meta.BlobRef) that read the bytes it shares with the version it
// was edited from out of that version's blobs, the bytes written since out
// of one new blob, and the ranges never written as holes, stored nowhere.
// A 4 KiB patch into 1 GiB then writes one chunk, and `truncate -s 4G`
// writes nothing but the record.
//
// The new blob is sealed under the base version's data key, which the new
// record keeps wrapped as it was (meta.Encryption.KeyObject names the
// object id it is bound to): no KMS call, and the key's nonce budget is not
// touched, because every blob has a subkey of its own. Its chunks bind the
// new version's object id, so a chunk moved between the two versions'
// blobs fails; the shared extents name the id their blob was sealed under
// (BlobRef.Owner).
//
// The version is staged like any other (Staged) and committed by the one
// commit: the commit checks that every shared blob still belongs to the
// object's current version (otherwise the data is rewritten whole, as when
// the bucket's encryption setting changed) and removes only the blobs of
// the version it replaces that the new one does not share.

// Range is a byte range of an object's content.
type Range struct{ Off, Len int64 }

// ComposeInput describes a version made from an older one with some ranges
// rewritten.
type ComposeInput struct {
	Bucket, Key string
	Meta        meta.ObjectMeta
	// Condition is used by the commit, as PutInput.Condition.
	Condition func(cur *meta.Object) error
	// Size is the new content's length.
	Size int64
	// Base is the version edited (nil: none, or one whose blobs cannot be
	// shared: its bytes are then copied). The caller keeps it open until
	// the Staged is committed or discarded.
	Base *Handle
	// BaseStaged, instead of Base, is data staged and not committed (the
	// mount's stream): the composed version takes it over, with its
	// object id, key and blobs, when it shares them; it is then done
	// (Commit and Discard do nothing), and the composed version's commit
	// or discard decides its blobs' fate.
	BaseStaged *Staged
	// BaseLen: the bytes [0, BaseLen) outside Changed are Base's at the
	// same offsets; the bytes from BaseLen outside Changed are zeros.
	BaseLen int64
	// Changed lists the ranges written since, sorted and disjoint, within
	// [0, Size).
	Changed []Range
	// Content reads the whole new content: Changed (and anything copied)
	// is read from it.
	Content io.ReaderAt
}

// Composition limits: beyond them the version is compacted (every shared
// byte copied into the new blob; holes stay holes).
const (
	// minHole: a run of zeros shorter than this is stored as data.
	minHole = 64 << 10
	// maxExtents bounds a record's extent list.
	maxExtents = 128
	// maxSharedBlobs bounds the blobs a version reads from (Open checks
	// each is there).
	maxSharedBlobs = 16
	// garbageSlack: a version may keep blobs holding up to its own data
	// size plus this much besides what it reads.
	garbageSlack = 64 << 20
)

type segKind uint8

const (
	segNew segKind = iota
	segHole
	segRef
)

type seg struct {
	kind segKind
	off  int64 // in the new content
	n    int64
	ref  meta.BlobRef // segRef: the extent
	crc  uint64       // segNew: CRC-64/NVME of its bytes, once sealed
}

// segments lays out the new content: what Changed covers is new, base
// bytes are shared (or copied, if copyBase), the rest holes.
func (in *ComposeInput) segments(baseExt []meta.BlobRef, baseID meta.ObjectID, copyBase bool) []seg {
	var out []seg
	add := func(s seg) {
		if s.n == 0 {
			return
		}
		if s.kind == segHole && s.n < minHole {
			s.kind = segNew
		}
		if k := len(out) - 1; k >= 0 {
			p := &out[k]
			switch {
			case p.kind == segNew && s.kind == segNew, p.kind == segHole && s.kind == segHole:
				p.n += s.n
				return
			case p.kind == segRef && s.kind == segRef && p.ref.ID == s.ref.ID && p.ref.Owner == s.ref.Owner &&
				p.ref.Off+p.ref.Size == s.ref.Off:
				p.n += s.n
				p.ref.Size += s.n
				return
			}
		}
		out = append(out, s)
	}
	var starts []int64
	var o int64
	for _, e := range baseExt {
		starts = append(starts, o)
		o += e.Size
	}
	gap := func(a, b int64) {
		if end := min(b, in.BaseLen); a < end {
			if baseExt == nil {
				add(seg{kind: segNew, off: a, n: end - a})
			}
			for i, e := range baseExt {
				lo, hi := max(a, starts[i]), min(end, starts[i]+e.Size)
				if lo >= hi {
					continue
				}
				switch {
				case e.Hole:
					add(seg{kind: segHole, off: lo, n: hi - lo})
				case copyBase:
					add(seg{kind: segNew, off: lo, n: hi - lo})
				default:
					r := meta.BlobRef{ID: e.ID, Index: e.Index, Size: hi - lo, Off: e.Off + lo - starts[i],
						BlobSize: e.StoredSize(), Owner: e.SealedFor(baseID)}
					add(seg{kind: segRef, off: lo, n: hi - lo, ref: r})
				}
			}
			a = end
		}
		if a < b {
			add(seg{kind: segHole, off: a, n: b - a})
		}
	}
	pos := int64(0)
	for _, r := range in.Changed {
		gap(pos, r.Off)
		add(seg{kind: segNew, off: r.Off, n: r.Len})
		pos = r.Off + r.Len
	}
	gap(pos, in.Size)
	return out
}

// tooFragmented reports whether segs should be compacted.
func tooFragmented(segs []seg) bool {
	if len(segs) > maxExtents {
		return true
	}
	blobs := map[meta.BlobID]int64{}
	var data, stored int64
	for _, s := range segs {
		switch s.kind {
		case segNew:
			data += s.n
			stored += s.n
		case segRef:
			data += s.n
			if _, ok := blobs[s.ref.ID]; !ok {
				blobs[s.ref.ID] = s.ref.BlobSize
				stored += s.ref.BlobSize
			}
		}
	}
	return len(blobs) > maxSharedBlobs || stored > 2*data+garbageSlack
}

// Compose stages the version in describes: only the changed bytes are
// sealed and written; see the comment at the top of this file. A content
// with neither a hole nor a shared range is staged whole, as Stage does.
func (s *Store) Compose(ctx context.Context, in *ComposeInput) (*Staged, error) {
	if err := meta.ValidKey(in.Key); err != nil {
		return nil, err
	}
	b, err := s.GetBucket(ctx, in.Bucket)
	if err != nil {
		return nil, err
	}
	base := in.Base
	var baseCRC uint64
	var haveCRC bool
	var adopt *Staged // BaseStaged, taken over if shared
	if p := in.BaseStaged; p != nil {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.done {
			return nil, ErrStagedDone
		}
		base, adopt = p.h, p
		if c, ok := p.st.sums.Checksums[CRC64NVME]; ok && len(c) == 8 {
			baseCRC, haveCRC = binary.BigEndian.Uint64(c), true
		}
	} else if base != nil {
		baseCRC, haveCRC = objectCRC64(base.obj)
	}
	var baseExt []meta.BlobRef
	var baseID meta.ObjectID
	share := false
	if base != nil && !base.obj.Inline && in.BaseLen <= base.Size() {
		baseExt, baseID = base.obj.Blobs, base.obj.ID
		enc := base.obj.Encryption
		share = b.EncryptionOn == (enc != nil) && (enc == nil || enc.KeyID == b.MasterKeyID)
	}
	segs := in.segments(baseExt, baseID, !share)
	if share && tooFragmented(segs) {
		segs = in.segments(baseExt, baseID, true)
	}
	shared, holes := false, false
	var newBytes int64
	for _, sg := range segs {
		switch sg.kind {
		case segRef:
			shared = true
		case segHole:
			holes = true
		case segNew:
			newBytes += sg.n
		}
	}
	if !shared && !holes {
		return s.stageIn(ctx, &PutInput{Bucket: in.Bucket, Key: in.Key, Meta: in.Meta, Condition: in.Condition,
			Body: io.NewSectionReader(in.Content, 0, in.Size), Size: in.Size}, b)
	}

	st := &staged{bucket: in.Bucket, id: meta.NewObjectID(), size: in.Size, owned: true, composed: true, fresh: []meta.BlobID{}}
	var index uint32 // of the new blob
	switch {
	case shared && adopt != nil:
		// The staged data was never committed: its id, key and blobs
		// become the composed version's.
		st.id, st.key, st.enc = adopt.st.id, bytes.Clone(adopt.st.key), adopt.st.enc
		if adopt.st.owned {
			st.fresh = append(st.fresh, adopt.st.ownedBlobs()...)
		}
		for _, r := range adopt.st.blobs {
			index = max(index, r.Index+1)
		}
	case shared:
		st.key = bytes.Clone(base.key)
		if enc := base.obj.Encryption; enc != nil {
			e := *enc
			e.WrappedKey = bytes.Clone(enc.WrappedKey)
			e.KeyObject = keyObject(base.obj)
			st.enc = &e
		}
	case b.EncryptionOn:
		if st.key, st.enc, err = s.newDataKey(ctx, b, st.id); err != nil {
			return nil, err
		}
	}
	var newID meta.BlobID
	if newBytes > 0 {
		if newID, err = s.sealSegments(ctx, st, index, segs, in.Content); err != nil {
			return nil, err
		}
		st.fresh = append(st.fresh, newID)
	}
	var blobOff int64
	borrowed := map[meta.BlobID]bool{}
	for _, id := range st.fresh {
		borrowed[id] = true // not borrowed: this version's own
	}
	for _, sg := range segs {
		switch sg.kind {
		case segHole:
			st.blobs = append(st.blobs, meta.BlobRef{Hole: true, Size: sg.n})
		case segRef:
			r := sg.ref
			if r.Owner == st.id {
				r.Owner = meta.ObjectID{}
			}
			st.blobs = append(st.blobs, r)
			if !borrowed[r.ID] {
				borrowed[r.ID] = true
				st.borrowed = append(st.borrowed, r.ID)
			}
		case segNew:
			st.blobs = append(st.blobs, meta.BlobRef{ID: newID, Index: index, Size: sg.n, Off: blobOff, BlobSize: newBytes})
			blobOff += sg.n
		}
	}
	// fail throws away what this call wrote: the new blob, not the staged
	// data it was taking over.
	fail := func(err error) (*Staged, error) {
		if newID != (meta.BlobID{}) {
			s.blobs.abandon(newID)
		}
		return nil, err
	}
	crc, ok, err := composedCRC(in, base, baseCRC, haveCRC, segs)
	if err != nil {
		return fail(err)
	}
	st.sums = Sums{Size: in.Size}
	if ok {
		st.sums.Checksums = map[string][]byte{CRC64NVME: binary.BigEndian.AppendUint64(nil, crc)}
	}
	obj := &meta.Object{Bucket: in.Bucket, Key: in.Key, ID: st.id, Size: st.size, Encryption: st.enc, Blobs: st.blobs}
	s.blobs.acquire(st.blobs)
	h, err := s.newHandleKey(obj, bytes.Clone(st.key), nil)
	if err != nil {
		s.blobs.release(st.blobs)
		return fail(err)
	}
	if adopt != nil {
		adopt.done = true
		adopt.h.Close()
	}
	return &Staged{s: s, in: PutInput{Bucket: in.Bucket, Key: in.Key, Meta: in.Meta.Clone(), Condition: in.Condition}, st: st, h: h}, nil
}

// sealSegments writes the new segments of segs, read from content, into
// one new blob under st's key and id with blob index index, and sets each
// one's CRC.
func (s *Store) sealSegments(ctx context.Context, st *staged, index uint32, segs []seg, content io.ReaderAt) (meta.BlobID, error) {
	if err := s.meta.CheckSpace(); err != nil {
		return meta.BlobID{}, err
	}
	sealer, err := NewSealer(BlobParams{Key: st.key, ObjectID: st.id, Index: index, ChunkSize: s.cfg.ChunkSize})
	if err != nil {
		return meta.BlobID{}, err
	}
	var readers []io.Reader
	hashes := make(map[int]*crcWriter)
	for i, sg := range segs {
		if sg.kind == segNew {
			cw := &crcWriter{h: crc64nvme.New()}
			hashes[i] = cw
			readers = append(readers, io.TeeReader(io.NewSectionReader(content, sg.off, sg.n), cw))
		}
	}
	id, w, err := s.blobs.create(ctx)
	if err != nil {
		return meta.BlobID{}, err
	}
	_, err = s.pipe(ctx, sealer, w, io.MultiReader(readers...), &hasher{})
	if err != nil {
		w.Abort()
		s.blobs.abandon(id)
		return meta.BlobID{}, err
	}
	if err := s.blobs.finish(id, w); err != nil {
		return meta.BlobID{}, err
	}
	for i, cw := range hashes {
		segs[i].crc = cw.h.Sum64()
	}
	return id, nil
}

type crcWriter struct {
	h interface {
		io.Writer
		Sum64() uint64
	}
}

func (c *crcWriter) Write(p []byte) (int, error) { return c.h.Write(p) }

// composedCRC derives the new content's CRC-64/NVME without reading what
// it shares with the base: from the base's checksum and the bytes that
// changed (the CRC is linear: FORMAT.md section 12), or by folding the
// segments' CRCs when nothing is shared. ok is false when the base has no
// CRC-64/NVME to start from, or was cut short (BaseLen below its size):
// the version then carries no full-object checksum.
func composedCRC(in *ComposeInput, base *Handle, baseCRC uint64, haveCRC bool, segs []seg) (crc uint64, ok bool, err error) {
	shared := false
	for _, sg := range segs {
		shared = shared || sg.kind == segRef
	}
	if !shared {
		for _, sg := range segs {
			c := sg.crc
			if sg.kind == segHole {
				c = crcZeros(sg.n)
			}
			crc = crcCombine(crc, c, sg.n)
		}
		return crc, true, nil
	}
	if in.BaseLen != base.Size() || !haveCRC {
		return 0, false, nil
	}
	// B' = the base followed by zeros up to Size; the new content differs
	// from it only in the new segments.
	grow := in.Size - in.BaseLen
	crc = crcCombine(baseCRC, crcZeros(grow), grow)
	buf := make([]byte, 256<<10)
	for _, sg := range segs {
		if sg.kind != segNew {
			continue
		}
		d := crcRaw(sg.crc, sg.n)
		if sg.off < in.BaseLen {
			m := min(sg.n, in.BaseLen-sg.off)
			oh := crc64nvme.New()
			if _, err := io.CopyBuffer(oh, io.NewSectionReader(base, sg.off, m), buf); err != nil {
				return 0, false, fmt.Errorf("reading the base version: %w", err)
			}
			d ^= crcShift(crcRaw(oh.Sum64(), m), sg.n-m)
		}
		crc ^= crcShift(d, in.Size-sg.off-sg.n)
	}
	return crc, true, nil
}

// objectCRC64 returns a record's CRC-64/NVME, if it has one.
func objectCRC64(o *meta.Object) (uint64, bool) {
	for _, c := range o.Checksums {
		if c.Algorithm != CRC64NVME {
			continue
		}
		v, err := base64.StdEncoding.DecodeString(c.Value)
		if err != nil || len(v) != 8 {
			return 0, false
		}
		return binary.BigEndian.Uint64(v), true
	}
	return 0, false
}
