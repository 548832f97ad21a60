package cryptostore

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/sealfs/sealfs/meta"
)

// --- helpers ---------------------------------------------------------------

// testBytes returns n deterministic pseudo-random bytes.
func testBytes(n int, seed uint64) []byte {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	b := make([]byte, n)
	rand.NewChaCha8(s).Read(b)
	return b
}

func testKey(seed uint64) []byte { return testBytes(blobKeySize, 1000+seed) }

func testID(seed uint64) meta.ObjectID { return meta.ObjectID(testBytes(16, 2000+seed)) }

// sizeHidden is an io.ReaderAt that does not tell its length, as a reader
// over a network stream would not: the blob reader must then rely on the
// chunk checks alone.
type sizeHidden struct{ r io.ReaderAt }

func (h sizeHidden) ReadAt(p []byte, off int64) (int, error) { return h.r.ReadAt(p, off) }

// inMemory is a stored blob held in memory: tests open it with
// openMemBlob, as a handle opens an object's inline data.
type inMemory []byte

func (m inMemory) ReadAt(p []byte, off int64) (int, error) { return bytes.NewReader(m).ReadAt(p, off) }

// openTestBlob opens r with openMemBlob if it is inMemory, else with
// OpenBlob.
func openTestBlob(r io.ReaderAt, plainSize int64, p BlobParams) (*BlobReader, error) {
	if m, ok := r.(inMemory); ok {
		return openMemBlob(m, plainSize, p)
	}
	return OpenBlob(r, plainSize, p)
}

// countingReaderAt counts the reads that reach the blob.
type countingReaderAt struct {
	r     io.ReaderAt
	mu    sync.Mutex
	reads int
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	c.mu.Lock()
	c.reads++
	c.mu.Unlock()
	return c.r.ReadAt(p, off)
}

// writeBlob seals plaintext with a BlobWriter, feeding it in writes of
// random sizes.
func writeBlob(t testing.TB, plaintext []byte, p BlobParams, rng *rand.Rand) []byte {
	t.Helper()
	var out bytes.Buffer
	bw, err := NewBlobWriter(&out, p)
	if err != nil {
		t.Fatalf("NewBlobWriter: %v", err)
	}
	rest := plaintext
	for len(rest) > 0 {
		n := 1 + rng.IntN(min(len(rest), 3*max(p.ChunkSize, DefaultChunkSize)))
		if rng.IntN(4) == 0 {
			n = len(rest)
		}
		k, err := bw.Write(rest[:n])
		if err != nil || k != n {
			t.Fatalf("Write(%d bytes) = %d, %v", n, k, err)
		}
		rest = rest[n:]
	}
	if err := bw.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if bw.Size() != int64(len(plaintext)) {
		t.Fatalf("Size() = %d, want %d", bw.Size(), len(plaintext))
	}
	return out.Bytes()
}

// sealWith seals plaintext chunk by chunk with s, header first.
func sealWith(s *Sealer, plaintext []byte) []byte {
	cs := s.ChunkSize()
	blob := s.Header()
	n := int(chunkCount(int64(len(plaintext)), cs))
	for i := range n {
		end := min((i+1)*cs, len(plaintext))
		blob = s.SealChunk(blob, plaintext[i*cs:end], uint64(i), i == n-1)
	}
	return blob
}

func fixedSalt(seed uint64) *[blobSaltSize]byte {
	return (*[blobSaltSize]byte)(testBytes(blobSaltSize, 3000+seed))
}

// sealFixed seals plaintext with a given salt, so that two blobs can differ
// in nothing but what a test changes.
func sealFixed(t testing.TB, plaintext []byte, p BlobParams, salt *[blobSaltSize]byte) []byte {
	t.Helper()
	s, err := newSealerWithSalt(p, salt)
	if err != nil {
		t.Fatalf("newSealerWithSalt: %v", err)
	}
	return sealWith(s, plaintext)
}

// readBlob opens blob and reads all of it in one ReadAt.
func readBlob(r io.ReaderAt, plainSize int64, p BlobParams) ([]byte, error) {
	br, err := openTestBlob(r, plainSize, p)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, plainSize)
	n, err := br.ReadAt(buf, 0)
	if err == io.EOF && n == len(buf) {
		err = nil
	}
	return buf[:n], err
}

func isBlobError(err error) bool {
	return errors.Is(err, ErrCorruptBlob) || errors.Is(err, ErrUnsupportedFormat)
}

// mustFail reads blob and fails the test unless the read fails with a blob
// format error; bytes returned before the error must be the plaintext's.
func mustFail(t *testing.T, what string, r io.ReaderAt, plainSize int64, p BlobParams, plaintext []byte) {
	t.Helper()
	got, err := readBlob(r, plainSize, p)
	if err == nil {
		t.Fatalf("%s: read succeeded, want an error", what)
	}
	if !isBlobError(err) {
		t.Fatalf("%s: error %v does not wrap ErrCorruptBlob or ErrUnsupportedFormat", what, err)
	}
	if !bytes.Equal(got, plaintext[:len(got)]) {
		t.Fatalf("%s: %d bytes returned before the error differ from the plaintext", what, len(got))
	}
}

func kinds() []struct {
	name string
	key  []byte
} {
	return []struct {
		name string
		key  []byte
	}{
		{name: "encrypted", key: testKey(1)},
		{name: "plain", key: nil},
	}
}

// --- sizes -----------------------------------------------------------------

func TestStoredSize(t *testing.T) {
	tests := []struct {
		plain     int64
		chunk     int
		encrypted bool
		want      int64
	}{
		{plain: 0, chunk: 0, encrypted: true, want: 48 + 16},
		{plain: 0, chunk: 1024, encrypted: false, want: 48 + 4},
		{plain: 1, chunk: 1024, encrypted: true, want: 48 + 1 + 16},
		{plain: 1024, chunk: 1024, encrypted: true, want: 48 + 1024 + 16},
		{plain: 1025, chunk: 1024, encrypted: true, want: 48 + 1025 + 2*16},
		{plain: 1025, chunk: 1024, encrypted: false, want: 48 + 1025 + 2*4},
		{plain: 150 << 10, chunk: 0, encrypted: true, want: 48 + 150<<10 + 3*16},
		{plain: 1 << 30, chunk: 0, encrypted: true, want: 48 + 1<<30 + 16384*16},
		{plain: 1 << 30, chunk: 4 << 20, encrypted: false, want: 48 + 1<<30 + 256*4},
		{plain: -1, chunk: 0, encrypted: true, want: -1},
		{plain: 10, chunk: 1000, encrypted: true, want: -1},
		{plain: 10, chunk: 512, encrypted: true, want: -1},
		{plain: 10, chunk: 8 << 20, encrypted: true, want: -1},
		{plain: 1 << 61, chunk: 0, encrypted: true, want: -1},
	}
	for _, tt := range tests {
		if got := StoredSize(tt.plain, tt.chunk, tt.encrypted); got != tt.want {
			t.Errorf("StoredSize(%d, %d, %t) = %d, want %d", tt.plain, tt.chunk, tt.encrypted, got, tt.want)
		}
	}
}

// --- round trips -------------------------------------------------------------

func TestRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, kind := range kinds() {
		for _, cs := range []int{MinChunkSize, DefaultChunkSize} {
			for _, size := range []int{0, 1, cs - 1, cs, cs + 1, 3 * cs, 3*cs + 7} {
				name := fmt.Sprintf("%s/chunk=%d/size=%d", kind.name, cs, size)
				t.Run(name, func(t *testing.T) {
					p := BlobParams{Key: kind.key, ObjectID: testID(1), Index: 3, ChunkSize: cs}
					plaintext := testBytes(size, uint64(size))
					blob := writeBlob(t, plaintext, p, rng)
					if want := StoredSize(int64(size), cs, kind.key != nil); int64(len(blob)) != want {
						t.Fatalf("blob is %d bytes, StoredSize says %d", len(blob), want)
					}
					for _, r := range []io.ReaderAt{bytes.NewReader(blob), sizeHidden{bytes.NewReader(blob)}} {
						checkReads(t, r, plaintext, p, rng)
					}
					// Opened from memory, reads leave the stored bytes as
					// they were.
					mem := bytes.Clone(blob)
					checkReads(t, inMemory(mem), plaintext, p, rng)
					if !bytes.Equal(mem, blob) {
						t.Fatal("reading a blob in memory changed its stored bytes")
					}
				})
			}
		}
	}
}

// checkReads reads the blob whole, at random ranges and at and after its
// end, comparing every result with the plaintext.
func checkReads(t *testing.T, r io.ReaderAt, plaintext []byte, p BlobParams, rng *rand.Rand) {
	t.Helper()
	size := int64(len(plaintext))
	br, err := openTestBlob(r, size, p)
	if err != nil {
		t.Fatalf("OpenBlob: %v", err)
	}
	if br.Size() != size || br.ChunkSize() != p.ChunkSize || br.Encrypted() != (p.Key != nil) {
		t.Fatalf("Size, ChunkSize, Encrypted = %d, %d, %t; want %d, %d, %t",
			br.Size(), br.ChunkSize(), br.Encrypted(), size, p.ChunkSize, p.Key != nil)
	}
	got := make([]byte, size)
	if n, err := br.ReadAt(got, 0); n != len(got) || (err != nil && err != io.EOF) {
		t.Fatalf("ReadAt(all) = %d, %v", n, err)
	}
	if !bytes.Equal(got, plaintext) {
		t.Fatal("whole read differs from the plaintext")
	}
	cs := int64(p.ChunkSize)
	for range 200 {
		var off, n int64
		switch rng.IntN(3) {
		case 0: // anywhere
			off = rng.Int64N(size + 1)
			n = rng.Int64N(size - off + 1)
		case 1: // across a chunk boundary
			if size <= cs {
				continue
			}
			b := cs * (1 + rng.Int64N((size-1)/cs))
			off = max(0, b-1-rng.Int64N(min(b, 50)))
			n = min(size-off, b-off+1+rng.Int64N(2*cs))
		case 2: // small reads inside one chunk
			off = rng.Int64N(size + 1)
			n = min(size-off, rng.Int64N(40))
		}
		buf := make([]byte, n)
		k, err := br.ReadAt(buf, off)
		if int64(k) != n || (err != nil && !(err == io.EOF && off+n == size)) {
			t.Fatalf("ReadAt(%d bytes at %d) = %d, %v", n, off, k, err)
		}
		if !bytes.Equal(buf, plaintext[off:off+n]) {
			t.Fatalf("ReadAt(%d bytes at %d) returned wrong bytes", n, off)
		}
	}
	// At and after the end.
	buf := make([]byte, 10)
	for _, off := range []int64{size, size + 1, size + cs + 5} {
		if n, err := br.ReadAt(buf, off); n != 0 || err != io.EOF {
			t.Fatalf("ReadAt at %d (size %d) = %d, %v; want 0, EOF", off, size, n, err)
		}
	}
	if size > 0 {
		off := size - min(size, 3)
		n, err := br.ReadAt(buf, off)
		if int64(n) != size-off || err != io.EOF || !bytes.Equal(buf[:n], plaintext[off:]) {
			t.Fatalf("ReadAt across the end at %d = %d, %v; want %d, EOF", off, n, err, size-off)
		}
	}
	if _, err := br.ReadAt(buf, -1); err == nil {
		t.Fatal("ReadAt at -1 succeeded")
	}
}

// TestSealerParallel seals the chunks of one blob from several goroutines,
// in no particular order, and in place.
func TestSealerParallel(t *testing.T) {
	for _, kind := range kinds() {
		t.Run(kind.name, func(t *testing.T) {
			const cs = MinChunkSize
			plaintext := testBytes(13*cs+100, 7)
			p := BlobParams{Key: kind.key, ObjectID: testID(2), Index: 1, ChunkSize: cs}
			s, err := NewSealer(p)
			if err != nil {
				t.Fatal(err)
			}
			n := int(chunkCount(int64(len(plaintext)), cs))
			sealed := make([][]byte, n)
			var wg sync.WaitGroup
			for i := n - 1; i >= 0; i-- {
				wg.Go(func() {
					end := min((i+1)*cs, len(plaintext))
					buf := make([]byte, end-i*cs, cs+s.Overhead())
					copy(buf, plaintext[i*cs:end])
					sealed[i] = s.SealChunk(buf[:0], buf, uint64(i), i == n-1) // in place
				})
			}
			wg.Wait()
			blob := bytes.Join(append([][]byte{s.Header()}, sealed...), nil)
			got, err := readBlob(bytes.NewReader(blob), int64(len(plaintext)), p)
			if err != nil || !bytes.Equal(got, plaintext) {
				t.Fatalf("read back: err %v, equal %t", err, bytes.Equal(got, plaintext))
			}
			// OpenChunk opens what SealChunk sealed, in place too.
			c := bytes.Clone(sealed[1])
			pt, err := s.OpenChunk(c[:0], c, 1, false)
			if err != nil || !bytes.Equal(pt, plaintext[cs:2*cs]) {
				t.Fatalf("OpenChunk: err %v", err)
			}
			if _, err := s.OpenChunk(nil, sealed[1], 1, true); !errors.Is(err, ErrCorruptBlob) {
				t.Fatalf("OpenChunk with the wrong final flag: %v", err)
			}
		})
	}
}

func TestSealerRules(t *testing.T) {
	if _, err := NewSealer(BlobParams{Key: make([]byte, 16)}); err == nil {
		t.Error("NewSealer accepted a 16-byte key")
	}
	if _, err := NewSealer(BlobParams{Key: []byte{}}); err == nil {
		t.Error("NewSealer accepted an empty non-nil key")
	}
	for _, cs := range []int{-1, 1, 512, 1000, 3 << 10, 8 << 20} {
		if _, err := NewSealer(BlobParams{ChunkSize: cs}); err == nil {
			t.Errorf("NewSealer accepted chunk size %d", cs)
		}
	}
	s, err := NewSealer(BlobParams{Key: testKey(1), ChunkSize: MinChunkSize})
	if err != nil {
		t.Fatal(err)
	}
	if s.ChunkSize() != MinChunkSize || s.Overhead() != 16 || len(s.Header()) != HeaderSize {
		t.Fatalf("ChunkSize, Overhead, len(Header) = %d, %d, %d", s.ChunkSize(), s.Overhead(), len(s.Header()))
	}
	h := s.Header()
	h[0] = 'X'
	if s.Header()[0] != 'S' {
		t.Fatal("Header returned the Sealer's own bytes")
	}
	tests := []struct {
		name  string
		n     int
		index uint64
		final bool
	}{
		{name: "short chunk not final", n: MinChunkSize - 1, index: 0, final: false},
		{name: "oversized chunk", n: MinChunkSize + 1, index: 0, final: true},
		{name: "empty final chunk after chunk 0", n: 0, index: 1, final: true},
	}
	for _, tt := range tests {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: SealChunk did not panic", tt.name)
				}
			}()
			s.SealChunk(nil, make([]byte, tt.n), tt.index, tt.final)
		}()
	}
	if _, err := OpenBlob(bytes.NewReader(nil), -1, BlobParams{}); err == nil {
		t.Error("OpenBlob accepted a negative size")
	}
}

// TestReadCache checks that sequential small reads fetch each chunk from
// the blob once, and that concurrent readers all get the right bytes.
func TestReadCache(t *testing.T) {
	const cs = MinChunkSize
	plaintext := testBytes(5*cs+300, 9)
	p := BlobParams{Key: testKey(2), ObjectID: testID(3), ChunkSize: cs}
	blob := writeBlob(t, plaintext, p, rand.New(rand.NewPCG(3, 4)))
	cr := &countingReaderAt{r: bytes.NewReader(blob)}
	br, err := OpenBlob(cr, int64(len(plaintext)), p)
	if err != nil {
		t.Fatal(err)
	}
	cr.reads = 0
	var got []byte
	buf := make([]byte, 100)
	for off := int64(0); ; off += 100 {
		n, err := br.ReadAt(buf, off)
		got = append(got, buf[:n]...)
		if err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(got, plaintext) {
		t.Fatal("sequential small reads returned wrong bytes")
	}
	if cr.reads != 6 {
		t.Fatalf("sequential 100-byte reads of 6 chunks read the blob %d times, want 6", cr.reads)
	}

	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 5))
			for range 300 {
				off := rng.Int64N(int64(len(plaintext)))
				n := min(int64(len(plaintext))-off, 1+rng.Int64N(2*cs))
				b := make([]byte, n)
				if k, err := br.ReadAt(b, off); int64(k) != n || (err != nil && err != io.EOF) {
					t.Errorf("concurrent ReadAt(%d at %d) = %d, %v", n, off, k, err)
					return
				}
				if !bytes.Equal(b, plaintext[off:off+n]) {
					t.Errorf("concurrent ReadAt(%d at %d) returned wrong bytes", n, off)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestWholeChunkReadsAreOneRead: a read that covers several whole chunks
// reads their stored bytes with one call, as many chunks as the run buffer
// holds, the short final chunk included; the bytes are the plaintext's.
func TestWholeChunkReadsAreOneRead(t *testing.T) {
	const cs = DefaultChunkSize
	perRun := (runBufSize - 1) / (cs + blobTagSize) // chunks one call reads
	size := (perRun+5)*cs + 7                       // perRun+6 chunks, the last of 7 bytes
	plaintext := testBytes(size, 11)
	p := BlobParams{Key: testKey(2), ObjectID: testID(4), ChunkSize: cs}
	blob := writeBlob(t, plaintext, p, rand.New(rand.NewPCG(5, 6)))
	cr := &countingReaderAt{r: bytes.NewReader(blob)}
	br, err := OpenBlob(cr, int64(size), p)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		off, n int
		reads  int
	}{
		{off: 0, n: size, reads: 2},                     // a full run, then the 6 chunks left
		{off: cs, n: 4 * cs, reads: 1},                  // 4 whole chunks
		{off: (perRun + 3) * cs, n: 2*cs + 7, reads: 1}, // 2 whole chunks and the final one
		{off: cs, n: 2*cs + 100, reads: 2},              // 2 whole chunks, then part of one
		{off: 100, n: 3 * cs, reads: 3},                 // part of chunk 0, chunks 1 and 2 together, part of chunk 3
		{off: 100, n: cs, reads: 2},                     // parts of two chunks: one read each
	} {
		cr.reads = 0
		got := make([]byte, tt.n)
		if k, err := br.ReadAt(got, int64(tt.off)); k != tt.n || (err != nil && err != io.EOF) {
			t.Fatalf("ReadAt(%d at %d) = %d, %v", tt.n, tt.off, k, err)
		}
		if !bytes.Equal(got, plaintext[tt.off:tt.off+tt.n]) {
			t.Fatalf("ReadAt(%d at %d) returned wrong bytes", tt.n, tt.off)
		}
		if cr.reads != tt.reads {
			t.Errorf("ReadAt(%d at %d) read the blob %d times, want %d", tt.n, tt.off, cr.reads, tt.reads)
		}
	}
}

// --- the blob writer ----------------------------------------------------------

// failAfter accepts limit bytes, then fails every write.
type failAfter struct {
	limit int
	buf   bytes.Buffer
}

var errDiskFull = errors.New("disk full")

func (f *failAfter) Write(p []byte) (int, error) {
	if f.buf.Len()+len(p) > f.limit {
		return 0, errDiskFull
	}
	return f.buf.Write(p)
}

func TestBlobWriter(t *testing.T) {
	const cs = MinChunkSize
	p := BlobParams{Key: testKey(3), ObjectID: testID(4), ChunkSize: cs}

	// Byte-at-a-time writes make a blob of the same length that reads back.
	plaintext := testBytes(3*cs, 11)
	var out bytes.Buffer
	bw, err := NewBlobWriter(&out, p)
	if err != nil {
		t.Fatal(err)
	}
	for i := range plaintext {
		if n, err := bw.Write(plaintext[i : i+1]); n != 1 || err != nil {
			t.Fatalf("Write byte %d: %d, %v", i, n, err)
		}
	}
	if out.Len() != HeaderSize+2*(cs+16) {
		t.Fatalf("after 3 full chunks the writer has written %d bytes, want header and 2 chunks (%d): the last full chunk waits for Close",
			out.Len(), HeaderSize+2*(cs+16))
	}
	if err := bw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := bw.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := bw.Write([]byte{1}); err == nil {
		t.Fatal("Write after Close succeeded")
	}
	if got, err := readBlob(bytes.NewReader(out.Bytes()), int64(len(plaintext)), p); err != nil || !bytes.Equal(got, plaintext) {
		t.Fatalf("read back: %v", err)
	}

	// Write errors are returned and stick.
	if _, err := NewBlobWriter(&failAfter{limit: 10}, p); !errors.Is(err, errDiskFull) {
		t.Fatalf("NewBlobWriter on a failing writer: %v", err)
	}
	fw := &failAfter{limit: HeaderSize + cs + 16}
	bw, err = NewBlobWriter(fw, p)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := bw.Write(plaintext); !errors.Is(err, errDiskFull) || n != cs {
		t.Fatalf("Write past the limit = %d, %v; want %d, %v", n, err, cs, errDiskFull)
	}
	if _, err := bw.Write(plaintext[:1]); !errors.Is(err, errDiskFull) {
		t.Fatalf("Write after a failure: %v", err)
	}
	if err := bw.Close(); !errors.Is(err, errDiskFull) {
		t.Fatalf("Close after a failure: %v", err)
	}
}

// TestBlobFile writes a blob to a real file and reads it back through
// *os.File, whose length OpenBlob checks.
func TestBlobFile(t *testing.T) {
	const cs = MinChunkSize
	plaintext := testBytes(2*cs+5, 12)
	p := BlobParams{Key: testKey(4), ObjectID: testID(5), Index: 7, ChunkSize: cs}
	path := filepath.Join(t.TempDir(), "blob")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	bw, err := NewBlobWriter(f, p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bw.Write(plaintext); err != nil {
		t.Fatal(err)
	}
	if err := bw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, plaintext[:64]) {
		t.Fatal("the encrypted blob file contains plaintext")
	}
	f, err = os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := readBlob(f, int64(len(plaintext)), p)
	f.Close()
	if err != nil || !bytes.Equal(got, plaintext) {
		t.Fatalf("read back: %v", err)
	}
	// An I/O error is passed on as it is, not reported as corruption.
	f, err = os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	br, err := OpenBlob(f, int64(len(plaintext)), p)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := br.ReadAt(make([]byte, 10), 0); !errors.Is(err, os.ErrClosed) || errors.Is(err, ErrCorruptBlob) {
		t.Fatalf("ReadAt on a closed file: %v, want os.ErrClosed and not ErrCorruptBlob", err)
	}
	// One byte appended to the file: OpenBlob sees the length is wrong.
	if err := os.WriteFile(path, append(raw, 0), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err = os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := OpenBlob(f, int64(len(plaintext)), p); !errors.Is(err, ErrCorruptBlob) {
		t.Fatalf("OpenBlob of a lengthened file: %v", err)
	}
}

// --- tampering ---------------------------------------------------------------

// tamperSetup is a 3.5-chunk blob in 1 KiB chunks.
type tamperSetup struct {
	p         BlobParams
	plaintext []byte
	blob      []byte
	stored    int // stored chunk size
}

func newTamperSetup(t *testing.T, key []byte) tamperSetup {
	p := BlobParams{Key: key, ObjectID: testID(6), Index: 4, ChunkSize: MinChunkSize}
	plaintext := testBytes(3*MinChunkSize+MinChunkSize/2, 13)
	return tamperSetup{
		p:         p,
		plaintext: plaintext,
		blob:      sealFixed(t, plaintext, p, fixedSalt(1)),
		stored:    MinChunkSize + chunkOverhead(key != nil),
	}
}

// chunk returns the bounds of stored chunk i.
func (s tamperSetup) chunk(i int) (int, int) {
	start := HeaderSize + i*s.stored
	return start, min(start+s.stored, len(s.blob))
}

func TestTamperFlipEveryByte(t *testing.T) {
	for _, kind := range kinds() {
		t.Run(kind.name, func(t *testing.T) {
			s := newTamperSetup(t, kind.key)
			size := int64(len(s.plaintext))
			if got, err := readBlob(bytes.NewReader(s.blob), size, s.p); err != nil || !bytes.Equal(got, s.plaintext) {
				t.Fatalf("untouched blob: %v", err)
			}
			b := bytes.Clone(s.blob)
			for i := range b {
				for _, mask := range []byte{0xff, 1 << (i % 8)} {
					b[i] ^= mask
					mustFail(t, fmt.Sprintf("byte %d ^ %#02x", i, mask), bytes.NewReader(b), size, s.p, s.plaintext)
					mustFail(t, fmt.Sprintf("byte %d ^ %#02x, in memory", i, mask), inMemory(b), size, s.p, s.plaintext)
					b[i] ^= mask
				}
			}
		})
	}
}

func TestTamperChunks(t *testing.T) {
	for _, kind := range kinds() {
		t.Run(kind.name, func(t *testing.T) {
			s := newTamperSetup(t, kind.key)
			size := int64(len(s.plaintext))
			swap := func(i, j int) []byte {
				b := bytes.Clone(s.blob)
				si, ei := s.chunk(i)
				sj, ej := s.chunk(j)
				ci, cj := bytes.Clone(b[si:ei]), bytes.Clone(b[sj:ej])
				return bytes.Join([][]byte{b[:si], cj, b[ei:sj], ci, b[ej:]}, nil)
			}
			mustFail(t, "chunks 0 and 1 swapped", bytes.NewReader(swap(0, 1)), size, s.p, s.plaintext)
			mustFail(t, "chunks 1 and 2 swapped", bytes.NewReader(swap(1, 2)), size, s.p, s.plaintext)
			// The last (short) chunk swapped with a full one: the lengths no
			// longer match, so read it without the length check too.
			mustFail(t, "chunks 2 and 3 swapped", sizeHidden{bytes.NewReader(swap(2, 3))}, size, s.p, s.plaintext)

			dup := bytes.Clone(s.blob)
			s0, e0 := s.chunk(0)
			s1, _ := s.chunk(1)
			copy(dup[s1:], dup[s0:e0])
			mustFail(t, "chunk 0 duplicated over chunk 1", bytes.NewReader(dup), size, s.p, s.plaintext)

			// Chunk 1 inserted again after itself, and the metadata size
			// grown to match, as if the blob were 4.5 chunks.
			s1, e1 := s.chunk(1)
			ins := bytes.Join([][]byte{s.blob[:e1], s.blob[s1:e1], s.blob[e1:]}, nil)
			mustFail(t, "chunk 1 repeated", bytes.NewReader(ins), size+MinChunkSize, s.p, append(bytes.Clone(s.plaintext[:2*MinChunkSize]), s.plaintext[MinChunkSize:]...))
		})
	}
}

func TestTamperTruncateAndAppend(t *testing.T) {
	for _, kind := range kinds() {
		t.Run(kind.name, func(t *testing.T) {
			s := newTamperSetup(t, kind.key)
			size := int64(len(s.plaintext))
			for n := range len(s.blob) {
				short := s.blob[:n]
				mustFail(t, fmt.Sprintf("truncated to %d", n), bytes.NewReader(short), size, s.p, s.plaintext)
				mustFail(t, fmt.Sprintf("truncated to %d, length unknown", n), sizeHidden{bytes.NewReader(short)}, size, s.p, s.plaintext)
				mustFail(t, fmt.Sprintf("truncated to %d, in memory", n), inMemory(short), size, s.p, s.plaintext)
			}
			// Cut at a chunk boundary with the recorded size cut to match:
			// the last chunk left was not sealed as the final one.
			for chunks := 1; chunks <= 3; chunks++ {
				_, end := s.chunk(chunks - 1)
				mustFail(t, fmt.Sprintf("cut to %d chunks, size cut to match", chunks),
					bytes.NewReader(s.blob[:end]), int64(chunks*MinChunkSize), s.p, s.plaintext)
			}
			mustFail(t, "cut to the header, size 0", bytes.NewReader(s.blob[:HeaderSize]), 0, s.p, s.plaintext)

			long := append(bytes.Clone(s.blob), 0)
			mustFail(t, "one byte appended", bytes.NewReader(long), size, s.p, s.plaintext)
			mustFail(t, "one byte appended, length unknown", sizeHidden{bytes.NewReader(long)}, size, s.p, s.plaintext)
			mustFail(t, "one byte appended, in memory", inMemory(long), size, s.p, s.plaintext)
		})
	}
}

// TestTamperEmptyBlob: an empty blob's one chunk is checked when it is
// opened, so cutting it to the header is caught even without its length.
func TestTamperEmptyBlob(t *testing.T) {
	for _, kind := range kinds() {
		t.Run(kind.name, func(t *testing.T) {
			p := BlobParams{Key: kind.key, ObjectID: testID(7), ChunkSize: MinChunkSize}
			blob := sealFixed(t, nil, p, fixedSalt(2))
			if _, err := readBlob(sizeHidden{bytes.NewReader(blob)}, 0, p); err != nil {
				t.Fatalf("empty blob: %v", err)
			}
			for n := range len(blob) {
				mustFail(t, fmt.Sprintf("cut to %d", n), sizeHidden{bytes.NewReader(blob[:n])}, 0, p, nil)
			}
			for i := range blob {
				b := bytes.Clone(blob)
				b[i] ^= 0x10
				mustFail(t, fmt.Sprintf("byte %d flipped", i), sizeHidden{bytes.NewReader(b)}, 0, p, nil)
			}
		})
	}
}

// TestTamperMoved moves chunks and whole blobs between blobs and objects.
// The blobs share their salt and key, so only the object id and the blob
// index bound into each chunk tell them apart.
func TestTamperMoved(t *testing.T) {
	for _, kind := range kinds() {
		t.Run(kind.name, func(t *testing.T) {
			s := newTamperSetup(t, kind.key)
			size := int64(len(s.plaintext))
			otherIndex := s.p
			otherIndex.Index++
			otherObject := s.p
			otherObject.ObjectID = testID(99)
			for _, other := range []struct {
				name string
				p    BlobParams
			}{
				{name: "same object, other blob index", p: otherIndex},
				{name: "other object", p: otherObject},
			} {
				src := sealFixed(t, s.plaintext, other.p, fixedSalt(1))
				if len(src) != len(s.blob) {
					t.Fatal("blob lengths differ")
				}
				for i := range 4 {
					b := bytes.Clone(s.blob)
					start, end := s.chunk(i)
					copy(b[start:end], src[start:end])
					if bytes.Equal(b, s.blob) {
						t.Fatalf("%s: chunk %d is identical in both blobs", other.name, i)
					}
					mustFail(t, fmt.Sprintf("chunk %d from %s", i, other.name), bytes.NewReader(b), size, s.p, s.plaintext)
				}
				// The whole blob read as if it were the other one.
				mustFail(t, "blob opened as "+other.name, bytes.NewReader(s.blob), size, other.p, s.plaintext)
			}
			if kind.key != nil {
				otherKey := s.p
				otherKey.Key = testKey(77)
				mustFail(t, "blob opened with another key", bytes.NewReader(s.blob), size, otherKey, s.plaintext)
				noKey := s.p
				noKey.Key = nil
				mustFail(t, "encrypted blob opened without a key", bytes.NewReader(s.blob), size, noKey, s.plaintext)
			} else {
				withKey := s.p
				withKey.Key = testKey(1)
				mustFail(t, "plain blob opened with a key", bytes.NewReader(s.blob), size, withKey, s.plaintext)
			}
		})
	}
}

// TestHeaderErrors damages single header fields and checks the error says
// which field, what it wanted and what it found.
func TestHeaderErrors(t *testing.T) {
	s := newTamperSetup(t, testKey(1))
	size := int64(len(s.plaintext))
	tests := []struct {
		name   string
		change func(h []byte)
		want   error
		msg    string
	}{
		{name: "magic", change: func(h []byte) { h[0] = 'X' }, want: ErrCorruptBlob, msg: `header magic: want "SEALFS", have "XEALFS"`},
		{name: "version", change: func(h []byte) { h[6] = 2 }, want: ErrUnsupportedFormat, msg: "header version: want 1, have 2"},
		{name: "unknown flag", change: func(h []byte) { h[7] |= 0x80 }, want: ErrUnsupportedFormat, msg: "header flags: want only bit 0, have 0x81"},
		{name: "encrypted flag cleared", change: func(h []byte) { h[7] = 0 }, want: ErrCorruptBlob, msg: "want encrypted=true (a data key was given), have encrypted=false"},
		{name: "chunk size not a power of two", change: func(h []byte) { binary.BigEndian.PutUint32(h[8:], 3000) }, want: ErrCorruptBlob, msg: "chunk size 3000: want a power of two"},
		{name: "chunk size too small", change: func(h []byte) { binary.BigEndian.PutUint32(h[8:], 512) }, want: ErrCorruptBlob, msg: "chunk size 512"},
		{name: "chunk size too large", change: func(h []byte) { binary.BigEndian.PutUint32(h[8:], 8<<20) }, want: ErrCorruptBlob, msg: "chunk size 8388608"},
		{name: "chunk size changed to another valid one", change: func(h []byte) { binary.BigEndian.PutUint32(h[8:], 2048) }, want: ErrCorruptBlob, msg: "stored size for 3584 plaintext bytes in 2048-byte chunks: want 3664 bytes, have 3696"},
		{name: "reserved", change: func(h []byte) { h[13] = 1 }, want: ErrUnsupportedFormat, msg: "header reserved bytes: want 00000000, have 00010000"},
		{name: "salt", change: func(h []byte) { h[40] ^= 1 }, want: ErrCorruptBlob, msg: "chunk 0 (final=false): authentication failed"},
	}
	for _, tt := range tests {
		b := bytes.Clone(s.blob)
		tt.change(b[:HeaderSize])
		_, err := readBlob(bytes.NewReader(b), size, s.p)
		if !errors.Is(err, tt.want) || !strings.Contains(fmt.Sprint(err), tt.msg) {
			t.Errorf("%s: error %q, want one wrapping %q and saying %q", tt.name, err, tt.want, tt.msg)
		}
	}
	_, err := readBlob(bytes.NewReader(s.blob[:10]), size, s.p)
	if !errors.Is(err, ErrCorruptBlob) || !strings.Contains(err.Error(), "header: want 48 bytes, have 10") {
		t.Errorf("short header: %v", err)
	}
}

// TestChunkErrorMessages checks that chunk errors name the chunk and, for
// plain blobs, the checksums wanted and found.
func TestChunkErrorMessages(t *testing.T) {
	for _, tt := range []struct {
		key []byte
		msg string
	}{
		{key: testKey(1), msg: "corrupt blob: chunk 2 (final=false): authentication failed"},
		{key: nil, msg: "corrupt blob: chunk 2 (final=false): crc32c: want "},
	} {
		s := newTamperSetup(t, tt.key)
		b := bytes.Clone(s.blob)
		start, _ := s.chunk(2)
		b[start+5] ^= 1
		got, err := readBlob(bytes.NewReader(b), int64(len(s.plaintext)), s.p)
		if err == nil || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("error %q, want it to say %q", err, tt.msg)
		}
		if len(got) != 2*MinChunkSize {
			t.Errorf("read returned %d bytes before the error, want the 2 good chunks (%d)", len(got), 2*MinChunkSize)
		}
		sh := sizeHidden{bytes.NewReader(s.blob[:len(s.blob)-1])}
		if _, err := readBlob(sh, int64(len(s.plaintext)), s.p); err == nil ||
			!strings.Contains(err.Error(), fmt.Sprintf("chunk 3 truncated: want %d stored bytes at offset %d, have %d",
				MinChunkSize/2+s.stored-MinChunkSize, HeaderSize+3*s.stored, MinChunkSize/2+s.stored-MinChunkSize-1)) {
			t.Errorf("truncated: %v", err)
		}
	}
}

// TestNonceUniqueness: the same key sealing the same plaintext twice, for
// the same object and blob index, gives unrelated ciphertexts (fresh salt,
// so a fresh subkey), and equal chunks within one blob differ too (the chunk
// index is in the nonce).
func TestNonceUniqueness(t *testing.T) {
	p := BlobParams{Key: testKey(5), ObjectID: testID(8), ChunkSize: MinChunkSize}
	plaintext := make([]byte, 4*MinChunkSize) // four identical chunks
	rng := rand.New(rand.NewPCG(5, 6))
	a := writeBlob(t, plaintext, p, rng)
	b := writeBlob(t, plaintext, p, rng)
	if bytes.Equal(a[HeaderSize-blobSaltSize:HeaderSize], b[HeaderSize-blobSaltSize:HeaderSize]) {
		t.Fatal("two blobs have the same salt")
	}
	stored := MinChunkSize + blobTagSize
	seen := make(map[string]string)
	for name, blob := range map[string][]byte{"a": a, "b": b} {
		for i := range 4 {
			start := HeaderSize + i*stored
			// Compare a 16-byte stretch: equal keystreams would show here.
			k := string(blob[start : start+16])
			where := fmt.Sprintf("blob %s chunk %d", name, i)
			if prev, ok := seen[k]; ok {
				t.Fatalf("%s and %s begin with the same ciphertext", prev, where)
			}
			seen[k] = where
		}
	}
}

// --- the format as documented ---------------------------------------------

// specOpen decodes a blob with the primitives alone, following FORMAT.md
// step by step and sharing no code with blob.go.
func specOpen(blob []byte, plainSize int64, key []byte, id meta.ObjectID, index uint32) ([]byte, error) {
	if len(blob) < 48 || string(blob[:6]) != "SEALFS" || blob[6] != 1 || binary.BigEndian.Uint32(blob[12:16]) != 0 {
		return nil, errors.New("bad header")
	}
	encrypted := blob[7] == 1
	cs := int64(binary.BigEndian.Uint32(blob[8:12]))
	salt := blob[16:48]
	n := max(1, (plainSize+cs-1)/cs)
	overhead := int64(4)
	var aead cipher.AEAD
	if encrypted {
		overhead = 16
		subkey, err := hkdf.Key(sha256.New, key, salt, "sealfs blob v1"+string(blob[:16]), 32)
		if err != nil {
			return nil, err
		}
		block, err := aes.NewCipher(subkey)
		if err != nil {
			return nil, err
		}
		if aead, err = cipher.NewGCM(block); err != nil {
			return nil, err
		}
	}
	if int64(len(blob)) != 48+plainSize+n*overhead {
		return nil, errors.New("bad length")
	}
	var out []byte
	rest := blob[48:]
	for i := range n {
		plen := min(cs, plainSize-i*cs)
		stored := rest[:plen+overhead]
		rest = rest[plen+overhead:]
		var final byte
		if i == n-1 {
			final = 1
		}
		var pos []byte
		pos = binary.BigEndian.AppendUint64(pos, uint64(i))
		if encrypted {
			nonce := append(bytes.Clone(pos), 0, 0, 0, final)
			ad := append(append(append(id[:], binary.BigEndian.AppendUint32(nil, index)...), pos...), final)
			pt, err := aead.Open(nil, nonce, stored, ad)
			if err != nil {
				return nil, fmt.Errorf("chunk %d: %w", i, err)
			}
			out = append(out, pt...)
			continue
		}
		msg := bytes.Join([][]byte{salt, id[:], binary.BigEndian.AppendUint32(nil, index), pos, {final}, stored[:plen]}, nil)
		if crc32.Checksum(msg, crc32.MakeTable(crc32.Castagnoli)) != binary.BigEndian.Uint32(stored[plen:]) {
			return nil, fmt.Errorf("chunk %d: crc mismatch", i)
		}
		out = append(out, stored[:plen]...)
	}
	return out, nil
}

// TestFormatSpec decodes blobs written by blob.go with specOpen.
func TestFormatSpec(t *testing.T) {
	for _, kind := range kinds() {
		for _, size := range []int{0, 100, MinChunkSize, 3*MinChunkSize + 7} {
			p := BlobParams{Key: kind.key, ObjectID: testID(9), Index: 5, ChunkSize: MinChunkSize}
			plaintext := testBytes(size, 14)
			blob := writeBlob(t, plaintext, p, rand.New(rand.NewPCG(7, 8)))
			got, err := specOpen(blob, int64(size), kind.key, p.ObjectID, p.Index)
			if err != nil || !bytes.Equal(got, plaintext) {
				t.Errorf("%s, %d bytes: the documented format does not decode the blob: %v", kind.name, size, err)
			}
		}
	}
}

// The worked example of FORMAT.md section 8: data key 00 01 .. 1f, salt
// 20 21 .. 3f, object id 40 41 .. 4f, blob index 2, chunk size 1 KiB,
// plaintext "hello, sealfs\n".
const (
	exampleEncrypted = "5345414c465301010000040000000000" +
		"202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f" +
		"93eb8d317884ccd42bf783b41b3d" + "72b4af629fd35afeef270f91e88a3de5"
	examplePlain = "5345414c465301000000040000000000" +
		"202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f" +
		"68656c6c6f2c207365616c66730a" + "f9c91eed"
)

func exampleParams(encrypted bool) (BlobParams, *[blobSaltSize]byte) {
	var p BlobParams
	var salt [blobSaltSize]byte
	for i := range salt {
		salt[i] = byte(0x20 + i)
	}
	for i := range p.ObjectID {
		p.ObjectID[i] = byte(0x40 + i)
	}
	if encrypted {
		p.Key = make([]byte, 32)
		for i := range p.Key {
			p.Key[i] = byte(i)
		}
	}
	p.Index = 2
	p.ChunkSize = 1024
	return p, &salt
}

// TestFormatExample checks the worked example: blob.go must produce these
// exact bytes, and FORMAT.md must show them.
func TestFormatExample(t *testing.T) {
	doc, err := os.ReadFile("FORMAT.md")
	if err != nil {
		t.Fatal(err)
	}
	flat := strings.Join(strings.Fields(string(doc)), "")
	plaintext := []byte("hello, sealfs\n")
	for _, tt := range []struct {
		encrypted bool
		want      string
	}{
		{encrypted: true, want: exampleEncrypted},
		{encrypted: false, want: examplePlain},
	} {
		p, salt := exampleParams(tt.encrypted)
		got := hex.EncodeToString(sealFixed(t, plaintext, p, salt))
		if got != tt.want {
			t.Errorf("encrypted=%t: sealed\n%s\nwant\n%s", tt.encrypted, got, tt.want)
		}
		if !strings.Contains(flat, tt.want) {
			t.Errorf("encrypted=%t: FORMAT.md does not show the example blob %s", tt.encrypted, tt.want)
		}
		b, _ := hex.DecodeString(tt.want)
		if pt, err := specOpen(b, int64(len(plaintext)), p.Key, p.ObjectID, p.Index); err != nil || !bytes.Equal(pt, plaintext) {
			t.Errorf("encrypted=%t: the example does not decode by the documented steps: %v", tt.encrypted, err)
		}
	}
	p, salt := exampleParams(true)
	h, _ := hex.DecodeString(exampleEncrypted[:32])
	subkey, err := hkdf.Key(sha256.New, p.Key, salt[:], "sealfs blob v1"+string(h), 32)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(flat, hex.EncodeToString(subkey)) {
		t.Errorf("FORMAT.md does not show the example's subkey %x", subkey)
	}
}
