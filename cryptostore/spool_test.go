package cryptostore

import (
	"bytes"
	"errors"
	"io"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
)

func newSpool(t *testing.T) (*testEnv, *Spool) {
	t.Helper()
	e := newEnv(t, nil)
	sp, err := e.store.NewSpool()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sp.Close() })
	return e, sp
}

// readAll reads the spool's whole content.
func readAll(t *testing.T, sp *Spool) []byte {
	t.Helper()
	got := make([]byte, sp.Size())
	n, err := sp.ReadAt(got, 0)
	if err != nil && err != io.EOF {
		t.Fatalf("ReadAt: %v", err)
	}
	if n != len(got) {
		t.Fatalf("ReadAt: %d bytes, want %d", n, len(got))
	}
	return got
}

// rawFile reads the spool's file as it is on disk.
func rawFile(t *testing.T, sp *Spool) []byte {
	t.Helper()
	fi, err := sp.f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	raw := make([]byte, fi.Size())
	if _, err := sp.f.ReadAt(raw, 0); err != nil && err != io.EOF {
		t.Fatal(err)
	}
	return raw
}

// TestSpoolModel drives a spool and a plain byte slice with the same random
// writes, truncations and reads, and compares them after every step.
func TestSpoolModel(t *testing.T) {
	_, sp := newSpool(t)
	rng := mrand.New(mrand.NewPCG(1, 2))
	var model []byte
	const span = 5*SpoolChunkSize + 123
	for step := range 400 {
		switch op := rng.IntN(10); {
		case op < 6:
			off := rng.Int64N(span)
			n := rng.IntN(3*SpoolChunkSize) + 1
			if rng.IntN(4) == 0 {
				n = rng.IntN(100) + 1
			}
			p := make([]byte, n)
			for i := range p {
				p[i] = byte(rng.IntN(255) + 1)
			}
			if w, err := sp.WriteAt(p, off); err != nil || w != n {
				t.Fatalf("step %d: WriteAt(%d bytes at %d) = %d, %v", step, n, off, w, err)
			}
			if end := int(off) + n; end > len(model) {
				model = append(model, make([]byte, end-len(model))...)
			}
			copy(model[off:], p)
		case op < 8:
			size := rng.Int64N(span)
			if err := sp.Truncate(size); err != nil {
				t.Fatalf("step %d: Truncate(%d): %v", step, size, err)
			}
			if int(size) < len(model) {
				model = model[:size]
			} else {
				model = append(model, make([]byte, int(size)-len(model))...)
			}
		default:
			off := rng.Int64N(span)
			p := make([]byte, rng.IntN(2*SpoolChunkSize)+1)
			n, err := sp.ReadAt(p, off)
			wantN := max(0, min(len(p), len(model)-int(off)))
			if n != wantN || (n < len(p) && err != io.EOF) || (n == len(p) && err != nil) {
				t.Fatalf("step %d: ReadAt(%d at %d) = %d, %v; want %d bytes (size %d)", step, len(p), off, n, err, wantN, len(model))
			}
			if !bytes.Equal(p[:n], model[off:int(off)+n]) {
				t.Fatalf("step %d: ReadAt(%d at %d): content differs", step, len(p), off)
			}
		}
		if sp.Size() != int64(len(model)) {
			t.Fatalf("step %d: Size = %d, want %d", step, sp.Size(), len(model))
		}
	}
	if got := readAll(t, sp); !bytes.Equal(got, model) {
		t.Fatal("final content differs")
	}
}

// TestSpoolSparse writes past 4 GiB: the file stays sparse, the gap reads as
// zeros and the data comes back.
func TestSpoolSparse(t *testing.T) {
	_, sp := newSpool(t)
	off := int64(5<<30 + 7)
	data := []byte("beyond four gibibytes")
	if _, err := sp.WriteAt(data, off); err != nil {
		t.Fatal(err)
	}
	if sp.Size() != off+int64(len(data)) {
		t.Fatalf("Size = %d, want %d", sp.Size(), off+int64(len(data)))
	}
	got := make([]byte, len(data))
	if _, err := sp.ReadAt(got, off); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("ReadAt past 4 GiB = %q, %v", got, err)
	}
	zeros := make([]byte, 3*SpoolChunkSize)
	if _, err := sp.ReadAt(zeros, 4<<30); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(zeros, make([]byte, len(zeros))) {
		t.Fatal("the hole does not read as zeros")
	}
	fi, err := sp.f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if blocks := fi.Sys().(*syscall.Stat_t).Blocks * 512; blocks > 1<<20 {
		t.Fatalf("spool of a 5 GiB sparse file uses %d bytes of disk, want a few chunks", blocks)
	}
}

// TestSpoolNoPlaintext checks that what reaches the disk is sealed, that
// every rewrite of a chunk gets a fresh nonce, and that the file is not
// left in tmp/.
func TestSpoolNoPlaintext(t *testing.T) {
	e, sp := newSpool(t)
	marker := []byte("SPOOL-PLAINTEXT-MARKER-0123456789")
	chunk := bytes.Repeat(marker, SpoolChunkSize/len(marker)+1)[:SpoolChunkSize]
	if _, err := sp.WriteAt(chunk, 0); err != nil {
		t.Fatal(err)
	}
	first := rawFile(t, sp)
	if _, err := sp.WriteAt(chunk, 0); err != nil { // same bytes again
		t.Fatal(err)
	}
	if _, err := sp.WriteAt(marker, SpoolChunkSize+10); err != nil { // a partial chunk
		t.Fatal(err)
	}
	second := rawFile(t, sp)
	for _, raw := range [][]byte{first, second} {
		if bytes.Contains(raw, marker[:16]) {
			t.Fatal("plaintext found in the spool file")
		}
	}
	if bytes.Equal(first[:spoolNonceSize], second[:spoolNonceSize]) {
		t.Fatal("rewriting a chunk reused its nonce")
	}
	if bytes.Equal(first[:SpoolSlotSize], second[:SpoolSlotSize]) {
		t.Fatal("rewriting a chunk with the same bytes produced the same slot")
	}
	entries, err := os.ReadDir(filepath.Join(e.dir, "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Fatalf("tmp/ holds %d entries, want none (the spool is unlinked)", len(entries))
	}
	if got := readAll(t, sp); !bytes.Equal(got[:SpoolChunkSize], chunk) || !bytes.Equal(got[SpoolChunkSize+10:], marker) {
		t.Fatal("content differs")
	}
}

// TestSpoolTamper checks that a damaged or moved slot fails to read, with an
// error that wraps ErrCorruptBlob, instead of returning wrong bytes.
func TestSpoolTamper(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, sp *Spool)
	}{
		{name: "bit flip", damage: func(t *testing.T, sp *Spool) {
			b := make([]byte, 1)
			sp.f.ReadAt(b, SpoolSlotSize+100)
			b[0] ^= 1
			if _, err := sp.f.WriteAt(b, SpoolSlotSize+100); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "slots swapped", damage: func(t *testing.T, sp *Spool) {
			a := make([]byte, SpoolSlotSize)
			b := make([]byte, SpoolSlotSize)
			sp.f.ReadAt(a, 0)
			sp.f.ReadAt(b, SpoolSlotSize)
			sp.f.WriteAt(b, 0)
			sp.f.WriteAt(a, SpoolSlotSize)
		}},
		{name: "slot cut short", damage: func(t *testing.T, sp *Spool) {
			if err := sp.f.Truncate(SpoolSlotSize + 10); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, sp := newSpool(t)
			data := bytes.Repeat([]byte{7}, 2*SpoolChunkSize)
			data[SpoolChunkSize] = 9
			if _, err := sp.WriteAt(data, 0); err != nil {
				t.Fatal(err)
			}
			tc.damage(t, sp)
			p := make([]byte, 10)
			_, err := sp.ReadAt(p, SpoolChunkSize)
			if !errors.Is(err, ErrCorruptBlob) {
				t.Fatalf("ReadAt of a damaged slot: %v, want ErrCorruptBlob", err)
			}
			// A partial write into the damaged chunk must fail too, not
			// seal garbage.
			if _, err := sp.WriteAt([]byte{1}, SpoolChunkSize+5); !errors.Is(err, ErrCorruptBlob) {
				t.Fatalf("WriteAt into a damaged chunk: %v, want ErrCorruptBlob", err)
			}
		})
	}
}

func TestSpoolTruncateZeroes(t *testing.T) {
	_, sp := newSpool(t)
	data := bytes.Repeat([]byte{0xAB}, 3*SpoolChunkSize)
	if _, err := sp.WriteAt(data, 0); err != nil {
		t.Fatal(err)
	}
	if err := sp.Truncate(SpoolChunkSize + 5); err != nil {
		t.Fatal(err)
	}
	if err := sp.Truncate(3 * SpoolChunkSize); err != nil {
		t.Fatal(err)
	}
	got := readAll(t, sp)
	want := append(bytes.Repeat([]byte{0xAB}, SpoolChunkSize+5), make([]byte, 2*SpoolChunkSize-5)...)
	if !bytes.Equal(got, want) {
		t.Fatal("bytes cut by Truncate came back when it grew again")
	}
	fi, err := sp.f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != 2*SpoolSlotSize {
		t.Fatalf("spool file is %d bytes after shrinking to 2 chunks, want %d", fi.Size(), 2*SpoolSlotSize)
	}
}

func TestSpoolExhausted(t *testing.T) {
	_, sp := newSpool(t)
	sp.seals = spoolMaxSeals - 1
	if _, err := sp.WriteAt([]byte("x"), 0); err != nil {
		t.Fatalf("last allowed write: %v", err)
	}
	if _, err := sp.WriteAt([]byte("y"), 0); !errors.Is(err, ErrSpoolExhausted) {
		t.Fatalf("write past the seal limit: %v, want ErrSpoolExhausted", err)
	}
}

func TestSpoolConcurrent(t *testing.T) {
	_, sp := newSpool(t)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := bytes.Repeat([]byte{byte(g + 1)}, SpoolChunkSize+17)
			off := int64(g) * 2 * SpoolChunkSize
			for range 20 {
				if _, err := sp.WriteAt(p, off); err != nil {
					t.Error(err)
					return
				}
				q := make([]byte, len(p))
				if _, err := sp.ReadAt(q, off); err != nil && err != io.EOF {
					t.Error(err)
					return
				}
				if !bytes.Equal(p, q) {
					t.Error("concurrent read saw other bytes")
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestSpoolClosed(t *testing.T) {
	_, sp := newSpool(t)
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := sp.WriteAt([]byte("x"), 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("WriteAt after Close: %v, want ErrClosed", err)
	}
	if err := sp.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func BenchmarkSpoolWrite(b *testing.B) {
	e := newEnv(b, nil)
	sp, err := e.store.NewSpool()
	if err != nil {
		b.Fatal(err)
	}
	defer sp.Close()
	p := make([]byte, 1<<20)
	b.SetBytes(int64(len(p)))
	for i := 0; b.Loop(); i++ {
		if _, err := sp.WriteAt(p, int64(i%64)<<20); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSpoolWritePartial writes 4 KiB pieces into chunks already
// written: each one reads, opens and reseals its chunk.
func BenchmarkSpoolWritePartial(b *testing.B) {
	e := newEnv(b, nil)
	sp, err := e.store.NewSpool()
	if err != nil {
		b.Fatal(err)
	}
	defer sp.Close()
	if _, err := sp.WriteAt(make([]byte, 4<<20), 0); err != nil {
		b.Fatal(err)
	}
	p := make([]byte, 4<<10)
	b.SetBytes(int64(len(p)))
	for i := 0; b.Loop(); i++ {
		if _, err := sp.WriteAt(p, int64(i%1024)*(4<<10)); err != nil {
			b.Fatal(err)
		}
	}
}
