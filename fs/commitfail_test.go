package fs

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/sealfs/sealfs/cryptostore"
)

// A commit that fails (here: the bucket is gone, until it is made again) leaves the
// staging whole, whichever way the content is kept: once the key is enabled
// again, the next commit stores every write. Before, a streamed file lost
// its data with its first failed commit, and every later commit failed.
func TestFailedCommitKeepsStaging(t *testing.T) {
	f := newTestFS(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		write func(st *staging) []byte
	}{
		{"small", func(st *staging) []byte {
			p := fill(100<<10, 1)
			st.write(p, 0)
			return p
		}},
		{"streamed", func(st *staging) []byte {
			var data []byte
			for i := range 3 {
				p := fill(1<<20, byte(i))
				st.write(p, int64(len(data)))
				data = append(data, p...)
			}
			return data
		}},
		{"streamed, then a hole", func(st *staging) []byte {
			data := fill(3<<20, 5)
			st.write(data, 0)
			st.truncate(64 << 20)
			return append(data, make([]byte, 64<<20-len(data))...)
		}},
		{"streamed, then patched", func(st *staging) []byte {
			data := fill(3<<20, 7)
			st.write(data, 0)
			st.write([]byte("patch"), 1000)
			copy(data[1000:], "patch")
			return data
		}},
	} {
		if err := f.store.CreateBucket(ctx, "gone", ""); err != nil {
			t.Fatal(err)
		}
		n := newFileNode(f, kindFile, "gone", "f")
		n.mu.Lock()
		n.st = newStaging(n, nil, cryptostore.ObjectMeta{}, true)
		want := tc.write(n.st)
		if err := f.store.DeleteBucket(ctx, "gone"); err != nil {
			t.Fatal(err)
		}
		cerr := n.commitLocked(ctx)
		if cerr == nil {
			t.Fatalf("%s: the commit into a deleted bucket succeeded", tc.name)
		}
		if err := f.store.CreateBucket(ctx, "gone", ""); err != nil {
			t.Fatal(err)
		}
		if err := n.commitLocked(ctx); err != nil {
			t.Fatalf("%s: the commit once the bucket is back: %v (the first failed with %v)", tc.name, err, cerr)
		}
		n.mu.Unlock()
		if got := storedIn(t, f, "gone", "f"); !bytes.Equal(got, want) {
			t.Fatalf("%s: committed %d bytes, want %d", tc.name, len(got), len(want))
		}
		if err := f.store.Delete(ctx, "gone", "f"); err != nil {
			t.Fatal(err)
		}
		if err := f.store.DeleteBucket(ctx, "gone"); err != nil {
			t.Fatal(err)
		}
	}
}

// storedIn reads an object's committed content.
func storedIn(t *testing.T, f *FS, bucket, key string) []byte {
	t.Helper()
	h, err := f.store.Open(context.Background(), bucket, key)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	b := make([]byte, h.Size())
	if _, err := h.ReadAt(b, 0); err != nil && err != io.EOF {
		t.Fatal(err)
	}
	return b
}
