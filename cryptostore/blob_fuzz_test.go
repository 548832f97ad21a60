package cryptostore

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// The fuzz targets use one fixed key and object id; the seeds are real
// blobs and chunks sealed with them, whole and damaged.

func fuzzParams(encrypted bool) BlobParams {
	p := BlobParams{ObjectID: testID(42), Index: 1, ChunkSize: MinChunkSize}
	if encrypted {
		p.Key = testKey(42)
	}
	return p
}

// fuzzPlaintext is the plaintext of every seed blob of the given size, so
// that a blob that reads back must read back as this.
func fuzzPlaintext(size int) []byte { return testBytes(size, 4242) }

// chunkPlaintexts returns the plaintext bytes a plain blob stores, chunk by
// chunk, up to n bytes: the bytes a successful read of it must return.
func chunkPlaintexts(blob []byte, cs, n int) []byte {
	var out []byte
	for off := HeaderSize; len(out) < n && off < len(blob); off += cs + blobCRCSize {
		out = append(out, blob[off:min(off+min(cs, n-len(out)), len(blob))]...)
	}
	return out
}

// FuzzOpenBlob opens arbitrary bytes as a blob. It must never panic, must
// fail only with blob format errors, must return only bytes that were
// sealed, and a blob that reads back must be exactly what sealing its
// plaintext again (with its own salt) produces.
func FuzzOpenBlob(f *testing.F) {
	for _, encrypted := range []bool{true, false} {
		p := fuzzParams(encrypted)
		for i, size := range []int{0, 1, 100, MinChunkSize, MinChunkSize + 1, 2*MinChunkSize + 500} {
			blob := sealFixed(f, fuzzPlaintext(size), p, fixedSalt(uint64(i)))
			f.Add(blob, uint16(size), encrypted)
			f.Add(blob[:len(blob)-1], uint16(size), encrypted)
			flipped := bytes.Clone(blob)
			flipped[len(blob)/2] ^= 4
			f.Add(flipped, uint16(size), encrypted)
			f.Add(blob, uint16(size+1), !encrypted)
		}
		// A 2-chunk blob cut to its first chunk, claimed as 1 chunk.
		blob := sealFixed(f, fuzzPlaintext(2*MinChunkSize), p, fixedSalt(9))
		f.Add(blob[:HeaderSize+MinChunkSize+chunkOverhead(encrypted)], uint16(MinChunkSize), encrypted)
	}
	f.Add([]byte("SEALFS"), uint16(0), true)
	f.Add([]byte{}, uint16(0), false)

	f.Fuzz(func(t *testing.T, blob []byte, size uint16, encrypted bool) {
		p := fuzzParams(encrypted)
		plainSize := int64(size)
		for _, r := range []io.ReaderAt{bytes.NewReader(blob), sizeHidden{bytes.NewReader(blob)}} {
			br, err := OpenBlob(r, plainSize, p)
			if err != nil {
				if !isBlobError(err) {
					t.Fatalf("OpenBlob: error %v is not a blob format error", err)
				}
				continue
			}
			cs := br.ChunkSize()
			got := make([]byte, plainSize)
			n, err := br.ReadAt(got, 0)
			if err == io.EOF && n == len(got) {
				err = nil
			}
			got = got[:n]
			if err != nil && !errors.Is(err, ErrCorruptBlob) {
				t.Fatalf("ReadAt: error %v does not wrap ErrCorruptBlob", err)
			}
			// Every byte returned must be a byte that was sealed.
			want := fuzzPlaintext(int(plainSize))[:n]
			if !encrypted {
				want = chunkPlaintexts(blob, cs, n)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("ReadAt returned %d bytes that were not sealed (error %v)", n, err)
			}
			if err != nil {
				continue
			}
			// It read back: it must be the canonical encoding of its plaintext.
			q := p
			q.ChunkSize = cs
			again := sealFixed(t, got, q, (*[blobSaltSize]byte)(blob[HeaderSize-blobSaltSize:HeaderSize]))
			if !bytes.Equal(again, blob) {
				t.Fatalf("a %d-byte blob read back, but sealing its plaintext again gives other bytes", len(blob))
			}
			// Reads at other offsets agree with the whole read.
			for _, off := range []int64{plainSize / 3, plainSize - 1, plainSize / 2} {
				if off < 0 {
					continue
				}
				buf := make([]byte, min(int64(cs)+3, plainSize-off))
				if k, err := br.ReadAt(buf, off); k != len(buf) || (err != nil && err != io.EOF) || !bytes.Equal(buf, got[off:off+int64(k)]) {
					t.Fatalf("ReadAt(%d at %d) = %d, %v, or wrong bytes", len(buf), off, k, err)
				}
			}
		}
	})
}

// FuzzChunk feeds arbitrary bytes to the chunk decoder, and seals arbitrary
// plaintexts to open them again.
func FuzzChunk(f *testing.F) {
	for _, encrypted := range []bool{true, false} {
		s, err := newSealerWithSalt(fuzzParams(encrypted), fixedSalt(7))
		if err != nil {
			f.Fatal(err)
		}
		full := fuzzPlaintext(MinChunkSize)
		for _, c := range []struct {
			pt    []byte
			index uint64
			final bool
		}{
			{pt: nil, index: 0, final: true},
			{pt: full[:10], index: 0, final: true},
			{pt: full, index: 0, final: false},
			{pt: full, index: 5, final: true},
			{pt: full[:1], index: 1 << 40, final: true},
		} {
			stored := s.SealChunk(nil, c.pt, c.index, c.final)
			f.Add(stored, c.index, c.final, encrypted)
			f.Add(stored, c.index+1, c.final, encrypted)
			f.Add(stored, c.index, !c.final, encrypted)
			f.Add(stored[:len(stored)-1], c.index, c.final, encrypted)
		}
	}

	sealers := make(map[bool]*Sealer)
	for _, encrypted := range []bool{true, false} {
		s, err := newSealerWithSalt(fuzzParams(encrypted), fixedSalt(7))
		if err != nil {
			f.Fatal(err)
		}
		sealers[encrypted] = s
	}
	f.Fuzz(func(t *testing.T, data []byte, index uint64, final bool, encrypted bool) {
		s := sealers[encrypted]
		cs := s.ChunkSize()

		// data as a stored chunk: it opens only if it is exactly what
		// sealing its plaintext at this position gives.
		pt, err := s.OpenChunk(nil, data, index, final)
		if err != nil {
			if !errors.Is(err, ErrCorruptBlob) {
				t.Fatalf("OpenChunk: error %v does not wrap ErrCorruptBlob", err)
			}
		} else if again := s.SealChunk(nil, pt, index, final); !bytes.Equal(again, data) {
			t.Fatalf("OpenChunk accepted %d bytes that are not the sealing of what it returned", len(data))
		}

		// data as plaintext: a sealed chunk opens to it at its own position
		// only, also in place.
		plain := data[:min(len(data), cs)]
		if !final && len(plain) < cs {
			plain = append(bytes.Clone(plain), make([]byte, cs-len(plain))...)
		}
		if final && index > 0 && len(plain) == 0 {
			return
		}
		stored := s.SealChunk(nil, plain, index, final)
		if len(stored) != len(plain)+s.Overhead() {
			t.Fatalf("sealed %d bytes into %d, want %d", len(plain), len(stored), len(plain)+s.Overhead())
		}
		inPlace := bytes.Clone(stored)
		got, err := s.OpenChunk(inPlace[:0], inPlace, index, final)
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("round trip of %d bytes at chunk %d (final=%t): %v", len(plain), index, final, err)
		}
		if _, err := s.OpenChunk(nil, stored, index+1, final); err == nil {
			t.Fatalf("chunk %d opened as chunk %d", index, index+1)
		}
		if _, err := s.OpenChunk(nil, stored, index, !final); err == nil {
			t.Fatalf("chunk %d opened with final=%t", index, !final)
		}
	})
}
