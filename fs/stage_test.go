package fs

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/sealfs/sealfs/cryptostore"
	"github.com/sealfs/sealfs/kms"
	"github.com/sealfs/sealfs/meta"
)

// newTestStore returns a real store on a temporary data directory (also
// returned), with a plain bucket "bkt".
func newTestStore(t *testing.T) (*cryptostore.Store, string) {
	t.Helper()
	dir := t.TempDir()
	ctx := context.Background()
	db, err := meta.Open(filepath.Join(dir, "meta"), meta.Options{})
	if err != nil {
		t.Fatal(err)
	}
	root := make([]byte, 32)
	rand.Read(root)
	k, err := kms.OpenLocal(filepath.Join(dir, "kms"), root, kms.LocalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := cryptostore.Open(ctx, cryptostore.Config{Dir: dir, Meta: db, KMS: k})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Close()
		k.Close()
		db.Close()
	})
	if err := s.CreateBucket(ctx, "bkt", ""); err != nil {
		t.Fatal(err)
	}
	return s, dir
}

// newTestFS returns a file system (not mounted) over a new test store
// whose bucket "bkt" encrypts.
func newTestFS(t *testing.T) *FS {
	t.Helper()
	s, dir := newTestStore(t)
	if err := s.SetBucketEncryption(context.Background(), "bkt", true); err != nil {
		t.Fatal(err)
	}
	return newFS(Options{Store: s, DataDir: dir})
}

// stored reads an object's committed content in bucket "bkt".
func stored(t *testing.T, f *FS, key string) []byte {
	t.Helper()
	return storedIn(t, f, "bkt", key)
}

func fill(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7/3)
	}
	return b
}

// TestStagingModel drives a file's staging area with random writes (in
// order, out of order, far ahead, behind), reads, truncations and commits,
// and compares it after every step with a byte slice, and with the store
// after every commit. It also makes the disk "fill" at random points: the
// spool refuses writes (the staging keeps chunks in memory from then on),
// or the running stream's Stage fails (the staging moves into the overlay
// from its copy of what was sent); no byte may be lost either way. The
// last seed runs with the mount's budgets for such copies and for windows
// at 1 MiB, so that files also move into the overlay because their copy
// or their window cannot grow.
func TestStagingModel(t *testing.T) {
	f := newTestFS(t)
	ctx := context.Background()
	for seed := range uint64(4) {
		if seed == 3 {
			f.teeBudget, f.winBudget = 1<<20, 1<<20
		}
		n := newFileNode(f, kindFile, "bkt", "model")
		var model []byte
		rng := mrand.New(mrand.NewPCG(seed, 7))
		n.mu.Lock()
		n.st = newStaging(n, nil, cryptostore.ObjectMeta{}, true)
		for step := range 100 {
			if n.st == nil {
				if errno := n.stageLocked(ctx); errno != 0 {
					t.Fatalf("seed %d step %d: stage: %v", seed, step, errno)
				}
			}
			st := n.st
			switch op := rng.IntN(24); {
			case op >= 22: // the disk fills under the stream
				if st.put != nil {
					st.put.pw.CloseWithError(syscall.ENOSPC)
				}
				continue
			case op >= 20: // the spool cannot take more
				st.spoolFull = true
				continue
			case op < 10: // in order, the common case
				p := fill(rng.IntN(2<<20)+1, byte(step))
				off := int64(len(model))
				if err := st.write(p, off); err != nil {
					t.Fatalf("seed %d step %d: write: %v", seed, step, err)
				}
				model = append(model, p...)
			case op < 14: // anywhere, up to 12 MiB past the end
				off := rng.Int64N(int64(len(model)) + 12<<20)
				p := fill(rng.IntN(200<<10)+1, byte(step))
				if err := st.write(p, off); err != nil {
					t.Fatalf("seed %d step %d: write at %d: %v", seed, step, off, err)
				}
				if end := int(off) + len(p); end > len(model) {
					model = append(model, make([]byte, end-len(model))...)
				}
				copy(model[off:], p)
			case op < 16:
				size := rng.Int64N(int64(len(model)) + 1<<20)
				if err := st.truncate(size); err != nil {
					t.Fatalf("seed %d step %d: truncate: %v", seed, step, err)
				}
				if int(size) < len(model) {
					model = model[:size]
				} else {
					model = append(model, make([]byte, int(size)-len(model))...)
				}
			case op < 18:
				off := rng.Int64N(int64(len(model)) + 10)
				p := make([]byte, rng.IntN(300<<10)+1)
				got, err := st.readAt(p, off)
				want := max(0, min(len(p), len(model)-int(off)))
				if got != want || (err != nil && err != io.EOF) || (got > 0 && !bytes.Equal(p[:got], model[off:int(off)+got])) {
					t.Fatalf("seed %d step %d: read %d at %d = %d, %v; want %d bytes", seed, step, len(p), off, got, err, want)
				}
			default:
				if err := n.commitLocked(ctx); err != nil {
					t.Fatalf("seed %d step %d: commit: %v", seed, step, err)
				}
				if got := stored(t, f, "model"); !bytes.Equal(got, model) {
					t.Fatalf("seed %d step %d: committed %d bytes, want %d", seed, step, len(got), len(model))
				}
				continue
			}
			if n.st.size != int64(len(model)) {
				t.Fatalf("seed %d step %d: size %d, want %d", seed, step, n.st.size, len(model))
			}
		}
		if err := n.commitLocked(ctx); err != nil {
			t.Fatal(err)
		}
		n.mu.Unlock()
		if got := stored(t, f, "model"); !bytes.Equal(got, model) {
			t.Fatalf("seed %d: final content differs (%d bytes, want %d)", seed, len(got), len(model))
		}
	}
	nothingCounted(t, f)
}

// nothingCounted fails unless the mount's counts of memory held for
// files being written are all back to zero.
func nothingCounted(t *testing.T, f *FS) {
	t.Helper()
	for _, c := range []struct {
		what string
		n    int64
	}{
		{"staging kept in memory for a full disk", f.memStaged.Load()},
		{"stream copies", f.teeHeld.Load()},
		{"windows", f.winHeld.Load()},
	} {
		if c.n != 0 {
			t.Errorf("%d bytes of %s still counted after every commit", c.n, c.what)
		}
	}
}

// commitEach commits each node's staging (its lock held since it was
// staged), unlocks it, and checks that object "<prefix><i>" holds
// contents[i]; then that nothing stays counted.
func commitEach(t *testing.T, f *FS, prefix string, nodes []*fileNode, contents [][]byte) {
	t.Helper()
	for i, n := range nodes {
		if err := n.commitLocked(context.Background()); err != nil {
			t.Fatalf("commit of file %d: %v", i, err)
		}
		n.mu.Unlock()
		if got := stored(t, f, fmt.Sprintf("%s%d", prefix, i)); !bytes.Equal(got, contents[i]) {
			t.Fatalf("file %d: committed %d bytes, want %d", i, len(got), len(contents[i]))
		}
	}
	nothingCounted(t, f)
}

// TestWindowsShareABudget: files smaller than what a window sends at once
// are held whole in their windows until committed; the windows of the
// mount's files stay within their budget together, a file whose window
// would pass it goes into the spool with nothing lost, and nothing stays
// counted once they are committed.
func TestWindowsShareABudget(t *testing.T) {
	f := newTestFS(t)
	f.winBudget = 1 << 20
	var nodes []*fileNode
	var contents [][]byte
	for i := range 3 {
		n := newFileNode(f, kindFile, "bkt", fmt.Sprintf("w%d", i))
		n.mu.Lock()
		n.st = newStaging(n, nil, cryptostore.ObjectMeta{}, true)
		var data []byte
		for j := range 4 { // 4 writes of 150 KiB: 600 KiB
			p := fill(150<<10, byte(10*i+j))
			if err := n.st.write(p, int64(len(data))); err != nil {
				t.Fatal(err)
			}
			data = append(data, p...)
			if held := f.winHeld.Load(); held > f.winBudget {
				t.Fatalf("the windows hold %d bytes, past the budget of %d", held, f.winBudget)
			}
		}
		nodes, contents = append(nodes, n), append(contents, data)
	}
	if st := nodes[0].st; st.win == nil || st.spool != nil || st.put != nil {
		t.Fatalf("the first file: window=%t spool=%t stream=%t, want its window only", st.win != nil, st.spool != nil, st.put != nil)
	}
	for i, n := range nodes[1:] {
		if st := n.st; st.win != nil || st.spool == nil {
			t.Fatalf("file %d, past the budget: window=%t spool=%t, want the spool", i+1, st.win != nil, st.spool != nil)
		}
	}
	commitEach(t, f, "w", nodes, contents)
}

// TestStreamCopiesShareABudget: the copies that streams keep of what they
// sent (staging.tee) stay within the mount's budget together. A file whose
// copy would pass it moves into the spool, with nothing lost; the files
// that keep a copy still survive a failed stream; and nothing stays
// counted once they are committed.
func TestStreamCopiesShareABudget(t *testing.T) {
	f := newTestFS(t)
	f.teeBudget = 3 << 20
	var nodes []*fileNode
	var contents [][]byte
	for i := range 3 {
		n := newFileNode(f, kindFile, "bkt", fmt.Sprintf("f%d", i))
		n.mu.Lock()
		n.st = newStaging(n, nil, cryptostore.ObjectMeta{}, true)
		// 2 MiB in order, the files all open at once: 2 MiB of copy
		// each, where the budget holds 3 MiB.
		var data []byte
		for j := range 2 {
			p := fill(1<<20, byte(10*i+j))
			if err := n.st.write(p, int64(len(data))); err != nil {
				t.Fatal(err)
			}
			data = append(data, p...)
			if held := f.teeHeld.Load(); held > f.teeBudget {
				t.Fatalf("the copies hold %d bytes, past the budget of %d", held, f.teeBudget)
			}
		}
		nodes, contents = append(nodes, n), append(contents, data)
	}
	first := nodes[0].st
	if first.put == nil || !first.teeOK || len(first.tee) != 2<<20 {
		t.Fatalf("the first file: streaming=%t copy=%t of %d bytes, want a stream with a 2 MiB copy", first.put != nil, first.teeOK, len(first.tee))
	}
	for i, n := range nodes[1:] {
		if st := n.st; st.put != nil || st.spool == nil {
			t.Fatalf("file %d, past the budget: streaming=%t spool=%t, want the spool", i+1, st.put != nil, st.spool != nil)
		}
	}
	// The first file's stream fails (a full disk): its copy keeps the
	// content.
	first.put.pw.CloseWithError(syscall.ENOSPC)
	p := fill(1<<20, 99)
	if err := first.write(p, int64(len(contents[0]))); err != nil {
		t.Fatalf("writing after the stream failed: %v", err)
	}
	contents[0] = append(contents[0], p...)
	commitEach(t, f, "f", nodes, contents)
}

// TestStagingModes checks which path a write takes: a file written in order
// streams into a running Stage (no spool), a write behind it moves it to the
// spool: over what was streamed, staged but committed nowhere (nothing is
// visible before the commit), once more than teeMax was streamed; over the
// version it started from, with the copy of what was sent, before. A small
// file is put whole.
func TestStagingModes(t *testing.T) {
	f := newTestFS(t)
	ctx := context.Background()
	n := newFileNode(f, kindFile, "bkt", "modes")
	n.mu.Lock()
	defer n.mu.Unlock()
	n.st = newStaging(n, nil, cryptostore.ObjectMeta{}, true)
	st := n.st
	if err := st.write(fill(100, 1), 0); err != nil {
		t.Fatal(err)
	}
	if st.put != nil || st.spool != nil {
		t.Fatal("a 100-byte file started a stream or a spool")
	}
	data := fill(100, 1)
	for i := range 12 {
		p := fill(1<<20, byte(i))
		if err := st.write(p, int64(len(data))); err != nil {
			t.Fatal(err)
		}
		data = append(data, p...)
	}
	if st.put == nil || st.spool != nil {
		t.Fatalf("a 12 MiB file written in order: streaming=%t spool=%t, want a stream", st.put != nil, st.spool != nil)
	}
	// A chmod while the data streams is committed with it.
	setPOSIXField(&st.meta, cryptostore.MetaMode, 0o100640)
	if len(st.win.buf) > 2<<20 {
		t.Fatalf("the window holds %d bytes of an in-order stream", len(st.win.buf))
	}
	// Behind what was streamed: the spool, over the staged stream.
	if err := st.write([]byte("patch"), 10); err != nil {
		t.Fatal(err)
	}
	copy(data[10:], "patch")
	if st.put != nil || st.spool == nil || st.base == nil || st.baseLen != int64(len(data)) {
		t.Fatalf("after a write behind the stream: streaming=%t spool=%t baseLen=%d", st.put != nil, st.spool != nil, st.baseLen)
	}
	if _, err := f.store.Head(ctx, "bkt", "modes"); !errors.Is(err, cryptostore.ErrNoSuchKey) {
		t.Fatalf("before the commit, the object is visible (Head: %v): no intermediate version may be committed", err)
	}
	got := make([]byte, len(data))
	if n, err := st.readAt(got, 0); n != len(data) || (err != nil && err != io.EOF) || !bytes.Equal(got, data) {
		t.Fatalf("reading the staged content: %d bytes, %v", n, err)
	}
	if err := n.commitLocked(ctx); err != nil {
		t.Fatal(err)
	}
	obj, err := f.store.Head(ctx, "bkt", "modes")
	if err != nil {
		t.Fatal(err)
	}
	if mode, _ := obj.Meta.Mode(); mode != 0o100640 {
		t.Fatalf("mode set while streaming: committed %o, want 100640", mode)
	}
	if got := stored(t, f, "modes"); !bytes.Equal(got, data) {
		t.Fatal("final content differs")
	}

	// A 3 MiB file: the write behind the stream moves the copy of what was
	// sent into the spool, over the version the file started from.
	n.st = newStaging(n, nil, cryptostore.ObjectMeta{}, true)
	st = n.st
	data = nil
	for i := range 3 {
		p := fill(1<<20, byte(i))
		if err := st.write(p, int64(len(data))); err != nil {
			t.Fatal(err)
		}
		data = append(data, p...)
	}
	if st.put == nil || !st.teeOK {
		t.Fatalf("a 3 MiB file written in order: streaming=%t copy=%t, want both", st.put != nil, st.teeOK)
	}
	if err := st.write([]byte("patch"), 10); err != nil {
		t.Fatal(err)
	}
	copy(data[10:], "patch")
	if st.put != nil || st.spool == nil || st.base != nil || st.baseLen != 0 {
		t.Fatalf("after a write behind the stream: streaming=%t spool=%t base=%t baseLen=%d", st.put != nil, st.spool != nil, st.base != nil, st.baseLen)
	}
	if err := n.commitLocked(ctx); err != nil {
		t.Fatal(err)
	}
	if got := stored(t, f, "modes"); !bytes.Equal(got, data) {
		t.Fatal("final content of the 3 MiB file differs")
	}
}

func TestWindowSpans(t *testing.T) {
	var w window
	w.write([]byte("cccc"), 8192)
	if w.ready() != 0 || w.end() != 0 {
		t.Fatalf("a write past a gap is ready: ready %d end %d", w.ready(), w.end())
	}
	w.write(bytes.Repeat([]byte("a"), 4096), 0)
	if w.ready() != 4096 || w.end() != 4096 {
		t.Fatalf("ready %d end %d, want 4096", w.ready(), w.end())
	}
	w.write(bytes.Repeat([]byte("x"), 4096), 4096)
	if w.ready() != 8192 || w.end() != 8196 {
		t.Fatalf("after filling the gap: ready %d end %d", w.ready(), w.end())
	}
	w.drop(8192)
	if w.off != 8192 || string(w.buf) != "cccc" || w.end() != 8196 {
		t.Fatalf("after drop: off %d buf %q end %d", w.off, w.buf, w.end())
	}
	w.truncate(8194)
	p := make([]byte, 6)
	w.read(p, 8192)
	if string(p) != "cc\x00\x00\x00\x00" {
		t.Fatalf("after truncate: %q", p)
	}
}

// TestWritesInProgressKeepNoMap: the node tracks the writes in progress
// by offset, and keeps no map once the last of them has ended.
func TestWritesInProgressKeepNoMap(t *testing.T) {
	n := newFileNode(newTestFS(t), kindFile, "bkt", "w")
	first := n.arriving(0)
	second := n.arriving(4096)
	again := n.arriving(0)
	if !n.arrived(0) || !n.arrived(4096) || n.arrived(8192) {
		t.Fatal("arrived does not report the writes in progress")
	}
	first()
	if !n.arrived(0) {
		t.Fatal("one of two writes at 0 ended, and arrived(0) says none is in progress")
	}
	again()
	second()
	if n.arrived(0) || n.arrived(4096) {
		t.Fatal("arrived reports writes that ended")
	}
	if n.writesAt != nil {
		t.Fatalf("the node keeps a map of %d writes after all of them ended", len(n.writesAt))
	}
}
