package cryptostore

import (
	"bytes"
	"context"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"syscall"
	"testing"

	"github.com/sealfs/sealfs/meta"
)

// The crash tests run a child copy of this test binary that writes a new
// version of an object and kills itself with SIGKILL at a chosen point; the
// parent then reopens the store and checks the object is whole (old or new
// version, never torn) and the orphan blob is collected.

const (
	envCrashMode = "SEALFS_TEST_CRASH_MODE"
	envCrashDir  = "SEALFS_TEST_CRASH_DIR"
	envCrashRoot = "SEALFS_TEST_CRASH_ROOT"
)

// crashVersion returns deterministic content for version v.
func crashVersion(v byte) []byte {
	b := bytes.Repeat([]byte{v}, 3<<20)
	copy(b, "version ")
	return b
}

func killSelf() {
	syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // never returns
}

// TestCrashChild is the child's body; it does nothing in a normal run.
func TestCrashChild(t *testing.T) {
	mode := os.Getenv(envCrashMode)
	if mode == "" {
		return
	}
	root, _ := hex.DecodeString(os.Getenv(envCrashRoot))
	e := openEnv(t, os.Getenv(envCrashDir), root, func(c *Config) {
		switch mode {
		case "before-commit", "compose-before-commit":
			c.testHookBeforeCommit = killSelf
		case "after-commit", "compose-after-commit":
			c.testHookAfterCommit = killSelf
		}
	})
	if mode == "compose-before-commit" || mode == "compose-after-commit" {
		// A patch in place: the new blob holds the patch only, the rest
		// is shared with version 1.
		h, err := e.store.Open(ctx, "bkt", "k")
		if err != nil {
			t.Fatal(err)
		}
		p, err := e.store.Compose(ctx, &ComposeInput{Bucket: "bkt", Key: "k", Size: h.Size(), Base: h, BaseLen: h.Size(),
			Changed: []Range{{Off: crashPatchAt, Len: int64(len(crashPatch))}}, Content: bytes.NewReader(crashPatched())})
		if err != nil {
			t.Fatal(err)
		}
		p.Commit(ctx, nil)
		t.Fatal("the child survived its crash point")
	}
	body := io.Reader(bytes.NewReader(crashVersion(2)))
	if mode == "mid-write" {
		body = io.MultiReader(io.LimitReader(body, 1<<20), readerFunc(func([]byte) (int, error) { killSelf(); return 0, nil }))
	}
	e.store.Put(ctx, &PutInput{Bucket: "bkt", Key: "k", Body: body, Size: -1})
	t.Fatal("the child survived its crash point")
}

// The patch the compose modes write into version 1.
const crashPatchAt = 1<<20 + 5

var crashPatch = []byte("patched in place")

func crashPatched() []byte {
	b := crashVersion(1)
	copy(b[crashPatchAt:], crashPatch)
	return b
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

func TestCrashBetweenBlobAndCommit(t *testing.T) {
	for _, tc := range []struct {
		mode  string
		want  byte // the version that must survive
		blobs int  // left after collection (0: 1)
	}{
		{mode: "mid-write", want: 1},
		{mode: "before-commit", want: 1},
		{mode: "after-commit", want: 2},
		{mode: "compose-before-commit", want: 1},
		{mode: "compose-after-commit", want: 3, blobs: 2}, // 3: crashPatched; its blob and version 1's, shared
	} {
		t.Run(tc.mode, func(t *testing.T) {
			dir := t.TempDir()
			root := randBytes(32)
			e := openEnv(t, dir, root, nil)
			e.bucket(t, "bkt", true)
			e.put(t, "bkt", "k", crashVersion(1))
			e.close()

			cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), envCrashMode+"="+tc.mode, envCrashDir+"="+dir, envCrashRoot+"="+hex.EncodeToString(root))
			out, err := cmd.CombinedOutput()
			ee, ok := err.(*exec.ExitError)
			if !ok || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("child did not die by SIGKILL: %v\n%s", err, out)
			}

			e = openEnv(t, dir, root, nil) // collects orphans on open
			defer e.close()
			e.removeReplaced(t)
			want := crashVersion(tc.want)
			if tc.want == 3 {
				want = crashPatched()
			}
			if got := e.mustGet(t, "bkt", "k"); !bytes.Equal(got, want) {
				t.Fatalf("after a crash (%s) the object is not version %d", tc.mode, tc.want)
			}
			if n := len(blobFilesIn(t, dir)); n != max(tc.blobs, 1) {
				t.Fatalf("want %d blobs after collection, have %d", max(tc.blobs, 1), n)
			}
			tmp, _ := os.ReadDir(e.store.blobs.tmp)
			if len(tmp) != 0 {
				t.Fatalf("temporary files left: %d", len(tmp))
			}
		})
	}
}

// TestCollectKeepsUncommitted runs the collector in the window between a
// blob reaching its final name and its commit: the blob must be kept.
func TestCollectKeepsUncommitted(t *testing.T) {
	var e *testEnv
	var st CollectStats
	var cerr error
	e = newEnv(t, func(c *Config) {
		c.testHookBeforeCommit = func() {
			st, cerr = e.store.Collect(ctx)
		}
	})
	e.bucket(t, "bkt", true)
	data := randBytes(1 << 20)
	e.put(t, "bkt", "k", data)
	if cerr != nil || st.Blobs != 1 || st.Orphans != 0 {
		t.Fatalf("collector in the commit window: %+v, %v", st, cerr)
	}
	if !bytes.Equal(e.mustGet(t, "bkt", "k"), data) {
		t.Fatal("object damaged")
	}
}

// TestRemovalWaitsForSync: a blob that a commit made without sync stopped
// referencing stays on disk until a sync makes that commit durable. A power
// cut before the sync brings the old record back, and it needs its blob.
func TestRemovalWaitsForSync(t *testing.T) {
	nosync := WithoutSync(ctx)
	for _, tc := range []struct {
		name string
		op   func(t *testing.T, e *testEnv)
	}{
		{"overwrite", func(t *testing.T, e *testEnv) {
			data := randBytes(200 << 10)
			if _, err := e.store.Put(nosync, &PutInput{Bucket: "bkt", Key: "k", Body: bytes.NewReader(data), Size: int64(len(data))}); err != nil {
				t.Fatal(err)
			}
		}},
		{"delete", func(t *testing.T, e *testEnv) {
			if err := e.store.Delete(nosync, "bkt", "k"); err != nil {
				t.Fatal(err)
			}
		}},
		{"rename-over", func(t *testing.T, e *testEnv) {
			e.put(t, "bkt", "tmp", randBytes(200<<10))
			if err := e.store.Rename(nosync, "bkt", "tmp", "k"); err != nil {
				t.Fatal(err)
			}
		}},
		{"rename-prefix-over", func(t *testing.T, e *testEnv) {
			e.put(t, "bkt", "d/k", randBytes(200<<10))
			if _, err := e.store.RenamePrefix(nosync, "bkt", "d/", ""); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			e.bucket(t, "bkt", true)
			old := e.put(t, "bkt", "k", randBytes(200<<10))
			p := e.store.blobs.path(old.Blobs[0].ID)
			tc.op(t, e)
			if _, err := os.Stat(p); err != nil {
				t.Fatalf("the replaced blob was removed before the commit that replaced it was synced: %v", err)
			}
			if err := e.store.Sync(ctx); err != nil {
				t.Fatal(err)
			}
			e.removeReplaced(t) // a shared store: its sweeper
			if _, err := os.Stat(p); !os.IsNotExist(err) {
				t.Fatalf("the replaced blob is still there after Sync: %v", err)
			}
		})
	}
}

// TestPartReplaceWaitsForSync: an uploaded part replaced without sync keeps
// its blob until the sync.
func TestPartReplaceWaitsForSync(t *testing.T) {
	e := newEnv(t, nil)
	e.bucket(t, "bkt", false)
	u, err := e.store.CreateMultipart(ctx, "bkt", "k", meta.ObjectMeta{}, "")
	if err != nil {
		t.Fatal(err)
	}
	part := func(c context.Context) *meta.Part {
		data := randBytes(100 << 10)
		p, err := e.store.UploadPart(c, &PartInput{Bucket: "bkt", Key: "k", UploadID: u.ID, Number: 1, Body: bytes.NewReader(data), Size: int64(len(data))})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	first := part(ctx)
	part(WithoutSync(ctx))
	if _, err := os.Stat(e.store.blobs.path(first.Blob.ID)); err != nil {
		t.Fatalf("the replaced part's blob was removed before the sync: %v", err)
	}
}
