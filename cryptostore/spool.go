package cryptostore

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
)

// A Spool is scratch space for data a front door is still changing before
// it commits it with Put: the FUSE mount stages a file written out of order
// in one. It is a random-access, sparse file under the data directory's
// tmp/ that never holds plaintext.
//
// Format (nothing about it outlives the process, so it has no version):
//
//	key     32 random bytes from crypto/rand, made by NewSpool, kept only in
//	        memory; a fresh key for every spool
//	slot i  holds plaintext bytes [i*64 KiB, (i+1)*64 KiB) at file offset
//	        i*SpoolSlotSize:
//	          nonce (12) || AES-256-GCM(key, nonce, chunk, ad = "sealfs spool" || i (u64 BE)) (64 KiB + 16)
//
// Every chunk is sealed whole (64 KiB, zero padded past the end of the
// data), under a nonce drawn afresh from crypto/rand each time the chunk is
// written, so rewriting a chunk never reuses a nonce; at most 2^32 seals are
// made under one key (the bound NIST SP 800-38D sets for random nonces),
// after which writes fail with ErrSpoolExhausted. The index in the
// associated data stops a slot from being read as another. A chunk never
// written is a hole in the file and reads as zeros; which chunks hold data
// is kept in memory. Bytes past Size in a stored chunk are always zero.
//
// The file is unlinked as soon as it is created, so it vanishes with the
// process; Store.Open removes any tmp/ leftovers anyway. A spool holds no
// buffer between calls: a call borrows its scratch space (~1 MiB at most)
// from a pool shared by every spool, so the memory spools use follows the
// calls in progress, not how many spools are open (a mount may hold one
// per file open for writing). A Spool is safe for concurrent use.
type Spool struct {
	mu      sync.Mutex
	f       *os.File
	aead    cipher.AEAD
	size    int64
	written []uint64 // bit i: chunk i holds data
	seals   uint64
	closed  bool
	// checkSpace refuses writes below the metadata store's free-space
	// reserve (meta.DB.CheckSpace).
	checkSpace func() error
}

// SpoolChunkSize is the spool's unit of encryption: a write covering part of
// a chunk reads, opens and reseals the whole chunk.
const SpoolChunkSize = 64 << 10

// SpoolSlotSize is the size on disk of one chunk: nonce, ciphertext, tag.
const SpoolSlotSize = spoolNonceSize + SpoolChunkSize + spoolTagSize

const (
	spoolNonceSize = 12
	spoolTagSize   = 16
	spoolMaxSeals  = 1 << 32
	spoolADPrefix  = "sealfs spool"
	// spoolBatch bounds the chunks sealed or opened per file access, so the
	// scratch buffer stays ~1 MiB.
	spoolBatch = 16
)

// spoolScratch is what one call on a spool works in: sealed slots of up to
// spoolBatch chunks, the slot of a chunk read back to be merged with a
// partial write, and one chunk of plaintext, which is cleared before the
// scratch goes back to the pool.
type spoolScratch struct {
	buf   []byte
	slot  []byte
	plain []byte
}

var spoolScratches = sync.Pool{New: func() any {
	return &spoolScratch{slot: make([]byte, SpoolSlotSize), plain: make([]byte, SpoolChunkSize)}
}}

func getSpoolScratch() *spoolScratch { return spoolScratches.Get().(*spoolScratch) }

func putSpoolScratch(sc *spoolScratch) {
	clear(sc.plain)
	sc.buf = sc.buf[:0]
	spoolScratches.Put(sc)
}

// ErrSpoolExhausted: the spool's key has sealed as many chunks as it safely
// may; stage the data in a new spool.
var ErrSpoolExhausted = errors.New("spool: too many chunk writes under one key")

// NewSpool creates an empty spool in the data directory's tmp/.
func (s *Store) NewSpool() (*Spool, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("spool key: %w", err)
	}
	block, err := aes.NewCipher(key)
	clear(key)
	if err != nil {
		return nil, fmt.Errorf("spool cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("spool cipher: %w", err)
	}
	f, err := os.CreateTemp(s.blobs.tmp, "spool-*.tmp")
	if err != nil {
		return nil, fmt.Errorf("creating spool: %w", err)
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, fmt.Errorf("unlinking spool: %w", err)
	}
	return &Spool{f: f, aead: aead, checkSpace: s.meta.CheckSpace}, nil
}

// Size returns the spool's length: the end of the furthest write, or what
// Truncate set.
func (sp *Spool) Size() int64 {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return sp.size
}

func (sp *Spool) has(i int64) bool {
	w := i / 64
	return w < int64(len(sp.written)) && sp.written[w]&(1<<(i%64)) != 0
}

func (sp *Spool) mark(i int64) {
	w := i / 64
	for int64(len(sp.written)) <= w {
		sp.written = append(sp.written, 0)
	}
	sp.written[w] |= 1 << (i % 64)
}

func (sp *Spool) unmarkFrom(i int64) {
	for j := i; j < int64(len(sp.written))*64; j++ {
		sp.written[j/64] &^= 1 << (j % 64)
	}
	sp.written = sp.written[:(i+63)/64]
}

func spoolAD(dst []byte, i int64) []byte {
	dst = append(dst, spoolADPrefix...)
	return binary.BigEndian.AppendUint64(dst, uint64(i))
}

// WriteAt writes p at off, extending the spool if needed; the bytes between
// the old end and off read as zeros.
func (sp *Spool) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("spool: negative offset %d", off)
	}
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.closed {
		return 0, ErrClosed
	}
	sc := getSpoolScratch()
	defer putSpoolScratch(sc)
	done := 0
	for done < len(p) {
		batchStart := done
		first := (off + int64(done)) / SpoolChunkSize
		n := 0 // chunks in this batch
		sc.buf = sc.buf[:0]
		for n < spoolBatch && done < len(p) {
			i := first + int64(n)
			lo := int(off + int64(done) - i*SpoolChunkSize)
			m := min(len(p)-done, SpoolChunkSize-lo)
			chunk := p[done : done+m]
			if m != SpoolChunkSize {
				// A part of a chunk: merge it with what is there.
				if err := sp.load(i, sc.plain, sc.slot); err != nil {
					return batchStart, err
				}
				copy(sc.plain[lo:], chunk)
				chunk = sc.plain
			}
			var err error
			if sc.buf, err = sp.seal(sc.buf, i, chunk); err != nil {
				return batchStart, err
			}
			done += m
			n++
		}
		// The spool must not eat the metadata store's reserve.
		if err := sp.checkSpace(); err != nil {
			return batchStart, err
		}
		if _, err := sp.f.WriteAt(sc.buf, first*SpoolSlotSize); err != nil {
			return batchStart, fmt.Errorf("writing spool: %w", err)
		}
		for j := range n {
			sp.mark(first + int64(j))
		}
		sp.size = max(sp.size, off+int64(done))
	}
	return done, nil
}

// seal appends chunk i's slot to dst.
func (sp *Spool) seal(dst []byte, i int64, chunk []byte) ([]byte, error) {
	if sp.seals >= spoolMaxSeals {
		return dst, ErrSpoolExhausted
	}
	sp.seals++
	start := len(dst)
	dst = append(dst, make([]byte, spoolNonceSize)...)
	nonce := dst[start:]
	if _, err := rand.Read(nonce); err != nil {
		return dst[:start], fmt.Errorf("spool nonce: %w", err)
	}
	var ad [len(spoolADPrefix) + 8]byte
	return sp.aead.Seal(dst, nonce[:spoolNonceSize], chunk, spoolAD(ad[:0], i)), nil
}

// load reads chunk i's plaintext into dst (SpoolChunkSize bytes), through
// slot (SpoolSlotSize bytes): zeros if it was never written.
func (sp *Spool) load(i int64, dst, slot []byte) error {
	if !sp.has(i) {
		clear(dst)
		return nil
	}
	if _, err := io.ReadFull(io.NewSectionReader(sp.f, i*SpoolSlotSize, SpoolSlotSize), slot); err != nil {
		return fmt.Errorf("%w: spool chunk %d: %w", ErrCorruptBlob, i, err)
	}
	return sp.open(i, dst, slot)
}

func (sp *Spool) open(i int64, dst, slot []byte) error {
	var ad [len(spoolADPrefix) + 8]byte
	if _, err := sp.aead.Open(dst[:0], slot[:spoolNonceSize], slot[spoolNonceSize:], spoolAD(ad[:0], i)); err != nil {
		return fmt.Errorf("%w: spool chunk %d failed authentication", ErrCorruptBlob, i)
	}
	return nil
}

// ReadAt reads at off with io.ReaderAt semantics; chunks never written read
// as zeros.
func (sp *Spool) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("spool: negative offset %d", off)
	}
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.closed {
		return 0, ErrClosed
	}
	if off >= sp.size {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	want := len(p)
	if rest := sp.size - off; int64(want) > rest {
		want = int(rest)
	}
	sc := getSpoolScratch()
	defer putSpoolScratch(sc)
	done := 0
	last := (off + int64(want) - 1) / SpoolChunkSize
	for done < want {
		i := (off + int64(done)) / SpoolChunkSize
		if !sp.has(i) {
			m := min(want-done, SpoolChunkSize-int(off+int64(done)-i*SpoolChunkSize))
			clear(p[done : done+m])
			done += m
			continue
		}
		// Read a run of stored chunks with one call.
		n := int64(1)
		for n < spoolBatch && i+n <= last && sp.has(i+n) {
			n++
		}
		if cap(sc.buf) < int(n)*SpoolSlotSize {
			sc.buf = make([]byte, int(n)*SpoolSlotSize)
		}
		sc.buf = sc.buf[:int(n)*SpoolSlotSize]
		if _, err := io.ReadFull(io.NewSectionReader(sp.f, i*SpoolSlotSize, int64(len(sc.buf))), sc.buf); err != nil {
			return done, fmt.Errorf("%w: spool chunks %d..%d: %w", ErrCorruptBlob, i, i+n-1, err)
		}
		for j := range n {
			lo := int(off + int64(done) - (i+j)*SpoolChunkSize)
			m := min(want-done, SpoolChunkSize-lo)
			if err := sp.open(i+j, sc.plain, sc.buf[int(j)*SpoolSlotSize:int(j+1)*SpoolSlotSize]); err != nil {
				return done, err
			}
			copy(p[done:done+m], sc.plain[lo:])
			done += m
		}
	}
	if done < len(p) {
		return done, io.EOF
	}
	return done, nil
}

// Truncate sets the spool's length. Shrinking drops the data past size (a
// later extension reads zeros there); growing adds zeros.
func (sp *Spool) Truncate(size int64) error {
	if size < 0 {
		return fmt.Errorf("spool: negative size %d", size)
	}
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.closed {
		return ErrClosed
	}
	if size >= sp.size {
		sp.size = size
		return nil
	}
	keep := (size + SpoolChunkSize - 1) / SpoolChunkSize // chunks still (partly) inside
	if tail := size % SpoolChunkSize; tail != 0 && sp.has(keep-1) {
		// Zero the cut-off end of the last chunk.
		sc := getSpoolScratch()
		defer putSpoolScratch(sc)
		if err := sp.load(keep-1, sc.plain, sc.slot); err != nil {
			return err
		}
		clear(sc.plain[tail:])
		var err error
		if sc.buf, err = sp.seal(sc.buf[:0], keep-1, sc.plain); err != nil {
			return err
		}
		if _, err := sp.f.WriteAt(sc.buf, (keep-1)*SpoolSlotSize); err != nil {
			return fmt.Errorf("writing spool: %w", err)
		}
	}
	sp.unmarkFrom(keep)
	if err := sp.f.Truncate(keep * SpoolSlotSize); err != nil {
		return fmt.Errorf("truncating spool: %w", err)
	}
	sp.size = size
	return nil
}

// Close releases the spool; its file is already unlinked, so the space is
// freed.
func (sp *Spool) Close() error {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.closed {
		return nil
	}
	sp.closed = true
	sp.written = nil
	return sp.f.Close()
}
