package cryptostore

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sealfs/sealfs/internal/enginetest"
	"github.com/sealfs/sealfs/kms"
	"github.com/sealfs/sealfs/meta"
)

// testEnv is a store on a real metadata engine and a real local KMS in a
// temporary data directory. The engine is Badger (in DIR/meta), or the one
// SEALFS_TEST_META names (postgres, etcd: internal/enginetest's servers),
// so that every test of this package runs on every engine: `make
// test-engines` runs the package once per engine.
type testEnv struct {
	dir   string
	root  []byte
	db    *meta.DB
	kms   *kms.Local
	store *Store
}

func openEnv(t testing.TB, dir string, root []byte, tweak func(*Config)) *testEnv {
	t.Helper()
	db, err := meta.Open(testMetaURL(t, dir), meta.Options{})
	if err != nil {
		t.Fatal(err)
	}
	k, err := kms.OpenLocal(filepath.Join(dir, "kms"), root, kms.LocalOptions{})
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	cfg := Config{Dir: dir, Meta: db, KMS: k}
	if db.Shared() {
		// Replaced and orphaned blobs go at the next sweep or collection,
		// not a minute later, so that tests can see them go.
		cfg.SharedGrace = testSharedGrace
	}
	if tweak != nil {
		tweak(&cfg)
	}
	s, err := Open(context.Background(), cfg)
	if err != nil {
		k.Close()
		db.Close()
		t.Fatal(err)
	}
	return &testEnv{dir: dir, root: root, db: db, kms: k, store: s}
}

// testMetaURL returns the metadata URL of the store whose data directory
// is dir: Badger in dir/meta, or a fresh store of the engine SEALFS_TEST_META
// names, remembered in dir/meta.url so that reopening dir (in this process
// or a child) finds the same store.
func testMetaURL(t testing.TB, dir string) string {
	name := testMetaEngine()
	if name == "badger" {
		return filepath.Join(dir, "meta")
	}
	p := filepath.Join(dir, "meta.url")
	if b, err := os.ReadFile(p); err == nil {
		return string(b)
	}
	e := enginetest.ByName(name)
	if e == nil {
		t.Fatalf("SEALFS_TEST_META=%s: no such engine", name)
	}
	u := e.URL(t)
	if err := os.WriteFile(p, []byte(u), 0o600); err != nil {
		t.Fatal(err)
	}
	return u
}

// testMetaEngine is the engine the tests run on (SEALFS_TEST_META).
func testMetaEngine() string {
	if v := os.Getenv("SEALFS_TEST_META"); v != "" {
		return v
	}
	return "badger"
}

// testSharedGrace is the grace period of the stores tests open on a shared
// engine: short, so that replaced blobs go within a test.
const testSharedGrace = 100 * time.Millisecond

// singleGateway skips a test of what a store does alone (replaced blobs
// removed by their committer, after a sync) when the engine is shared:
// there a sweeper removes them after a grace period (shared.go), which
// shared_test.go tests.
func singleGateway(t testing.TB, e *testEnv) {
	t.Helper()
	if e.db.Shared() {
		t.Skipf("a store alone removes replaced blobs itself; on the shared engine %s a sweeper does (shared_test.go)", testMetaEngine())
	}
}

// removeReplaced waits for the store's removals, which run in the
// background, and, on a shared store, waits out the grace periods and runs
// the sweeper and the orphan collector, so that the blobs no record
// references any more are gone, as a store alone removes them by itself.
func (e *testEnv) removeReplaced(t testing.TB) {
	t.Helper()
	e.store.blobs.waitRemovals() // the removals run in the background
	if e.store.sh == nil {
		return
	}
	time.Sleep(4*testSharedGrace + 10*time.Millisecond) // orphans: four periods (shared.go)
	if err := e.store.sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Collect(ctx); err != nil {
		t.Fatal(err)
	}
	e.store.blobs.waitRemovals()
}

// ageOrphans, on a shared store, waits until blobs written now are old
// enough for the orphan collector (four grace periods, shared.go).
func (e *testEnv) ageOrphans() {
	if e.store.sh != nil {
		time.Sleep(4*testSharedGrace + 10*time.Millisecond)
	}
}

// badgerOnly skips a test that is about Badger itself (its files, its
// syncs, its disk) when the tests run on another engine.
func badgerOnly(t testing.TB, why string) {
	t.Helper()
	if e := testMetaEngine(); e != "badger" {
		t.Skipf("on Badger only (%s); SEALFS_TEST_META=%s", why, e)
	}
}

func (e *testEnv) close() {
	e.store.Close()
	e.kms.Close()
	e.db.Close()
}

func newEnv(t testing.TB, tweak func(*Config)) *testEnv {
	t.Helper()
	root := make([]byte, 32)
	rand.Read(root)
	e := openEnv(t, t.TempDir(), root, tweak)
	t.Cleanup(e.close)
	return e
}

var ctx = context.Background()

func (e *testEnv) bucket(t testing.TB, name string, encrypt bool) {
	t.Helper()
	if err := e.store.CreateBucket(ctx, name, ""); err != nil {
		t.Fatal(err)
	}
	if encrypt {
		if err := e.store.SetBucketEncryption(ctx, name, true); err != nil {
			t.Fatal(err)
		}
	}
}

func (e *testEnv) put(t testing.TB, bucket, key string, data []byte) *meta.Object {
	t.Helper()
	o, err := e.store.Put(ctx, &PutInput{Bucket: bucket, Key: key, Body: bytes.NewReader(data), Size: int64(len(data))})
	if err != nil {
		t.Fatalf("put %s/%s: %v", bucket, key, err)
	}
	return o
}

func (e *testEnv) get(t testing.TB, bucket, key string) ([]byte, error) {
	t.Helper()
	h, err := e.store.Open(ctx, bucket, key)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	return io.ReadAll(h.Reader(0, h.Size()))
}

func (e *testEnv) mustGet(t testing.TB, bucket, key string) []byte {
	t.Helper()
	b, err := e.get(t, bucket, key)
	if err != nil {
		t.Fatalf("get %s/%s: %v", bucket, key, err)
	}
	return b
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// blobFilesIn lists the blob files in dir's blob directory that hold a
// blob: the empty files made ahead of need (blobpool.go) are not counted,
// since a blob, even an empty one, has a header.
func blobFilesIn(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(filepath.Join(dir, "blobs"), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if fi, err := d.Info(); err == nil && fi.Size() == 0 {
			return nil
		}
		out = append(out, p)
		return nil
	})
	return out
}

func TestRoundTripSizes(t *testing.T) {
	forEachBlobBackend(t, testRoundTripSizes)
}

func testRoundTripSizes(t *testing.T, bk *testBackend) {
	e := newEnv(t, bk.config(t))
	e.bucket(t, "plain", false)
	e.bucket(t, "sealed", true)
	cs := DefaultChunkSize
	sizes := []int{0, 1, cs - 1, cs, cs + 1, DefaultInlineMax + 1, 3*cs + 17, pieceBytes, pieceBytes + 1, 5*pieceBytes + cs}
	rng := mrand.New(mrand.NewPCG(1, 2))
	for _, bucket := range []string{"plain", "sealed"} {
		for _, n := range sizes {
			t.Run(fmt.Sprintf("%s/%d", bucket, n), func(t *testing.T) {
				data := randBytes(n)
				key := fmt.Sprintf("obj-%d", n)
				o := e.put(t, bucket, key, data)
				if o.Size != int64(n) {
					t.Fatalf("size: want %d, have %d", n, o.Size)
				}
				checkETag(t, o, data)
				if (o.Encryption != nil) != (bucket == "sealed") {
					t.Fatalf("encryption: %+v in bucket %s", o.Encryption, bucket)
				}
				if o.Inline != (n <= DefaultInlineMax) {
					t.Fatalf("inline=%v for %d bytes", o.Inline, n)
				}
				if got := e.mustGet(t, bucket, key); !bytes.Equal(got, data) {
					t.Fatalf("round trip of %d bytes differs", n)
				}
				checkRanges(t, e, bucket, key, data, rng, 50)
			})
		}
	}
}

func checkRanges(t *testing.T, e *testEnv, bucket, key string, data []byte, rng *mrand.Rand, count int) {
	t.Helper()
	h, err := e.store.Open(ctx, bucket, key)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	n := len(data)
	for i := 0; i < count && n > 0; i++ {
		off := rng.IntN(n)
		l := rng.IntN(n-off) + 1
		if i%3 == 0 {
			l = min(l, 1+rng.IntN(300))
		}
		buf := make([]byte, l)
		got, err := h.ReadAt(buf, int64(off))
		if err != nil && !(err == io.EOF && got == l) {
			t.Fatalf("ReadAt(%d, %d): %v", off, l, err)
		}
		if !bytes.Equal(buf[:got], data[off:off+l]) {
			t.Fatalf("ReadAt(%d, %d) differs", off, l)
		}
	}
	// Reading at or past the end.
	if _, err := h.ReadAt(make([]byte, 1), int64(n)); err != io.EOF {
		t.Fatalf("read at end: want io.EOF, have %v", err)
	}
}

func TestRoundTripLarge(t *testing.T) {
	e := newEnv(t, nil)
	e.bucket(t, "sealed", true)
	const n = 100<<20 + 7
	data := randBytes(n)
	// Unknown size: the body is streamed with no length given.
	o, err := e.store.Put(ctx, &PutInput{Bucket: "sealed", Key: "big", Body: io.MultiReader(bytes.NewReader(data)), Size: -1})
	if err != nil {
		t.Fatal(err)
	}
	if o.Size != n || o.Inline || len(o.Blobs) != 1 {
		t.Fatalf("record: size %d inline %v blobs %d", o.Size, o.Inline, len(o.Blobs))
	}
	if got := e.mustGet(t, "sealed", "big"); !bytes.Equal(got, data) {
		t.Fatal("100 MiB round trip differs")
	}
	checkRanges(t, e, "sealed", "big", data, mrand.New(mrand.NewPCG(3, 4)), 200)
}

func TestSizeMismatch(t *testing.T) {
	e := newEnv(t, nil)
	e.bucket(t, "bkt", true)
	for _, tc := range []struct {
		name string
		body int
		size int64
		want error
	}{
		{name: "short-inline", body: 10, size: 11, want: ErrIncompleteBody},
		{name: "long-inline", body: 12, size: 11, want: ErrBodyTooLong},
		{name: "short-blob", body: 1 << 20, size: 1<<20 + 1, want: ErrIncompleteBody},
		{name: "long-blob", body: 1<<20 + 1, size: 1 << 20, want: ErrBodyTooLong},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.store.Put(ctx, &PutInput{Bucket: "bkt", Key: tc.name, Body: bytes.NewReader(randBytes(tc.body)), Size: tc.size})
			if !errors.Is(err, tc.want) {
				t.Fatalf("want %v, have %v", tc.want, err)
			}
			if _, err := e.store.Head(ctx, "bkt", tc.name); !errors.Is(err, ErrNoSuchKey) {
				t.Fatalf("a failed put left a record: %v", err)
			}
		})
	}
	if files := blobFilesIn(t, e.dir); len(files) != 0 {
		t.Fatalf("failed puts left blobs: %v", files)
	}
}

// TestTamperBlob flips every byte of a blob, swaps and duplicates chunks and
// truncates it: every read must fail, none may return wrong bytes.
func TestTamperBlob(t *testing.T) {
	forEachBlobBackend(t, testTamperBlob)
}

func testTamperBlob(t *testing.T, bk *testBackend) {
	for _, encrypt := range []bool{true, false} {
		t.Run(fmt.Sprintf("encrypted=%v", encrypt), func(t *testing.T) {
			e := newEnv(t, func(c *Config) {
				c.ChunkSize = 1024
				c.InlineMax = -1
				if f := bk.config(t); f != nil {
					f(c)
				}
			})
			e.bucket(t, "bkt", encrypt)
			data := randBytes(3*1024 + 500)
			o := e.put(t, "bkt", "k", data)
			id := o.Blobs[0].ID
			orig := e.readBlob(t, id)
			// Every byte of the file store; a sample of a remote one (a
			// request each).
			stride := 1
			if bk.srv != nil {
				stride = 7
			}
			expectFail := func(what string, blob []byte) {
				t.Helper()
				e.writeBlob(t, id, blob)
				got, err := e.get(t, "bkt", "k")
				if err == nil {
					t.Fatalf("%s: read succeeded (same bytes: %v)", what, bytes.Equal(got, data))
				}
				if !errors.Is(err, ErrCorruptBlob) && !errors.Is(err, ErrUnsupportedFormat) {
					t.Fatalf("%s: want a corruption error, have %v", what, err)
				}
			}
			for i := 0; i < len(orig); i += stride {
				b := bytes.Clone(orig)
				b[i] ^= 0x01 << (i % 8)
				expectFail(fmt.Sprintf("flip byte %d", i), b)
			}
			stored := 1024 + 16
			if !encrypt {
				stored = 1024 + 4
			}
			c0 := orig[HeaderSize : HeaderSize+stored]
			c1 := orig[HeaderSize+stored : HeaderSize+2*stored]
			swapped := bytes.Clone(orig)
			copy(swapped[HeaderSize:], c1)
			copy(swapped[HeaderSize+stored:], c0)
			expectFail("swap chunks 0 and 1", swapped)
			dup := bytes.Clone(orig)
			copy(dup[HeaderSize+stored:], c0)
			expectFail("duplicate chunk 0", dup)
			for _, n := range []int{0, HeaderSize - 1, HeaderSize, HeaderSize + stored, HeaderSize + 3*stored, len(orig) - 1} {
				expectFail(fmt.Sprintf("truncate to %d", n), orig[:n])
			}
			expectFail("append a byte", append(bytes.Clone(orig), 0))
			// Put it back: the object reads again.
			e.writeBlob(t, id, orig)
			if got := e.mustGet(t, "bkt", "k"); !bytes.Equal(got, data) {
				t.Fatal("restored blob reads wrong")
			}
		})
	}
}

// TestTamperInline flips bytes of a small object kept in the metadata store.
func TestTamperInline(t *testing.T) {
	e := newEnv(t, nil)
	e.bucket(t, "bkt", true)
	data := randBytes(100)
	o := e.put(t, "bkt", "k", data)
	var orig []byte
	e.db.View(ctx, func(tx *meta.Txn) error { orig, _ = tx.GetInline(o.ID); return nil })
	for _, i := range []int{0, 10, HeaderSize, HeaderSize + 50, len(orig) - 1} {
		b := bytes.Clone(orig)
		b[i] ^= 0x80
		if err := e.db.Update(ctx, func(tx *meta.Txn) error { return tx.PutInline(o.ID, b) }); err != nil {
			t.Fatal(err)
		}
		if _, err := e.get(t, "bkt", "k"); !errors.Is(err, ErrCorruptBlob) && !errors.Is(err, ErrUnsupportedFormat) {
			t.Fatalf("flip inline byte %d: want corruption error, have %v", i, err)
		}
	}
}

// TestMovedWrappedKey copies one object's wrapped data key onto another:
// the key is bound to its own object and must not unwrap elsewhere. Then it
// points an object at another object's blob: chunks bind the object id.
func TestMovedWrappedKey(t *testing.T) {
	e := newEnv(t, nil)
	e.bucket(t, "bkt", true)
	a := e.put(t, "bkt", "a", randBytes(200<<10))
	orig := e.put(t, "bkt", "b", randBytes(200<<10))
	edit := func(fn func(o *meta.Object)) {
		t.Helper()
		err := e.db.Update(ctx, func(tx *meta.Txn) error {
			o, err := tx.GetObject("bkt", "b")
			if err != nil {
				return err
			}
			fn(o)
			return tx.PutObject(o)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	edit(func(o *meta.Object) { o.Encryption = a.Encryption })
	if _, err := e.get(t, "bkt", "b"); !errors.Is(err, ErrCorruptBlob) {
		t.Fatalf("want ErrCorruptBlob for a moved wrapped key, have %v", err)
	}
	edit(func(o *meta.Object) { o.Encryption = orig.Encryption; o.Blobs = a.Blobs })
	if _, err := e.get(t, "bkt", "b"); !errors.Is(err, ErrCorruptBlob) {
		t.Fatalf("want ErrCorruptBlob for another object's blob, have %v", err)
	}
	edit(func(o *meta.Object) { o.Blobs = orig.Blobs })
	if got := e.mustGet(t, "bkt", "b"); len(got) != 200<<10 {
		t.Fatal("restored record does not read")
	}
	if got := e.mustGet(t, "bkt", "a"); len(got) != 200<<10 {
		t.Fatal("object a damaged")
	}
}

// scanFor returns the files under dir containing marker.
func scanFor(t *testing.T, dir string, marker []byte) []string {
	t.Helper()
	var hits []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if bytes.Contains(b, marker) {
			hits = append(hits, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hits
}

func markerData(marker []byte, n int) []byte {
	var b bytes.Buffer
	for b.Len() < n {
		b.Write(marker)
		b.WriteString(" filler ")
	}
	return b.Bytes()[:n]
}

// TestNoPlaintextAtRest writes objects full of a marker into an encrypting
// bucket — inline, blob, multipart, copied, renamed — and finds the marker in
// no file under the data directory. The same writes into a plain bucket
// must be found, or the scan proves nothing.
func TestNoPlaintextAtRest(t *testing.T) {
	forEachBlobBackend(t, testNoPlaintextAtRest)
}

func testNoPlaintextAtRest(t *testing.T, bk *testBackend) {
	for _, encrypt := range []bool{true, false} {
		t.Run(fmt.Sprintf("encrypted=%v", encrypt), func(t *testing.T) {
			root := randBytes(32)
			dir := t.TempDir()
			e := openEnv(t, dir, root, func(c *Config) {
				c.MinPartSize = 1 << 10
				if f := bk.config(t); f != nil {
					f(c)
				}
			})
			marker := []byte("SEALFS-MARKER-" + hex.EncodeToString(randBytes(8)))
			e.bucket(t, "src", false)
			e.bucket(t, "bkt", encrypt)
			for i, n := range []int{len(marker), 4 << 10, 64 << 10, 1 << 20, 3<<20 + 5} {
				e.put(t, "bkt", fmt.Sprintf("obj-%d", i), markerData(marker, n))
			}
			if err := e.store.Rename(ctx, "bkt", "obj-1", "renamed"); err != nil {
				t.Fatal(err)
			}
			u, err := e.store.CreateMultipart(ctx, "bkt", "multi", meta.ObjectMeta{}, "")
			if err != nil {
				t.Fatal(err)
			}
			var parts []CompletePart
			for n := int32(1); n <= 3; n++ {
				p, err := e.store.UploadPart(ctx, &PartInput{Bucket: "bkt", Key: "multi", UploadID: u.ID, Number: n, Body: bytes.NewReader(markerData(marker, 300<<10)), Size: 300 << 10})
				if err != nil {
					t.Fatal(err)
				}
				parts = append(parts, CompletePart{Number: n, ETag: p.ETag})
			}
			if _, err := e.store.CompleteMultipart(ctx, "bkt", "multi", u.ID, parts, nil); err != nil {
				t.Fatal(err)
			}
			if encrypt {
				// A copy from a plain bucket is encrypted by the destination;
				// the plain source lives elsewhere, so delete it first.
				e.put(t, "src", "plain", markerData(marker, 200<<10))
				if _, err := e.store.Copy(ctx, &CopyInput{SrcBucket: "src", SrcKey: "plain", DstBucket: "bkt", DstKey: "copied"}); err != nil {
					t.Fatal(err)
				}
				if err := e.store.Delete(ctx, "src", "plain"); err != nil {
					t.Fatal(err)
				}
				if _, err := e.store.Collect(ctx); err != nil {
					t.Fatal(err)
				}
				e.removeReplaced(t)
			}
			if got := e.mustGet(t, "bkt", "renamed"); !bytes.Contains(got, marker) {
				t.Fatal("renamed object lost its content")
			}
			hitsOpen := scanFor(t, dir, marker)
			if bk.srv != nil {
				// The backend's objects, fetched raw.
				for k, b := range bk.rawObjects(t, dir) {
					if bytes.Contains(b, marker) {
						hitsOpen = append(hitsOpen, "s3:"+k)
					}
				}
			}
			e.close()
			hitsClosed := scanFor(t, dir, marker)
			if bk.srv != nil {
				for k, b := range bk.rawObjects(t, dir) {
					if bytes.Contains(b, marker) {
						hitsClosed = append(hitsClosed, "s3:"+k)
					}
				}
			}
			if encrypt {
				if len(hitsOpen)+len(hitsClosed) > 0 {
					t.Fatalf("plaintext marker found at rest: open %v, closed %v", hitsOpen, hitsClosed)
				}
			} else if len(hitsClosed) == 0 {
				t.Fatal("the scan does not find plaintext in a plain bucket: it proves nothing")
			}
		})
	}
}

// TestEncryptionToggle: turning default encryption on or off changes only
// objects written afterwards.
func TestEncryptionToggle(t *testing.T) {
	e := newEnv(t, nil)
	e.bucket(t, "bkt", false)
	v1 := randBytes(100 << 10)
	if o := e.put(t, "bkt", "old", v1); o.Encryption != nil {
		t.Fatal("object in a plain bucket is encrypted")
	}
	if err := e.store.SetBucketEncryption(ctx, "bkt", true); err != nil {
		t.Fatal(err)
	}
	v2 := randBytes(1000)
	o := e.put(t, "bkt", "new", v2)
	if o.Encryption == nil || o.Encryption.Algorithm != Algorithm || len(o.Encryption.WrappedKey) == 0 {
		t.Fatalf("new object not encrypted: %+v", o.Encryption)
	}
	b, _ := e.store.GetBucket(ctx, "bkt")
	if b.MasterKeyID == "" || o.Encryption.KeyID != b.MasterKeyID {
		t.Fatalf("object key %q, bucket key %q", o.Encryption.KeyID, b.MasterKeyID)
	}
	if h, _ := e.store.Head(ctx, "bkt", "old"); h.Encryption != nil {
		t.Fatal("turning encryption on changed an old object")
	}
	if err := e.store.SetBucketEncryption(ctx, "bkt", false); err != nil {
		t.Fatal(err)
	}
	if o := e.put(t, "bkt", "plain-again", v1); o.Encryption != nil {
		t.Fatal("object written after turning encryption off is encrypted")
	}
	if h, _ := e.store.Head(ctx, "bkt", "new"); h.Encryption == nil {
		t.Fatal("turning encryption off changed an old object")
	}
	if err := e.store.Rename(ctx, "bkt", "new", "dir/renamed"); err != nil {
		t.Fatal(err)
	}
	if got := e.mustGet(t, "bkt", "dir/renamed"); !bytes.Equal(got, v2) {
		t.Fatal("renamed encrypted object reads wrong")
	}
	if !bytes.Equal(e.mustGet(t, "bkt", "old"), v1) {
		t.Fatal("old object reads wrong")
	}
	// Turning it on again reuses the bucket's master key.
	e.store.SetBucketEncryption(ctx, "bkt", true)
	if o := e.put(t, "bkt", "again", v2); o.Encryption.KeyID != b.MasterKeyID {
		t.Fatal("master key not reused")
	}
}

// TestEncryptionFlipDuringPut switches the setting between writing the data
// and committing it: the commit must follow the setting in force then.
func TestEncryptionFlipDuringPut(t *testing.T) {
	for _, n := range []int{100, 300 << 10} {
		for _, start := range []bool{false, true} {
			t.Run(fmt.Sprintf("%d/from-%v", n, start), func(t *testing.T) {
				var e *testEnv
				flipped := false
				e = newEnv(t, func(c *Config) {
					c.testHookBeforeCommit = func() {
						if !flipped {
							flipped = true
							if err := e.store.SetBucketEncryption(ctx, "bkt", !start); err != nil {
								t.Error(err)
							}
						}
					}
				})
				e.bucket(t, "bkt", start)
				data := randBytes(n)
				o := e.put(t, "bkt", "k", data)
				if (o.Encryption != nil) != !start {
					t.Fatalf("committed with encryption=%v, setting is %v", o.Encryption != nil, !start)
				}
				if !bytes.Equal(e.mustGet(t, "bkt", "k"), data) {
					t.Fatal("content differs")
				}
				// The ETag follows how the data ended up stored.
				checkETag(t, o, data)
				st, _ := e.store.Collect(ctx)
				if st.Orphans != 0 {
					t.Fatalf("rewrite left %d orphan blobs", st.Orphans)
				}
			})
		}
	}
}

func TestKeyDisabled(t *testing.T) {
	e := newEnv(t, nil)
	e.bucket(t, "bkt", true)
	data := randBytes(10)
	e.put(t, "bkt", "k", data)
	e.mustGet(t, "bkt", "k") // warms the data-key cache
	b, _ := e.store.GetBucket(ctx, "bkt")
	if err := e.kms.DisableKey(ctx, &kms.KeyRequest{KeyID: b.MasterKeyID}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.get(t, "bkt", "k"); !errors.Is(err, ErrKeyDisabled) {
		t.Fatalf("read with a disabled key: want ErrKeyDisabled, have %v", err)
	}
	if _, err := e.store.Put(ctx, &PutInput{Bucket: "bkt", Key: "k2", Body: bytes.NewReader(data), Size: 10}); !errors.Is(err, ErrKeyDisabled) {
		t.Fatalf("write with a disabled key: want ErrKeyDisabled, have %v", err)
	}
	if err := e.kms.EnableKey(ctx, &kms.KeyRequest{KeyID: b.MasterKeyID}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(e.mustGet(t, "bkt", "k"), data) {
		t.Fatal("reads wrong after enabling the key again")
	}
}

func TestRenameIsMetadataOnly(t *testing.T) {
	e := newEnv(t, nil)
	e.bucket(t, "bkt", true)
	data := randBytes(500 << 10)
	before := e.put(t, "bkt", "a/x", data)
	e.put(t, "bkt", "a/y", randBytes(10))
	e.put(t, "bkt", "target", randBytes(300<<10))
	if err := e.store.Rename(ctx, "bkt", "a/x", "target"); err != nil {
		t.Fatal(err)
	}
	after, err := e.store.Head(ctx, "bkt", "target")
	if err != nil {
		t.Fatal(err)
	}
	if after.ID != before.ID || after.Blobs[0] != before.Blobs[0] || !bytes.Equal(after.Encryption.WrappedKey, before.Encryption.WrappedKey) {
		t.Fatal("rename rewrote data or key")
	}
	if _, err := e.store.Head(ctx, "bkt", "a/x"); !errors.Is(err, ErrNoSuchKey) {
		t.Fatalf("source still there: %v", err)
	}
	e.removeReplaced(t)
	if len(blobFilesIn(t, e.dir)) != 1 {
		t.Fatal("the replaced object's blob was not removed")
	}
	n, err := e.store.RenamePrefix(ctx, "bkt", "a/", "c/d/")
	if err != nil || n != 1 {
		t.Fatalf("rename prefix: %d, %v", n, err)
	}
	if _, err := e.store.Head(ctx, "bkt", "c/d/y"); err != nil {
		t.Fatal(err)
	}
	if err := e.store.Rename(ctx, "bkt", "missing", "x"); !errors.Is(err, ErrNoSuchKey) {
		t.Fatalf("rename missing: %v", err)
	}
	if !bytes.Equal(e.mustGet(t, "bkt", "target"), data) {
		t.Fatal("renamed object reads wrong")
	}
}

func TestCopyReencrypts(t *testing.T) {
	e := newEnv(t, nil)
	e.bucket(t, "plain", false)
	e.bucket(t, "sealed", true)
	data := randBytes(300 << 10)
	src := e.put(t, "plain", "k", data)
	c, err := e.store.Copy(ctx, &CopyInput{SrcBucket: "plain", SrcKey: "k", DstBucket: "sealed", DstKey: "k2"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Encryption == nil || c.ID == src.ID || c.ETag == src.ETag {
		t.Fatalf("copy: enc %v, same id %v, etag %s vs %s", c.Encryption, c.ID == src.ID, c.ETag, src.ETag)
	}
	checkETag(t, c, data)
	c2, err := e.store.Copy(ctx, &CopyInput{SrcBucket: "sealed", SrcKey: "k2", DstBucket: "sealed", DstKey: "k3"})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(c2.Encryption.WrappedKey, c.Encryption.WrappedKey) {
		t.Fatal("copy reused the source's data key")
	}
	back, err := e.store.Copy(ctx, &CopyInput{SrcBucket: "sealed", SrcKey: "k3", DstBucket: "plain", DstKey: "back", Meta: &meta.ObjectMeta{ContentType: "text/x"}})
	if err != nil {
		t.Fatal(err)
	}
	if back.Encryption != nil || back.Meta.ContentType != "text/x" {
		t.Fatal("copy into a plain bucket: encrypted or metadata not replaced")
	}
	checkETag(t, c2, data)
	checkETag(t, back, data)
	for _, k := range [][2]string{{"sealed", "k2"}, {"sealed", "k3"}, {"plain", "back"}} {
		if !bytes.Equal(e.mustGet(t, k[0], k[1]), data) {
			t.Fatalf("%v reads wrong", k)
		}
	}
}

func TestConditions(t *testing.T) {
	e := newEnv(t, nil)
	e.bucket(t, "bkt", false)
	put := func(cond func(*meta.Object) error) error {
		_, err := e.store.Put(ctx, &PutInput{Bucket: "bkt", Key: "k", Body: strings.NewReader("x"), Size: 1, Condition: cond})
		return err
	}
	if err := put(IfNoneMatch("*")); err != nil {
		t.Fatal(err)
	}
	if err := put(IfNoneMatch("*")); !errors.Is(err, ErrPreconditionFailed) {
		t.Fatalf("create-only over an existing key: %v", err)
	}
	o, _ := e.store.Head(ctx, "bkt", "k")
	if err := put(IfMatch(`"` + o.ETag + `"`)); err != nil {
		t.Fatal(err)
	}
	if err := put(IfMatch("0123")); !errors.Is(err, ErrPreconditionFailed) {
		t.Fatalf("if-match wrong etag: %v", err)
	}
}

// TestConcurrentPuts: many writers to one key, readers all the while. Every
// read returns one whole version; the last commit wins.
func TestConcurrentPuts(t *testing.T) {
	e := newEnv(t, nil)
	e.bucket(t, "bkt", true)
	versions := make(map[string][]byte) // etag → content
	var mu sync.Mutex
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, 64)
	for w := 0; w < 6; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 6; i++ {
				n := 1000 + (w*7+i)%3*(200<<10) // inline and blob sizes
				data := randBytes(n)
				sum := md5.Sum(data)
				mu.Lock()
				versions[hex.EncodeToString(sum[:])] = data
				mu.Unlock()
				if _, err := e.store.Put(ctx, &PutInput{Bucket: "bkt", Key: "k", Body: bytes.NewReader(data), Size: int64(n)}); err != nil {
					errs <- err
					return
				}
			}
		}(w)
	}
	var rg sync.WaitGroup
	for r := 0; r < 3; r++ {
		rg.Add(1)
		go func() {
			defer rg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				h, err := e.store.Open(ctx, "bkt", "k")
				if errors.Is(err, ErrNoSuchKey) {
					continue
				}
				if err != nil {
					errs <- err
					return
				}
				got, err := io.ReadAll(h.Reader(0, h.Size()))
				h.Close()
				if err != nil {
					errs <- err
					return
				}
				sum := md5.Sum(got)
				mu.Lock()
				v, ok := versions[hex.EncodeToString(sum[:])]
				mu.Unlock()
				if !ok || len(v) != len(got) || int64(len(got)) != h.Object().Size {
					errs <- fmt.Errorf("read a torn version (%d bytes)", len(got))
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	rg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	final := randBytes(777)
	e.put(t, "bkt", "k", final)
	if !bytes.Equal(e.mustGet(t, "bkt", "k"), final) {
		t.Fatal("the last commit did not win")
	}
	e.removeReplaced(t)
	if files := blobFilesIn(t, e.dir); len(files) != 0 {
		t.Fatalf("replaced versions left %d blobs", len(files))
	}
}

func TestMultipart(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MinPartSize = 100 << 10 })
	e.bucket(t, "bkt", true)
	u, err := e.store.CreateMultipart(ctx, "bkt", "m", meta.ObjectMeta{ContentType: "app/x"}, "CRC32C")
	if err != nil {
		t.Fatal(err)
	}
	if u.Encryption == nil {
		t.Fatal("upload in an encrypting bucket not encrypted")
	}
	sizes := []int{150 << 10, 100 << 10, 1}
	var all []byte
	var parts []CompletePart
	var md5s []byte
	for i, n := range sizes {
		data := randBytes(n)
		num := int32(i + 1)
		// Upload part 2 twice: the second replaces the first.
		if num == 2 {
			if _, err := e.store.UploadPart(ctx, &PartInput{Bucket: "bkt", Key: "m", UploadID: u.ID, Number: num, Body: bytes.NewReader(randBytes(n)), Size: int64(n)}); err != nil {
				t.Fatal(err)
			}
		}
		p, err := e.store.UploadPart(ctx, &PartInput{Bucket: "bkt", Key: "m", UploadID: u.ID, Number: num, Body: bytes.NewReader(data), Size: int64(n)})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, data...)
		parts = append(parts, CompletePart{Number: num, ETag: `"` + p.ETag + `"`})
		sum := md5.Sum(data)
		md5s = append(md5s, sum[:]...)
	}
	e.removeReplaced(t)
	if n := len(blobFilesIn(t, e.dir)); n != 3 {
		t.Fatalf("want 3 part blobs, have %d", n)
	}
	if _, err := e.store.CompleteMultipart(ctx, "bkt", "m", u.ID, []CompletePart{parts[1], parts[0]}, nil); !errors.Is(err, ErrInvalidPartOrder) {
		t.Fatalf("unordered parts: %v", err)
	}
	if _, err := e.store.CompleteMultipart(ctx, "bkt", "m", u.ID, []CompletePart{{Number: 1, ETag: "bad"}}, nil); !errors.Is(err, ErrInvalidPart) {
		t.Fatalf("wrong etag: %v", err)
	}
	if _, err := e.store.CompleteMultipart(ctx, "bkt", "m", u.ID, []CompletePart{parts[0], {Number: 4, ETag: parts[0].ETag}}, nil); !errors.Is(err, ErrInvalidPart) {
		t.Fatalf("missing part: %v", err)
	}
	small, _ := e.store.CreateMultipart(ctx, "bkt", "small", meta.ObjectMeta{}, "")
	p1, _ := e.store.UploadPart(ctx, &PartInput{Bucket: "bkt", Key: "small", UploadID: small.ID, Number: 1, Body: bytes.NewReader(randBytes(10)), Size: 10})
	p2, _ := e.store.UploadPart(ctx, &PartInput{Bucket: "bkt", Key: "small", UploadID: small.ID, Number: 2, Body: bytes.NewReader(randBytes(10)), Size: 10})
	if _, err := e.store.CompleteMultipart(ctx, "bkt", "small", small.ID, []CompletePart{{Number: 1, ETag: p1.ETag}, {Number: 2, ETag: p2.ETag}}, nil); !errors.Is(err, ErrEntityTooSmall) {
		t.Fatalf("small part: %v", err)
	}
	if err := e.store.AbortMultipart(ctx, "bkt", "small", small.ID); err != nil {
		t.Fatal(err)
	}
	e.removeReplaced(t)
	partBlobs := blobFilesIn(t, e.dir)
	o, err := e.store.CompleteMultipart(ctx, "bkt", "m", u.ID, parts, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Encrypted: a random ETag with the part count, not S3's MD5 of the
	// parts' MD5s.
	sum := md5.Sum(md5s)
	if !encryptedETag.MatchString(o.ETag) || !strings.HasSuffix(o.ETag, "-3") || o.ETag == fmt.Sprintf("%x-3", sum) ||
		o.Size != int64(len(all)) || o.Meta.ContentType != "app/x" {
		t.Fatalf("record: etag %s size %d type %q", o.ETag, o.Size, o.Meta.ContentType)
	}
	if len(o.Checksums) != 1 || o.Checksums[0].Algorithm != "CRC32C" || !strings.HasSuffix(o.Checksums[0].Value, "-3") {
		t.Fatalf("composite checksum: %+v", o.Checksums)
	}
	// Assembled without copying: the same blob files, no new ones.
	if after := blobFilesIn(t, e.dir); strings.Join(after, ",") != strings.Join(partBlobs, ",") {
		t.Fatalf("complete wrote data: before %v after %v", partBlobs, after)
	}
	if !bytes.Equal(e.mustGet(t, "bkt", "m"), all) {
		t.Fatal("multipart object reads wrong")
	}
	checkRanges(t, e, "bkt", "m", all, mrand.New(mrand.NewPCG(5, 6)), 100)
	if _, err := e.store.GetUpload(ctx, "bkt", "m", u.ID); !errors.Is(err, ErrNoSuchUpload) {
		t.Fatalf("upload still there: %v", err)
	}
}

// TestMultipartFlip: the bucket's setting changed while the upload was in
// progress; the completed object follows the setting at completion.
func TestMultipartFlip(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MinPartSize = 1 })
	e.bucket(t, "bkt", false)
	u, _ := e.store.CreateMultipart(ctx, "bkt", "m", meta.ObjectMeta{}, "")
	d1, d2 := randBytes(70<<10), randBytes(5)
	p1, _ := e.store.UploadPart(ctx, &PartInput{Bucket: "bkt", Key: "m", UploadID: u.ID, Number: 1, Body: bytes.NewReader(d1), Size: int64(len(d1))})
	p2, _ := e.store.UploadPart(ctx, &PartInput{Bucket: "bkt", Key: "m", UploadID: u.ID, Number: 2, Body: bytes.NewReader(d2), Size: 5})
	e.store.SetBucketEncryption(ctx, "bkt", true)
	o, err := e.store.CompleteMultipart(ctx, "bkt", "m", u.ID, []CompletePart{{Number: 1, ETag: p1.ETag}, {Number: 2, ETag: p2.ETag}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if o.Encryption == nil || !strings.HasSuffix(o.ETag, "-2") {
		t.Fatalf("enc %v etag %s", o.Encryption, o.ETag)
	}
	if !bytes.Equal(e.mustGet(t, "bkt", "m"), append(d1, d2...)) {
		t.Fatal("content differs")
	}
	e.removeReplaced(t)
	if n := len(blobFilesIn(t, e.dir)); n != 1 {
		t.Fatalf("want the rewritten blob only, have %d blobs", n)
	}
}

func TestDeleteAndBuckets(t *testing.T) {
	e := newEnv(t, nil)
	e.bucket(t, "bkt", false)
	e.put(t, "bkt", "k", randBytes(300<<10))
	if err := e.store.DeleteBucket(ctx, "bkt"); !errors.Is(err, ErrBucketNotEmpty) {
		t.Fatalf("delete non-empty bucket: %v", err)
	}
	if err := e.store.Delete(ctx, "bkt", "k"); err != nil {
		t.Fatal(err)
	}
	if err := e.store.Delete(ctx, "bkt", "k"); !errors.Is(err, ErrNoSuchKey) {
		t.Fatalf("second delete: %v", err)
	}
	e.removeReplaced(t)
	if n := len(blobFilesIn(t, e.dir)); n != 0 {
		t.Fatalf("delete left %d blobs", n)
	}
	u, _ := e.store.CreateMultipart(ctx, "bkt", "m", meta.ObjectMeta{}, "")
	e.store.UploadPart(ctx, &PartInput{Bucket: "bkt", Key: "m", UploadID: u.ID, Number: 1, Body: bytes.NewReader(randBytes(100)), Size: 100})
	if err := e.store.DeleteBucket(ctx, "bkt"); err != nil {
		t.Fatal(err)
	}
	e.removeReplaced(t)
	if n := len(blobFilesIn(t, e.dir)); n != 0 {
		t.Fatalf("bucket delete left %d part blobs", n)
	}
	if _, err := e.store.Put(ctx, &PutInput{Bucket: "bkt", Key: "k", Body: strings.NewReader(""), Size: 0}); !errors.Is(err, ErrNoSuchBucket) {
		t.Fatalf("put into deleted bucket: %v", err)
	}
	if err := e.store.CreateBucket(ctx, "Bad_Name", ""); !errors.Is(err, ErrInvalidBucketName) {
		t.Fatalf("bad name: %v", err)
	}
}

// TestReaderSurvivesOverwrite: an open handle keeps reading its version
// after the key is overwritten and deleted; the old blob goes afterwards.
func TestReaderSurvivesOverwrite(t *testing.T) {
	e := newEnv(t, nil)
	e.bucket(t, "bkt", true)
	v1 := randBytes(1 << 20)
	e.put(t, "bkt", "k", v1)
	h, err := e.store.Open(ctx, "bkt", "k")
	if err != nil {
		t.Fatal(err)
	}
	e.put(t, "bkt", "k", randBytes(1<<20))
	e.store.Delete(ctx, "bkt", "k")
	e.removeReplaced(t) // a shared store: the reader's pin keeps it
	if n := len(blobFilesIn(t, e.dir)); n != 1 {
		t.Fatalf("want the open version's blob kept, have %d blobs", n)
	}
	got, err := io.ReadAll(h.Reader(0, h.Size()))
	if err != nil || !bytes.Equal(got, v1) {
		t.Fatalf("open handle after overwrite: %v", err)
	}
	h.Close()
	e.removeReplaced(t)
	if n := len(blobFilesIn(t, e.dir)); n != 0 {
		t.Fatalf("closing the last reader left %d blobs", n)
	}
}

// TestCollectOrphans: a stray blob is removed, a blob being written is not.
func TestCollectOrphans(t *testing.T) {
	e := newEnv(t, nil)
	e.bucket(t, "bkt", false)
	stray := e.store.blobs.path(meta.NewBlobID())
	os.MkdirAll(filepath.Dir(stray), 0o700)
	if err := os.WriteFile(stray, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	kept := e.put(t, "bkt", "kept", randBytes(200<<10))
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := e.store.Put(ctx, &PutInput{Bucket: "bkt", Key: "slow", Body: pr, Size: -1})
		done <- err
	}()
	pw.Write(randBytes(300 << 10)) // past the inline limit: a blob is in flight
	e.ageOrphans()
	st, err := e.store.Collect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Orphans != 1 {
		t.Fatalf("want 1 orphan removed, have %+v", st)
	}
	if _, err := os.Stat(stray); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("stray blob not removed")
	}
	if _, err := os.Stat(e.store.blobs.path(kept.Blobs[0].ID)); err != nil {
		t.Fatal("referenced blob removed")
	}
	pw.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := e.mustGet(t, "bkt", "slow"); len(got) != 300<<10 {
		t.Fatal("the in-flight object was damaged by the collector")
	}
}

// TestOnCommit: the hook runs inside the commit, may set fields of the
// record being written, and aborts the commit by failing.
func TestOnCommit(t *testing.T) {
	fail := false
	var events []string
	e := newEnv(t, func(c *Config) {
		c.OnCommit = func(q CommitQueue, ev *CommitEvent) error {
			if fail {
				return errors.New("refused")
			}
			if ev.New != nil {
				ev.New.ReplicationStatus = "PENDING"
				events = append(events, "put "+ev.Key)
			} else {
				events = append(events, "delete "+ev.Key)
			}
			return nil
		}
	})
	e.bucket(t, "bkt", true)
	e.put(t, "bkt", "k", randBytes(10))
	if o, _ := e.store.Head(ctx, "bkt", "k"); o.ReplicationStatus != "PENDING" {
		t.Fatalf("hook's change not committed: %q", o.ReplicationStatus)
	}
	if err := e.store.Rename(ctx, "bkt", "k", "k2"); err != nil {
		t.Fatal(err)
	}
	fail = true
	if _, err := e.store.Put(ctx, &PutInput{Bucket: "bkt", Key: "k3", Body: strings.NewReader("x"), Size: 1}); err == nil {
		t.Fatal("a failing hook did not abort the commit")
	}
	if _, err := e.store.Head(ctx, "bkt", "k3"); !errors.Is(err, ErrNoSuchKey) {
		t.Fatalf("aborted commit left a record: %v", err)
	}
	want := "put k,delete k,put k2"
	if got := strings.Join(events, ","); got != want {
		t.Fatalf("events: want %s, have %s", want, got)
	}
}

// TestScrub: a clean store scrubs clean; a flipped byte in one blob, a
// record whose checksum no longer matches, and a stray blob are all found.
func TestScrub(t *testing.T) {
	e := newEnv(t, nil)
	e.bucket(t, "bkt", true)
	e.bucket(t, "plain", false)
	e.put(t, "bkt", "small", randBytes(100))
	big := e.put(t, "bkt", "big", randBytes(300<<10))
	e.put(t, "plain", "p", randBytes(200<<10))
	rep, err := e.store.Scrub(ctx, ScrubOptions{})
	if err != nil || len(rep.Damaged) != 0 || rep.Objects != 3 || !rep.Finished {
		t.Fatalf("clean scrub: %+v, %v", rep, err)
	}
	path := e.store.blobs.path(big.Blobs[0].ID)
	b, _ := os.ReadFile(path)
	b[len(b)/2] ^= 1
	os.WriteFile(path, b, 0o600)
	// A record whose stored checksum disagrees with the data: the data
	// authenticates, the checksum catches it.
	err = e.db.Update(ctx, func(tx *meta.Txn) error {
		o, err := tx.GetObject("plain", "p")
		if err != nil {
			return err
		}
		o.Checksums = []meta.Checksum{{Algorithm: CRC64NVME, Value: "AAAAAAAAAAA="}}
		return tx.PutObject(o)
	})
	if err != nil {
		t.Fatal(err)
	}
	stray := e.store.blobs.path(meta.NewBlobID())
	os.MkdirAll(filepath.Dir(stray), 0o700)
	os.WriteFile(stray, []byte("x"), 0o600)
	long := time.Now().Add(-time.Hour) // old enough for a shared store's collector too
	os.Chtimes(stray, long, long)
	var progress int
	rep, err = e.store.Scrub(ctx, ScrubOptions{Progress: func(ScrubReport) { progress++ }})
	if err != nil {
		t.Fatal(err)
	}
	var damaged []string
	for _, d := range rep.Damaged {
		damaged = append(damaged, d.Bucket+"/"+d.Key)
	}
	if strings.Join(damaged, ",") != "bkt/big,plain/p" || rep.Orphans.Orphans != 1 || progress != 3 {
		t.Fatalf("scrub found %v, orphans %+v, progress %d", damaged, rep.Orphans, progress)
	}
	rep, _ = e.store.Scrub(ctx, ScrubOptions{Bucket: "bkt", Sample: 0.000001})
	if rep.Objects+rep.Skipped != 2 {
		t.Fatalf("sampled scrub of one bucket: %+v", rep)
	}
}

func TestStats(t *testing.T) {
	e := newEnv(t, nil)
	e.bucket(t, "plain", false)
	e.put(t, "plain", "a", randBytes(10))
	e.bucket(t, "sealed", false)
	e.put(t, "sealed", "old", randBytes(100))
	e.store.SetBucketEncryption(ctx, "sealed", true)
	e.put(t, "sealed", "new", randBytes(200<<10))
	st, err := e.store.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []BucketStats{
		{Bucket: "plain", Objects: 1, Bytes: 10},
		{Bucket: "sealed", Encryption: true, Objects: 2, Bytes: 100 + 200<<10, EncryptedObjects: 1, EncryptedBytes: 200 << 10},
	}
	if fmt.Sprint(st) != fmt.Sprint(want) {
		t.Fatalf("stats:\nwant %+v\nhave %+v", want, st)
	}
}

// A bucket with more uploads in progress than one etcd transaction can
// read or write (--max-txn-ops, 128 by default) is deleted with them, on
// every engine.
func TestDeleteBucketWithManyUploads(t *testing.T) {
	for _, engine := range []string{"badger", "postgres", "etcd"} {
		t.Run(engine, func(t *testing.T) {
			t.Setenv("SEALFS_TEST_META", engine)
			e := newEnv(t, nil)
			e.bucket(t, "bkt", true)
			const n = 150
			for i := 0; i < n; i++ {
				u, err := e.store.CreateMultipart(ctx, "bkt", fmt.Sprintf("k%03d", i), meta.ObjectMeta{}, "")
				if err != nil {
					t.Fatal(err)
				}
				if _, err := e.store.UploadPart(ctx, &PartInput{Bucket: "bkt", Key: u.Key, UploadID: u.ID, Number: 1, Body: bytes.NewReader(randBytes(100)), Size: 100}); err != nil {
					t.Fatal(err)
				}
			}
			if err := e.store.DeleteBucket(ctx, "bkt"); err != nil {
				t.Fatalf("DeleteBucket with %d uploads in progress: %v", n, err)
			}
			if _, err := e.store.GetBucket(ctx, "bkt"); !errors.Is(err, ErrNoSuchBucket) {
				t.Fatalf("bucket after DeleteBucket: %v", err)
			}
			e.removeReplaced(t)
			if n := len(blobFilesIn(t, e.dir)); n != 0 {
				t.Fatalf("%d part blobs left", n)
			}
		})
	}
}

// TestObserveBlobCommit: a blob written is reported once, with the time its
// store took to make it durable; inline data makes no blob and is not
// reported.
func TestObserveBlobCommit(t *testing.T) {
	var mu sync.Mutex
	var seen []time.Duration
	e := newEnv(t, func(c *Config) {
		c.ObserveBlobCommit = func(d time.Duration) {
			mu.Lock()
			seen = append(seen, d)
			mu.Unlock()
		}
	})
	e.bucket(t, "observed", true)
	take := func() []time.Duration {
		mu.Lock()
		defer mu.Unlock()
		out := seen
		seen = nil
		return out
	}
	e.put(t, "observed", "small", []byte("inline"))
	if got := take(); len(got) != 0 {
		t.Fatalf("an inline object reported blob commits %v", got)
	}
	big := make([]byte, DefaultInlineMax+1)
	e.put(t, "observed", "big", big)
	got := take()
	if len(got) != 1 || got[0] <= 0 {
		t.Fatalf("one blob written: reported %v, want one positive duration", got)
	}
}
