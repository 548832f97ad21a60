package cryptostore

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// TestStaged checks the Put cut in two: staged data is readable and visible
// to nobody, survives the orphan collector, and Commit makes it the current
// version with a handle that keeps reading it after an overwrite; Discard
// leaves nothing behind.
func TestStaged(t *testing.T) {
	for _, encrypt := range []bool{true, false} {
		e := newEnv(t, nil)
		e.bucket(t, "bkt", encrypt)
		data := randBytes(3<<20 + 5)
		p, err := e.store.Stage(ctx, &PutInput{Bucket: "bkt", Key: "k", Body: bytes.NewReader(data), Size: -1})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.store.Head(ctx, "bkt", "k"); !errors.Is(err, ErrNoSuchKey) {
			t.Fatalf("encrypt=%t: a staged version is visible before its commit (Head: %v)", encrypt, err)
		}
		if _, err := e.store.Collect(ctx); err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(io.NewSectionReader(p, 0, p.Size()))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("encrypt=%t: reading the staged data after a collection: %d bytes, %v", encrypt, len(got), err)
		}
		h, err := p.Commit(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Commit(ctx, nil); !errors.Is(err, ErrStagedDone) {
			t.Fatalf("second Commit: %v, want ErrStagedDone", err)
		}
		if got := e.mustGet(t, "bkt", "k"); !bytes.Equal(got, data) {
			t.Fatal("the committed version differs from the staged data")
		}
		e.put(t, "bkt", "k", []byte("newer")) // the committed version's blob goes, once h lets go
		got, err = io.ReadAll(h.Reader(0, h.Size()))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("the handle Commit returned, after an overwrite: %d bytes, %v", len(got), err)
		}
		h.Close()

		e.removeReplaced(t)
		before := len(blobFilesIn(t, e.dir))
		q, err := e.store.Stage(ctx, &PutInput{Bucket: "bkt", Key: "k", Body: bytes.NewReader(data), Size: int64(len(data))})
		if err != nil {
			t.Fatal(err)
		}
		q.Discard()
		q.Discard()
		if after := len(blobFilesIn(t, e.dir)); after != before {
			t.Fatalf("Discard left %d blob files behind", after-before)
		}
		if got := e.mustGet(t, "bkt", "k"); string(got) != "newer" {
			t.Fatalf("after Discard the object holds %q", got)
		}
	}
}
