package cryptostore

import (
	"bytes"

	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/dgraph-io/badger/v4"
	"github.com/minio/crc64nvme"

	"github.com/sealfs/sealfs/meta"
)

// compose stages and commits a composed version of bucket/key whose
// content is data, changed in ranges since base (nil: no base).
func (e *testEnv) compose(t *testing.T, bucket, key string, base *Handle, baseLen int64, data []byte, changed ...Range) *meta.Object {
	t.Helper()
	p, err := e.store.Compose(ctx, &ComposeInput{Bucket: bucket, Key: key, Size: int64(len(data)), Base: base,
		BaseLen: baseLen, Changed: changed, Content: bytes.NewReader(data)})
	if err != nil {
		t.Fatalf("compose: %v", err)
	}
	h, err := p.Commit(ctx, nil)
	if err != nil {
		t.Fatalf("commit: %v", err)
	}
	defer h.Close()
	return h.Object()
}

func wantContent(t *testing.T, e *testEnv, bucket, key string, data []byte) *meta.Object {
	t.Helper()
	if got := e.mustGet(t, bucket, key); !bytes.Equal(got, data) {
		t.Fatalf("%s/%s reads %d bytes, not what was written (%d bytes)", bucket, key, len(got), len(data))
	}
	o, err := e.store.Head(ctx, bucket, key)
	if err != nil {
		t.Fatal(err)
	}
	crc, ok := objectCRC64(o)
	if !ok {
		t.Fatalf("no CRC64NVME in %+v", o.Checksums)
	}
	if want := crc64nvme.Checksum(data); crc != want {
		t.Fatalf("CRC64NVME %x, content's %x", crc, want)
	}
	return o
}

// storedBytes returns the bytes of the blobs the objects read from.
func storedBytes(t *testing.T, e *testEnv, objs ...*meta.Object) (n int64) {
	t.Helper()
	for _, id := range blobsOf(objs...) {
		n += int64(len(e.readBlob(t, id)))
	}
	return n
}

func blobsOf(objs ...*meta.Object) []meta.BlobID {
	var ids []meta.BlobID
	seen := map[meta.BlobID]bool{}
	for _, o := range objs {
		for _, r := range o.Blobs {
			if !r.Hole && !seen[r.ID] {
				seen[r.ID] = true
				ids = append(ids, r.ID)
			}
		}
	}
	return ids
}

// wantGone fails unless every blob the objects read from was removed.
func wantGone(t *testing.T, e *testEnv, objs ...*meta.Object) {
	t.Helper()
	for _, id := range blobsOf(objs...) {
		if ok, err := e.store.blobs.exists(ctx, id); err != nil || ok {
			t.Fatalf("blob %s still there (%v)", id, err)
		}
	}
}

// A version grown with holes stores only what was written; the holes read
// as zeros and the full-object checksum covers them.
func TestComposeHoles(t *testing.T) {
	for _, encrypt := range []bool{true, false} {
		t.Run(fmt.Sprintf("encrypted=%v", encrypt), func(t *testing.T) {
			e := newEnv(t, func(c *Config) { c.InlineMax = -1 })
			singleGateway(t, e)
			e.bucket(t, "bkt", encrypt)
			data := make([]byte, 64<<20+12345)
			copy(data[1000:], randBytes(5000))
			copy(data[40<<20:], randBytes(70000))
			o := e.compose(t, "bkt", "f", nil, 0, data, Range{1000, 5000}, Range{40 << 20, 70000})
			if o.FormatVersion != meta.FormatVersionExtents || !o.Composed() {
				t.Fatalf("record version %d, composed %v", o.FormatVersion, o.Composed())
			}
			holes := 0
			for _, r := range o.Blobs {
				if r.Hole {
					holes++
				}
			}
			if holes != 2 {
				t.Fatalf("extents %+v: want 2 holes", o.Blobs)
			}
			wantContent(t, e, "bkt", "f", data)
			if n := storedBytes(t, e, o); n > 512<<10 {
				t.Fatalf("%d bytes stored for %d written", n, 75000)
			}
			rep, err := e.store.Scrub(ctx, ScrubOptions{})
			if err != nil || len(rep.Damaged) > 0 {
				t.Fatalf("scrub: %v %+v", err, rep)
			}
			// Nothing but a hole: no blob at all.
			empty := make([]byte, 5<<20)
			o = e.compose(t, "bkt", "g", nil, 0, empty)
			if len(o.Blobs) != 1 || !o.Blobs[0].Hole {
				t.Fatalf("extents %+v", o.Blobs)
			}
			wantContent(t, e, "bkt", "g", empty)
		})
	}
}

// A patch writes the chunks it touches; the rest is shared with the
// version it edits, whose blob stays until no version reads it.
func TestComposePatch(t *testing.T) {
	for _, encrypt := range []bool{true, false} {
		t.Run(fmt.Sprintf("encrypted=%v", encrypt), func(t *testing.T) {
			e := newEnv(t, func(c *Config) { c.InlineMax = -1 })
			singleGateway(t, e)
			e.bucket(t, "bkt", encrypt)
			data := randBytes(8 << 20)
			v1 := e.put(t, "bkt", "f", data)
			before := storedBytes(t, e, v1)
			var versions []*meta.Object

			patch := func(off int64, p []byte, size int64) *meta.Object {
				t.Helper()
				h, err := e.store.Open(ctx, "bkt", "f")
				if err != nil {
					t.Fatal(err)
				}
				defer h.Close()
				baseLen := min(h.Size(), size)
				next := make([]byte, size)
				copy(next, data[:baseLen])
				copy(next[off:], p)
				data = next
				o := e.compose(t, "bkt", "f", h, baseLen, data, Range{off, int64(len(p))})
				versions = append(versions, o)
				return o
			}
			o := patch(3<<20+100, randBytes(4096), int64(len(data)))
			shared := 0
			for _, r := range o.Blobs {
				if !r.Owner.IsZero() {
					shared++
				}
			}
			if shared != 2 || len(o.Blobs) != 3 {
				t.Fatalf("extents %+v: want the old blob shared around one new extent", o.Blobs)
			}
			if !bytes.Contains([]byte(o.ETag), []byte("-")) {
				t.Fatalf("ETag %q looks like an MD5", o.ETag)
			}
			wantContent(t, e, "bkt", "f", data)
			if ids := blobsOf(o); len(ids) != 2 || ids[0] != v1.Blobs[0].ID {
				t.Fatalf("the patched version reads from %v, want %s and one more", ids, v1.Blobs[0].ID)
			}
			if after := storedBytes(t, e, o); after-before > 100<<10 {
				t.Fatalf("%d bytes more for a 4 KiB patch", after-before)
			}
			// Patches of patches, a patch across the end, a hole grown
			// at the end.
			patch(7<<20, randBytes(100000), int64(len(data)))
			patch(100, randBytes(10), int64(len(data)))
			patch(int64(len(data))-10, randBytes(20), int64(len(data))+10)
			patch(int64(len(data))+(3<<20), randBytes(30), int64(len(data))+(4<<20))
			o = wantContent(t, e, "bkt", "f", data)
			if !o.Blobs[len(o.Blobs)-3].Hole || !o.Blobs[len(o.Blobs)-1].Hole {
				t.Fatalf("extents %+v: want a hole around the last data", o.Blobs)
			}
			checkRangesOf(t, e, "bkt", "f", data)
			rep, err := e.store.Scrub(ctx, ScrubOptions{})
			if err != nil || len(rep.Damaged) > 0 {
				t.Fatalf("scrub: %v %+v", err, rep)
			}
			// A whole rewrite drops every blob of the composed version.
			last := e.put(t, "bkt", "f", randBytes(100))
			wantGone(t, e, append(versions, v1)...)
			if err := e.store.Delete(ctx, "bkt", "f"); err != nil {
				t.Fatal(err)
			}
			wantGone(t, e, last)
		})
	}
}

func checkRangesOf(t *testing.T, e *testEnv, bucket, key string, data []byte) {
	t.Helper()
	h, err := e.store.Open(ctx, bucket, key)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	for _, r := range [][2]int64{{0, 1}, {3<<20 + 50, 5000}, {7<<20 - 1, 100002}, {int64(len(data)) - 4<<20 - 100, 4<<20 + 100}, {65535, 2}} {
		off, n := r[0], min(r[1], int64(len(data))-r[0])
		buf := make([]byte, n)
		if _, err := h.ReadAt(buf, off); err != nil && err != io.EOF {
			t.Fatalf("read [%d,+%d): %v", off, n, err)
		}
		if !bytes.Equal(buf, data[off:off+n]) {
			t.Fatalf("read [%d,+%d) differs", off, n)
		}
	}
}

// Many small patches end in a compaction, not an ever longer record.
func TestComposeCompacts(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.InlineMax = -1 })
	singleGateway(t, e)
	e.bucket(t, "bkt", true)
	data := randBytes(4 << 20)
	e.put(t, "bkt", "f", data)
	for i := 0; i < 100; i++ {
		h, err := e.store.Open(ctx, "bkt", "f")
		if err != nil {
			t.Fatal(err)
		}
		off := int64(i) * 40000
		copy(data[off:], randBytes(10))
		o := e.compose(t, "bkt", "f", h, h.Size(), bytes.Clone(data), Range{off, 10})
		h.Close()
		if len(o.Blobs) > maxExtents {
			t.Fatalf("patch %d: %d extents", i, len(o.Blobs))
		}
	}
	wantContent(t, e, "bkt", "f", data)
	o, err := e.store.Head(ctx, "bkt", "f")
	if err != nil {
		t.Fatal(err)
	}
	if n := storedBytes(t, e, o); n > 3*int64(len(data))+garbageSlack {
		t.Fatalf("%d bytes stored for %d", n, len(data))
	}
}

// A version composed over one that was replaced before the commit cannot
// share its blobs: it is written whole, and nothing it read is lost.
func TestComposeBaseReplaced(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.InlineMax = -1 })
	singleGateway(t, e)
	e.bucket(t, "bkt", true)
	v1 := randBytes(3 << 20)
	o1 := e.put(t, "bkt", "f", v1)
	h, err := e.store.Open(ctx, "bkt", "f")
	if err != nil {
		t.Fatal(err)
	}
	next := bytes.Clone(v1)
	copy(next[100:], "patched")
	p, err := e.store.Compose(ctx, &ComposeInput{Bucket: "bkt", Key: "f", Size: int64(len(next)), Base: h,
		BaseLen: h.Size(), Changed: []Range{{100, 7}}, Content: bytes.NewReader(next)})
	if err != nil {
		t.Fatal(err)
	}
	o2 := e.put(t, "bkt", "f", randBytes(2<<20)) // replaced meanwhile
	nh, err := p.Commit(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if nh.Object().Composed() {
		t.Fatalf("committed composed over a replaced version: %+v", nh.Object().Blobs)
	}
	nh.Close()
	h.Close()
	wantContent(t, e, "bkt", "f", next)
	wantGone(t, e, o1, o2)
}

// recordFields splits a raw object record (version byte, fields, MAC) into
// its fields.
func recordFields(t *testing.T, v []byte) (ver byte, fields [][]byte) {
	t.Helper()
	ver, b := v[0], v[1:]
	for len(b) > 0 {
		_, n := binary.Uvarint(b)
		l, m := binary.Uvarint(b[n:])
		end := n + m + int(l)
		fields = append(fields, b[:end])
		b = b[end:]
	}
	return ver, fields
}

// Tampering with a composed record's extents is refused by its MAC;
// moving a chunk between the blobs it shares fails the chunk's binding.
func TestComposeTamper(t *testing.T) {
	badgerOnly(t, "tampers with the records in Badger's files, offline")
	for _, encrypt := range []bool{true, false} {
		t.Run(fmt.Sprintf("encrypted=%v", encrypt), func(t *testing.T) {
			e := newEnvNoCleanup(t)
			e.store.cfg.InlineMax = -1
			e.bucket(t, "bkt", encrypt)
			data := randBytes(1 << 20)
			e.put(t, "bkt", "f", data)
			h, err := e.store.Open(ctx, "bkt", "f")
			if err != nil {
				t.Fatal(err)
			}
			next := make([]byte, 4<<20)
			copy(next, data)
			copy(next[65536:], randBytes(65536))
			o := e.compose(t, "bkt", "f", h, h.Size(), next, Range{65536, 65536})
			h.Close()
			if len(o.Blobs) != 4 { // shared, new, shared, hole
				t.Fatalf("extents %+v", o.Blobs)
			}
			var variants []struct {
				name string
				rec  []byte
			}
			var orig []byte
			e = offline(t, e, func(db *badger.DB) {
				orig = rawGet(t, db, rawObjectKey("bkt", "f"))
				ver, fields := recordFields(t, orig)
				var blobs []int
				for i, f := range fields {
					if f[0] == 8 {
						blobs = append(blobs, i)
					}
				}
				join := func(fs [][]byte) []byte { return append([]byte{ver}, bytes.Join(fs, nil)...) }
				swap := append([][]byte(nil), fields...)
				swap[blobs[0]], swap[blobs[2]] = swap[blobs[2]], swap[blobs[0]]
				drop := append(append([][]byte(nil), fields[:blobs[3]]...), fields[blobs[3]+1:]...)
				v1 := bytes.Clone(orig)
				v1[0] = meta.FormatVersion
				variants = append(variants,
					struct {
						name string
						rec  []byte
					}{"swap extents", join(swap)},
					struct {
						name string
						rec  []byte
					}{"drop the hole", join(drop)},
					struct {
						name string
						rec  []byte
					}{"version 1", v1})
			})
			for _, v := range variants {
				e = offline(t, e, func(db *badger.DB) { rawSet(t, db, rawObjectKey("bkt", "f"), v.rec) })
				if _, err := e.store.Head(ctx, "bkt", "f"); err == nil {
					t.Fatalf("%s: the record was accepted", v.name)
				}
				if _, err := e.get(t, "bkt", "f"); err == nil {
					t.Fatalf("%s: the object read", v.name)
				}
			}
			e = offline(t, e, func(db *badger.DB) { rawSet(t, db, rawObjectKey("bkt", "f"), orig) })
			wantContent(t, e, "bkt", "f", next)

			// Move chunk 0 of the new blob into the old blob's chunk 0
			// (which the new version reads): same chunk index, other
			// object id and subkey.
			var oldID, newID meta.BlobID
			for _, r := range o.Blobs {
				switch {
				case r.Hole:
				case r.Owner.IsZero():
					newID = r.ID
				default:
					oldID = r.ID
				}
			}
			ob, nb := e.readBlob(t, oldID), e.readBlob(t, newID)
			stored := DefaultChunkSize + 16
			if !encrypt {
				stored = DefaultChunkSize + 4
			}
			moved := bytes.Clone(ob)
			copy(moved[HeaderSize:HeaderSize+stored], nb[HeaderSize:HeaderSize+stored])
			e.writeBlob(t, oldID, moved)
			if _, err := e.get(t, "bkt", "f"); err == nil {
				t.Fatal("a chunk moved between blobs was accepted")
			} else if !errors.Is(err, ErrCorruptBlob) {
				t.Fatalf("moved chunk: %v, want ErrCorruptBlob", err)
			}
			e.writeBlob(t, oldID, ob)
			wantContent(t, e, "bkt", "f", next)
			e.close()
		})
	}
}

// A composed version's wrapped key is bound to the version it was first
// wrapped for (Encryption.KeyObject): rotation and rewrap re-wrap it under
// that context, and it reads afterwards.
func TestComposeRewrap(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.InlineMax = -1 })
	e.bucket(t, "bkt", true)
	data := randBytes(1 << 20)
	e.put(t, "bkt", "f", data)
	h, err := e.store.Open(ctx, "bkt", "f")
	if err != nil {
		t.Fatal(err)
	}
	copy(data[5000:], "patch")
	o := e.compose(t, "bkt", "f", h, h.Size(), data, Range{5000, 5})
	h.Close()
	if o.Encryption.KeyObject.IsZero() || o.Encryption.KeyObject == o.ID {
		t.Fatalf("composed version's key object %s (its id %s)", o.Encryption.KeyObject, o.ID)
	}
	b, _ := e.store.GetBucket(ctx, "bkt")
	if _, err := e.store.RotateKey(ctx, b.MasterKeyID); err != nil {
		t.Fatal(err)
	}
	rep, err := e.store.Rewrap(ctx, RewrapOptions{})
	if err != nil || rep.Rewrapped != 1 || len(rep.Failed) != 0 {
		t.Fatalf("rewrap: %+v, %v", rep, err)
	}
	o2 := wantContent(t, e, "bkt", "f", data)
	if o2.Encryption.KeyVersion != 2 || o2.Encryption.KeyObject != o.Encryption.KeyObject {
		t.Fatalf("after rewrap: %+v", o2.Encryption)
	}
}

// Data staged by the mount's stream and not committed is taken over by the
// composed version built on it: a hole after it or a patch into it does
// not copy it.
func TestComposeOverStaged(t *testing.T) {
	for _, encrypt := range []bool{true, false} {
		t.Run(fmt.Sprintf("encrypted=%v", encrypt), func(t *testing.T) {
			e := newEnv(t, func(c *Config) { c.InlineMax = -1 })
			singleGateway(t, e)
			e.bucket(t, "bkt", encrypt)
			streamed := randBytes(3 << 20)
			p, err := e.store.Stage(ctx, &PutInput{Bucket: "bkt", Key: "f", Body: bytes.NewReader(streamed), Size: -1})
			if err != nil {
				t.Fatal(err)
			}
			data := make([]byte, 64<<20)
			copy(data, streamed)
			copy(data[1<<20:], "patched")
			c, err := e.store.Compose(ctx, &ComposeInput{Bucket: "bkt", Key: "f", Size: int64(len(data)), BaseStaged: p,
				BaseLen: int64(len(streamed)), Changed: []Range{{1 << 20, 7}}, Content: bytes.NewReader(data)})
			if err != nil {
				t.Fatal(err)
			}
			p.Discard() // taken over: does nothing
			h, err := c.Commit(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			o := h.Object()
			h.Close()
			if n := storedBytes(t, e, o); n > int64(len(streamed))+1<<20 {
				t.Fatalf("%d bytes stored: the staged data was copied", n)
			}
			if len(blobsOf(o)) != 2 || !o.Blobs[len(o.Blobs)-1].Hole {
				t.Fatalf("extents %+v", o.Blobs)
			}
			wantContent(t, e, "bkt", "f", data)
			e.put(t, "bkt", "f", randBytes(10))
			wantGone(t, e, o)
		})
	}
}
