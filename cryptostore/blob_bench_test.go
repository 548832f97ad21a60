package cryptostore

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"io"
	"testing"
)

// The benchmarks seal and open 64 MiB in the default 64 KiB chunks, in one
// goroutine. BenchmarkRawAESGCM64MiB is the ceiling: AES-256-GCM alone over
// the same chunks. Compare the ratios within one run; the machines are noisy.

const benchSize = 64 << 20

func benchPlaintext(b *testing.B) []byte {
	b.Helper()
	return testBytes(benchSize, 64)
}

func BenchmarkRawAESGCM64MiB(b *testing.B) {
	data := benchPlaintext(b)
	block, err := aes.NewCipher(testKey(1))
	if err != nil {
		b.Fatal(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		b.Fatal(err)
	}
	nonce := make([]byte, aead.NonceSize())
	dst := make([]byte, 0, DefaultChunkSize+aead.Overhead())
	b.SetBytes(benchSize)
	b.ReportAllocs()
	for b.Loop() {
		for i := 0; i < benchSize; i += DefaultChunkSize {
			binary.BigEndian.PutUint64(nonce, uint64(i))
			dst = aead.Seal(dst[:0], nonce, data[i:i+DefaultChunkSize], nil)
		}
	}
}

func benchSeal(b *testing.B, key []byte) {
	data := benchPlaintext(b)
	s, err := NewSealer(BlobParams{Key: key, ObjectID: testID(1)})
	if err != nil {
		b.Fatal(err)
	}
	n := benchSize / DefaultChunkSize
	dst := make([]byte, 0, DefaultChunkSize+s.Overhead())
	b.SetBytes(benchSize)
	b.ReportAllocs()
	for b.Loop() {
		for i := range n {
			off := i * DefaultChunkSize
			dst = s.SealChunk(dst[:0], data[off:off+DefaultChunkSize], uint64(i), i == n-1)
		}
	}
}

func BenchmarkSeal64MiB(b *testing.B)      { benchSeal(b, testKey(1)) }
func BenchmarkSealPlain64MiB(b *testing.B) { benchSeal(b, nil) }

// BenchmarkBlobWriter64MiB streams 64 MiB through a BlobWriter in 1 MiB
// writes.
func BenchmarkBlobWriter64MiB(b *testing.B) {
	data := benchPlaintext(b)
	p := BlobParams{Key: testKey(1), ObjectID: testID(1)}
	b.SetBytes(benchSize)
	b.ReportAllocs()
	for b.Loop() {
		bw, err := NewBlobWriter(io.Discard, p)
		if err != nil {
			b.Fatal(err)
		}
		for off := 0; off < benchSize; off += 1 << 20 {
			if _, err := bw.Write(data[off : off+1<<20]); err != nil {
				b.Fatal(err)
			}
		}
		if err := bw.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

func benchOpen(b *testing.B, key []byte) {
	data := benchPlaintext(b)
	p := BlobParams{Key: key, ObjectID: testID(1)}
	s, err := NewSealer(p)
	if err != nil {
		b.Fatal(err)
	}
	blob := sealWith(s, data)
	data = nil
	buf := make([]byte, 1<<20)
	b.SetBytes(benchSize)
	b.ReportAllocs()
	for b.Loop() {
		br, err := OpenBlob(bytes.NewReader(blob), benchSize, p)
		if err != nil {
			b.Fatal(err)
		}
		for off := int64(0); off < benchSize; off += int64(len(buf)) {
			if n, err := br.ReadAt(buf, off); n != len(buf) || (err != nil && err != io.EOF) {
				b.Fatalf("ReadAt at %d = %d, %v", off, n, err)
			}
		}
	}
}

// BenchmarkOpen64MiB reads an in-memory 64 MiB blob sequentially in 1 MiB
// reads.
func BenchmarkOpen64MiB(b *testing.B)      { benchOpen(b, testKey(1)) }
func BenchmarkOpenPlain64MiB(b *testing.B) { benchOpen(b, nil) }

// BenchmarkOpenSmallReads64MiB reads the same blob in 4 KiB reads, which go
// through the one-chunk cache.
func BenchmarkOpenSmallReads64MiB(b *testing.B) {
	data := benchPlaintext(b)
	p := BlobParams{Key: testKey(1), ObjectID: testID(1)}
	s, err := NewSealer(p)
	if err != nil {
		b.Fatal(err)
	}
	blob := sealWith(s, data)
	buf := make([]byte, 4<<10)
	b.SetBytes(benchSize)
	b.ReportAllocs()
	for b.Loop() {
		br, err := OpenBlob(bytes.NewReader(blob), benchSize, p)
		if err != nil {
			b.Fatal(err)
		}
		for off := int64(0); off < benchSize; off += int64(len(buf)) {
			if n, err := br.ReadAt(buf, off); n != len(buf) || (err != nil && err != io.EOF) {
				b.Fatalf("ReadAt at %d = %d, %v", off, n, err)
			}
		}
	}
}
