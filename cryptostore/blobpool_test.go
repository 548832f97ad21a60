package cryptostore

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sealfs/sealfs/meta"
)

// emptyBlobFiles lists the empty files in dir's blob directory: files made
// ahead of need (blobpool.go), or their leftovers.
func emptyBlobFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(filepath.Join(dir, "blobs"), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if fi, err := d.Info(); err == nil && fi.Size() == 0 {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// A blob goes into a file made ahead: no temporary file, the object reads
// back whole, the collector keeps the files nobody took yet, and a clean
// close removes them.
func TestBlobPool(t *testing.T) {
	dir := t.TempDir()
	root := randBytes(32)
	e := openEnv(t, dir, root, nil)
	e.bucket(t, "bkt", true)
	data := randBytes(300 << 10) // above the inline limit: a blob

	// The first blob is written the slow way and starts a batch.
	e.put(t, "bkt", "first", data)
	e.store.blobs.pool.wg.Wait()
	if n := len(emptyBlobFiles(t, dir)); n != poolBatch {
		t.Fatalf("files made ahead after the first blob: %d, want %d", n, poolBatch)
	}
	var objs []*meta.Object
	for i := range 5 {
		objs = append(objs, e.put(t, "bkt", "k"+string(rune('a'+i)), data))
	}
	if n := len(emptyBlobFiles(t, dir)); n != poolBatch-5 {
		t.Fatalf("files made ahead after 5 more blobs: %d, want %d", n, poolBatch-5)
	}
	for _, o := range objs {
		p := e.store.blobs.local.path(o.Blobs[0].ID)
		if fi, err := os.Stat(p); err != nil || fi.Size() == 0 {
			t.Fatalf("blob %s of %s: %v", p, o.Key, err)
		}
		if !bytes.Equal(e.mustGet(t, "bkt", o.Key), data) {
			t.Fatalf("%s damaged", o.Key)
		}
	}
	if tmp, _ := os.ReadDir(e.store.blobs.tmp); len(tmp) != 0 {
		t.Fatalf("temporary files: %d", len(tmp))
	}

	st, err := e.store.Collect(ctx)
	if err != nil || st.Orphans != 0 || st.Blobs != 6 {
		t.Fatalf("collection with files made ahead: %+v, %v", st, err)
	}
	if n := len(emptyBlobFiles(t, dir)); n != poolBatch-5 {
		t.Fatalf("the collector took files made ahead: %d left, want %d", n, poolBatch-5)
	}

	e.close()
	if left := emptyBlobFiles(t, dir); len(left) != 0 {
		t.Fatalf("a clean close left %d files made ahead", len(left))
	}

	// A crash leaves them behind: the collection at the next open removes
	// them as the orphans they are.
	id := meta.NewBlobID()
	leftover := filepath.Join(dir, "blobs", id.String()[:2], id.String())
	os.MkdirAll(filepath.Dir(leftover), 0o700)
	if err := os.WriteFile(leftover, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if e.db.Shared() {
		// On a shared engine the collector keeps unreferenced files younger
		// than four grace periods: another gateway may be writing them.
		time.Sleep(4*testSharedGrace + 10*time.Millisecond)
	}
	e = openEnv(t, dir, root, nil)
	defer e.close()
	if _, err := os.Stat(leftover); !os.IsNotExist(err) {
		t.Fatalf("a leftover file made ahead survived collection: %v", err)
	}
	for _, o := range objs {
		if !bytes.Equal(e.mustGet(t, "bkt", o.Key), data) {
			t.Fatalf("%s damaged after reopen", o.Key)
		}
	}
}
