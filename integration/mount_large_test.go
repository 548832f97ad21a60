package integration

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// stampedBlock fills block (at file offset off) with base, every 4 KiB page
// stamped with its offset, so a page read from the wrong place shows.
func stampedBlock(block, base []byte, off int64) {
	copy(block, base)
	for p := 0; p+8 <= len(block); p += 4096 {
		binary.LittleEndian.PutUint64(block[p:], uint64(off)+uint64(p))
	}
}

// TestMountLargeFiles writes files past 4 GiB two ways and reads them back
// at offsets past 4 GiB: sequentially, as cp does (streamed into the store,
// the daemon's memory staying bounded), and sparsely with dd seek= (staged
// in a spool).
func TestMountLargeFiles(t *testing.T) {
	requireTool(t, "dd")
	d := startMount(t, DaemonOptions{})
	b := newBucket(t, d, "large", true)
	const size = 4<<30 + 3<<20 + 12345
	base := pattern(1<<20, 42)
	expect := func(off int64, n int) []byte {
		out := make([]byte, n)
		block := make([]byte, 1<<20)
		for i := 0; i < n; {
			bo := (off + int64(i)) &^ (1<<20 - 1)
			stampedBlock(block, base, bo)
			i += copy(out[i:], block[off+int64(i)-bo:])
		}
		return out
	}

	p := filepath.Join(b, "big")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	block := make([]byte, 1<<20)
	for off := int64(0); off < size; off += int64(len(block)) {
		n := min(int64(len(block)), size-off)
		stampedBlock(block, base, off)
		if _, err := f.Write(block[:n]); err != nil {
			t.Fatalf("write at %d: %v", off, err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	hwm := d.ProcStatus("VmHWM")
	t.Logf("4 GiB sequential write: daemon peak RSS %d MiB", hwm>>20)
	if hwm > 300<<20 {
		t.Errorf("the daemon's peak RSS was %d MiB writing a 4 GiB file, want at most 300 MiB", hwm>>20)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(p, &st); err != nil || st.Size != size {
		t.Fatalf("stat size %d, %v; want %d", st.Size, err, int64(size))
	}
	r, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, off := range []int64{0, 1<<32 - 10, 1 << 32, 1<<32 + 1<<20 + 4097, size - 5000} {
		n := min(200<<10, int(size-off))
		got := make([]byte, n)
		if _, err := r.ReadAt(got, off); err != nil {
			t.Fatalf("read at %d: %v", off, err)
		}
		if !bytes.Equal(got, expect(off, n)) {
			t.Fatalf("read at %d: wrong bytes", off)
		}
	}

	// Sparse: dd writes 1 MiB at 4097 MiB into a new file.
	chunk := filepath.Join(t.TempDir(), "chunk")
	mustWrite(t, chunk, pattern(1<<20, 7))
	sp := filepath.Join(b, "sparse")
	run(t, "dd", "if="+chunk, "of="+sp, "bs=1M", "seek=4097", "status=none")
	if err := syscall.Stat(sp, &st); err != nil || st.Size != 4098<<20 {
		t.Fatalf("sparse: stat size %d, %v; want %d", st.Size, err, int64(4098<<20))
	}
	s, err := os.Open(sp)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got := make([]byte, 1<<20)
	if _, err := s.ReadAt(got, 4097<<20); err != nil || !bytes.Equal(got, pattern(1<<20, 7)) {
		t.Fatalf("sparse: the data at 4097 MiB reads wrong (%v)", err)
	}
	if _, err := s.ReadAt(got, 3<<30); err != nil || !bytes.Equal(got, make([]byte, 1<<20)) {
		t.Fatalf("sparse: the hole does not read as zeros (%v)", err)
	}
}
